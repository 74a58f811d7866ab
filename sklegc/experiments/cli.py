"""Command line of the reproduction run (``python -m sklegc reproduce`` or ``-m sklegc.experiments``).

Only argparse at import time, so that ``python -m sklegc --help`` stays fast.
"""

import argparse
import os
import sys
import warnings

DEFAULT_OUT = "results/reproduction"
PRINCIPLED_OUT = "results/principled"

#: Exit status when the data are missing (argparse's status for a usage error).
MISSING_DATA_STATUS = 2


def add_arguments(parser):
    """Add the reproduction run's options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    from .config import SETTINGS

    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                        metavar="NAME",
                        help=f"datasets to run, among {', '.join(SETTINGS)} (default: all)")
    parser.add_argument("--seeds", type=int, default=5, metavar="N",
                        help="number of seeds 0..N-1 for the tables (paper: 5)")
    parser.add_argument("--sweep-seeds", type=int, default=None, metavar="N",
                        help="number of seeds of the sparsity sweep (default: --seeds)")
    parser.add_argument("--study", choices=["paper", "principled"], default="paper",
                        help="'paper': the paper's Tables 1-3 and the sparsity sweep "
                             "(default); 'principled': calibrated tests, accuracy-constrained "
                             "pruning, SNIP, IMP and layer-matched random pruning, with SHAP, "
                             "on the tabular datasets (docs/reproduction.md)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help=f"output directory (default: {DEFAULT_OUT}, or {PRINCIPLED_OUT} "
                             "with --study principled)")
    parser.add_argument("--data-dir", default=os.environ.get("SKLEGC_DATA_DIR"), metavar="DIR",
                        help="folder of the paper's dataset files, listed in docs/datasets.md "
                             "(default: $SKLEGC_DATA_DIR)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny epochs and windows, one seed: checks the pipeline only")
    parser.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the sparsity sweep on the tabular datasets")
    parser.add_argument("--scaling", choices=["train", "authors"], default="train",
                        help="'train': scalers fitted on the training rows (default); "
                             "'authors': the authors' published preprocessing")
    parser.add_argument("--stacked", action=argparse.BooleanOptionalAction, default=True,
                        help="fine-tune the sweep's fits of one dataset and seed, and the "
                             "tables' baselines of one, as one stacked network (default: "
                             "the same results up to float rounding, in a fraction of the "
                             "time); --no-stacked fits every cell alone")
    parser.add_argument("--jobs", type=int, default=2, metavar="N",
                        help="worker processes (default: 2)")
    parser.add_argument("--report-only", action="store_true",
                        help="write report.md and the plots from the existing cells.csv")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(prog=parser.prog)
    return parser


def missing_data(datasets, data_dir, scale):
    """The one-line message for the requested datasets that cannot be loaded, or None.

    Loads each dataset as the run will (an OpenML fallback included), before anything is
    written, so that a run without its data stops at once and says what to do.

    Parameters
    ----------
    datasets : iterable of str
        Names of :data:`sklegc.datasets.DATASETS`.
    data_dir : str or None
        The ``--data-dir`` value (its default is ``$SKLEGC_DATA_DIR``).
    scale : bool or "authors"
        Passed to :func:`sklegc.datasets.load_dataset`.

    Returns
    -------
    str or None
        Which files are missing, where they were looked for, which fallbacks failed, and
        how to provide them; None when every dataset loads.

    Examples
    --------
    >>> from sklegc.experiments.cli import missing_data
    >>> missing_data(["digits"], None, True) is None
    True
    >>> print(missing_data(["vowel"], "/nowhere", True))  # doctest: +NORMALIZE_WHITESPACE
    missing dataset file(s) vowel.csv: looked in /nowhere; vowel has no OpenML copy. Put the
    paper's files in one folder and pass --data-dir FOLDER or set SKLEGC_DATA_DIR=FOLDER
    (docs/datasets.md lists them and where they come from).
    """
    from ..datasets import DATA_DIR_ENV, DATA_FILES, DatasetNotFoundError, load_dataset

    failures = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in dict.fromkeys(datasets):
            try:
                load_dataset(name, data_dir, scale=scale)
            except DatasetNotFoundError as exc:
                failures[name] = exc
    if not failures:
        # Nothing failed: the warnings (an OpenML retry, say) are the user's to see.
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return None

    files = list(dict.fromkeys(f for name in failures for f in DATA_FILES[name]))
    notes = [f"looked in {data_dir}" if data_dir else
             f"no data folder given: neither --data-dir nor ${DATA_DIR_ENV} is set"]
    no_copy = [n for n, exc in failures.items() if exc.__cause__ is None and DATA_FILES[n]]
    if no_copy:
        notes.append(f"{_join(no_copy)} {'has' if len(no_copy) == 1 else 'have'} no OpenML copy")
    fetch_failed = {n: exc.__cause__ for n, exc in failures.items() if exc.__cause__ is not None}
    if fetch_failed:
        cause = next(iter(fetch_failed.values()))
        notes.append(f"the OpenML fallback for {_join(fetch_failed)} failed "
                     f"({type(cause).__name__}: {cause})")
    notes += [str(exc) for n, exc in failures.items() if not DATA_FILES[n]]
    message = (f"missing dataset file(s) {', '.join(files)}: {'; '.join(notes)}. Put the "
               f"paper's files in one folder and pass --data-dir FOLDER or set "
               f"{DATA_DIR_ENV}=FOLDER (docs/datasets.md lists them and where they come from).")
    return " ".join(message.split())


def _join(names):
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def run(args):
    """Run (or resume) the cells of ``args`` and write the report.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser set up by :func:`add_arguments`.

    Returns
    -------
    int
        Exit status: 0; 1 if a cell failed; 2 (:data:`MISSING_DATA_STATUS`) if a dataset
        cannot be loaded, with one line on stderr that says which files to put where.
    """
    from . import principled
    from .report import write_report
    from .runner import COLUMNS, plan_cells, run_cells

    seeds = list(range(1 if args.quick else args.seeds))
    if args.study == "principled":
        out = args.out or PRINCIPLED_OUT
        cells = principled.plan_cells(args.datasets, seeds)
        columns, write_report = principled.COLUMNS, principled.write_report
    else:
        out = args.out or DEFAULT_OUT
        sweep_seeds = (seeds if args.sweep_seeds is None or args.quick
                       else list(range(args.sweep_seeds)))
        cells = plan_cells(args.datasets, seeds, sweep=args.sweep, sweep_seeds=sweep_seeds)
        columns = COLUMNS
    scale = True if args.scaling == "train" else "authors"
    failed = []
    if not args.report_only:
        problem = missing_data([c.dataset for c in cells], args.data_dir, scale)
        if problem:
            print(f"{args.prog}: error: {problem}", file=sys.stderr)
            return MISSING_DATA_STATUS
        try:
            result = run_cells(cells, out, data_dir=args.data_dir, quick=args.quick,
                               scale=scale, n_jobs=args.jobs, progress=not args.no_progress,
                               columns=columns, stacked=args.stacked)
        except KeyboardInterrupt:
            path = write_report(out, planned=len(cells), quick=args.quick)
            print(f"interrupted; finished cells are in {out}/cells.csv and {path} reports "
                  "them. Run the same command again to resume.")
            return 130
        failed = result["failed"]
        print(f"ran {len(result['ran'])} cells, skipped {len(result['skipped'])} already in "
              f"{out}/cells.csv, {len(failed)} failed, in {result['wall_s'] / 60:.1f} min")
    path = write_report(out, planned=len(cells), quick=args.quick)
    print(f"report: {path}")
    if failed:
        print(f"{len(failed)} cell(s) failed; see {out}/errors.log", file=sys.stderr)
    return 1 if failed else 0


def build_parser():
    """The parser of ``python -m sklegc.experiments`` (the same options as ``sklegc reproduce``).

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> from sklegc.experiments.cli import build_parser
    >>> build_parser().parse_args(["--datasets", "iris", "--quick"]).datasets
    ['iris']
    """
    parser = argparse.ArgumentParser(
        prog="python -m sklegc.experiments",
        description="Reproduce the LEGCNet paper's Tables 1-3 (and a sparsity sweep).")
    return add_arguments(parser)


def main(argv=None):
    """Entry point of ``python -m sklegc.experiments``; returns the exit status."""
    return run(build_parser().parse_args(argv))
