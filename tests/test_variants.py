"""Precision and optimisation variants (convcheck.conversion.variants, targets with `from` and
`variant`): each is what it says it is, each is made from the float32 conversion and judged by
deployment bounds, and each fault is caught by the check meant for it: a calibration on constant
inputs (labels), a variant that kept its float32 weights (size, against the conversion it came
from)."""
from __future__ import annotations

import re
import shutil

import numpy as np
import onnx
import pytest
from faulty_cache import cache_with_fault, run_suite

from convcheck import checks
from convcheck.conversion import variants
from convcheck.plugin import state
from convcheck.runtimes import OrtPredictor, predict_all
from convcheck.settings import ConfigError, load_targets

MODEL = "lenet5"


def _types(path) -> tuple[set, set]:
    m = onnx.load(str(path))
    return ({n.op_type for n in m.graph.node},
            {onnx.helper.tensor_dtype_to_np_dtype(t.data_type) for t in m.graph.initializer})


@pytest.fixture
def base(bench, good_conversion):
    return bench, good_conversion(MODEL, "pytorch")


def _lookup(pytestconfig, target):
    tol = state.run(pytestconfig).tolerances
    return lambda key: tol.lookup(key, target=target, framework="pytorch", model=MODEL,
                                  format="onnx", profile=state.bench(pytestconfig).profile.name)


@pytest.mark.parametrize("kind,ops,dtype", [
    ("fp16", {"Conv"}, np.float16),
    ("int8-dynamic", {"DynamicQuantizeLinear", "MatMulInteger"}, np.int8),
    ("int8-static", {"QuantizeLinear", "DequantizeLinear"}, np.int8),
    ("optimized", set(), np.float32),
])
def test_each_variant_is_what_it_says(base, tmp_path, kind, ops, dtype):
    bench, conv = base
    x, _ = bench.test_set(conv.original.spec, "pytorch")
    dst = variants.make({"kind": kind, "calibration": 50}, conv.path, tmp_path / "v.onnx",
                        x[:50] if kind == "int8-static" else None)
    found_ops, found_dtypes = _types(dst)
    assert ops <= found_ops, found_ops
    assert np.dtype(dtype) in found_dtypes, found_dtypes
    m = onnx.load(str(dst))  # inputs and outputs stay float32 for every variant
    assert {i.type.tensor_type.elem_type for i in [*m.graph.input, *m.graph.output]} == {
        onnx.TensorProto.FLOAT}
    out = OrtPredictor.load(dst).predict(x[:8])
    assert out.shape == (8, 10) and np.isfinite(out).all()


def test_static_quantization_needs_training_samples(base, tmp_path):
    _, conv = base
    with pytest.raises(variants.VariantError, match="no training samples to calibrate on"):
        variants.make({"kind": "int8-static", "calibration": 10}, conv.path, tmp_path / "v.onnx")


def test_calibration_on_constant_inputs_is_caught_by_the_labels(pytestconfig, base, tmp_path):
    """Calibrated on blank images, the activations' ranges are wrong for real digits."""
    bench, conv = base
    x, labels = bench.test_set(conv.original.spec, "pytorch")
    ds = bench.dataset(conv.original.spec)
    train = conv.original.spec.to_framework_layout(ds.x_train[:200], "pytorch")
    lookup = _lookup(pytestconfig, "onnx-int8-static")
    ref = bench.outputs(conv.original)
    verdicts = {}
    for name, calibration in (("training", train), ("constant", np.zeros_like(train))):
        path = variants.make({"kind": "int8-static", "calibration": 200}, conv.path,
                             tmp_path / f"{name}.onnx", calibration)
        got = predict_all(OrtPredictor.load(path), x)
        verdicts[name] = checks.label_agreement(f"{name}-calibrated", ref, got, lookup)
    assert verdicts["training"].passed, verdicts["training"].message()
    assert not verdicts["constant"].passed, verdicts["constant"].measured
    assert "label_disagreement" in verdicts["constant"].failed_metrics()


def test_a_variant_that_kept_its_float32_weights_fails_its_size_check(pytestconfig, tmp_path):
    bench = state.bench(pytestconfig)
    target = "onnx-int8-dynamic"
    if target not in bench.targets:
        pytest.skip(f"target {target} not selected (--convcheck-targets)")
    base_path = bench.converted(MODEL, "pytorch", "onnx", bench.profile.seeds[0]).path

    def kept_float32(src, dst):  # the float32 graph shipped under the variant's name
        return shutil.copyfile(base_path, dst)
    cache_with_fault(bench, tmp_path, MODEL, target, kept_float32)
    rc, out = run_suite(bench, "tests_conformance/test_performance.py",
                        f"--convcheck-models={MODEL}", f"--convcheck-targets=onnx,{target}",
                        f"--convcheck-cache-dir={tmp_path / 'cache'}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}", "-k",
                        "test_size and pytorch")
    assert rc == 1, out
    assert re.search(rf"{MODEL}-pytorch-{target}-s0: size_ratio = 1 > 0.4 .*onnx conversion "
                     r"[\d,]+ bytes", out), out


@pytest.mark.parametrize("target,bound", [("coreml-mlprogram-int8", "0.75"),
                                          ("coreml-mlprogram-palettized", "0.65")])
def test_a_coreml_variant_that_kept_its_fp16_weights_fails_its_size_check(pytestconfig, tmp_path,
                                                                          target, bound):
    """The fp16 program shipped under a compressed variant's name: its size check, against the
    program it was made from, fails with both sizes; its outputs alone would pass."""
    bench = state.bench(pytestconfig)
    if target not in bench.targets:
        pytest.skip(f"target {target} not selected (--convcheck-targets)")
    base = bench.converted(MODEL, "pytorch", "coreml-mlprogram-fp16", bench.profile.seeds[0])

    def kept_fp16(src, dst):
        shutil.copytree(base.path, dst)
        return dst
    cache_with_fault(bench, tmp_path, MODEL, target, kept_fp16)
    rc, out = run_suite(bench, "tests_conformance/test_performance.py",
                        f"--convcheck-models={MODEL}",
                        f"--convcheck-targets=coreml-mlprogram-fp16,{target}",
                        f"--convcheck-cache-dir={tmp_path / 'cache'}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}", "-k",
                        f"test_size and pytorch and {target}")
    assert rc == 1, out
    assert re.search(rf"{MODEL}-pytorch-{target}-s0: size_ratio = 1 > {bound} "
                     r".*coreml-mlprogram-fp16 conversion [\d,]+ bytes", out), out


@pytest.mark.parametrize("kind,op", [({"kind": "palettize", "nbits": 6}, "constexpr_lut_to_dense"),
                                     ({"kind": "int8-weights"}, "constexpr_affine_dequantize")])
def test_each_coreml_variant_is_what_it_says_and_runs_on_the_interpreter(pytestconfig, tmp_path,
                                                                         kind, op):
    """Made from the fp16 ML program by coremltools.optimize.coreml: its weights are compressed
    ops, it is smaller, and the MIL interpreter decompresses them by the op's own definition."""
    from convcheck.mil import load_program
    from convcheck.runtimes.coreml import ReferencePredictor

    bench = state.bench(pytestconfig)
    if "coreml-mlprogram-fp16" not in bench.targets:
        pytest.skip("target coreml-mlprogram-fp16 not selected (--convcheck-targets)")
    conv = bench.converted(MODEL, "pytorch", "coreml-mlprogram-fp16", bench.profile.seeds[0])
    dst = variants.make(kind, conv.path, tmp_path / "v.mlpackage")
    ops = {o.op_type for o in load_program(dst).functions["main"].operations}
    assert op in ops, ops
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    base = sum(f.stat().st_size for f in conv.path.rglob("*") if f.is_file())
    assert size < 0.7 * base, (size, base)
    x, _ = bench.test_set(conv.original.spec, "pytorch")
    compressed = ReferencePredictor(dst)
    got, ref = compressed.predict(x[:64]), ReferencePredictor(conv.path).predict(x[:64])
    assert np.isfinite(got).all() and (got.argmax(1) == ref.argmax(1)).mean() >= 0.95
    assert 0 < np.abs(got - ref).max() < 0.2  # compressed: close, and not the same weights
    # decompressed once per interpreter, not per run; a later run computes the same
    kept = compressed.interpreter._decompressed
    assert kept and all(not v.flags.writeable for values in kept.values() for v in values)
    before = {k: [id(v) for v in values] for k, values in kept.items()}
    np.testing.assert_array_equal(compressed.predict(x[:64]), got)
    assert {k: [id(v) for v in values] for k, values in kept.items()} == before


@pytest.mark.parametrize("body,message", [
    ('[v]\nfrom = "nope"\nvariant = { kind = "fp16" }', "v.from 'nope' is no target"),
    ('[v]\nfrom = "onnx"\nvariant = { kind = "int4" }', "v.variant.kind 'int4' unknown"),
    ('[v]\nfrom = "onnx"\nvariant = { kind = "int8-static" }',
     "v.variant.calibration must be a number of training samples"),
    ('[v]\nfrom = "onnx"\nvariant = { kind = "fp16" }\npytorch = { exporter = "dynamo" }',
     "[v] is a variant (from, variant)"),
    ('[v]\nfrom = "coreml-mlprogram-fp32"\nvariant = { kind = "fp16" }',
     "a 'fp16' variant is made from a onnx conversion"),
    ('[v]\nfrom = "onnx"\nvariant = { kind = "palettize", nbits = 6 }',
     "a 'palettize' variant is made from a coreml conversion"),
    ('[v]\nfrom = "coreml-mlprogram-fp32"\nvariant = { kind = "palettize", nbits = 6 }',
     "compressed weights need an mlprogram for macOS13 or later"),
    ('[v]\nfrom = "coreml-neuralnetwork"\nvariant = { kind = "int8-weights" }',
     "its pytorch conversion is a neuralnetwork for macOS11"),
    ('[v]\nfrom = "coreml-mlprogram-fp16"\nvariant = { kind = "palettize", nbits = 5 }',
     "v.variant.nbits must be 1, 2, 3, 4, 6 or 8"),
    ('[v]\nvariant = { kind = "fp16" }', "needs both `from`"),
])
def test_a_malformed_variant_target_is_refused_naming_the_key(tmp_path, body, message):
    path = tmp_path / "targets.toml"
    path.write_text(body + "\n")
    from convcheck.settings.files import _files

    with pytest.raises(ConfigError) as e:
        load_targets([*_files("targets", None)[:1], path])
    assert message in str(e.value), str(e.value)


def test_a_runtime_key_that_names_no_stand_in_is_refused(tmp_path):
    """`runtime` in a tolerance override or an expected failure must name a stand-in runtime
    (registry.STAND_INS): a typo would otherwise match nothing, silently."""
    from convcheck.settings import load_expected_failures, load_tolerances

    tol = tmp_path / "tolerances.toml"
    tol.write_text('[default]\nabs_max = 1e-5\n[[override]]\nruntime = "coreml-refrence"\n'
                   'abs_max = 1e-4\nreason = "typo"\n')
    with pytest.raises(ConfigError, match="runtime = 'coreml-refrence' is unknown; valid: "
                                          "coreml-reference"):
        load_tolerances([tol])
    xf = tmp_path / "expected_failures.toml"
    xf.write_text('[[xfail]]\ncase = "x"\nruntime = "coreml-refrence"\nreason = "r"\n'
                  'measured = "m"\nexpect = { failure = "f" }\n')
    with pytest.raises(ConfigError, match="runtime = 'coreml-refrence' is no stand-in runtime"):
        load_expected_failures([xf])


def test_a_failing_int8_variant_names_the_operation_that_loses_the_most(pytestconfig, tmp_path):
    """Calibrated on blank images, the variant's labels fail; the failure names where it loses
    against the float32 conversion it was made from (onnxruntime's qdq_loss_debug), in SQNR,
    and its worst quantized weight: not the original's first layer, which every variant
    departs from by design."""
    bench = state.bench(pytestconfig)
    target = "onnx-int8-static"
    if target not in bench.targets:
        pytest.skip(f"target {target} not selected (--convcheck-targets)")

    def blank_calibration(src, dst):
        n = bench.targets[target].variant["calibration"]
        x, _ = bench.test_set(bench.original(MODEL, "pytorch", 0).spec, "pytorch")
        return variants.make(bench.targets[target].variant, base_path, dst,
                             np.zeros_like(x[:n]))
    base_path = bench.converted(MODEL, "pytorch", "onnx", bench.profile.seeds[0]).path
    cache_with_fault(bench, tmp_path, MODEL, target, blank_calibration)
    rc, out = run_suite(bench, "tests_conformance/test_equivalence.py",
                        f"--convcheck-models={MODEL}", f"--convcheck-targets=onnx,{target}",
                        f"--convcheck-cache-dir={tmp_path / 'cache'}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}", "-k",
                        f"test_label_agreement and pytorch and {target}")
    assert rc == 1, out
    assert re.search(rf"label_disagreement = [\d.]+ > 0.02", out), out
    found = re.search(rf"operation that loses the most against {MODEL}-pytorch-onnx-s0: "
                      r"(\w+) '[^']+'.*: SQNR ([\d.-]+) dB.* at its inputs, ([\d.-]+) dB at its "
                      r"output \(onnxruntime's qdq_loss_debug, (\d+) tensors compared\)", out)
    assert found, out
    assert float(found[3]) < float(found[2]) and int(found[4]) > 5, found.groups()
    assert re.search(r"worst quantized weight: '[\w.]+' \([\d.-]+ dB\)", out), out
    assert "first diverging operation" not in out, out


def test_the_variant_localisation_names_a_lossy_operation_and_clears_an_exact_one(base, tmp_path):
    """qdq_loss_debug's matching on the variant kinds: int8-dynamic (integer ops, same tensor
    names) and fp16 name an operation that loses; the offline-optimised graph, float32 like its
    base, matches it on every tensor it kept and names none."""
    from convcheck.locate import variant

    bench, conv = base
    x, _ = bench.test_set(conv.original.spec, "pytorch")
    found = {}
    for kind in ("int8-dynamic", "fp16", "optimized"):
        dst = variants.make({"kind": kind}, conv.path, tmp_path / f"{kind}.onnx")
        found[kind] = variant.compare(conv.path, dst, x[:4])
        assert found[kind]["tensors_compared"] >= 5, found[kind]
    for kind in ("int8-dynamic", "fp16"):
        assert found[kind]["operations"], found[kind]
        assert found[kind]["sqnr_db"] < found[kind]["input_sqnr_db"], found[kind]
        assert 10 < found[kind]["output_sqnr_db"] < variant.EXACT_DB, found[kind]
    # fp16 keeps about 11 bits, int8 about 7: the SQNRs say so.
    assert found["fp16"]["output_sqnr_db"] > found["int8-dynamic"]["output_sqnr_db"], found
    assert "operations" not in found["optimized"], found["optimized"]
    assert found["optimized"]["output_sqnr_db"] >= variant.EXACT_DB, found["optimized"]
