"""The speed gate's timings: a model and its conversion timed in interleaved pairs
(convcheck.checks.paired_timing), by default in a child process whose every runtime runs on one
thread.

Why one thread: the gate compares two graphs, not how two runtimes scale over cores. With a
runtime thread per core, on a 2-core machine where another process keeps a core busy, a
preempted intra-op thread stalls whole calls: the intervals widen and move, a conversion slowed
to 2x its original's time measured 1.37x, one slowed to 3x 0.29x, and the gate caught them 2 and
3 times of 5 (benchmarks/speed_gate.py, README "Measured"); on one thread it caught 2x 5 of 5
with no false alarm. Table III's timings (pytest-benchmark) stay on the session's threads.

Why a process: TensorFlow fixes its thread pools when its runtime starts, so a Keras original
can run on one thread only in a process started so; and the child sees none of the test
process's state (its caches, its threads). concurrent.futures runs the child (a spawned
interpreter, one per test process): it imports the frameworks once and keeps the models it
loaded, so a session pays the imports once, not per gate. A child that dies fails the gate that
was running with its exit, and the next gate starts a new one.

Why two gates at once (CONVCHECK_GATE_WORKERS, default one per core and at most 2): each gate
times on one thread, so one gate after another leaves the other core of a 2-core machine idle
through the whole timed phase (13 of the smoke zoo's 58 minutes). The session starts every
gate's timing ahead (ahead()), and two children time two gates at once: each gate's pairs run
with the other core busy, the condition the gate is proven in (benchmarks/speed_gate.py, which
times its battery the same way), and both sides of a pair still share whatever the other core
does.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from convcheck import frameworks
from convcheck.checks import paired_timing as timing
from convcheck.children import enter_project, hidden_main, parent_context
from convcheck.runtimes.base import load_converted, predict_all

BATCH = 32  # the fixed batch: the first BATCH samples of the test set

# Interleaved pairs per gated measurement: at least min_pairs, then more until budget_s has
# passed, at most max_pairs. 15 pairs give a 95 % interval between the 4th and 12th ratio; 6
# (a test set of ResNet-18 takes ~6 s a pair here) between the smallest and the largest, which
# still fails a conversion whose every pair is past the bound. Measured (smoke zoo, onnx and
# onnx-legacy, 2 threads, 20/10 pairs): 15 gates took 11 min, 94 % of it on the CNNs' test sets.
PAIRING = {"inference batch": {"min_pairs": 15, "max_pairs": 60, "budget_s": 2.0},
           "inference testset": {"min_pairs": 6, "max_pairs": 30, "budget_s": 3.0}}

THREADS_ENV = "CONVCHECK_GATE_THREADS"
WORKERS_ENV = "CONVCHECK_GATE_WORKERS"


class TimerError(RuntimeError):
    """The timing process could not time a pair (it died, or a model would not load there)."""


def gate_threads() -> int:
    """Threads of every runtime while the gate times: $CONVCHECK_GATE_THREADS, default 1; a
    value that is not a whole number >= 1 raises ValueError naming the variable."""
    return frameworks.count_variable(THREADS_ENV, 1, "threads per runtime while the speed gate "
                                                     "times; default 1")


def gate_workers() -> int:
    """Gates timed at once, each in a timing process of its own: $CONVCHECK_GATE_WORKERS,
    default one per core and at most 2; a value that is not a whole number >= 1 raises
    ValueError naming the variable."""
    return frameworks.count_variable(WORKERS_ENV, frameworks.cores(2),
                                     "speed gates timed at once, each on its own process; "
                                     "default one per core, at most 2")


def paired_inference(reference, converted, x_reference, x_converted) -> dict:
    """The gate's measurements on two loaded predictors: a batch and the test-set samples given
    (the profile's timing.samples), each side on its own layout of the same samples, timed in
    interleaved pairs (PAIRING)."""
    bo = np.ascontiguousarray(x_reference[:BATCH])
    bc = np.ascontiguousarray(x_converted[:BATCH])
    return {
        "inference batch": replace(timing.paired_rounds(
            lambda: reference.predict(bo), lambda: converted.predict(bc),
            **PAIRING["inference batch"]), samples=len(bo)),
        "inference testset": replace(timing.paired_rounds(
            lambda: predict_all(reference, x_reference),
            lambda: predict_all(converted, x_converted), **PAIRING["inference testset"]),
            samples=len(x_reference)),
    }


@dataclass(frozen=True, eq=False)
class Saved:
    """A model as the timing process loads it: a converted artifact (`format` and its path) or
    an original (its model's name and declaration, its framework and its saved file)."""
    path: str
    format: str | None = None
    model: str | None = None
    declaration: dict | None = None
    framework: str | None = None

    @classmethod
    def converted(cls, fmt: str, path: Path) -> "Saved":
        return cls(str(path), format=fmt)

    @classmethod
    def original(cls, spec, framework: str, path: Path) -> "Saved":
        return cls(str(path), model=spec.name, declaration=spec.declaration, framework=framework)


class PairTimer:
    """Times (reference, converted) pairs on gate_threads() threads, in `workers` child
    processes (gate_workers()): ahead() starts a pair's timing in the background, time() takes
    its result (or times it now)."""

    def __init__(self, threads: int | None = None, workers: int | None = None):
        self.threads = gate_threads() if threads is None else threads
        self.workers = gate_workers() if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._ahead: dict = {}  # _key(...) -> Future

    def ahead(self, reference: Saved, converted: Saved, x_reference: np.ndarray,
              x_converted: np.ndarray) -> None:
        """Start timing this pair in the background; a time() of the same models and samples
        takes the result. A pair already started is not started again."""
        key = _key(reference, converted, x_reference, x_converted)
        if key not in self._ahead:
            self._ahead[key] = self.submit(reference, converted, x_reference, x_converted)

    def time(self, reference: Saved, converted: Saved, x_reference: np.ndarray,
             x_converted: np.ndarray) -> dict:
        """{measurement: Pairs} as paired_inference gives, timed in a child: started by ahead()
        or now."""
        future = self._ahead.pop(_key(reference, converted, x_reference, x_converted), None)
        return self.result(future or self.submit(reference, converted, x_reference,
                                                 x_converted))

    def submit(self, reference: Saved, converted: Saved, x_reference: np.ndarray,
               x_converted: np.ndarray):
        """A timing of this pair, started now whether or not one was (benchmarks/speed_gate.py
        repeats a gate): a Future for result()."""
        return self._call(_time, reference, converted, x_reference, x_converted)

    def ratio(self, reference: Saved, converted: Saved, x: np.ndarray, pairs: int = 30
              ) -> float:
        """The median batch ratio converted / reference over `pairs` pairs, timed as the gate
        times (what benchmarks/speed_gate.py sizes its slowed conversions by)."""
        return self.result(self._call(_batch_ratio, reference, converted, x, pairs))

    def _call(self, fn, *args):
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start, initargs=(self.threads, parent_context()))
        try:
            with hidden_main():  # a submit may start a child
                return self._pool.submit(fn, *args)
        except BrokenProcessPool as e:
            self._broken(e)

    def result(self, future):
        """A submitted timing's result, waited for; TimerError if its process died."""
        try:
            return future.result()
        except BrokenProcessPool as e:
            self._broken(e)

    def _broken(self, e):
        # every timing started in the dead pool is lost with it: the next gate starts anew
        self._ahead.clear()
        self.close()
        raise TimerError(f"the speed gate's timing process died ({e}); the next gate starts "
                         f"a new one") from None

    def close(self) -> None:
        self._ahead.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _key(reference: Saved, converted: Saved, x_reference, x_converted) -> tuple:
    """The identity of a timing: both models (path, how loaded) and the samples' bytes."""
    def samples(x):
        x = np.ascontiguousarray(x)
        return x.shape, str(x.dtype), hashlib.sha1(x.data).hexdigest()

    def model(m: Saved):
        return m.path, m.format, m.model, m.framework

    return model(reference), model(converted), samples(x_reference), samples(x_converted)


# --------------------------------------------------------------------------- the child

_loaded: dict = {}  # (path, its mtime, format, model, framework) -> predictor
# The models kept loaded: the few a run's consecutive gates share (an original and its
# conversions). Keeping every one grew the child to 7.2 GB over the whole smoke zoo.
KEEP = 4


def _start(threads: int, context: dict) -> None:
    os.environ["CONVCHECK_THREADS"] = str(threads)  # before any framework is imported
    enter_project(context)  # its registrations (a runtime, a loader) in force here too


def _load(saved: Saved):
    # the file's mtime too: a path written again (a rebuilt entry, a benchmark's scratch file)
    # is another model
    key = (saved.path, os.stat(saved.path).st_mtime_ns, saved.format, saved.model,
           saved.framework)
    if key in _loaded:
        _loaded[key] = _loaded.pop(key)  # the most recently used last
    else:
        while len(_loaded) >= KEEP:
            _loaded.pop(next(iter(_loaded)))  # the least recently used
        if saved.format is not None:
            _loaded[key] = load_converted(saved.format, Path(saved.path))
        else:
            from convcheck.declarations.spec import from_declaration
            from convcheck.runtimes import load_original

            spec = from_declaration(saved.model, saved.declaration)
            _loaded[key] = load_original(spec, saved.framework, Path(saved.path))
    return _loaded[key]


def _time(reference: Saved, converted: Saved, x_reference, x_converted) -> dict:
    from convcheck import frameworks

    pairs = paired_inference(_load(reference), _load(converted), x_reference, x_converted)
    return {k: replace(p, threads=frameworks.threads()) for k, p in pairs.items()}


def _batch_ratio(reference: Saved, converted: Saved, x, pairs: int) -> float:
    a, b = _load(reference), _load(converted)
    batch = np.ascontiguousarray(x[:BATCH])
    return timing.paired_rounds(lambda: a.predict(batch), lambda: b.predict(batch),
                                min_pairs=pairs, max_pairs=pairs, budget_s=0).median()
