"""Scale-out: pytest-xdist workers give the serial run's verdicts in one run directory, each
cache entry is built once across processes (and a killed builder blocks nobody), shards are
disjoint and cover the run, and their merged report is the single run's."""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from faulty_cache import run_suite

from convcheck import frameworks
from convcheck.pipeline import cache
from convcheck.plugin import state
from convcheck.plugin.workers import shard_of
from convcheck.report.merge import MergeError, merge
from convcheck.report.records import read_records

# One worker runs them all: their serial run (a module fixture) is then made once.
pytestmark = pytest.mark.xdist_group("convcheck-test-workers")

MODEL = "lenet5"
SELECTION = (f"--convcheck-models={MODEL}", "--convcheck-targets=onnx", "--benchmark-disable")
TIMED = re.compile(r"test_speed_ratio|test_load_|test_inference_(batch|testset)_")


def _outcomes(run_dir: Path) -> dict[str, str]:
    return {r["test"]: r["outcome"] for r in read_records(run_dir) if r["check"] == "outcome"}


def _run_dir(reports: Path) -> Path:
    runs = sorted((reports / "runs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def _suite(bench, tmp: Path, name: str, *args: str) -> tuple[int, str, Path]:
    reports = tmp / name
    rc, out = run_suite(bench, "tests_conformance", *SELECTION,
                        f"--convcheck-cache-dir={bench.cache_dir}",
                        f"--convcheck-reports-dir={reports}", *args)
    return rc, out, _run_dir(reports)


@pytest.fixture(scope="module")
def serial(pytestconfig, tmp_path_factory):
    """The selection run serially (its builds cached by the session: a warm run)."""
    bench = state.bench(pytestconfig)
    if "onnx" not in bench.targets:
        pytest.skip("target onnx not selected (--convcheck-targets)")
    for fw in ("pytorch", "keras"):  # warm: the session's cache holds what the runs need
        bench.converted(MODEL, fw, "onnx", bench.profile.seeds[0])
    tmp = tmp_path_factory.mktemp("serial")
    rc, out, run = _suite(bench, tmp, "reports")
    assert rc == 0, out
    return bench, run


def test_two_workers_give_the_serial_verdicts_in_one_run_directory(serial, tmp_path):
    bench, serial_run = serial
    rc, out, run = _suite(bench, tmp_path, "reports", "-n", "2", "-v")
    assert rc == 0, out
    assert "2 workers [" in out, out  # xdist ran it
    # one run directory, its workers' records joined into records.jsonl, one summary
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("records")) == [
        "records.jsonl"]
    assert (run / "summary.md").is_file() and (run / "report.html").is_file()
    got, want = _outcomes(run), _outcomes(serial_run)
    assert got == want
    assert Counter(r["check"] for r in read_records(run)) == Counter(
        r["check"] for r in read_records(serial_run))
    # the timed tests (the speed gate, Table III's timings) ran last, after every other test
    # of both workers had finished: 2 gates, 3 timings of each of 2 originals and 2 conversions
    ran = [line for line in out.splitlines() if line.startswith("[gw")]
    timed = [i for i, line in enumerate(ran) if TIMED.search(line)]
    assert len(timed) == 14 and timed == list(range(len(ran) - 14, len(ran))), ran[-16:]


def test_a_workers_progress_lines_reach_the_terminal_naming_it(capfd):
    """A worker's terminal output goes nowhere (execnet sends its stdout to /dev/null); its
    standard error is the controller's, so progress on long work is written there."""
    import contextlib
    from types import SimpleNamespace

    from convcheck.plugin.session import _progress_writer

    capman = SimpleNamespace(global_and_fixture_disabled=contextlib.nullcontext)
    config = SimpleNamespace(
        workerinput={"workerid": "gw1"},
        pluginmanager=SimpleNamespace(getplugin=lambda name: capman
                                      if name == "capturemanager" else None))
    _progress_writer(config)("training lenet5-keras-s0 (smoke: 4000 samples)")
    out, err = capfd.readouterr()
    assert err == "[convcheck gw1] training lenet5-keras-s0 (smoke: 4000 samples)\n" and not out


def test_table_iii_is_timed_under_workers_last_and_alone(serial, tmp_path):
    """pytest-benchmark times nothing under xdist on its own; under loadgroup convcheck runs
    the timings last, alone, and lets it time them: Table III is filled as by a serial run."""
    bench, _ = serial
    reports = tmp_path / "reports"
    rc, out = run_suite(bench, "tests_conformance", *SELECTION[:2], "-n", "2",
                        "-k", "test_inference_batch", "--benchmark-min-rounds=2",
                        f"--convcheck-cache-dir={bench.cache_dir}",
                        f"--convcheck-reports-dir={reports}")
    assert rc == 0, out
    assert "automatically disabled because xdist" not in out, out
    times = [r for r in read_records(_run_dir(reports)) if r["check"] == "time_inference_batch"]
    assert len(times) == 4, times  # 2 originals, 2 conversions
    assert all(r["measured"]["rounds"] >= 2 and r["measured"]["median_s"] > 0 for r in times), times


def test_under_another_distribution_the_speed_gate_skips_saying_why(serial, tmp_path):
    bench, _ = serial
    rc, out, run = _suite(bench, tmp_path, "reports", "-n", "2", "--dist", "load", "-k",
                          "test_speed_ratio or test_size")
    assert rc == 0, out
    outcomes = _outcomes(run)
    assert {o for t, o in outcomes.items() if "test_speed_ratio" in t} == {"skipped"}, outcomes
    assert {o for t, o in outcomes.items() if "test_size" in t} == {"passed"}, outcomes
    assert "timed only without other workers: 2 pytest-xdist workers" in out, out


def _build_once(entry: str, log: str, hold: float) -> None:
    def build(tmp: Path) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(hold)
        (tmp / "model.bin").write_bytes(b"weights")
    cache.cached(Path(entry), {"k": 1}, build, log=lambda line: None)


def test_an_entry_is_built_once_by_concurrent_processes(tmp_path):
    entry, log = tmp_path / "models" / "m-s0", tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_build_once, args=(str(entry), str(log), 1.0)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(log.read_text().split()) == 1, log.read_text()  # one build, two waits
    assert cache.check_entry(entry, cache.key_of({"k": 1})) is None


def test_a_killed_builder_does_not_block_the_next(tmp_path):
    entry, log = tmp_path / "models" / "m-s0", tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    stuck = ctx.Process(target=_build_once, args=(str(entry), str(log), 600.0))
    stuck.start()
    deadline = time.time() + 60
    while not log.exists() and time.time() < deadline:  # it holds the lock, building
        time.sleep(0.1)
    os.kill(stuck.pid, signal.SIGKILL)
    stuck.join(10)
    lines = []
    t0 = time.time()
    cache.cached(entry, {"k": 1}, lambda tmp: (tmp / "model.bin").write_bytes(b"w"),
                 log=lines.append)
    assert time.time() - t0 < 30
    assert cache.check_entry(entry, cache.key_of({"k": 1})) is None
    assert any("removed 1 left by a killed build" in line for line in lines), lines


def test_a_worker_computes_with_the_serial_runs_threads(monkeypatch):
    """Workers do not share the cores out: the thread count changes a trained model's weights
    (and so every figure after it), and a worker must build what a serial run builds."""
    monkeypatch.delenv(frameworks.THREADS_ENV, raising=False)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")  # what xdist sets in a worker
    monkeypatch.setattr(frameworks, "_threads", None)
    assert frameworks.threads() == (os.cpu_count() or 1)
    monkeypatch.setattr(frameworks, "_threads", None)


def test_shards_are_disjoint_cover_the_run_and_merge_into_its_report(serial, tmp_path):
    bench, serial_run = serial
    parts = []
    for i in (1, 2):
        rc, out, run = _suite(bench, tmp_path, f"shard{i}", f"--convcheck-shard={i}/2")
        assert rc in (0, 5), out  # 5: a part that drew no test
        assert f"convcheck: shard {i}/2" in out, out
        parts.append(run)
    got = [_outcomes(p) for p in parts]
    assert got[0] and got[1], "a model per shard expected: lenet5-pytorch and lenet5-keras"
    assert not set(got[0]) & set(got[1])
    assert {**got[0], **got[1]} == _outcomes(serial_run)
    # each original model's tests in one part
    for outcomes in got:
        frameworks_seen = {re.search(r"lenet5-(pytorch|keras)", t)[1] for t in outcomes
                           if re.search(r"lenet5-(pytorch|keras)", t)}
        assert len(frameworks_seen) <= 1, frameworks_seen
    merged = tmp_path / "merged"
    summary = merge(parts, merged).read_text()
    single = (serial_run / "summary.md").read_text()
    assert _report(summary) == _report(single)
    info = json.loads((merged / "run.json").read_text())
    assert info["collected"] == sum(json.loads((p / "run.json").read_text())["collected"]
                                    for p in parts)
    assert Counter(r["check"] for r in read_records(merged)) == Counter(
        r["check"] for r in read_records(serial_run))


def _report(summary: str) -> list[str]:
    """A summary but its first line (the run's name), what the run built, and the speed gate's
    timed ratios (two runs never time alike): what two runs of the same cases share."""
    lines = [re.sub(r"\d+\.\d+ \[\d+\.\d+, \d+\.\d+\]", "<ratio>", line)
             for line in summary.splitlines()[1:]]
    if "### Built this run (seconds)" in lines:  # the table runs to the next blank line
        i = lines.index("### Built this run (seconds)")
        j = lines.index("", i + 2)
        lines = lines[:i] + lines[j + 1:]
    return lines


def test_merge_refuses_parts_that_do_not_compare(tmp_path):
    for name, profile in (("a", "smoke"), ("b", "standard")):
        d = tmp_path / name
        d.mkdir()
        (d / "records.jsonl").write_text('{"check": "outcome"}\n')
        (d / "run.json").write_text(json.dumps({"profile": profile, "seeds": [0]}))
    with pytest.raises(MergeError, match=r"b: profile differs from .*a's \('standard' vs "
                                         r"'smoke'\)"):
        merge([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MergeError, match="empty: no records"):
        merge([tmp_path / "empty"], tmp_path / "m")


@pytest.mark.parametrize("value", ["3/2", "0/2", "1-2", "a/b"])
def test_a_malformed_shard_is_refused_naming_the_option(pytestconfig, tmp_path, value):
    bench = state.bench(pytestconfig)
    rc, out = run_suite(bench, "tests_conformance", *SELECTION, f"--convcheck-shard={value}",
                        f"--convcheck-reports-dir={tmp_path}", "--collect-only")
    assert rc == 4, out
    assert f"--convcheck-shard: {value!r}: write I/N" in out, out


def test_shard_of_is_stable():
    assert shard_of("lenet5-pytorch-s0", 2) == shard_of("lenet5-pytorch-s0", 2)
    assert {shard_of(f"m{i}", 3) for i in range(30)} == {1, 2, 3}
