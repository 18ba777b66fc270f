"""Stage 2 and evaluation through Python are `micro adapt` and `micro eval`: the same adapted
model and user states, the same report."""

import json

import pytest

import micro
from conftest import assert_same_tensors, cli
from test_train import without_timings


@pytest.mark.parametrize("flags,kwargs", [([], {}), (["--select", "active", "--budget", "10", "--seed", "3"], {"select": "active", "budget": 10, "seed": 3})], ids=["random", "active"])
def test_adapt_makes_the_folder_micro_adapt_makes(synth, trained, tmp_path, flags, kwargs):
    cli("adapt", "--model", trained, "--cache", synth, "-o", tmp_path / "cli", *flags)
    adapted = micro.adapt(micro.Model.load(trained), micro.Cache.load(synth), **kwargs)
    adapted.save(tmp_path / "py")
    for name in ["model.safetensors", "evidence.safetensors"]:
        assert_same_tensors(tmp_path / "py" / name, tmp_path / "cli" / name)
    states = lambda d: [json.loads(l) for l in (d / "user-states.jsonl").read_text().splitlines()]
    assert states(tmp_path / "py") == states(tmp_path / "cli")
    config = lambda d: without_timings(json.loads((d / "config.json").read_text()))
    assert config(tmp_path / "py") == config(tmp_path / "cli")
    assert adapted.user("group-1").to_dict() == states(tmp_path / "cli")[0]["state"]


@pytest.mark.parametrize("split", ["test", "all"])
def test_evaluate_is_micro_eval_json(synth, trained, tmp_path, split):
    adapted = tmp_path / "adapted"
    cli("adapt", "--model", trained, "--cache", synth, "-o", adapted)
    cache = micro.Cache.load(synth)
    for folder in [trained, adapted]:
        cli("eval", "--model", folder, "--cache", synth, "--split", split, "--json", tmp_path / "eval.json")
        report = micro.evaluate(micro.Model.load(folder), cache, split=split, label=folder.name)
        assert report == json.loads((tmp_path / "eval.json").read_text())
    assert report["split"] == split and report["k"] == micro.Model.load(adapted).k
