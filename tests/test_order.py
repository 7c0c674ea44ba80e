"""A process runs each original's tests together and the timed tests last
(convcheck.plugin.order), and lets go of an original's conversion runtimes once its last test
is done (Workbench.release): over the whole zoo, runtimes kept to the end of the session grew
the test process to 16.5 GB."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from convcheck.pipeline.cases import Case
from convcheck.plugin import order


def item(test: str, case: Case | None = None, marker: str | None = None):
    params = {"converted": case} if case is not None else {}
    return SimpleNamespace(
        name=f"{test}[{case.id if case else ''}]", originalname=test,
        callspec=SimpleNamespace(params=params) if params else None,
        get_closest_marker=lambda name: object() if name == marker else None)


def test_each_originals_tests_run_together_the_timed_last_gates_first_the_rest_in_place():
    a = Case("lenet5", "pytorch", 0, "onnx")
    a2 = Case("lenet5", "pytorch", 0, "coreml-mlprogram-fp32")
    b = Case("lenet5", "keras", 0, "onnx")
    items = [item("test_plain"),
             item("test_converts", a), item("test_converts", b), item("test_converts", a2),
             item("test_inference_batch_converted", a, marker="timing"),
             item("test_speed_ratio", a), item("test_speed_ratio", b),
             item("test_regression"),
             item("test_size", a), item("test_size", b), item("test_size", a2),
             item("test_own_timing", marker="timing")]
    order.pytest_collection_modifyitems(None, items)
    assert [i.name for i in items] == [
        "test_plain[]",
        "test_converts[lenet5-pytorch-onnx-s0]",
        "test_converts[lenet5-pytorch-coreml-mlprogram-fp32-s0]",
        "test_size[lenet5-pytorch-onnx-s0]",
        "test_size[lenet5-pytorch-coreml-mlprogram-fp32-s0]",
        "test_converts[lenet5-keras-onnx-s0]",
        "test_size[lenet5-keras-onnx-s0]",
        "test_regression[]",
        "test_speed_ratio[lenet5-pytorch-onnx-s0]",
        "test_speed_ratio[lenet5-keras-onnx-s0]",
        # the gates first (timed two at a time, started ahead), then Table III's timings
        "test_inference_batch_converted[lenet5-pytorch-onnx-s0]",
        "test_own_timing[]"]


def test_an_originals_runtimes_are_released_after_its_last_test(bench, good_conversion,
                                                                monkeypatch):
    converted = good_conversion("lenet5", "pytorch")
    x, _ = bench.test_set(converted.case.spec, "pytorch")
    before = converted.predictor.predict(x[:4])
    assert "predictor" in vars(converted)
    released = []
    monkeypatch.setattr(order, "bench", lambda config: SimpleNamespace(
        release=lambda original: released.append(original)))
    here, other = (item("test_size", converted.case),
                   item("test_size", Case("lenet5", "keras", 0, "onnx")))
    for nextitem, want in ((here, []), (other, ["lenet5-pytorch-s0"]),
                           (None, ["lenet5-pytorch-s0"] * 2)):
        hook = order.pytest_runtest_teardown(SimpleNamespace(**vars(here), config=None), nextitem)
        next(hook)
        with pytest.raises(StopIteration):
            next(hook)
        assert released == want
    # what the hook calls: the runtimes go, the outputs stay, the next use loads it again
    bench.outputs(converted)
    assert bench.release(converted.original.id) >= 1
    assert "predictor" not in vars(converted) and converted.id in bench._outputs
    np.testing.assert_array_equal(converted.predictor.predict(x[:4]), before)
    assert bench.release("no-such-original-s0") == 0
