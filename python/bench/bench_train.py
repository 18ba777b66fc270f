"""Stage 1 through Python against `micro train` on the same cache: the wall time of a few runs
of each, alternated so that both see the same machine, as mean ± std.

The CLI's time is its whole process (reading the cache, the held-out search, training, the
cross-fit, writing the folder); Python's is `micro.train(folder).save(out)` in this process,
the same work with the same defaults. Wall time and CPU time (every thread's) are both shown:
on a shared machine the CPU time is the steadier of the two.

    python python/bench/bench_train.py [--cache DIR | --pairs 8000 --dim 64] [--runs 5]

The `micro` binary is MICRO_BIN, else release/micro in CARGO_TARGET_DIR or target/.
"""

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import micro

ROOT = Path(__file__).resolve().parents[2]


def micro_bin() -> str:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return os.environ.get("MICRO_BIN") or str(target / "release" / "micro")


def timed(call, who) -> tuple:
    """(wall seconds, CPU seconds of every thread) of `call()`; `who` is RUSAGE_SELF for work
    in this process, RUSAGE_CHILDREN for a subprocess."""
    cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(who))
    start, start_cpu = time.perf_counter(), cpu()
    call()
    return time.perf_counter() - start, cpu() - start_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", help="a cache folder (default: a `micro synth` cache made here)")
    ap.add_argument("--pairs", type=int, default=8000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = a.cache or f"{tmp}/cache"
        if not a.cache:
            synth = ["synth", "-o", cache, "--pairs", str(a.pairs), "--dim", str(a.dim), "--seed", "1"]
            subprocess.run([micro_bin(), *synth], check=True, capture_output=True)
        cli = lambda: subprocess.run([micro_bin(), "train", "--cache", cache, "-o", f"{tmp}/cli"], check=True, capture_output=True)
        py = lambda: micro.train(cache).save(f"{tmp}/py")
        times = {"micro train": [], "micro.train": []}
        for _ in range(a.runs):
            times["micro train"].append(timed(cli, resource.RUSAGE_CHILDREN))
            times["micro.train"].append(timed(py, resource.RUSAGE_SELF))
        same = (Path(f"{tmp}/cli/model.safetensors").read_bytes() == Path(f"{tmp}/py/model.safetensors").read_bytes())
    print(f"Stage 1 on {cache if a.cache else f'micro synth --pairs {a.pairs} --dim {a.dim}'}, {a.runs} runs each")
    for name, runs in times.items():
        wall, cpu = np.array(runs).T
        print(f"{name:12} wall {np.mean(wall):6.2f} ± {np.std(wall, ddof=1):.2f} s (median {np.median(wall):.2f}),"
              f" CPU {np.mean(cpu):6.2f} ± {np.std(cpu, ddof=1):.2f} s   wall: {', '.join(f'{v:.2f}' for v in wall)}")
    py_, cli_ = (np.array(times[n]) for n in ("micro.train", "micro train"))
    change = lambda f, col: (f(py_[:, col]) / f(cli_[:, col]) - 1) * 100
    print(f"Python against the CLI: wall {change(np.mean, 0):+.1f}% (means), {change(np.median, 0):+.1f}% (medians);"
          f" CPU {change(np.mean, 1):+.1f}% (means)")
    print(f"the same model.safetensors: {same}")


if __name__ == "__main__":
    main()
