"""Layer quality from the spectrum of the trained weights (WeightWatcher).

WeightWatcher fits a power law ``p(lambda) ~ lambda^-alpha`` to the tail of the empirical
spectral density (ESD) of each weight matrix, the eigenvalues of ``W^T W``. Its authors read
``2 <= alpha <= 6`` as a well-trained layer; the paper reports alpha and alpha_weighted
(``alpha * log10(lambda_max)``) for its MNIST networks, with pruned weights as zeros.
"""

import numpy as np

from ._utils import effective_module, legc_step, quiet

#: WeightWatcher's reading of a well-trained layer: alpha in this closed range.
ALPHA_RANGE = (2.0, 6.0)
#: Eigenvalues at or below this are numerical zeros (WeightWatcher's threshold).
EVALS_THRESHOLD = 1e-5

_COLUMNS = ["layer", "shape", "n_weights", "sparsity", "n_evals", "n_nonzero_evals", "alpha",
            "alpha_weighted", "xmin", "lambda_max", "alpha_in_range", "status", "warning"]


def layer_eigenvalues(estimator):
    """Eigenvalues of ``W^T W`` for each prunable layer's effective weights.

    Parameters
    ----------
    estimator : fitted LEGCPrunedClassifier or Pipeline ending in one

    Returns
    -------
    eigenvalues : dict of str to ndarray
        Per layer name, the ``min(shape)`` eigenvalues in ascending order (the squared
        singular values of the weight matrix, pruned entries counted as zeros).
    """
    from ..network import prunable_layers

    module = effective_module(estimator)
    out = {}
    for name, layer in prunable_layers(module):
        W = layer.weight.detach().numpy().astype(np.float64)
        out[name] = np.sort(np.linalg.svd(W, compute_uv=False) ** 2)
    return out


def layer_quality(estimator, *, min_evals=8, verbose=False):
    """WeightWatcher's power-law analysis of every prunable layer.

    The analysis runs on a copy of the trained network whose pruned weights are zeros (the
    masks made permanent), as in the paper; the estimator is not modified.

    Parameters
    ----------
    estimator : fitted LEGCPrunedClassifier or Pipeline ending in one
    min_evals : int, default=8
        Layers with fewer eigenvalues (``min(shape)``), or fewer non-zero ones, are too small
        for a power-law fit and are reported as ``"too small"`` (WeightWatcher's default).
    verbose : bool, default=False
        Let WeightWatcher print, log and warn; by default its output is swallowed.

    Returns
    -------
    quality : pandas.DataFrame
        One row per prunable layer, in network order, with columns ``layer``, ``shape``
        (out, in), ``n_weights``, ``sparsity`` (share of weights pruned), ``n_evals``,
        ``n_nonzero_evals``, ``alpha``, ``alpha_weighted``, ``xmin`` (start of the fitted
        tail), ``lambda_max`` (WeightWatcher's where it analysed the layer),
        ``alpha_in_range`` (``2 <= alpha <= 6``), ``status``
        (``"ok"``, ``"too small"`` or ``"fit failed"``; alpha is NaN unless ``"ok"``) and
        ``warning`` (WeightWatcher's, e.g. ``"over-trained"``).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator (or Pipeline) is not fitted.
    """
    import pandas as pd

    from ..network import prunable_layers

    step = legc_step(estimator)
    module = effective_module(step)
    layers = prunable_layers(module)
    eigenvalues = layer_eigenvalues(step)
    with quiet(verbose):
        import weightwatcher

        details = weightwatcher.WeightWatcher(model=module).analyze(min_evals=min_evals)
    by_name = {}
    if len(details):
        by_name = {str(row["longname"]): row for _, row in details.iterrows()}

    rows = []
    for name, layer in layers:
        shape = tuple(layer.weight.shape)
        evals = eigenvalues[name]
        n_nonzero = int((evals > EVALS_THRESHOLD).sum())
        mask = step.mask_.get(name)
        row = {
            "layer": name,
            "shape": shape,
            "n_weights": int(np.prod(shape)),
            "sparsity": float(1.0 - mask.mean()) if mask is not None else 0.0,
            "n_evals": len(evals),
            "n_nonzero_evals": n_nonzero,
            "alpha": np.nan,
            "alpha_weighted": np.nan,
            "xmin": np.nan,
            "lambda_max": float(evals[-1]),
            "alpha_in_range": False,
            "warning": "",
        }
        ww = by_name.get(name)
        if ww is not None:
            row["lambda_max"] = float(ww["lambda_max"])
        if len(evals) < min_evals or n_nonzero < min_evals:
            row["status"] = "too small"
        elif ww is None or ww["status"] != "success" or not np.isfinite(ww["alpha"]) \
                or ww["alpha"] <= 0:
            row["status"] = "fit failed"
            row["warning"] = "not analysed" if ww is None else str(ww["warning"])
        else:
            alpha = float(ww["alpha"])
            row.update(
                status="ok",
                alpha=alpha,
                alpha_weighted=float(ww["alpha_weighted"]),
                xmin=float(ww["xmin"]),
                alpha_in_range=bool(ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]),
                warning=str(ww["warning"]),
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=_COLUMNS)
