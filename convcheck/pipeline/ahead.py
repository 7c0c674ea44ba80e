"""Conversions run ahead of the tests that need them, several at a time.

A converter is mostly single-threaded Python (coremltools' passes, tf2onnx's graph rewrites),
each in a child process of its own (convcheck.conversion.runner). Run one after the other, a
2-core machine converts on one core while the other waits. So once an original is trained or
loaded, the conversions the session's selected tests will ask for start in the background,
`workers` at a time (CONVCHECK_CONVERTERS, default one per core and at most 2: each child of a
CIFAR-10 CNN's CoreML conversion holds its own copy of the model's graphs), each still in its
own child under its target's timeout_s; the tests go on meanwhile, and a test that needs a
conversion still running waits for it. A failed conversion is that conversion's error, raised
to the test that asks for it, as before.

A thread pool, not a process pool: each job already is a process (the runner's fork) and its
thread only waits on it. Progress lines written from a background thread are queued and
written by the session's own thread (pytest's terminal writer and its output capture are not
thread-safe): at the next build it asks for, while it waits for a job, and after each test.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Hashable

from convcheck import frameworks

CONVERTERS_ENV = "CONVCHECK_CONVERTERS"
MAX_DEFAULT = 2
FLUSH_S = 1.0  # while waiting for a job: how often its queued lines are written
STOP_POLL_S = 0.1  # closing: how often children started since the last stop are killed


def converters() -> int:
    """Conversions at once: $CONVCHECK_CONVERTERS, default one per core, at most MAX_DEFAULT; a
    value that is not a whole number >= 1 raises ValueError naming the variable."""
    return frameworks.count_variable(
        CONVERTERS_ENV, frameworks.cores(MAX_DEFAULT),
        "conversions run at once, in the background; default one per core, at most 2")


class Ahead:
    """Jobs (a key, a function) run on `workers` background threads, or on the threads of a
    named pool of `pools` ({name: threads}: trainings, one at a time, beside conversions);
    `log` is written only from the thread that made this object."""

    def __init__(self, workers: int, log: Callable[[str], None],
                 pools: dict[str, int] | None = None):
        sizes = {None: workers, **(pools or {})}
        for name, n in sizes.items():
            if n < 1:
                raise ValueError(f"workers{f' of pool {name!r}' if name else ''} must be "
                                 f">= 1, got {n}")
        self.workers = workers
        self._sizes = sizes
        self._write = log
        self._owner = threading.get_ident()
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._jobs: dict[Hashable, Future] = {}
        self._pools: dict[str | None, ThreadPoolExecutor] = {}
        # a job may submit others (a training, its conversions): jobs and pools change under it
        self._lock = threading.Lock()
        self._closed = False

    def log(self, line: str) -> None:
        """Write `line` now (from the owner's thread, after what is queued) or queue it."""
        if threading.get_ident() != self._owner:
            self._lines.put(line)
            return
        self.flush()
        self._write(line)

    def flush(self) -> None:
        """Write the lines the background threads queued (owner's thread only)."""
        if threading.get_ident() != self._owner:
            return
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            self._write(line)

    def submit(self, key: Hashable, fn: Callable, *args, pool: str | None = None) -> None:
        """Start fn(*args) in the background (on `pool`'s threads: a name given at __init__)
        unless `key` was submitted and not yet taken."""
        with self._lock:
            if key in self._jobs or self._closed:
                return
            if pool not in self._pools:
                self._pools[pool] = ThreadPoolExecutor(
                    self._sizes[pool], thread_name_prefix=f"convcheck-ahead-{pool or 'jobs'}")
            self._jobs[key] = self._pools[pool].submit(fn, *args)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._jobs

    def take(self, key: Hashable):
        """The job's result, waited for (its lines written meanwhile); its exception raised.
        A job is taken once."""
        with self._lock:
            future = self._jobs.pop(key)
        try:
            while True:
                try:
                    return future.result(timeout=FLUSH_S)
                except FutureTimeout:
                    self.flush()
        finally:
            self.flush()

    def close(self, stop: Callable[[], None] | None = None) -> None:
        """Cancel the jobs not started, `stop()` the running ones (kill their children), and
        wait for their threads."""
        with self._lock:
            self._closed = True  # a job that ends now submits nothing more
        for future in list(self._jobs.values()):
            future.cancel()
        if stop is not None:
            # Again until every job has ended: a job past its cancel point may start its child
            # just after a stop (it was waiting to fork), and that child must not run on.
            running = [f for f in list(self._jobs.values()) if not f.done()]
            while running:
                stop()
                wait(running, timeout=STOP_POLL_S)
                running = [f for f in running if not f.done()]
        for executor in self._pools.values():
            executor.shutdown(wait=True)
        self._pools.clear()
        self._jobs.clear()
        self._closed = False
        self.flush()
