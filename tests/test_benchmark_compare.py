"""The documented benchmark workflow catches a slower conversion, and only a slower one.

Three runs of the suite's inference benchmarks (LeNet-5, target onnx) as subprocesses, as a user
would type them: a baseline saved with --benchmark-autosave; a control on the same models with
--benchmark-compare --benchmark-compare-fail, which passes; the same comparison on a candidate
whose PyTorch ONNX conversion was replaced by convcheck.testing.faults.slow_down (same outputs, extra
work), which fails. The candidate is a copy of the cache with that one entry swapped and its
checksum re-recorded, i.e. what a converter upgrade emitting a slower graph would leave there;
the suite itself has no switch for it. The baseline also runs the within-run gate
(test_speed_ratio) on the good conversions.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from faulty_cache import cache_with_fault

from convcheck.pipeline.workbench import compute_tag
from convcheck.plugin import state
from convcheck.runtimes import OrtPredictor
from convcheck.testing import faults

# Its verdicts are timings: under pytest-xdist it runs last, with no other test beside it.
pytestmark = pytest.mark.timing

ROOT = Path(__file__).resolve().parent.parent
MODEL, TARGET = "lenet5", "onnx"
# Run-to-run change of these medians on a busy 2-core machine: up to +72 % (sub-ms batches);
# the slowed model is ~17x slower on a batch of 32 (+1600 %) and ~6x on the test set.
COMPARE_FAIL = "median:150%"
SLOW = f"test_inference_{{}}_converted[{MODEL}-pytorch-{TARGET}-s0]"


def suite(cache_dir: Path, storage: Path, reports: Path, bench, *args: str):
    cmd = [sys.executable, "-m", "pytest", "tests_conformance/test_performance.py",
           "--convcheck-models", MODEL, "--convcheck-targets", TARGET,
           "--convcheck-profile", bench.profile.name, "--convcheck-cache-dir", str(cache_dir),
           "--convcheck-reports-dir", str(reports),
           "--benchmark-storage", str(storage), "--benchmark-min-rounds", "7", "-v", *args]
    if bench.data_dir:
        cmd += ["--convcheck-data-dir", str(bench.data_dir)]
    # Only the options above configure the runs: none of this session's CONVCHECK_* variables.
    # Nor its pytest variables: under pytest-xdist, PYTEST_XDIST_WORKER would tell the
    # subprocess's pytest-benchmark that it is a worker, and it would time nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVCHECK_", "PYTEST_"))}
    # One thread per runtime: with more, the medians swing ~2x with the machine's load.
    env["CONVCHECK_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def outcomes(out: str) -> dict[str, str]:
    """test id -> PASSED/FAILED/... from -v's progress lines (a regression stops pytest before
    its final counts line)."""
    return dict(re.findall(r"^\S+::(\S+) ([A-Z]+)\b", out, flags=re.M))


def median_ms(predictor, x, n=7) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        predictor.predict(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def test_compare_fails_on_a_slowed_conversion(pytestconfig, tmp_path):
    bench = state.bench(pytestconfig)
    storage, reports = tmp_path / "benchmarks", tmp_path / "reports"
    compare = ["--benchmark-compare", f"--benchmark-compare-fail={COMPARE_FAIL}"]

    # The baseline, on one thread per runtime: a thread count is part of an original's key, so
    # (on a machine with more cores) it trains and converts its own LeNet-5 beside the session's.
    rc, out = suite(bench.cache_dir, storage, reports, bench, "--benchmark-autosave",
                    "-k", "inference or speed_ratio")
    assert rc == 0 and list(outcomes(out).values()) == ["PASSED"] * 10, out  # 8 timed, 2 gates
    saved = list(storage.rglob("*.json"))
    assert len(saved) == 1, saved
    machine = json.loads(saved[0].read_text())["machine_info"]["convcheck"]
    assert machine["threads"] == 1 and machine["profile"] == bench.profile.name, machine

    rc, out = suite(bench.cache_dir, storage, reports, bench, "-k", "inference", *compare)
    assert rc == 0 and "Performance has regressed" not in out, out

    # The candidate: the baseline's entries, its PyTorch ONNX conversion slowed down.
    tag = compute_tag({"threads": 1, "device": "cpu"})
    slow_path, victim = cache_with_fault(bench, tmp_path, MODEL, TARGET, faults.slow_down, tag)
    good_path = (bench.cache_dir / "models" / slow_path.parent.name / slow_path.name)
    # The fault: bitwise the same outputs, and really slower.
    x, _ = bench.test_set(victim.original.spec, "pytorch")
    good, slow = OrtPredictor.load(good_path), OrtPredictor.load(slow_path)
    assert np.array_equal(good.predict(x), slow.predict(x)), "slow_down changed the outputs"
    fast_ms, slow_ms = median_ms(good, x[:32]), median_ms(slow, x[:32])
    assert slow_ms >= 3 * fast_ms, f"slowed model only {slow_ms / fast_ms:.1f}x slower"

    # Every test passes: the run fails on the comparison alone.
    rc, out = suite(tmp_path / "cache", storage, reports, bench, "-k", "inference", *compare)
    assert rc != 0 and list(outcomes(out).values()) == ["PASSED"] * 8, out
    regressed = out.split("Performance has regressed:", 1)[-1]
    assert "Performance has regressed:" in out and SLOW.format("batch") in regressed, out
