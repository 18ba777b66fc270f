"""Arrays of 100k x 768 into micro: what `Cache.from_arrays` and `Model.score` copy, in memory
and time, for each numpy layout and float type.

Each case runs in a fresh process (Linux: it reads /proc/self/status). "extra" is the peak
resident memory during the call (VmHWM, reset just before it) minus the resident memory before
it; "kept" is what is still resident after it (the cache's own arrays). One array of
100k x 768 float32 is 293 MiB.

    python python/bench/bench_arrays.py [--rows 100000] [--dim 768] [--repeats 3]
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

import micro

MIB = 2**20

LAYOUTS = {
    "float32, C-contiguous": lambda a: a,
    "float32, Fortran order": np.asfortranarray,
    "float32, every other row": lambda a: np.repeat(a, 2, axis=0)[::2],
    "float64": lambda a: a.astype(np.float64),
    "float16": lambda a: a.astype(np.float16),
}


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def measured(call):
    """(seconds, extra MiB at the peak, MiB still resident after) of `call()`, and its result."""
    before = status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
    start = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - start
    return (seconds, (status_kib("VmHWM") - before) / 1024, (status_kib("VmRSS") - before) / 1024), out


def case(kind: str, layout: str, rows: int, dim: int, repeats: int, model_dir: str) -> dict:
    """One layout through `from_arrays` or `score`, measured `repeats` times in this process."""
    rng = np.random.default_rng(0)
    make = lambda: LAYOUTS[layout](rng.standard_normal((rows, dim), dtype=np.float32))
    if kind == "from_arrays":
        chosen, rejected, prompt = make(), make(), make()
        call = lambda: micro.Cache.from_arrays(chosen, rejected, prompt)
    else:
        model = micro.Model.load(model_dir)
        responses, x = make(), rng.standard_normal(dim, dtype=np.float32)
        call = lambda: model.score(responses, x)
    runs = []
    for _ in range(repeats):
        m, out = measured(call)
        runs.append(m)
        del out
    seconds = [r[0] for r in runs]
    return {
        "kind": kind,
        "layout": layout,
        "seconds_mean": float(np.mean(seconds)),
        "seconds_std": float(np.std(seconds, ddof=1)) if repeats > 1 else 0.0,
        "seconds": seconds,
        "extra_mib": max(r[1] for r in runs),
        "kept_mib": runs[0][2],
    }


def scoring_model(dim: int, folder: str) -> None:
    """A small model over `dim`-wide embeddings (K = 4 heads and a router) saved in `folder`."""
    rng = np.random.default_rng(1)
    n = 2000
    c, r, p = (rng.standard_normal((n, dim), dtype=np.float32) for _ in range(3))
    cache = micro.Cache.from_arrays(c, r, p)
    micro.train(cache, heads=4, epochs=2, min_epochs=1, lr=1e-3, alpha=0.0, cross_fit=0).save(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--case", nargs=3, metavar=("KIND", "LAYOUT", "MODEL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.case:
        kind, layout, model_dir = a.case
        print(json.dumps(case(kind, layout, a.rows, a.dim, a.repeats, model_dir)))
        return
    one = a.rows * a.dim * 4 / MIB
    print(f"{a.rows} x {a.dim}: one float32 array is {one:.0f} MiB; mean ± std of {a.repeats} calls")
    with tempfile.TemporaryDirectory() as tmp:
        scoring_model(a.dim, tmp)
        for kind, what in [("from_arrays", "Cache.from_arrays(chosen, rejected, prompt)"), ("score", "Model.score(responses, prompt)")]:
            print(f"\n{what}\n{'layout':28} {'time (s)':>16} {'extra peak MiB':>15} {'kept MiB':>9}   each call (s)")
            for layout in LAYOUTS:
                args = [sys.executable, __file__, "--rows", str(a.rows), "--dim", str(a.dim), "--repeats", str(a.repeats)]
                out = subprocess.run([*args, "--case", kind, layout, tmp], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout)
                t = f"{r['seconds_mean']:.3f} ± {r['seconds_std']:.3f}"
                each = ", ".join(f"{v:.3f}" for v in r["seconds"])
                print(f"{layout:28} {t:>16} {r['extra_mib']:>15.0f} {r['kept_mib']:>9.0f}   {each}")


if __name__ == "__main__":
    main()
