"""Bad input raises the right exception with the message `micro` prints for it: ValueError
for a wrong shape, NaN, a model/cache mismatch or a bad setting, FileNotFoundError for a
folder that is not there."""

import shutil

import numpy as np
import pytest

import micro
from conftest import cli, cli_error, read_safetensors, write_safetensors


def broken_cache(synth, path, edit):
    """`synth`'s pairs with its tensors edited by `edit(tensors)`."""
    path.mkdir()
    shutil.copy(synth / "pairs.jsonl", path / "pairs.jsonl")
    tensors = {k: v.copy() for k, v in read_safetensors(synth / "embeddings.safetensors").items()}
    edit(tensors)
    write_safetensors(path / "embeddings.safetensors", tensors)
    return path


def test_a_rejected_array_of_another_width_is_refused_as_micro_train_refuses_it(synth, tmp_path):
    def narrow(t):
        t["rejected_embeddings"] = t["rejected_embeddings"][:, :12]

    bad = broken_cache(synth, tmp_path / "bad", narrow)
    expected = cli_error("train", "--cache", bad, "-o", tmp_path / "m")
    with pytest.raises(ValueError) as e:
        micro.train(str(bad))
    assert "has shape [1200, 12] but chosen_embeddings [1200, 16]" in str(e.value)
    assert expected.endswith(str(e.value)), expected

    # Arrays from numpy are refused by the cache's own check.
    c = read_safetensors(synth / "embeddings.safetensors")
    with pytest.raises(ValueError, match="rejected_embeddings: width 12 differs from chosen's 16"):
        micro.Cache.from_arrays(c["chosen_embeddings"], c["chosen_embeddings"][:, :12], c["prompt_embeddings"])
    with pytest.raises(ValueError, match=r"`prompts` has 3 entries for 1200 pairs: give one per pair"):
        micro.Cache.from_arrays(c["chosen_embeddings"], c["rejected_embeddings"], c["prompt_embeddings"], prompts=["a", "b", "c"])


def test_nan_is_refused_as_micro_train_refuses_it(synth, trained, tmp_path):
    def poison(t):
        t["chosen_embeddings"][5, 2] = np.nan

    bad = broken_cache(synth, tmp_path / "nan", poison)
    expected = cli_error("train", "--cache", bad, "-o", tmp_path / "m")
    for load in [lambda: micro.train(str(bad)), lambda: micro.Cache.load(bad)]:
        with pytest.raises(ValueError) as e:
            load()
        assert "tensor `chosen_embeddings` row 5 column 2 is NaN (NaN/Inf are not allowed)" in str(e.value)
        assert expected.endswith(str(e.value)), expected

    c = read_safetensors(bad / "embeddings.safetensors")
    with pytest.raises(ValueError, match=r"`chosen` row 5 column 2 is NaN \(NaN/Inf are not allowed\)"):
        micro.Cache.from_arrays(c["chosen_embeddings"], c["rejected_embeddings"], c["prompt_embeddings"])
    model = micro.Model.load(trained)
    x = c["prompt_embeddings"][0]
    with pytest.raises(ValueError, match=r"`responses` row 5 column 2 is NaN"):
        model.score(c["chosen_embeddings"], x)


def test_wrong_widths_and_lengths_of_scoring_arguments_are_refused(trained):
    model = micro.Model.load(trained)
    with pytest.raises(ValueError, match=r"`responses` has shape \[3, 5\]; expected \[n, 16\] \(float32\)"):
        model.rewards(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"`prompt` has shape \[7\]; expected \[16\] or \[n, 16\]"):
        model.score(np.zeros((3, 16), np.float32), np.zeros(7, np.float32))
    with pytest.raises(ValueError, match=r"`prompt` has 2 entries for 3 pairs"):
        model.score(np.zeros((3, 16), np.float32), np.zeros((2, 16), np.float32))
    with pytest.raises(ValueError, match=r"give `prompt`"):
        model.score(np.zeros((3, 16), np.float32))


def test_a_model_refuses_a_cache_of_other_vectors_as_micro_adapt_and_micro_eval_do(trained, tmp_path):
    other = tmp_path / "other"
    cli("synth", "-o", other, "--pairs", "300", "--dim", "8")
    model, cache = micro.Model.load(trained), micro.Cache.load(other)

    expected = cli_error("adapt", "--model", trained, "--cache", other, "-o", tmp_path / "a")
    with pytest.raises(ValueError) as e:
        micro.adapt(model, cache)
    assert str(e.value) == expected
    assert "the model reads 16-d responses and 16-d prompts, the cache has 8-d and 8-d" in expected

    expected = cli_error("eval", "--model", trained, "--cache", other)
    with pytest.raises(ValueError) as e:
        micro.evaluate(model, cache, label=trained.name)
    assert str(e.value) == expected


def test_bad_settings_say_what_to_use(synth, trained):
    expected = cli_error("train", "--cache", synth, "-o", "unused", "--epochs", "0")
    with pytest.raises(ValueError) as e:
        micro.train(str(synth), epochs=0)
    assert str(e.value) == expected == "invalid training setting: 0 epochs: train for 1 or more epochs"
    with pytest.raises(ValueError, match='unknown method "mixture": use micro, single, static or shared-base'):
        micro.train(str(synth), method="mixture")
    with pytest.raises(ValueError, match='unknown router "deep": use mlp or linear'):
        micro.train(str(synth), router="deep")
    with pytest.raises(ValueError, match='unknown selection "greedy": use random or active'):
        micro.adapt(micro.Model.load(trained), micro.Cache.load(synth), select="greedy")


def test_missing_folders_raise_file_not_found(tmp_path):
    missing = tmp_path / "nothing"
    for load in [micro.Cache.load, micro.Model.load, micro.train, micro.Backbone.load]:
        with pytest.raises(FileNotFoundError):
            load(missing)
