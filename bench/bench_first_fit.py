"""The first fit after installing, with and without compiling the kernels in the background.

A process that fits ``make_pipeline(StandardScaler(), LEGCPrunedClassifier(random_state=0))``
on breast cancer (the README's first example) finds numba's cache of sklegc's kernels
either empty (the first fit after installing: ``cold``) or filled (every later process:
``warm``). Each round gives two new, empty ``NUMBA_CACHE_DIR`` directories, one per
setting of ``SKLEGC_BACKGROUND_COMPILE`` (``1``, the default: the kernels compile in
background processes while this one imports torch and trains; ``0``: the first call of each
kernel compiles it in the process that needs it), and in each runs a cold process, then a
warm one. The settings alternate within a round, so that the machine's load falls on both.

Each process reports the wall time of its imports and data loading and of its ``fit``; the
table shows every round, and the fit's cold-minus-warm difference (the pause the first
fit adds) and the whole process's.

Target (issue "a first fit without a compile pause"): the cold fit at most 2 s more than a
warm one.

Usage::

    python bench/bench_first_fit.py                        # 3 rounds
    python bench/bench_first_fit.py --rounds 5 --json results/first_fit.json
    python bench/bench_first_fit.py --table docs/data/first_fit.json   # print a finished run
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
# The target: a cold fit at most this many seconds slower than a warm one.
_TARGET_S = 2.0

_FIT = """
import time
t0 = time.perf_counter()
from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklegc import LEGCPrunedClassifier
X, y = load_breast_cancer(return_X_y=True)
t1 = time.perf_counter()
make_pipeline(StandardScaler(), LEGCPrunedClassifier(random_state=0)).fit(X, y)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def _process(cache, switch):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, SKLEGC_BACKGROUND_COMPILE=switch,
               OMP_NUM_THREADS="1", PYTHONPATH=str(_ROOT), PYTHONWARNINGS="ignore")
    # cwd: "python -c" looks in the working directory first, which would time another
    # checkout's sklegc when the bench is run from one.
    done = subprocess.run([sys.executable, "-c", _FIT], env=env, check=True, cwd=_ROOT,
                          capture_output=True, text=True)
    load, fit = map(float, done.stdout.split())
    return {"load": load, "fit": fit}


def _round():
    row = {}
    for switch in ("1", "0"):
        with tempfile.TemporaryDirectory() as cache:
            row[switch] = {"cold": _process(cache, switch), "warm": _process(cache, switch)}
    return row


def _table(run):
    lines = [run["machine"], "",
             "| SKLEGC_BACKGROUND_COMPILE | round | cold: imports, fit (s) | warm: imports, "
             "fit (s) | fit, cold - warm (s) | process, cold - warm (s) |",
             "|---|---|---|---|---|---|"]
    gaps = {"1": [], "0": []}
    totals = {"1": [], "0": []}
    for i, row in enumerate(run["rounds"], 1):
        for switch in ("1", "0"):
            cold, warm = row[switch]["cold"], row[switch]["warm"]
            fit_gap = cold["fit"] - warm["fit"]
            total_gap = cold["load"] + cold["fit"] - warm["load"] - warm["fit"]
            gaps[switch].append(fit_gap)
            totals[switch].append(total_gap)
            lines.append(f"| {switch} | {i} | {cold['load']:.1f}, {cold['fit']:.1f} | "
                         f"{warm['load']:.1f}, {warm['fit']:.1f} | {fit_gap:+.1f} | "
                         f"{total_gap:+.1f} |")
    lines.append("")
    for switch, label in (("1", "in the background (default)"), ("0", "in the process")):
        fit, total = sorted(gaps[switch]), sorted(totals[switch])
        within = sum(gap <= _TARGET_S for gap in fit)
        lines.append(f"- compiled {label}: the cold fit takes {statistics.median(fit):.1f} s "
                     f"more than a warm one ({fit[0]:.1f}-{fit[-1]:.1f}; target <= "
                     f"{_TARGET_S:g}, met in {within} of {len(fit)} rounds), the whole process "
                     f"{statistics.median(total):.1f} s ({total[0]:.1f}-{total[-1]:.1f}); "
                     f"medians of {len(fit)}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--table", metavar="JSON", help="only print the results of a run")
    args = parser.parse_args(argv)
    if args.table:
        print(_table(json.loads(Path(args.table).read_text())))
        return 0
    import numba
    import torch

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=_ROOT).stdout.strip() or "unknown"
    run = {"machine": f"commit {commit}, {platform.machine()}, {os.cpu_count()} cores, load "
                      f"average {os.getloadavg()[0]:.1f} at the start, Python "
                      f"{platform.python_version()}, torch {torch.__version__}, numba "
                      f"{numba.__version__}, one torch thread",
           "rounds": []}
    for i in range(args.rounds):
        run["rounds"].append(_round())
        print(f"round {i + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(run, indent=1) + "\n")
    print(_table(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
