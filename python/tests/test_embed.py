"""Embedding through Python is `micro embed`: the same cache from the same pairs with
all-MiniLM-L6-v2 (fetched by scripts/setup.sh; MICRO_MINILM_DIR names another copy), and the
same vectors one text at a time into numpy."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import micro
from conftest import assert_same_tensors, cli

PAIRS = [
    {"prompt": "How do I boil an egg?", "chosen": "Nine minutes, then cold water.", "rejected": "Microwave it.", "context": "I like short answers.", "user_id": "ann"},
    {"prompt": "How do I boil an egg?", "chosen": "Put it in boiling water for nine minutes, then cool it.", "rejected": "Nine minutes.", "context": "I want every detail explained.", "split": "test"},
    {"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Is it going to rain?"}], "chosen": "Probably, take an umbrella.", "rejected": "Who knows.", "attribute": "helpful"},
    {"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven.", "user_id": "bob"},
]


def minilm() -> Path:
    home = os.environ.get("MICRO_HOME") or Path(os.environ.get("HOME", "")) / ".cache" / "micro"
    path = Path(os.environ.get("MICRO_MINILM_DIR") or Path(home) / "models" / "all-MiniLM-L6-v2")
    if not (path / "model.safetensors").is_file():
        pytest.fail(f"all-MiniLM-L6-v2 is not in {path}: run `bash scripts/setup.sh` (or set MICRO_MINILM_DIR)")
    return path


def test_embed_pairs_makes_the_cache_micro_embed_makes(tmp_path):
    # In a folder whose name reads as no split (the loader takes "test" in it as one).
    (tmp_path / "data").mkdir()
    pairs_file = tmp_path / "data" / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    cli("embed", "--model", minilm(), "--pairs", pairs_file, "-o", tmp_path / "cli")

    backbone = micro.Backbone.load(minilm())
    assert (backbone.dim, backbone.prompt_dim) == (384, 384)
    events = []
    cache = backbone.embed_pairs(PAIRS, tmp_path / "py", progress=events.append)
    assert len(cache) == 4 and events[-1]["done"] == events[-1]["total"]
    assert_same_tensors(tmp_path / "py" / "embeddings.safetensors", tmp_path / "cli" / "embeddings.safetensors")
    assert (tmp_path / "py" / "pairs.jsonl").read_text() == (tmp_path / "cli" / "pairs.jsonl").read_text()
    meta = lambda d: {k: v for k, v in json.loads((d / "meta.json").read_text()).items() if k != "embed"}
    assert meta(tmp_path / "py") == meta(tmp_path / "cli")

    # One text at a time into numpy: the cache's rows (up to the batching's float noise).
    prompts = [p["prompt"] for p in PAIRS]
    contexts = [p.get("context") for p in PAIRS]
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    close(backbone.embed_responses(prompts, [p["chosen"] for p in PAIRS]), cache.chosen)
    close(backbone.embed_responses(prompts, [p["rejected"] for p in PAIRS], contexts), cache.rejected)
    close(backbone.embed_prompts(prompts), cache.prompt)
    close(backbone.embed_prompts(prompts, contexts), cache.context_prompt)
