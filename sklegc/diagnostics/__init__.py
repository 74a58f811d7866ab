"""Diagnostics for pruned networks: SHAP feature importance and WeightWatcher layer quality.

These are the two checks the LEGCNet paper applies to its pruned networks: whether pruning
keeps the features the dense network relied on (SHAP), and whether each layer's weight
spectrum still looks well trained (WeightWatcher's power-law alpha). shap, weightwatcher and
matplotlib are imported only inside the functions that need them (``pip install
sklegc[diagnostics]``), so importing this module stays cheap.
"""

from .importance import (
    ImportanceConsistency,
    compare_importances,
    feature_importance,
    importance_consistency,
)
from .plotting import plot_accuracy_vs_sparsity, plot_esd, plot_importance_comparison
from .spectrum import ALPHA_RANGE, layer_eigenvalues, layer_quality

__all__ = [
    "ALPHA_RANGE",
    "ImportanceConsistency",
    "compare_importances",
    "feature_importance",
    "importance_consistency",
    "layer_eigenvalues",
    "layer_quality",
    "plot_accuracy_vs_sparsity",
    "plot_esd",
    "plot_importance_comparison",
]
