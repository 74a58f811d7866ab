"""The estimator on a CUDA GPU. Skipped where torch sees none (CI has none)."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from sklegc import LEGCPrunedClassifier
from sklegc.network import prunable_layers

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_fit_on_cuda_prunes_predicts_and_loads_on_a_cpu_only_machine(tmp_path):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    clf = LEGCPrunedClassifier(hidden_layer_sizes=(6,), lr=0.1, max_epochs=8, batch_size=1,
                               window_size=40, maxlag=3, amount=0.3, device="cuda",
                               random_state=0).fit(X, y)
    assert {p.device.type for p in clf.net_.module_.parameters()} == {"cuda"}
    # The weights were traced on the GPU and reduced there by the torch backend.
    assert clf.lyapunov_.shape[1] == clf.n_weights_
    assert np.isfinite(clf.lyapunov_).all()
    flat = torch.cat([layer.weight.detach().reshape(-1)
                      for _, layer in prunable_layers(clf.net_.module_)]).cpu().numpy()
    assert clf.n_weights_pruned_ > 0
    assert np.all(flat[clf.pruned_] == 0.0)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()
    assert clf.score(X, y) > 0.9

    # A fresh process that sees no GPU loads the pickle and predicts the same.
    path = tmp_path / "gpu_model.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        import pickle, warnings, numpy as np
        warnings.simplefilter("ignore")
        clf = pickle.loads(open({str(path)!r}, "rb").read())
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "cpu_proba.npy")!r}, clf.predict_proba(X))
    """)
    subprocess.run([sys.executable, "-c", code], check=True,
                   env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    np.testing.assert_allclose(np.load(tmp_path / "cpu_proba.npy"), proba, rtol=0, atol=1e-5)
