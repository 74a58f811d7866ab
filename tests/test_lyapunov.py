"""Tests of the batched Lyapunov kernels against docs/method.md, known answers and nolds."""

import math
import warnings
from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sklegc.lyapunov import divergence_curve, max_lyapunov
from sklegc.windows import min_window_size


def reference_curve(x, m=2, d=1, S=3, t=0):
    """docs/method.md (section 3) steps 2-6 for one window, one reference point at a time.

    Deliberately plain: the only vectorisation is over the candidates of one reference.
    Squared distances are summed coordinate by coordinate in the order 0..m-1, the same
    order as the kernels, so exact ties are ties here too.
    """
    x = np.asarray(x, dtype=np.float64)
    lo, hi = x.min(), x.max()
    if hi - lo == 0:
        return np.full(S + 1, np.nan)
    x = (x - lo) / (hi - lo)
    M = len(x) - (m - 1) * d
    vectors = np.stack([x[k * d: k * d + M] for k in range(m)], axis=1)
    n_candidates = M - S
    n_references = n_candidates - t
    candidates = np.arange(n_candidates)
    sums = [0.0] * (S + 1)
    counts = [0] * (S + 1)
    for n in range(n_references):
        diff = vectors[:n_candidates] - vectors[n]
        d2 = np.zeros(n_candidates)
        for k in range(m):
            d2 = d2 + diff[:, k] * diff[:, k]
        admissible = (np.abs(n - candidates) > t) & (d2 > 0) & (d2 < 1)
        if not admissible.any():
            continue
        best = d2[admissible].min()
        j = candidates[admissible & (d2 == best)].max()
        for i in range(S + 1):
            e = vectors[n + i] - vectors[j + i]
            dd = 0.0
            for k in range(m):
                dd += e[k] * e[k]
            if dd > 0:
                sums[i] += math.log(dd)
                counts[i] += 1
    return np.array([sums[i] / counts[i] / 2 if counts[i] else np.nan for i in range(S + 1)])


def reference_lyapunov(x, m=2, d=1, S=3, t=0, static_tol=1e-5):
    """docs/method.md (section 3) steps 1 and 7 on top of :func:`reference_curve`."""
    x = np.asarray(x, dtype=np.float64)
    if x.max() - x.min() < static_tol:
        return 0.0
    y = reference_curve(x, m, d, S, t)
    if np.isnan(y[0]) or np.isnan(y[1]):
        return 0.0
    return y[1] - y[0]


def logistic(n, x0=0.3, r=4.0):
    x = np.empty(n)
    x[0] = x0
    for i in range(1, n):
        x[i] = r * x[i - 1] * (1.0 - x[i - 1])
    return x


def _datasets():
    rng = np.random.default_rng(20250825)
    walks = rng.standard_normal((10, 120)).cumsum(axis=1)
    long_walks = rng.standard_normal((2, 200)).cumsum(axis=1)
    noise = rng.standard_normal((10, 120))
    maps = np.stack([logistic(600, x0, r)[100 + 40 * i: 220 + 40 * i]
                     for i, (x0, r) in enumerate([(0.3, 4.0), (0.61, 4.0), (0.2, 3.9),
                                                   (0.45, 3.7), (0.8, 4.0), (0.33, 3.95)])])
    base = rng.standard_normal(120).cumsum()
    base = (base - base.min()) / (base.max() - base.min())
    static = np.stack([
        np.full(120, 0.25),
        0.5 + 0.99e-5 * base,
        0.5 + 1.01e-5 * base,
        1e-300 * base,
        np.r_[np.zeros(119), 1.0],
    ])
    repeated = np.stack([
        np.round(rng.standard_normal(120).cumsum()),
        np.round(rng.standard_normal(120).cumsum()),
        np.tile([0.0, 1.0, 2.0], 40),
        np.tile([0.0, 1.0, 0.5, 1.0], 30),
        np.repeat(rng.standard_normal(24).cumsum(), 5),
        rng.integers(0, 3, 120).astype(float),
        rng.integers(0, 2, 120).astype(float),
    ])
    # Oscillating weights (too high a learning rate): consecutive points mirror each other,
    # so the delay vectors lie across the diagonal and their coordinate sums nearly tie,
    # the worst case of the numba kernel's sort key; the last row ties them exactly.
    steps = np.arange(120)
    zigzag = np.stack([
        (-1.0) ** steps * (1 + 0.1 * rng.standard_normal(120)) + 0.05 * rng.standard_normal(
            120).cumsum(),
        (-1.0) ** steps * np.abs(rng.standard_normal(120)),
        np.where(steps % 2 == 0, 1.0, -1.0) * rng.integers(1, 4, 120),
    ])
    return {
        "random_walk": walks,
        "zigzag": zigzag,
        "random_walk_200": long_walks,
        "random_walk_f32": walks.astype(np.float32),
        "white_noise": noise,
        "logistic": maps,
        "static": static,
        "repeated": repeated,
    }


DATASETS = _datasets()

PARAMS = [
    dict(embedding_dim=2, delay=1, steps=3, theiler=0),
    dict(embedding_dim=2, delay=1, steps=3, theiler=5),
    dict(embedding_dim=1, delay=1, steps=1, theiler=0),
    dict(embedding_dim=3, delay=2, steps=4, theiler=3),
    dict(embedding_dim=4, delay=1, steps=2, theiler=10),
    dict(embedding_dim=2, delay=3, steps=5, theiler=0),
]

ENGINES = [
    dict(backend="numba"),
    dict(backend="numba", chunk_size=1),
    dict(backend="numba", chunk_size=3),
    dict(backend="torch"),
    dict(backend="torch", chunk_size=4),
]


def _key(params):
    return tuple(params[k] for k in ("embedding_dim", "delay", "steps", "theiler"))


@lru_cache(maxsize=None)
def _reference(name, key):
    m, d, S, t = key
    rows = DATASETS[name]
    curves = np.array([reference_curve(x, m, d, S, t) for x in rows])
    exponents = np.array([reference_lyapunov(x, m, d, S, t) for x in rows])
    return curves, exponents


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: "-".join(map(str, e.values())))
@pytest.mark.parametrize("params", PARAMS, ids=lambda p: "m{}d{}S{}t{}".format(*_key(p)))
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_matches_reference(name, params, engine):
    curves, exponents = _reference(name, _key(params))
    got_curves = divergence_curve(DATASETS[name], **params, **engine)
    got_exponents = max_lyapunov(DATASETS[name], **params, **engine)
    np.testing.assert_array_equal(np.isnan(got_curves), np.isnan(curves))
    np.testing.assert_allclose(got_curves, curves, rtol=0, atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(got_exponents, exponents, rtol=0, atol=1e-9)


def test_static_windows():
    static = DATASETS["static"]
    curves = divergence_curve(static)
    exponents = max_lyapunov(static)
    # A constant window has no curve; the range-below-tolerance window has one, but
    # its exponent is 0 by step 1; just above the tolerance the exponent is computed.
    assert np.isnan(curves[0]).all() and not np.isnan(curves[1]).any()
    assert exponents[0] == 0.0 and exponents[1] == 0.0
    assert exponents[2] != 0.0
    assert exponents[2] == pytest.approx(reference_lyapunov(static[2]), abs=1e-9)
    assert max_lyapunov(static[1:2], static_tol=0.5e-5)[0] == pytest.approx(
        reference_lyapunov(static[1], static_tol=0.5e-5), abs=1e-9)
    assert max_lyapunov(static[2:3], static_tol=1.1e-5)[0] == 0.0


def test_shifted_and_scaled_windows_agree():
    # Step 2 rescales each window, so the exponent ignores the weight's offset and scale
    # (up to the rounding of the rescaling itself).
    x = DATASETS["random_walk"]
    np.testing.assert_allclose(max_lyapunov(3.0 * x - 7.0), max_lyapunov(x), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.integers(0, 4), min_size=8, max_size=40),
    m=st.integers(1, 3),
    d=st.integers(1, 2),
    S=st.integers(1, 3),
    t=st.integers(0, 3),
)
def test_matches_reference_on_ties(data, m, d, S, t):
    x = np.array(data, dtype=float)
    if len(x) < min_window_size(m, d, S, t):
        return
    params = dict(embedding_dim=m, delay=d, steps=S, theiler=t)
    expected = reference_curve(x, m, d, S, t)
    for backend in ("numba", "torch"):
        got = divergence_curve(x[None, :], backend=backend, **params)[0]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_float32_input_equals_its_float64_upcast(backend):
    x32 = np.concatenate([DATASETS["random_walk_f32"],
                          DATASETS["repeated"].astype(np.float32)])
    x64 = x32.astype(np.float64)
    np.testing.assert_array_equal(max_lyapunov(x32, backend=backend),
                                  max_lyapunov(x64, backend=backend))
    np.testing.assert_array_equal(divergence_curve(x32, backend=backend),
                                  divergence_curve(x64, backend=backend))
    t32 = torch.from_numpy(x32)
    np.testing.assert_array_equal(max_lyapunov(t32, backend=backend).numpy(),
                                  max_lyapunov(x64, backend=backend))


def test_memory_layout_and_dtype_do_not_change_results():
    # float32/float64 rows are read in place wherever they are evenly spaced (a strided
    # view like the benchmark's, a column slice), copied otherwise (transposed, reversed).
    rng = np.random.default_rng(3)
    buf = rng.standard_normal(40 * 90 + 200).cumsum().astype(np.float32)
    views = {
        "overlapping windows of one buffer": np.lib.stride_tricks.as_strided(
            buf, shape=(40, 200), strides=(90 * 4, 4)),
        "column slice": rng.standard_normal((30, 260)).cumsum(axis=1)[:, 17:217],
        "transposed": np.ascontiguousarray(rng.standard_normal((200, 30)).cumsum(axis=0)).T,
        "reversed rows": rng.standard_normal((30, 200)).cumsum(axis=1)[::-1],
        "integers": rng.integers(-50, 50, (30, 200)).cumsum(axis=1),
    }
    for name, x in views.items():
        plain = np.array(x, dtype=np.float64, order="C")
        np.testing.assert_array_equal(max_lyapunov(x), max_lyapunov(plain), err_msg=name)
        np.testing.assert_array_equal(divergence_curve(x), divergence_curve(plain),
                                      err_msg=name)
        if x.dtype.kind == "f":
            tensor = torch.from_numpy(np.ascontiguousarray(x))
            np.testing.assert_array_equal(max_lyapunov(tensor).numpy(), max_lyapunov(plain),
                                          err_msg=name)


def test_one_compiled_kernel_per_dtype():
    """Every input reaches the kernels as one array type per dtype: a single row, a layout
    or a writeable flag of its own would compile them again (seconds on a first call)."""
    from sklegc.lyapunov import _exponent_block, _sums_block

    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 40)).cumsum(axis=1)
    for dtype in (np.float32, np.float64):
        w = x.astype(dtype)
        read_only = w.copy()
        read_only.flags.writeable = False
        for windows in (w, w[:1], w[::2], np.asfortranarray(w), read_only, read_only[:1],
                        torch.from_numpy(w)):
            max_lyapunov(windows)
            max_lyapunov(windows, chunk_size=1)
            divergence_curve(windows, theiler=2)
    for kernel in (_exponent_block, _sums_block):
        bufs = {sig[0] for sig in kernel.signatures}
        assert bufs and all(buf.layout == "C" and not buf.mutable for buf in bufs)
        # One version per window dtype and kind of delay offsets, whatever else varied.
        assert len(kernel.signatures) == len({(sig[0].dtype, sig[5])
                                              for sig in kernel.signatures})


@pytest.mark.parametrize("m,d,S,t", [(2, 1, 3, 0), (2, 1, 3, 4), (3, 2, 5, 0), (3, 2, 5, 3)])
def test_exponent_kernel_gives_the_general_kernels_bits(m, d, S, t):
    """max_lyapunov (what a fit computes) runs _exponent_block, which follows the
    exponent's two steps only, so that it compiles faster; on the same windows it gives
    the same bits as _sums_block, the kernel of divergence_curve's any number of steps."""
    from sklegc.lyapunov import (_delay_offsets, _exponent_block, _flat_rows,
                                 _sums_block)

    length = min(x.shape[1] for x in DATASETS.values())
    windows = np.concatenate([DATASETS[name][:, :length] for name in sorted(DATASETS)])
    for dtype in (np.float32, np.float64):
        chunk = np.ascontiguousarray(windows, dtype=dtype)
        buf, rs = _flat_rows(chunk)
        n, N = chunk.shape
        offs = _delay_offsets(m, d)
        results = []
        for kernel, extra in ((_exponent_block, (t,)), (_sums_block, (t, 2))):
            sums = np.full((n, 2), -1.0)
            counts = np.zeros((n, 2), dtype=np.int64)
            status = np.full(n, -1, dtype=np.int64)
            kernel(buf, rs, N, 0, n, offs, S, *extra, 1e-5, sums, counts, status)
            results.append((sums, counts, status))
        (sums_a, counts_a, status_a), (sums_b, counts_b, status_b) = results
        assert (status_a == 0).sum() > 40 and (status_a != 0).any()
        ok = status_a == 0
        assert sums_a[ok].tobytes() == sums_b[ok].tobytes()
        np.testing.assert_array_equal(counts_a[ok], counts_b[ok])
        np.testing.assert_array_equal(status_a, status_b)


def test_only_the_exponent_kernel_waits_for_the_background_compilation(monkeypatch):
    """The background process (sklegc._jit) compiles the exponent's kernel only: a call
    that runs the other kernel must not wait for it (it would then compile its own kernel
    after the wait, seconds later than it could have)."""
    import sklegc.lyapunov as lyapunov

    waits = []
    monkeypatch.setattr(lyapunov, "wait_for_compile", waits.append)
    x = DATASETS["random_walk"]
    divergence_curve(x)
    divergence_curve(x, theiler=2, steps=4)
    assert waits == []
    max_lyapunov(x)
    max_lyapunov(x, theiler=2)
    divergence_curve(x, steps=1)
    assert waits == ["lyapunov"] * 3


def test_chunk_size_and_backend_do_not_change_results():
    x = np.concatenate([DATASETS["random_walk"], DATASETS["white_noise"],
                        DATASETS["repeated"]])
    base = max_lyapunov(x)
    for chunk_size in (1, 2, 7, 1000):
        np.testing.assert_array_equal(max_lyapunov(x, chunk_size=chunk_size), base)
        np.testing.assert_allclose(max_lyapunov(x, chunk_size=chunk_size, backend="torch"),
                                   base, rtol=0, atol=1e-12)
    curves = divergence_curve(x, theiler=4)
    np.testing.assert_allclose(divergence_curve(x, theiler=4, backend="torch", chunk_size=5),
                               curves, rtol=0, atol=1e-12, equal_nan=True)


def test_return_types():
    x = DATASETS["random_walk"]
    out = max_lyapunov(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (len(x),)
    curves = divergence_curve(x.tolist(), steps=5)
    assert isinstance(curves, np.ndarray) and curves.shape == (len(x), 6)
    tensor = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    for backend in (None, "numba", "torch"):
        got = max_lyapunov(tensor, backend=backend)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
        assert got.device == tensor.device and got.shape == (len(x),)
        got = divergence_curve(tensor, backend=backend)
        assert isinstance(got, torch.Tensor) and got.shape == (len(x), 4)
    assert isinstance(max_lyapunov(x, backend="torch"), np.ndarray)
    assert max_lyapunov(np.empty((0, 50))).shape == (0,)
    assert divergence_curve(np.empty((0, 50))).shape == (0, 4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensors_use_torch_on_their_device():
    x = DATASETS["random_walk"]
    got = max_lyapunov(torch.tensor(x, device="cuda"))
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), max_lyapunov(x), rtol=0, atol=1e-9)


def test_logistic_map_first_step_is_ln2():
    # The logistic map at r = 4 has Lyapunov exponent ln 2. On 2000-4000 points the
    # first step of the curve was within 0.002 of ln 2 for these starts and Theiler
    # windows 0-20; the tolerance leaves room for other platforms' rounding.
    for n, x0 in ((2000, 0.3), (3000, 0.123), (4000, 0.77)):
        x = logistic(n, x0)
        for theiler in (5, 20):
            y = divergence_curve(x[None, :], theiler=theiler)[0]
            assert y[1] - y[0] == pytest.approx(math.log(2), abs=0.01)
        assert max_lyapunov(x[None, :], theiler=5)[0] == pytest.approx(math.log(2), abs=0.01)


def test_contracting_map_is_negative():
    # x_{n+1} = 0.5 x_n + 1 contracts to 2: neighbouring points stay on one line and
    # their distance halves each step, so the first step is ln 0.5. The tiny noise
    # keeps the window from being exactly geometric and stays far below the signal.
    rng = np.random.default_rng(3)
    x = np.empty(30)
    x[0] = 10.0
    for i in range(1, x.size):
        x[i] = 0.5 * x[i - 1] + 1.0 + 1e-14 * rng.standard_normal()
    le = max_lyapunov(x[None, :])[0]
    assert le < 0
    assert le == pytest.approx(math.log(0.5), abs=0.05)


@pytest.fixture(scope="module")
def nolds():
    with warnings.catch_warnings():
        # nolds 0.6.2 imports pkg_resources, which warns on import.
        warnings.simplefilter("ignore")
        return pytest.importorskip("nolds", reason="nolds is not installed")


def _nolds_curve(nolds, x, m, d, S, t):
    _, (ks, curve, _) = nolds.lyap_r(x, emb_dim=m, lag=d, min_tsep=t, trajectory_len=S + 1,
                                     fit="poly", debug_data=True)
    out = np.full(S + 1, np.nan)
    out[ks] = curve
    return out


@pytest.mark.parametrize("m,d,S", [(2, 1, 3), (3, 1, 5), (2, 2, 3), (4, 3, 8)])
def test_nolds_divergence_curve_without_theiler(nolds, m, d, S):
    """nolds.lyap_r computes the same curve as docs/method.md where the two coincide.

    What nolds does differently: (1) it uses every candidate as a reference, where
    the method stops ``theiler`` points earlier; (2) it has no ``d^2 < 1`` rule and accepts
    neighbours at distance 0; (3) its argmin breaks ties towards the lowest index, not
    the highest; (4) it averages ln d instead of (ln d^2) / 2 and does not rescale.
    Here the data are rescaled to [0, 1] beforehand, have no repeated values (no zero
    distances, no ties), every nearest distance is far below 1, and ``theiler = 0``,
    so all four differences vanish and the curves must agree to rounding.
    """
    rng = np.random.default_rng(11)
    rows = [rng.standard_normal(300).cumsum(), rng.standard_normal(300),
            logistic(400, 0.41)[50:350]]
    for x in rows:
        x = (x - x.min()) / (x.max() - x.min())
        ours = divergence_curve(x[None, :], embedding_dim=m, delay=d, steps=S)[0]
        theirs = _nolds_curve(nolds, x, m, d, S, 0)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_nolds_with_theiler_window_differs_only_by_extra_references(nolds):
    # With theiler = t > 0 nolds also follows the last t references, which docs/method.md
    # leaves out; everything else is the same, so on 300 points (t = 5: 5 extra pairs
    # out of about 290) the curves stay close but are not identical.
    rng = np.random.default_rng(12)
    x = rng.standard_normal(300)
    x = (x - x.min()) / (x.max() - x.min())
    ours = divergence_curve(x[None, :], theiler=5)[0]
    theirs = _nolds_curve(nolds, x, 2, 1, 3, 5)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=0.1)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(embedding_dim=0), ValueError, ["embedding_dim", "at least 1"]),
        (dict(delay=0), ValueError, ["delay", "at least 1"]),
        (dict(steps=0), ValueError, ["steps", "at least 1"]),
        (dict(theiler=-1), ValueError, ["theiler", "at least 0"]),
        (dict(embedding_dim=2.0), TypeError, ["embedding_dim", "integer"]),
        (dict(theiler=True), TypeError, ["theiler", "integer"]),
        (dict(chunk_size=0), ValueError, ["chunk_size", "at least 1"]),
        (dict(backend="jax"), ValueError, ["backend", "numba", "torch"]),
        (dict(static_tol=-1.0), ValueError, ["static_tol", "at least 0"]),
        (dict(static_tol="small"), TypeError, ["static_tol"]),
    ],
)
def test_invalid_parameters(kwargs, error, words):
    x = DATASETS["random_walk"][:2]
    with pytest.raises(error) as info:
        max_lyapunov(x, **kwargs)
    for word in words:
        assert word in str(info.value)
    kwargs.pop("static_tol", None)
    if kwargs:
        with pytest.raises(error):
            divergence_curve(x, **kwargs)


def test_invalid_windows():
    with pytest.raises(ValueError, match="2-D"):
        max_lyapunov(np.zeros(50))
    with pytest.raises(ValueError, match="2-D"):
        divergence_curve(np.zeros((2, 3, 50)))
    with pytest.raises(ValueError, match=r"minimum window length is 6"):
        max_lyapunov(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"theiler=4 the minimum window length is 11"):
        divergence_curve(np.zeros((2, 10)), embedding_dim=3, delay=1, theiler=4)
    with pytest.raises(TypeError, match="real numbers"):
        max_lyapunov(np.zeros((2, 50), dtype=complex))
    for backend in ("numba", "torch"):
        bad = DATASETS["random_walk"].copy()
        bad[3, 7] = np.nan
        with pytest.raises(ValueError, match="finite"):
            max_lyapunov(bad, backend=backend)
        bad[3, 7] = np.inf
        with pytest.raises(ValueError, match="finite"):
            divergence_curve(bad, backend=backend)


def test_minimum_window_length_is_usable():
    # At the minimum length exactly one reference/candidate pair is admissible.
    for m, d, S, t in [(2, 1, 3, 0), (3, 2, 1, 4), (1, 1, 2, 0)]:
        n = min_window_size(m, d, S, t)
        x = np.random.default_rng(n).standard_normal((3, n))
        got = divergence_curve(x, embedding_dim=m, delay=d, steps=S, theiler=t)
        expected = np.array([reference_curve(row, m, d, S, t) for row in x])
        np.testing.assert_allclose(got, expected, atol=1e-9, equal_nan=True)
        assert not np.isnan(got[:, 0]).all()
