"""The user projects in examples/, each run as its team would run it: plain pytest in a copy of
its directory (its own rootdir, settings, models, data and cache), as a subprocess.

What each must show: every property family ran on it or said why it cannot apply (skipped with
its reason, never passed), the figures went to its records, and a wrong shipped artifact fails
with the failing metric named.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name: str, tmp_path: Path, *args: str, setup=None) -> dict:
    """pytest in a copy of examples/<name>; {test id: (outcome, message)}, plus the records."""
    project = tmp_path / name
    shutil.copytree(EXAMPLES / name, project, ignore=shutil.ignore_patterns(".cache", "reports"))
    if setup:
        setup(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVCHECK_", "PYTEST_"))}
    junit = tmp_path / f"{name}.xml"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--benchmark-disable",
           "-q", f"--junitxml={junit}", *args]
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True,
                          timeout=1200)
    out = proc.stdout + proc.stderr
    assert junit.exists(), f"no report; exit {proc.returncode}:\n{out[-4000:]}"
    results = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test = case.get("name")
        for kind in ("failure", "error", "skipped"):
            el = case.find(kind)
            if el is not None:
                results[test] = (kind, (el.get("message") or "") + (el.text or ""))
                break
        else:
            results[test] = ("passed", "")
    runs = sorted((project / "reports" / "runs").glob("*/records.jsonl"))
    records = [json.loads(line) for f in runs for line in f.read_text().splitlines()]
    return {"results": results, "records": records, "returncode": proc.returncode, "out": out}


def outcome(run: dict, test: str) -> str:
    assert test in run["results"], (f"{test} was not collected; collected: "
                                    f"{sorted(run['results'])[:40]}")
    return run["results"][test][0]


def passed(run: dict, *tests: str) -> None:
    for t in tests:
        kind, msg = run["results"].get(t, ("not collected", ""))
        assert kind == "passed", f"{t}: {kind}: {msg[:2000]}"


def skipped_because(run: dict, test: str, *words: str) -> None:
    kind, msg = run["results"].get(test, ("not collected", ""))
    assert kind == "skipped", f"{test}: {kind}, expected a skip: {msg[:500]}"
    for w in words:
        assert w in msg, f"{test}: skip reason {msg!r} does not say {w!r}"


# Skips every project has: no golden data given to replay; a Core ML conversion run on the MIL
# reference interpreter off macOS is not timed (its speed is not Core ML's).
ANY_PROJECT = ("no golden data to replay", "runs on coreml-reference here")


def skips_explained(run: dict, *allowed: str) -> None:
    """Every skip of the run gives one of the reasons this project's cases must have."""
    for test, (kind, msg) in run["results"].items():
        if kind == "skipped":
            assert any(a in msg for a in (*allowed, *ANY_PROJECT)), \
                f"{test}: unexpected skip: {msg[:300]}"


def coreml_checked_here(run: dict, case: str) -> None:
    """A Core ML ML program's equivalence checks ran: on Core ML on macOS, elsewhere on the MIL
    reference interpreter (its records say which)."""
    passed(run, *(f"{t}[{case}]" for t in ("test_output_equivalence", "test_label_agreement",
                                            "test_equivalence_property")))
    runtimes = {r.get("runtime") for r in run["records"] if r["case"] == case
                and r["check"] == "output_equivalence"}
    assert runtimes == ({None} if sys.platform == "darwin" else {"coreml-reference"}), runtimes


def measured(run: dict, case: str, check: str) -> dict:
    found = [r["measured"] for r in run["records"] if r["case"] == case and r["check"] == check]
    assert found, f"no {check} record for {case}"
    return found[0]


def test_pytorch_model_outside_the_zoo(tmp_path):
    """A CNN on scikit-learn's digits that convcheck trains, converted with both torch
    exporters and to CoreML: every family runs on it, robustness and properties included."""
    run = run_example("pytorch-digits", tmp_path)
    assert run["returncode"] == 0, run["out"][-4000:]
    ids = ("digits-cnn-pytorch-onnx-s0", "digits-cnn-pytorch-onnx-legacy-s0")
    passed(run, "test_accuracy_above_floor[digits-cnn-pytorch-s0]",
           "test_attack_effective[digits-cnn-pytorch-s0-fgsm]",
           "test_attack_effective[digits-cnn-pytorch-s0-boundary]",
           "test_converts[digits-cnn-pytorch-coreml-mlprogram-fp32-s0]",
           "test_coreml_artifact_as_declared[digits-cnn-pytorch-coreml-mlprogram-fp32-s0]",
           *(f"{t}[{i}]" for i in ids for t in (
               "test_output_equivalence", "test_label_agreement", "test_accuracy_preserved",
               "test_size", "test_equivalence_property", "test_speed_ratio")),
           *(f"{t}[{i}-{a}]" for i in ids for a in ("fgsm", "boundary") for t in (
               "test_success_rate_preserved", "test_adversarial_agreement")))
    coreml_checked_here(run, "digits-cnn-pytorch-coreml-mlprogram-fp32-s0")
    for i in ids:  # R is bounded by the per-attack deltas: recorded, said so, not passed
        skipped_because(run, f"test_robustness_indicator[{i}]", "recorded, not judged")
    m = measured(run, "digits-cnn-pytorch-onnx-s0", "output_equivalence")
    assert 0 <= m["abs_max"] < 2e-5, m


def test_keras_regression_from_a_keras_file(tmp_path):
    """A .keras file with a regression output, converted by tf2onnx and by the team's own
    converter (Keras' model.export): label checks and attacks say they cannot apply."""
    run = run_example("keras-regression", tmp_path)
    assert run["returncode"] == 0, run["out"][-4000:]
    for target in ("onnx", "keras-export"):
        case = f"diabetes-mlp-keras-{target}"
        passed(run, f"test_converts[{case}]", f"test_output_equivalence[{case}]",
               f"test_outputs_finite[{case}]", f"test_size[{case}]",
               f"test_equivalence_property[{case}]")
        skipped_because(run, f"test_label_agreement[{case}]", "regression model")
        skipped_because(run, f"test_accuracy_preserved[{case}]", "regression model")
        skipped_because(run, f"test_robustness_indicator[{case}-no-attack]", "no attack applies",
                        "needs a classifier")
    skipped_because(run, "test_accuracy_above_floor[diabetes-mlp-keras]", "regression model")
    m = measured(run, "diabetes-mlp-keras-keras-export", "output_equivalence")
    assert 0 <= m["abs_max"] < 1e-5, m


def test_shipped_onnx_checked_as_it_is(tmp_path):
    run = run_example("shipped-onnx", tmp_path)
    assert run["returncode"] == 0, run["out"][-4000:]
    case = "digits-mlp-pytorch-shipped-onnx"
    passed(run, f"test_converts[{case}]", f"test_output_equivalence[{case}]",
           f"test_label_agreement[{case}]", f"test_accuracy_preserved[{case}]",
           f"test_size[{case}]", f"test_equivalence_property[{case}]",
           "test_accuracy_above_floor[digits-mlp-pytorch]")
    skipped_because(run, f"test_robustness_indicator[{case}-no-attack]", "no attack applies",
                    "fgsm, boundary: needs an image input", "genetic: substitutes words")
    # nothing was converted: the case is the team's own file
    assert not list((tmp_path / "shipped-onnx" / ".cache").rglob("*.onnx"))


def test_wrong_shipped_onnx_is_caught(tmp_path):
    """The shipped file replaced by one whose last bias is 1 % off: the equivalence check fails
    and names abs_max; the size check still passes (the fault is in the numbers, not the size)."""
    from convcheck.testing import faults

    def break_it(project: Path) -> None:
        good = project / "model.onnx"
        faults.perturb_weight(good, tmp_path / "bad.onnx", scale=0.01)
        shutil.copy(tmp_path / "bad.onnx", good)

    run = run_example("shipped-onnx", tmp_path, setup=break_it)
    assert run["returncode"] == 1, run["out"][-4000:]
    case = "digits-mlp-pytorch-shipped-onnx"
    kind, msg = run["results"][f"test_output_equivalence[{case}]"]
    assert kind == "failure" and "abs_max" in msg and case in msg, msg
    passed(run, f"test_size[{case}]")


# Faulty copies of the team's shipped ONNX file, each declared as one more shipped artifact:
# name -> (how it is made, the test that must fail, the metric it must name).
FAULTY = {
    "faulty-row": ("class 3's classifier row scaled by 1.05", "test_output_equivalence", "abs_max"),
    "faulty-fp16": ("a float16 round trip of every weight", "test_output_equivalence", "abs_max"),
    "faulty-classes": ("classes 0 and 1 swapped", "test_label_agreement", "label_disagreement"),
    "faulty-bias": ("the largest classifier bias zeroed", "test_output_equivalence", "abs_max"),
    "faulty-hw": ("height and width swapped inside the graph", "test_output_equivalence",
                  "abs_max"),
    "faulty-int8": ("onnxruntime's dynamic int8 quantization", "test_output_equivalence",
                    "abs_max"),
    # outputs unchanged: its 8 MatMuls of 1024x1024 weights make the file 393x the original's;
    # its slow-down is the speed gate's to catch, which stays silent on a loaded machine (a
    # wall-clock verdict is no assertion for an ordinary test: benchmarks/speed_gate.py)
    "faulty-slow": ("an extra branch of MatMuls whose result is multiplied by zero",
                    "test_size", "size_ratio"),
}


def _faulty_copies(project: Path) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from onnxruntime.quantization import quantize_dynamic

    from convcheck.testing import faults

    src = project / "net.onnx"
    model = onnx.load(src)
    for init in model.graph.initializer:
        if init.name == "8.weight":
            w = numpy_helper.to_array(init).copy()
            w[3] *= 1.05
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, project / "faulty-row.onnx")
    faults.fp16_round_trip(src, project / "faulty-fp16.onnx")
    faults.swap_output_classes(src, project / "faulty-classes.onnx", i=0, j=1)
    faults.perturb_weight(src, project / "faulty-bias.onnx", scale=-1.0)
    faults.swap_input_hw(src, project / "faulty-hw.onnx")
    quantize_dynamic(str(src), str(project / "faulty-int8.onnx"))
    faults.slow_down(src, project / "faulty-slow.onnx")
    toml = project / "convcheck.toml"
    shipped = ", ".join(f'{name} = "{name}.onnx"' for name in FAULTY)
    toml.write_text(toml.read_text().replace('artifacts = { shipped = "net.onnx" }',
                                             f'artifacts = {{ shipped = "net.onnx", {shipped} }}'))
    assert all((project / f"{name}.onnx").exists() for name in FAULTY) and np


def test_torchscript_image_classifier_with_shipped_onnx(tmp_path):
    """A MobileNet-style CNN the team saved as TorchScript (and as a torch.export program),
    with the ONNX file it ships: FGSM and Boundary attack it; the dynamo exporter, which cannot
    take TorchScript, is said to before converting (no setup error); the good shipped file
    passes, and each faulty copy of it fails, naming its metric."""
    run = run_example("torchscript-image", tmp_path, setup=_faulty_copies)
    res = run["results"]
    assert not [t for t, (k, _) in res.items() if k == "error"], run["out"][-4000:]
    m = "digits-mobilenet-pytorch"
    passed(run, f"test_original_answers[{m}]", f"test_accuracy_above_floor[{m}]",
           f"test_attack_effective[{m}-fgsm]", f"test_attack_effective[{m}-boundary]",
           *(f"{t}[{m}-{target}]" for target in ("shipped", "onnx-legacy") for t in (
               "test_converts", "test_output_equivalence", "test_label_agreement",
               "test_accuracy_preserved", "test_size", "test_equivalence_property",
               "test_speed_ratio")),
           *(f"{t}[{m}-{target}-{a}]" for target in ("shipped", "onnx-legacy")
             for a in ("fgsm", "boundary") for t in (
               "test_success_rate_preserved", "test_adversarial_agreement")))
    skipped_because(run, f"test_converts[{m}-onnx]", "dynamo exporter", "TorchScript",
                    "target onnx-legacy")
    passed(run, f"test_converts[{m}-coreml-mlprogram-fp32]")
    coreml_checked_here(run, f"{m}-coreml-mlprogram-fp32")
    # the torch.export program: both exporters, attacks through ART (its eval() is a no-op)
    p = "digits-mobilenet-pt2-pytorch"
    passed(run, *(f"{t}[{p}-{target}]" for target in ("onnx", "onnx-legacy") for t in (
        "test_converts", "test_output_equivalence", "test_label_agreement")),
           f"test_attack_effective[{p}-fgsm]", f"test_attack_effective[{p}-boundary]")
    for name, (what, test, metric) in FAULTY.items():
        kind, msg = res[f"{test}[{m}-{name}]"]
        assert kind == "failure" and f"{m}-{name}: " in msg and metric in msg, (
            name, what, kind, msg[:1000])
    skips_explained(run, "needs macos", "dynamo exporter", "recorded, not judged")
    assert run["returncode"] == 1, run["out"][-3000:]


def test_project_registering_its_own_exporter_runtime_and_data_set(tmp_path):
    """A register_* call in a module the project's settings name is in force in the child
    that converts too: the team's exporter writes its own format, the team's runtime
    (onnx.reference) runs it, on the team's registered data set."""
    run = run_example("own-registries", tmp_path)
    assert run["returncode"] == 0, run["out"][-4000:]
    case = "wine-mlp-pytorch-reference"
    passed(run, "test_original_answers[wine-mlp-pytorch]",
           "test_accuracy_above_floor[wine-mlp-pytorch]",
           *(f"{t}[{c}]" for c in (case, "wine-mlp-pytorch-onnx-legacy") for t in (
               "test_converts", "test_output_equivalence", "test_label_agreement",
               "test_accuracy_preserved", "test_equivalence_property")))
    m = measured(run, case, "output_equivalence")
    assert 0 <= m["abs_max"] < 1e-5, m
    data = {r["data"]["source"] for r in run["records"] if "data" in r}
    assert data == {"scikit-learn load_wine"}, data
    skips_explained(run, "no attack applies", "no CoreML conversion selected")


def test_transformers_models_nobody_here_wrote(tmp_path):
    """Hugging Face BERT, GPT-2 and ViT classes (tiny configs, seeded weights, built offline),
    declared with `load`, on unlabelled data: a first run with findings only. Every ONNX
    conversion is equivalent; what needs labels skips saying so; the drawn token sequences keep
    to the declared 1,000-word vocabulary and right padding; what the run found (a CoreML
    converter failure, file sizes) is recorded as expected failures with measured figures."""
    pytest.importorskip("transformers")
    run = run_example("hf-transformers", tmp_path)
    res = run["results"]
    assert not [t for t, (k, _) in res.items() if k == "error"], run["out"][-4000:]
    assert run["returncode"] == 0, run["out"][-4000:]
    for m, targets in (("hf-bert", ("onnx", "onnx-legacy")), ("hf-gpt2", ("onnx", "onnx-legacy")),
                       ("hf-vit", ("onnx", "onnx-legacy"))):
        passed(run, f"test_original_answers[{m}-pytorch]",
               *(f"{t}[{m}-pytorch-{target}]" for target in targets for t in (
                   "test_converts", "test_output_equivalence", "test_label_agreement",
                   "test_outputs_finite", "test_equivalence_property", "test_speed_ratio")))
        skipped_because(run, f"test_accuracy_above_floor[{m}-pytorch]", "no labels")
        skipped_because(run, f"test_accuracy_preserved[{m}-pytorch-onnx]", "no labels")
        skipped_because(run, f"test_robustness_indicator[{m}-pytorch-onnx-no-attack]",
                        "needs labels")
    passed(run, "test_converts[hf-vit-pytorch-coreml-mlprogram-fp32]")
    assert outcome(run, "test_converts[hf-bert-pytorch-coreml-mlprogram-fp32]") == "skipped"
    assert "only 0-dimensional arrays" in res["test_converts[hf-bert-pytorch-coreml-mlprogram-fp32]"][1]
    # the property drew the declared domain: nothing outside the vocabulary reached a model
    prop = measured(run, "hf-bert-pytorch-onnx", "property_equivalence")
    assert prop["examples"] > 0 and prop["labels_compared"] > 0, prop
    skips_explained(run, "no labels", "needs labels", "needs macos", "recorded, not judged",
                    "which failed: see", "(measured: ")  # the last: an expected failure


def test_keras_classifier_from_keras_and_h5_files(tmp_path):
    """A Keras image classifier shipped as .keras (and the same network as .h5): tf2onnx and
    CoreML convert it, FGSM and Boundary attack it, every family runs or says why not."""
    run = run_example("keras-classifier", tmp_path)
    assert run["returncode"] == 0, run["out"][-4000:]
    for m, targets in (("digits-keras-keras", ("onnx",)), ("digits-keras-h5-keras", ("onnx",))):
        passed(run, f"test_original_answers[{m}]", f"test_accuracy_above_floor[{m}]",
               f"test_attack_effective[{m}-fgsm]", f"test_attack_effective[{m}-boundary]",
               *(f"{t}[{m}-{target}]" for target in targets for t in (
                   "test_converts", "test_output_equivalence", "test_label_agreement",
                   "test_accuracy_preserved", "test_equivalence_property", "test_speed_ratio")),
               *(f"{t}[{m}-onnx-{a}]" for a in ("fgsm", "boundary") for t in (
                   "test_success_rate_preserved", "test_adversarial_agreement")))
    passed(run, "test_converts[digits-keras-keras-coreml-mlprogram-fp32]",
           "test_coreml_artifact_as_declared[digits-keras-keras-coreml-mlprogram-fp32]")
    coreml_checked_here(run, "digits-keras-keras-coreml-mlprogram-fp32")
    skips_explained(run, "needs macos", "recorded, not judged")
