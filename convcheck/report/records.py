"""A run's records: one JSON object per case and check, appended to ``<run dir>/records.jsonl``
as each test finishes (nothing is lost if a run stops half-way), and the run's facts in
``run.json`` (versions, data, profile, what was built).

Several processes can record into one run: each pytest-xdist worker appends to its own
``records-<worker>.jsonl`` (no two processes write one file), and a run's records are all of
its records files, read in name order."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

RECORDS, SUMMARY, RUN_INFO = "records.jsonl", "summary.md", "run.json"


class Recorder:
    def __init__(self, run_dir: Path, info: dict | None, worker: str | None = None):
        """info: the run's facts, written to run.json (None: a worker's recorder, whose run
        the controller described); worker: the pytest-xdist worker id whose file this is."""
        self.run_dir = run_dir
        self.records = run_dir / (f"records-{worker}.jsonl" if worker else RECORDS)
        run_dir.mkdir(parents=True, exist_ok=True)
        if info is not None:
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
        with open(self.records, "a") as f:
            f.write(json.dumps(record, default=_plain) + "\n")


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def records_files(run_dir: Path) -> list[Path]:
    """The run's records files: records.jsonl, then each worker's or shard's, by name."""
    main = run_dir / RECORDS
    return ([main] if main.is_file() else []) + sorted(run_dir.glob("records-*.jsonl"))


def join_records(run_dir: Path) -> None:
    """Append the workers' and shards' records files to records.jsonl, in name order, and
    remove them: the run then reads like a single process's. Each file is removed only once
    its lines are written."""
    main = run_dir / RECORDS
    for path in sorted(run_dir.glob("records-*.jsonl")):
        text = path.read_text()
        with open(main, "a") as f:
            f.write(text if not text or text.endswith("\n") else text + "\n")
        path.unlink()


def read_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for path in records_files(run_dir)
            for line in path.read_text().splitlines() if line.strip()]
