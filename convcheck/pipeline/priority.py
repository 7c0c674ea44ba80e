"""The scheduling priority (nice) of the children that train ahead of the tests.

A training ahead runs beside the tests at a low priority, to take only the cores they leave
idle. But a low priority is only a gift while the session has tests to run: once the session
waits for that training, a niced child on a machine that something else keeps busy (another
pytest-xdist worker, another team's job) gets almost none of it: measured on 2 cores with two
busy loops beside it, a training of 8 s alone took 196 s at nice 19, and 7 s at nice 0. So a
child is niced only while no session thread waits on a training, and set back to 0 while one
does (waiting()).

Lowering a nice value again needs a privilege (CAP_SYS_NICE, or an RLIMIT_NICE that allows
nice 0; an unprivileged process may only raise it): a session without it does not nice its
trainings at all, since it could not undo it when it waits.
"""
from __future__ import annotations

import os
import resource
import threading
from contextlib import contextmanager

# Beside the tests. At their priority each ran slower than alone, and a small-op model's
# training most (a recurrent net's many small OpenMP regions each wait for a thread the
# scheduler gave to the tests): measured on 2 cores, the smoke zoo's LSTM and GRU (PyTorch)
# trained in 133 and 177 s beside the tests, against 20 and 23 s alone.
NICE = 19
CAP_SYS_NICE = 23  # linux/capability.h

_lock = threading.Lock()
_running: set[int] = set()  # pids of the children that train now
_waiting = 0  # session threads waiting on a training


def can_lower() -> bool:
    """Whether this process may lower a child's nice value back to 0."""
    try:
        limit = resource.getrlimit(resource.RLIMIT_NICE)[0]
        if limit == resource.RLIM_INFINITY or limit >= 20:  # nice down to 20 - limit
            return True
    except (AttributeError, ValueError, OSError):  # no RLIMIT_NICE (macOS)
        pass
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    except OSError:  # no /proc (macOS): root may
        pass
    return os.geteuid() == 0


def _wanted() -> int:
    return 0 if _waiting or not can_lower() else NICE


def _set(pid: int, nice: int) -> None:
    # Linux keeps a nice value per thread (setpriority on a pid sets its main thread's only):
    # every thread of the child; a thread it starts later takes its creator's.
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:  # no /proc (macOS: a process has one value), or it has ended
        tids = [pid]
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except (ProcessLookupError, PermissionError):  # ended, or (unprivileged) not lowered
            pass


def started(pid: int) -> None:
    """A training child has started: at the priority of the moment (NICE, or 0 while the
    session waits or where it could not be lowered again)."""
    with _lock:
        _running.add(pid)
        _set(pid, _wanted())


def ended(pid: int) -> None:
    with _lock:
        _running.discard(pid)


@contextmanager
def waiting():
    """The session waits on a training: every training child runs at nice 0 meanwhile, and
    at NICE again after."""
    global _waiting
    with _lock:
        _waiting += 1
        for pid in _running:
            _set(pid, 0)
    try:
        yield
    finally:
        with _lock:
            _waiting -= 1
            for pid in _running:
                _set(pid, _wanted())
