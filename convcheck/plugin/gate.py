"""The upgrade gate inside pytest (--convcheck-baseline RUN): at the end of the session this run's
records are compared with the baseline run's (convcheck.report.compare), the comparison is
written beside the run's records (compare.md, compare.html), and a regression fails the session
the ordinary way (exit status 1), so CI needs nothing but pytest. Only the cases this run
collected are compared: a narrowed run (-k, --convcheck-models) is not missing the rest."""
from __future__ import annotations

import pytest

from convcheck.plugin.parametrize import case_ids
from convcheck.plugin.records import recorder
from convcheck.plugin.state import run

RESULT = pytest.StashKey[object]()  # (Comparison, written paths) or the error text
CASES = pytest.StashKey[set]()  # the case ids this run collected


def pytest_collection_finish(session):
    session.config.stash[CASES] = {cid for item in session.items for cid in case_ids(item)}


@pytest.hookimpl(trylast=True)  # after records.py has written the summary
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    baseline = run(config).baseline
    rec = recorder(config)
    if baseline is None or rec is None:
        return
    from convcheck.report import compare, pages

    try:
        comparison = compare.compare_runs(
            baseline, rec.run_dir, compare.rules_from(run(config).tolerances),
            cases=config.stash.get(CASES, None))
        written = pages.write_comparison(comparison, rec.run_dir)
    except (compare.CompareError, OSError) as e:
        config.stash[RESULT] = f"the comparison with {baseline} failed: {e}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    config.stash[RESULT] = (comparison, written)
    if not comparison.passed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    result = config.stash.get(RESULT, None)
    if result is None:
        return
    write = terminalreporter.write_line
    if isinstance(result, str):
        write(f"convcheck gate: {result}", red=True)
        return
    comparison, written = result
    counts = ", ".join(f"{n} {v}" for v, n in comparison.counts().items() if n)
    if comparison.passed:
        write(f"convcheck gate: PASS against {comparison.baseline.path} ({counts}); "
              f"{written[-1]}", green=True)
        return
    write(f"convcheck gate: FAIL against {comparison.baseline.path}: "
          f"{len(comparison.regressions)} regression(s) ({counts}); {written[-1]}", red=True)
    # One line per case (its first regression; a broken conversion moves every figure of it).
    by_case: dict[str, list] = {}
    for ch in comparison.regressions:
        by_case.setdefault(ch.case, []).append(ch)
    for case, changes in by_case.items():
        ch = min(changes, key=lambda c: c.metric not in ("passed", "outcome"))  # a failure first
        more = f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""
        write(f"  {ch.verdict}: {case} {ch.check} {ch.metric}: {ch.why}{more}", red=True)
