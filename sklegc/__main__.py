"""Command line: ``python -m sklegc demo`` and ``python -m sklegc reproduce`` (``sklegc ...`` once installed)."""

import argparse
import sys

# Only argparse and the settings table: the heavy imports happen when a command runs.
from .experiments.cli import add_arguments
from .experiments.cli import run as run_reproduction


def main(argv=None):
    parser = argparse.ArgumentParser(prog="sklegc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="compare a dense network with LEGCNet-FT and -PT on a bundled dataset"
    )
    demo.add_argument("--dataset", default="breast_cancer",
                      choices=["breast_cancer", "iris", "digits"])
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--verbose", type=int, default=0)
    add_arguments(sub.add_parser(
        "reproduce", help="reproduce the paper's Tables 1-3 (and a sparsity sweep) into a report"
    ))
    args = parser.parse_args(argv)

    if args.command == "reproduce":
        return run_reproduction(args)

    if args.command == "demo":
        from .demo import format_table, run_demo

        print(f"sklegc demo on {args.dataset} (seed {args.seed}): fitting dense, "
              "LEGCNet-FT (with and without Bonferroni) and LEGCNet-PT ...", flush=True)
        rows, notes = run_demo(args.dataset, random_state=args.seed, verbose=args.verbose)
        print(format_table(rows))
        print("\nepochs: first epoch at which training accuracy reached the target "
              "(dense phase for the dense network, sparse phase otherwise).")
        print("LEGCNet-FT+Bonf: LEGCNet-FT with a Bonferroni correction over the weights.")
        for note in notes:
            print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
