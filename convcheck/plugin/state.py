"""The run's settings and its workbench, one object each per pytest session, kept in
config.stash (not as attributes set on pytest's Config): what the options and the project's
files configured, validated (convcheck.plugin.options), then frozen.

Project code reads them through these functions (``run(pytestconfig).reports_dir``), or takes
the plugin's fixtures (``bench``, ``tol``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Run:
    project: object  # convcheck.settings.project.Project
    profile: object  # convcheck.settings.Profile
    models: tuple[str, ...]  # the selected models
    targets: dict  # the selected targets: name -> convcheck.settings.Target
    all_targets: dict  # every configured and shipped target (expected failures are checked on all)
    tolerances: object  # convcheck.settings.Tolerances
    expected_failures: tuple  # convcheck.settings.ExpectedFailure entries
    data_dir: Path | None
    cache_dir: Path
    reports_dir: Path
    baseline: Path | None = None  # the run this one is gated against (--convcheck-baseline)
    save_golden: Path | None = None  # --convcheck-save-golden: where golden data goes
    golden: Path | None = None  # --convcheck-golden: golden data to replay
    locate_always: bool = False  # --convcheck-locate always: localise passing conversions too
    shard: tuple[int, int] | None = None  # --convcheck-shard I/N: run part I of N


RUN = pytest.StashKey[Run]()
BENCH = pytest.StashKey[object]()  # the session's convcheck.pipeline.workbench.Workbench


def run(config) -> Run:
    """The run's validated settings (set at pytest_configure)."""
    return config.stash[RUN]


def bench(config):
    """The session's Workbench (made once the settings are validated)."""
    return config.stash[BENCH]


# pytest-xdist (convcheck.plugin.workers): what the controller and its workers hand each other.
RUN_DIR_KEY = "convcheck_run_dir"  # workerinput: the run directory the controller made
FROM_WORKERS = pytest.StashKey()  # controller config -> [what each worker handed back]


def is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config) -> bool:
    """The process that hands tests to xdist workers and runs none itself."""
    return not is_worker(config) and config.pluginmanager.has_plugin("dsession")


def worker_id(config) -> str | None:
    return config.workerinput.get("workerid") if is_worker(config) else None


def shared_run_dir(config) -> Path | None:
    """The run directory an xdist worker records into (made by the controller), or None."""
    value = config.workerinput.get(RUN_DIR_KEY) if is_worker(config) else None
    return Path(value) if value else None


def from_workers(config) -> list[dict]:
    """Controller: what each finished worker handed back (what it built, its summary lines)."""
    return config.stash.get(FROM_WORKERS, [])
