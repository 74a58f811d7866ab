"""Overlapping windows over a weight trajectory.

A trajectory of ``n_steps`` values (one per optimizer step) is cut into windows of
``window_size`` steps whose starts are ``stride = floor(window_size * (1 - overlap))``
steps apart. Window ``k`` covers steps ``[k * stride, k * stride + window_size)`` and only
complete windows are used, so there are ``floor((n_steps - window_size) / stride) + 1`` of
them. The network's misclassification rate for window ``k`` is measured right after its
last step, ``ends[k]``.
"""

import math
import numbers
from typing import NamedTuple

import numpy as np

__all__ = [
    "WindowLayout",
    "min_window_size",
    "n_windows",
    "window_layout",
    "window_stride",
]


class WindowLayout(NamedTuple):
    """Where the windows of a trajectory lie.

    Attributes
    ----------
    starts : ndarray of int64, shape (n_windows,)
        Index of the first step of each window.
    ends : ndarray of int64, shape (n_windows,)
        Index of the last step of each window (inclusive), the step after which the
        window's misclassification rate is measured.
    stride : int
        Steps between the starts of consecutive windows.
    window_size : int
        Steps in each window.
    n_windows : int
        Number of complete windows.
    """

    starts: np.ndarray
    ends: np.ndarray
    stride: int
    window_size: int
    n_windows: int


def _check_int(name, value, minimum):
    # bool is an int subclass, but True as a window size is always a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _check_overlap(overlap):
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Real):
        raise TypeError(f"overlap must be a real number, got {type(overlap).__name__} {overlap!r}")
    overlap = float(overlap)
    if not 0.0 <= overlap < 1.0:
        raise ValueError(
            f"overlap must satisfy 0 <= overlap < 1 (smallest valid value 0, "
            f"the paper uses 0.1), got {overlap!r}"
        )
    return overlap


def _stride(window_size, overlap):
    # The slack absorbs the representation error of the overlap, even of a float32 0.1
    # (0.10000000149...): 200 * (1 - 0.1) must give 180, not 179.
    return max(1, math.floor(window_size * (1.0 - overlap) + 1e-6))


def window_stride(window_size, overlap=0.1):
    """Steps between the starts of consecutive windows.

    Parameters
    ----------
    window_size : int
        Steps in each window, at least 1.
    overlap : float, default=0.1
        Fraction of a window shared with the next one, ``0 <= overlap < 1``.

    Returns
    -------
    int
        ``floor(window_size * (1 - overlap))``, computed so that float error cannot
        lose a step, and at least 1 (a very large overlap on a short window would
        otherwise give a stride of 0).

    Examples
    --------
    >>> window_stride(200)
    180
    >>> window_stride(200, overlap=0.5)
    100
    """
    window_size = _check_int("window_size", window_size, 1)
    return _stride(window_size, _check_overlap(overlap))


def min_window_size(embedding_dim=2, delay=1, steps=3, theiler=0):
    """Smallest window for which the Lyapunov exponent is defined at all.

    A window of ``N`` points has ``N - (embedding_dim - 1) * delay - steps`` neighbour
    candidates and ``theiler`` fewer reference points (docs/method.md, section 3, step 4).
    At least one reference needs a candidate more than ``theiler`` steps away, which first
    happens for ``N = (embedding_dim - 1) * delay + steps + theiler + 2``.

    Parameters
    ----------
    embedding_dim : int, default=2
        Embedding dimension, at least 1.
    delay : int, default=1
        Delay between the coordinates of a delay vector, at least 1.
    steps : int, default=3
        Follow-up steps of the divergence curve, at least 1.
    theiler : int, default=0
        Theiler window, at least 0.

    Returns
    -------
    int
        The minimum window length.

    Examples
    --------
    >>> min_window_size()
    6
    >>> min_window_size(embedding_dim=3, delay=2, steps=3, theiler=5)
    14
    """
    embedding_dim = _check_int("embedding_dim", embedding_dim, 1)
    delay = _check_int("delay", delay, 1)
    steps = _check_int("steps", steps, 1)
    theiler = _check_int("theiler", theiler, 0)
    return (embedding_dim - 1) * delay + steps + theiler + 2


def n_windows(n_steps, window_size, overlap=0.1):
    """Number of complete windows in a trajectory, 0 when not even one fits.

    Unlike :func:`window_layout` this does not raise for a trajectory that is too
    short, and it does not check ``window_size`` against the minimum needed by the
    Lyapunov exponent, so callers can test feasibility cheaply.

    Parameters
    ----------
    n_steps : int
        Length of the trajectory, at least 0.
    window_size : int
        Steps in each window, at least 1.
    overlap : float, default=0.1
        Fraction of a window shared with the next one, ``0 <= overlap < 1``.

    Returns
    -------
    int
        ``floor((n_steps - window_size) / stride) + 1``, or 0 if
        ``n_steps < window_size``.

    Examples
    --------
    >>> n_windows(19150, 200)
    106
    >>> n_windows(150, 200)
    0
    """
    n_steps = _check_int("n_steps", n_steps, 0)
    stride = window_stride(window_size, overlap)
    if n_steps < window_size:
        return 0
    return (n_steps - window_size) // stride + 1


def window_layout(n_steps, window_size, overlap=0.1, *, min_size=None):
    """Starts and ends of the complete overlapping windows of a trajectory.

    Parameters
    ----------
    n_steps : int
        Length of the trajectory (optimizer steps recorded).
    window_size : int
        Steps in each window (the paper uses 160 to 250).
    overlap : float, default=0.1
        Fraction of a window shared with the next one, ``0 <= overlap < 1``.
    min_size : int, optional
        Smallest accepted ``window_size``. Defaults to :func:`min_window_size` with
        its default arguments, the shortest window with a defined Lyapunov exponent.

    Returns
    -------
    WindowLayout
        ``starts``, ``ends`` (inclusive), ``stride``, ``window_size``, ``n_windows``.

    Raises
    ------
    TypeError
        If ``n_steps``, ``window_size`` or ``min_size`` is not an integer.
    ValueError
        If ``window_size < min_size``, ``overlap`` is outside ``[0, 1)``, or the
        trajectory is shorter than one window.

    See Also
    --------
    n_windows : the window count without raising for short trajectories.

    Examples
    --------
    >>> layout = window_layout(19150, 200)
    >>> layout.n_windows, layout.stride
    (106, 180)
    >>> layout.starts[:3].tolist(), layout.ends[:3].tolist()
    ([0, 180, 360], [199, 379, 559])
    """
    if min_size is None:
        min_size = min_window_size()
    min_size = _check_int("min_size", min_size, 1)
    window_size = _check_int("window_size", window_size, min_size)
    overlap = _check_overlap(overlap)
    if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral):
        raise TypeError(f"n_steps must be an integer, got {type(n_steps).__name__} {n_steps!r}")
    n_steps = int(n_steps)
    if n_steps < window_size:
        raise ValueError(
            f"n_steps must be at least window_size={window_size}: the trajectory has "
            f"{n_steps} steps and one window needs {window_size}"
        )
    stride = _stride(window_size, overlap)
    count = (n_steps - window_size) // stride + 1
    starts = np.arange(count, dtype=np.int64) * stride
    return WindowLayout(
        starts=starts,
        ends=starts + (window_size - 1),
        stride=stride,
        window_size=window_size,
        n_windows=count,
    )
