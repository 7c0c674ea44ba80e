"""Golden data round trip, as a user runs it: the suite saves golden data on the current stack
(--convcheck-save-golden, LeNet-5 -> onnx, both frameworks); python -m convcheck.golden replays
it unchanged (every case matches) and with a faulty conversion swapped in (the case differs, and
the operation that departs from the golden graph is named); so does the suite itself with
--convcheck-golden=DIR (tests_conformance/test_golden_replay.py), on the run's own conversions."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from faulty_cache import cache_with_fault, run_suite

from convcheck.plugin import state
from convcheck.testing import faults

ROOT = Path(__file__).resolve().parent.parent
CASE = "lenet5-pytorch-onnx-s0"


def golden_cli(*args) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "convcheck.golden", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def saved(pytestconfig, tmp_path_factory):
    bench = state.bench(pytestconfig)
    if "onnx" not in bench.targets:
        pytest.skip("target onnx not selected (--convcheck-targets)")
    root = tmp_path_factory.mktemp("golden")
    rc, out = run_suite(bench, "tests_conformance/test_equivalence.py",
                        "--convcheck-models=lenet5", "--convcheck-targets=onnx",
                        f"--convcheck-cache-dir={bench.cache_dir}",
                        f"--convcheck-reports-dir={root / 'reports'}",
                        f"--convcheck-save-golden={root / 'g'}", "-k", "output_equivalence")
    assert rc == 0 and "golden data of 2 conversion(s)" in out, out
    return root / "g"


def test_saved_golden_data_holds_inputs_outputs_artifact_and_versions(saved):
    facts = json.loads((saved / CASE / "golden.json").read_text())
    assert facts["case"] == CASE and facts["versions"]["onnxruntime"], facts
    assert (saved / CASE / facts["artifact"]).is_file()
    import numpy as np

    with np.load(saved / CASE / "golden.npz") as z:
        assert len(z["x"]) == len(z["original"]) == len(z["converted"]) > 0


def test_replay_unchanged_matches(saved):
    rc, out = golden_cli(saved)
    assert rc == 0 and "2 of 2 case(s) match their golden data" in out, out
    assert f"{CASE}: matches: abs_max 0 against the golden conversion's outputs" in out, out


def test_replay_with_a_faulty_conversion_differs_and_names_the_operation(saved, tmp_path):
    facts = json.loads((saved / CASE / "golden.json").read_text())
    bad = faults.swap_input_hw(facts["artifact_source"], tmp_path / "bad.onnx")
    rc, out = golden_cli(saved, "--artifact", f"{CASE}={bad}")
    assert rc == 1 and f"differing: {CASE}" in out, out
    assert f"{CASE}: DIFFERS" in out and "first diverging operation: Transpose 'fault_hw_swap'" \
        in out, out
    other = CASE.replace("pytorch", "keras")
    assert f"{other}: matches" in out, out


def test_bad_input_is_said(saved, tmp_path):
    rc, out = golden_cli(tmp_path)
    assert rc == 2 and "no golden case" in out, out
    rc, out = golden_cli(saved, "--artifact", "nosuchcase=/x.onnx")
    assert rc == 2 and "--artifact names no golden case: nosuchcase" in out, out


def _replay_in_suite(bench, saved, cache: Path, reports: Path, *extra):
    return run_suite(bench, "tests_conformance/test_golden_replay.py", "--convcheck-models=lenet5",
                     "--convcheck-targets=onnx", f"--convcheck-cache-dir={cache}",
                     f"--convcheck-reports-dir={reports}", f"--convcheck-golden={saved}",
                     "-rA", *extra)


def test_the_suite_replays_golden_data_on_its_own_conversions(pytestconfig, saved, tmp_path):
    bench = state.bench(pytestconfig)
    rc, out = _replay_in_suite(bench, saved, bench.cache_dir, tmp_path / "reports")
    assert rc == 0 and "2 passed" in out, out
    assert f"{CASE}: replayed {bench.cache_dir}" in out and "this run's conversion" in out, out
    # The same golden data, this run's PyTorch conversion faulty: that case fails, saying where.
    cache_with_fault(bench, tmp_path, "lenet5", "onnx", faults.swap_input_hw)
    rc, out = _replay_in_suite(bench, saved, tmp_path / "cache", tmp_path / "reports")
    assert rc == 1 and "1 failed, 1 passed" in out, out
    assert f"{CASE}: abs_max_vs_golden = " in out, out
    assert "first diverging operation: Transpose 'fault_hw_swap'" in out, out


def test_the_suite_without_golden_data_skips_saying_how_and_refuses_an_empty_directory(
        pytestconfig, tmp_path):
    bench = state.bench(pytestconfig)
    rc, out = run_suite(bench, "tests_conformance/test_golden_replay.py", "--convcheck-models=lenet5",
                        f"--convcheck-cache-dir={bench.cache_dir}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}", "-rs")
    assert rc == 0 and "1 skipped" in out and "--convcheck-golden=DIR replays" in out, out
    rc, out = run_suite(bench, "tests_conformance/test_golden_replay.py", "--convcheck-models=lenet5",
                        f"--convcheck-cache-dir={bench.cache_dir}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}",
                        f"--convcheck-golden={tmp_path}")
    assert rc != 0 and f"--convcheck-golden: {tmp_path}: no golden case" in out, out
