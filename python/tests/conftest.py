"""What the tests of the micro package share: the `micro` binary they compare with (built by
`cargo test --release` or `cargo build --release`; MICRO_BIN names another), caches it makes,
and a reader of safetensors files (numpy alone)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def micro_bin() -> Path:
    """The `micro` binary: MICRO_BIN, else release/micro in CARGO_TARGET_DIR or target/."""
    if os.environ.get("MICRO_BIN"):
        return Path(os.environ["MICRO_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return target / "release" / "micro"


def cli(*args, check=True) -> subprocess.CompletedProcess:
    """Runs `micro ARGS...`; with `check`, fails the test (with its stderr) if it fails."""
    binary = micro_bin()
    if not binary.is_file():
        pytest.fail(f"{binary} is missing: build it with `cargo build --release` (or set MICRO_BIN)")
    out = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True)
    if check and out.returncode != 0:
        pytest.fail(f"micro {' '.join(map(str, args))} failed:\n{out.stderr}")
    return out


def cli_error(*args) -> str:
    """The one-line message `micro ARGS...` fails with (without its `error: ` prefix)."""
    out = cli(*args, check=False)
    assert out.returncode == 2, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), out.stderr
    return line[len("error: "):]


def read_safetensors(path) -> dict:
    """Every tensor of a safetensors file, as float32 numpy arrays."""
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + start : 8 + n + end], dtype="<f4").reshape(info["shape"])
    return out


def write_safetensors(path, tensors: dict) -> None:
    """Writes float32 arrays as a safetensors file, whatever their values (NaN included)."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    Path(path).write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def assert_same_tensors(a, b) -> None:
    """Two safetensors files hold the same tensors, bit for bit."""
    ta, tb = read_safetensors(a), read_safetensors(b)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        np.testing.assert_array_equal(ta[name], tb[name], err_msg=name)


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Path:
    """A small `micro synth` cache: 4 groups of users, half of the pairs with their group's
    context and half known by user id alone, a test split."""
    path = tmp_path_factory.mktemp("synth") / "cache"
    cli("synth", "-o", path, "--pairs", "1200", "--dim", "16", "--seed", "3", "--context-fraction", "0.5")
    return path


@pytest.fixture(scope="session")
def trained(synth, tmp_path_factory) -> Path:
    """The model `micro train` makes of `synth` with every default."""
    path = tmp_path_factory.mktemp("trained") / "model"
    cli("train", "--cache", synth, "-o", path)
    return path
