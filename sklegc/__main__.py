"""Command line: ``python -m sklegc demo`` and ``python -m sklegc reproduce`` (``sklegc ...`` once installed)."""

import argparse
import sys

# Only argparse and the settings table: the heavy imports happen when a command runs.
from .experiments.cli import add_arguments
from .experiments.cli import run as run_reproduction

DESCRIPTION = """\
Chaos-causality (LEGCNet) pruning of dense neural networks, as a scikit-learn classifier.
Run 'sklegc COMMAND --help' for the options of a command."""

DEMO_DESCRIPTION = """\
Fit MLPClassifier() and LEGCPrunedClassifier() with their defaults (the drop-in swap),
then the paper's protocol (PAPER_PARAMS): the dense network, LEGCNet-FT (with and without
a Bonferroni correction) and LEGCNet-PT on the same split from the same initial weights.
Print test accuracy, macro F1, weights kept, % pruned, epochs trained, epochs to the
training-accuracy target and fit times."""

REPRODUCE_DESCRIPTION = """\
Reproduce the LEGCNet paper's Tables 1-3 (and a sparsity sweep): every fit is appended to
cells.csv in the --out folder as it finishes, a stopped run resumes where it left off,
and report.md there sets the results beside the paper's. The tabular datasets are read
from --data-dir or $SKLEGC_DATA_DIR (files listed in docs/datasets.md); cancer, banknote
and iris fall back to OpenML when their file is missing, titanic and vowel have none.
--study principled runs the study of calibrated tests, accuracy-constrained pruning and
stronger baselines (SNIP, IMP, layer-matched random pruning) instead, with principled.md."""


def build_parser():
    """The parser of ``python -m sklegc``.

    Returns
    -------
    argparse.ArgumentParser

    Examples
    --------
    >>> from sklegc.__main__ import build_parser
    >>> args = build_parser().parse_args(["demo", "--dataset", "iris"])
    >>> args.command, args.dataset, args.seed
    ('demo', 'iris', 0)
    """
    parser = argparse.ArgumentParser(prog="sklegc", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")
    demo = sub.add_parser(
        "demo", help="compare MLPClassifier(), LEGCPrunedClassifier() and the paper's "
                     "dense, LEGCNet-FT and LEGCNet-PT on a dataset bundled with scikit-learn "
                     "(about a minute)",
        description=DEMO_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--dataset", default="breast_cancer",
                      choices=["breast_cancer", "iris", "digits"],
                      help="scikit-learn dataset to run on (default: breast_cancer)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the split and of the initial weights (default: 0)")
    demo.add_argument("--verbose", type=int, default=0,
                      help="0: silent (default); 1: skorch's epoch log of every phase")
    add_arguments(sub.add_parser(
        "reproduce", help="run the paper's experiments (Tables 1-3 and a sparsity sweep) and "
                          "write a report; needs the paper's dataset files",
        description=REPRODUCE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    ))
    return parser


def main(argv=None):
    """Run ``python -m sklegc`` with ``argv`` (default: the process's arguments).

    Returns
    -------
    int
        Exit status.
    """
    args = build_parser().parse_args(argv)

    if args.command == "reproduce":
        return run_reproduction(args)

    if args.command == "demo":
        from .demo import format_table, run_demo

        print(f"sklegc demo on {args.dataset} (seed {args.seed}): fitting MLPClassifier() and "
              "LEGCPrunedClassifier() with their defaults, then the paper's protocol: dense, "
              "LEGCNet-FT (with and without Bonferroni) and LEGCNet-PT ...", flush=True)
        rows, notes = run_demo(args.dataset, random_state=args.seed, verbose=args.verbose)
        print(format_table(rows))
        print("\nepochs: epochs trained, all phases (n_iter_). epochs to target: first epoch at "
              "which training accuracy reached the target (dense phase for the dense network and "
              "for a network with nothing pruned, sparse phase otherwise).")
        print("LEGCNet-FT+Bonf: LEGCNet-FT with a Bonferroni correction over the weights.")
        for note in notes:
            print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
