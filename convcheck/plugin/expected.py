"""Expected failures (expected_failures.toml), matched to the collected tests: an entry holds
only for the failure it states, a pass is an error, and every entry is checked against the
whole collection, so a stale or misspelt one stops the run."""
from __future__ import annotations

import difflib
import fnmatch

import pytest

from convcheck.declarations.registry import MODELS
from convcheck.pipeline.cases import Case, conversion_cases, original_cases, with_attacks
from convcheck.plugin.parametrize import case_ids as _case_ids
from convcheck.plugin.records import record_outcome
from convcheck.plugin.state import run

XFAIL = pytest.StashKey()  # item -> its ExpectedFailure
UNMATCHED = pytest.StashKey()  # config -> entries this run could not check (node ids)
XF_SEEN = pytest.StashKey()  # config -> {entry: [entry, checked by a test that ran, a skip reason]}
SEARCH_MISSED = pytest.StashKey()  # config -> [(node id, entry)]: search entries not reached


@pytest.hookimpl(tryfirst=True)  # before -k, -m and --deselect take items away
def pytest_collection_modifyitems(config, items):
    used = set()
    for item in items:
        case_ids = _case_ids(item)
        callspec = getattr(item, "callspec", None)
        runtime = next((p.runtime for p in (callspec.params.values() if callspec else ())
                        if isinstance(p, Case) and p.runtime), None)
        for xf in run(config).expected_failures:
            if any(xf.applies(item.originalname, cid, runtime) for cid in case_ids):
                item.stash[XFAIL] = xf
                used.add(xf.where)
                break
    _unmatched_expected_failures(config, items, used)


def _universe(config) -> set[str]:
    """Every case id the declared models, targets and seeds make, whatever this run selects
    (--convcheck-models, -k, -m, node ids): expected failures are checked against it."""
    models, seeds = MODELS.names(), run(config).profile.seeds
    targets = run(config).all_targets
    originals = original_cases(models, seeds)
    conversions = conversion_cases(models, targets, seeds)
    cases = originals + conversions + with_attacks(originals) + with_attacks(conversions)
    return {c.id for c in cases} | {f"{c.id}-no-attack" for c in originals + conversions}


def _suite_tests() -> set[str]:
    import convcheck.suite as suite

    return {n for n in vars(suite) if n.startswith("test_")}


def _unmatched_expected_failures(config, items, used: set) -> None:
    """An entry that matches no test is a typo or a fixed divergence: an error in every run,
    narrowed or not. Checked against the whole collection: every case the declarations make
    (for the suite's tests) and every item collected before -k/-m deselection (for the
    project's own tests). Only where the command line named files or node ids, and so left a
    project test or case uncollected, is an entry listed as not checked instead."""
    names = {item.originalname for item in items}
    suite = _suite_tests()
    universe = _universe(config)
    named = config.args_source == pytest.Config.ArgsSource.ARGS
    node_ids = any("::" in a for a in config.args)
    errors, unchecked = [], []
    for xf in run(config).expected_failures:
        if xf.where in used:
            continue
        tests = sorted(n for n in names | suite if fnmatch.fnmatchcase(n, xf.test))
        if not tests:
            (unchecked if named else errors).append(
                (xf, f"{xf.where}: test = {xf.test!r} matches no test" + (
                    "" if named else f"; tests: {', '.join(sorted(names | suite)[:8])}, ...")))
            continue
        ids = sorted({cid for item in items if item.originalname in tests
                      for cid in _case_ids(item)}
                     | (universe if any(t in suite for t in tests) else set()))
        if any(fnmatch.fnmatchcase(i, xf.case) for i in ids):
            continue  # its case exists, outside this run's selection
        if node_ids and not any(t in suite for t in tests):
            unchecked.append((xf, f"{xf.where}: its cases were not collected (node ids)"))
            continue
        near = difflib.get_close_matches(xf.case, ids, n=3, cutoff=0.6)
        errors.append((xf, f"{xf.where}: case = {xf.case!r} matches no case of "
                           f"{', '.join(tests[:3])}"
                           + (f"; closest: {', '.join(near)}" if near else
                              f"; {len(ids)} cases, e.g. {', '.join(ids[:3])}")))
    config.stash[UNMATCHED] = [xf for xf, _ in unchecked]
    if errors:
        raise pytest.UsageError("convcheck: expected failures that match no test "
                                "(remove the entry, or fix its pattern):\n"
                                + "\n".join(f"convcheck: {e}" for _, e in errors))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Expected failures: a test covered by an entry counts as expected only when it fails
    the way the entry says (its failure text, its measured figure); a pass is an error (the
    divergence is gone: remove the entry)."""
    rep = yield
    xf = item.stash.get(XFAIL, None)
    if xf is not None:
        seen = item.config.stash.setdefault(XF_SEEN, {})
        ran = not rep.skipped or hasattr(rep, "wasxfail")
        if ran or rep.when == "setup":  # a skip, at setup or in the call: not checked
            state = seen.setdefault(xf.where, [xf, False, None])
            if ran and rep.when == "call":
                state[1] = True
            elif rep.skipped and not hasattr(rep, "wasxfail"):
                state[2] = state[2] or (rep.longrepr[2] if isinstance(rep.longrepr, tuple)
                                        else "skipped")
    if xf is not None and not rep.skipped:
        if call.excinfo is not None and not isinstance(call.excinfo.value, pytest.skip.Exception):
            err = call.excinfo.value
            verdict = getattr(err, "verdict", None)
            text = (verdict.message() if verdict is not None
                    else f"{type(err).__name__}: {err}")
            why = xf.explains(text, verdict.measured if verdict is not None else None,
                              verdict.failed_metrics() if verdict is not None else None)
            if why is None:
                rep.outcome = "skipped"
                rep.wasxfail = f"{xf.reason} (measured: {xf.measured}; expects {xf.expects()})"
            else:
                rep.sections.append(("convcheck expected failure", (
                    f"{xf.where} covers this test and expects {xf.expects()}, but {why}")))
                rep.longrepr = (f"{rep.longrepr}\nconvcheck: not the expected failure "
                                f"({xf.where} expects {xf.expects()}): {why}")
        elif call.when == "call" and rep.passed and xf.search:
            item.config.stash.setdefault(SEARCH_MISSED, []).append((item.nodeid, xf))
        elif call.when == "call" and rep.passed:
            rep.outcome = "failed"
            rep.longrepr = (f"[XPASS(strict)] {xf.reason}: the expected failure did not happen "
                            f"(measured then: {xf.measured}); remove {xf.where}")
    record_outcome(item, call, rep)
    return rep


def summary_lines(config) -> list[tuple[str, str]]:
    """(line, colour) for the end of the run: search entries not reached this run, entries no
    test of it matched, entries whose tests all skipped."""
    lines = []
    for nodeid, xf in config.stash.get(SEARCH_MISSED, []):
        lines.append((f"convcheck: {nodeid} passed: its search did not reach the expected "
                      f"failure {xf.where} ({xf.measured}) this run", "yellow"))
    for xf in config.stash.get(UNMATCHED, []):
        lines.append((f"convcheck: expected failure {xf.where} (case {xf.case!r}, test "
                      f"{xf.test!r}) matched no test of this run", "yellow"))
    for xf, checked, skip in config.stash.get(XF_SEEN, {}).values():
        if not checked and skip:
            lines.append((f"convcheck: expected failure {xf.where} (case {xf.case!r}, test "
                          f"{xf.test!r}) unchecked: the tests it covers skipped "
                          f"({str(skip)[:200]})", "yellow"))
    return lines


def pytest_terminal_summary(terminalreporter, config):
    for line, colour in summary_lines(config):
        terminalreporter.write_line(line, **{colour: True})
