"""The speed gate's timing process (convcheck.runtimes.timer): every runtime on one thread by
default, in a process of its own, for either framework's original; bad settings refused."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from convcheck import frameworks
from convcheck.runtimes import timer
from convcheck.runtimes.timer import PAIRING, PairTimer, Saved, TimerError


def matmul_model(path, n: int = 64):
    """A one-MatMul ONNX model on (batch, n) float inputs."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [n, n],
                           np.random.default_rng(0).standard_normal(n * n).astype(np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["output"])], "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", n])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("threads", [None, 2])
def test_pairs_are_timed_on_the_gates_threads_in_a_process_of_their_own(tmp_path, monkeypatch,
                                                                        threads):
    if threads:
        monkeypatch.setenv(timer.THREADS_ENV, str(threads))
    model = Saved.converted("onnx", matmul_model(tmp_path / "m.onnx"))
    x = np.random.default_rng(1).random((100, 64), dtype=np.float32)
    t = PairTimer()
    try:
        pairs = t.time(model, model, x, x)
    finally:
        t.close()
    assert set(pairs) == set(PAIRING)
    for name, p in pairs.items():
        assert p.threads == (threads or 1), (name, p)
        assert PAIRING[name]["min_pairs"] <= p.n <= PAIRING[name]["max_pairs"]
        assert all(s > 0 for s in p.original_s + p.converted_s)
    assert frameworks.threads() == frameworks.threads()  # this process' setting is untouched


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_an_original_of_either_framework_is_timed_on_one_thread(bench, good_conversion,
                                                                framework):
    """Keras is the reason for the process: TensorFlow's thread pools are fixed at its start."""
    conv = good_conversion("lenet5", framework)
    o = conv.original
    x, _ = bench.test_set(o.spec, framework)
    pairs = bench.timer.time(Saved.original(o.spec, framework, o.path),
                             Saved.converted("onnx", conv.path), x[:300], x[:300])
    assert {p.threads for p in pairs.values()} == {1}
    assert all(p.as_dict()["threads"] == 1 for p in pairs.values())


def test_a_gate_started_ahead_is_taken_not_timed_again(tmp_path):
    model = Saved.converted("onnx", matmul_model(tmp_path / "m.onnx"))
    x = np.random.default_rng(1).random((100, 64), dtype=np.float32)
    t = PairTimer(workers=2)
    started = []
    submit = t.submit
    t.submit = lambda *args: started.append(args) or submit(*args)
    try:
        t.ahead(model, model, x, x)
        t.ahead(model, model, x, x)  # the same pair and samples: started once
        t.ahead(model, model, x[:50], x[:50])  # other samples: another timing
        assert len(started) == 2
        assert len(t._pool._processes) == 2  # the two time at once, a process each
        assert set(t.time(model, model, x[:50], x[:50])) == set(PAIRING)
        assert set(t.time(model, model, x, x)) == set(PAIRING)
        assert len(started) == 2  # both taken, none timed again
        t.time(model, model, x, x)  # a timing is taken once: this one is timed now
        assert len(started) == 3
    finally:
        t.close()


def test_a_model_that_does_not_load_there_fails_its_gate_with_the_path(tmp_path):
    missing = Saved.converted("onnx", tmp_path / "gone.onnx")
    t = PairTimer()
    try:
        with pytest.raises(Exception, match="gone.onnx"):
            t.time(missing, missing, np.zeros((4, 64), np.float32), np.zeros((4, 64), np.float32))
    finally:
        t.close()


def test_a_dead_timing_process_fails_one_gate_and_the_next_starts_another(tmp_path):
    model = Saved.converted("onnx", matmul_model(tmp_path / "m.onnx"))
    x = np.zeros((8, 64), np.float32)
    t = PairTimer()
    try:
        t.time(model, model, x, x)
        for pid in list(t._pool._processes):  # the child, killed as the OOM killer would
            t._pool._processes[pid].kill()
        with pytest.raises(TimerError, match="timing process died"):
            t.time(model, model, x, x)
        assert t.time(model, model, x, x)["inference batch"].threads == 1
    finally:
        t.close()


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_gate_threads_must_be_a_whole_number(monkeypatch, value):
    monkeypatch.setenv(timer.THREADS_ENV, value)
    with pytest.raises(ValueError, match=rf"\$CONVCHECK_GATE_THREADS = '{value}': must be a "
                                         "whole number >= 1"):
        timer.gate_threads()


def test_a_file_written_again_is_loaded_again(tmp_path):
    """The timing process keeps what it loaded, but not past a rewrite of the file."""
    path = tmp_path / "m.onnx"
    x64, x32 = (np.zeros((8, n), np.float32) for n in (64, 32))
    t = PairTimer()
    try:
        model = Saved.converted("onnx", matmul_model(path, 64))
        t.time(model, model, x64, x64)
        model = Saved.converted("onnx", matmul_model(path, 32))
        assert t.time(model, model, x32, x32)["inference batch"].n >= 1
    finally:
        t.close()
