"""Scale-out wiring: pytest-xdist workers on one machine and shards across machines.

Options and hooks only, as pytest-xdist's own plugin.py: the work lives elsewhere. Each cache
entry is built once across processes under its lock (convcheck.pipeline.cache); each worker
records into its own file of the one run directory the controller made
(convcheck.report.records), which the controller joins and summarises; runtimes share the cores
out among the workers (convcheck.frameworks.threads); the speed gate skips beside other workers
(convcheck.suite.performance). Here: the run directory handed to each worker, what a worker
built and would have printed handed back, each original model's tests kept together (one
xdist_group per original, for --dist loadgroup, the default under -n), and --convcheck-shard.
"""
from __future__ import annotations

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
)
from convcheck.plugin.state import bench as bench_of

OUTPUT_KEY = "convcheck"  # workeroutput: {"built": ..., "lines": [...]}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Under -n, --dist loadgroup unless the command line chose a distribution: an original
    model's training, conversions and attacks then stay in one worker, and the workers build in
    parallel instead of waiting on each other's locks."""
    option = config.option
    chose = any(a == "--dist" or a.startswith("--dist=") or a == "-d"
                for a in config.invocation_params.args)
    if getattr(option, "numprocesses", None) and getattr(option, "dist", "no") == "load" \
            and not chose:
        option.dist = "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Controller, per worker: the run directory (made now, once) every worker records into."""
    node.workerinput[RUN_DIR_KEY] = str(records.shared_recorder(node.config).run_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """Controller: what the worker built and the summary lines it could not print."""
    out = (getattr(node, "workeroutput", None) or {}).get(OUTPUT_KEY)
    if out:
        node.config.stash.setdefault(FROM_WORKERS, []).append(out)


def pytest_sessionfinish(session):
    config = session.config
    if is_worker(config):
        config.workeroutput[OUTPUT_KEY] = {
            "built": bench_of(config).progress.spent,
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


def _original(item) -> str | None:
    """The original model (model-framework-seed) whose case the item checks, or None."""
    callspec = getattr(item, "callspec", None)
    for p in (callspec.params.values() if callspec else ()):
        case = getattr(p, "case", p)
        if isinstance(case, Case):
            seed = "" if case.seed is None else f"-s{case.seed}"
            return f"{case.model}-{case.framework}{seed}"
    return None


def shard_of(key: str, n: int) -> int:
    """The part (1..n) a test goes to: by a stable hash of its original model (or its node id),
    the same on every machine and Python (crc32, not hash(), which is salted per process)."""
    return zlib.crc32(key.encode()) % n + 1


def pytest_collection_modifyitems(config, items):
    shard = run(config).shard
    keep, dropped = [], []
    for item in items:
        original = _original(item)
        if original is not None:
            item.add_marker(pytest.mark.xdist_group(original))
        if shard is not None and shard_of(original or item.nodeid, shard[1]) != shard[0]:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config):
    shard = run(config).shard
    if shard is not None:
        return [f"convcheck: shard {shard[0]}/{shard[1]} (--convcheck-shard): each original "
                f"model's tests in one part"]
    return []
