"""The reproduction's diagnostics command: SHAP agreement per dataset and the Table 4 layout."""

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("shap")
pytest.importorskip("weightwatcher")
pytest.importorskip("matplotlib")

from sklegc.experiments import diagnostics as diag  # noqa: E402


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory, data_dir):
    """``--quick`` on iris, end to end, then the same command again (which must resume)."""
    import torch

    out = tmp_path_factory.mktemp("diag")
    threads = torch.get_num_threads()
    try:
        argv = ["--quick", "--datasets", "iris", "--out", str(out), "--data-dir", str(data_dir),
                "--no-progress"]
        assert diag.main(argv) == 0
        first_csv = (out / "diagnostics.csv").read_text()
        assert diag.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return out, first_csv


def test_quick_run_csv_has_every_method_and_valid_correlations(quick_out):
    out, _ = quick_out
    frame = pd.read_csv(out / "diagnostics.csv")
    assert set(frame["dataset"]) == {"iris"}
    assert list(frame["method"]) == list(diag.METHODS) + [diag.REFERENCE]
    others = frame[frame["method"] != "dense"]
    for column in ("spearman", "kendall", "top_k_overlap"):
        values = others[column].to_numpy(dtype=float)
        assert np.isfinite(values).all(), column
        assert ((values >= -1) & (values <= 1)).all(), column
    shift = others["importance_shift"].to_numpy(dtype=float)
    assert np.isfinite(shift).all() and ((shift >= 0) & (shift <= 1)).all()
    # The dense network is the reference, not compared with itself.
    assert frame.loc[frame["method"] == "dense", "spearman"].isna().all()
    # The baselines prune exactly as many weights as LEGCNet-FT, from a network of one size.
    kept = frame.set_index("method")["weights_kept"]
    assert kept["random@FT"] == kept["magnitude@FT"] == kept["LEGCNet-FT"]
    assert frame["n_weights"].nunique() == 1
    assert (frame.loc[frame["method"] == "dense", "pct_pruned"] == 0).all()
    assert (frame["top_k"] >= 1).all() and (frame["top_k"] <= frame["n_features"]).all()


def test_quick_run_writes_tables_figure_and_per_dataset_importances(quick_out):
    out, _ = quick_out
    md = (out / "diagnostics.md").read_text()
    assert "## SHAP agreement with the dense network" in md
    assert "| dataset | method | % pruned | accuracy | Spearman | Kendall |" in md
    assert "### Side by side" in md and "| iris |" in md and "Importance shift" in md
    assert (out / "importance_iris.png").stat().st_size > 0
    imp = pd.read_csv(out / "per_dataset" / "iris_importance.csv", index_col=0)
    assert list(imp.columns) == list(diag.METHODS) + [diag.REFERENCE]
    assert len(imp) == 4 and (imp.to_numpy() >= 0).all() and (imp.to_numpy() > 0).any()


def test_second_run_skips_finished_datasets(quick_out):
    out, first_csv = quick_out
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [r["ran"] for r in runs] == [["iris"], []]
    assert runs[1]["skipped"] == ["iris"]
    assert (out / "diagnostics.csv").read_text() == first_csv


def test_compare_with_dense_agrees_with_itself_and_flags_reversal():
    idx = pd.Index(["a", "b", "c", "d"], name="feature")
    dense = pd.DataFrame({"mean": [4.0, 3.0, 2.0, 1.0]}, index=idx)
    same = pd.DataFrame({"mean": [8.0, 6.0, 4.0, 2.0]}, index=idx)
    reversed_ = pd.DataFrame({"mean": [1.0, 2.0, 3.0, 4.0]}, index=idx)
    result = diag.compare_with_dense({"dense": dense, "same": same, "rev": reversed_})
    assert set(result) == {"same", "rev"}
    assert result["same"].spearman == pytest.approx(1.0)
    assert result["rev"].spearman == pytest.approx(-1.0)
    assert result["same"].top_k == 1 and result["rev"].top_k_overlap == 0.0


def test_table4_has_one_row_per_layer_on_a_tiny_digits_network():
    from sklegc import LEGCPrunedClassifier
    from sklegc.datasets import load_dataset

    data = load_dataset("digits")
    X, y = data.X_train[:300], data.y_train[:300]
    common = dict(hidden_layer_sizes=(50, 30), lr=0.5, batch_size=16, max_epochs=2,
                  loss="mse", random_state=0)
    networks = {
        "dense": LEGCPrunedClassifier(pruning="none", **common).fit(X, y),
        "random@FT": LEGCPrunedClassifier(pruning="random", amount=0.3, **common).fit(X, y),
    }
    table = diag.table4(networks)
    assert list(table["layer"]) == ["64→50", "50→30", "30→10"]
    assert (table["dense sparsity"] == 0).all()
    # Random pruning of 30% of all weights: every layer loses a share of its weights.
    assert ((table["random@FT sparsity"] > 0.1) & (table["random@FT sparsity"] < 0.5)).all()
    alphas = table[["dense alpha", "random@FT alpha"]].to_numpy()
    assert np.isfinite(alphas[:2]).all() and (alphas[:2] > 0).all()


def test_paper_table4_is_the_papers_layout():
    paper = diag.paper_table4()
    assert list(paper["layer"]) == ["784→50", "50→30", "30→10"]
    assert paper["dense alpha"].tolist() == [2.19, 1.51, 1.94]
    assert paper["LEGCNet-PT alpha_weighted"].tolist() == [1.71, 1.85, 3.87]
    assert set(diag.PAPER_TABLE4) == set(diag.METHODS)
