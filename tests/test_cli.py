"""The suite's command line, run as `python -m pytest tests_conformance --collect-only -q ...`.

Bad options are usage errors (exit code 4) that name what was wrong and list the valid choices;
collection yields readable ids and markers, and trains nothing. The default cache is used (no
--cache-dir): collect-only with -q neither prints the report header nor loads data.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from models import ZOO

ROOT = Path(__file__).resolve().parent.parent
USAGE_ERROR = int(pytest.ExitCode.USAGE_ERROR)  # 4


def collect(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVCHECK_")}
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "tests_conformance", "--collect-only", "-q", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def usage_error(*args: str) -> str:
    proc = collect(*args)
    out = proc.stdout + proc.stderr
    assert proc.returncode == USAGE_ERROR, f"exit {proc.returncode}:\n{out}"
    assert "Traceback" not in out, out
    return out


def ids(proc: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"^tests_conformance/\S+::(\S+)$", proc.stdout, flags=re.M)


# --------------------------------------------------------------------------- usage errors


def test_unknown_model_lists_the_valid_models():
    out = usage_error("--models", "lenet5,nope")
    assert "unknown model 'nope'; valid models: " + ", ".join(ZOO) in out


def test_unknown_profile_lists_the_valid_profiles():
    out = usage_error("--profile", "nope")
    assert "unknown profile 'nope'; valid profiles: " in out
    for name in ("smoke", "standard", "paper"):
        assert name in out


def test_unknown_target_lists_the_valid_targets():
    out = usage_error("--targets", "nope")
    assert "unknown target 'nope'; valid targets: " in out
    for name in ("onnx", "onnx-legacy"):
        assert name in out


def test_tolerances_file_with_an_unknown_key(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text("[default]\nabs_max = 1e-5\nabs_maxx = 1e-5\n")
    out = usage_error("--tolerances", str(path))
    assert f"{path}: unknown key default.abs_maxx; valid keys: " in out
    assert "accuracy_floor" in out


def test_malformed_tolerances_file(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text("[default\nabs_max = 1e-5\n")
    out = usage_error("--tolerances", str(path))
    assert f"{path}: malformed TOML" in out


def test_missing_data_dir():
    out = usage_error("--data-dir", "/nonexistent")
    assert "--data-dir /nonexistent: no such directory" in out


# --------------------------------------------------------------------------- collection


def test_collection_ids_and_no_training():
    proc = collect("--models", "lenet5", "-m", "not regression")  # regressions: own models
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    got = ids(proc)
    for expected in ("test_accuracy_above_floor[lenet5-keras-s0]",
                     "test_accuracy_above_floor[lenet5-pytorch-s0]",
                     "test_output_equivalence[lenet5-pytorch-onnx-s0]",
                     "test_output_equivalence[lenet5-keras-onnx-s0]",
                     "test_output_equivalence[lenet5-pytorch-onnx-legacy-s0]",
                     "test_converts[lenet5-pytorch-onnx-s0]",
                     "test_attack_effective[lenet5-keras-s0-boundary]",
                     "test_success_rate_preserved[lenet5-pytorch-onnx-s0-fgsm]",
                     "test_robustness_indicator[lenet5-pytorch-onnx-s0]"):
        assert expected in got, got
    # smoke: one seed; onnx converts both frameworks, onnx-legacy only pytorch
    cases = {i.split("[", 1)[1].rstrip("]") for i in got}
    assert {"lenet5-pytorch-onnx-s0", "lenet5-keras-onnx-s0",
            "lenet5-pytorch-onnx-legacy-s0"} <= cases, cases
    assert all(re.fullmatch(r"lenet5-.*-s0(-fgsm|-boundary)?", c) for c in cases), cases
    assert "keras-onnx-legacy" not in proc.stdout
    # nothing was trained, converted or loaded
    assert not re.search(r"^.*\btraining\b", out, flags=re.M | re.I), out
    assert "[convcheck]" not in out


def test_marker_selection():
    proc = collect("-m", "keras and lenet5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = ids(proc)
    assert set(got) >= {"test_accuracy_above_floor[lenet5-keras-s0]"} | {
        f"test_{t}[lenet5-keras-onnx-s0]" for t in
        ("converts", "outputs_finite", "output_equivalence", "label_agreement",
         "accuracy_preserved")}, got
    assert all("[lenet5-keras-" in i for i in got), got
    assert re.search(rf"{len(got)}/\d+ tests collected \(\d+ deselected\)", proc.stdout), proc.stdout


def test_attack_markers_select_robustness_cases():
    proc = collect("-m", "genetic and onnx", "--targets", "onnx")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = ids(proc)
    assert got and all(re.search(r"\[(lstm|gru)-(pytorch|keras)-onnx-s0-genetic\]$", i)
                       for i in got), got
    assert {i.split("[")[0] for i in got} == {
        "test_success_rate_preserved", "test_adversarial_agreement",
        "test_adversarial_output_equivalence"}, got


def test_profile_seeds_appear_in_ids():
    proc = collect("--models", "gru", "--profile", "standard", "--targets", "onnx",
                      "-k", "accuracy_above_floor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(ids(proc)) == sorted(f"test_accuracy_above_floor[gru-{fw}-s{s}]"
                                       for fw in ("pytorch", "keras") for s in (0, 1, 2))
