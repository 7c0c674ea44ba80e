"""Joining runs made in parts (the machines of a CI matrix, each with --convcheck-shard I/N)
into one run directory whose summary reads as a single run's on the same cases.

Each part's records are copied as ``records-<part>.jsonl`` and joined like the records of
pytest-xdist workers (convcheck.report.records.join_records); its facts (run.json) are checked
to agree on what makes figures comparable (profile, seeds, versions, data) and combined: the
tests collected are added up, what each part built is kept, and a partial part makes the whole
run partial.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from convcheck.report.records import RUN_INFO, join_records, records_files
from convcheck.report.tables import write_summary

# The facts every part must share for its figures to sit in one table.
SAME = ("profile", "seeds", "versions", "data")


class MergeError(ValueError):
    """Parts that cannot be joined (no records, or facts that differ), named."""


def merge(parts: list[Path], into: Path) -> Path:
    """Join the run directories `parts` into the new run directory `into`; returns its
    summary.md. Raises MergeError naming the part and the fact that differs."""
    if not parts:
        raise MergeError("no run directory to merge")
    infos = []
    for part in parts:
        part = Path(part)
        if not records_files(part):
            raise MergeError(f"{part}: no records (records.jsonl) in it: give the run "
                             "directories the parts wrote (reports/runs/<stamp>)")
        try:
            infos.append(json.loads((part / RUN_INFO).read_text()))
        except (OSError, ValueError) as e:
            raise MergeError(f"{part}: {RUN_INFO} unreadable ({e})") from None
    for part, info in zip(parts[1:], infos[1:]):
        for key in SAME:
            if info.get(key) != infos[0].get(key):
                raise MergeError(f"{part}: {key} differs from {parts[0]}'s "
                                 f"({info.get(key)!r} vs {infos[0].get(key)!r}): its figures "
                                 "would not compare")
    into = Path(into)
    if into.exists() and any(into.iterdir()):
        raise MergeError(f"{into}: exists and is not empty: merge into a new directory")
    into.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        for n, path in enumerate(records_files(Path(part))):
            shutil.copyfile(path, into / f"records-part{i + 1:03d}-{n:03d}.jsonl")
    join_records(into)
    built: dict = {}
    for info in infos:
        for kind, entries in (info.get("built") or {}).items():
            built[kind] = {**built.get(kind, {}), **entries}
    partial = [f"{Path(p).name}: {i['partial']}" for p, i in zip(parts, infos) if i.get("partial")]
    collected = [i.get("collected") for i in infos]
    info = {**infos[0], "run": into.name, "parts": [str(p) for p in parts],
            "collected": sum(collected) if None not in collected else None,
            "partial": "; ".join(partial) or None, "built": built}
    (into / RUN_INFO).write_text(json.dumps(info, indent=1, default=str))
    return write_summary(into)
