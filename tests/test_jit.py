"""The kernels' decorator (sklegc._jit): cached where numba can write, compiled anyway where not."""

import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest
from numba.core import caching

from sklegc import _jit
from sklegc._jit import kernel


def _add_one(x):
    return x + 1


def test_kernels_are_cached_on_disk():
    assert isinstance(kernel(nogil=True)(_add_one)._cache, caching.FunctionCache)


def test_without_a_writable_cache_the_kernels_compile_anyway(monkeypatch):
    # What numba does where neither the installation nor the user's cache directory is
    # writable (seen in a read-only mount namespace): cache=True fails at decoration.
    def njit(cache=False, **options):
        if cache:
            raise RuntimeError("cannot cache function '_add_one': no locator available for "
                               "file 'sklegc/lyapunov.py'")
        return numba.njit(**options)

    monkeypatch.setattr(_jit, "njit", njit)
    monkeypatch.setattr(_jit, "_warned", [])
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        add_one = kernel(nogil=True)(_add_one)
    assert add_one(41) == 42
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        kernel(nogil=True)(_add_one)


# -- compiling in the background (the first fit after installing) -----------------------------

_FIT = """
import sys
sys.path.insert(0, sys.argv[2])
import warnings
import numpy as np
from sklearn.datasets import load_iris
import sklegc
from sklegc import LEGCPrunedClassifier
from sklegc import _jit
warnings.simplefilter("ignore")
X, y = load_iris(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)
clf = LEGCPrunedClassifier(hidden_layer_sizes=(6,), max_epochs=10, maxlag=2, random_state=0)
clf.fit(X, y)
np.save(sys.argv[1], np.concatenate([np.ravel(clf.granger_pvalues_), np.ravel(clf.lyapunov_)]))
print(sklegc.__file__)
print(_jit._paths()[0])
print(sorted(group for group in _jit._started if group is not None))
"""


def _fit_in_new_process(tmp_path, package, cache, switch, name):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "SKLEGC_BACKGROUND_COMPILE": switch,
           "OMP_NUM_THREADS": "1"}
    out = tmp_path / f"{name}.npy"
    done = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-c", _FIT,
                           str(out), str(package)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr
    module, directory, started = done.stdout.strip().split("\n")[-3:]
    assert module.startswith(str(package))
    return np.load(out), Path(directory), started


def test_a_cold_cache_compiles_in_background_and_the_fit_is_unchanged(tmp_path):
    # A copy of the package, imported ahead of the installed one: the compiler must import
    # the same copy (it once compiled the installed one, and the fit then compiled again).
    package = tmp_path / "pkg"
    shutil.copytree(Path(_jit.__file__).parent, package / "sklegc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    compiled, directory, started = _fit_in_new_process(tmp_path, package, cache, "1", "cold")
    assert started == "['granger', 'lyapunov']"
    markers = sorted(path.name.rsplit("-", 1)[1] for path in cache.rglob("sklegc-kernels-*"))
    assert markers == ["granger.ready", "lyapunov.ready"]  # and no lock left behind
    assert len(list(directory.glob("sklegc-kernels-*.ready"))) == 2  # the copy's cache
    # The next process finds them cached and starts nothing.
    warm, _, started = _fit_in_new_process(tmp_path, package, cache, "1", "warm")
    assert started == "[]"
    # Compiled in this process instead, the same numbers.
    inline, _, started = _fit_in_new_process(tmp_path, package, tmp_path / "cache2", "0",
                                             "inline")
    assert started == "[]"
    assert np.isfinite(inline).all()
    np.testing.assert_array_equal(compiled, inline)
    np.testing.assert_array_equal(warm, inline)


def test_windows_traced_while_the_kernel_compiles_get_the_same_exponents(monkeypatch):
    from sklearn.datasets import load_iris

    from sklegc import LEGCPrunedClassifier, trajectory

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    params = dict(hidden_layer_sizes=(6,), max_epochs=10, maxlag=2, random_state=0)
    direct = LEGCPrunedClassifier(**params).fit(X, y)
    calls = []

    def pending(group):  # compiling until the fifth window
        calls.append(group)
        return len(calls) < 9

    monkeypatch.setattr(trajectory, "compile_pending", pending)
    deferred = LEGCPrunedClassifier(**params).fit(X, y)
    assert len(calls) > 9 and np.isfinite(direct.granger_pvalues_).all()
    np.testing.assert_array_equal(deferred.lyapunov_, direct.lyapunov_)
    np.testing.assert_array_equal(deferred.granger_pvalues_, direct.granger_pvalues_)


def _sleeper():
    """A live process, and the lock text it would write."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    return process, f"{process.pid} {socket.gethostname()} {_jit._proc_stat(process.pid)[1]}"


def test_only_a_live_holder_of_the_lock_is_waited_for(tmp_path, monkeypatch):
    host = socket.gethostname()
    lock = tmp_path / "x.lock"
    monkeypatch.setattr(_jit, "_started", {None: None})
    monkeypatch.setattr(_jit, "_found", [(str(tmp_path), {"lyapunov": ("x.ready", str(lock))})])
    compiler, text = _sleeper()
    try:
        # A process that took the lock and still runs: waited for.
        lock.write_text(text)
        assert _jit.compile_pending("lyapunov")
        # The same lock written on another host, or older than the longest wait: stale.
        lock.write_text(text.replace(host, "another-host"))
        assert not _jit.compile_pending("lyapunov")
        lock.write_text(text)
        old = time.time() - _jit._WAIT_S - 1
        os.utime(lock, (old, old))
        assert not _jit.compile_pending("lyapunov")
    finally:
        compiler.kill()
        compiler.wait()
    # A killed holder's pid: not waited for.
    lock.write_text(text)
    assert not _jit.compile_pending("lyapunov")
    # Nor one killed and not yet reaped by its parent (a zombie), where /proc tells.
    zombie, text = _sleeper()
    zombie.kill()
    while _jit._proc_stat(zombie.pid)[0] not in ("Z", ""):
        time.sleep(0.01)
    lock.write_text(text)
    assert not _jit.compile_pending("lyapunov")
    zombie.wait()
    # A live process started after the lock was written (a killed holder's pid given to
    # another process): not waited for, where /proc tells.
    lock.write_text(f"{os.getppid()} {host} 1")
    assert _jit.compile_pending("lyapunov") is not os.path.exists("/proc/self/stat")
    # This process's own lock: it compiles the kernels itself, on their first call.
    lock.write_text(_jit._lock_text())
    assert not _jit.compile_pending("lyapunov")


@pytest.fixture
def compiler(tmp_path, monkeypatch):
    """A background compiler (a live process) started for both groups, whose markers and
    locks are in ``tmp_path``: ``(paths, lock text of the compiler)``."""
    paths = {group: (str(tmp_path / f"{group}.ready"), str(tmp_path / f"{group}.lock"))
             for group in ("lyapunov", "granger")}
    process, text = _sleeper()
    monkeypatch.setattr(_jit, "_found", [(str(tmp_path), paths)])
    monkeypatch.setattr(_jit, "_started", {None: None, "lyapunov": process.pid,
                                           "granger": process.pid})
    yield paths, text
    process.kill()
    process.wait()


def test_a_waiting_process_compiles_the_groups_its_compiler_has_not_begun(compiler):
    # The background compiler holds the Lyapunov kernel's lock and has not begun the
    # Granger kernels': the process waiting for the first compiles the second meanwhile.
    paths, text = compiler
    Path(paths["lyapunov"][1]).write_text(text)
    start = time.monotonic()
    _jit.wait_for_compile("lyapunov", timeout=1.0)
    assert time.monotonic() - start >= 1.0  # the Lyapunov kernel is still compiling
    assert os.path.exists(paths["granger"][0])  # compiled here, its marker left
    assert not os.path.exists(paths["granger"][1])  # and its lock given back
    assert not os.path.exists(paths["lyapunov"][0])
    assert Path(paths["lyapunov"][1]).read_text() == text  # the compiler's, untouched
    # Nothing is left to take: the next wait only waits.
    assert not _jit._claim("lyapunov")


def test_a_waiting_process_compiles_the_group_it_waits_for_first(compiler, tmp_path):
    # The background compiler has begun neither group (it is still starting): the process
    # that needs the Granger kernels compiles them, and leaves the Lyapunov kernel to it.
    paths, _ = compiler
    _jit.wait_for_compile("granger", timeout=30.0)
    assert os.path.exists(paths["granger"][0])
    assert not os.path.exists(paths["lyapunov"][0])
    assert not any(name.endswith(".lock") for name in os.listdir(tmp_path))


def test_a_lock_is_taken_whole_and_given_back_only_by_its_holder(compiler, tmp_path):
    paths, text = compiler
    lock = paths["lyapunov"][1]
    Path(lock).write_text(text)
    assert not _jit._lock(lock)  # a live process holds it
    assert not _jit._compile_group("lyapunov", *paths["lyapunov"])
    _jit._unlock(lock)
    assert Path(lock).read_text() == text  # not this process's to give back
    Path(lock).write_text(f"{os.getpid()} {socket.gethostname()} 1")  # a pid reused since
    assert _jit._lock(lock)
    assert Path(lock).read_text() == _jit._lock_text()
    assert sorted(os.listdir(tmp_path)) == ["lyapunov.lock"]  # no draft left beside it
    _jit._unlock(lock)
    assert not os.listdir(tmp_path)
    # A waiting process may take a lock before the compiler has made the directory.
    lock = tmp_path / "cache" / "granger.lock"
    assert _jit._lock(str(lock)) and lock.read_text() == _jit._lock_text()


def test_locks_work_on_a_file_system_without_hard_links(compiler, tmp_path, monkeypatch):
    def no_link(src, dst):
        raise PermissionError(1, "Operation not permitted", src)

    monkeypatch.setattr(os, "link", no_link)
    paths, text = compiler
    lock = paths["granger"][1]
    assert _jit._lock(lock) and Path(lock).read_text() == _jit._lock_text()
    assert not _jit._lock(lock)  # held: by this (live) process
    _jit._unlock(lock)
    Path(lock).write_text(text)
    assert not _jit._lock(lock)  # held by the compiler
    assert sorted(os.listdir(tmp_path)) == ["granger.lock"]


def test_a_long_wait_is_told(compiler, monkeypatch):
    paths, text = compiler
    Path(paths["lyapunov"][1]).write_text(text)
    Path(paths["granger"][0]).write_text("compiled")
    monkeypatch.setattr(_jit, "_WARN_S", 0.1)
    with pytest.warns(RuntimeWarning, match="waited .* lyapunov kernels.*"
                      "SKLEGC_BACKGROUND_COMPILE=0"):
        _jit.wait_for_compile("lyapunov", timeout=0.5)


@pytest.mark.parametrize("value", ["0", "false", "Off", "no"])
def test_background_compilation_can_be_turned_off(monkeypatch, value):
    monkeypatch.setattr(_jit, "_started", {})
    monkeypatch.setenv("SKLEGC_BACKGROUND_COMPILE", value)
    assert _jit.compile_in_background() == []
    assert not _jit.compile_pending("lyapunov")
