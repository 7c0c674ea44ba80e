"""checks.artifact_declares fails on CoreML artifacts known to be wrong (on spec descriptions
shaped like runner.describe_coreml's), and the predictor/artifact wiring for CoreML."""
from __future__ import annotations

import copy
import re

import pytest

from convcheck import checks
from convcheck.conversion import runner
from convcheck.declarations.registry import RUNTIME_OS, RUNTIMES
from convcheck.settings import load_targets
from models import get_spec

FP16 = {"convert_to": "mlprogram", "precision": "fp16"}


def described(expected: dict) -> dict:
    """What a faithful conversion declares: the expected interface, unset output shape (as
    coremltools writes it under a ranged batch), all weights in the asked type."""
    d = copy.deepcopy({k: expected[k] for k in ("model_type", "inputs", "outputs")})
    for out in d["outputs"].values():
        out["shape"] = []
    other = "float32" if expected["weights"] == "float16" else "float16"
    d["weights"] = {expected["weights"]: 1000, other: 0}
    d["size_bytes"] = 2000
    return d


@pytest.mark.parametrize("model, framework", [("lstm", "pytorch"), ("lenet5", "keras")])
def test_faithful_artifact_passes_and_records_its_size(model, framework):
    expected = runner.coreml_expected(get_spec(model), framework, FP16)
    v = checks.artifact_declares("c", described(expected), expected)
    assert v.passed, v.message()
    assert v.measured["size_bytes"] == 2000


@pytest.mark.parametrize("break_it, match", [
    # an fp16 target that kept some weights in float32 (the PyTorch LSTM at macOS12 does)
    (lambda d: d["weights"].update(float32=131584), r"weights stored as .*expected all float16"),
    (lambda d: d.update(model_type="neuralNetwork"), r"model_type = 'neuralNetwork', expected 'mlProgram'"),
    (lambda d: d["inputs"]["input"].update(dtype="FLOAT32"), r"input dtype = 'FLOAT32', expected 'INT32'"),
    (lambda d: d["inputs"]["input"].update(shape=[[1, 1], [200, 200]]), r"input shape = \[\[1, 1\]"),
    (lambda d: d.update(inputs={"x": d["inputs"]["input"]}), r"inputs names = \['x'\]"),
    (lambda d: d["outputs"]["probabilities"].update(type="dictionaryType"),
     r"probabilities type = 'dictionaryType'"),
    (lambda d: d["outputs"]["probabilities"].update(shape=[[1, 1], [3, 3]]),
     r"probabilities shape \(past the batch\) = \[\[3, 3\]\], expected \[\[2, 2\]\]"),
])
def test_wrong_artifact_fails_with_what_differs(break_it, match):
    expected = runner.coreml_expected(get_spec("lstm"), "pytorch", FP16)
    d = described(expected)
    break_it(d)
    v = checks.artifact_declares("lstm-pytorch-coreml", d, expected)
    assert not v.passed
    assert any(re.search(match, f) for f in v.failures), v.failures


def test_coreml_targets_wiring():
    targets = load_targets()
    names = {t: runner.artifact_file(targets[t]) for t in
             ("coreml-mlprogram-fp32", "coreml-mlprogram-fp16", "coreml-neuralnetwork")}
    assert names == {"coreml-mlprogram-fp32": "model.mlpackage",
                     "coreml-mlprogram-fp16": "model.mlpackage",
                     "coreml-neuralnetwork": "model.mlmodel"}
    assert "coreml" in RUNTIMES and RUNTIME_OS["coreml"] == "macos"
