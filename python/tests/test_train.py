"""Stage 1 through Python is `micro train`: the same cache and seed give the same tensors,
whichever way the cache comes in (its folder, a loaded `Cache`, numpy arrays), and the keywords
default to the command's flags."""

import inspect
import json
import re

import numpy as np
import pytest

import micro
from conftest import assert_same_tensors, cli

FLAG_RUNS = [
    ([], {}),
    (["--method", "single"], {"method": "single"}),
    (["--heads", "auto", "--cross-fit", "0"], {"heads": "auto", "cross_fit": 0}),
    (
        ["--lr", "0.01", "--alpha", "0.05", "--keep-heads", "--users", "off", "--router", "linear", "--seed", "7"],
        {"lr": 0.01, "alpha": 0.05, "keep_heads": True, "users": "off", "router": "linear", "seed": 7},
    ),
]


def without_timings(value):
    """A config.json without its wall-clock figures (they differ from run to run), its floats
    to 12 digits (serde_json reads the last digit of an f64 back approximately)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def assert_same_folder(ours, theirs):
    for name in ["model.safetensors", "evidence.safetensors"]:
        if (theirs / name).exists() or (ours / name).exists():
            assert_same_tensors(ours / name, theirs / name)
    for name in ["evidence.json", "users.json"]:
        assert (ours / name).exists() == (theirs / name).exists(), name
        if (theirs / name).exists():
            assert json.loads((ours / name).read_text()) == json.loads((theirs / name).read_text()), name
    ours_cfg = json.loads((ours / "config.json").read_text())
    theirs_cfg = json.loads((theirs / "config.json").read_text())
    assert without_timings(ours_cfg) == without_timings(theirs_cfg)


@pytest.mark.parametrize("flags,kwargs", FLAG_RUNS, ids=["defaults", "single", "auto-heads", "fixed-point"])
def test_train_on_a_folder_makes_the_model_micro_train_makes(synth, tmp_path, flags, kwargs):
    cli("train", "--cache", synth, "-o", tmp_path / "cli", *flags)
    model = micro.train(str(synth), **kwargs)
    model.save(tmp_path / "py")
    assert_same_folder(tmp_path / "py", tmp_path / "cli")


def test_a_loaded_cache_and_its_arrays_train_the_same_tensors(synth, trained, tmp_path):
    cache = micro.Cache.load(synth)
    micro.train(cache).save(tmp_path / "loaded")
    assert_same_folder(tmp_path / "loaded", trained)

    # The same pairs from numpy: their texts and ids are not given, so only the tensors (not
    # the hash of the pairs the config and the evidence name) are the CLI's.
    pairs = cache.pairs
    field = lambda name: [p.get(name) for p in pairs]
    arrays = micro.Cache.from_arrays(
        cache.chosen,
        cache.rejected,
        cache.prompt,
        context_prompt=cache.context_prompt,
        prompts=field("prompt"),
        contexts=field("context"),
        attributes=field("attribute"),
        users=field("user_id"),
        splits=field("split"),
    )
    micro.train(arrays).save(tmp_path / "arrays")
    for name in ["model.safetensors", "evidence.safetensors"]:
        assert_same_tensors(tmp_path / "arrays" / name, trained / name)


def test_a_saved_model_loads_and_saves_the_same_folder(trained, tmp_path):
    model = micro.Model.load(trained)
    assert (model.k, model.dim, model.prompt_dim) == (model.heads.shape[0], 16, 16)
    model.save(tmp_path / "again")
    assert_same_folder(tmp_path / "again", trained)


def test_progress_reports_the_search_the_epochs_and_the_folds(synth):
    events = []
    micro.train(str(synth), epochs=3, min_epochs=1, progress=events.append)
    trials = [e for e in events if e["event"] == "trial"]
    assert trials[0] == {"event": "trial", "index": 0, "total": trials[0]["total"], "shape": "one head", "alpha": 0.5, "lr": 0.002}
    assert [t["index"] for t in trials] == list(range(trials[0]["total"]))
    assert {e["stage"] for e in events if e["event"] == "epoch"} == {"search", "cross-fit"}
    assert [e["fold"] for e in events if e["event"] == "fold"] == [0, 1, 2, 3, 4]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert all(e["epoch"] <= 3 for e in epochs)


def help_defaults(command):
    """`micro COMMAND --help`'s flags and their defaults (`None` where it shows none), with
    dashes read as underscores."""
    text = cli(command, "--help").stdout
    out = {}
    for block in re.split(r"\n(?=\s*(?:-\w, )?--)", text):
        m = re.match(r"\s*(?:-\w, )?--([\w-]+)", block)
        if m:
            d = re.search(r"\[default: ([^\]]*)\]", block)
            out[m.group(1).replace("-", "_")] = d.group(1) if d else None
    return out


def python_defaults(function):
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def same_default(python, cli_text):
    if cli_text is None:
        return python in (None, False)
    if isinstance(python, bool):
        return str(python).lower() == cli_text
    if isinstance(python, (int, float)):
        return float(python) == float(cli_text)
    return python == cli_text


@pytest.mark.parametrize(
    "command,function,skip",
    [
        ("train", micro.train, {"progress"}),
        ("adapt", micro.adapt, set()),
        ("embed", micro.Backbone.load, set()),
    ],
)
def test_the_keywords_default_to_the_commands_flags(command, function, skip):
    flags = help_defaults(command)
    ours = {k: v for k, v in python_defaults(function).items() if k not in skip}
    assert ours, "no keyword defaults found"
    for name, value in ours.items():
        assert name in flags, f"{name} is not a flag of micro {command}"
        assert same_default(value, flags[name]), f"{name}: Python {value!r}, micro {command} {flags[name]!r}"


def stub_defaults(name, cls=None):
    """The defaults python/micro/_native.pyi declares for function `name` (of class `cls`)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(micro.__file__).parent / "_native.pyi").read_text())
    body = tree.body
    if cls:
        body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
    f = next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)
    a = f.args
    pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults)) + list(zip(a.kwonlyargs, a.kw_defaults))
    return {arg.arg: ast.literal_eval(d) for arg, d in pairs if d is not None}


@pytest.mark.parametrize(
    "function,name,cls",
    [
        (micro.train, "train", None),
        (micro.adapt, "adapt", None),
        (micro.evaluate, "evaluate", None),
        (micro.Backbone.load, "load", "Backbone"),
        (micro.Cache.from_arrays, "from_arrays", "Cache"),
    ],
)
def test_the_type_stubs_declare_the_modules_defaults(function, name, cls):
    assert stub_defaults(name, cls) == python_defaults(function)
