"""A candidate run against its baseline, case by case and check by check: the upgrade gate.

Both runs are read from their records (records.jsonl) and facts (run.json). A Change is one
figure of one case and check in both runs; the gate calls it regressed when
  - a check that passed fails now, or a test that passed fails or errors now (a new conversion
    failure is test_converts failing);
  - an error metric grew by more than gate_error_growth, even while under its own bound, to
    above gate_error_floor (growth that stays below it is float32 round-off);
  - accuracy, label agreement or adversarial agreement dropped by more than gate_accuracy_drop /
    gate_agreement_drop;
  - a speed ratio's interval lies wholly above the baseline's and its median grew by more than
    gate_speed_growth (a slower runtime, beyond the noise both intervals carry);
  - the size ratio grew by more than gate_size_growth;
and improved for the mirror images. A case and check the baseline has and the candidate lacks
is missing (a regression unless allowed: a check that stopped running is not a pass). The
rules' values come from tolerances.toml like every other bound, per case.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

from convcheck.report.records import RUN_INFO, read_records
from convcheck.results import (IMPROVED, MISSING, NEW, REGRESSED, UNCHANGED, Change, Comparison,
                               RunFacts)

GATE_KEYS = ("gate_error_growth", "gate_error_floor", "gate_accuracy_drop", "gate_agreement_drop",
             "gate_speed_growth", "gate_size_growth")
# Error metrics whose growth the gate watches, per check (the figures each record measures).
ERROR_METRICS = {
    "output_equivalence": ("abs_max", "abs_p99", "rel_max"),
    "adversarial_output_equivalence": ("abs_max", "abs_p99", "rel_max"),
    "property_equivalence": ("worst_abs_max", "worst_rel_max"),
    "regression": ("abs_max",),
}
# Rates where higher is worse (agreement lost), and rates where lower is worse (accuracy lost).
WORSE_UP = {"label_disagreement": ("label_disagreement",),
            "adversarial_disagreement": ("adversarial_disagreement",),
            "success_rate": ("success_rate_delta",)}
WORSE_DOWN = {"accuracy_preserved": ("accuracy_converted",), "accuracy_floor": ("accuracy",)}
SPEED_KEYS = ("load", "inference_batch", "inference_testset")

# tol(key, record) -> (value, source)
Rules = Callable[[str, dict], tuple[float, str]]


class CompareError(Exception):
    """A run directory that cannot be compared (no records, unreadable)."""


def run_dir(path: Path) -> Path:
    """A run directory: `path` itself when it holds records, else the newest run under
    path/runs/ (a reports directory)."""
    from convcheck.report.records import records_files

    path = Path(path)
    if records_files(path):
        return path
    runs = sorted((p for p in (path / "runs").glob("*") if records_files(p)),
                  key=lambda p: p.name) if (path / "runs").is_dir() else []
    if not runs:
        raise CompareError(f"{path}: no records.jsonl there, and no run under {path / 'runs'} "
                           "(give a run directory, reports/runs/<stamp>, or a reports directory)")
    return runs[-1]


def facts(path: Path) -> RunFacts:
    info_file = path / RUN_INFO
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    return RunFacts(path=str(path), run=info.get("run", path.name),
                    profile=info.get("profile", ""), versions=info.get("versions", {}),
                    data=info.get("data", []), started=info.get("started", ""))


def _key(r: dict) -> tuple[str, str, str]:
    # An outcome is per test (a case has several); a check's record is per case and check.
    return (str(r.get("case")), r.get("check", ""),
            r.get("test", "") if r.get("check") == "outcome" else "")


def _index(records: list[dict]) -> dict:
    out = {}
    for r in records:
        out[_key(r)] = r  # the last record of a key wins (a rerun's)
    return out


def _num(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _word(outcome: str | None) -> str:
    return {"xfailed": "failed (expected)", "xpassed": "passed (unexpectedly)"}.get(
        outcome or "", outcome or "absent")


def _changes(b: dict, c: dict, rules: Rules) -> list[Change]:
    case, check = str(c.get("case")), c.get("check", "")
    out: list[Change] = []

    def add(metric, bv, cv, verdict, why=""):
        out.append(Change(case, check, metric, bv, cv, verdict, why))

    if check == "outcome":
        bo, co = b.get("outcome"), c.get("outcome")
        test = c.get("test", "").rsplit("::", 1)[-1]
        if bo == "xfailed" and co == "failed" and "[XPASS(strict)]" in (c.get("message") or ""):
            # A known divergence the candidate no longer shows: the session fails on the stale
            # expected failure itself; for the gate it is a fix.
            add("outcome", bo, "passed (unexpectedly)", IMPROVED,
                f"{test}: the expected failure did not happen: update expected_failures.toml")
        elif bo in ("passed", "skipped", "xfailed") and co in ("failed", "error"):
            add("outcome", bo, co, REGRESSED, f"{test} {bo} before, {co} now: "
                f"{(c.get('message') or '').splitlines()[0][:200] if c.get('message') else ''}")
        elif bo in ("failed", "error") and co == "passed":
            add("outcome", bo, co, IMPROVED, f"{test} {bo} before, passes now")
        else:
            add("outcome", _word(bo), _word(co), UNCHANGED)
        return out

    if "passed" in b and "passed" in c:
        bp, cp = b["passed"], c["passed"]
        if bp and not cp:
            add("passed", "passed", "failed", REGRESSED,
                "passed before, fails now: " + "; ".join(c.get("failures", []))[:300])
        elif cp and not bp:
            add("passed", "failed", "passed", IMPROVED, "failed before, passes now")
    bm, cm = b.get("measured") or {}, c.get("measured") or {}

    for metric in ERROR_METRICS.get(check, ()):
        bv, cv = _num(bm.get(metric)), _num(cm.get(metric))
        if bv is None or cv is None:
            continue
        growth, gsrc = rules("gate_error_growth", c)
        floor, _ = rules("gate_error_floor", c)
        if math.isnan(cv) and not math.isnan(bv):
            add(metric, bv, cv, REGRESSED, f"{metric} is NaN now, {bv:.3g} before")
        elif cv > floor and cv > bv * growth:
            add(metric, bv, cv, REGRESSED, (f"{metric} x{cv / bv:.3g}" if bv > 0 else
                                            f"{metric} from 0") +
                f" ({bv:.3g} -> {cv:.3g}) > x{growth:g} (gate_error_growth, {gsrc})")
        elif bv > floor and bv > cv * growth:
            add(metric, bv, cv, IMPROVED, f"{metric} {bv:.3g} -> {cv:.3g}")
        else:
            add(metric, bv, cv, UNCHANGED)

    for table, worse, key in ((WORSE_UP, 1, "gate_agreement_drop"),
                              (WORSE_DOWN, -1, "gate_accuracy_drop")):
        for metric in table.get(check, ()):
            bv, cv = _num(bm.get(metric)), _num(cm.get(metric))
            if bv is None or cv is None:
                continue
            bound, src = rules(key, c)
            delta = (cv - bv) * worse  # > 0: worse
            if delta > bound:
                add(metric, bv, cv, REGRESSED, f"{metric} {bv:.4g} -> {cv:.4g}: "
                    f"{delta:.4g} worse > {bound:g} ({key}, {src})")
            elif -delta > bound:
                add(metric, bv, cv, IMPROVED, f"{metric} {bv:.4g} -> {cv:.4g}")
            else:
                add(metric, bv, cv, UNCHANGED)

    if check == "speed_ratio":
        growth, src = rules("gate_speed_growth", c)
        for k in SPEED_KEYS:
            bv, cv = _num(bm.get(f"{k}_ratio")), _num(cm.get(f"{k}_ratio"))
            if bv is None or cv is None:
                continue
            blo, bhi = _num(bm.get(f"{k}_ratio_low")), _num(bm.get(f"{k}_ratio_high"))
            clo, chi = _num(cm.get(f"{k}_ratio_low")), _num(cm.get(f"{k}_ratio_high"))
            apart_up = clo is not None and bhi is not None and clo > bhi
            apart_down = chi is not None and blo is not None and chi < blo
            if apart_up and cv > bv * growth:
                add(f"{k}_ratio", bv, cv, REGRESSED,
                    f"{k}_ratio {bv:.3g} -> {cv:.3g} (x{cv / bv:.3g} > x{growth:g}, "
                    f"gate_speed_growth, {src}); intervals [{blo:.3g}, {bhi:.3g}] and "
                    f"[{clo:.3g}, {chi:.3g}] apart")
            elif apart_down and bv > cv * growth:
                add(f"{k}_ratio", bv, cv, IMPROVED, f"{k}_ratio {bv:.3g} -> {cv:.3g}")
            else:
                add(f"{k}_ratio", bv, cv, UNCHANGED)

    if check == "model_size":
        bv, cv = _num(bm.get("size_ratio")), _num(cm.get("size_ratio"))
        if bv is not None and cv is not None:
            growth, src = rules("gate_size_growth", c)
            if cv > bv * growth:
                add("size_ratio", bv, cv, REGRESSED, f"size_ratio {bv:.3g} -> {cv:.3g} "
                    f"(x{cv / bv:.3g} > x{growth:g}, gate_size_growth, {src})")
            elif bv > cv * growth:
                add("size_ratio", bv, cv, IMPROVED, f"size_ratio {bv:.3g} -> {cv:.3g}")
            else:
                add("size_ratio", bv, cv, UNCHANGED)

    if not out:  # a record with nothing the gate reads: its verdict, unchanged
        add("passed", "passed" if b.get("passed") else "-", "passed" if c.get("passed") else "-",
            UNCHANGED)
    return out


def compare_records(baseline: list[dict], candidate: list[dict], rules: Rules, *,
                    baseline_facts: RunFacts | None = None,
                    candidate_facts: RunFacts | None = None, cases: set[str] | None = None,
                    missing_is_regression: bool = True) -> Comparison:
    """Every case and check of both runs compared (cases: only these case ids, e.g. the ones
    a narrowed candidate run collected)."""
    b_index, c_index = _index(baseline), _index(candidate)
    if cases is not None:
        b_index = {k: v for k, v in b_index.items() if k[0] in cases}
    comparison = Comparison(baseline_facts or RunFacts(""), candidate_facts or RunFacts(""),
                            missing_is_regression=missing_is_regression,
                            rules={k: rules(k, {})[0] for k in GATE_KEYS})
    for key in sorted(b_index.keys() | c_index.keys()):
        b, c = b_index.get(key), c_index.get(key)
        case, check, test = key
        metric = "outcome" if check == "outcome" else "passed"
        if c is None:
            comparison.changes.append(Change(case, check, metric, _state(b), None, MISSING,
                                             f"in the baseline, not in the candidate"
                                             f"{' (' + test + ')' if test else ''}"))
        elif b is None:
            comparison.changes.append(Change(case, check, metric, None, _state(c), NEW,
                                             "not in the baseline"))
        else:
            if (b.get("data") or {}).get("sha256") != (c.get("data") or {}).get("sha256"):
                comparison.notes.append(f"{case} {check}: the runs used different data "
                                        f"({_sha(b)} vs {_sha(c)}): compared all the same")
            comparison.changes.extend(_changes(b, c, rules))
    bf, cf = comparison.baseline, comparison.candidate
    if bf.profile and cf.profile and bf.profile != cf.profile:
        comparison.notes.insert(0, f"profiles differ: {bf.profile} vs {cf.profile}")
    return comparison


def _state(r: dict) -> str:
    if r.get("check") == "outcome":
        return _word(r.get("outcome"))
    return "passed" if r.get("passed") else ("failed" if "passed" in r else "recorded")


def _sha(r: dict) -> str:
    return ((r.get("data") or {}).get("sha256") or "none")[:12]


def compare_runs(baseline: Path, candidate: Path, rules: Rules, **kw) -> Comparison:
    """The runs in two directories (run_dir resolves a reports directory to its newest run)."""
    b, c = run_dir(baseline), run_dir(candidate)
    rb, rc = read_records(b), read_records(c)
    for path, records in ((b, rb), (c, rc)):
        if not records:
            raise CompareError(f"{path}: records.jsonl holds no record")
    return compare_records(rb, rc, rules, baseline_facts=facts(b), candidate_facts=facts(c),
                           **kw)


def rules_from(tolerances) -> Rules:
    """The gate's rules for a record, from a convcheck.settings.Tolerances (per case, like any
    bound: an override may loosen the speed gate for one target)."""

    def lookup(key: str, record: dict) -> tuple[float, str]:
        case = {k: record.get(k) for k in ("model", "framework", "target", "attack", "profile")}
        return tolerances.lookup(key, **case)

    return lookup


def text(comparison: Comparison, *, everything: bool = False) -> str:
    """The comparison as plain text: the header (both version sets side by side), the notes,
    then every change that is not unchanged (every change with everything=True), worst first."""
    b, c = comparison.baseline, comparison.candidate
    lines = [f"baseline  {b.path} ({b.run}, profile {b.profile})",
             f"candidate {c.path} ({c.run}, profile {c.profile})", ""]
    names = sorted(b.versions.keys() | c.versions.keys())
    width = max((len(n) for n in names), default=8)
    lines.append(f"{'':{width}}  {'baseline':<14}{'candidate':<14}")
    for n in names:
        bv, cv = b.versions.get(n, "-"), c.versions.get(n, "-")
        lines.append(f"{n:{width}}  {bv:<14}{cv:<14}{'  changed' if bv != cv else ''}")
    lines.append("")
    lines += [f"note: {n}" for n in dict.fromkeys(comparison.notes)]
    counts = comparison.counts()
    lines.append(", ".join(f"{n} {v}" for v, n in counts.items() if n) or "nothing compared")
    rows = [ch for v in (REGRESSED, MISSING, NEW, IMPROVED, UNCHANGED) for ch in comparison.of(v)
            if everything or v != UNCHANGED]
    if rows:
        lines.append("")
        lines.append(f"{'verdict':<10} {'case':<40} {'check':<28} {'metric':<22} "
                     f"{'baseline':>12} {'candidate':>12} {'change':>8}  why")
        for ch in rows:
            r = ch.ratio
            lines.append(f"{ch.verdict:<10} {ch.case:<40} {ch.check:<28} {ch.metric:<22} "
                         f"{_fmt(ch.baseline):>12} {_fmt(ch.candidate):>12} "
                         f"{('x' + format(r, '.3g')) if r is not None else '':>8}  {ch.why}")
    lines.append("")
    lines.append("GATE: " + ("PASS" if comparison.passed else
                             f"FAIL ({len(comparison.regressions)} regression(s))"))
    return "\n".join(lines)


def _fmt(x) -> str:
    if isinstance(x, float):
        return format(x, ".4g")
    return "-" if x is None else str(x)
