"""Scale-out wiring: pytest-xdist workers on one machine and shards across machines.

Options and hooks only, as pytest-xdist's own plugin.py: the work lives elsewhere. Each cache
entry is built once across processes under its lock (convcheck.pipeline.cache); each worker
records into its own file of the one run directory the controller made
(convcheck.report.records), which the controller joins and summarises; a worker computes with
the serial run's threads (convcheck.frameworks.threads says why). Here: the run directory
handed to each worker, what a worker built and would have printed handed back (its lines are
printed by the controller, its record errors among them), each original model's tests kept
together (one xdist_group per original, for --dist loadgroup, the default under -n), the timed
tests run last and alone (TimedLast, a loadgroup scheduler), and --convcheck-shard.
"""
from __future__ import annotations

import contextlib
import json
import os
import zlib

import pytest

from convcheck.pipeline.cases import Case
from convcheck.plugin import expected, records
from convcheck.plugin.state import (
    FROM_WORKERS,
    RUN_DIR_KEY,
    from_workers,
    is_controller,
    is_worker,
    run,
    shared_run_dir,
    worker_id,
)
from convcheck.plugin.state import bench as bench_of

OUTPUT_KEY = "convcheck"  # workeroutput: {"built": ..., "lines": [...]}
DIST_KEY = "convcheck_dist"  # workerinput: the controller's --dist (convcheck may have set it)
# The xdist group of the tests that time something (the speed gate, tests marked `timing`): run
# after every other test, on one worker, the others shut down: no other worker's load is in
# their figures.
TIMED = "convcheck-timed-alone"
TIMED_TESTS = ("test_speed_ratio",)
# pytest-benchmark's options whose output only a process without workers produces
PYTEST_BENCHMARK_OWN = ("--benchmark-compare", "--benchmark-compare-fail", "--benchmark-save",
                        "--benchmark-autosave", "--benchmark-json", "--benchmark-histogram")


def timed_alone(config) -> bool:
    """Whether this process's timed tests run with no other worker beside them: outside xdist,
    or under convcheck's loadgroup scheduling (TimedLast)."""
    return not is_worker(config) or bool(config.getoption("loadgroup", False))


@pytest.fixture
def alone(request):
    """For a test that judges a timing (the speed gate): skipped where the timed tests are not
    scheduled last (a --dist other than loadgroup: they would wait on, and hold up, the others
    all run long). Where they are, it runs holding the run's timing lock exclusively
    (_beside_timing)."""
    if is_worker(request.config) and not timed_alone(request.config):
        n = request.config.workerinput.get("workercount")
        pytest.skip(f"timed only without other workers: {n} pytest-xdist workers share this "
                    f"machine under a --dist other than loadgroup, and their load would be in "
                    "the figures (use --dist loadgroup, convcheck's default under -n, which "
                    "times these tests last and alone; or run without -n)")
    yield


@pytest.fixture(autouse=True)
def _beside_timing(request):
    """Under xdist, every test holds the run's timing lock: a timed test exclusively where the
    timed tests run last and alone (loadgroup), so that no other worker's test runs beside it;
    any other test shared. (A timed test under another --dist takes none: the speed gate skips
    there, and pytest-benchmark times nothing under xdist but under loadgroup.)"""
    config = request.config
    timed = is_timed(request.node)
    if not is_worker(config) or (timed and not timed_alone(config)):
        yield
        return
    with _timing_lock(config, exclusive=timed):
        yield


def is_timed(item) -> bool:
    return (getattr(item, "originalname", None) in TIMED_TESTS
            or item.get_closest_marker("timing") is not None)


@contextlib.contextmanager
def _timing_lock(config, exclusive: bool):
    """flock on <run dir>/.timing.lock (the OS frees it with a dead worker). No fcntl (Windows):
    no lock, and the scheduling alone keeps the timed tests last."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = shared_run_dir(config)
    if path is None:
        yield
        return
    with open(path / ".timing.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadgroup: xdist's group scheduling, with the timed tests held back until every
    other test is done, then run on one worker while the others shut down."""
    if config.getoption("dist") != "loadgroup":
        return None
    from convcheck.plugin.timed_last import TimedLast

    run_dir = records.shared_recorder(config).run_dir
    return TimedLast(config, log, TIMED, lambda: read_groups(run_dir))


# Each worker writes the groups of the tests it collected, {node id: group}, for the
# controller's scheduler. xdist 3.8 hands a test's xdist_group to its controller by rewriting
# item._nodeid, which pytest 9 no longer reads (an item's id is its _id): the controller would
# see no group at all.
GROUPS = ".groups-{worker}.json"


def write_groups(config, items) -> None:
    run_dir = shared_run_dir(config)
    if run_dir is None:
        return
    groups = {}
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names:
            groups[item.nodeid] = "_".join(names)
    path = run_dir / GROUPS.format(worker=worker_id(config))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    os.replace(tmp, path)  # whole, before the worker reports its collection


def read_groups(run_dir) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(run_dir.glob(GROUPS.format(worker="*"))):
        out.update(json.loads(path.read_text()))
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Under -n, --dist loadgroup unless the command line chose a distribution: an original
    model's training, conversions and attacks then stay in one worker, and the workers build in
    parallel instead of waiting on each other's locks."""
    option = config.option
    if is_worker(config):
        # A worker parses the command line again (xdist's remote.setup_config): the
        # controller's choice comes with its workerinput.
        if config.workerinput.get(DIST_KEY) == "loadgroup":
            option.loadgroup = True
        return
    chose = any(a == "--dist" or a.startswith("--dist=") or a == "-d"
                for a in config.invocation_params.args)
    if getattr(option, "numprocesses", None) and getattr(option, "dist", "no") == "load" \
            and not chose:
        option.dist = "loadgroup"
    if getattr(option, "numprocesses", None):
        for name in PYTEST_BENCHMARK_OWN:
            if getattr(option, name.lstrip("-").replace("-", "_"), None):
                raise pytest.UsageError(
                    f"convcheck: {name} needs a run without pytest-xdist workers: "
                    f"pytest-benchmark's table, comparisons and saved runs are made in one "
                    f"process (a worker's never reach you). Run without -n (or -n 0); under "
                    f"workers Table III is still timed and recorded in the run's report")


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's pytest_configure made its session
def pytest_sessionstart(session):
    """Table III under loadgroup: pytest-benchmark turns itself off under xdist, since workers
    beside each other disturb each other's timings; here every test that times runs last, alone
    (TimedLast and the exclusive timing lock), so a worker times as a serial run does. What the
    user turned off (--benchmark-disable, --benchmark-skip) stays off."""
    config = session.config
    bs = getattr(config, "_benchmarksession", None)
    loadgroup = (config.getoption("loadgroup", False) if is_worker(config)
                 else config.getoption("dist", "no") == "loadgroup")
    if bs is None or not bs.xdist_warning or not loadgroup:
        return
    bs.xdist_warning = False  # its "automatically disabled" warning would no longer be true
    if is_worker(config):
        bs.disabled = False


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Controller, per worker: the run directory (made now, once) every worker records into."""
    node.workerinput[RUN_DIR_KEY] = str(records.shared_recorder(node.config).run_dir)
    node.workerinput[DIST_KEY] = node.config.getoption("dist")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """Controller: what the worker built and the summary lines it could not print."""
    out = (getattr(node, "workeroutput", None) or {}).get(OUTPUT_KEY)
    if out:
        node.config.stash.setdefault(FROM_WORKERS, []).append(out)


def pytest_sessionfinish(session):
    config = session.config
    if is_controller(config):  # the workers' hand-offs, no longer needed
        rec = records.recorder(config)
        for path in rec.run_dir.glob(".groups-*.json") if rec else ():
            path.unlink(missing_ok=True)
        if rec:
            (rec.run_dir / ".timing.lock").unlink(missing_ok=True)
    if is_worker(config):
        config.workeroutput[OUTPUT_KEY] = {
            "built": bench_of(config).progress.spent,
            "spans": bench_of(config).progress.spans,
            "lines": [line for line, _ in expected.summary_lines(config)]
            + records.error_lines(config)}


def pytest_terminal_summary(terminalreporter, config):
    if not is_controller(config):
        return
    seen = set()
    for out in from_workers(config):
        for line in out.get("lines", []):
            if line not in seen:  # every worker checks the expected failures alike
                seen.add(line)
                terminalreporter.write_line(line, yellow=True)


def original_of(item) -> str | None:
    """The id of the original model (its case: model-framework-seed) whose case the item
    checks, or None."""
    callspec = getattr(item, "callspec", None)
    for p in (callspec.params.values() if callspec else ()):
        case = getattr(p, "case", p)
        if isinstance(case, Case):
            return Case(case.model, case.framework, case.seed).id
    return None


def shard_of(key: str, n: int) -> int:
    """The part (1..n) a test goes to: by a stable hash of its original model (or its node id),
    the same on every machine and Python (crc32, not hash(), which is salted per process)."""
    return zlib.crc32(key.encode()) % n + 1


def pytest_collection_modifyitems(config, items):
    shard = run(config).shard
    keep, dropped = [], []
    for item in items:
        original = original_of(item)
        if is_timed(item):
            item.add_marker(pytest.mark.xdist_group(TIMED))
        elif original is not None:
            item.add_marker(pytest.mark.xdist_group(original))
        if shard is not None and shard_of(original or item.nodeid, shard[1]) != shard[0]:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    if is_worker(config) and config.getoption("loadgroup", False):
        write_groups(config, items)


def pytest_report_header(config):
    shard = run(config).shard
    if shard is not None:
        return [f"convcheck: shard {shard[0]}/{shard[1]} (--convcheck-shard): each original "
                f"model's tests in one part"]
    return []
