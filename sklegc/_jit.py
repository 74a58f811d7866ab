"""The numba decorator of the package's kernels: compiled once per machine, cached on disk.

The first call of a kernel with a new argument type compiles it (seconds); ``cache=True``
stores the machine code so that later processes load it instead (well under a second). numba
writes it next to the source, in ``sklegc/__pycache__``, or, where the installation is
read-only (a system-wide or container install), in the user's cache directory
(``~/.cache/numba`` on Linux); ``NUMBA_CACHE_DIR`` chooses another place (where that
directory cannot be written, numba falls back to the first two without a word). A cached
version is used only for the source it was compiled from (numba checks a hash of the file)
and on the same CPU model (docs/performance.md, "Compiling the kernels").

Where numba can write to none of these places, ``cache=True`` makes the decoration, and so
importing the package, fail. :func:`kernel` then compiles without the cache, in every
process, and warns once.

The first use after installing would pause for that compilation (about 6 s on a 2-core
machine: the Lyapunov kernel 4.5 s, the Granger kernels 1.5 s; docs/performance.md).
:func:`compile_in_background` moves it off the critical path: when the estimator is first
imported and the kernels of this source, numba, Python and CPU are not yet cached, one
background process compiles them into numba's cache while this one goes on importing torch
and training (one process at low priority, the Lyapunov kernel first); a process that needs
a kernel before it is ready waits for it (:func:`wait_for_compile`) and then loads it from
the cache, instead of compiling it a second time, and the weight tracer keeps its windows
meanwhile (:class:`sklegc.trajectory.WeightTracer`). While it waits, it compiles itself the
groups that the background process has not begun (the Granger kernels, while the Lyapunov
kernel compiles), so that the two compile on two cores. Marker files beside numba's cache
record what was done; lock files, each taken when its group's compilation begins, keep
concurrent processes (the workers of a grid search) to one compilation of each group; a wait
of over 30 s warns. ``SKLEGC_BACKGROUND_COMPILE=0`` (or ``false``, ``no``, ``off``) turns it
off (each process then compiles on first use, as numba does).
"""

import hashlib
import os
import socket
import sys
import time
import warnings

from numba import njit

_warned = []

_SWITCH = "SKLEGC_BACKGROUND_COMPILE"
_OFF = ("0", "false", "no", "off")
_CHILD = "_SKLEGC_COMPILING_KERNELS"
# A lock older than this is stale, and no process waits longer for a compilation: over ten
# times what compiling takes on a 2-core machine, so that only a stuck or vanished compiler
# is given up on (and then the waiting process compiles for itself).
_WAIT_S = 120.0
# A wait this long (three times what compiling takes on a 2-core machine) is told.
_WARN_S = 30.0
# The kernel groups, in the order the background process compiles them: the Lyapunov
# kernel is needed first, by the weight tracer.
_GROUPS = ("lyapunov", "granger")
_started = {}  # group -> pid of the compiler this process started; filled once per process
_found = []  # _paths(), once per process
_claiming = []  # non-empty while this process compiles a group in _claim
_given_up = []  # groups whose compilation failed in _claim


def kernel(**options):
    """``numba.njit(cache=True, **options)``, or without the cache where numba has no
    writable place for it (tests/test_jit.py)."""

    def decorate(func):
        try:
            return njit(cache=True, **options)(func)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            if not _warned:
                _warned.append(True)
                warnings.warn(
                    f"numba cannot cache sklegc's compiled kernels ({exc}): every new process "
                    "compiles them again on first use, which takes seconds. Set "
                    "NUMBA_CACHE_DIR to a writable directory.", RuntimeWarning, stacklevel=2)
            return njit(**options)(func)

    return decorate


def _paths():
    """``{group: (marker, lock)}`` in numba's cache directory of the kernels, the names keyed
    on the kernels' sources, numba, Python and the CPU, and the directory; None where numba
    has no cache for them. Computed once per process."""
    if not _found:
        _found.append(_find_paths())
    return _found[0]


def _find_paths():
    import llvmlite.binding as llvm
    import numba

    from . import granger, lyapunov

    directory = getattr(getattr(lyapunov._sums_block, "_cache", None), "_cache_path", None)
    if directory is None:
        return None
    digest = hashlib.sha256()
    for part in (numba.__version__, sys.version, llvm.get_host_cpu_name(),
                 llvm.get_host_cpu_features().flatten()):
        digest.update(part.encode())
    for module in (lyapunov, granger, sys.modules[__name__]):
        with open(module.__file__, "rb") as source:
            digest.update(source.read())
    stem = os.path.join(directory, f"sklegc-kernels-{digest.hexdigest()[:16]}")
    return directory, {group: (f"{stem}-{group}.ready", f"{stem}-{group}.lock")
                       for group in _GROUPS}


def _holder(lock, text=None):
    """The pid of the process holding ``lock``, or None where the lock is stale: older than
    ``_WAIT_S``, written on another host, or naming a process that has ended (where
    ``/proc`` tells, also one that was killed and not yet reaped: a zombie) or that was
    started after the lock was written (its pid given to another process). ``text``: the
    lock's contents where the caller has read them already."""
    try:
        if text is None:
            with open(lock) as file:
                text = file.read()
        pid, host, started = (text.split() + [""])[:3]
        pid = int(pid)
        if pid <= 0 or host != socket.gethostname() or (
                time.time() - os.path.getmtime(lock) > _WAIT_S):
            return None
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    state, current = _proc_stat(pid)
    if state in ("Z", "X") or (current and started != current):
        return None
    return pid


def _proc_stat(pid):
    """``(state, start time)`` of process ``pid`` from ``/proc/<pid>/stat`` (fields 3 and 22,
    proc(5); the start time in clock ticks since boot), as text; ``("", "")`` where there
    is no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rpartition(b")")[2].split()
        return fields[0].decode(), fields[19].decode()
    except (OSError, IndexError):
        return "", ""


def _lock_text():
    pid = os.getpid()
    return f"{pid} {socket.gethostname()} {_proc_stat(pid)[1]}"


def compile_in_background():
    """Start compiling the kernels into numba's cache in a background process, if needed.

    One process, at low priority (``nice`` 10), compiles the groups of kernels that are
    neither cached already nor being compiled by another process, the Lyapunov kernel
    (needed first) before the Granger ones, importing sklegc from where this process did.
    Does nothing, and never raises, where the cache is not writable,
    ``SKLEGC_BACKGROUND_COMPILE`` is ``0`` (or ``false``, ``no``, ``off``), numba's JIT is
    disabled or the platform is not POSIX; at most once per process.

    Returns
    -------
    list of str
        The groups (``"lyapunov"``, ``"granger"``) whose compilation this call started.
    """
    if (_started or os.environ.get(_CHILD)
            or os.environ.get(_SWITCH, "1").strip().lower() in _OFF):
        return []
    _started[None] = None  # once per process, whatever happens below
    try:
        from numba.core import config

        if config.DISABLE_JIT or os.name != "posix" or _warned:
            return []
        found = _paths()
        if found is None:
            return []
        groups = [group for group, (marker, lock) in found[1].items()
                  if not os.path.exists(marker) and _holder(lock) is None]
        if groups:
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            code = (f"import sys; sys.path.insert(0, {root!r}); "
                    f"from sklegc._jit import _compile; _compile({groups!r})")
            # posix_spawn, not subprocess.Popen: the compiler may outlive this process,
            # whose Popen would then warn (ResourceWarning) when it is collected.
            null = os.devnull
            pid = os.posix_spawn(
                sys.executable, [sys.executable, "-c", code], {**os.environ, _CHILD: "1"},
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
                              (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0)],
                setsid=True)
            _started.update(dict.fromkeys(groups, pid))
    except Exception:  # an optimisation: any failure leaves compiling on first use
        pass
    return [group for group, pid in _started.items() if group is not None]


def _running(group):
    """Whether this process's compiler of ``group`` still runs; reaps it once it ended."""
    pid = _started.get(group)
    if pid is None:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # reaped already (it compiled another group too)
        done = pid
    if done == 0:
        return True
    for name, value in _started.items():
        if value == pid:
            _started[name] = None
    return False


def compile_pending(group):
    """Whether a background compilation of ``group`` (``"lyapunov"`` or ``"granger"``) is
    still running: this process's, or another's that holds its lock."""
    if not _started or os.environ.get(_CHILD):
        # This process did not look for one (compile_in_background was not called).
        return False
    running = _running(group)
    try:
        found = _paths()
    except Exception:
        return False
    if found is None:
        return False
    marker, lock = found[1][group]
    if os.path.exists(marker):
        return False
    holder = _holder(lock)
    if holder == os.getpid():
        return False  # this process compiles it (_claim), as the kernel's first call
    return running or holder is not None


def wait_for_compile(group, timeout=_WAIT_S):
    """Wait (at most ``timeout`` seconds) for a background compilation of ``group`` to end,
    so that this process loads its kernels from the cache instead of compiling them too;
    meanwhile, compile here the groups that this process's background compiler has not
    begun (``group`` first)."""
    start = time.monotonic()
    warned = False
    while compile_pending(group) and time.monotonic() < start + timeout:
        if not _claim(group):
            time.sleep(0.02)
        if not warned and time.monotonic() - start > _WARN_S:
            warned = True
            warnings.warn(
                f"sklegc has waited {time.monotonic() - start:.0f} s for another process "
                f"compiling its {group} kernels into numba's cache; it waits at most "
                f"{timeout:.0f} s, then compiles them in this process. "
                f"{_SWITCH}=0 turns the background compilation off.", RuntimeWarning,
                stacklevel=3)


def _claim(awaited):
    """While this process waits for ``awaited``, compile in it a group that its background
    compiler has not begun (the Granger kernels while the Lyapunov one compiles; the
    awaited group itself first), so that both cores compile; True when one was compiled.
    Never raises."""
    if _claiming:
        return False
    _claiming.append(True)
    group = None
    try:
        found = _paths()
        for group in sorted(_GROUPS, key=lambda name: name != awaited):
            if _started.get(group) is None or group in _given_up:
                continue  # this process's compiler was not started for it, or has ended
            if _compile_group(group, *found[1][group]):
                return True
    except Exception:
        # An optimisation: the kernel's first call compiles what is left, as numba does.
        _given_up.append(group)
    finally:
        _claiming.clear()
    return False


def _lock(lock):
    """Take ``lock`` for this process; False where a live process holds it.

    The lock file appears with its text (written beside it, then hard-linked into place),
    so that no other process ever reads it empty and takes it for a stale one.
    """
    text = _lock_text()
    draft = f"{lock}.{os.getpid()}"
    os.makedirs(os.path.dirname(lock), exist_ok=True)  # before the compiler has made it
    with open(draft, "w") as file:
        file.write(text)
    try:
        for _ in range(2):
            try:
                _place(draft, lock, text)
                return True
            except FileExistsError:
                try:
                    with open(lock) as file:
                        found = file.read()
                except FileNotFoundError:
                    continue  # given back meanwhile
                if _holder(lock, found) is not None:
                    return False
                # Left by a process that ended; removed only if no other process has
                # replaced it meanwhile.
                _remove_if(lock, found)
        return False  # another process took it in between
    finally:
        os.remove(draft)


def _place(draft, lock, text):
    """Create ``lock`` as a hard link to ``draft``, or, on a file system without hard links,
    create it and write ``text`` (the old way, with its short window of an empty file);
    FileExistsError where it exists."""
    try:
        os.link(draft, lock)
    except FileExistsError:
        raise
    except OSError:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(fd, "w") as file:
            file.write(text)


def _unlock(lock):
    """Remove ``lock`` if this process holds it."""
    _remove_if(lock, _lock_text())


def _remove_if(lock, text):
    """Remove ``lock`` if it holds ``text``."""
    try:
        with open(lock) as file:
            if file.read() == text:
                os.remove(lock)
    except FileNotFoundError:
        pass


def _compile_group(group, marker, lock):
    """Compile ``group`` under its lock unless it is compiled or another process holds the
    lock; True when this call compiled it."""
    if os.path.exists(marker) or not _lock(lock):
        return False
    try:
        if os.path.exists(marker):  # compiled by the lock's last holder
            return False
        _warm(group, marker)
    finally:
        _unlock(lock)
    return True


def _warm(group, marker):
    """Compile ``group``'s kernels as the estimator calls them (float32 trace windows; the
    default Granger test) into numba's cache, and leave its marker."""
    import numpy as np

    rng = np.random.default_rng(0)
    if group == "lyapunov":
        from .lyapunov import max_lyapunov

        max_lyapunov(rng.standard_normal((2, 40)).cumsum(axis=1).astype(np.float32))
    else:
        from .granger import granger_tests

        granger_tests(rng.standard_normal(40), rng.standard_normal((40, 2)), maxlag=2)
    with open(marker, "w") as file:
        file.write(f"compiled by process {os.getpid()}\n")


def _compile(groups):
    """The background process: compile each group that no other process has taken, in
    order, each under its lock (taken only when its turn comes, so that a waiting process
    can take the later ones: _claim)."""
    os.nice(10)  # the process that imports torch and trains comes first
    directory, paths = _paths()
    os.makedirs(directory, exist_ok=True)
    for group in groups:
        _compile_group(group, *paths[group])
