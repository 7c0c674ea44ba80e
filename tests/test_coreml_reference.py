"""Core ML conversions checked on Linux: the suite runs every CoreML ML program on the MIL
reference interpreter (convcheck.mil, runtime "coreml-reference") where Core ML does not exist,
and catches faults written into a saved .mlpackage's weights (convcheck.testing.faults): a
perturbed bias, two swapped classes, fp16-rounded weights in an fp32 model. On macOS the
interpreter is compared with Core ML itself on the same inputs (its fidelity, measured where it
can be)."""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from faulty_cache import cache_with_fault, run_suite

from convcheck.plugin import state
from convcheck.testing import faults

TARGET = "coreml-mlprogram-fp32"
CASE = "lenet5-pytorch-coreml-mlprogram-fp32-s0"


@pytest.fixture
def good_ml_program(pytestconfig):
    bench = state.bench(pytestconfig)
    if TARGET not in bench.targets:
        pytest.skip(f"target {TARGET} not selected (--convcheck-targets)")
    return bench, bench.converted("lenet5", "pytorch", TARGET, bench.profile.seeds[0])


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML itself runs here")
def test_an_ml_program_runs_on_the_reference_interpreter_off_macos(good_ml_program):
    bench, conv = good_ml_program
    assert conv.predictor.name == "coreml-reference"
    assert conv.case.runtime == "coreml-reference"
    x, _ = bench.test_set(conv.original.spec, "pytorch")
    got, want = conv.predictor.predict(x[:16]), conv.original.predictor.predict(x[:16])
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5


@pytest.mark.parametrize("fault,caught", [
    (faults.coreml_perturb_weight, r"abs_max = [\d.e-]+ > [\d.e-]+"),
    (faults.coreml_swap_classes, r"label_disagreement = [\d.e-]+ > 0"),
    (faults.coreml_fp16_weights, r"abs_max = [\d.e-]+ > [\d.e-]+"),
], ids=["perturbed-bias", "swapped-classes", "fp16-weights"])
def test_a_fault_in_a_saved_ml_program_is_caught_on_linux(good_ml_program, tmp_path, fault,
                                                          caught):
    bench, _ = good_ml_program
    cache_with_fault(bench, tmp_path, "lenet5", TARGET, fault)
    rc, out = run_suite(bench, "tests_conformance/test_equivalence.py",
                        "--convcheck-models=lenet5", f"--convcheck-targets={TARGET}",
                        f"--convcheck-cache-dir={tmp_path / 'cache'}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}", "-k", "pytorch")
    assert rc == 1, out
    assert re.search(rf"{CASE}: {caught}", out), out


def test_the_fp16_weights_fault_rounds_every_weight_and_keeps_the_program(good_ml_program,
                                                                         tmp_path):
    _, conv = good_ml_program
    bad = faults.coreml_fp16_weights(conv.path, tmp_path / "bad.mlpackage")
    before, after = faults.mlpackage_weights(conv.path), faults.mlpackage_weights(bad)
    assert [w["name"] for w in before] == [w["name"] for w in after] and len(after) >= 9
    for w in after:
        with open(w["file"], "rb") as f:
            f.seek(w["offset"])
            v = np.frombuffer(f.read(w["size"]), w["dtype"])
        assert np.array_equal(v, v.astype(np.float16).astype(np.float32)), w["name"]


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="needs Core ML (macOS) to compare with")
def test_the_interpreter_agrees_with_core_ml(good_ml_program):
    """Its fidelity, where Core ML exists: both on the same test inputs."""
    from convcheck.runtimes.coreml import CoreMLPredictor, ReferencePredictor

    bench, conv = good_ml_program
    x, _ = bench.test_set(conv.original.spec, "pytorch")
    core_ml = CoreMLPredictor.load(conv.path).predict(x[:64])
    reference = ReferencePredictor(conv.path).predict(x[:64])
    diff = float(np.abs(core_ml - reference).max())
    print(f"{conv.id}: |Core ML - coreml-reference| max {diff:.3g}")
    assert diff <= 1.1e-4, diff  # coremltools' own fp32 CPU bound (tolerances.toml)
