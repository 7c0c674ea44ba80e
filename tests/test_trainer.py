"""Originals trained in a child process, ahead of their tests (convcheck.pipeline.trainer): the
same weights as a training in the test process, progress lines through the pipe, the child's
own error, one at a time in the order asked for, and stopped when the session ends."""
import os
import sys
import threading
import time

import numpy as np
import pytest

from convcheck.conversion import runner
from convcheck.pipeline import priority, train, trainer
from convcheck.pipeline.cases import Case
from convcheck.pipeline.workbench import Workbench


def _training_set(bench, model):
    """(spec, training inputs in the data's layout, labels)"""
    from convcheck.declarations.registry import MODELS

    spec = MODELS.get(model)
    ds = bench.dataset(spec)
    return spec, ds.x_train, ds.y_train


def _weights(model, framework):
    if framework == "pytorch":
        return [t.detach().numpy() for t in model.state_dict().values()]
    return [np.asarray(w) for w in model.get_weights()]


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_a_child_trains_the_weights_the_test_process_trains(bench, tmp_path, framework):
    spec, x, y = _training_set(bench, "lenet5")
    hp, seed = bench.profile.train["lenet5"], bench.profile.seeds[0]
    # as the test process trains it (its layout's strides, too: see train_in_child)
    here = train.train(spec, framework, spec.to_framework_layout(x, framework), y, hp, seed,
                       lambda line: None, "here")
    lines = []
    with priority.waiting():  # as a session waits for it: at full priority
        trainer.train_in_child(spec, framework, x, y, hp, seed, "lenet5-child", tmp_path,
                               lines.append)
    there = train.load_predictor(spec, framework, tmp_path / train.MODEL_FILE[framework]).model
    a, b = _weights(here, framework), _weights(there, framework)
    assert len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b)), \
        f"{framework}: the child's weights differ from the test process' (same seed, data, threads)"
    epochs = [line for line in lines if "lenet5-child epoch" in line]
    assert len(epochs) == hp.epochs and epochs[-1].startswith(f"lenet5-child epoch {hp.epochs}/")


def test_the_childs_own_error_is_raised(bench, tmp_path):
    spec, x, y = _training_set(bench, "lenet5")
    hp = bench.profile.train["lenet5"]
    with pytest.raises(trainer.TrainingError) as e, priority.waiting():  # 10 labels of 1000s
        trainer.train_in_child(spec, "pytorch", x, y[:10], hp, 0, "short-labels", tmp_path, print)
    assert "training short-labels failed in its child process (exit 3)" in str(e.value)
    assert "IndexError" in str(e.value), str(e.value)
    assert list(tmp_path.iterdir()) == []  # its scratch files gone


def _cold_bench(bench, tmp_path, lines, targets=None):
    """A workbench of its own cache (the session's data), training ahead."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "data").symlink_to(bench.cache_dir / "data")
    if (bench.cache_dir / "npm").exists():
        (cache / "npm").symlink_to(bench.cache_dir / "npm")
    return Workbench(profile=bench.profile, data_dir=bench.data_dir, cache_dir=cache,
                     targets=targets or {}, log=lines.append, train_ahead=True)


def test_originals_train_ahead_one_at_a_time_in_the_order_their_tests_run(bench, tmp_path,
                                                                         monkeypatch):
    lines, seed = [], bench.profile.seeds[0]
    set_to, real_set = [], priority._set  # (pid, nice, whether the session waited)
    monkeypatch.setattr(priority, "_set", lambda pid, nice: (
        set_to.append((pid, nice, priority._waiting > 0)), real_set(pid, nice)))
    wb = _cold_bench(bench, tmp_path, lines)
    try:
        order = [("lenet5", "keras"), ("lenet5", "pytorch")]
        assert wb.plan([Case(m, fw, seed, None) for m, fw in order]) == {"trainings": 2}
        while not runner.live(wb._children):  # the first started before any test asked
            time.sleep(0.05)
        assert len(runner.live(wb._children)) == 1
        made = [wb.original(m, fw, seed) for m, fw in reversed(order)]
    finally:
        wb.close()
    assert all(o.predictor is not None for o in made)
    started = [line.split()[1] for line in lines if line.startswith("training ")]
    assert started == ["lenet5-keras-s0", "lenet5-pytorch-s0"], lines
    assert all("in a child process, ahead of its tests" in line for line in lines
               if line.startswith("training ")), lines
    spans = wb.progress.spans["trainings"]
    assert spans[0][1] <= spans[1][0] + 0.05, f"two trainings at once: {spans}"
    assert any("lenet5-pytorch-s0 epoch 3/3" in line for line in lines), lines
    # the first started before any test asked: niced (where it can be set back); the session
    # then waited for the second, and both ran at full priority from then on
    pids = list(dict.fromkeys(pid for pid, _, _ in set_to))
    assert len(pids) == 2, set_to
    assert set_to[0] == (pids[0], priority.NICE if priority.can_lower() else 0, False), set_to
    assert (pids[0], 0, True) in set_to and (pids[1], 0, True) in set_to, set_to


def test_a_trained_originals_conversions_start_before_its_tests_ask(bench, tmp_path):
    lines, seed = [], bench.profile.seeds[0]
    wb = _cold_bench(bench, tmp_path, lines, targets={"onnx": bench.targets["onnx"]})
    try:
        wb.plan([Case("lenet5", "pytorch", seed, "onnx")])
        deadline = time.monotonic() + 300
        with priority.waiting():  # this test waits (beside another xdist worker's tests)
            while "conversions" not in wb.progress.spans and time.monotonic() < deadline:
                time.sleep(0.1)  # no test has asked for the original yet
        assert wb.progress.spans.get("conversions"), lines
        assert not wb._originals
        converted = wb.converted("lenet5", "pytorch", "onnx", seed)
    finally:
        wb.close()
    assert converted.original is wb.original("lenet5", "pytorch", seed)  # the loaded one
    assert converted.original.predictor is not None and converted.path.exists()
    assert sum("converting lenet5-pytorch-s0 to onnx" in line for line in lines) == 1, lines


def test_a_session_that_ends_stops_its_training(bench, tmp_path):
    lines, seed = [], bench.profile.seeds[0]
    wb = _cold_bench(bench, tmp_path, lines)
    wb.plan([Case("lstm", "keras", seed, None)])  # the slowest of the two models CI trains
    while not runner.live(wb._children):
        time.sleep(0.05)
    wb.close()
    assert not runner.live(wb._children)
    models = tmp_path / "cache" / "models"
    assert not [p for p in models.iterdir() if not p.name.startswith(".")], \
        "a half-trained original reached the cache"


def test_train_ahead_is_off_in_an_xdist_worker_and_on_otherwise(monkeypatch):
    monkeypatch.delenv(trainer.TRAIN_AHEAD_ENV, raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert trainer.train_ahead()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert not trainer.train_ahead()
    monkeypatch.setenv(trainer.TRAIN_AHEAD_ENV, "1")
    assert trainer.train_ahead()
    monkeypatch.setenv(trainer.TRAIN_AHEAD_ENV, "yes")
    with pytest.raises(ValueError, match=r"\$CONVCHECK_TRAIN_AHEAD = 'yes': expected 1"):
        trainer.train_ahead()


def _threads_then_sleep(seconds: float) -> None:
    for _ in range(2):
        threading.Thread(target=time.sleep, args=(seconds,), daemon=True).start()
    time.sleep(seconds)


def _nice_of_each_thread(pid: int) -> set[int]:
    return {os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir(f"/proc/{pid}/task")}


@pytest.fixture
def threaded_child():
    """A child of the conversions' server running three threads, as a training does."""
    child = runner.start_child(_threads_then_sleep, (120,), "three threads")
    try:
        while len(os.listdir(f"/proc/{child.pid}/task")) < 3:
            time.sleep(0.01)
        yield child
    finally:
        priority.ended(child.pid)
        child.kill()
        child.join(10)
        runner.forget(child)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/task")
def test_a_training_is_niced_beside_the_tests_and_not_while_the_session_waits(threaded_child):
    if not priority.can_lower():
        pytest.skip("this process may not lower a nice value again (no CAP_SYS_NICE): its "
                    "trainings are never niced (test_without_the_privilege_...)")
    pid = threaded_child.pid
    priority.started(pid)
    assert _nice_of_each_thread(pid) == {priority.NICE}  # every thread, not the main one only
    with priority.waiting():
        assert _nice_of_each_thread(pid) == {0}
        with priority.waiting():  # two session threads wait; one stops
            pass
        assert _nice_of_each_thread(pid) == {0}
    assert _nice_of_each_thread(pid) == {priority.NICE}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/task")
def test_a_training_that_starts_while_the_session_waits_starts_at_full_priority(
        threaded_child):
    with priority.waiting():
        priority.started(threaded_child.pid)
        assert _nice_of_each_thread(threaded_child.pid) == {0}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/task")
def test_without_the_privilege_to_lower_it_again_a_training_is_never_niced(threaded_child,
                                                                          monkeypatch):
    monkeypatch.setattr(priority, "can_lower", lambda: False)
    priority.started(threaded_child.pid)
    assert _nice_of_each_thread(threaded_child.pid) == {0}
