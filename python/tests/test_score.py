"""Scoring through Python is the server's and the model's own arithmetic: the same rewards,
head rewards and weights as `micro serve`'s `/v1/score`, per-user weights as the model folder
defines them (the router with the user's table row, mixed with an adapted user's weights over
the experts), the Hedge update, and the next question."""

import json
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import micro
from conftest import cli, micro_bin, read_safetensors


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """`micro serve` on the trained model: (base URL, API key)."""
    db = str(tmp_path_factory.mktemp("serve") / "state.sqlite")
    key = cli("serve", "keys", "add", "--tenant", "py", "--db", db).stdout.strip()
    proc = subprocess.Popen(
        [str(micro_bin()), "serve", "--model", str(trained), "--db", db, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:
            if line.startswith("micro serve: listening on "):
                yield line.split()[-1], key
                break
        else:
            pytest.fail("micro serve ended without listening")
    finally:
        proc.kill()
        proc.wait()


def v1(server, route, body):
    """POSTs `body` to `micro serve`'s `route`; its JSON answer."""
    url, key = server
    request = urllib.request.Request(
        url + route,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.loads(r.read())


def v1_score(server, body):
    return v1(server, "/v1/score", body)


def f32(v):
    return np.asarray(v, dtype=np.float32)


@pytest.mark.parametrize("field", ["context_embedding", "prompt_embedding"])
def test_scores_are_v1_scores(server, synth, trained, field):
    cache = micro.Cache.load(synth)
    model = micro.Model.load(trained)
    responses = cache.chosen[:6]
    for x in [cache.context_prompt[0], cache.prompt[17]]:
        answer = v1_score(server, {"response_embeddings": responses.tolist(), field: x.tolist(), "head_rewards": True})
        np.testing.assert_array_equal(model.score(responses, x), f32(answer["rewards"]))
        np.testing.assert_array_equal(model.weights(x), f32(answer["weights"]))
        np.testing.assert_array_equal(model.rewards(responses), f32(answer["head_rewards"]))


def router(folder, x, user=None):
    """The gate's weights as the model folder documents them, in numpy:
    softmax(W2 @ relu(W1 @ x + b1) + b2 [+ users.logits[user]])."""
    t = read_safetensors(folder / "model.safetensors")
    hidden = np.maximum(t["router.w1"].astype(np.float64) @ x + t["router.b1"], 0)
    z = t["router.w2"] @ hidden + t["router.b2"]
    names = json.loads((folder / "users.json").read_text())
    if user in names:
        z = z + t["users.logits"][names.index(user)]
    w = np.exp(z - z.max())
    return w / w.sum()


def test_weights_for_nobody_a_table_user_and_an_adapted_user(synth, trained, tmp_path):
    adapted = tmp_path / "adapted"
    cli("adapt", "--model", trained, "--cache", synth, "-o", adapted)
    model = micro.Model.load(adapted)
    x = micro.Cache.load(synth).context_prompt[:5]
    assert sorted(model.table_users) == model.users == ["group-1", "group-2", "group-3", "group-4"]
    assert model.config["router"] == "mlp" and model.config["activation"] == "relu"

    rows = model.weights(x)
    assert rows.shape == (5, model.k)
    for i in range(5):
        np.testing.assert_allclose(rows[i], router(adapted, x[i]), rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(model.weights(x[i]), rows[i])

    # A user adapted by id: their weights over the experts, the gate's share spread as the gate
    # (with their table row) weighs the heads.
    state = model.user("group-2").weights
    assert state.shape == (model.k + 1,)
    want = state[:-1] + state[-1] * router(adapted, x[0], "group-2")
    np.testing.assert_allclose(model.weights(x[0], user="group-2"), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(model.weights(x[0], user=model.user("group-2")), want, rtol=1e-5, atol=1e-7)
    # A user of the table not adapted: the gate with their row.
    unadapted = micro.Model.load(trained)
    np.testing.assert_allclose(unadapted.weights(x[0], user="group-2"), router(trained, x[0], "group-2"), rtol=1e-5, atol=1e-7)
    # Anyone else: the router alone.
    np.testing.assert_array_equal(unadapted.weights(x[0], user="stranger"), unadapted.weights(x[0]))

    # The reward mixes each head's with those weights, row by row or one router input for all.
    h = micro.Cache.load(synth).chosen[:5]
    r = model.rewards(h)
    per_row = model.score(h, x, user="group-2")
    for i in range(5):
        w = model.weights(x[i], user="group-2")
        assert per_row[i] == pytest.approx(float(w @ r[i]), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(model.score(h, x[0], user="group-2"), r @ model.weights(x[0], user="group-2"), rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError):
        model.user("nobody")


def test_feedback_is_the_bayesian_hedge_update(synth, trained):
    model = micro.Model.load(trained)
    cache = micro.Cache.load(synth)
    user = model.new_user("someone")
    prior = user.weights
    assert prior.shape == (model.k + 1,) and prior.sum() == pytest.approx(1.0, abs=1e-6)

    c, r, x = cache.chosen[:1], cache.rejected[:1], cache.context_prompt[0]
    model.feedback(user, c, r, x)
    assert user.updates == 1
    # w_e ∝ prior_e sigma(m_e): each head's margin, and the gate's, the log-odds of its mixture.
    delta = model.rewards(c)[0] - model.rewards(r)[0]
    f = router(trained, x)
    sig = lambda m: 1 / (1 + np.exp(-m))
    mix = lambda d: np.log(np.sum(f * sig(d)))
    margins = np.append(delta, mix(delta) - mix(-delta))
    want = prior * sig(margins)
    np.testing.assert_allclose(user.weights, want / want.sum(), rtol=1e-4)

    back = micro.UserState.from_dict(user.to_dict(), "someone")
    np.testing.assert_array_equal(back.weights, user.weights)
    assert model.fit(user)["kind"] in ("head", "shared")


def test_feedback_and_a_users_scores_are_the_servers(server, synth, trained):
    """The server's Hedge update (the experts' prior, the Bayesian rate, every expert's margin
    with the gate routed on the context and the user's table row) and its scoring of a user."""
    model = micro.Model.load(trained)
    cache = micro.Cache.load(synth)
    user = model.new_user("group-2")
    rows = [0, 5, 9, 14]
    for i in rows:
        body = {"chosen_embedding": cache.chosen[i].tolist(), "rejected_embedding": cache.rejected[i].tolist()}
        view = v1(server, "/v1/users/group-2/feedback", {**body, "context_embedding": cache.context_prompt[i].tolist()})
    model.feedback(user, cache.chosen[rows], cache.rejected[rows], cache.context_prompt[rows])
    assert user.updates == view["updates"] == len(rows)
    np.testing.assert_array_equal(user.weights, f32(view["weights"]))
    assert model.fit(user) == view["fit"]

    x, h = cache.context_prompt[3], cache.chosen[:6]
    answer = v1_score(server, {"response_embeddings": h.tolist(), "context_embedding": x.tolist(), "user_id": "group-2"})
    np.testing.assert_array_equal(model.score(h, x, user=user), f32(answer["rewards"]))
    np.testing.assert_array_equal(model.weights(x, user=user), f32(answer["weights"]))


def test_the_next_question_is_the_comparison_the_experts_disagree_on(synth, trained):
    model = micro.Model.load(trained)
    cache = micro.Cache.load(synth)
    d = model.rewards(cache.chosen) - model.rewards(cache.rejected)
    split = int(np.argmax(d[:, : model.k - 1].std(axis=1)))
    # Candidate 0 compares a response with itself: its answer tells nothing.
    first = np.stack([cache.chosen[0], cache.chosen[split]])
    second = np.stack([cache.chosen[0], cache.rejected[split]])
    x = np.stack([cache.context_prompt[0], cache.context_prompt[split]])
    q = model.next_question(model.new_user(), first, second, x)
    assert q["index"] == 1
    assert 0 < q["information"] <= np.log(2)


def test_the_distributions_reward_client_reaches_the_same_server(server, synth, trained):
    import micro_client
    from conftest import ROOT

    # Installed with micro, from the sources clients/python links to.
    installed = Path(micro_client.__file__).parent
    assert installed.parent == Path(micro.__file__).parent.parent
    for source in (ROOT / "python" / "micro_client").glob("*.py"):
        assert (installed / source.name).read_text() == source.read_text(), source.name
    assert callable(micro_client.openrlhf.reward_func) and callable(micro_client.verl.compute_score)
    assert callable(micro_client.trl.micro_reward)

    url, key = server
    cache = micro.Cache.load(synth)
    x, h = cache.context_prompt[3], cache.chosen[:2]
    answer = micro_client.MicroClient(url=url, api_key=key).post(
        "/v1/score", {"response_embeddings": h.tolist(), "context_embedding": x.tolist()}
    )
    np.testing.assert_array_equal(micro.Model.load(trained).score(h, x), np.asarray(answer["rewards"], np.float32))
