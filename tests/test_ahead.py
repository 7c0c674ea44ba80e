"""Conversions run ahead of the tests that need them, several at a time, in the background
(convcheck.pipeline.ahead): what they log waits for the session's thread, an error reaches the
test that asks for the conversion, and a session that ends stops them."""
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from convcheck.conversion import runner
from convcheck.pipeline.ahead import Ahead
from convcheck.pipeline.cases import Case
from convcheck.pipeline.workbench import Workbench
from convcheck.settings import Target


def _finished(ahead, key):
    while not ahead._jobs[key].done():
        time.sleep(0.01)


def test_a_background_jobs_lines_wait_for_the_owners_thread():
    written = []
    ahead = Ahead(2, written.append)

    def job():
        ahead.log("converted x")
        return 42

    ahead.submit("x", job)
    _finished(ahead, "x")
    assert written == []  # pytest's terminal is not thread-safe: never written from the job
    ahead.log("from the session")  # the owner's own line comes after what was queued
    assert written == ["converted x", "from the session"]
    assert ahead.take("x") == 42 and "x" not in ahead


def test_a_background_jobs_error_is_raised_to_whoever_takes_it():
    ahead = Ahead(1, print)

    def job():
        raise runner.ConversionError("converter exploded")

    ahead.submit("x", job)
    with pytest.raises(runner.ConversionError, match="converter exploded"):
        ahead.take("x")
    ahead.close()


def test_closing_stops_a_job_that_starts_its_child_just_after_a_stop():
    # The race CI met: a job waiting to fork its child while close() kills the live ones
    ended, stops, live = [], [], set()
    started, first_stop = threading.Event(), threading.Event()

    def job():
        started.set()
        first_stop.wait()  # it forks only once the first stop has run
        child = threading.Event()
        live.add(child)
        ended.append("killed" if child.wait(30) else "ran to its end")

    def stop():
        for child in list(live):
            child.set()
        stops.append(len(live))
        first_stop.set()

    ahead = Ahead(1, print)
    ahead.submit("x", job)
    started.wait()
    ahead.close(stop=stop)
    assert ended == ["killed"] and len(stops) >= 2, (ended, stops)


def test_stopping_one_owners_children_leaves_anothers_running():
    # a test's own workbench, closed, must not kill the session's background conversions
    mine, theirs, started = object(), object(), []
    for who in (mine, theirs):
        token = runner.owner.set(who)
        try:
            started.append(runner.start_child(time.sleep, (60,), "sleeper"))
        finally:
            runner.owner.reset(token)
    try:
        assert runner.live(mine) == started[:1] and runner.live(theirs) == started[1:]
        assert runner.stop_all(of=mine) == 1
        started[0].join(10)
        assert not started[0].is_alive() and started[1].is_alive()
    finally:
        for child in started:
            child.kill()
            child.join()
            runner.forget(child)


def sleepy_converter(original, destination, options):
    """A team's converter that takes a while and notes when it ran: it ships a copy of a real
    ONNX conversion (the runner then checks it as it checks any)."""
    start = time.time()
    time.sleep(options["seconds"])
    shutil.copy(options["copy"], destination)
    Path(options["notes"], options["name"] + ".json").write_text(json.dumps([start, time.time()]))


def _sleepy_bench(bench, tmp_path, seconds, lines):
    onnx = bench.converted("lenet5", "pytorch", "onnx", bench.profile.seeds[0])
    targets = {n: Target(n, "onnx", 120, {"pytorch": {
        "converter": f"{__name__}:sleepy_converter", "copy": str(onnx.path), "name": n,
        # in the key: each run of this test converts anew
        "seconds": seconds, "notes": str(tmp_path)}}) for n in ("sleepy-a", "sleepy-b")}
    return Workbench(profile=bench.profile, data_dir=bench.data_dir, cache_dir=bench.cache_dir,
                     targets=targets, log=lines.append, converters=2)


def test_conversions_run_ahead_two_at_a_time_once_their_original_is_made(bench, tmp_path):
    seed, writers = bench.profile.seeds[0], set()

    class Lines(list):  # who writes each line: pytest's terminal is the session thread's
        def append(self, line):
            writers.add(threading.get_ident())
            super().append(line)

    lines = Lines()
    wb = _sleepy_bench(bench, tmp_path, 2, lines)
    try:
        assert wb.plan([Case("lenet5", "pytorch", seed, t) for t in wb.targets]) == {
            "conversions": 2}
        wb.original("lenet5", "pytorch", seed)  # starts both
        done = [wb.converted("lenet5", "pytorch", t, seed) for t in wb.targets]
    finally:
        wb.close()
    assert all(c.path.exists() for c in done)
    (a0, a1), (b0, b1) = (json.loads((tmp_path / f"{t}.json").read_text()) for t in wb.targets)
    assert max(a0, b0) < min(a1, b1), "the two conversions did not run at the same time"
    built = [line for line in lines if "conversions built" in line]
    assert len(built) == 2 and "2 of 2 conversions built" in built[-1], lines
    assert "2 at a time" in built[0], built  # the estimate knows two run at once
    assert writers == {threading.get_ident()}, "a background thread wrote a line itself"


def test_a_session_that_ends_stops_its_background_conversions(bench, tmp_path):
    lines, seed = [], bench.profile.seeds[0]
    wb = _sleepy_bench(bench, tmp_path, 60, lines)
    stem = bench.original("lenet5", "pytorch", seed).stem
    entries = [bench.cache_dir / "models" / f"{stem}.{t}" for t in wb.targets]
    for entry in entries:  # this module's scratch entries, left by the test above
        shutil.rmtree(entry, ignore_errors=True)
    wb.plan([Case("lenet5", "pytorch", seed, t) for t in wb.targets])
    wb.original("lenet5", "pytorch", seed)
    while not runner.live(wb._children):  # a converter's child has started
        time.sleep(0.05)
    wb.close()
    assert not runner.live(wb._children)
    assert not list(tmp_path.glob("*.json")), "a converter ran to its end"
    assert not any(e.exists() for e in entries), "half-built conversions reached the cache"
