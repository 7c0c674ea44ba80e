"""A run's records: one JSON object per case and check, appended to ``<run dir>/records.jsonl``
as each test finishes (nothing is lost if a run stops half-way), and the run's facts in
``run.json`` (versions, data, profile, what was built)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

RECORDS, SUMMARY, RUN_INFO = "records.jsonl", "summary.md", "run.json"


class Recorder:
    def __init__(self, run_dir: Path, info: dict):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RUN_INFO).write_text(json.dumps(info, indent=1, default=str))

    @staticmethod
    def new_run_dir(reports_dir: Path) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = reports_dir / "runs" / stamp
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = reports_dir / "runs" / f"{stamp}-{n}"
        return run_dir

    def record(self, record: dict) -> None:
        with open(self.run_dir / RECORDS, "a") as f:
            f.write(json.dumps(record, default=_plain) + "\n")


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def read_records(run_dir: Path) -> list[dict]:
    path = run_dir / RECORDS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
