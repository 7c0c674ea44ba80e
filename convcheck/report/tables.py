"""The summary tables made from a run's records.

``summary.md`` holds the study's tables for the run, mean (std) over
seeds, rebuilt from the records at the end of the session (or by ``python -m convcheck.report``).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from convcheck.report.records import RUN_INFO, SUMMARY, read_records


def _mean_std(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    a = np.asarray(values, dtype=float)
    if len(a) == 1:
        return format(a[0], fmt)
    return f"{format(a.mean(), fmt)} ({format(a.std(ddof=1), fmt)})"


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _built_table(built: dict) -> str:
    """Where a run's cold time went: what it built, per kind (a warm run builds nothing)."""
    rows = []
    for kind, entries in built.items():
        slowest = max(entries, key=entries.get)
        rows.append([kind, str(len(entries)), f"{sum(entries.values()):.0f}",
                     f"{slowest} {entries[slowest]:.0f}s"])
    return _table("Built this run (seconds)", ["kind", "built", "seconds", "slowest"], rows)


def _target(r: dict) -> str:
    """A record's target, with the stand-in runtime that ran it where its format's own runtime
    does not exist (e.g. "coreml-mlprogram-fp32 on coreml-reference"): a figure of convcheck's
    MIL reference interpreter is never shown as Core ML's."""
    target = r.get("target") or ""
    return f"{target} on {r['runtime']}" if r.get("runtime") else target


def _group(records: list[dict], check: str) -> dict:
    """(model, framework, target) -> list of measured dicts over seeds (and their verdicts)."""
    groups = defaultdict(list)
    for r in records:
        if r["check"] == check:
            groups[(r["model"], r["framework"], _target(r))].append(r)
    return dict(sorted(groups.items()))


def summary(records: list[dict], info: dict) -> str:
    out = [f"# convcheck run {info.get('run', '')}", ""]
    outcomes = [r for r in records if r["check"] == "outcome"]
    if info.get("partial"):
        out += [f"**Partial run: {info['partial']}** after {len(outcomes)} of "
                f"{info.get('collected', '?')} tests; a case missing below was not checked, "
                f"and a pass covers only what ran.", ""]
    out += [f"Profile `{info.get('profile')}`, seeds {info.get('seeds')}; "
            f"values are mean (std) over seeds.", ""]
    if info.get("versions"):
        out += ["Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()), ""]
    if info.get("data"):
        out += ["Data: " + "; ".join(info["data"]), ""]
    if info.get("built"):
        out += [_built_table(info["built"])]
    stand_ins = sorted({r["runtime"] for r in records if r.get("runtime")})
    if stand_ins:
        out += [f"Targets shown \"on {', '.join(stand_ins)}\" ran on a stand-in for their "
                "format's runtime, which does not exist on this OS: coreml-reference is "
                "convcheck's MIL reference interpreter (convcheck.mil), not Apple's Core ML.", ""]

    rows = []
    for (model, fw, target), rs in _group(records, "accuracy_preserved").items():
        m = [r["measured"] for r in rs]
        rows.append([model, fw, target, str(len(rs)),
                     _mean_std([x["accuracy_original"] for x in m], ".4f"),
                     _mean_std([x["accuracy_converted"] for x in m], ".4f"),
                     _mean_std([x["accuracy_delta"] for x in m], ".4f"), _status(rs)])
    if rows:
        out.append(_table("Table I — accuracy before and after conversion",
                          ["model", "framework", "target", "seeds", "original", "converted",
                           "\\|Δ\\|", "verdict"], rows))

    eq = _group(records, "output_equivalence")
    dis = _group(records, "label_disagreement")
    rows = []
    for key in sorted(set(eq) | set(dis)):
        m = [r["measured"] for r in eq.get(key, [])]
        d = [r["measured"]["label_disagreement"] * 100 for r in dis.get(key, [])]
        rows.append([*key, _mean_std([x["abs_max"] for x in m], ".2e"),
                     _mean_std([x["abs_mean"] for x in m], ".2e"),
                     _mean_std([x["rel_max"] for x in m], ".2e"),
                     _mean_std([x["rel_mean"] for x in m], ".2e"),
                     _mean_std(d, ".2f"), _status(eq.get(key, []) + dis.get(key, []))])
    if rows:
        out.append(_table("Table II — output error and label disagreement on the test set",
                          ["model", "framework", "target", "abs max", "abs mean", "rel max",
                           "rel mean", "disagreement %", "verdict"], rows))

    out += _performance_tables(records)
    out += _robustness_tables(records)

    out += _outcome_tables(outcomes)

    rows = [[r["model"], r["framework"], str(r["seed"]), f"{r['measured']['accuracy']:.4f}",
             str(r["tolerances"].get("accuracy_floor")), "pass" if r["passed"] else "FAIL"]
            for r in records if r["check"] == "accuracy_floor"]
    if rows:
        out.append(_table("Trained originals — test accuracy",
                          ["model", "framework", "seed", "accuracy", "floor", "verdict"], rows))
    return "\n".join(out)


def _outcome_tables(outcomes: list[dict]) -> list[str]:
    """Every test's outcome counted, and each one that failed or errored with its message
    (a case whose conversion crashed has no verdict in the tables above)."""
    if not outcomes:
        return []
    counts: dict = defaultdict(int)
    for r in outcomes:
        counts[r["outcome"]] += 1
    out = ["Outcomes: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), ""]
    rows = [[r["case"], r["test"].split("::")[-1], r["phase"], r["outcome"].upper(),
             (r["message"].splitlines() or [""])[0][:200].replace("|", "\\|")]
            for r in outcomes if r["outcome"] in ("failed", "error")]
    if rows:
        out.append(_table("Tests that failed or errored", ["case", "test", "phase", "outcome",
                                                           "first line"], rows))
    return out


TIMINGS = ("time_load", "time_inference_batch", "time_inference_testset")


def _performance_tables(records: list[dict]) -> list[str]:
    """Table III (load and inference time, ms) and Table IV (size on disk, MB): original vs
    converted, mean (std) over seeds of each run's median, and the gated ratios."""
    out, times = [], {check: _group(records, check) for check in TIMINGS}
    speed = _group(records, "speed_ratio")
    converted = sorted({k for g in times.values() for k in g if k[2]} | set(speed))
    rows = []
    for model, fw, target in converted:
        row = [model, fw, target]
        for check in TIMINGS:
            for key in ((model, fw, ""), (model, fw, target)):
                row.append(_mean_std([r["measured"]["median_s"] * 1e3
                                      for r in times[check].get(key, [])], ".2f"))
        m = [r["measured"] for r in speed.get((model, fw, target), [])]
        row += [_paired(m, "inference_batch"), _paired(m, "inference_testset"),
                _status(speed[model, fw, target]) if m else "–"]
        rows.append(row)
    if rows:
        batch = next((f"batch of {r['measured']['samples']}" for r in records
                      if r["check"] == "time_inference_batch"), "a fixed batch")
        out.append(_table(
            f"Table III — load and inference time (ms; median per run, {batch} and "
            f"the whole test set)",
            ["model", "framework", "target", "load original", "load converted",
             "batch original", "batch converted", "test set original", "test set converted",
             "ratio batch [95 % interval]", "ratio test set [95 % interval]", "verdict"], rows))
        out.append("An interval over too few pairs for 95 % is (min, max) and shows the "
                   "coverage it has (e.g. 93.8 % for 5 pairs).\n")
        out.append("Ratios: converted / original, the median of pairs timed back to back "
                   "(interleaved rounds, per seed); the gate fails only when the whole interval "
                   "lies above speed_ratio. The columns before them are separate benchmarks.\n")
    rows = []
    for (model, fw, target), rs in _group(records, "model_size").items():
        m = [r["measured"] for r in rs]
        rows.append([model, fw, target, _mean_std([x["size_original"] / 1e6 for x in m], ".3f"),
                     _mean_std([x["size_converted"] / 1e6 for x in m], ".3f"),
                     _mean_std([x["size_ratio"] for x in m], ".3f"), _status(rs)])
    if rows:
        out.append(_table("Table IV — size on disk (MB, every file of the artifact)",
                          ["model", "framework", "target", "original", "converted", "ratio",
                           "verdict"], rows))
    return out


def _robustness_tables(records: list[dict]) -> list[str]:
    """Figs 3-4 (attack success rate before/after), Tables V/VI (disagreement and output error
    on the adversarial sets) and Table VII (robustness indicator), mean (std) over seeds."""
    out = []

    def by_attack(check):
        groups = defaultdict(list)
        for r in records:
            if r["check"] == check:
                groups[(r["model"], r["framework"], _target(r), r.get("attack") or "")
                       ].append(r)
        return dict(sorted(groups.items()))

    rows = []
    for key, rs in by_attack("success_rate").items():
        m = [r["measured"] for r in rs]
        rows.append([*key, _mean_std([x["n_samples"] for x in m], ".0f"),
                     _mean_std([x.get("n_boundary", 0) for x in m], ".0f"),
                     _mean_std([x["success_rate_original"] * 100 for x in m], ".1f"),
                     _mean_std([x["success_rate_converted"] * 100 for x in m], ".1f"),
                     _mean_std([x["success_rate_delta"] * 100 for x in m], ".1f"), _status(rs)])
    if rows:
        out.append(_table("Figures 3, 4 — attack success rate (%) on the original and the "
                          "converted model, same adversarial examples",
                          ["model", "framework", "target", "attack", "samples",
                           "on the boundary (left out)", "original", "converted", "\\|Δ\\|",
                           "verdict"], rows))
    eq, dis = by_attack("adversarial_output_equivalence"), by_attack("adversarial_disagreement")
    rows = []
    for key in sorted(set(eq) | set(dis)):
        m = [r["measured"] for r in eq.get(key, [])]
        d = [r["measured"]["adversarial_disagreement"] * 100 for r in dis.get(key, [])]
        rows.append([*key, _mean_std(d, ".2f"), _mean_std([x["abs_max"] for x in m], ".2e"),
                     _mean_std([x["abs_mean"] for x in m], ".2e"),
                     _status(eq.get(key, []) + dis.get(key, []))])
    if rows:
        out.append(_table("Tables V, VI — on the adversarial sets: label disagreement between "
                          "original and converted model, and output error",
                          ["model", "framework", "target", "attack", "disagreement %",
                           "abs max", "abs mean", "verdict"], rows))
    rows = []
    for (model, fw, target), rs in _group(records, "robustness_indicator").items():
        m = [r["measured"] for r in rs]
        rows.append([model, fw, target, ", ".join(m[0]["attacks"]),
                     _mean_std([x["robustness_indicator"] for x in m], "+.4f"), _status(rs)])
    if rows:
        out.append(_table("Table VII — robustness indicator R(m, c): mean over the attacks of "
                          "(success rate on the conversion - on the original); 0 = as robust",
                          ["model", "framework", "target", "attacks", "R", "verdict"], rows))
    def size(m):  # how far the examples are from their seeds
        if "perturbation" in m:
            return f"L2 {m['perturbation']['l2_mean']:.3g}, L-inf {m['perturbation']['linf_mean']:.3g}"
        if m.get("modification_rate_mean") is not None:
            return f"{m['modification_rate_mean'] * 100:.1f} % of words"
        return "–"

    rows = [[r["model"], r["framework"], str(r["seed"]), r["attack"],
             str(r["measured"]["n_samples"]), str(r["measured"]["unchanged"]),
             f"{r['measured']['success_rate_original'] * 100:.1f}", size(r["measured"]),
             f"{r['measured']['seconds']:.1f}" if "seconds" in r["measured"] else "–",
             "pass" if r["passed"] else "FAIL"]
            for r in records if r["check"] == "attack_effective"]
    if rows:
        out.append(_table("Adversarial sets made on the originals (perturbation: mean over the "
                          "examples)",
                          ["model", "framework", "seed", "attack", "samples", "unchanged",
                           "success % on the original", "perturbation", "seconds", "verdict"],
                          rows))
    return out


def _paired(measured: list[dict], key: str) -> str:
    """Each seed's paired ratio: "median [low, high]"."""
    def coverage(m) -> str:  # the interval's real coverage where it is short of 95 %
        c = m.get(f"{key}_confidence")
        return f" {c:.1%}" if c is not None and c < 0.95 else ""

    cells = [f"{m[f'{key}_ratio']:.2f} [{m[f'{key}_ratio_low']:.2f}, {m[f'{key}_ratio_high']:.2f}]"
             f"{coverage(m)}" if f"{key}_ratio_low" in m else f"{m[f'{key}_ratio']:.2f}"
             for m in measured if f"{key}_ratio" in m]
    return "; ".join(cells) or "–"


def _status(rs: list[dict]) -> str:
    judged = [r for r in rs if "passed" in r]
    if rs and not judged:
        return "recorded (not judged)"
    failed = sum(not r["passed"] for r in judged)
    return "pass" if not failed else f"FAIL ({failed})"


def write_summary(run_dir: Path, partial: str | None = None, collected: int | None = None,
                  built: dict | None = None, built_wall: dict | None = None) -> Path:
    """summary.md from the run's records; `partial`: why the run stopped early, `built`: the
    seconds of each cache entry this run built, {kind: {entry: seconds}}, `built_wall`: the
    wall seconds each kind's builds took, {kind: seconds, "all": ...} (less than their sum
    where builds overlap: conversions run ahead), all kept in run.json, so a summary rebuilt
    later says them too."""
    info = json.loads((run_dir / RUN_INFO).read_text()) if (run_dir / RUN_INFO).exists() else {}
    if partial is not None or collected is not None or built:
        info |= {"partial": partial, "collected": collected}
        if built:
            info["built"] = built
        if built_wall:
            info["built_wall"] = built_wall
        (run_dir / RUN_INFO).write_text(json.dumps(info, indent=1, default=str))
    path = run_dir / SUMMARY
    path.write_text(summary(read_records(run_dir), info))
    return path

