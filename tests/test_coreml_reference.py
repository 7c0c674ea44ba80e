"""Core ML conversions checked on Linux: the suite runs every CoreML ML program on the MIL
reference interpreter (convcheck.mil) and every neuralnetwork model on the layer interpreter
(convcheck.nnspec), as runtime "coreml-reference", where Core ML does not exist, and catches
faults written into a saved model's weights (convcheck.testing.faults): a perturbed bias, two
swapped classes, fp16-rounded weights in an fp32 model. On macOS the interpreters are compared
with Core ML itself on the same inputs (their fidelity, measured where it can be)."""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from faulty_cache import cache_with_fault, run_suite

from convcheck.plugin import state
from convcheck.testing import faults

TARGET = "coreml-mlprogram-fp32"
FORMATS = ["coreml-mlprogram-fp32", "coreml-neuralnetwork"]


def _converted(pytestconfig, target):
    bench = state.bench(pytestconfig)
    if target not in bench.targets:
        pytest.skip(f"target {target} not selected (--convcheck-targets)")
    return bench, bench.converted("lenet5", "pytorch", target, bench.profile.seeds[0])


@pytest.fixture
def good_ml_program(pytestconfig):
    return _converted(pytestconfig, TARGET)


@pytest.fixture(params=FORMATS)
def good_coreml(pytestconfig, request):
    """LeNet-5 (PyTorch) converted to each CoreML format."""
    return _converted(pytestconfig, request.param)


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML itself runs here")
def test_a_coreml_model_runs_on_the_reference_interpreter_off_macos(good_coreml):
    bench, conv = good_coreml
    assert conv.predictor.name == "coreml-reference"
    assert conv.case.runtime == "coreml-reference"
    x, _ = bench.test_set(conv.original.spec, "pytorch")
    got, want = conv.predictor.predict(x[:16]), conv.original.predictor.predict(x[:16])
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5


@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML itself runs here")
def test_a_batch_is_shared_out_among_the_runtimes_threads(good_coreml, monkeypatch):
    """Each thread interprets its share of the samples; together they give what one call
    gives, in order. A property test's small batch runs whole."""
    import threading

    from convcheck import frameworks
    from convcheck.runtimes import coreml

    monkeypatch.setattr(frameworks, "_threads", 2)
    bench, conv = good_coreml
    x, _ = bench.test_set(conv.original.spec, "pytorch")
    x = x[:100]
    interpreter, calls = conv.predictor.interpreter, []
    run = interpreter.run
    both = threading.Barrier(2, timeout=30)  # the shares of one batch run at the same time

    def counted(feeds):
        n = len(next(iter(feeds.values())))
        calls.append((threading.get_ident(), n))
        if n == 50:
            both.wait()
        return run(feeds)

    monkeypatch.setattr(interpreter, "run", counted)
    shared = conv.predictor.predict(x)
    assert sorted(n for _, n in calls) == [50, 50]
    assert len({t for t, _ in calls}) == 2  # two threads
    calls.clear()
    monkeypatch.setattr(frameworks, "_threads", 1)
    whole = conv.predictor.predict(x)
    assert [n for _, n in calls] == [100]
    np.testing.assert_allclose(shared, whole, rtol=0, atol=1e-6)
    calls.clear()
    monkeypatch.setattr(frameworks, "_threads", 2)
    conv.predictor.predict(x[:8])
    assert [n for _, n in calls] == [8]
    assert coreml._shares(31, 2) == [slice(0, 31)] and coreml._shares(32, 4) == [
        slice(0, 16), slice(16, 32)]


@pytest.mark.parametrize("fault,caught", [
    (faults.coreml_perturb_weight, r"abs_max = [\d.e-]+ > [\d.e-]+"),
    (faults.coreml_swap_classes, r"label_disagreement = [\d.e-]+ > 0"),
    (faults.coreml_fp16_weights, r"abs_max = [\d.e-]+ > [\d.e-]+"),
], ids=["perturbed-bias", "swapped-classes", "fp16-weights"])
def test_a_fault_in_a_saved_coreml_model_is_caught_on_linux(good_coreml, tmp_path, fault,
                                                            caught):
    bench, conv = good_coreml
    target = conv.target.name
    cache_with_fault(bench, tmp_path, "lenet5", target, fault)
    rc, out = run_suite(bench, "tests_conformance/test_equivalence.py",
                        "--convcheck-models=lenet5", f"--convcheck-targets={target}",
                        f"--convcheck-cache-dir={tmp_path / 'cache'}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}", "-k", "pytorch")
    assert rc == 1, out
    assert re.search(rf"{conv.case.id}: {caught}", out), out


def test_the_neuralnetwork_faults_change_only_what_they_name(pytestconfig, tmp_path):
    """perturbed bias: one value of the last dense layer's bias; fp16 weights: every weight
    rounded to float16, nothing else changed."""
    import coremltools as ct

    _, conv = _converted(pytestconfig, "coreml-neuralnetwork")

    def dense(path):
        p = [lay for lay in ct.utils.load_spec(str(path)).neuralNetwork.layers
             if lay.WhichOneof("layer") == "innerProduct"][-1].innerProduct
        return np.asarray(p.weights.floatValue), np.asarray(p.bias.floatValue)
    w0, b0 = dense(conv.path)
    w1, b1 = dense(faults.coreml_perturb_weight(conv.path, tmp_path / "p.mlmodel"))
    assert np.array_equal(w0, w1) and np.count_nonzero(b0 != b1) == 1
    w2, b2 = dense(faults.coreml_fp16_weights(conv.path, tmp_path / "h.mlmodel"))
    assert np.array_equal(w2, w0.astype(np.float16)) and not np.array_equal(w2, w0)


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
def test_the_interpreter_agrees_with_core_ml(good_coreml):
    """Its fidelity, where Core ML exists: both on the same test inputs."""
    from convcheck.runtimes.coreml import CoreMLPredictor, ReferencePredictor

    bench, conv = good_coreml
    x, _ = bench.test_set(conv.original.spec, "pytorch")
    core_ml = CoreMLPredictor.load(conv.path).predict(x[:64])
    reference = ReferencePredictor(conv.path).predict(x[:64])
    diff = float(np.abs(core_ml - reference).max())
    print(f"{conv.id}: |Core ML - coreml-reference| max {diff:.3g}")
    assert diff <= 1.1e-4, diff  # coremltools' own fp32 CPU bound (tolerances.toml)
