"""Null calibration of the causality test: how often a cause that cannot cause the effect is
called causal.

A test at significance 0.05 should call about 5% of such causes causal. This module
replaces the effect by series that no cause can have caused, runs
:func:`sklegc.granger.granger_tests` with every combination of its options
(``stationarity`` x ``lag_selection`` x ``test``) and counts the causes with
``pvalue < significance``. The null effects:

- ``"surrogate"``: a phase-randomised surrogate of the effect (Theiler et al. 1992): the
  same amplitude spectrum, hence the same (circular) autocorrelation, with independent
  uniform phases, so independent of every cause;
- ``"block"``: the effect cut into consecutive blocks of ``block_length`` values (default
  ``ceil(sqrt(K))``, the usual order of a block bootstrap's block, Künsch 1989) put back
  in a random order: its dynamics within blocks stay, its alignment with the causes goes;
- ``"fresh"``: for synthetic data only, a new draw of the series that made the effect.

``python -m sklegc.experiments.calibration --out DIR`` runs it on synthetic causes
(independent white noise and random walks) and on the Lyapunov exponent series of
LEGCNet-FT fits of the paper's tabular datasets, and writes ``calibration.csv`` and
``calibration.md``. The results are in ``docs/reproduction.md``, "Calibration of the
causality test".

References
----------
Künsch, H. R. (1989). The jackknife and the bootstrap for general stationary
observations. Ann. Statist. 17, 1217-1241.
Theiler, J., Eubank, S., Longtin, A., Galdrikian, B. and Farmer, J. D. (1992). Testing
for nonlinearity in time series: the method of surrogate data. Physica D 58, 77-94.
"""

import argparse
import datetime
import itertools
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

__all__ = [
    "NULLS",
    "OPTIONS",
    "RECOMMENDED",
    "build_parser",
    "false_positive_shares",
    "main",
    "markdown_table",
    "null_effects",
    "recommend",
    "synthetic_series",
]

NULLS = ("surrogate", "block")

# Every combination of granger_tests' options, the paper's rule first.
OPTIONS = tuple(itertools.product((None, "difference", "adf"),
                                  ("min_p", "fixed", "aic", "bic", "bonferroni", "simes"),
                                  ("ssr_chi2test", "ssr_ftest")))
PAPER_RULE = (None, "min_p", "ssr_chi2test")

# What the calibration run recommends (docs/reproduction.md, "Calibration of the causality
# test"): 0.048-0.060 at 0.05 on every null there, the only option in BAND besides its chi2 twin.
RECOMMENDED = ("adf", "bic", "ssr_ftest")

# The band the recommended option's false-positive share must stay in, at 0.05 (issue 14).
BAND = (0.03, 0.07)

SYNTHETIC_KINDS = ("white noise", "random walk")

# --quick: a pipeline check in seconds (real traces only where already saved, or fitted with
# the reproduction's quick settings).
QUICK_SIZES = dict(causes=200, windows=[64], draws=2, datasets=["iris"], seeds=1)

COLUMNS = ["scenario", "null", "stationarity", "lag_selection", "test", "n_draws",
           "n_tested", "n_causal", "share", "se"]


def synthetic_series(kind, K, n, random_state=None):
    """``n`` independent synthetic series of length ``K``, one per column.

    Parameters
    ----------
    kind : {"white noise", "random walk"}
        Independent standard normal values, or their cumulative sums.
    K, n : int
        Length and number of series.
    random_state : int, numpy Generator or None
        Seed or generator.

    Returns
    -------
    ndarray of shape (K, n)

    Raises
    ------
    ValueError
        If ``kind`` is unknown.

    Examples
    --------
    >>> from sklegc.experiments.calibration import synthetic_series
    >>> synthetic_series("random walk", 5, 3, random_state=0).shape
    (5, 3)
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"kind must be one of {SYNTHETIC_KINDS}; got {kind!r}.")
    noise = np.random.default_rng(random_state).normal(size=(K, n))
    return noise if kind == "white noise" else np.cumsum(noise, axis=0)


def null_effects(effect, null, n, *, block_length=None, random_state=None):
    """``n`` series built from ``effect`` that no cause can have caused.

    Parameters
    ----------
    effect : array-like of shape (K,)
        The effect series.
    null : {"surrogate", "block"}
        A phase-randomised surrogate (the same amplitude spectrum, independent uniform
        phases; Theiler et al. 1992), or a permutation of consecutive blocks.
    n : int
        Number of series.
    block_length : int, optional
        Values per block of ``"block"`` (the last block may be shorter). Default
        ``ceil(sqrt(K))``.
    random_state : int, numpy Generator or None
        Seed or generator.

    Returns
    -------
    ndarray of shape (n, K)

    Raises
    ------
    ValueError
        If ``null`` is unknown, ``effect`` is not 1-D with at least 4 values, or
        ``block_length`` is not in ``1..K-1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklegc.experiments.calibration import null_effects
    >>> effect = np.cumsum(np.random.default_rng(0).normal(size=50))
    >>> surrogates = null_effects(effect, "surrogate", 3, random_state=1)
    >>> surrogates.shape
    (3, 50)
    >>> spectrum = lambda s: np.abs(np.fft.rfft(s - s.mean()))
    >>> bool(np.allclose(spectrum(surrogates[0]), spectrum(effect)))
    True
    >>> blocks = null_effects(effect, "block", 2, block_length=10, random_state=1)
    >>> bool(np.array_equal(np.sort(blocks[0]), np.sort(effect)))
    True
    """
    effect = np.asarray(effect, dtype=float)
    if effect.ndim != 1 or effect.shape[0] < 4:
        raise ValueError(f"effect must be 1-D with at least 4 values; got shape {effect.shape}.")
    K = effect.shape[0]
    rng = np.random.default_rng(random_state)
    if null == "surrogate":
        spectrum = np.abs(np.fft.rfft(effect - effect.mean()))
        phases = rng.uniform(0.0, 2.0 * np.pi, size=(n, spectrum.shape[0]))
        # The mean and (for even K) the Nyquist term must stay real.
        phases[:, 0] = 0.0
        if K % 2 == 0:
            phases[:, -1] = 0.0
        return np.fft.irfft(spectrum * np.exp(1j * phases), n=K, axis=1) + effect.mean()
    if null == "block":
        block_length = math.ceil(math.sqrt(K)) if block_length is None else block_length
        if not 1 <= block_length < K:
            raise ValueError(f"block_length must be in 1..{K - 1} for K={K}; got "
                             f"{block_length}.")
        blocks = [effect[start:start + block_length] for start in range(0, K, block_length)]
        return np.stack([np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])
                         for _ in range(n)])
    raise ValueError(f"null must be one of {NULLS}; got {null!r}.")


def false_positive_shares(effect, causes, *, nulls=NULLS, n_draws=10, maxlag=14,
                          significance=0.05, options=OPTIONS, block_length=None,
                          fresh=None, random_state=None):
    """Share of causes called causal (``pvalue < significance``) when the effect is a null.

    Each null draw is one effect tested against every cause, for every option
    combination, with :func:`sklegc.granger.granger_tests`.

    Parameters
    ----------
    effect : array-like of shape (K,)
        The effect series the nulls are built from (see :func:`null_effects`).
    causes : array-like of shape (K, n)
        One cause series per column.
    nulls : sequence of str, default=("surrogate", "block")
        Null kinds: ``"surrogate"``, ``"block"``, and ``"fresh"`` (needs ``fresh``).
    n_draws : int, default=10
        Null effects per kind.
    maxlag : int, default=14
        Passed to ``granger_tests``.
    significance : float, default=0.05
        A cause is called causal when its p-value is below it.
    options : sequence of (stationarity, lag_selection, test), default=OPTIONS
        The option combinations to run.
    block_length : int, optional
        For ``"block"``, see :func:`null_effects`.
    fresh : callable, optional
        ``fresh(rng)`` returns a new independent effect of length ``K``: the ``"fresh"``
        null.
    random_state : int, numpy Generator or None
        Seed or generator of the null draws.

    Returns
    -------
    list of dict
        One row per null and option: ``null``, ``stationarity`` (``"none"`` for None),
        ``lag_selection``, ``test``, ``n_draws``, ``n_tested`` (pairs with a p-value),
        ``n_causal``, ``share`` (``n_causal / n_tested``) and ``se``, its standard error
        with the draws as clusters (the causes tested against one effect share it),
        and ``counts``: the per-draw ``(n_tested, n_causal)``, used to pool results.

    Raises
    ------
    ValueError
        If a null is unknown, or ``"fresh"`` is asked for without ``fresh``.

    Examples
    --------
    >>> from sklegc.experiments.calibration import false_positive_shares, synthetic_series
    >>> causes = synthetic_series("white noise", 64, 300, random_state=0)
    >>> rows = false_positive_shares(causes[:, 0], causes[:, 1:], nulls=["surrogate"],
    ...                              n_draws=2, maxlag=4,
    ...                              options=[(None, "fixed", "ssr_ftest")], random_state=0)
    >>> row = rows[0]
    >>> row["n_tested"], bool(0.0 < row["share"] < 0.15)
    (598, True)
    """
    from ..granger import granger_tests

    effect = np.asarray(effect, dtype=float)
    causes = np.asarray(causes, dtype=float)
    rng = np.random.default_rng(random_state)
    rows = []
    for null in nulls:
        if null == "fresh":
            if fresh is None:
                raise ValueError("the 'fresh' null needs fresh=callable(rng) giving an effect.")
            draws = np.stack([fresh(rng) for _ in range(n_draws)])
        elif null in NULLS:
            draws = null_effects(effect, null, n_draws, block_length=block_length,
                                 random_state=rng)
        else:
            raise ValueError(f"null must be one of {NULLS + ('fresh',)}; got {null!r}.")
        counts = {option: [] for option in options}
        for draw in draws:
            for option in options:
                stationarity, lag_selection, test = option
                pvalue = granger_tests(draw, causes, maxlag=maxlag, test=test,
                                       stationarity=stationarity,
                                       lag_selection=lag_selection).pvalue
                tested = np.isfinite(pvalue)
                counts[option].append((int(tested.sum()),
                                       int((pvalue[tested] < significance).sum())))
        for (stationarity, lag_selection, test), per_draw in counts.items():
            rows.append(dict(null=null, stationarity=stationarity or "none",
                             lag_selection=lag_selection, test=test,
                             **_pooled(per_draw), counts=per_draw))
    return rows


def _pooled(counts):
    """Share and clustered standard error from per-cluster ``(n_tested, n_causal)``."""
    tested = np.array([c[0] for c in counts], dtype=float)
    causal = np.array([c[1] for c in counts], dtype=float)
    total = tested.sum()
    share = causal.sum() / total if total else np.nan
    clusters = int((tested > 0).sum())
    if clusters > 1:
        # The ratio estimator's variance with clusters as the sampling units.
        spread = np.sum((causal - share * tested) ** 2) * clusters / (clusters - 1)
        se = math.sqrt(spread) / total
    else:
        se = math.sqrt(share * (1 - share) / total) if total else np.nan
    return dict(n_draws=len(counts), n_tested=int(total), n_causal=int(causal.sum()),
                share=share, se=se)


def recommend(rows, band=BAND):
    """The option combination whose false-positive share stays in ``band`` on every null.

    Among the combinations within ``band`` on every (scenario, null), the one whose share
    is furthest from the band's edges in the worst case; None if none qualifies.

    Parameters
    ----------
    rows : list of dict
        Rows with ``scenario``, ``null``, ``stationarity``, ``lag_selection``, ``test``
        and ``share``.
    band : tuple of float, default=(0.03, 0.07)

    Returns
    -------
    tuple or None
        ``(stationarity, lag_selection, test)``, stationarity ``"none"`` for None.
    """
    low, high = band
    margins = {}
    for row in rows:
        option = (row["stationarity"], row["lag_selection"], row["test"])
        margin = min(row["share"] - low, high - row["share"])
        margins[option] = min(margins.get(option, np.inf), margin)
    passing = {option: m for option, m in margins.items() if m >= 0}
    return max(passing, key=passing.get) if passing else None


# -- the experiment -----------------------------------------------------------------------------


def _synthetic_rows(args, rng):
    rows = []
    for kind in SYNTHETIC_KINDS:
        for K in args.windows:
            causes = synthetic_series(kind, K, args.causes, random_state=rng)
            effect = synthetic_series(kind, K, 1, random_state=rng)[:, 0]
            found = false_positive_shares(
                effect, causes, nulls=("fresh",) + NULLS, n_draws=args.draws,
                maxlag=_maxlag(K, args.maxlag), significance=args.significance,
                options=args.options, block_length=args.block_length, random_state=rng,
                fresh=lambda r, kind=kind, K=K: synthetic_series(kind, K, 1, r)[:, 0])
            rows += [dict(row, scenario=f"{kind} K={K}") for row in found]
            _progress(f"synthetic {kind}, K={K}: done")
    return rows


def _maxlag(K, wanted):
    from ..granger import max_feasible_lag

    # One lag for every option, so that they are compared at the same maxlag.
    return min(wanted, max_feasible_lag(K, stationarity="adf", lag_selection="bic"))


def _traces(args):
    """``(name, effect, causes)`` of each LEGCNet-FT fit, loaded or fitted and saved."""
    from ..datasets import DATA_FILES
    from .runner import Cell, _trace_path, run_cell

    out = Path(args.out) / ("quick" if args.quick else "")
    folders = ([Path(args.traces)] if args.traces else []) + [out / "traces"]
    plan = []
    for dataset, seed in itertools.product(args.datasets, range(args.seeds)):
        name = _trace_path(out, dataset, "LEGCNet-FT", seed).name
        found = [folder / name for folder in folders if (folder / name).is_file()]
        plan.append((dataset, seed, found[0] if found else None))
    missing = sorted({f for dataset, _, path in plan if path is None
                      for f in DATA_FILES[dataset]
                      if not (args.data_dir and (Path(args.data_dir) / f).is_file())})
    if missing:
        where = (f"looked in {args.data_dir}" if args.data_dir
                 else "no --data-dir given and SKLEGC_DATA_DIR unset")
        raise SystemExit(f"error: dataset files missing ({', '.join(missing)}; {where}): "
                         "pass --data-dir, set SKLEGC_DATA_DIR, or use --no-real.")
    traces = []
    for dataset, seed, path in plan:
        if path is None:
            start = time.perf_counter()
            run_cell(Cell("tables", dataset, "LEGCNet-FT", seed), out=out,
                     data_dir=args.data_dir, quick=args.quick)
            path = _trace_path(out, dataset, "LEGCNet-FT", seed)
            _progress(f"fitted {dataset} seed {seed} in {time.perf_counter() - start:.0f} s")
        with np.load(path) as saved:
            traces.append((f"{dataset} seed {seed}", saved["misclassification"].astype(float),
                           saved["lyapunov"].astype(float)))
    return traces


def _real_rows(args, rng):
    per_trace = []
    for name, effect, causes in _traces(args):
        K = effect.shape[0]
        found = false_positive_shares(effect, causes, n_draws=args.draws,
                                      maxlag=_maxlag(K, args.maxlag),
                                      significance=args.significance, options=args.options,
                                      block_length=args.block_length, random_state=rng)
        per_trace += [dict(row, scenario=f"trace {name} K={K}") for row in found]
        _progress(f"real trace {name} (K={K}, {causes.shape[1]} weights): done")
    pooled = {}
    for row in per_trace:
        key = (row["null"], row["stationarity"], row["lag_selection"], row["test"])
        pooled.setdefault(key, []).extend(row["counts"])
    rows = [dict(scenario="real traces", null=null, stationarity=st, lag_selection=ls, test=t,
                 **_pooled(counts), counts=counts)
            for (null, st, ls, t), counts in pooled.items()]
    return rows, per_trace


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def _label(option):
    stationarity, lag_selection, test = option
    return f"{stationarity} / {lag_selection} / {test.replace('ssr_', '').replace('test', '')}"


def markdown_table(rows, command, band=BAND):
    """The false-positive shares as a markdown table: one row per option, one column per
    (scenario, null); the recommended option and the paper's rule in bold.

    Parameters
    ----------
    rows : list of dict
        Rows of the pooled scenarios (as in ``calibration.csv``).
    command : str
        The command line, written above the table.
    band : tuple of float, default=(0.03, 0.07)

    Returns
    -------
    str
    """
    columns = list(dict.fromkeys((row["scenario"], row["null"]) for row in rows))
    share = {(row["scenario"], row["null"], row["stationarity"], row["lag_selection"],
              row["test"]): row for row in rows}
    options = list(dict.fromkeys((row["stationarity"], row["lag_selection"], row["test"])
                                 for row in rows))
    best = recommend(rows, band)
    paper = ("none",) + PAPER_RULE[1:]
    lines = [
        f"Command: `{command}`",
        "",
        f"Date: {datetime.datetime.now().astimezone().isoformat(timespec='minutes')}; machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}.",
        "",
        "Share of causes called causal (p-value < significance) when no cause can cause the "
        "effect, per option `stationarity / lag_selection / test` (rows) and null (columns). "
        f"Nulls: fresh = a new independent draw, surrogate = phase-randomised surrogate of "
        f"the effect, block = block permutation of the effect. Target band at 0.05: "
        f"{band[0]:.2f}-{band[1]:.2f}.",
        "",
        "| option | " + " | ".join(f"{s}: {n}" for s, n in columns) + " | in band |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for option in options:
        cells, inside = [], True
        for scenario, null in columns:
            row = share.get((scenario, null) + option)
            if row is None:
                cells.append("")
                continue
            inside &= band[0] <= row["share"] <= band[1]
            cells.append(f"{row['share']:.3f}")
        label = _label(option)
        if option in (best, paper):
            label = f"**{label}**"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {'yes' if inside else ''} |")
    lines.append("")
    ses = [row["se"] for row in rows if np.isfinite(row["se"])]
    if ses:
        lines.append(f"Standard errors (draws as clusters): {min(ses):.4f} to {max(ses):.4f}; "
                     "n tested per cell: "
                     f"{min(r['n_tested'] for r in rows)} to {max(r['n_tested'] for r in rows)}.")
    lines.append("")
    lines.append("Recommended (within the band on every null, furthest from its edges): "
                 + (f"`{_label(best)}`" if best else "none within the band")
                 + f"; the paper's rule: `{_label(paper)}`.")
    return "\n".join(lines) + "\n"


def _write(rows, path):
    import csv

    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k])
                             for k in COLUMNS})


def build_parser():
    """The command line of ``python -m sklegc.experiments.calibration``.

    Returns
    -------
    argparse.ArgumentParser
    """
    from ..granger import LAG_SELECTIONS, TESTS
    from .config import TABULAR

    parser = argparse.ArgumentParser(
        prog="python -m sklegc.experiments.calibration",
        description="Null calibration of the Granger causality test: the share of causes "
                    "called causal when the effect is replaced by a series no cause can "
                    "cause, for every combination of granger_tests' options.")
    parser.add_argument("--out", required=True,
                        help="output directory: calibration.csv, calibration.md, traces/")
    parser.add_argument("--data-dir", default=os.environ.get("SKLEGC_DATA_DIR"),
                        help="directory of the dataset files (default: $SKLEGC_DATA_DIR)")
    parser.add_argument("--traces", default=None,
                        help="directory of saved LEGCNet-FT traces to reuse, for instance "
                             "results/reproduction/traces; traces not found there are fitted "
                             "and saved under OUT/traces")
    parser.add_argument("--datasets", nargs="+", default=list(TABULAR), choices=list(TABULAR),
                        metavar="NAME",
                        help=f"datasets of the real traces (default: {list(TABULAR)})")
    parser.add_argument("--seeds", type=int, default=3,
                        help="seeds 0..N-1 of the LEGCNet-FT fits (default: 3)")
    parser.add_argument("--causes", type=int, default=4000,
                        help="synthetic causes per scenario (default: 4000)")
    parser.add_argument("--windows", type=int, nargs="+", default=[64, 106], metavar="K",
                        help="lengths K of the synthetic series (default: 64 106)")
    parser.add_argument("--draws", type=int, default=10,
                        help="null effects drawn per null and scenario (default: 10)")
    parser.add_argument("--maxlag", type=int, default=14,
                        help="largest Granger lag, lowered where K is too short (default: 14)")
    parser.add_argument("--significance", type=float, default=0.05,
                        help="a cause is called causal below this p-value (default: 0.05)")
    parser.add_argument("--block-length", type=int, default=None,
                        help="values per block of the block permutation (default: ceil(sqrt(K)))")
    parser.add_argument("--random-state", type=int, default=0,
                        help="seed of the synthetic data and the null draws (default: 0)")
    parser.add_argument("--stationarity", nargs="+", default=["none", "difference", "adf"],
                        choices=["none", "difference", "adf"],
                        help="stationarity options to run (default: all)")
    parser.add_argument("--lag-selection", nargs="+", default=list(LAG_SELECTIONS),
                        choices=list(LAG_SELECTIONS),
                        help=f"lag_selection options to run (default: all: {list(LAG_SELECTIONS)})")
    parser.add_argument("--tests", nargs="+", default=list(TESTS), choices=list(TESTS),
                        help=f"test statistics to run (default: both: {list(TESTS)})")
    parser.add_argument("--synthetic", action=argparse.BooleanOptionalAction, default=True,
                        help="run the synthetic scenarios (default: yes)")
    parser.add_argument("--real", action=argparse.BooleanOptionalAction, default=True,
                        help="run the real traces (default: yes)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (200 causes, K=64, 2 draws, one seed of iris with "
                             "the reproduction's quick settings, traces under OUT/quick): a "
                             "pipeline check; options given explicitly still apply")
    return parser


def main(argv=None):
    """Entry point of ``python -m sklegc.experiments.calibration``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status 0. A missing dataset file exits with a one-line error.
    """
    parser = build_parser()
    if parser.parse_args(argv).quick:
        # Quick sizes are defaults: options given on the command line still win.
        parser.set_defaults(**QUICK_SIZES)
    args = parser.parse_args(argv)
    for name in ("causes", "draws", "seeds", "maxlag"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if not 0 < args.significance < 1:
        parser.error("--significance must be in (0, 1)")
    args.options = [(None if st == "none" else st, ls, t) for st, ls, t in OPTIONS
                    if (st or "none") in args.stationarity and ls in args.lag_selection
                    and t in args.tests]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.random_state)
    rows, per_trace = [], []
    start = time.perf_counter()
    if args.synthetic:
        rows += _synthetic_rows(args, rng)
    if args.real:
        real, per_trace = _real_rows(args, rng)
        rows += real
    command = "python -m sklegc.experiments.calibration " + " ".join(
        sys.argv[1:] if argv is None else argv)
    _write(rows + per_trace, out / "calibration.csv")
    table = markdown_table(rows, command)
    (out / "calibration.md").write_text(table)
    print(table)
    print(f"wrote {out / 'calibration.csv'} and {out / 'calibration.md'} in "
          f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
