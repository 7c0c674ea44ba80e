"""The run's records: one JSON record per case and check (what it measured, its verdict), every
test's outcome, and the summary written at the end (convcheck.report)."""
from __future__ import annotations

import time

import pytest

from convcheck import frameworks
from convcheck.pipeline.cases import Case
from convcheck.plugin import state
from convcheck.plugin.state import bench as bench_of
from convcheck.plugin.state import run
from convcheck.progress import wall_by_kind
from convcheck.report import Recorder, write_summary
from convcheck.report.records import join_records

RECORDER = pytest.StashKey()  # config -> the run's Recorder (None until the first record)
RECORD_ERRORS = pytest.StashKey()  # config -> records that could not be written
SUMMARY = pytest.StashKey()  # config -> the summary written at the end
DATA_LINES = pytest.StashKey()  # config -> the data's provenance lines (session start)


def data_lines(config) -> list[str]:
    return config.stash.get(DATA_LINES, [])


def recorder(config):
    """The run's Recorder (its run_dir), or None when nothing was recorded yet."""
    return config.stash.get(RECORDER, None)


def pytest_configure(config):
    config.stash[RECORDER] = None  # made on the first record: runs that check nothing leave nothing
    config.stash[RECORD_ERRORS] = []


def _recorder(config) -> Recorder:
    if config.stash.get(RECORDER, None) is None:
        shared = state.shared_run_dir(config)
        if shared is not None:  # an xdist worker: its own file in the controller's run
            config.stash[RECORDER] = Recorder(shared, None, worker=state.worker_id(config))
            return config.stash[RECORDER]
        bench = bench_of(config)
        run_dir = Recorder.new_run_dir(run(config).reports_dir)
        config.stash[RECORDER] = Recorder(run_dir, {
            "run": run_dir.name, "project": run(config).project.describe(),
            "profile": bench.profile.name, "seeds": list(bench.profile.seeds),
            "versions": bench.versions, "threads": frameworks.threads(),
            "device": frameworks.device_line(),
            "data": data_lines(config), "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return config.stash[RECORDER]


def shared_recorder(config) -> Recorder:
    """The run's Recorder, made now if need be: the xdist controller's, whose run directory its
    workers record into."""
    return _recorder(config)


def error_lines(config) -> list[str]:
    errors = config.stash.get(RECORD_ERRORS, [])
    return [f"convcheck: {len(errors)} records could not be written (the verdicts above "
            f"stand): {errors[0]}"] if errors else []


def record(config, entry: dict) -> None:
    """Append one record to the run's records. A record that cannot be written is reported at
    the end of the run and never replaces the check's own verdict."""
    try:
        _recorder(config).record(entry)
    except OSError as e:
        config.stash[RECORD_ERRORS].append(f"{entry.get('case')} {entry.get('check')}: {e}")


def record_outcome(item, call, rep) -> None:
    """Every case's outcome, so a case that errored (a crashed conversion, a fixture that
    failed) is in the records and the summary, not only those whose checks ran."""
    if not (rep.when == "call" or (rep.when == "setup" and not rep.passed)
            or (rep.when == "teardown" and rep.failed)):
        return
    cases = [p for p in (item.callspec.params.values() if hasattr(item, "callspec") else ())
             if isinstance(getattr(p, "id", None), str) or isinstance(p, Case)]
    if not cases:
        return
    c = getattr(cases[0], "case", cases[0])
    outcome = ("xfailed" if hasattr(rep, "wasxfail") and rep.skipped else
               "error" if rep.failed and rep.when != "call" else rep.outcome)
    message = ""
    if hasattr(rep, "wasxfail"):
        message = rep.wasxfail
    elif rep.skipped and isinstance(rep.longrepr, tuple):
        message = rep.longrepr[2]
    elif rep.failed:
        err = call.excinfo.value if call.excinfo is not None else None
        message = (str(rep.longrepr) if err is None
                   else str(err) if isinstance(err, pytest.fail.Exception)
                   else f"{type(err).__name__}: {err}")
    config = item.config
    record(config, {
        "case": c.id, "model": getattr(c, "model", None) if isinstance(c, Case) else None,
        "framework": getattr(c, "framework", None), "target": getattr(c, "target", None),
        "attack": getattr(c, "attack", None), "seed": getattr(c, "seed", None),
        "profile": run(config).profile.name, "check": "outcome", "test": item.nodeid,
        "phase": rep.when, "outcome": outcome, "passed": not rep.failed,
        "message": message.strip()[:2000], "seconds": round(rep.duration, 3)})


def case_record(bench, model, result) -> dict:
    case = model.case
    return {"case": case.id, "model": case.model, "framework": case.framework,
            "target": case.target, "attack": case.attack, "seed": case.seed,
            **({"runtime": case.runtime} if case.runtime else {}),  # a stand-in ran it
            "profile": bench.profile.name, "check": result.check, "measured": result.measured,
            "data": bench.dataset(case.spec).provenance.as_dict()}


def _partial(session, exitstatus) -> str | None:
    """Why this run checked less than it collected, or None."""
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "interrupted"
    if session.shouldfail or session.shouldstop:
        return f"stopped early ({session.shouldfail or session.shouldstop})"
    return None


@pytest.hookimpl(trylast=True)  # after the workers' outputs are in (plugin.workers)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    recorder = config.stash.get(RECORDER, None)
    if recorder is None or state.is_worker(config):  # the controller summarises their run
        return
    progress = bench_of(config).progress
    built, spans = dict(progress.spent), {k: list(v) for k, v in progress.spans.items()}
    for out in state.from_workers(config):
        for kind, entries in (out.get("built") or {}).items():
            built[kind] = {**built.get(kind, {}), **entries}
        for kind, s in (out.get("spans") or {}).items():
            spans.setdefault(kind, []).extend(map(tuple, s))
    try:
        join_records(recorder.run_dir)
        config.stash[SUMMARY] = write_summary(
            recorder.run_dir, partial=_partial(session, exitstatus),
            collected=session.testscollected, built=built,
            built_wall=wall_by_kind(spans) if spans else None)
    except OSError as e:
        config.stash[RECORD_ERRORS].append(f"summary: {e}")
        return
    from convcheck.report import pages

    try:
        pages.run_page(recorder.run_dir)
    except Exception as e:  # a chart that cannot be drawn never costs the run its verdicts
        config.stash[RECORD_ERRORS].append(f"{pages.REPORT_HTML}: {type(e).__name__}: {e}")


def pytest_terminal_summary(terminalreporter, config):
    path = config.stash.get(SUMMARY, None)
    if path is not None:
        page = path.parent / "report.html"
        terminalreporter.write_line(f"convcheck: records and summary in {path.parent}"
                                    + (f"; open {page}" if page.is_file() else ""))
    for line in error_lines(config):
        terminalreporter.write_line(line, red=True)
