"""``report.md`` and the plots of a reproduction run, from its ``cells.csv``.

Our numbers are set beside the paper's (:data:`sklegc.experiments.config.PAPER`): the mean
and standard deviation over seeds, and the best of the seeds, which is what the paper
reported ("best of 5 initialisations").
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .config import PAPER, PAPER_DATASET, SETTINGS, SPARSITIES
from .runner import MAIN_METHODS, SWEEP_METHODS, read_cells

__all__ = ["best_of_seeds", "summarize", "write_plots", "write_report"]

_METRICS = ["accuracy", "f1_macro", "weights_kept", "pct_pruned", "epochs"]


def best_of_seeds(frame):
    """Per dataset and method of the tables, the row of the seed with the best test accuracy.

    Ties go to the higher macro F1, then to the lower seed.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of ``cells.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, method).
    """
    main = frame[frame["study"] == "tables"]
    ordered = main.sort_values(["accuracy", "f1_macro", "seed"], ascending=[False, False, True])
    return ordered.groupby(["dataset", "method"], sort=False).head(1).set_index(
        ["dataset", "method"])


def summarize(frame):
    """Mean, standard deviation and seed count per dataset and method of the tables.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of ``cells.csv``.

    Returns
    -------
    pandas.DataFrame
        Indexed by (dataset, method); columns ``(metric, "mean"|"std"|"count")``. ``epochs``
        counts only the seeds that reached the threshold; ``reached`` says how many did.
    """
    main = frame[frame["study"] == "tables"].copy()
    main["epochs"] = pd.to_numeric(main["epochs"], errors="coerce")
    stats = main.groupby(["dataset", "method"])[_METRICS].agg(["mean", "std", "count"])
    stats[("seeds", "n")] = main.groupby(["dataset", "method"])["seed"].nunique()
    return stats


def _num(value, digits=4):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if digits == 0:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _cell(paper, best, mean, std, digits=4, count=None, n=None, mean_digits=None):
    """``paper / best (mean ± std)``, with how many seeds counted when not all did."""
    mean_digits = digits if mean_digits is None else mean_digits
    text = f"{_num(paper, digits)} / {_num(best, digits)}"
    if mean is not None and not (isinstance(mean, float) and np.isnan(mean)):
        spread = "" if std is None or np.isnan(std) else f" ± {_num(std, mean_digits)}"
        text += f" ({_num(mean, mean_digits)}{spread}"
        if count is not None and n is not None and count < n:
            text += f", {count}/{n} seeds"
        text += ")"
    return text


def _delta(ours, paper, digits=4):
    if paper is None or ours is None or np.isnan(ours):
        return "—"
    return f"{ours - paper:+.{digits}f}"


def _method_rows(frame, datasets, methods):
    stats = summarize(frame)
    best = best_of_seeds(frame)
    lines = ["| dataset | method | weights kept | epochs | accuracy | Δ acc | macro F1 | Δ F1 "
             "| % pruned |", "|---|---|---|---|---|---|---|---|---|"]
    for dataset in datasets:
        for method in methods:
            if (dataset, method) not in stats.index:
                continue
            s = stats.loc[(dataset, method)]
            b = best.loc[(dataset, method)]
            p = PAPER.get(dataset, {}).get(method, {})
            epochs_best = pd.to_numeric(pd.Series([b["epochs"]]), errors="coerce").iloc[0]
            n = int(s[("seeds", "n")])
            lines.append(
                f"| {PAPER_DATASET[dataset]} | {method} "
                f"| {_cell(p.get('flops'), b['weights_kept'], s[('weights_kept', 'mean')], s[('weights_kept', 'std')], 0, mean_digits=1)} "
                f"| {_cell(p.get('epochs'), epochs_best, s[('epochs', 'mean')], s[('epochs', 'std')], 0, int(s[('epochs', 'count')]), n, 1)} "
                f"| {_cell(p.get('acc'), b['accuracy'], s[('accuracy', 'mean')], s[('accuracy', 'std')])} "
                f"| {_delta(b['accuracy'], p.get('acc'))} "
                f"| {_cell(p.get('f1'), b['f1_macro'], s[('f1_macro', 'mean')], s[('f1_macro', 'std')])} "
                f"| {_delta(b['f1_macro'], p.get('f1'))} "
                f"| {_cell(p.get('pct_pruned'), b['pct_pruned'], s[('pct_pruned', 'mean')], s[('pct_pruned', 'std')], 2)} |"
            )
    return lines


def _headline(frame, datasets):
    stats = summarize(frame)
    lines = ["| dataset | acc DN paper / ours | acc FT paper / ours | acc PT paper / ours "
             "| % pruned FT paper / ours | % pruned PT paper / ours |",
             "|---|---|---|---|---|---|"]
    for dataset in datasets:
        cols = []
        for method, metric, digits in (("dense", "accuracy", 3), ("LEGCNet-FT", "accuracy", 3),
                                       ("LEGCNet-PT", "accuracy", 3),
                                       ("LEGCNet-FT", "pct_pruned", 1),
                                       ("LEGCNet-PT", "pct_pruned", 1)):
            paper = PAPER.get(dataset, {}).get(method, {}).get(
                "acc" if metric == "accuracy" else metric)
            if (dataset, method) in stats.index:
                s = stats.loc[(dataset, method)]
                ours = f"{_num(s[(metric, 'mean')], digits)} ± {_num(s[(metric, 'std')], digits)}"
            else:
                ours = "—"
            cols.append(f"{_num(paper, digits)} / {ours}")
        lines.append(f"| {PAPER_DATASET[dataset]} | " + " | ".join(cols) + " |")
    return lines


def sweep_table(frame):
    """Mean test accuracy of the sweep per dataset, target sparsity and method.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of ``cells.csv``.

    Returns
    -------
    pandas.DataFrame
        Index (dataset, target_sparsity); columns (method, "mean"|"std"|"count").
    """
    sweep = frame[frame["study"] == "sweep"].copy()
    if sweep.empty:
        return pd.DataFrame()
    sweep["target_sparsity"] = sweep["target_sparsity"].astype(float)
    return sweep.pivot_table(index=["dataset", "target_sparsity"], columns="method",
                             values="accuracy", aggfunc=["mean", "std", "count"],
                             dropna=False).swaplevel(
        0, 1, axis=1).sort_index(axis=1)


def _sweep_section(frame):
    table = sweep_table(frame)
    if table.empty:
        return ["No sweep cells in this run."], {}
    methods = [m for m in SWEEP_METHODS if m in table.columns.get_level_values(0)]
    lines = ["| dataset | % pruned | " + " | ".join(methods) + " | best |",
             "|---|---|" + "---|" * (len(methods) + 1)]
    wins = {m: 0 for m in methods}
    for (dataset, s), row in table.iterrows():
        means = {m: row[(m, "mean")] for m in methods}
        top = max(means.values())
        winners = [m for m in methods if np.isclose(means[m], top)]
        for m in winners:
            wins[m] += 1
        cells = [f"{means[m]:.4f} ± {row[(m, 'std')]:.4f} (n={int(row[(m, 'count')])})"
                 if not np.isnan(row[(m, 'std')]) else f"{means[m]:.4f} (n={int(row[(m, 'count')])})"
                 for m in methods]
        lines.append(f"| {PAPER_DATASET.get(dataset, dataset)} | {100 * s:.0f} | "
                     + " | ".join(cells) + f" | {', '.join(winners)} |")
    overall = {m: float(table[(m, "mean")].mean()) for m in methods}
    return lines, {"wins": wins, "mean_accuracy": overall, "n_points": len(table)}


def _paired(frame, a, b):
    """Seed-paired accuracy differences ``a - b`` over every dataset, sparsity and seed."""
    sweep = frame[frame["study"] == "sweep"]
    piv = sweep.pivot_table(index=["dataset", "target_sparsity", "seed"], columns="method",
                            values="accuracy")
    if a not in piv or b not in piv:
        return None
    diff = (piv[a] - piv[b]).dropna()
    return {"mean": float(diff.mean()), "wins": int((diff > 0).sum()),
            "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()), "n": len(diff)}


def _plot_frame(frame):
    """Accuracy vs sparsity: sweep cells at their target, table methods at their mean sparsity."""
    main = frame[frame["study"] == "tables"].copy()
    main["sparsity"] = main.groupby(["dataset", "method"])["pct_pruned"].transform("mean") / 100
    sweep = frame[frame["study"] == "sweep"].copy()
    sweep["sparsity"] = sweep["target_sparsity"].astype(float)
    sweep["method"] = "sweep: " + sweep["method"]
    cols = ["dataset", "method", "sparsity", "accuracy"]
    return pd.concat([main[cols], sweep[cols]], ignore_index=True)


def _accuracy_plot(frame):
    try:
        from ..diagnostics import plot_accuracy_vs_sparsity
    except ImportError:
        plot_accuracy_vs_sparsity = None
    if plot_accuracy_vs_sparsity is not None:
        fig = plot_accuracy_vs_sparsity(frame)
        # Ten methods: one legend for the figure instead of one covering every panel.
        handles = {}
        for ax in fig.axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=8)
        return fig
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(frame["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        sub = frame[frame["dataset"] == dataset]
        for i, (method, points) in enumerate(sub.groupby("method", sort=False)):
            agg = points.groupby("sparsity")["accuracy"].agg(["mean", "std"]).sort_index()
            ax.errorbar(100 * agg.index, agg["mean"], yerr=agg["std"].fillna(0), marker="o",
                        capsize=3, color=f"C{i}", label=method)
        ax.set_title(dataset)
        ax.set_xlabel("% weights pruned")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _trace_plot(out, dataset, seed):
    import matplotlib.pyplot as plt

    path = Path(out) / "traces" / f"{dataset}_LEGCNet-FT_seed{seed}.npz"
    with np.load(path) as saved:
        le, mis, ends, p = (saved[k] for k in ("lyapunov", "misclassification", "window_ends",
                                               "pvalues"))
    key = np.where(np.isnan(p), np.inf, p)
    order = np.argsort(key, kind="stable")
    testable = order[np.isfinite(key[order])]
    picks = list(testable[:2]) + list(testable[-2:])
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    ax0.plot(ends, mis, color="k")
    ax0.set_ylabel("misclassification\n(training data)")
    ax0.set_title(f"{PAPER_DATASET.get(dataset, dataset)}, LEGCNet-FT, seed {seed}: "
                  f"{len(mis)} windows")
    for i, w in enumerate(picks):
        kind = "most causal" if i < 2 else "least causal"
        ax1.plot(ends, le[:, w], color=f"C{i}", lw=1,
                 label=f"weight {w} ({kind}, p={p[w]:.2g})")
    ax1.set_xlabel("optimizer step (end of window)")
    ax1.set_ylabel("windowed Lyapunov exponent")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _pvalue_plot(out, frame, significance=0.05):
    import matplotlib.pyplot as plt

    main = frame[(frame["study"] == "tables") & frame["method"].isin(["LEGCNet-FT", "LEGCNet-PT"])]
    datasets = list(dict.fromkeys(main["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.2 * len(datasets), 3), squeeze=False)
    bins = np.linspace(0, 1, 21)
    for ax, dataset in zip(axes[0], datasets):
        for i, method in enumerate(["LEGCNet-FT", "LEGCNet-PT"]):
            seeds = main[(main["dataset"] == dataset) & (main["method"] == method)]["seed"]
            values = []
            for seed in seeds:
                path = Path(out) / "traces" / f"{dataset}_{method}_seed{seed}.npz"
                if path.is_file():
                    with np.load(path) as saved:
                        values.append(saved["pvalues"])
            if not values:
                continue
            v = np.concatenate(values)
            v = v[~np.isnan(v)]
            ax.hist(v, bins=bins, histtype="step", color=f"C{i}", lw=1.5,
                    weights=np.full(len(v), 1 / max(len(v), 1)), label=method[-2:])
        ax.axvline(significance, color="k", ls=":", lw=1)
        ax.set_title(PAPER_DATASET.get(dataset, dataset), fontsize=9)
        ax.set_xlabel("Granger p-value")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("share of weights")
    fig.tight_layout()
    return fig


def write_plots(out, frame=None):
    """Write the run's PNGs into ``out`` and return their file names.

    Parameters
    ----------
    out : path-like
        The run's output directory (``cells.csv``, ``traces/``).
    frame : pandas.DataFrame or None
        Rows of ``cells.csv``; read from ``out`` when None.

    Returns
    -------
    dict of str to str
        ``"accuracy"``, ``"trace"``, ``"pvalues"`` to file names (only those written).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    frame = read_cells(out / "cells.csv") if frame is None else frame
    written = {}
    if frame.empty:
        return written
    fig = _accuracy_plot(_plot_frame(frame))
    fig.savefig(out / "repro_accuracy_vs_pruned.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    written["accuracy"] = "repro_accuracy_vs_pruned.png"

    ft = frame[(frame["study"] == "tables") & (frame["method"] == "LEGCNet-FT")]
    if not ft.empty:
        order = [d for d in ("cancer", *SETTINGS) if d in set(ft["dataset"])]
        dataset = order[0]
        seed = int(ft[ft["dataset"] == dataset]["seed"].min())
        if (out / "traces" / f"{dataset}_LEGCNet-FT_seed{seed}.npz").is_file():
            fig = _trace_plot(out, dataset, seed)
            fig.savefig(out / "repro_lyapunov_trace.png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            written["trace"] = "repro_lyapunov_trace.png"
        fig = _pvalue_plot(out, frame)
        fig.savefig(out / "repro_granger_pvalues.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        written["pvalues"] = "repro_granger_pvalues.png"
    return written


def _settings_table(datasets, quick):
    from .config import setting_for

    lines = ["| dataset | hidden | lr | batch | epochs (FT) | PT epochs | window | threshold "
             "| sweep fine-tune epochs |", "|---|---|---|---|---|---|---|---|---|"]
    for d in datasets:
        s = setting_for(d, quick)
        lines.append(f"| {d} | {'-'.join(map(str, s.hidden))} | {s.lr} | {s.batch_size} "
                     f"| {s.epochs} | {s.pt_epochs} | {s.window} | {s.threshold} "
                     f"| {s.sweep_epochs} |")
    return lines


def _run_info(out):
    path = Path(out) / "runs.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_report(out, *, image_prefix="", planned=None, quick=None):
    """Write ``out/report.md`` (and the plots) from ``out/cells.csv``.

    Parameters
    ----------
    out : path-like
        The run's output directory.
    image_prefix : str, default=""
        Prefix of the image links (e.g. ``"img/"`` for a copy in ``docs/``).
    planned : int or None
        Number of cells the run planned, to label a partial report.
    quick : bool or None
        Whether the run used the quick settings (read from ``runs.jsonl`` when None).

    Returns
    -------
    pathlib.Path
        The report's path.
    """
    out = Path(out)
    frame = read_cells(out / "cells.csv")
    runs = _run_info(out)
    if quick is None:
        quick = bool(runs and runs[-1].get("quick"))
    images = write_plots(out, frame)
    datasets = [d for d in SETTINGS if d in set(frame["dataset"])]
    n_cells = len(frame)
    lines = ["# Reproduction of the LEGCNet paper's Tables 1-3", ""]
    if quick:
        lines += ["**Quick mode** (tiny epochs and windows, to check the pipeline): these "
                  "numbers say nothing about the method.", ""]
    if planned is not None and n_cells < planned:
        lines += [f"**Partial run: {n_cells} of {planned} planned cells finished.**", ""]
    wall = sum(r.get("wall_s", 0) for r in runs)
    fit_time = frame["fit_time_s"].sum() if n_cells else 0.0
    lines += [
        f"Cells: {n_cells} ({(frame['study'] == 'tables').sum()} for the tables, "
        f"{(frame['study'] == 'sweep').sum()} for the sweep); seeds: "
        f"{sorted(set(frame[frame['study'] == 'tables']['seed']))}. "
        f"Wall time over {len(runs)} invocation(s): {wall / 60:.1f} min; "
        f"summed fit time of the cells: {fit_time / 60:.1f} min.",
        "",
        "Each cell: `paper / ours best-of-seeds (ours mean ± std over seeds)`. Best of seeds "
        "is the seed with the highest test accuracy, as the paper reported the best of 5 "
        "initialisations; Δ is ours best minus the paper. Weights kept is the paper's "
        "\"flops\" (non-zero weights); epochs is the first epoch at which the training "
        "accuracy reached the threshold (the dense phase of the dense network, the "
        "fine-tuning of a pruned one); seeds that never reached it are left out of the "
        "mean. MNIST rows are sklearn's 8x8 digits (64-50-30-10, 5000 weights) against the "
        "paper's MNIST (784-50-30-10, 41,000 weights).",
        "",
        "## Headline: test accuracy and sparsity (mean ± std over seeds)",
        "",
        *_headline(frame, datasets),
        "",
        "## Table 1: dense network vs LEGCNet-FT",
        "",
        *_method_rows(frame, datasets, ["dense", "LEGCNet-FT"]),
        "",
        "## Table 2: LEGCNet-FT vs LEGCNet-PT",
        "",
        *_method_rows(frame, datasets, ["LEGCNet-FT", "LEGCNet-PT"]),
        "",
        "## Table 3: random and magnitude pruning at the LEGCNet-FT sparsity",
        "",
        *_method_rows(frame, datasets, ["LEGCNet-FT", "random@FT", "magnitude@FT"]),
        "",
        "The paper gives no numbers for the baselines at the PT sparsity:",
        "",
        *_method_rows(frame, datasets, ["LEGCNet-PT", "random@PT", "magnitude@PT"]),
        "",
    ]
    if "accuracy" in images:
        lines += ["## Accuracy vs % pruned", "",
                  f"![accuracy vs % pruned]({image_prefix}{images['accuracy']})", "",
                  "Points: the tables' methods at their mean sparsity (bars: std over seeds); "
                  "lines: the sweep.", ""]
    sweep_lines, sweep_summary = _sweep_section(frame)
    lines += ["## Sparsity sweep (beyond the paper)", "",
              "Test accuracy (mean ± std over seeds) after pruning the given share of weights: "
              "`LEGC rank` prunes the weights with the largest Granger p-values of the "
              "LEGCNet-FT fit of the same seed, `magnitude` the smallest trained weights, "
              "`random` a random set; all are fine-tuned from the same initial weights, for at "
              "most the sweep's fine-tune epochs (stopping at the threshold).", "",
              *sweep_lines, ""]
    if sweep_summary:
        wins = ", ".join(f"{m}: {w}" for m, w in sweep_summary["wins"].items())
        means = ", ".join(f"{m}: {v:.4f}" for m, v in sweep_summary["mean_accuracy"].items())
        lines += [f"Best mean accuracy (ties count for each) over "
                  f"{sweep_summary['n_points']} dataset x sparsity points: {wins}. "
                  f"Mean accuracy over all points: {means}.", ""]
        sweep = frame[frame["study"] == "sweep"]
        emptied = sweep["warnings"].fillna("").str.contains("removed every weight")
        counts = ", ".join(f"{m} {int(emptied[sweep['method'] == m].sum())} of "
                           f"{int((sweep['method'] == m).sum())}" for m in SWEEP_METHODS)
        lines += [f"Fits in which pruning removed every weight of a layer (the network then "
                  f"predicts one class): {counts}.", ""]
        for a, b in (("LEGC rank", "magnitude"), ("LEGC rank", "random"),
                     ("magnitude", "random")):
            paired = _paired(frame, a, b)
            if paired:
                lines.append(f"- {a} vs {b}, paired by dataset, sparsity and seed: mean "
                             f"difference {paired['mean']:+.4f}; {a} better in "
                             f"{paired['wins']}, equal in {paired['ties']}, worse in "
                             f"{paired['losses']} of {paired['n']}.")
        lines.append("")
    if "trace" in images:
        lines += ["## A trace", "", f"![trace]({image_prefix}{images['trace']})", ""]
    if "pvalues" in images:
        lines += ["## Granger p-values", "", f"![p-values]({image_prefix}{images['pvalues']})",
                  "", "Share of weights per p-value bin (all seeds pooled); dotted: significance level = "
                  "0.05, at or above which a weight is pruned.", ""]
    lines += ["## Settings", "", *_settings_table(datasets, quick), ""]
    failed = (out / "errors.log").is_file()
    if failed:
        lines += ["Some cells failed; see `errors.log` in the output directory.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
