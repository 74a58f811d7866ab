"""sklegc: chaos-causality (LEGCNet) pruning of dense neural networks for scikit-learn.

The public API is re-exported here and loaded on first use, so that ``import sklegc``
stays cheap: torch and skorch load with the estimator, shap and weightwatcher only
with the diagnostics that need them.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "LEGCPrunedClassifier": "sklegc.estimator",
    "PruningWarning": "sklegc.estimator",
    "PAPER_PARAMS": "sklegc.estimator",
    "TrainingDivergedError": "sklegc.trajectory",
    "load_dataset": "sklegc.datasets",
    "feature_importance": "sklegc.diagnostics",
    "importance_consistency": "sklegc.diagnostics",
    "layer_quality": "sklegc.diagnostics",
    "max_lyapunov": "sklegc.lyapunov",
    "divergence_curve": "sklegc.lyapunov",
    "granger_tests": "sklegc.granger",
    "GrangerResult": "sklegc.granger",
    "window_layout": "sklegc.windows",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sklegc' has no attribute {name!r}")
    if module in ("sklegc.estimator", "sklegc.trajectory"):
        # Before torch loads: the kernels compile meanwhile on the first use after installing.
        from ._jit import compile_in_background

        compile_in_background()
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
