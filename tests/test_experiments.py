"""The reproduction run: configuration, cells, resume, report (quick mode on iris)."""

import numpy as np
import pandas as pd
import pytest

from sklegc.experiments import PAPER, SETTINGS, SPARSITIES
from sklegc.experiments.cli import main
from sklegc.experiments.config import PAPER_DATASET, TABULAR, setting_for
from sklegc.experiments.report import best_of_seeds
from sklegc.experiments.runner import (
    MAIN_METHODS,
    SWEEP_METHODS,
    Cell,
    plan_cells,
    read_cells,
    run_cell,
    run_cells,
)


def _n_weights(sizes):
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


@pytest.mark.parametrize("dataset", TABULAR)
def test_settings_give_the_papers_networks(dataset):
    # The paper's dense "flops" is the weight count of its network: the hidden sizes of the
    # settings table, with the datasets' feature and class counts, must give the same number.
    n_features = {"cancer": 9, "titanic": 6, "banknote": 4, "iris": 4, "iris3f": 3, "vowel": 3}
    n_outputs = {"cancer": 1, "titanic": 1, "banknote": 1, "iris": 3, "iris3f": 3, "vowel": 6}
    sizes = (n_features[dataset], *SETTINGS[dataset].hidden, n_outputs[dataset])
    assert _n_weights(sizes) == PAPER[dataset]["dense"]["flops"]


def test_paper_table_is_complete_and_consistent():
    assert set(PAPER) == set(SETTINGS) == set(PAPER_DATASET)
    for dataset, methods in PAPER.items():
        dense, ft = methods["dense"], methods["LEGCNet-FT"]
        # % pruned in Table 1 is (flops DN - flops FT) / flops DN, up to the paper's rounding.
        assert 100 * (dense["flops"] - ft["flops"]) / dense["flops"] == pytest.approx(
            ft["pct_pruned"], abs=0.02)
        for values in methods.values():
            assert 0 < values["acc"] <= 1 and 0 < values["f1"] <= 1


def test_quick_settings_shrink_only_the_run_length():
    full, quick = setting_for("cancer"), setting_for("cancer", quick=True)
    assert (quick.hidden, quick.lr, quick.threshold) == (full.hidden, full.lr, full.threshold)
    assert quick.epochs < full.epochs and quick.window < full.window
    with pytest.raises(ValueError, match="unknown dataset"):
        setting_for("mnist3d")


def test_plan_covers_every_method_and_sparsity():
    cells = plan_cells(["iris", "digits"], [0, 1], sweep=True, sweep_seeds=[0])
    tables = [c for c in cells if c.study == "tables"]
    assert {(c.dataset, c.method, c.seed) for c in tables} == {
        (d, m, s) for d in ("iris", "digits") for m in MAIN_METHODS for s in (0, 1)}
    sweep = [c for c in cells if c.study == "sweep"]
    # The sweep runs on tabular data only.
    assert {c.dataset for c in sweep} == {"iris"}
    assert {(c.method, c.target_sparsity) for c in sweep} == {
        (m, s) for m in SWEEP_METHODS for s in SPARSITIES}
    assert len({c.key for c in cells}) == len(cells)
    baselines = {c.method: c.needs for c in tables}
    assert baselines["random@FT"] == ("LEGCNet-FT",)
    assert baselines["magnitude@PT"] == ("LEGCNet-PT",)


def test_best_of_seeds_takes_the_most_accurate_seed():
    frame = pd.DataFrame({
        "study": "tables", "dataset": "iris", "method": ["dense"] * 3,
        "seed": [0, 1, 2], "accuracy": [0.8, 0.9, 0.9], "f1_macro": [0.7, 0.85, 0.88],
    })
    assert best_of_seeds(frame).loc[("iris", "dense"), "seed"] == 2


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("repro")
    argv = ["--quick", "--datasets", "iris", "--out", str(out), "--data-dir", str(data_dir),
            "--jobs", "1", "--no-progress"]
    assert main(argv) == 0
    return out, argv


def test_quick_run_writes_every_cell(quick_run):
    out, _ = quick_run
    frame = read_cells(out / "cells.csv")
    tables = frame[frame["study"] == "tables"]
    assert sorted(tables["method"]) == sorted(MAIN_METHODS)
    sweep = frame[frame["study"] == "sweep"]
    assert len(sweep) == len(SWEEP_METHODS) * len(SPARSITIES)
    assert set(sweep["method"]) == set(SWEEP_METHODS)
    assert frame["accuracy"].between(0, 1).all()
    # Every method of a seed starts from the same network, and the baselines prune as many
    # weights as the LEGCNet fit they are compared with.
    kept = tables.set_index("method")["weights_kept"]
    assert kept["random@FT"] == kept["magnitude@FT"] == kept["LEGCNet-FT"]
    assert kept["random@PT"] == kept["magnitude@PT"] == kept["LEGCNet-PT"]
    assert kept["dense"] == tables["n_weights"].iloc[0] == 42
    for s in SPARSITIES:
        at = sweep[np.isclose(sweep["target_sparsity"].astype(float), s)]
        assert np.allclose(at["pct_pruned"], 100 * round(s * 42) / 42)
    # The sweep's LEGC cells replayed the FT trace instead of training it again.
    legc = sweep[sweep["method"] == "LEGC rank"]
    assert (legc["trace_replayed"] == "LEGCNet-FT").all()
    assert (legc["epochs_run_dense"] == 0).all()
    assert (out / "traces" / "iris_LEGCNet-FT_seed0.npz").is_file()


def test_quick_run_report_has_the_papers_columns(quick_run):
    out, _ = quick_run
    report = (out / "report.md").read_text()
    for heading in ("Table 1", "Table 2", "Table 3", "Sparsity sweep", "Quick mode"):
        assert heading in report
    for method in (*MAIN_METHODS, *SWEEP_METHODS):
        assert method in report
    # The paper's iris numbers stand beside ours: "paper / ours best (mean)".
    paper = PAPER["iris"]
    assert f"| iris | dense | {paper['dense']['flops']} / 42 " in report
    assert f"| {paper['LEGCNet-FT']['acc']:.4f} / " in report
    assert f"{paper['LEGCNet-PT']['pct_pruned']:.2f} / " in report
    for name in ("repro_accuracy_vs_pruned.png", "repro_lyapunov_trace.png",
                 "repro_granger_pvalues.png"):
        assert (out / name).stat().st_size > 1000
        assert f"]({name})" in report


def test_rerun_resumes_without_redoing_cells(quick_run, capsys):
    out, argv = quick_run
    before = (out / "cells.csv").read_text()
    lines = before.strip().splitlines()
    # Drop the last finished cell, as if the run had been interrupted before it.
    (out / "cells.csv").write_text("\n".join(lines[:-1]) + "\n")
    capsys.readouterr()
    assert main(argv) == 0
    assert "ran 1 cells, skipped 21" in capsys.readouterr().out
    after = read_cells(out / "cells.csv")
    assert len(after) == len(lines) - 1
    assert not after.duplicated(["study", "dataset", "method", "seed", "target_sparsity"]).any()


def test_workers_give_the_same_results_as_one_process(tmp_path, data_dir):
    cells = [Cell("tables", "iris", "dense", 0), Cell("tables", "iris", "LEGCNet-PT", 0),
             Cell("sweep", "iris", "random", 0, 0.5)]
    result = run_cells(cells, tmp_path, data_dir=data_dir, quick=True, n_jobs=2, progress=False)
    assert result["failed"] == [] and len(result["ran"]) == 3
    frame = read_cells(tmp_path / "cells.csv").set_index("method")
    for cell in cells:
        row = run_cell(cell, out=tmp_path / "single", data_dir=data_dir, quick=True)
        assert frame.loc[cell.method, "accuracy"] == pytest.approx(row["accuracy"])
        assert frame.loc[cell.method, "weights_kept"] == row["weights_kept"]


def test_replayed_trace_prunes_like_a_full_fit(data_dir):
    from sklegc import LEGCPrunedClassifier
    from sklegc.datasets import load_dataset
    from sklegc.experiments.runner import TraceReplayClassifier

    data = load_dataset("iris", data_dir)
    params = dict(hidden_layer_sizes=(6,), lr=0.05, max_epochs=4, window_size=20, maxlag="auto",
                  random_state=3, pruning="legc")
    with pytest.warns(UserWarning):
        ft = LEGCPrunedClassifier(**params).fit(data.X_train, data.y_train)
        full = LEGCPrunedClassifier(**params, amount=0.5).fit(data.X_train, data.y_train)
        replay = TraceReplayClassifier(**params, amount=0.5)
        replay._replay = {"lyapunov": ft.lyapunov_, "misclassification": ft.misclassification_,
                          "window_ends": ft.window_ends_}
        replay.fit(data.X_train, data.y_train)
    np.testing.assert_array_equal(replay.granger_pvalues_, full.granger_pvalues_)
    np.testing.assert_array_equal(replay.pruned_, full.pruned_)
    assert replay.n_weights_pruned_ == 21
    assert replay.n_dense_steps_ == 0 < full.n_dense_steps_


def test_a_cell_cut_short_by_ctrl_c_is_not_recorded(tmp_path, data_dir, monkeypatch):
    """skorch ends training quietly on a KeyboardInterrupt during a fit, so the fit returns
    as if finished; the runner must not take that row for a result."""
    import json
    import os
    import signal

    from skorch.callbacks import Callback

    import sklegc.experiments.runner as runner
    from sklegc import LEGCPrunedClassifier

    class CtrlC(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                os.kill(os.getpid(), signal.SIGINT)

    real = runner.run_cell
    trained = []

    def run_cell(cell, **kwargs):
        if cell.method != "dense":
            return real(cell, **kwargs)
        X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
        clf = LEGCPrunedClassifier(pruning="none", max_epochs=10, callbacks=[CtrlC()])
        clf.fit(X, y)  # returns: skorch caught the interrupt
        trained.append(clf.n_iter_)
        return real(cell, **kwargs)

    monkeypatch.setattr(runner, "run_cell", run_cell)
    cells = [Cell("tables", "iris", "dense", 0)]
    with pytest.raises(KeyboardInterrupt):
        run_cells(cells, tmp_path, data_dir=data_dir, quick=True, n_jobs=1, progress=False)
    assert trained == [2]
    assert read_cells(tmp_path / "cells.csv").empty
    log = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert log[-1]["interrupted"] and log[-1]["ran"] == 0
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
