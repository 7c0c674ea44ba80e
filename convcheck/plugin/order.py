"""The order a process runs its tests in, and what it lets go of after: each original model's
tests together (its own checks and its conversions'), the timed tests last; and once a process
has run an original's last test (of the untimed ones, then of the timed ones, Table III's among
them), the runtimes its conversions loaded are released.

Why: pytest runs a parametrized suite function by function, so the first suite function that
runs a conversion loads its runtime and every later one keeps it. Over the whole smoke zoo (105
conversions; an onnxruntime session keeps its arena, about 0.25 GB for a ResNet-18 after a pass
over the test set) the test process grew to 16.5 GB and the run was killed for memory. Under
pytest-xdist's loadgroup each original's tests already run together on one worker
(plugin.workers); a process of its own now runs them the same way, and holds the runtimes of
one original's conversions at a time.
"""
from __future__ import annotations

import pytest

from convcheck.plugin.speed_gates import is_gate
from convcheck.plugin.state import bench
from convcheck.plugin.workers import is_timed, original_of


@pytest.hookimpl(trylast=True)  # after the selection (-k, -m, shards): it orders what is left
def pytest_collection_modifyitems(config, items):
    """Stable: each original's tests move up to where its first one was, in their own order;
    a test of no original keeps its place; the timed tests go last, in their order, the speed
    gates first among them (their timings run two at a time, started ahead:
    convcheck.plugin.speed_gates; Table III's after them, with nothing beside)."""
    first: dict[str, int] = {}
    rank = []
    for i, item in enumerate(items):
        original = original_of(item)
        if original is not None:
            first.setdefault(original, i)
        timed = is_timed(item)
        rank.append((timed, timed and not is_gate(item),
                     first[original] if original is not None else i))
    order = sorted(range(len(items)), key=lambda i: rank[i])
    items[:] = [items[i] for i in order]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    here = original_of(item)
    if here is not None and (nextitem is None or original_of(nextitem) != here):
        bench(item.config).release(here)
