"""The principled-pruning study: calibrated tests, accuracy-constrained pruning, strong baselines.

``python -m sklegc reproduce --study principled`` runs it (resumable, like the paper's
protocol: one row per fit in ``cells.csv``, finished cells skipped on a rerun) and writes
``principled.md``. Per tabular dataset and seed, every fit starts from the same initial
weights (``random_state=seed``) with the paper's settings
(:data:`sklegc.experiments.config.SETTINGS`), and holds out the same 10% of the training
rows (stratified): the rows ``max_accuracy_drop`` checks the accuracy on. Fits without an
accuracy constraint are run with ``max_accuracy_drop=1.0``, which holds those rows out and
allows any drop, so that every fit of a seed trains on the same rows. Fine-tuning is capped
at the sparsity sweep's epochs (about 10,000 steps) and stops at the training-accuracy
threshold, as in the sweep.

The methods (:data:`METHODS`), in five groups:

- **rule**: the dense network; LEGC with the paper's test (``"LEGC paper"``, the one fit
  that traces); with the calibrated test of the null calibration (``stationarity="adf"``,
  ``lag_selection="bic"``, ``gc_test="ssr_ftest"``, :data:`CALIBRATED`); and the
  calibrated test reading the loss (``effect="loss"``). Each prunes what its rule calls
  non-causal at significance 0.05.
- **<=1%**: ``max_accuracy_drop=0.01`` with every weight a candidate (``amount=1.0``):
  LEGC ranked by either test's p-values, magnitude, random, SNIP and IMP (five rounds up to
  90%) prune as far as the held-out accuracy allows.
- **@paper**: random pruning with the same per-layer counts as LEGC paper's rule
  (:func:`sklegc.masks.layerwise_random_keep`), and magnitude, SNIP and IMP pruning of as
  many weights as it pruned; **@calibrated**: random (per-layer counts) and magnitude
  pruning at the calibrated rule's sparsity.
- **50%**: half of the weights, ranked by the calibrated test's p-values, by magnitude,
  SNIP or IMP, and at random with the LEGC ranking's per-layer counts.

The LEGC fits other than ``"LEGC paper"`` replay its saved trace (the Lyapunov exponents,
the misclassification and loss series, and the dense network's weights at the end of the
traced phase; :class:`~sklegc.experiments.runner.TraceReplayClassifier`): the traced phase
is the same computation for all of them. The dense network, LEGC paper and the @paper and
50% networks are explained with SHAP (mean |SHAP value| per feature on 100 test rows,
:func:`sklegc.experiments.diagnostics.shap_importances`, the same rows and background for
every network of a dataset), so that the report can compare their agreement with the dense
network's importances over seeds.
"""

import json
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .config import PAPER_DATASET, TABULAR, setting_for

__all__ = [
    "CALIBRATED",
    "COLUMNS",
    "METHODS",
    "Method",
    "estimated_epochs",
    "plan_cells",
    "run_principled_cell",
    "report_text",
    "sign_test",
    "write_report",
]

STUDY = "principled"

#: The recommended test of the null calibration (``docs/reproduction.md``).
CALIBRATED = dict(stationarity="adf", lag_selection="bic", gc_test="ssr_ftest")

#: The accuracy constraint of the "<=1%" group.
MAX_DROP = 0.01


@dataclass(frozen=True)
class Method:
    """One fit of the study, per dataset and seed.

    Attributes
    ----------
    group : str
        ``"rule"``, ``"<=1%"``, ``"@paper"``, ``"@calibrated"`` or ``"50%"``.
    pruning : str
        The estimator's ``pruning``.
    params : dict
        Further estimator parameters.
    count_of : str or None
        Prune as many weights as this method's fit of the same seed did.
    layers_of : str or None
        Random pruning with the per-layer counts of this method's fit of the same seed.
    shap : bool
        Explain the fitted network with SHAP.
    traces : bool
        The fit traces its dense phase and saves the trace; the other LEGC fits of the same
        dataset and seed replay it.
    """

    group: str
    pruning: str
    params: dict = field(default_factory=dict)
    count_of: str = None
    layers_of: str = None
    shap: bool = False
    traces: bool = False

    @property
    def replays(self):
        """Whether the fit replays the trace of ``"LEGC paper"``."""
        return self.pruning == "legc" and not self.traces

    @property
    def needs(self):
        sources = [self.count_of, self.layers_of, TRACER if self.replays else None]
        return tuple(dict.fromkeys(m for m in sources if m))


TRACER = "LEGC paper"
_LIMIT = dict(max_accuracy_drop=MAX_DROP, amount=1.0)

METHODS = {
    "dense": Method("rule", "none", shap=True),
    TRACER: Method("rule", "legc", shap=True, traces=True),
    "LEGC calibrated": Method("rule", "legc", CALIBRATED),
    "LEGC calibrated, loss": Method("rule", "legc", dict(CALIBRATED, effect="loss")),
    "LEGC calibrated <=1%": Method("<=1%", "legc", dict(CALIBRATED, **_LIMIT)),
    "LEGC paper <=1%": Method("<=1%", "legc", _LIMIT),
    "magnitude <=1%": Method("<=1%", "magnitude", _LIMIT),
    "random <=1%": Method("<=1%", "random", _LIMIT),
    "SNIP <=1%": Method("<=1%", "snip", _LIMIT),
    "IMP <=1%": Method("<=1%", "imp", dict(max_accuracy_drop=MAX_DROP, amount=0.9,
                                           imp_rounds=5)),
    "random layers @paper": Method("@paper", "random", layers_of=TRACER, shap=True),
    "magnitude @paper": Method("@paper", "magnitude", count_of=TRACER, shap=True),
    "SNIP @paper": Method("@paper", "snip", count_of=TRACER, shap=True),
    "IMP @paper": Method("@paper", "imp", count_of=TRACER, shap=True),
    "random layers @calibrated": Method("@calibrated", "random", layers_of="LEGC calibrated"),
    "magnitude @calibrated": Method("@calibrated", "magnitude", count_of="LEGC calibrated"),
    "LEGC rank 50%": Method("50%", "legc", dict(CALIBRATED, amount=0.5), shap=True),
    "random layers 50%": Method("50%", "random", layers_of="LEGC rank 50%", shap=True),
    "magnitude 50%": Method("50%", "magnitude", dict(amount=0.5), shap=True),
    "SNIP 50%": Method("50%", "snip", dict(amount=0.5), shap=True),
    "IMP 50%": Method("50%", "imp", dict(amount=0.5), shap=True),
}
"""Every fit of the study, by name (see the module docstring)."""

COLUMNS = [
    "study", "dataset", "method", "seed", "target_sparsity", "group",
    "accuracy", "f1_macro", "weights_kept", "n_weights", "pct_pruned", "layer_pruned",
    "heldout_dense", "heldout", "within_drop", "fallback",
    "epochs_run_dense", "epochs_run_sparse", "fit_time_s", "cpu_s",
    "n_windows", "maxlag", "n_untestable", "trace_replayed", "shap", "shap_s", "warnings",
]
"""Columns of the study's ``cells.csv``."""

# SHAP of the tabular networks: every coalition of their 3-9 features is enumerated, so the
# values are exact given the rows and the background; one explainer seed for every network.
_SHAP = dict(background=20, max_samples=100, random_state=0)
_SHAP_QUICK = dict(background=5, max_samples=20, random_state=0)


def plan_cells(datasets, seeds):
    """The study's cells (:class:`~sklegc.experiments.runner.Cell`) on the tabular datasets.

    Parameters
    ----------
    datasets : list of str
        Datasets; only the tabular ones (:data:`sklegc.experiments.config.TABULAR`) are used.
    seeds : list of int

    Returns
    -------
    list of Cell

    Examples
    --------
    >>> cells = plan_cells(["iris", "digits"], [0, 1])
    >>> len(cells) == 2 * len(METHODS), {c.dataset for c in cells}
    (True, {'iris'})
    """
    from .runner import Cell

    return [Cell(STUDY, dataset, name, seed, needs=method.needs)
            for dataset in datasets if dataset in TABULAR
            for seed in seeds for name, method in METHODS.items()]


def estimated_epochs(cell, setting):
    """Rough epochs of ``cell``'s fit, used only to start the longest cells first.

    Parameters
    ----------
    cell : Cell
    setting : Setting

    Returns
    -------
    float
    """
    method = METHODS[cell.method]
    if method.traces:
        return 1.3 * setting.epochs  # traced: about a third more per step
    rounds = method.params.get("imp_rounds", 3) if method.pruning == "imp" else 1
    return 0.2 * setting.epochs + rounds * setting.sweep_epochs


# -- one cell ---------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _study_class():
    from ..masks import layerwise_random_keep, pruning_order
    from ..network import prunable_layers
    from .runner import _replay_class

    class StudyClassifier(_replay_class()):
        """The study's estimator: replays a trace (``_replay``), records the dense network at
        the end of the traced phase (``_keep_dense_state``), and prunes at random with given
        per-layer counts (``_layer_counts``, with ``pruning="random"``)."""

        def _train_dense(self, net, data, plan):
            tracer = super()._train_dense(net, data, plan)
            if getattr(self, "_keep_dense_state", False):
                self._dense_state = {k: v.detach().cpu().clone() for k, v in
                                     self._plain_copy(net.module_).state_dict().items()}
            return tracer

        def _decide(self, net, tracer, plan, seed, data=None, initial_state=None):
            keep = super()._decide(net, tracer, plan, seed, data, initial_state)
            counts = getattr(self, "_layer_counts", None)
            if counts is None or plan.pruning != "random":
                return keep
            keep = layerwise_random_keep(prunable_layers(net.module_), counts, seed)
            self.pruning_order_ = pruning_order(
                np.random.default_rng(seed).random(keep.size), ~keep)
            return keep

    return StudyClassifier


def _tracer_path(out, dataset, seed):
    return Path(out) / "traces" / f"{dataset}_LEGC-paper_seed{seed}.npz"


def _estimator_params(cell, setting, sources):
    from ..estimator import PAPER_PARAMS

    method = METHODS[cell.method]
    params = dict(PAPER_PARAMS, hidden_layer_sizes=setting.hidden, lr=setting.lr,
                  batch_size=setting.batch_size, max_epochs=setting.epochs,
                  window_size=setting.window, maxlag="auto",
                  target_accuracy=setting.threshold, fine_tune_epochs=setting.sweep_epochs,
                  random_state=cell.seed, pruning=method.pruning, max_accuracy_drop=1.0)
    params.update(method.params)
    source = method.count_of or method.layers_of
    if source is not None:
        row = sources[source]
        params["amount"] = int(row["n_weights"]) - int(row["weights_kept"])
    return params


def run_principled_cell(cell, *, out, data_dir=None, quick=False, scale=True, sources=None):
    """Fit one cell of the study and return its row (:data:`COLUMNS`).

    Parameters
    ----------
    cell : Cell
        A cell of :func:`plan_cells`.
    out : path-like
        Output directory; ``"LEGC paper"`` saves its trace under ``out/traces``.
    data_dir : path-like or None
    quick : bool, default=False
    scale : bool or "authors", default=True
    sources : dict or None
        Rows of the cells in ``cell.needs``, by method.

    Returns
    -------
    dict
    """
    from sklearn.metrics import accuracy_score, f1_score

    from ..masks import layer_counts
    from .runner import _data, load_trace, save_trace, timed_fit

    method = METHODS[cell.method]
    setting = setting_for(cell.dataset, quick)
    data = _data(cell.dataset, None if data_dir is None else str(data_dir), scale)
    sources = sources or {}
    clf = _study_class()(**_estimator_params(cell, setting, sources))
    replayed = ""
    if method.replays and _tracer_path(out, cell.dataset, cell.seed).is_file():
        clf._replay = load_trace(_tracer_path(out, cell.dataset, cell.seed))
        replayed = _tracer_path(out, cell.dataset, cell.seed).name
    if method.traces:
        clf._keep_dense_state = True
    if method.layers_of is not None:
        clf._layer_counts = json.loads(sources[method.layers_of]["layer_pruned"])

    caught, fit_time, cpu_time = timed_fit(clf, data.X_train, data.y_train)
    pred = clf.predict(data.X_test)
    if method.traces:
        save_trace(_tracer_path(out, cell.dataset, cell.seed), clf, clf._dense_state)

    shap_vector, shap_s = "", ""
    if method.shap:
        from .diagnostics import shap_importances

        start = time.perf_counter()
        importances, _ = shap_importances(
            {cell.method: clf}, data.X_test, feature_names=data.feature_names,
            **(_SHAP_QUICK if quick else _SHAP))
        shap_vector = json.dumps([round(float(v), 8) for v in importances[cell.method]["mean"]])
        shap_s = round(time.perf_counter() - start, 2)

    phases = {}
    for row in clf.net_.history:
        phases[row.get("phase")] = phases.get(row.get("phase"), 0) + 1
    search = clf.accuracy_search_
    limit = clf.max_accuracy_drop
    within = ("" if clf.heldout_accuracy_ is None or clf.dense_heldout_accuracy_ is None
              else bool(clf.heldout_accuracy_ >= clf.dense_heldout_accuracy_ - limit - 1e-12))
    pvalues = clf.granger_pvalues_
    messages = sorted({str(w.message).split(";")[0][:120] for w in caught
                       if issubclass(w.category, UserWarning)})
    return {
        "study": STUDY, "dataset": cell.dataset, "method": cell.method, "seed": cell.seed,
        "target_sparsity": "", "group": method.group,
        "accuracy": accuracy_score(data.y_test, pred),
        "f1_macro": f1_score(data.y_test, pred, average="macro"),
        "weights_kept": clf.flops_, "n_weights": clf.n_weights_,
        "pct_pruned": 100.0 * clf.sparsity_,
        "layer_pruned": json.dumps(layer_counts(clf.pruned_,
                                                [shape for _, shape in clf.weight_layers_])),
        "heldout_dense": _blank(clf.dense_heldout_accuracy_),
        "heldout": _blank(clf.heldout_accuracy_), "within_drop": within,
        "fallback": "" if search is None else bool(search["fallback"]),
        "epochs_run_dense": phases.get("dense", 0),
        "epochs_run_sparse": sum(v for k, v in phases.items() if k in ("sparse", "imp")),
        "fit_time_s": round(fit_time, 3), "cpu_s": round(cpu_time, 3),
        "n_windows": "" if clf.misclassification_ is None else len(clf.misclassification_),
        "maxlag": _blank(clf.maxlag_),
        "n_untestable": "" if pvalues is None else int(np.isnan(pvalues).sum()),
        "trace_replayed": replayed, "shap": shap_vector, "shap_s": shap_s,
        "warnings": " | ".join(messages),
    }


def _blank(value):
    return "" if value is None else value


# -- statistics -------------------------------------------------------------------------------


def sign_test(differences):
    """Paired differences summarised, with a two-sided sign test over the untied pairs.

    Parameters
    ----------
    differences : array-like of float
        One difference per pair (NaN pairs are dropped).

    Returns
    -------
    dict
        ``n``, ``mean``, ``std``, ``wins`` (> 0), ``ties`` (== 0), ``losses`` (< 0) and
        ``p`` (``scipy.stats.binomtest(wins, wins + losses, 0.5)``; NaN without untied
        pairs).

    Examples
    --------
    >>> r = sign_test([0.1, 0.2, 0.0, -0.05, 0.3, 0.1, 0.2, 0.1])
    >>> r["wins"], r["ties"], r["losses"], round(r["p"], 4)
    (6, 1, 1, 0.125)
    """
    from scipy.stats import binomtest

    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    return {"n": int(d.size), "mean": float(d.mean()) if d.size else np.nan,
            "std": float(d.std(ddof=1)) if d.size > 1 else np.nan,
            "wins": wins, "ties": int(d.size - wins - losses), "losses": losses,
            "p": float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else np.nan}


def _shap_agreement(frame):
    """Per cell with SHAP values: Spearman rho and importance shift against the dense network
    of the same dataset and seed, and of the dense network against the next seed's."""
    from scipy.stats import spearmanr

    vectors = {(r.dataset, int(r.seed), r.method): np.asarray(json.loads(r.shap))
               for r in frame.itertuples() if isinstance(r.shap, str) and r.shap}
    seeds = sorted({s for _, s, _ in vectors})
    rows = []
    for (dataset, seed, method), v in vectors.items():
        reference = seed, "dense"
        if method == "dense":
            if len(seeds) < 2:
                continue
            # Retraining alone: this seed's dense network against the next seed's.
            reference = seeds[(seeds.index(seed) + 1) % len(seeds)], "dense"
            method = "dense, next seed"
        d = vectors.get((dataset, *reference))
        if d is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = spearmanr(d, v).statistic
        shift = 0.5 * np.abs(d / d.sum() - v / v.sum()).sum() if d.sum() and v.sum() else np.nan
        rows.append({"dataset": dataset, "seed": seed, "method": method,
                     "spearman": float(rho), "shift": float(shift)})
    import pandas as pd

    return pd.DataFrame(rows, columns=["dataset", "seed", "method", "spearman", "shift"])


# -- the report -------------------------------------------------------------------------------


def _fmt(mean, std, digits=3):
    if mean is None or np.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" + ("" if std is None or np.isnan(std) else f" ± {std:.{digits}f}")


def _by_dataset(frame, methods, metric, digits=3, scale=1.0):
    datasets = [d for d in TABULAR if d in set(frame["dataset"])]
    lines = ["| dataset | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for dataset in datasets + ["all"]:
        sub = frame if dataset == "all" else frame[frame["dataset"] == dataset]
        cells = []
        for m in methods:
            values = scale * sub.loc[sub["method"] == m, metric].astype(float)
            cells.append(_fmt(values.mean(), values.std(), digits) if len(values) else "—")
        name = "**all**" if dataset == "all" else PAPER_DATASET.get(dataset, dataset)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _paired_lines(frame, pairs, metric, label, digits=4, scale=1.0, only=None,
                  lower_is_better=False):
    """Paired differences ``a - b``; "a better" counts the pairs where ``a`` is better (the
    larger value, or the smaller with ``lower_is_better``)."""
    piv = frame.pivot_table(index=["dataset", "seed"], columns="method", values=metric)
    lines = [f"| {label}: a − b | mean ± std | a better / equal / worse | sign test p | pairs |",
             "|---|---|---|---|---|"]
    for a, b in pairs:
        if a not in piv or b not in piv:
            continue
        diff = scale * (piv[a] - piv[b])
        if only is not None:
            diff = diff[diff.index.isin(only)]
        r = sign_test(diff)
        if lower_is_better:
            r["wins"], r["losses"] = r["losses"], r["wins"]
        p = "—" if np.isnan(r["p"]) else f"{r['p']:.3g}"
        lines.append(f"| {a} − {b} | {_fmt(r['mean'], r['std'], digits)} "
                     f"| {r['wins']} / {r['ties']} / {r['losses']} | {p} | {r['n']} |")
    return lines


def write_report(out, *, planned=None, quick=None):
    """Write ``out/principled.md`` from the study's ``out/cells.csv`` (:func:`report_text`).

    Parameters
    ----------
    out : path-like
    planned : int or None
    quick : bool or None

    Returns
    -------
    pathlib.Path
    """
    path = Path(out) / "principled.md"
    path.write_text(report_text(out, planned=planned, quick=quick))
    return path


def report_text(out, *, planned=None, quick=None):
    """The study's report, in Markdown, from ``out/cells.csv`` and ``out/runs.jsonl``.

    Parameters
    ----------
    out : path-like
    planned : int or None
        Cells the run planned, to label a partial report.
    quick : bool or None
        Whether the run used the quick settings (read from ``runs.jsonl`` when None).

    Returns
    -------
    str
    """
    from .report import _run_info
    from .runner import read_cells

    out = Path(out)
    frame = read_cells(out / "cells.csv")
    frame = frame[frame["study"] == STUDY] if len(frame) else frame
    runs = _run_info(out)
    if quick is None:
        quick = bool(runs and runs[-1].get("quick"))
    lines = ["# Principled pruning: calibrated tests, accuracy-constrained pruning, baselines",
             ""]
    if quick:
        lines += ["**Quick mode** (tiny epochs and windows): these numbers say nothing about "
                  "the methods.", ""]
    if planned is not None and len(frame) < planned:
        lines += [f"**Partial run: {len(frame)} of {planned} planned cells finished.**", ""]
    if frame.empty:
        return "\n".join(lines + ["No cells yet."]) + "\n"
    wall = sum(r.get("wall_s", 0) for r in runs)
    seeds = sorted(set(frame["seed"]))
    lines += [
        f"Cells: {len(frame)}; datasets: {', '.join(sorted(set(frame['dataset'])))}; seeds: "
        f"{seeds}. Wall time over {len(runs)} invocation(s): {wall / 60:.1f} min; summed CPU "
        f"time of the fits: {frame['cpu_s'].sum() / 60:.1f} min.",
        "",
        "Every cell: test accuracy or % of the weights pruned, mean ± std over the seeds "
        "(each dataset's row) or over all datasets and seeds (**all**). Paired differences "
        "pair the fits of the same dataset and seed (same initial weights, same held-out "
        "rows); the sign test is two-sided over the untied pairs, which are not fully "
        "independent (the seeds of a dataset share its data).",
        "",
    ]
    rule = ["dense", TRACER, "LEGC calibrated", "LEGC calibrated, loss"]
    lines += ["## The decision rules at significance 0.05", "", "% of the weights pruned:", "",
              *_by_dataset(frame, rule[1:], "pct_pruned", 1), "", "Test accuracy:", "",
              *_by_dataset(frame, rule, "accuracy"), "",
              *_paired_lines(frame, [(m, "dense") for m in rule[1:]], "accuracy",
                             "test accuracy"), ""]

    limited = [m for m, spec in METHODS.items() if spec.group == "<=1%"]
    rankings = [m for m in limited if METHODS[m].pruning == "legc"]
    limited_pairs = [(a, b) for i, a in enumerate(rankings) for b in
                     rankings[i + 1:] + [m for m in limited if m not in rankings]]
    sub = frame[frame["method"].isin(limited)]
    n_ok = (sub["within_drop"].astype(str) == "True").sum()
    n_fallback = (sub["fallback"].astype(str) == "True").sum()
    lines += [f"## Pruning as far as the held-out accuracy allows (max_accuracy_drop={MAX_DROP})",
              "", "`amount=1.0` (IMP: 90% in 5 rounds). % of the weights pruned:", "",
              *_by_dataset(frame, limited, "pct_pruned", 1), "",
              "Test accuracy (dense network: the rule table's first column):", "",
              *_by_dataset(frame, limited, "accuracy"), "",
              f"Held-out accuracy within {MAX_DROP} of the dense network's: {n_ok} of "
              f"{len(sub)} fits; fine-tuned network replaced by the masked dense weights (or "
              f"an earlier IMP round): {n_fallback}.", "",
              *_paired_lines(frame, limited_pairs, "pct_pruned", "% pruned", 1), "",
              *_paired_lines(frame, limited_pairs, "accuracy", "test accuracy"), ""]

    for group, source in (("@paper", TRACER), ("@calibrated", "LEGC calibrated"),
                          ("50%", "LEGC rank 50%")):
        methods = [source] + [m for m, spec in METHODS.items()
                              if spec.group == group and m != source]
        counts = frame[frame["method"] == source].set_index(["dataset", "seed"])["pct_pruned"]
        pruning = counts[counts > 0].index
        lines += [f"## Equal sparsity: {source} against the baselines", "",
                  "Test accuracy (% pruned: the first table of its group):", "",
                  *_by_dataset(frame, methods, "accuracy"), "",
                  *_paired_lines(frame, [(source, m) for m in methods[1:]], "accuracy",
                                 "test accuracy", only=pruning),
                  "", f"(pairs where {source} pruned at least one weight)", ""]

    agreement = _shap_agreement(frame)
    if not agreement.empty:
        merged = frame.merge(agreement, on=["dataset", "seed", "method"], how="left")
        reference = agreement[agreement["method"] == "dense, next seed"]
        for group, source in (("@paper", TRACER), ("50%", "LEGC rank 50%")):
            methods = [source] + [m for m, spec in METHODS.items()
                                  if spec.group == group and m != source and spec.shap]
            counts = frame[frame["method"] == source].set_index(["dataset", "seed"])[
                "pct_pruned"]
            pruning = counts[counts > 0].index
            lines += [f"## SHAP agreement with the dense network: {source} against the "
                      "baselines", "",
                      "Importance shift (total variation distance between the shares of mean "
                      "|SHAP| per feature; 0 = the dense network's profile), lower is closer:",
                      "", *_by_dataset(merged, methods, "shift"), "",
                      "Spearman rho of the importances with the dense network's (1 = same "
                      "ranking):", "", *_by_dataset(merged, methods, "spearman"), "",
                      *_paired_lines(merged, [(source, m) for m in methods[1:]], "shift",
                                     "shift (lower: closer to the dense network)",
                                     only=pruning, lower_is_better=True),
                      "", *_paired_lines(merged, [(source, m) for m in methods[1:]],
                                         "spearman", "Spearman", only=pruning),
                      "", f"(pairs where {source} pruned at least one weight)", ""]
        if not reference.empty:
            shift, rho = reference["shift"], reference["spearman"]
            lines += ["Retraining alone (the dense network against the next seed's dense "
                      f"network): shift {_fmt(shift.mean(), shift.std())}, Spearman "
                      f"{_fmt(rho.mean(), rho.std())} over {len(reference)} pairs.", ""]

    cost = frame.groupby("method")[["fit_time_s", "cpu_s"]].mean()
    lines += ["## Cost", "", "| method | mean wall s | mean CPU s |", "|---|---|---|"]
    for m in [m for m in METHODS if m in cost.index]:
        lines.append(f"| {m} | {cost.loc[m, 'fit_time_s']:.1f} | {cost.loc[m, 'cpu_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    """``python -m sklegc.experiments.principled DIR``: print the report of a study's
    output folder (its ``cells.csv`` and ``runs.jsonl``) without writing anything."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sklegc.experiments.principled",
                                     description=main.__doc__.split(":")[1].strip())
    parser.add_argument("out", help="output folder of `python -m sklegc reproduce --study "
                                    "principled` (holding cells.csv)")
    args = parser.parse_args(argv)
    if not (Path(args.out) / "cells.csv").is_file():
        parser.error(f"{args.out} holds no cells.csv: pass the --out folder of a study run")
    print(report_text(args.out), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
