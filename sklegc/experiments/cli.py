"""Command line of the reproduction run (``python -m sklegc reproduce`` or ``-m sklegc.experiments``).

Only argparse at import time, so that ``python -m sklegc --help`` stays fast.
"""

import argparse
import os
import sys

DEFAULT_OUT = "results/reproduction"


def add_arguments(parser):
    """Add the reproduction run's options to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    from .config import SETTINGS

    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                        metavar="NAME", help=f"datasets to run (default: all: {list(SETTINGS)})")
    parser.add_argument("--seeds", type=int, default=5,
                        help="number of seeds 0..N-1 for the tables (paper: 5)")
    parser.add_argument("--sweep-seeds", type=int, default=None,
                        help="number of seeds of the sparsity sweep (default: --seeds)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument("--data-dir", default=os.environ.get("SKLEGC_DATA_DIR"),
                        help="directory of the dataset files (default: $SKLEGC_DATA_DIR)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny epochs and windows, one seed: checks the pipeline only")
    parser.add_argument("--sweep", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the sparsity sweep on the tabular datasets")
    parser.add_argument("--scaling", choices=["train", "authors"], default="train",
                        help="'train': scalers fitted on the training rows (default); "
                             "'authors': the authors' published preprocessing")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default: 2)")
    parser.add_argument("--report-only", action="store_true",
                        help="write report.md and the plots from the existing cells.csv")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args):
    """Run (or resume) the cells of ``args`` and write the report.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser set up by :func:`add_arguments`.

    Returns
    -------
    int
        Exit status: 0, or 1 if a cell failed.
    """
    from .report import write_report
    from .runner import plan_cells, run_cells

    seeds = list(range(1 if args.quick else args.seeds))
    sweep_seeds = seeds if args.sweep_seeds is None or args.quick else list(range(args.sweep_seeds))
    cells = plan_cells(args.datasets, seeds, sweep=args.sweep, sweep_seeds=sweep_seeds)
    failed = []
    if not args.report_only:
        try:
            result = run_cells(cells, args.out, data_dir=args.data_dir, quick=args.quick,
                               scale=True if args.scaling == "train" else "authors",
                               n_jobs=args.jobs, progress=not args.no_progress)
        except KeyboardInterrupt:
            path = write_report(args.out, planned=len(cells), quick=args.quick)
            print(f"interrupted; finished cells are in {args.out}/cells.csv and {path} reports "
                  "them. Run the same command again to resume.")
            return 130
        failed = result["failed"]
        print(f"ran {len(result['ran'])} cells, skipped {len(result['skipped'])} already in "
              f"{args.out}/cells.csv, {len(failed)} failed, in {result['wall_s'] / 60:.1f} min")
    path = write_report(args.out, planned=len(cells), quick=args.quick)
    print(f"report: {path}")
    if failed:
        print(f"{len(failed)} cell(s) failed; see {args.out}/errors.log", file=sys.stderr)
    return 1 if failed else 0


def main(argv=None):
    """Entry point of ``python -m sklegc.experiments``."""
    parser = argparse.ArgumentParser(
        prog="python -m sklegc.experiments",
        description="Reproduce the LEGCNet paper's Tables 1-3 (and a sparsity sweep).")
    add_arguments(parser)
    return run(parser.parse_args(argv))
