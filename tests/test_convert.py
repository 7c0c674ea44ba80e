"""A converter that fails or hangs fails its case with the converter's own message."""
import pytest

from convcheck.conversion.runner import ConversionError, convert
from convcheck.settings import Target


@pytest.fixture(scope="module")
def lenet5(bench):
    return bench.original("lenet5", "pytorch", bench.profile.seeds[0])


def test_converter_error_carries_its_message(lenet5, tmp_path):
    # No exporter knows opset 99: the exporter itself refuses, in its own words.
    target = Target("onnx-bad", "onnx", 300, {"pytorch": {"exporter": "torchscript", "opset": 99}})
    with pytest.raises(ConversionError) as e:
        convert(lenet5.spec, "pytorch", lenet5.path, target, tmp_path)
    msg = str(e.value)
    assert "onnx-bad conversion of lenet5-pytorch" in msg and "failed (exit 3)" in msg, msg
    assert "opset" in msg.lower(), msg  # the exporter's own words, not a generic failure


def test_converter_past_its_time_limit_is_stopped(lenet5, tmp_path):
    # No real conversion finishes in 10 ms (the child alone needs to import torch).
    target = Target("onnx-slow", "onnx", 0.01, {"pytorch": {"exporter": "dynamo", "opset": 18}})
    with pytest.raises(ConversionError, match=r"did not finish within 0 s .*stopped"):
        convert(lenet5.spec, "pytorch", lenet5.path, target, tmp_path)


def test_failed_conversion_is_remembered_not_retried(bench, monkeypatch):
    calls = []

    def failing(*args):
        calls.append(args)
        raise ConversionError("converter exploded")

    monkeypatch.setattr("convcheck.conversion.runner.convert", failing)
    monkeypatch.setitem(bench.targets, "onnx-broken",
                        Target("onnx-broken", "onnx", 60, {"pytorch": {"exporter": "dynamo"}}))
    for _ in range(2):
        with pytest.raises(ConversionError, match="exploded"):
            bench.converted("lenet5", "pytorch", "onnx-broken", bench.profile.seeds[0])
    assert len(calls) == 1
