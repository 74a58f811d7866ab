"""Time the batched kernels on the LEGCNet paper's MNIST workload.

The 784-50-30-10 network has 41,000 weights; 50 epochs give 19,150 optimizer steps, cut
into 106 windows of 200 steps. This script times, on synthetic data of that size:

- Lyapunov: ``sklegc.lyapunov.max_lyapunov`` on all weights x windows at once, against
  per-window implementations (``nolds.lyap_r`` and a plain numpy one) timed on a subset
  and scaled linearly, and against the authors' TISEAN figure quoted in docs/method.md;
- Granger: ``sklegc.granger.granger_tests`` on all weights at once, against a loop of
  ``statsmodels.tsa.stattools.grangercausalitytests`` on a subset, scaled linearly.

Run from the repository root::

    python bench/bench_kernels.py [--weights 41000] [--windows 106] [--part all]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sklegc.windows import window_stride  # noqa: E402

# docs/method.md, "What the paper's pipeline costs": one TISEAN lyap_r process per window and
# one statsmodels call per weight, measured on a 2-core machine.
TISEAN_S_PER_WINDOW = 1.5e-3
STATSMODELS_S_PER_WEIGHT = 16.6e-3
WINDOW_SIZE = 200
OVERLAP = 0.1
MAXLAG = 14
TARGET_LYAPUNOV_S = 20.0
TARGET_GRANGER_S = 2.0
TARGET_SPEEDUP = 300.0


def _fmt_s(seconds):
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.1f} ms"


def _maxrss_bytes():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def random_walk_windows(n_weights, n_windows, window_size, seed):
    """Windows of synthetic float32 weight trajectories, as a strided view without copies.

    The trajectories of all weights are laid end to end, one window stride apart, so that
    window ``i`` starts at ``i * stride`` of one buffer and the whole (n_weights *
    n_windows, window_size) array is a view: 3.1 GB for the paper's workload instead of
    3.5 GB of copied windows. Steps are N(0, 1e-3) (the scale of SGD updates); the walk
    restarts at a random level every 2^20 steps, which keeps float32 precise.
    """
    stride = window_stride(window_size, OVERLAP)
    n_rows = n_weights * n_windows
    buf = np.empty(n_rows * stride + window_size - stride, dtype=np.float32)
    rng = np.random.default_rng(seed)
    block = 1 << 20
    for start in range(0, buf.size, block):
        steps = rng.standard_normal(min(block, buf.size - start)) * 1e-3
        steps[0] = rng.normal(0.0, 0.05)
        buf[start:start + steps.size] = np.cumsum(steps)
    windows = np.lib.stride_tricks.as_strided(
        buf, shape=(n_rows, window_size), strides=(stride * 4, 4), writeable=False)
    return windows, buf.nbytes


def numpy_lyapunov_window(x, m=2, d=1, S=3, t=0, static_tol=1e-5):
    """docs/method.md (section 3) for one window with numpy: all pairs, no batching over windows."""
    x = np.asarray(x, dtype=np.float64)
    lo = x.min()
    span = x.max() - lo
    if span < static_tol:
        return 0.0
    x = (x - lo) / span
    M = x.size - (m - 1) * d
    C = M - S
    R = C - t
    v = np.stack([x[k * d: k * d + M] for k in range(m)], axis=1)
    d2 = np.zeros((R, C))
    for k in range(m):
        d2 += (v[:R, None, k] - v[None, :C, k]) ** 2
    idx = np.arange(C)
    ok = (np.abs(idx[:R, None] - idx[None, :]) > t) & (d2 > 0) & (d2 < 1)
    d2 = np.where(ok, d2, np.inf)
    best = d2.min(axis=1)
    found = np.isfinite(best)
    j = np.where(d2 == best[:, None], idx, -1).max(axis=1)
    n = np.arange(R)[found]
    j = j[found]
    y = []
    for i in range(2):
        e = ((v[n + i] - v[j + i]) ** 2).sum(axis=1)
        e = e[e > 0]
        if e.size == 0:
            return 0.0
        y.append(np.log(e).mean() / 2)
    return y[1] - y[0]


def _compile_seconds():
    """Seconds of numba compilation: first call in a fresh process with an empty cache."""
    code = textwrap.dedent("""
        import time, numpy as np
        from sklegc.lyapunov import max_lyapunov
        x = np.random.default_rng(0).standard_normal((4, 200)).cumsum(axis=1)
        t0 = time.perf_counter()
        max_lyapunov(x)
        print(time.perf_counter() - t0)
    """)
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=root)
        cold = subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=root,
                              capture_output=True, text=True)
        warm = subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=root,
                              capture_output=True, text=True)
    return float(cold.stdout.split()[-1]), float(warm.stdout.split()[-1])


def bench_lyapunov(args):
    from sklegc.lyapunov import max_lyapunov
    from sklegc.threads import kernel_threads

    n_windows_total = args.weights * args.windows
    print(f"== Lyapunov: {args.weights:,} weights x {args.windows} windows of {WINDOW_SIZE} "
          f"steps = {n_windows_total:,} windows (float32 random walks) ==")
    cold, cached = _compile_seconds()
    print(f"numba compile (first call, empty cache): {_fmt_s(cold)}; "
          f"first call with the on-disk cache: {_fmt_s(cached)} (both excluded below)")

    t0 = time.perf_counter()
    windows, nbytes = random_walk_windows(args.weights, args.windows, WINDOW_SIZE, args.seed)
    print(f"data: {windows.shape} float32 view of a {nbytes / 2**30:.2f} GiB "
          f"buffer, generated in {_fmt_s(time.perf_counter() - t0)}")
    max_lyapunov(windows[:64])

    rss0 = _maxrss_bytes()
    tracemalloc.start()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    le = max_lyapunov(windows)
    ours = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_extra = max(0, _maxrss_bytes() - rss0)
    per_window = ours / n_windows_total
    print(f"ours: max_lyapunov on all {n_windows_total:,} windows: {_fmt_s(ours)} "
          f"({per_window * 1e6:.2f} us/window, {kernel_threads()} threads, "
          f"CPU time {_fmt_s(cpu)})")
    print(f"  extra memory: peak traced by tracemalloc {traced_peak / 2**20:.0f} MiB, "
          f"peak RSS growth {rss_extra / 2**20:.0f} MiB (limit 1024 MiB)")
    print(f"  exponents: mean {le.mean():.4f}, share of zeros {np.mean(le == 0):.4f}")

    rows = []
    sub = windows[:: max(1, n_windows_total // args.ref_windows)][: args.ref_windows]
    t0 = time.perf_counter()
    c0 = time.process_time()
    ref_np = np.array([numpy_lyapunov_window(x) for x in sub])
    t_np = (time.perf_counter() - t0) / len(sub)
    c_np = (time.process_time() - c0) / len(sub)
    ours_sub = max_lyapunov(sub)
    agree = np.max(np.abs(ref_np - ours_sub))
    rows.append(("numpy, one window at a time", t_np, c_np, len(sub),
                 f"max |difference| to ours {agree:.1e}"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import nolds
    except ImportError:
        print("  (nolds not installed: its row is skipped)")
    else:
        few = sub[: args.ref_nolds]
        t0 = time.perf_counter()
        c0 = time.process_time()
        for x in few:
            y = np.asarray(x, dtype=np.float64)
            nolds.lyap_r((y - y.min()) / (y.max() - y.min()), emb_dim=2, lag=1, min_tsep=0,
                         trajectory_len=4, fit="poly")
        t_nolds = (time.perf_counter() - t0) / len(few)
        c_nolds = (time.process_time() - c0) / len(few)
        rows.append(("nolds.lyap_r, one window at a time", t_nolds, c_nolds, len(few),
                     "its own fit, not y1 - y0: timing only"))
    print("reference per-window implementations, timed on a subset and SCALED LINEARLY "
          f"to {n_windows_total:,} windows:")
    for name, t, c, n, note in rows:
        total = t * n_windows_total
        print(f"  {name}: {t * 1e3:.3f} ms/window on {n:,} windows -> {_fmt_s(total)}; "
              f"ours is {total / ours:,.0f}x faster; in CPU time {c * n_windows_total / cpu:,.0f}x "
              f"({note})")
    tisean = TISEAN_S_PER_WINDOW * n_windows_total
    print(f"  TISEAN lyap_r, one process per window (QUOTED from docs/method.md, not run here): "
          f"1.5 ms/window -> {_fmt_s(tisean)}; ours is {tisean / ours:,.0f}x faster")
    ok = ours <= TARGET_LYAPUNOV_S * n_windows_total / (41000 * 106) and \
        tisean / ours >= TARGET_SPEEDUP
    print(f"targets (<= {TARGET_LYAPUNOV_S:.0f} s at paper scale, >= {TARGET_SPEEDUP:.0f}x vs "
          f"TISEAN): {'met' if ok else 'NOT met'}")
    del windows


def bench_lyapunov_cuda(args):
    """The torch backend on a CUDA GPU: the same workload, generated on the GPU."""
    import torch

    from sklegc.lyapunov import max_lyapunov

    if not torch.cuda.is_available():
        print("== Lyapunov on CUDA: skipped, torch sees no CUDA GPU ==")
        return
    n_total = args.weights * args.windows
    print(f"== Lyapunov on CUDA ({torch.cuda.get_device_name()}): {n_total:,} windows of "
          f"{WINDOW_SIZE} steps, float32 random walks made on the GPU ==")
    gen = torch.Generator(device="cuda").manual_seed(args.seed)
    windows = torch.empty((n_total, WINDOW_SIZE), dtype=torch.float32, device="cuda")
    for start in range(0, n_total, 1 << 20):
        stop = min(start + (1 << 20), n_total)
        steps = torch.randn((stop - start, WINDOW_SIZE), generator=gen, device="cuda") * 1e-3
        windows[start:stop] = steps.cumsum(dim=1)
    for chunk_size in (None, 4096):  # the default, and a bigger one for comparison
        max_lyapunov(windows[:64], chunk_size=chunk_size)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        le = max_lyapunov(windows, chunk_size=chunk_size)
        torch.cuda.synchronize()
        took = time.perf_counter() - t0
        extra = torch.cuda.max_memory_allocated() - base
        label = "default chunk" if chunk_size is None else f"chunk_size={chunk_size}"
        print(f"ours, torch backend, {label}: {_fmt_s(took)} ({took / n_total * 1e6:.3f} "
              f"us/window), peak extra GPU memory {extra / 2**20:.0f} MiB; "
              f"TISEAN (quoted) / ours = {TISEAN_S_PER_WINDOW * n_total / took:,.0f}x")
    sub = windows[:: max(1, n_total // args.ref_windows)][: args.ref_windows]
    cpu = max_lyapunov(sub.cpu().numpy(), backend="numba")
    diff = np.max(np.abs(le[:: max(1, n_total // args.ref_windows)][: args.ref_windows]
                         .cpu().numpy() - cpu))
    print(f"  agreement with the numba backend on {len(sub):,} windows: max |difference| "
          f"{diff:.1e}")


def bench_granger(args):
    try:
        from sklegc.granger import granger_tests
    except ImportError as exc:
        print(f"== Granger: skipped, sklegc.granger is not available yet ({exc}) ==")
        return
    from statsmodels.tsa.stattools import grangercausalitytests

    K = args.windows
    print(f"== Granger: {args.weights:,} causes of length {K}, maxlag {MAXLAG}, ssr_chi2test ==")
    rng = np.random.default_rng(args.seed + 1)
    # Misclassification falls and flattens; exponents wander around a weight-specific level.
    effect = 0.9 * np.exp(-np.arange(K) / 15.0) + 0.08 + 0.01 * rng.standard_normal(K)
    causes = rng.normal(0.5, 0.2, (1, args.weights)) + 0.1 * rng.standard_normal((K, args.weights))
    granger_tests(effect, causes[:, :16], maxlag=MAXLAG)

    rss0 = _maxrss_bytes()
    tracemalloc.start()
    t0 = time.perf_counter()
    result = granger_tests(effect, causes, maxlag=MAXLAG)
    ours = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_extra = max(0, _maxrss_bytes() - rss0)
    print(f"ours: granger_tests on all {args.weights:,} causes: {_fmt_s(ours)} "
          f"({ours / args.weights * 1e6:.1f} us/cause); extra memory: tracemalloc peak "
          f"{traced_peak / 2**20:.0f} MiB, RSS growth {rss_extra / 2**20:.0f} MiB")

    n_ref = min(args.ref_weights, args.weights)
    ref = np.empty(n_ref)
    t0 = time.perf_counter()
    for i in range(n_ref):
        out = grangercausalitytests(np.column_stack([effect, causes[:, i]]), maxlag=MAXLAG)
        ref[i] = min(out[p][0]["ssr_chi2test"][1] for p in out)
    t_ref = (time.perf_counter() - t0) / n_ref
    total = t_ref * args.weights
    diff = np.nanmax(np.abs(ref - result.pvalue[:n_ref]))
    print(f"reference: statsmodels grangercausalitytests looped over {n_ref} causes: "
          f"{t_ref * 1e3:.1f} ms/cause, SCALED LINEARLY to {args.weights:,} causes -> "
          f"{_fmt_s(total)}; ours is {total / ours:,.0f}x faster "
          f"(max |p-value difference| {diff:.1e})")
    quoted = STATSMODELS_S_PER_WEIGHT * args.weights
    print(f"  docs/method.md's figure (QUOTED): 16.6 ms/weight -> {_fmt_s(quoted)}")
    ok = ours <= TARGET_GRANGER_S * args.weights / 41000 and total / ours >= TARGET_SPEEDUP
    print(f"targets (<= {TARGET_GRANGER_S:.0f} s at paper scale, >= {TARGET_SPEEDUP:.0f}x vs the "
          f"loop): {'met' if ok else 'NOT met'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=int, default=41000, help="weights (default 41000)")
    parser.add_argument("--windows", type=int, default=106, help="windows per weight (106)")
    parser.add_argument("--part", choices=["all", "lyapunov", "granger", "cuda"], default="all",
                        help="'cuda': the torch backend on a CUDA GPU (not part of 'all')")
    parser.add_argument("--ref-windows", type=int, default=2000,
                        help="windows timed with the numpy per-window reference (2000)")
    parser.add_argument("--ref-nolds", type=int, default=200,
                        help="windows timed with nolds.lyap_r (200)")
    parser.add_argument("--ref-weights", type=int, default=200,
                        help="causes timed with the statsmodels loop (200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # Other jobs on the machine slow every figure down: the load average says how busy.
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; "
          f"python {sys.version.split()[0]}; numpy {np.__version__}")
    if args.part in ("all", "lyapunov"):
        bench_lyapunov(args)
    if args.part in ("all", "granger"):
        bench_granger(args)
    if args.part == "cuda":
        bench_lyapunov_cuda(args)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
