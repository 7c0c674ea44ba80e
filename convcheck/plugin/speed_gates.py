"""The speed gates' timings, started ahead: at the session's first speed gate, every later one
the process will run is handed to the timing processes, which time timer.workers of them at once
(convcheck.runtimes.timer says why); each gate then takes its own result. The gates run after
every other test and before Table III's timings (convcheck.plugin.order), so nothing else runs
beside them."""
from __future__ import annotations

import pytest

from convcheck.pipeline.cases import Case
from convcheck.plugin.state import bench as bench_of

GATE = "test_speed_ratio"
STARTED = pytest.StashKey[bool]()


def is_gate(item) -> bool:
    return getattr(item, "originalname", None) == GATE


@pytest.fixture
def gates_ahead(request):
    """Before this process's first speed gate: every gate after it started in the background.
    A gate whose conversion cannot be built, or that runs on a stand-in, is left to its test
    (which reports why)."""
    config = request.config
    if config.stash.get(STARTED, False):
        return
    config.stash[STARTED] = True
    bench = bench_of(config)
    if bench.timer.workers < 2:
        return
    # here, not with the plugin: the suite's modules import Hypothesis (0.6 s of every start)
    from convcheck.suite.performance import gate_pair

    items = request.session.items
    start = items.index(request.node) if request.node in items else 0
    for item in items[start:]:
        if not is_gate(item) or item.get_closest_marker("skip"):
            continue
        case = next((p for p in item.callspec.params.values() if isinstance(p, Case)), None)
        if case is None or case.target is None:
            continue
        try:
            pair = gate_pair(bench, bench.converted(case.model, case.framework, case.target,
                                                    case.seed))
        except Exception:  # noqa: BLE001  (its own test reports it, with its message)
            continue
        if pair is not None:
            bench.timer.ahead(*pair[0])
