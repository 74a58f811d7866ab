"""SHAP consistency and WeightWatcher alphas of the reproduction's networks (``--out DIR``).

``python -m sklegc.experiments.diagnostics --out DIR`` fits, per dataset and for one seed,
the five networks of the paper's tables with the paper's settings
(:func:`~sklegc.experiments.config.setting_for`): the dense network, LEGCNet-FT, LEGCNet-PT,
and random and magnitude pruning of as many weights as LEGCNet-FT pruned, all from the same
initial weights (``random_state=seed``), plus a dense network from the next seed as a
reference for how far retraining alone moves the SHAP ranking. Then:

- per dataset, the rank agreement (Spearman, Kendall, top-k overlap) of every network's mean
  |SHAP value| per feature on the test set with the dense network's
  (:func:`sklegc.diagnostics.compare_importances`, dense importances computed once);
- for digits (64-50-30-10, the stand-in for the paper's 784-50-30-10 MNIST network), the
  WeightWatcher alpha / alpha_weighted of every layer beside the paper's Table 4
  (:data:`PAPER_TABLE4`).

Results are written per dataset as each finishes (``DIR/per_dataset/``), so a second run
skips the datasets already done; ``diagnostics.csv``, ``diagnostics.md`` and the importance
figure are rebuilt from those files at the end. A LEGCNet fit whose traced dense phase was
saved by the reproduction run (``--traces``, e.g. ``results/reproduction/traces``) or by an
earlier run of this command (``DIR/traces``) replays that trace instead of tracing again
(:class:`~sklegc.experiments.runner.TraceReplayClassifier`): same pruning decision, a
fraction of the cost.
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .config import PAPER_DATASET, TABULAR, setting_for

__all__ = [
    "DEFAULT_DATASETS",
    "METHODS",
    "PAPER_TABLE4",
    "compare_with_dense",
    "fit_networks",
    "main",
    "paper_table4",
    "run_diagnostics",
    "shap_importances",
    "table4",
]

#: The five networks of the paper's diagnostics, by the reproduction runner's cell names,
#: and the reference network (a dense network from the next seed).
METHODS = ("dense", "LEGCNet-FT", "LEGCNet-PT", "random@FT", "magnitude@FT")
REFERENCE = "dense@seed+1"

DEFAULT_DATASETS = TABULAR + ("digits",)

#: The paper's Table 4 (reference in docs/method.md): WeightWatcher alpha / alpha_weighted of
#: the MNIST network's layers 784-50, 50-30, 30-10, per method.
PAPER_TABLE4 = {
    "dense": ((2.19, 1.63), (1.51, 1.88), (1.94, 2.76)),
    "LEGCNet-FT": ((2.24, 1.64), (1.51, 1.83), (2.29, 3.20)),
    "LEGCNet-PT": ((2.19, 1.71), (1.51, 1.85), (2.73, 3.87)),
    "random@FT": ((2.30, 1.53), (1.70, 1.95), (2.00, 2.84)),
    "magnitude@FT": ((2.19, 1.63), (1.55, 1.85), (1.96, 2.78)),
}
PAPER_LAYERS = ("784→50", "50→30", "30→10")

# SHAP sizes of the full run: every tabular dataset has at most 9 features, so the Kernel
# explainer enumerates every coalition and the values are exact given the background and the
# rows; digits (64 features) samples a fixed number of coalitions.
SHAP_FULL = dict(background=20, max_samples=100, nsamples_wide=1000)
SHAP_QUICK = dict(background=5, max_samples=20, nsamples_wide=200)


def _top_k(n_features):
    """Size of the top-feature sets compared: a third of the features, 1 to 10."""
    return int(min(10, max(1, round(n_features / 3))))


# -- fitting ----------------------------------------------------------------------------------


def _trace_name(dataset, method, seed):
    # The reproduction runner's file name (runner._trace_path without its "traces" folder).
    from .runner import _trace_path

    return _trace_path(".", dataset, method, seed).name


def fit_networks(dataset, *, seed=0, data_dir=None, quick=False, traces=(), save_traces=None,
                 methods=METHODS + (REFERENCE,), progress=None):
    """Fit the diagnostics' networks of one dataset with the paper's settings.

    Parameters
    ----------
    dataset : str
        A key of :data:`sklegc.experiments.config.SETTINGS`.
    seed : int, default=0
        ``random_state`` of every fit (the reference dense network uses ``seed + 1``).
    data_dir : path-like or None, default=None
        Directory of the dataset files (None: ``SKLEGC_DATA_DIR``).
    quick : bool, default=False
        Tiny settings (:data:`sklegc.experiments.config.QUICK`), to check the pipeline.
    traces : sequence of path-like, default=()
        Directories searched, in order, for ``<dataset>_LEGCNet-<FT|PT>_seed<seed>.npz``
        traces (as saved by the reproduction runner); a LEGCNet fit with a trace replays it.
        Only used when ``quick`` is False, since the runner's traces are of the full settings.
    save_traces : path-like or None, default=None
        Directory to save the traces of LEGCNet fits that traced themselves.
    methods : tuple of str, default=METHODS + (REFERENCE,)
        Which networks to fit; ``random@FT`` and ``magnitude@FT`` need ``LEGCNet-FT``.
    progress : callable or None, default=None
        Called with a short description before each fit.

    Returns
    -------
    data : sklearn.utils.Bunch
        The dataset (:func:`sklegc.datasets.load_dataset`, scaled on the training rows).
    networks : dict
        Method name to its fitted ``LEGCPrunedClassifier``.
    info : dict
        Method name to ``{"fit_s", "cpu_s", "trace"}`` (``trace``: the replayed file's
        name, or "").
    """
    from .runner import Cell, _data, _params, _replay_class, load_trace, save_trace
    from ..estimator import LEGCPrunedClassifier

    setting = setting_for(dataset, quick)
    data = _data(dataset, None if data_dir is None else str(data_dir), True)
    networks, info = {}, {}
    for method in methods:
        if progress is not None:
            progress(f"{dataset} {method}")
        cell_method, cell_seed = (("dense", seed + 1) if method == REFERENCE else (method, seed))
        sources = {}
        if "@" in cell_method:
            source = networks[f"LEGCNet-{cell_method.split('@')[1]}"]
            sources = {f"LEGCNet-{cell_method.split('@')[1]}": {
                "n_weights": source.n_weights_, "weights_kept": source.flops_}}
        params = _params(Cell("tables", dataset, cell_method, cell_seed), setting, sources)
        clf, trace = None, ""
        if cell_method.startswith("LEGCNet") and not quick:
            for directory in traces:
                path = Path(directory) / _trace_name(dataset, cell_method, cell_seed)
                if path.is_file():
                    clf = _replay_class()(**params)
                    clf._replay = load_trace(path)
                    trace = str(path)
                    break
        if clf is None:
            clf = LEGCPrunedClassifier(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            start, cpu = time.perf_counter(), time.process_time()
            clf.fit(data.X_train, data.y_train)
        info[method] = {"fit_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
                        "trace": trace}
        if cell_method.startswith("LEGCNet") and not trace and save_traces is not None \
                and not quick:
            save_trace(Path(save_traces) / _trace_name(dataset, cell_method, cell_seed), clf)
        networks[method] = clf
    return data, networks, info


# -- SHAP -------------------------------------------------------------------------------------


def shap_importances(networks, X, *, feature_names=None, background=20, max_samples=100,
                     nsamples_wide=1000, random_state=0, progress=None):
    """Mean |SHAP value| per feature of each network, all on the same rows and background.

    Parameters
    ----------
    networks : dict
        Name to fitted classifier.
    X : array-like of shape (n_samples, n_features)
        Rows to explain (the test set); also summarises the background.
    feature_names : list of str or None, default=None
        Names of the features (the frames' index).
    background : int, default=20
        ``shap.kmeans`` background rows.
    max_samples : int, default=100
        Rows of ``X`` explained.
    nsamples_wide : int, default=1000
        Coalitions per row when there are more than 11 features (with up to 11 every
        coalition is enumerated and this is not used).
    random_state : int, default=0
        Seeds the explained rows and the coalition sampling, the same for every network.
    progress : callable or None, default=None
        Called with each network's name before it is explained.

    Returns
    -------
    importances : dict of str to pandas.DataFrame
        :func:`sklegc.diagnostics.feature_importance` of each network.
    seconds : dict of str to float
        Wall time of each.
    """
    import pandas as pd

    from ..diagnostics import feature_importance

    X = np.asarray(X, dtype=np.float64)
    if feature_names is not None:
        X = pd.DataFrame(X, columns=[str(f) for f in feature_names])
    nsamples = "auto" if X.shape[1] <= 11 else int(nsamples_wide)
    importances, seconds = {}, {}
    for name, clf in networks.items():
        if progress is not None:
            progress(name)
        start = time.perf_counter()
        importances[name] = feature_importance(
            clf, X, background=background, max_samples=max_samples, nsamples=nsamples,
            random_state=random_state)
        seconds[name] = time.perf_counter() - start
    return importances, seconds


def compare_with_dense(importances, *, dense="dense", top_k=None):
    """Rank agreement of every network's importances with the dense network's.

    Parameters
    ----------
    importances : dict of str to pandas.DataFrame
        From :func:`shap_importances`; must contain ``dense``.
    dense : str, default="dense"
        The reference network's name.
    top_k : int or None, default=None
        Size of the top-feature sets; None: a third of the features, 1 to 10.

    Returns
    -------
    dict of str to sklegc.diagnostics.ImportanceConsistency
        Per network other than ``dense``.
    """
    from ..diagnostics import compare_importances

    reference = importances[dense]
    k = _top_k(len(reference)) if top_k is None else top_k
    return {name: compare_importances(reference, imp, top_k=k, labels=(dense, name))
            for name, imp in importances.items() if name != dense}


# -- WeightWatcher ----------------------------------------------------------------------------


def table4(networks, *, min_evals=8):
    """WeightWatcher alpha and alpha_weighted of every layer of each network (Table 4's layout).

    Parameters
    ----------
    networks : dict of str to fitted LEGCPrunedClassifier
        Networks with the same architecture.
    min_evals : int, default=8
        Passed to :func:`sklegc.diagnostics.layer_quality`: smaller layers get NaN.

    Returns
    -------
    pandas.DataFrame
        One row per prunable layer, in network order: ``layer`` (``"in→out"``), then per
        network ``<name> alpha``, ``<name> alpha_weighted`` and ``<name> sparsity``.
    """
    import pandas as pd

    from ..diagnostics import layer_quality

    table = None
    for name, clf in networks.items():
        q = layer_quality(clf, min_evals=min_evals)
        if table is None:
            table = pd.DataFrame({"layer": [f"{s[1]}→{s[0]}" for s in q["shape"]]})
        elif len(q) != len(table):
            raise ValueError(f"network {name!r} has {len(q)} layers, the first {len(table)}.")
        table[f"{name} alpha"] = q["alpha"].to_numpy()
        table[f"{name} alpha_weighted"] = q["alpha_weighted"].to_numpy()
        table[f"{name} sparsity"] = q["sparsity"].to_numpy()
    return table


def paper_table4():
    """The paper's Table 4 (MNIST) in the layout of :func:`table4` (no sparsity columns).

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    table = pd.DataFrame({"layer": list(PAPER_LAYERS)})
    for name, layers in PAPER_TABLE4.items():
        table[f"{name} alpha"] = [a for a, _ in layers]
        table[f"{name} alpha_weighted"] = [w for _, w in layers]
    return table


# -- one dataset, the run ---------------------------------------------------------------------


def _dataset_files(out, dataset):
    base = Path(out) / "per_dataset"
    return {"rows": base / f"{dataset}.csv", "importance": base / f"{dataset}_importance.csv",
            "table4": base / f"{dataset}_table4.csv", "meta": base / f"{dataset}.json"}


def _done(out, dataset, meta):
    files = _dataset_files(out, dataset)
    if not (files["rows"].is_file() and files["importance"].is_file()
            and files["meta"].is_file()):
        return False
    if dataset == "digits" and not files["table4"].is_file():
        return False
    saved = json.loads(files["meta"].read_text())
    return all(saved.get(k) == v for k, v in meta.items())


def _run_dataset(dataset, out, *, seed, data_dir, quick, traces, shap_kw, progress):
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score

    start = time.perf_counter()
    data, networks, info = fit_networks(
        dataset, seed=seed, data_dir=data_dir, quick=quick, traces=traces,
        save_traces=Path(out) / "traces", progress=progress)
    importances, shap_s = shap_importances(
        networks, data.X_test, feature_names=data.feature_names, random_state=seed,
        progress=lambda name: progress(f"{dataset} SHAP {name}"), **shap_kw)
    consistency = compare_with_dense(importances)
    rows = []
    for method, clf in networks.items():
        pred = clf.predict(data.X_test)
        c = consistency.get(method)
        rows.append({
            "dataset": dataset, "method": method, "seed": seed + (method == REFERENCE),
            "n_weights": clf.n_weights_, "weights_kept": clf.flops_,
            "pct_pruned": 100.0 * clf.sparsity_,
            "accuracy": accuracy_score(data.y_test, pred),
            "f1_macro": f1_score(data.y_test, pred, average="macro"),
            "n_features": data.X_test.shape[1], "shap_rows": min(shap_kw["max_samples"],
                                                                  len(data.X_test)),
            "spearman": np.nan if c is None else c.spearman,
            "kendall": np.nan if c is None else c.kendall,
            "top_k": _top_k(data.X_test.shape[1]),
            "top_k_overlap": np.nan if c is None else c.top_k_overlap,
            "top_features": ";".join(importances[method]["mean"]
                                     .sort_values(ascending=False, kind="stable")
                                     .index[:_top_k(data.X_test.shape[1])]),
            "fit_s": round(info[method]["fit_s"], 2), "cpu_s": round(info[method]["cpu_s"], 2),
            "shap_s": round(shap_s[method], 2),
            "trace_replayed": Path(info[method]["trace"]).name if info[method]["trace"] else "",
        })
    files = _dataset_files(out, dataset)
    files["rows"].parent.mkdir(parents=True, exist_ok=True)
    if dataset == "digits":
        table4({m: networks[m] for m in METHODS}).to_csv(files["table4"], index=False)
    pd.DataFrame({m: imp["mean"] for m, imp in importances.items()}).to_csv(files["importance"])
    pd.DataFrame(rows).to_csv(files["rows"], index=False)
    return time.perf_counter() - start


def run_diagnostics(out, datasets=DEFAULT_DATASETS, *, seed=0, data_dir=None, quick=False,
                    traces=(), figure_dataset=None, progress=True):
    """Run (or resume) the diagnostics of ``datasets`` and write the tables and the figure.

    Parameters
    ----------
    out : path-like
        Output directory: ``per_dataset/`` (one dataset's results, written as it finishes),
        ``traces/``, ``diagnostics.csv``, ``diagnostics.md``, ``importance_<dataset>.png``
        and ``runs.jsonl`` (one line per invocation).
    datasets : sequence of str, default=DEFAULT_DATASETS
        The tabular datasets and digits.
    seed : int, default=0
        ``random_state`` of the fits and of the SHAP sampling.
    data_dir : path-like or None, default=None
        Directory of the dataset files (None: ``SKLEGC_DATA_DIR``).
    quick : bool, default=False
        Tiny training settings and SHAP sizes: checks the pipeline only.
    traces : sequence of path-like, default=()
        Extra directories of saved LEGCNet traces to replay (``out/traces`` is searched
        first).
    figure_dataset : str or None, default=None
        Dataset of the importance figure (dense vs LEGCNet-FT vs random); None: the one
        where LEGCNet-FT pruned the largest share.
    progress : bool, default=True
        tqdm bar on stderr.

    Returns
    -------
    dict
        ``ran`` and ``skipped`` (dataset names), ``wall_s``, and the paths ``csv``, ``md``
        and ``figure``.
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shap_kw = dict(SHAP_QUICK if quick else SHAP_FULL)
    meta = {"seed": seed, "quick": bool(quick), **shap_kw}
    start = time.perf_counter()
    ran, skipped = [], []
    todo = [d for d in datasets if not _done(out, d, meta)]
    skipped = [d for d in datasets if d not in todo]
    bar = tqdm(total=len(datasets), initial=len(skipped), desc="datasets", unit="dataset",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        for dataset in todo:
            seconds = _run_dataset(
                dataset, out, seed=seed, data_dir=data_dir, quick=quick,
                traces=[out / "traces", *map(Path, traces)], shap_kw=shap_kw,
                progress=lambda text: bar.set_postfix_str(text))
            _dataset_files(out, dataset)["meta"].write_text(
                json.dumps(dict(meta, wall_s=round(seconds, 1))))
            ran.append(dataset)
            bar.update(1)
    finally:
        bar.close()
        wall = time.perf_counter() - start
        with open(out / "runs.jsonl", "a") as log:
            log.write(json.dumps({
                "started": time.strftime("%Y-%m-%dT%H:%M:%S",
                                         time.localtime(time.time() - wall)),
                "wall_s": round(wall, 1), "ran": ran, "skipped": skipped, "quick": bool(quick),
                "seed": seed, "cpus": os.cpu_count(), "argv": sys.argv}) + "\n")
    paths = write_outputs(out, datasets, figure_dataset=figure_dataset)
    return dict(ran=ran, skipped=skipped, wall_s=wall, **paths)


# -- tables and figure ------------------------------------------------------------------------


def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _pair(a, w):
    return "–" if not np.isfinite(a) else f"{a:.2f} / {w:.2f}"


def _side_by_side(frame, present, column):
    """Markdown rows: per dataset, ``column`` of each network next to the others, and means."""
    methods = ("LEGCNet-FT", "random@FT", "magnitude@FT", "LEGCNet-PT", REFERENCE)
    lines = ["| dataset | % pruned (FT) | " + " | ".join(methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    by = frame.set_index(["dataset", "method"])
    values = {m: [] for m in methods}
    for dataset in present:
        cells = []
        for method in methods:
            if (dataset, method) not in by.index:
                cells.append("–")
                continue
            r = by.loc[(dataset, method)]
            values[method].append(r[column])
            pct = f" ({r['pct_pruned']:.1f}%)" if method == "LEGCNet-PT" else ""
            cells.append(_fmt(r[column]) + pct)
        pct = by.loc[(dataset, "LEGCNet-FT"), "pct_pruned"] \
            if (dataset, "LEGCNet-FT") in by.index else np.nan
        lines.append(f"| {dataset} | {_fmt(pct, 1)} | " + " | ".join(cells) + " |")
    mean_pct = frame.loc[frame["method"] == "LEGCNet-FT", "pct_pruned"].mean()
    lines.append(f"| mean | {_fmt(mean_pct, 1)} | " + " | ".join(
        _fmt(float(np.nanmean(v))) if len(v) else "–" for v in values.values()) + " |")
    return lines


def write_outputs(out, datasets, *, figure_dataset=None):
    """Combine the per-dataset results in ``out`` into the CSV, the markdown and the figure.

    Parameters
    ----------
    out : path-like
        The output directory of :func:`run_diagnostics`.
    datasets : sequence of str
        Datasets to include (those without results are left out).
    figure_dataset : str or None, default=None
        Dataset of the importance figure; None: the one where LEGCNet-FT pruned the largest
        share.

    Returns
    -------
    dict
        Paths ``csv``, ``md`` and ``figure`` (None without results).
    """
    import pandas as pd

    from ..diagnostics import plot_importance_comparison

    out = Path(out)
    present = [d for d in datasets if _dataset_files(out, d)["rows"].is_file()]
    if not present:
        return {"csv": None, "md": None, "figure": None}
    frame = pd.concat([pd.read_csv(_dataset_files(out, d)["rows"]) for d in present],
                      ignore_index=True)
    shifts = {}
    for dataset in present:
        imp = pd.read_csv(_dataset_files(out, dataset)["importance"], index_col=0)
        shares = imp / imp.sum(axis=0)
        for method in imp.columns:
            if method != "dense":
                shifts[(dataset, method)] = float(
                    0.5 * np.abs(shares[method] - shares["dense"]).sum())
    frame["importance_shift"] = [shifts.get((d, m), np.nan)
                                 for d, m in zip(frame["dataset"], frame["method"])]
    csv_path = out / "diagnostics.csv"
    frame.to_csv(csv_path, index=False)

    lines = ["# SHAP consistency and WeightWatcher alphas of the reproduction's networks", "",
             f"Seed {int(frame['seed'].min())}; every network of a dataset starts from the same "
             "initial weights except `dense@seed+1` (the next seed), a reference for how far "
             "retraining alone moves the SHAP ranking. Baselines prune as many weights as "
             "LEGCNet-FT. Importance: mean |SHAP value| of the class probabilities on test rows "
             "(Kernel explainer); agreement with the dense network's importances.", "",
             "## SHAP agreement with the dense network", "",
             "| dataset | method | % pruned | accuracy | Spearman | Kendall | top-k overlap (k) "
             "| shift | top features |",
             "|---|---|---|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        lines.append(
            f"| {r['dataset']} | {r['method']} | {r['pct_pruned']:.1f} | {r['accuracy']:.3f} | "
            f"{_fmt(r['spearman'])} | {_fmt(r['kendall'])} | "
            f"{_fmt(r['top_k_overlap'], 2)} ({int(r['top_k'])}) | "
            f"{_fmt(r['importance_shift'])} | {str(r['top_features']).replace(';', ', ')} |")
    lines += ["", "### Side by side", "",
              "Random and magnitude pruning remove as many weights as LEGCNet-FT (its % pruned "
              "in the second column); LEGCNet-PT prunes its own share (in brackets). "
              "`dense@seed+1` is a dense network from other initial weights: the spread that "
              "retraining alone causes.", "",
              "Spearman rho with the dense network's importances (1 = same ranking):", ""]
    lines += _side_by_side(frame, present, "spearman")
    lines += ["", "Importance shift: total variation distance between the dense network's and "
              "the network's importance shares (each model's mean |SHAP| divided by its sum; "
              "0 = same profile, 1 = disjoint). Unlike a rank correlation it is not coarse when "
              "there are only 3 or 4 features:", ""]
    lines += _side_by_side(frame, present, "importance_shift")
    lines.append("")

    t4_path = _dataset_files(out, "digits")["table4"]
    if "digits" in present and t4_path.is_file():
        t4 = pd.read_csv(t4_path)
        paper = paper_table4()
        lines += ["", "## WeightWatcher alpha / alpha_weighted per layer (Table 4)", "",
                  "digits (1,257 training images of 8x8 pixels, 64-50-30-10) stands in for "
                  "the paper's MNIST (49,000 images of 28x28, 784-50-30-10): the last two "
                  "layers have the paper's shapes, the first is 64x50 instead of 784x50, and "
                  "the networks prune other shares of weights, so only the pattern across "
                  "methods is comparable, not the values. With 50, 30 and 10 eigenvalues per "
                  "layer the power-law fits rest on few points.", "",
                  "| method | " + " | ".join(f"{l} (ours)" for l in t4["layer"]) + " | "
                  + " | ".join(f"{l} (paper, MNIST)" for l in paper["layer"]) + " |",
                  "|---|" + "---|" * (len(t4) + len(paper))]
        for method in METHODS:
            ours = [_pair(a, w) + f" ({100 * s:.0f}%)" for a, w, s in zip(
                t4[f"{method} alpha"], t4[f"{method} alpha_weighted"], t4[f"{method} sparsity"])]
            theirs = [_pair(a, w) for a, w in zip(paper[f"{method} alpha"],
                                                   paper[f"{method} alpha_weighted"])]
            lines.append(f"| {method} | " + " | ".join(ours + theirs) + " |")
        lines += ["", "(ours: alpha / alpha_weighted (share of the layer's weights pruned))"]

    if figure_dataset is None:
        # Where LEGCNet-FT pruned most: a dataset where it pruned nothing shows nothing.
        ft = frame[frame["method"] == "LEGCNet-FT"]
        figure_dataset = str(ft.loc[ft["pct_pruned"].idxmax(), "dataset"]) if len(ft) \
            else present[0]
    figure = None
    if figure_dataset in present:
        imp = pd.read_csv(_dataset_files(out, figure_dataset)["importance"], index_col=0)
        shown = [m for m in ("dense", "LEGCNet-FT", "random@FT") if m in imp.columns]
        pct = frame[frame["dataset"] == figure_dataset].set_index("method")["pct_pruned"]
        fig = plot_importance_comparison(
            {f"{m} ({pct[m]:.0f}% pruned)": imp[m] for m in shown},
            top=15 if len(imp) > 15 else None)
        fig.suptitle(f"{PAPER_DATASET.get(figure_dataset, figure_dataset)}: mean |SHAP| per "
                     "feature, in the dense network's order")
        figure = out / f"importance_{figure_dataset}.png"
        fig.savefig(figure, dpi=110)
        lines += ["", f"![importance, {figure_dataset}]({figure.name})"]
    md_path = out / "diagnostics.md"
    md_path.write_text("\n".join(lines) + "\n")
    return {"csv": csv_path, "md": md_path, "figure": figure}


# -- command line -----------------------------------------------------------------------------


def main(argv=None):
    """``python -m sklegc.experiments.diagnostics``: run the diagnostics, print where they are.

    Parameters
    ----------
    argv : list of str or None, default=None
        Command-line arguments (None: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    from .config import SETTINGS

    parser = argparse.ArgumentParser(prog="python -m sklegc.experiments.diagnostics",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS),
                        choices=list(SETTINGS), metavar="NAME",
                        help=f"datasets (default: {list(DEFAULT_DATASETS)})")
    parser.add_argument("--seed", type=int, default=0, help="random_state of the fits")
    parser.add_argument("--data-dir", default=os.environ.get("SKLEGC_DATA_DIR"),
                        help="directory of the dataset files (default: $SKLEGC_DATA_DIR)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny epochs, windows and SHAP sizes: checks the pipeline only")
    parser.add_argument("--traces", nargs="*", default=[],
                        help="directories of saved LEGCNet traces to replay "
                             "(e.g. results/reproduction/traces)")
    parser.add_argument("--figure-dataset", default=None,
                        help="dataset of the figure (default: where LEGCNet-FT pruned most)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    import torch

    # Tiny networks: one thread is as fast as several, and does not fight other work.
    torch.set_num_threads(1)
    result = run_diagnostics(args.out, args.datasets, seed=args.seed, data_dir=args.data_dir,
                             quick=args.quick, traces=args.traces,
                             figure_dataset=args.figure_dataset, progress=not args.no_progress)
    print(f"diagnostics of {len(result['ran'])} dataset(s) in {result['wall_s']:.0f} s "
          f"({len(result['skipped'])} already done): {result['md']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
