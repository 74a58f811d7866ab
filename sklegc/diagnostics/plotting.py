"""Figures for the diagnostics, returned as matplotlib Figures (no pyplot state, Agg-safe)."""

import numpy as np

from .spectrum import EVALS_THRESHOLD, layer_eigenvalues, layer_quality

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _figure(n_axes, width=4.0, height=3.2, sharey=False):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_axes, height), layout="constrained")
    axes = fig.subplots(1, n_axes, sharey=sharey, squeeze=False)[0]
    return fig, axes


def plot_importance_comparison(importances, *, column="mean", top=None):
    """Side-by-side bar plots of mean |SHAP value| per feature, one axes per model.

    Parameters
    ----------
    importances : dict of str to DataFrame or Series
        Model name to its :func:`feature_importance` frame (or a Series of importances), e.g.
        ``{"dense": ..., "LEGC": ..., "random": ...}``. All must cover the same features.
    column : str, default="mean"
        Column of the frames to plot (a class's column, or the class average).
    top : int or None, default=None
        Show only the ``top`` features most important to the first model.

    Returns
    -------
    fig : matplotlib.figure.Figure
        Features are ordered by the first model's importance on every axes, so that a
        changed ranking shows as a ragged profile.
    """
    if not importances:
        raise ValueError("importances is empty: pass {model name: feature_importance(...)}.")
    series = {}
    for name, imp in importances.items():
        series[name] = imp[column] if hasattr(imp, "columns") else imp
    first = next(iter(series.values()))
    order = first.sort_values(ascending=False, kind="stable").index
    if top is not None:
        order = order[:top]
    for name, s in series.items():
        if set(s.index) != set(first.index):
            raise ValueError(f"model {name!r} has different features from the first model.")
    fig, axes = _figure(len(series), width=3.6, height=0.25 * len(order) + 1.5, sharey=True)
    positions = np.arange(len(order))
    for ax, (name, s) in zip(axes, series.items()):
        ax.barh(positions, s.loc[order].to_numpy(), color="C0")
        ax.set_title(name)
        ax.set_xlabel("mean |SHAP value|")
    axes[0].set_yticks(positions, [str(f) for f in order])
    axes[0].invert_yaxis()
    return fig


def plot_esd(estimator, layer=None, *, bins=40):
    """Empirical spectral density of each layer's weights, with WeightWatcher's power-law fit.

    Log-log histogram (density) of the non-zero eigenvalues of ``W^T W`` of the effective
    (pruned) weights. Where the fit succeeded, the fitted tail ``p(lambda) ~ lambda^-alpha``
    for ``lambda >= xmin`` is drawn, scaled to the share of eigenvalues in the tail.

    Parameters
    ----------
    estimator : fitted LEGCPrunedClassifier or Pipeline ending in one
    layer : str, int or None, default=None
        A layer name (e.g. ``"layers.0"``) or its position among the prunable layers; None
        draws every layer.
    bins : int, default=40
        Logarithmically spaced histogram bins.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    evals = layer_eigenvalues(estimator)
    quality = layer_quality(estimator).set_index("layer")
    names = list(evals)
    if layer is not None:
        if isinstance(layer, (int, np.integer)):
            if not -len(names) <= layer < len(names):
                raise ValueError(f"layer index {layer} out of range for {len(names)} layers.")
            names = [names[layer]]
        elif layer in evals:
            names = [layer]
        else:
            raise ValueError(f"unknown layer {layer!r}; the prunable layers are {names}.")
    fig, axes = _figure(len(names))
    for ax, name in zip(axes, names):
        q = quality.loc[name]
        ev = evals[name][evals[name] > EVALS_THRESHOLD]
        title = f"{name} ({q['shape'][0]}x{q['shape'][1]})"
        if len(ev) == 0:
            ax.set_title(f"{title}\nno non-zero eigenvalue")
            continue
        edges = np.geomspace(ev.min() * 0.99, ev.max() * 1.01, min(bins, max(len(ev) // 2, 5)) + 1)
        ax.hist(ev, bins=edges, density=True, color="C0", alpha=0.6, label="ESD")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if q["status"] == "ok":
            alpha, xmin = q["alpha"], q["xmin"]
            tail_share = np.mean(ev >= xmin)
            x = np.geomspace(xmin, ev.max(), 50)
            ax.plot(x, tail_share * (alpha - 1) / xmin * (x / xmin) ** -alpha, color="C3",
                    label=f"power law, alpha={alpha:.2f}")
            ax.axvline(xmin, color="C3", linestyle=":", linewidth=1)
            title += f"\nalpha={alpha:.2f}, alpha_w={q['alpha_weighted']:.2f}"
        else:
            title += f"\n{q['status']}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("eigenvalue of $W^T W$")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    return fig


def plot_accuracy_vs_sparsity(frame, *, x="sparsity", y="accuracy"):
    """Accuracy against the share of pruned weights, one line per method, one axes per dataset.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``dataset``, ``method``, ``sparsity`` (share of weights pruned, in [0, 1], as
        ``LEGCPrunedClassifier.sparsity_``) and ``accuracy``. Several rows with the same
        dataset, method and sparsity (e.g. seeds) are drawn as their mean with a standard
        deviation bar.
    x, y : str, default="sparsity", "accuracy"
        The columns to plot (e.g. ``y="f1"``).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The x axis shows % pruned.
    """
    missing = [c for c in ("dataset", "method", x, y) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks the column(s) {missing}; it has {list(frame.columns)}.")
    if len(frame) == 0:
        raise ValueError("frame has no rows.")
    datasets = list(dict.fromkeys(frame["dataset"]))
    methods = list(dict.fromkeys(frame["method"]))
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets):
        sub = frame[frame["dataset"] == dataset]
        for i, method in enumerate(methods):
            points = sub[sub["method"] == method].groupby(x)[y].agg(["mean", "std"]).sort_index()
            if points.empty:
                continue
            # Distinct markers keep methods visible where their points coincide.
            ax.errorbar(100 * points.index.to_numpy(dtype=float), points["mean"].to_numpy(),
                        yerr=points["std"].fillna(0).to_numpy(), capsize=3,
                        marker=_MARKERS[i % len(_MARKERS)], markerfacecolor="none",
                        color=f"C{i}", label=str(method))
        ax.set_title(str(dataset))
        ax.set_xlabel("% weights pruned")
        ax.set_ylabel(y)
        ax.legend(fontsize=8)
    return fig
