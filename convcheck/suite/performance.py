"""Load time, inference time (Table III) and size on disk (Table IV), original vs converted.

Timings are pytest-benchmark benchmarks, grouped "<model>-<framework> <measurement>" so that an
original sits beside its conversions; every runtime uses convcheck.frameworks.threads() threads
and the same inputs. Absolute times are only reported; the gate is the ratio converted/original
measured in the same run (test_speed_ratio, after every benchmark). Sizes need no timing and
run under --benchmark-disable too.
"""
import numpy as np
import pytest

from convcheck import checks
from convcheck.artifacts import size_on_disk
from convcheck.predictors import predict_all

__all__ = ["test_load_original", "test_load_converted", "test_inference_batch_original",
           "test_inference_batch_converted", "test_inference_testset_original",
           "test_inference_testset_converted", "test_size", "test_speed_ratio"]

BATCH = 32  # the fixed batch: the first BATCH samples of the test set
GATED = ("inference batch", "inference testset")


def _inputs(bench, model):
    x, _ = bench.test_set(model.case.spec, model.case.framework)
    return x


def _load(model, bench, measure):
    predictor = measure(model, "load", model.load)
    out = predictor.predict(_inputs(bench, model)[:1])  # the timed load gave a working model
    assert out.shape == model.case.spec.output_shape(1), f"{model.id}: output {out.shape}"


def _infer_batch(model, bench, measure):
    x = np.ascontiguousarray(_inputs(bench, model)[:BATCH])
    out = measure(model, "inference batch", lambda: model.predictor.predict(x), len(x))
    assert out.shape == model.case.spec.output_shape(len(x)), f"{model.id}: output {out.shape}"


def _infer_testset(model, bench, measure):
    x = _inputs(bench, model)
    out = measure(model, "inference testset", lambda: predict_all(model.predictor, x), len(x))
    assert out.shape == model.case.spec.output_shape(len(x)), f"{model.id}: output {out.shape}"


def test_load_original(original, bench, measure):
    _load(original, bench, measure)


def test_load_converted(converted, bench, measure):
    _load(converted, bench, measure)


def test_inference_batch_original(original, bench, measure):
    _infer_batch(original, bench, measure)


def test_inference_batch_converted(converted, bench, measure):
    _infer_batch(converted, bench, measure)


def test_inference_testset_original(original, bench, measure):
    _infer_testset(original, bench, measure)


def test_inference_testset_converted(converted, bench, measure):
    _infer_testset(converted, bench, measure)


def test_size(artifact, tol, expect):
    """Every file of each artifact; the converted one within size_ratio of the original."""
    expect(checks.model_size(artifact.id, size_on_disk(artifact.original.path),
                             size_on_disk(artifact.path), tol(artifact)), artifact)


def test_speed_ratio(converted, timings, tol, expect):
    """Converted vs original median inference time of this run (runs after the benchmarks)."""
    o = converted.original
    missing = [f"{m.id} {name}" for name in GATED for m in (o, converted)
               if (m.id, name) not in timings]
    if missing:
        pytest.skip(f"not timed in this run (deselected or failed): {', '.join(missing)}")
    medians = {name: (timings[o.id, name], timings[converted.id, name]) for name in GATED}
    expect(checks.speed_ratio(converted.id, medians, tol(converted)), converted)
