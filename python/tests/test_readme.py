"""The README's Python example runs as written and says what it shows: the first Python block
of its `## Python` section, from numpy arrays to a per-user reward and a model folder."""

import re

import numpy as np

import micro
from conftest import ROOT


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Python\n") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(readme_example(), "README.md (## Python)", "exec"), scope)
    reward, ann, model, a = scope["reward"], scope["ann"], scope["model"], scope["a"]
    assert reward.shape == (5,) and ann.updates == 10
    # Ten answers were enough: a head of ann's own, and her rewards fall as feature 0 rises.
    assert model.fit(ann)["kind"] == "head"
    assert list(np.argsort(reward)) == list(np.argsort(-a[:5, 0]))
    saved = micro.Model.load(tmp_path / "model")
    np.testing.assert_array_equal(saved.heads, model.heads)
