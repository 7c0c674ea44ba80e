"""Load time, inference time (Table III) and size on disk (Table IV), original vs converted.

Timings are pytest-benchmark benchmarks, grouped "<model>-<framework> <measurement>" so that an
original sits beside its conversions; every runtime uses convcheck.frameworks.threads() threads
and the same inputs. Absolute times are only reported (Table III, --benchmark-compare). The
gate, test_speed_ratio, times the original and the conversion itself, in interleaved pairs, so
that a change in the machine's load hits both (convcheck.checks.paired_timing), on one thread
in a process of its own (convcheck.runtimes.timer); it and the sizes run under
--benchmark-disable too.
"""
import numpy as np
import pytest

from convcheck import checks
from convcheck.conversion.artifacts import size_on_disk
from convcheck.runtimes import predict_all
from convcheck.runtimes.timer import BATCH, Saved

__all__ = ["test_load_original", "test_load_converted", "test_inference_batch_original",
           "test_inference_batch_converted", "test_inference_testset_original",
           "test_inference_testset_converted", "test_size", "test_speed_ratio"]

GATED = ("inference batch", "inference testset")
# Table III's timings time something: under pytest-xdist they run after every other test, on one
# worker with the others shut down (convcheck.plugin.workers), as the speed gate does.
TABLE_III = pytest.mark.timing


def _inputs(bench, model):
    x, _ = bench.test_set(model.case.spec, model.case.framework)
    return x


def _timed_set(bench, model):
    """The samples a test-set timing passes over: the profile's timing.samples first ones of
    the test set (all of it where the profile sets none)."""
    return _inputs(bench, model)[:bench.profile.timing_samples()]


def _load(model, bench, measure):
    predictor = measure(model, "load", model.load)
    out = predictor.predict(_inputs(bench, model)[:1])  # the timed load gave a working model
    assert out.shape == model.case.spec.output_shape(1), f"{model.id}: output {out.shape}"


def _infer_batch(model, bench, measure):
    x = np.ascontiguousarray(_inputs(bench, model)[:BATCH])
    out = measure(model, "inference batch", lambda: model.predictor.predict(x), len(x))
    assert out.shape == model.case.spec.output_shape(len(x)), f"{model.id}: output {out.shape}"


def _infer_testset(model, bench, measure):
    x = _timed_set(bench, model)
    out = measure(model, "inference testset", lambda: predict_all(model.predictor, x), len(x))
    assert out.shape == model.case.spec.output_shape(len(x)), f"{model.id}: output {out.shape}"


def _timed_here(converted) -> None:
    """Skip timing a conversion that runs on a stand-in (a reference interpreter in place of a
    runtime this OS lacks: coreml-reference for Core ML off macOS)."""
    if converted.case.runtime:
        pytest.skip(f"{converted.id}: runs on {converted.case.runtime} here, a reference "
                    f"interpreter standing in for {converted.target.format}'s own runtime: its "
                    "speed says nothing of that runtime's (timed where the runtime exists)")


@TABLE_III
def test_load_original(original, bench, measure):
    _load(original, bench, measure)


@TABLE_III
def test_load_converted(converted, bench, measure):
    _timed_here(converted)
    _load(converted, bench, measure)


@TABLE_III
def test_inference_batch_original(original, bench, measure):
    _infer_batch(original, bench, measure)


@TABLE_III
def test_inference_batch_converted(converted, bench, measure):
    _timed_here(converted)
    _infer_batch(converted, bench, measure)


@TABLE_III
def test_inference_testset_original(original, bench, measure):
    _infer_testset(original, bench, measure)


@TABLE_III
def test_inference_testset_converted(converted, bench, measure):
    _timed_here(converted)
    _infer_testset(converted, bench, measure)


def _reference(bench, converted):
    """What a conversion is sized and timed against: its original, or for a precision or
    optimisation variant the conversion it was made from (a team choosing between the two
    ships one or the other). Returns (model, its name in the verdict)."""
    base = converted.target.base
    if base is None:
        return converted.original, "original"
    c = converted.case
    return bench.converted(c.model, c.framework, base, c.seed), f"{base} conversion"


def test_size(artifact, bench, tol, expect):
    """Every file of each artifact; the converted one within size_ratio of the original (a
    variant: of the conversion it was made from)."""
    ref, against = _reference(bench, artifact)
    expect(checks.model_size(artifact.id, size_on_disk(ref.path), size_on_disk(artifact.path),
                             tol(artifact), against), artifact)


def _saved(model) -> Saved:
    """How the gate's timing process loads `model` (an original or a conversion)."""
    if hasattr(model, "target"):
        return Saved.converted(model.target.format, model.path)
    return Saved.original(model.spec, model.framework, model.path)


def gate_pair(bench, converted):
    """What test_speed_ratio times for `converted`: ((reference, converted, their samples) as
    the timing process takes them, what the reference is called in the verdict); None where
    the conversion runs on a stand-in here (see _timed_here). What the session starts ahead
    (convcheck.plugin.gates) is this, so a gate takes the timing started for it."""
    if converted.case.runtime:
        return None
    ref, against = _reference(bench, converted)
    return (_saved(ref), _saved(converted), _timed_set(bench, ref),
            _timed_set(bench, converted)), against


def test_speed_ratio(converted, bench, tol, expect, alone, gates_ahead):
    """Converted vs original inference time (a variant: vs the conversion it was made from),
    timed in interleaved pairs over the same inputs (convcheck.checks.paired_timing), in the
    timing process on one thread (convcheck.runtimes.timer says why; it times two gates at
    once, started ahead): fails only when the confidence interval of the median per-pair ratio
    lies above speed_ratio. A check, not a benchmark: it runs under --benchmark-disable too."""
    _timed_here(converted)
    pair, against = gate_pair(bench, converted)
    pairs = bench.timer.time(*pair)
    expect(checks.speed_ratio(converted.id, pairs, tol(converted), against), converted)
