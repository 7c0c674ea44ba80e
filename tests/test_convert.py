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
    # No real conversion finishes in 10 ms (the forked child has torch imported, not exported).
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


def crashing_converter(original, destination, options):
    """A team's converter that dies as a native crash would: no Python error to report."""
    import os
    import signal

    print("about to write the artifact", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)


def test_converter_that_crashes_fails_its_case_with_its_last_words(lenet5, tmp_path):
    target = Target("onnx-crash", "onnx", 60,
                    {"pytorch": {"converter": f"{__name__}:crashing_converter"}})
    with pytest.raises(ConversionError) as e:
        convert(lenet5.spec, "pytorch", lenet5.path, target, tmp_path)
    msg = str(e.value)
    assert "onnx-crash conversion of lenet5-pytorch" in msg and "killed by signal 11" in msg, msg
    assert "about to write the artifact" in msg, msg
    # the next conversion is unaffected: each is a child of its own
    ok = convert(lenet5.spec, "pytorch", lenet5.path, lenet5_onnx_target(), tmp_path / "ok")
    assert ok.exists()


def lenet5_onnx_target():
    from convcheck.settings import load_targets

    return load_targets()["onnx"]


def test_the_fork_server_imports_what_the_session_converts(monkeypatch):
    """coremltools takes ~10 s to import (it imports torch and TensorFlow): a session that
    converts PyTorch to ONNX only does not pay for it, nor for TensorFlow."""
    from convcheck.conversion import runner
    from convcheck.conversion.runner import preload

    monkeypatch.setattr(runner, "_preload", runner._preload)  # this session's, put back

    assert preload({("onnx", "pytorch")}) == ["torch", "onnx", "onnxscript"]
    assert set(preload({("onnx", "keras"), ("coreml", "pytorch")})) == {
        "torch", "tensorflow", "keras", "onnx", "tf2onnx", "coremltools"}
    assert preload({("tflite", "pytorch")}) == ["torch"]  # a team's format: its framework's
