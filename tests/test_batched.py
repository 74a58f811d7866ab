"""Stacked fine-tuning of the reproduction run against the estimator's own, fit by fit."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_iris

from sklegc import LEGCPrunedClassifier
from sklegc.estimator import PAPER_PARAMS
from sklegc.experiments.batched import (
    _member_class,
    fine_tune_members,
    run_cell_group,
    train_masked_networks,
)
from sklegc.experiments.runner import (
    Cell,
    CellGroup,
    group_cells,
    plan_cells,
    read_cells,
    run_cell,
    run_cells,
)
from sklegc.network import prunable_layers
from sklegc.trajectory import TrainingDivergedError

# Small networks pruned hard lose accuracy; the warning is the estimator's, alone or stacked.
pytestmark = pytest.mark.filterwarnings("ignore::sklegc.PruningWarning")


def _stacked(param_sets, X, y):
    """Fit each parameter set as a group member, fine-tune them stacked; the members."""
    member = _member_class()
    fits = [member(**params).fit(X, y) for params in param_sets]
    for m, result, wall, _ in fine_tune_members(fits).values():
        m._finish_fine_tune(result, wall)
    return fits


def _assert_same_fit(stacked, alone):
    np.testing.assert_array_equal(stacked.pruned_, alone.pruned_)
    assert stacked.epochs_to_target_ == alone.epochs_to_target_
    assert stacked.n_iter_ == alone.n_iter_ and stacked.t_ == alone.t_
    phases = [row["phase"] for row in alone.net_.history]
    assert [row["phase"] for row in stacked.net_.history] == phases
    np.testing.assert_allclose(stacked.loss_curve_, alone.loss_curve_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stacked.net_.history[:, "train_accuracy"],
                               alone.net_.history[:, "train_accuracy"], atol=1e-12)
    for (_, a), (_, b) in zip(prunable_layers(stacked.net_.module_),
                              prunable_layers(alone.net_.module_)):
        np.testing.assert_allclose(a.weight.detach(), b.weight.detach(), atol=2e-5)
        np.testing.assert_allclose(a.bias.detach(), b.bias.detach(), atol=2e-5)
    assert stacked.pruned_accuracy_ == alone.pruned_accuracy_


def _paper(**params):
    return dict(PAPER_PARAMS, **params)


@pytest.mark.parametrize("name", ["iris", "cancer"])
def test_stacked_fine_tuning_is_each_fit_alone(name):
    # Softmax (iris) and sigmoid (cancer) outputs; random and magnitude pruning (magnitude
    # trains a dense network first, random does not); a target accuracy that some reach
    # and leave the stack while the others train on, and epoch caps that differ.
    X, y = (load_iris if name == "iris" else load_breast_cancer)(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    target = 0.9 if name == "iris" else 0.96
    sets = [_paper(hidden_layer_sizes=(6,), lr=0.05, max_epochs=6, random_state=2,
                   pruning=p, amount=a, target_accuracy=target, fine_tune_epochs=e)
            for p, a, e in [("random", 0.2, 6), ("random", 0.7, 3), ("magnitude", 0.2, 6),
                            ("magnitude", 0.5, 4), ("magnitude", 0.9, 6)]]
    stacked = _stacked(sets, X, y)
    alone = [LEGCPrunedClassifier(**params).fit(X, y) for params in sets]
    runs = [len(a.loss_curve_) for a in alone]
    # The case is one that tests something: fits stop at different epochs.
    assert len(set(runs)) > 1
    for s, a in zip(stacked, alone):
        _assert_same_fit(s, a)
        np.testing.assert_array_equal(s.predict(X), a.predict(X))


def test_stacked_fine_tuning_other_loss_activation_depth_and_batch():
    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16.0
    y = y[:300]
    sets = [_paper(hidden_layer_sizes=(12, 8), lr=0.2, batch_size=4, max_epochs=3,
                   loss="cross_entropy", activation="tanh", random_state=5, pruning="random",
                   amount=a) for a in (0.1, 0.6)]
    stacked = _stacked(sets, X, y)
    for s, params in zip(stacked, sets):
        _assert_same_fit(s, LEGCPrunedClassifier(**params).fit(X, y))


def test_a_fit_the_kernel_cannot_reproduce_fine_tunes_alone():
    X, y = load_iris(return_X_y=True)
    params = _paper(hidden_layer_sizes=(6,), lr=0.05, max_epochs=3, random_state=0,
                    pruning="random", amount=0.3)
    member = _member_class()
    for other in (dict(early_stopping=True), dict(alpha=1e-3), dict(tol=1e-4),
                  dict(optimizer=torch.optim.Adam)):
        fit = member(**dict(params, **other)).fit(X, y)
        assert fit._deferred is None
        assert fine_tune_members([fit]) == {}
        alone = LEGCPrunedClassifier(**dict(params, **other)).fit(X, y)
        np.testing.assert_array_equal(fit.predict_proba(X), alone.predict_proba(X))


def test_a_diverging_network_fails_as_it_does_alone():
    X, y = load_iris(return_X_y=True)
    params = _paper(hidden_layer_sizes=(6,), lr=1e30, max_epochs=2, random_state=0,
                    pruning="random", amount=0.3, loss="cross_entropy", activation="identity")
    with pytest.raises(TrainingDivergedError) as alone:
        LEGCPrunedClassifier(**params).fit(X, y)
    member = _member_class()
    fit = member(**params).fit(X, y)
    [(m, result, wall, _)] = fine_tune_members([fit]).values()
    with pytest.raises(TrainingDivergedError) as stacked:
        m._finish_fine_tune(result, wall)
    assert str(stacked.value) == str(alone.value)


def test_kernel_keeps_pruned_weights_and_stops_each_network_at_its_cap():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(30, 3, generator=g), torch.arange(30) % 3
    W = [torch.randn(3, 4, 3, generator=g), torch.randn(3, 3, 4, generator=g)]
    M = [torch.ones(3, 4, 3), torch.ones(3, 3, 4)]
    M[0][1, :, 0] = 0
    M[1][2, 0] = 0
    b = [torch.zeros(3, 4), torch.zeros(3, 3)]
    out = train_masked_networks(W, M, b, X, y, lr=0.5, batch_size=7, max_epochs=[2, 0, 4],
                                seed=1)
    assert [len(r.epoch_losses) for r in out] == [2, 0, 4]
    assert out[0].batch_sizes == [7, 7, 7, 7, 2]
    # A pruned weight gets no gradient: it keeps its initial value (its mask zeroes it).
    assert torch.equal(out[2].weights[1][0], W[1][2, 0])
    assert not torch.equal(out[2].weights[1][1], W[1][2, 1])
    # A network with no epochs is returned untouched.
    assert torch.equal(out[1].weights[0], W[0][1])
    with pytest.raises(ValueError, match="2 entries for 3 networks"):
        train_masked_networks(W, M, b, X, y, lr=0.5, batch_size=7, max_epochs=[1, 1], seed=1)


def test_group_cells_gathers_the_stackable_cells_of_a_seed():
    cells = plan_cells(["iris", "digits"], [0, 1], sweep=True)
    items = group_cells(cells)
    groups = [i for i in items if isinstance(i, CellGroup)]
    # Per seed: the tables' four baselines of each dataset, the sweep's 15 cells of iris.
    assert sorted(len(g.cells) for g in groups) == [4, 4, 4, 4, 15, 15]
    assert {c.key for i in items for c in (i.cells if isinstance(i, CellGroup) else [i])} == {
        c.key for c in cells}
    assert all(len({(c.study, c.dataset, c.seed) for c in g.cells}) == 1 for g in groups)
    tables = next(g for g in groups if g.study == "tables")
    assert set(tables.needs) == {"LEGCNet-FT", "LEGCNet-PT"}
    # A group of one cell is that cell.
    assert group_cells([Cell("sweep", "iris", "random", 0, 0.5)]) == [
        Cell("sweep", "iris", "random", 0, 0.5)]


_SAME = ["accuracy", "f1_macro", "weights_kept", "pct_pruned", "epochs", "epochs_sparse",
         "epochs_dense", "epochs_run_dense", "epochs_run_sparse", "n_windows", "maxlag",
         "trace_replayed", "warnings"]


def test_a_group_gives_the_rows_of_its_cells_fitted_alone(tmp_path, data_dir):
    # The LEGC rank cells replay the FT cell's trace, as in a run.
    run_cell(Cell("tables", "iris", "LEGCNet-FT", 0), out=tmp_path, data_dir=data_dir,
             quick=True)
    cells = [Cell("sweep", "iris", m, 0, s, needs=("LEGCNet-FT",) if m == "LEGC rank" else ())
             for s in (0.3, 0.9) for m in ("LEGC rank", "magnitude", "random")]
    rows = run_cell_group(cells, out=tmp_path, data_dir=data_dir, quick=True)
    assert [cell for cell, _, _ in rows] == cells
    for cell, row, error in rows:
        assert error is None
        alone = run_cell(cell, out=tmp_path, data_dir=data_dir, quick=True)
        assert {k: row[k] for k in _SAME} == {k: alone[k] for k in _SAME}
        assert row["trace_replayed"] == ("LEGCNet-FT" if cell.method == "LEGC rank" else "")


def test_magnitude_pruning_trains_the_dense_network_once_per_group(tmp_path, data_dir,
                                                                   monkeypatch):
    member = _member_class()
    phases = []
    real = member._train

    def train(self, net, data, epochs, phase, *args, **kwargs):
        phases.append(phase)
        return real(self, net, data, epochs, phase, *args, **kwargs)

    monkeypatch.setattr(member, "_train", train)
    cells = [Cell("sweep", "iris", "magnitude", 0, s) for s in (0.1, 0.5, 0.9)]
    rows = run_cell_group(cells, out=tmp_path, data_dir=data_dir, quick=True)
    assert phases.count("dense") == 1
    for cell, row, _ in rows:
        alone = run_cell(cell, out=tmp_path, data_dir=data_dir, quick=True)
        assert {k: row[k] for k in _SAME} == {k: alone[k] for k in _SAME}
        assert row["epochs_run_dense"] > 0


def test_stacked_run_gives_the_rows_of_the_run_cell_by_cell(tmp_path, data_dir):
    cells = [c for c in plan_cells(["iris"], [0], sweep=True)
             if c.study == "tables" or c.target_sparsity in (0.1, 0.7)]
    frames = {}
    for stacked in (True, False):
        out = tmp_path / str(stacked)
        result = run_cells(cells, out, data_dir=data_dir, quick=True, n_jobs=1, progress=False,
                           stacked=stacked)
        assert result["failed"] == [] and len(result["ran"]) == len(cells)
        frames[stacked] = read_cells(out / "cells.csv").set_index(
            ["study", "method", "target_sparsity"]).sort_index()
    a, b = frames[True], frames[False]
    assert a.index.equals(b.index)
    for column in _SAME:
        pd_a, pd_b = a[column], b[column]
        assert ((pd_a == pd_b) | (pd_a.isna() & pd_b.isna())).all(), column


def test_ctrl_c_during_a_group_ends_it_and_records_none_of_its_cells(tmp_path, data_dir,
                                                                     monkeypatch):
    """skorch ends a fit quietly on Ctrl-C; the group must not go on with its other fits,
    and none of its rows is a result."""
    import os
    import signal

    from sklegc.net import PrunableNet

    member = _member_class()
    fits, steps = [], []
    real_fit, real_step = member.fit, PrunableNet.train_step

    def fit(self, X, y, **kwargs):
        fits.append(self.amount)
        return real_fit(self, X, y, **kwargs)

    def train_step(self, *args, **kwargs):
        steps.append(1)
        if len(steps) == 5:  # inside the first cell's dense training, where skorch catches it
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(member, "fit", fit)
    monkeypatch.setattr(PrunableNet, "train_step", train_step)
    cells = [Cell("sweep", "iris", m, 0, s) for s in (0.1, 0.5) for m in ("magnitude", "random")]
    with pytest.raises(KeyboardInterrupt):
        run_cells(cells, tmp_path, data_dir=data_dir, quick=True, n_jobs=1, progress=False)
    assert len(steps) >= 5 and fits == [0.1]
    assert read_cells(tmp_path / "cells.csv").empty
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_failed_legcnet_cell_stops_only_the_cells_that_need_it(tmp_path, data_dir,
                                                                  monkeypatch):
    import sklegc.experiments.runner as runner

    real = runner.run_cell

    def run_cell(cell, **kwargs):
        if cell.method == "LEGCNet-PT":
            raise RuntimeError("simulated failure")
        return real(cell, **kwargs)

    monkeypatch.setattr(runner, "run_cell", run_cell)
    cells = [c for c in plan_cells(["iris"], [0], sweep=False) if c.method != "dense"]
    result = run_cells(cells, tmp_path, data_dir=data_dir, quick=True, n_jobs=1,
                       progress=False)
    ran = set(read_cells(tmp_path / "cells.csv")["method"])
    # As cell by cell: the @FT baselines run, the @PT ones wait for the failed cell.
    assert ran == {"LEGCNet-FT", "random@FT", "magnitude@FT"}
    assert len(result["failed"]) == 3
    log = (tmp_path / "errors.log").read_text()
    assert "not run: a cell it needs (['LEGCNet-PT']) failed" in log
    assert "['LEGCNet-FT']" not in log


def test_a_failing_stacked_training_fails_its_cells_not_the_run(tmp_path, data_dir,
                                                                monkeypatch):
    import sklegc.experiments.batched as batched

    def broken(*args, **kwargs):
        raise RuntimeError("simulated fault in the stacked training")

    monkeypatch.setattr(batched, "train_masked_networks", broken)
    cells = [Cell("sweep", "iris", "random", 0, s) for s in (0.1, 0.5)]
    result = run_cells(cells, tmp_path, data_dir=data_dir, quick=True, n_jobs=1,
                       progress=False)
    assert len(result["failed"]) == 2 and result["ran"] == []
    assert "simulated fault" in (tmp_path / "errors.log").read_text()
