"""``python -m sklegc.experiments``: the reproduction run."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
