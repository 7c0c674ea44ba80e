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


RUN = pytest.StashKey[Run]()
BENCH = pytest.StashKey[object]()  # the session's convcheck.pipeline.workbench.Workbench


def run(config) -> Run:
    """The run's validated settings (set at pytest_configure)."""
    return config.stash[RUN]


def bench(config):
    """The session's Workbench (made once the settings are validated)."""
    return config.stash[BENCH]
