"""The suite's command line, run as `python -m pytest tests_conformance --collect-only -q ...`.

Bad options (all --convcheck-*, or their CONVCHECK_* environment variables) are usage errors
(exit code 4) that start with "convcheck: ", name what was wrong and list the valid choices;
collection yields readable ids and markers, and trains nothing. The default cache is used (no
--convcheck-cache-dir): collect-only loads the data (checked at start-up) but trains nothing.
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


def collect(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CONVCHECK_", "PYTEST_"))},
           **(env or {})}
    cmd = [sys.executable, "-m", "pytest", "tests_conformance", "--collect-only", "-q", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def usage_error(*args: str, env: dict | None = None) -> str:
    proc = collect(*args, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == USAGE_ERROR, f"exit {proc.returncode}:\n{out}"
    assert "Traceback" not in out, out
    return out


def ids(proc: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"^tests_conformance/\S+::(\S+)$", proc.stdout, flags=re.M)


# --------------------------------------------------------------------------- usage errors


def test_unknown_model_lists_the_valid_models():
    out = usage_error("--convcheck-models", "lenet5,nope")
    assert "convcheck: --convcheck-models: unknown model 'nope'; valid: " + ", ".join(ZOO) in out


def test_model_list_naming_no_model():
    out = usage_error("--convcheck-models", ",")
    assert "convcheck: --convcheck-models: no model named in ','; valid models: " + ", ".join(ZOO) in out


def test_unknown_profile_lists_the_valid_profiles():
    out = usage_error("--convcheck-profile", "nope")
    assert "convcheck: --convcheck-profile: unknown profile 'nope'; valid profiles: " in out
    for name in ("smoke", "standard", "paper"):
        assert name in out


def test_unknown_target_lists_the_valid_targets():
    out = usage_error("--convcheck-targets", "nope")
    assert "convcheck: --convcheck-targets: unknown target 'nope'; valid targets: " in out
    for name in ("onnx", "onnx-legacy"):
        assert name in out


def test_options_come_from_the_environment_too():
    out = usage_error(env={"CONVCHECK_TARGETS": "nope"})  # the error names the variable
    assert "convcheck: $CONVCHECK_TARGETS: unknown target 'nope'; valid targets: " in out
    out = usage_error(env={"CONVCHECK_PROFILE": "nope"})
    assert "convcheck: $CONVCHECK_PROFILE: unknown profile 'nope'; valid profiles: " in out


def test_the_old_option_names_are_gone():
    """The suite's options are namespaced (--convcheck-*): the old ones are pytest's own usage
    error, never silently ignored."""
    out = usage_error("--models", "lenet5")
    assert "unrecognized arguments: --models" in out


def test_tolerances_file_with_an_unknown_key(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text("[default]\nabs_max = 1e-5\nabs_maxx = 1e-5\n")
    out = usage_error("--convcheck-tolerances", str(path))
    assert f"convcheck: {path}: unknown key default.abs_maxx; valid keys: " in out
    assert "accuracy_floor" in out


def test_malformed_tolerances_file(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text("[default\nabs_max = 1e-5\n")
    out = usage_error("--convcheck-tolerances", str(path))
    assert f"convcheck: {path}: malformed TOML" in out


def test_tolerances_file_overriding_an_undeclared_model(tmp_path):
    """Override match names are the project's: checked at start-up against the declared models."""
    path = tmp_path / "tol.toml"
    path.write_text('[[override]]\nmodel = "lenet"\nabs_max = 1e-4\nreason = "typo"\n')
    out = usage_error("--convcheck-tolerances", str(path))
    assert (f"convcheck: {path}: override[0].model = 'lenet' is unknown; valid: "
            + ", ".join(ZOO)) in out


def project_usage_error(tmp_path, profiles: str) -> str:
    """A project of its own (convcheck.toml in tmp_path) declaring the zoo, with this profiles
    file over the packaged one: pytest started there, as its user would."""
    (tmp_path / "profiles.toml").write_text(profiles)
    (tmp_path / "convcheck.toml").write_text(
        f'models = ["models"]\nsys_path = [{str(ROOT)!r}]\nprofiles = "profiles.toml"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVCHECK_", "PYTEST_"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == USAGE_ERROR, f"exit {proc.returncode}:\n{out}"
    assert "Traceback" not in out, out
    return out


def test_profile_without_train_table_for_a_build_source(tmp_path):
    """The packaged smoke profile trains nothing: a project whose models convcheck trains must
    give their hyperparameters, or the run stops at start-up naming the model and the table."""
    out = project_usage_error(tmp_path, "[smoke]\nattack.fgsm.eps = 0.1\n")
    assert ("convcheck: models/lenet5.py: model 'lenet5' is trained by convcheck (a build "
            "source), but profile 'smoke' has no train.lenet5 table") in out, out


def test_profile_naming_an_undeclared_model(tmp_path):
    out = project_usage_error(tmp_path, '[smoke]\ntrain.lenet = { optimizer = "sgd", lr = 0.1, '
                                        'batch_size = 8, epochs = 1 }\n')
    assert ("convcheck: profile 'smoke': train.lenet: unknown name 'lenet'; valid: "
            + ", ".join(ZOO)) in out, out


def test_missing_data_dir():
    out = usage_error("--convcheck-data-dir", "/nonexistent")
    assert "convcheck: --convcheck-data-dir: /nonexistent: no such directory" in out


# --------------------------------------------------------------------------- collection


def test_collection_ids_and_no_training():
    proc = collect("--convcheck-models", "lenet5", "-m", "not regression")  # regressions: own models
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
    # "none": a test with nothing to run on here (test_golden_replay without golden data)
    assert all(re.fullmatch(r"lenet5-.*-s0(-fgsm|-boundary)?|none", c) for c in cases), cases
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
    proc = collect("-m", "genetic and onnx", "--convcheck-targets", "onnx")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = ids(proc)
    # the originals' attack check comes too: the conversions' robustness is judged against it
    assert got and all(re.search(r"\[(lstm|gru)-(pytorch|keras)(-onnx)?-s0-genetic\]$", i)
                       for i in got), got
    assert {i.split("[")[0] for i in got} == {
        "test_attack_effective", "test_success_rate_preserved", "test_adversarial_agreement",
        "test_adversarial_output_equivalence"}, got


def test_profile_seeds_appear_in_ids():
    proc = collect("--convcheck-models", "gru", "--convcheck-profile", "standard",
                   "--convcheck-targets", "onnx", "-k", "accuracy_above_floor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(ids(proc)) == sorted(f"test_accuracy_above_floor[gru-{fw}-s{s}]"
                                       for fw in ("pytorch", "keras") for s in (0, 1, 2))
