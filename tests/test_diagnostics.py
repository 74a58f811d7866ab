import copy
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklegc import LEGCPrunedClassifier
from sklegc.diagnostics import (
    compare_importances,
    feature_importance,
    importance_consistency,
    layer_eigenvalues,
    layer_quality,
    plot_accuracy_vs_sparsity,
    plot_esd,
    plot_importance_comparison,
)
from sklegc.network import prunable_layers

REPO = Path(__file__).resolve().parents[1]
SHAP_FAST = dict(background=20, max_samples=40)


def run_python(code):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def two_informative():
    """6 features, the label depends on features 0 and 1 only."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def dense(two_informative):
    X, y = two_informative
    return LEGCPrunedClassifier(**{**FAST, "pruning": "none"}).fit(X, y)


@pytest.fixture(scope="module")
def digits_pipeline():
    X, y = load_digits(return_X_y=True)
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(50, 30), loss="cross_entropy", lr=0.5,
                               max_epochs=5, batch_size=32, pruning="magnitude", amount=0.3,
                               random_state=0)
    return make_pipeline(StandardScaler(), clf).fit(X, y), X, y


def scrambled_first_layer(est, permutation):
    """A copy of ``est`` whose first layer reads the inputs in another order."""
    other = copy.deepcopy(est)
    layer = prunable_layers(other.net_.module_)[0][1]
    with torch.no_grad():
        layer.weight.copy_(layer.weight[:, permutation])
    return other


# -- feature importance -------------------------------------------------------------------

def test_importance_ranks_the_informative_features_first(dense, two_informative):
    X, _ = two_informative
    imp = feature_importance(dense, X, **SHAP_FAST, random_state=0)
    assert list(imp.index) == [f"x{i}" for i in range(6)]
    assert list(imp.columns) == ["0", "1", "mean"]
    # Binary: the two class probabilities move together, so their |SHAP| are equal.
    np.testing.assert_allclose(imp["0"], imp["1"], rtol=1e-6, atol=1e-9)
    ranked = imp["mean"].sort_values(ascending=False)
    assert set(ranked.index[:2]) == {"x0", "x1"}
    assert ranked.iloc[1] > 3 * ranked.iloc[2]


def test_importance_is_deterministic_for_a_fixed_random_state(dense, two_informative):
    X, _ = two_informative
    # More features than coalitions enumerable within nsamples: the explainer samples.
    a = feature_importance(dense, X, background=10, max_samples=15, nsamples=20, random_state=3)
    b = feature_importance(dense, X, background=10, max_samples=15, nsamples=20, random_state=3)
    c = feature_importance(dense, X, background=10, max_samples=15, nsamples=20, random_state=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["mean"], c["mean"])


def test_importance_per_class_with_named_features_and_labels():
    rng = np.random.RandomState(1)
    X = pd.DataFrame(rng.normal(size=(150, 4)), columns=["a", "b", "c", "d"])
    y = np.array(["low", "mid", "high"])[np.digitize(X["c"], [-0.5, 0.5])]
    clf = LEGCPrunedClassifier(**{**FAST, "pruning": "none", "hidden_layer_sizes": (6,),
                                  "loss": "cross_entropy"}).fit(X, y)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*feature names.*")
        imp = feature_importance(clf, X, **SHAP_FAST, random_state=0)
    assert list(imp.index) == ["a", "b", "c", "d"]
    assert list(imp.columns) == ["high", "low", "mid", "mean"]
    np.testing.assert_allclose(imp["mean"], imp[["high", "low", "mid"]].mean(axis=1))
    assert imp["mean"].idxmax() == "c"


def test_importance_explains_a_pipeline_in_its_input_space(two_informative):
    X, y = two_informative
    X_scaled = X * np.array([1, 100, 1, 1, 1, 1], dtype=np.float32)
    pipe = make_pipeline(StandardScaler(),
                         LEGCPrunedClassifier(**{**FAST, "pruning": "none"})).fit(X_scaled, y)
    imp = feature_importance(pipe, X_scaled, **SHAP_FAST, random_state=0)
    assert set(imp["mean"].nlargest(2).index) == {"x0", "x1"}


def test_a_model_agrees_with_itself(dense, two_informative):
    X, _ = two_informative
    # random_state=None: both models must still be explained on the same rows.
    result = importance_consistency(dense, dense, X, top_k=3, **SHAP_FAST)
    assert result.spearman == pytest.approx(1.0)
    assert result.kendall == pytest.approx(1.0)
    assert result.top_k_overlap == 1.0
    pd.testing.assert_series_equal(result.table["a"], result.table["b"], check_names=False)
    assert list(result.table.columns) == ["a", "b", "rank_a", "rank_b"]


def test_a_scrambled_first_layer_breaks_the_consistency(dense, two_informative):
    X, _ = two_informative
    scrambled = scrambled_first_layer(dense, [3, 4, 5, 0, 1, 2])
    result = importance_consistency(dense, scrambled, X, top_k=2, labels=("dense", "scrambled"),
                                    random_state=0, **SHAP_FAST)
    assert result.spearman < 0.6
    assert result.kendall < 0.4
    assert result.top_k_overlap == 0.0
    top = result.table["scrambled"].nlargest(2).index
    assert set(top) == {"x3", "x4"}
    assert set(result.table.loc[["x0", "x1"], "rank_dense"]) == {1, 2}


def test_compare_importances_on_known_rankings():
    index = pd.Index(["p", "q", "r", "s"], name="feature")
    a = pd.Series([4.0, 3.0, 2.0, 1.0], index=index)
    result = compare_importances(a, pd.Series([1.0, 2.0, 3.0, 4.0], index=index), top_k=2)
    assert result.spearman == pytest.approx(-1.0) and result.kendall == pytest.approx(-1.0)
    assert result.top_k_overlap == 0.0
    swapped = compare_importances(a, pd.Series([3.0, 4.0, 2.0, 1.0], index=index), top_k=2)
    assert swapped.spearman == pytest.approx(0.8) and swapped.top_k_overlap == 1.0
    assert list(swapped.table["rank_b"]) == [2, 1, 3, 4]
    with pytest.raises(ValueError, match="same features"):
        compare_importances(a, a.rename(index={"s": "t"}))


def test_consistency_checks_top_k(dense, two_informative):
    X, _ = two_informative
    with pytest.raises(ValueError, match="top_k"):
        importance_consistency(dense, dense, X, top_k=7, **SHAP_FAST)


# -- layer quality --------------------------------------------------------------------------

def test_layer_quality_of_a_digits_network(digits_pipeline, capsys):
    pipe, _, _ = digits_pipeline
    quality = layer_quality(pipe)
    assert capsys.readouterr() == ("", "")
    assert list(quality["layer"]) == ["layers.0", "layers.2", "layers.4"]
    assert list(quality["shape"]) == [(50, 64), (30, 50), (10, 30)]
    assert list(quality["n_evals"]) == [50, 30, 10]
    assert (quality["status"] == "ok").all()
    assert np.isfinite(quality["alpha"]).all() and (quality["alpha"] > 1).all()
    np.testing.assert_allclose(quality["alpha_weighted"],
                               quality["alpha"] * np.log10(quality["lambda_max"]), rtol=1e-4)
    assert list(quality["alpha_in_range"]) == [2 <= a <= 6 for a in quality["alpha"]]
    n = quality["n_weights"]
    assert (quality["sparsity"] * n).sum() / n.sum() == pytest.approx(0.3, abs=1e-3)


def test_layer_quality_sees_the_pruned_weights_and_leaves_the_estimator_alone(digits_pipeline):
    pipe, X, _ = digits_pipeline
    pipe = copy.deepcopy(pipe)
    clf = pipe[-1]
    _, layer = prunable_layers(clf.net_.module_)[0]
    # Prune the larger half of the first layer, so that masking visibly changes its spectrum.
    with torch.no_grad():
        magnitude = layer.weight_orig.abs()
        layer.weight_mask[magnitude > magnitude.median()] = 0
    clf.mask_["layers.0"] = layer.weight_mask.numpy().astype(bool)
    effective = (layer.weight_orig * layer.weight_mask).detach().numpy().astype(np.float64)
    unmasked = layer.weight_orig.detach().numpy().astype(np.float64)
    expected = np.sort(np.linalg.svd(effective, compute_uv=False) ** 2)
    assert (np.linalg.svd(unmasked, compute_uv=False) ** 2).max() > 1.5 * expected[-1]
    before = pipe.predict_proba(X[:50])

    quality = layer_quality(pipe)
    np.testing.assert_allclose(layer_eigenvalues(pipe)["layers.0"], expected, rtol=1e-5)
    # WeightWatcher's own largest eigenvalue is the masked matrix's, not weight_orig's.
    assert quality["lambda_max"][0] == pytest.approx(expected[-1], rel=1e-5)
    assert quality["sparsity"][0] == pytest.approx(np.mean(effective == 0)) and \
        quality["sparsity"][0] > 0.5
    np.testing.assert_array_equal(pipe.predict_proba(X[:50]), before)
    assert hasattr(layer, "weight_orig") and hasattr(layer, "weight_mask")
    assert layer.weight_orig.abs().gt(0).all()


def test_layer_quality_reports_small_layers_instead_of_failing():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    clf = LEGCPrunedClassifier(**{**FAST, "pruning": "none", "hidden_layer_sizes": (8,)}).fit(X, y)
    quality = layer_quality(clf)
    assert list(quality["shape"]) == [(8, 4), (1, 8)]
    assert list(quality["status"]) == ["too small", "too small"]
    assert quality["alpha"].isna().all()
    assert not quality["alpha_in_range"].any()


@pytest.mark.parametrize("wrap", [False, True], ids=["estimator", "pipeline"])
def test_unfitted_models_raise_not_fitted(wrap, two_informative):
    X, _ = two_informative
    clf = LEGCPrunedClassifier(**FAST)
    model = make_pipeline(StandardScaler(), clf) if wrap else clf
    with pytest.raises(NotFittedError):
        feature_importance(model, X)
    with pytest.raises(NotFittedError):
        layer_quality(model)
    with pytest.raises(NotFittedError):
        importance_consistency(model, model, X)


def test_layer_quality_needs_our_estimator(two_informative):
    X, y = two_informative
    with pytest.raises(TypeError, match="LEGCPrunedClassifier"):
        layer_quality(LogisticRegression().fit(X, y))


# -- import hygiene and console noise ------------------------------------------------------

def test_importing_sklegc_does_not_import_the_diagnostic_libraries():
    result = run_python(
        "import sys, sklegc, sklegc.diagnostics\n"
        "loaded = {'shap', 'weightwatcher', 'matplotlib'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    assert result.returncode == 0, result.stderr


def test_layer_quality_is_silent_and_leaves_logging_alone():
    result = run_python(
        "import logging, numpy as np\n"
        "from sklegc import LEGCPrunedClassifier\n"
        "from sklegc.diagnostics import layer_quality\n"
        "X = np.random.RandomState(0).normal(size=(60, 12)).astype('float32')\n"
        "clf = LEGCPrunedClassifier(hidden_layer_sizes=(10,), max_epochs=1, pruning='none',\n"
        "                           random_state=0).fit(X, X[:, 0] > 0)\n"
        "q = layer_quality(clf)\n"
        "assert q['status'][0] == 'ok', q\n"
        "assert 'weightwatcher' in __import__('sys').modules\n"
        "root = logging.getLogger()\n"
        "assert root.handlers == [] and root.level == logging.WARNING, (root.handlers, root.level)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


# -- plots -----------------------------------------------------------------------------------

def test_plot_importance_comparison(dense, two_informative, tmp_path):
    X, _ = two_informative
    scrambled = scrambled_first_layer(dense, [3, 4, 5, 0, 1, 2])
    imps = {name: feature_importance(m, X, **SHAP_FAST, random_state=0)
            for name, m in (("dense", dense), ("scrambled", scrambled))}
    fig = plot_importance_comparison(imps)
    assert [ax.get_title() for ax in fig.axes] == ["dense", "scrambled"]
    # Features are in the first model's order on every axes.
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert set(labels[:2]) == {"x0", "x1"}
    heights = [p.get_width() for p in fig.axes[1].patches]
    np.testing.assert_allclose(heights, imps["scrambled"]["mean"].loc[labels])
    fig.savefig(tmp_path / "imp.png")
    assert (tmp_path / "imp.png").stat().st_size > 0


def test_plot_esd(digits_pipeline, tmp_path):
    pipe, _, _ = digits_pipeline
    fig = plot_esd(pipe)
    assert len(fig.axes) == 3
    assert all(len(ax.lines) >= 1 for ax in fig.axes)  # the fitted power law
    one = plot_esd(pipe, layer="layers.2")
    assert len(one.axes) == 1 and one.axes[0].get_title().startswith("layers.2 (30x50)")
    assert plot_esd(pipe, layer=-1).axes[0].get_title().startswith("layers.4")
    with pytest.raises(ValueError, match="unknown layer"):
        plot_esd(pipe, layer="nope")
    fig.savefig(tmp_path / "esd.png")


def test_plot_accuracy_vs_sparsity():
    frame = pd.DataFrame({
        "dataset": ["cancer"] * 5 + ["iris"] * 2,
        "method": ["legc", "legc", "random", "random", "magnitude", "legc", "random"],
        "sparsity": [0.1, 0.1, 0.1, 0.3, 0.1, 0.05, 0.05],
        "accuracy": [0.86, 0.88, 0.85, 0.80, 0.89, 0.9, 0.9],
    })
    fig = plot_accuracy_vs_sparsity(frame)
    cancer, iris = fig.axes
    assert cancer.get_title() == "cancer" and iris.get_title() == "iris"
    lines = {c.get_label(): c.lines[0] for c in cancer.containers}
    assert set(lines) == {"legc", "random", "magnitude"}
    np.testing.assert_allclose(lines["legc"].get_xdata(), [10.0])
    np.testing.assert_allclose(lines["legc"].get_ydata(), [0.87])  # the mean of two seeds
    np.testing.assert_allclose(lines["random"].get_xdata(), [10.0, 30.0])
    assert len(iris.get_legend().get_texts()) == 2
    with pytest.raises(ValueError, match="accuracy"):
        plot_accuracy_vs_sparsity(frame.drop(columns="accuracy"))


def test_quiet_restores_the_root_logger():
    from sklegc.diagnostics._utils import quiet

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with quiet():
        logging.basicConfig(level=logging.INFO)
        print("swallowed")
        warnings.warn("swallowed")
    assert root.handlers == handlers and root.level == level
