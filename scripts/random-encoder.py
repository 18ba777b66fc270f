#!/usr/bin/env python3
"""A random-weight copy of an encoder folder, for throughput runs where its 87 MB of weights
cannot travel (the device check carries at most 64 MiB).

  python3 scripts/random-encoder.py shape SRC DST   # DST: SRC's small files and its tensors' names,
                                                    # shapes and dtypes (tensors.json), no weights
  python3 scripts/random-encoder.py fill DST        # DST/model.safetensors: the same tensors,
                                                    # N(0, 0.02) values (layer-norm scales 1)

Standard library only. The values do not matter for speed; they are random rather than zero so
that no kernel meets a degenerate input (a layer norm of a constant row).
"""
import json
import random
import shutil
import struct
import sys
from array import array
from pathlib import Path

SMALL = 4 << 20  # files copied as they are (tokenizer, configs); the weights are not


def shape(src: Path, dst: Path) -> None:
    weights = src / "model.safetensors"
    if not weights.is_file():
        sys.exit(f"{weights} is missing: SRC must be an encoder folder with model.safetensors")
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.rglob("*"):
        if f.is_file() and f.name != "model.safetensors" and f.stat().st_size <= SMALL:
            out = dst / f.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out)
    with open(weights, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    tensors = {
        k: {"dtype": v["dtype"], "shape": v["shape"]} for k, v in header.items() if k != "__metadata__"
    }
    (dst / "tensors.json").write_text(json.dumps(tensors, indent=1, sort_keys=True))
    print(f"{dst}: {len(tensors)} tensors described, weights left behind")


def fill(dst: Path) -> None:
    spec = dst / "tensors.json"
    if not spec.is_file():
        sys.exit(f"{spec} is missing: run `shape SRC {dst}` first")
    tensors = json.loads(spec.read_text())
    rng = random.Random(0)
    # One block of normal draws, tiled: a fresh draw per value would take minutes in Python.
    block = array("f", (rng.gauss(0.0, 0.02) for _ in range(1 << 16)))
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        count = 1
        for s in t["shape"]:
            count *= s
        if name.endswith(("LayerNorm.weight", "layer_norm.weight", "ln.weight")):
            values = array("f", [1.0]) * count
        else:
            values = (block * (count // len(block) + 1))[:count]
        data = values.tobytes()
        header[name] = {"dtype": "F32", "shape": t["shape"], "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(dst / "model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(head)))
        fh.write(head)
        for c in chunks:
            fh.write(c)
    print(f"{dst}/model.safetensors: {len(header)} tensors, {offset / 1e6:.1f} MB of random f32")


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "shape":
        shape(Path(args[1]), Path(args[2]))
    elif len(args) == 2 and args[0] == "fill":
        fill(Path(args[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
