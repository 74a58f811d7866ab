import os
from pathlib import Path

import numpy as np
import pytest
import torch

# One thread per test process: the networks are tiny, and the CI machine has two cores.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir():
    """The paper's datasets (``SKLEGC_DATA_DIR`` or ``../shared/datasets`` beside the repo)."""
    candidates = [os.environ.get("SKLEGC_DATA_DIR"),
                  Path(__file__).resolve().parents[2] / "shared" / "datasets"]
    for candidate in candidates:
        if candidate and Path(candidate, "cancer.csv").is_file():
            return Path(candidate)
    pytest.skip("the paper's datasets are not available: set SKLEGC_DATA_DIR to the folder "
                "holding cancer.csv, titanic_train.csv, ... (../shared/datasets in CI)")


@pytest.fixture
def small_problem():
    """A small, learnable binary problem: 120 samples, 5 features."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


from sklegc.estimator import PAPER_PARAMS  # noqa: E402

# The paper's protocol on a tiny network: enough windows for a small Granger lag in a second
# or two.
FAST = dict(PAPER_PARAMS, hidden_layer_sizes=(4,), lr=0.5, max_epochs=4, batch_size=1,
            window_size=20, maxlag=3, random_state=0)
