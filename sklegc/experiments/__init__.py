"""Reproduce the LEGCNet paper's Tables 1-3 with one command, and a sparsity sweep.

``python -m sklegc reproduce`` (or ``python -m sklegc.experiments``) fits, per dataset and
seed, the dense network, LEGCNet-FT, LEGCNet-PT and random and magnitude pruning at the
LEGCNet sparsities, all from the same initial weights, with the paper's per-dataset settings
(:data:`~sklegc.experiments.config.SETTINGS`); optionally it compares LEGCNet's Granger
ranking with magnitude and random pruning at 10-90% sparsity. Results go to ``cells.csv``
one cell at a time (a second run resumes), then to ``report.md`` beside the paper's numbers
(:data:`~sklegc.experiments.config.PAPER`), with plots.

Modules: :mod:`.config` (settings and the paper's numbers), :mod:`.runner` (cells, workers,
the CSV), :mod:`.report` (tables and plots), :mod:`.cli` (the command line).
"""

from .cli import main
from .config import PAPER, SETTINGS, SPARSITIES

__all__ = ["PAPER", "SETTINGS", "SPARSITIES", "main"]
