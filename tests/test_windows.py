"""Tests of the window layout (docs/method.md, "Windows")."""

import math
from fractions import Fraction

import numpy as np
import pytest

from sklegc.windows import (
    WindowLayout,
    min_window_size,
    n_windows,
    window_layout,
    window_stride,
)


def test_paper_mnist_layout():
    # 50 epochs of MNIST: 19,150 optimizer steps, windows of 200 with 10% overlap.
    layout = window_layout(19150, 200)
    assert isinstance(layout, WindowLayout)
    assert layout.stride == 180
    assert layout.window_size == 200
    assert layout.n_windows == 106 == n_windows(19150, 200)
    assert layout.starts[:3].tolist() == [0, 180, 360]
    assert layout.ends[:3].tolist() == [199, 379, 559]
    assert layout.starts[-1] == 105 * 180 and layout.ends[-1] == 105 * 180 + 199
    assert layout.ends[-1] < 19150 <= layout.ends[-1] + 180
    assert layout.starts.dtype.kind == "i" and layout.ends.dtype.kind == "i"


@pytest.mark.parametrize("window_size", [6, 7, 10, 30, 160, 199, 200, 250, 1000])
@pytest.mark.parametrize("overlap", [0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 0.7, 0.9, 0.95])
def test_stride_is_the_exact_floor(window_size, overlap):
    # The decimal the user wrote is what counts: 200 * (1 - 0.1) is 180, even though
    # the float product may land a hair below it.
    exact = math.floor(window_size * (1 - Fraction(str(overlap))))
    assert window_stride(window_size, overlap) == max(1, exact)


def test_stride_is_at_least_one():
    assert window_stride(6, 0.9) == 1
    assert window_layout(20, 6, 0.9).stride == 1


@pytest.mark.parametrize("n_steps", [6, 7, 19, 20, 21, 100, 181, 379, 380, 1000])
@pytest.mark.parametrize("window_size,overlap", [(6, 0.0), (10, 0.1), (20, 0.5), (200, 0.1)])
def test_layout_lists_every_complete_window(n_steps, window_size, overlap):
    stride = window_stride(window_size, overlap)
    starts = [k * stride for k in range(n_steps) if k * stride + window_size <= n_steps]
    assert n_windows(n_steps, window_size, overlap) == len(starts)
    if not starts:
        with pytest.raises(ValueError):
            window_layout(n_steps, window_size, overlap)
        return
    layout = window_layout(n_steps, window_size, overlap)
    assert layout.starts.tolist() == starts
    assert (layout.ends - layout.starts == window_size - 1).all()
    assert layout.n_windows == len(starts) == (n_steps - window_size) // stride + 1


def test_exactly_one_window():
    layout = window_layout(200, 200)
    assert layout.n_windows == 1
    assert layout.starts.tolist() == [0] and layout.ends.tolist() == [199]


def test_windows_cut_from_a_trajectory():
    trajectory = np.arange(1000)
    layout = window_layout(trajectory.size, 50, 0.2)
    for start, end in zip(layout.starts, layout.ends):
        window = trajectory[start:end + 1]
        assert window.size == 50 and window[0] == start and window[-1] == end


def test_min_window_size():
    assert min_window_size() == 6
    assert min_window_size(embedding_dim=3, delay=2, steps=3, theiler=5) == 14
    assert min_window_size(embedding_dim=1, delay=1, steps=1, theiler=0) == 3
    # (m - 1) d + S + t + 2 points leave t + 2 candidates: reference 0 and candidate
    # t + 1 are the only pair more than t apart; one point fewer leaves none.
    for m, d, S, t in [(2, 1, 3, 0), (3, 2, 4, 7), (1, 1, 1, 2)]:
        n = min_window_size(m, d, S, t)
        n_candidates = n - (m - 1) * d - S
        assert n_candidates - 1 > t
        assert (n - 1 - (m - 1) * d - S) - 1 <= t


def test_custom_min_size():
    assert window_layout(20, 3, min_size=3).n_windows == 9
    with pytest.raises(ValueError, match="window_size must be at least 10"):
        window_layout(100, 9, min_size=10)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: window_layout(100, 5), ValueError, ["window_size", "at least 6", "got 5"]),
        (lambda: window_layout(100, 0), ValueError, ["window_size", "at least 6"]),
        (lambda: window_layout(100, 20.0), TypeError, ["window_size", "integer"]),
        (lambda: window_layout(100, True), TypeError, ["window_size", "integer"]),
        (lambda: window_layout(100.0, 20), TypeError, ["n_steps", "integer"]),
        (lambda: window_layout(100, 20, 1.0), ValueError, ["overlap", "0 <= overlap < 1"]),
        (lambda: window_layout(100, 20, -0.1), ValueError, ["overlap", "smallest valid value 0"]),
        (lambda: window_layout(100, 20, "0.1"), TypeError, ["overlap", "real number"]),
        (lambda: window_layout(150, 200), ValueError,
         ["n_steps", "at least window_size=200", "150 steps", "one window needs 200"]),
        (lambda: window_layout(100, 20, min_size=0), ValueError, ["min_size", "at least 1"]),
        (lambda: window_stride(0), ValueError, ["window_size", "at least 1"]),
        (lambda: window_stride(200, 1.5), ValueError, ["overlap"]),
        (lambda: n_windows(-1, 20), ValueError, ["n_steps", "at least 0"]),
        (lambda: n_windows(100, 2.5), TypeError, ["window_size", "integer"]),
        (lambda: min_window_size(embedding_dim=0), ValueError, ["embedding_dim", "at least 1"]),
        (lambda: min_window_size(delay=0), ValueError, ["delay", "at least 1"]),
        (lambda: min_window_size(steps=0), ValueError, ["steps", "at least 1"]),
        (lambda: min_window_size(theiler=-1), ValueError, ["theiler", "at least 0"]),
    ],
)
def test_errors_name_the_argument_and_the_fix(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_n_windows_does_not_raise_for_short_trajectories():
    assert n_windows(0, 200) == 0
    assert n_windows(199, 200) == 0
    assert n_windows(200, 200) == 1


def test_numpy_integers_are_accepted():
    layout = window_layout(np.int64(19150), np.int32(200), np.float32(0.1))
    assert layout.n_windows == 106 and isinstance(layout.stride, int)
