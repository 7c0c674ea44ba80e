"""Localisation (convcheck.locate) on the fault battery's conversions: for each fault, the node
convcheck names is the one the fault made or broke, not only some text. LeNet-5 (both
frameworks' ONNX conversions) for the graph faults; VGG-16 for the train-mode export (its first
BatchNorm); the runtime direction on a graph where onnxruntime and the ONNX reference disagree.
A failing check's message carries the localisation (the suite run as a user runs it)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from faulty_cache import cache_with_fault, run_suite

from convcheck.locate import graph, locate
from convcheck.plugin import state
from convcheck.testing import faults

ROOT = Path(__file__).resolve().parent.parent
BOUND = 1e-5  # locate_rel's default (tolerances.toml says how it was measured)


def _batch(bench, conv, n=4):
    x, _ = bench.test_set(conv.original.spec, conv.original.framework)
    return x[:n], list(range(n))


def _locate(bench, conv, path):
    batch, samples = _batch(bench, conv)
    o = conv.original
    return locate(conv.id, o.framework, o.predictor, path, batch, samples, BOUND)


def _last_dense_bias_consumer(path):
    import onnx

    g = onnx.load(str(path)).graph
    inits = {t.name: t for t in g.initializer}
    for node in reversed(g.node):
        if node.op_type in ("Gemm", "Add"):
            for name in node.input:
                if name in inits and len(inits[name].dims) == 1:
                    return node.name, name
    raise AssertionError("no bias")


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_a_good_conversion_locates_nothing(framework, bench, good_conversion):
    conv = good_conversion("lenet5", framework)
    loc = _locate(bench, conv, conv.path)
    assert loc.node is None and loc.first is None and not loc.weights, loc.text()
    assert loc.layers_compared >= 8, loc.text()  # every layer was compared, not skipped


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_perturbed_weight_is_located_at_its_consumer(framework, bench, good_conversion,
                                                      tmp_path):
    conv = good_conversion("lenet5", framework)
    bad = faults.perturb_weight(conv.path, tmp_path / "bad.onnx")
    consumer, bias = _last_dense_bias_consumer(bad)
    loc = _locate(bench, conv, bad)
    assert loc.node == consumer and loc.first == "conversion", loc.text()
    assert [w["initializer"] for w in loc.weights] == [bias], loc.text()
    # perturb_weight scales the largest |bias| by 1.01: 1 % of the parameter's scale.
    assert abs(loc.weights[0]["relative"] - 0.01) < 1e-4, loc.text()


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_swapped_input_layout_is_located_at_the_first_operation(framework, bench,
                                                                 good_conversion, tmp_path):
    conv = good_conversion("lenet5", framework)
    loc = _locate(bench, conv, faults.swap_input_hw(conv.path, tmp_path / "bad.onnx"))
    assert (loc.node, loc.op_type, loc.layer) == ("fault_hw_swap", "Transpose", "conv1"), \
        loc.text()


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_fp16_round_trip_is_located_where_the_error_first_exceeds_the_bound(
        framework, bench, good_conversion, tmp_path):
    conv = good_conversion("lenet5", framework)
    loc = _locate(bench, conv, faults.fp16_round_trip(conv.path, tmp_path / "bad.onnx"))
    assert loc.op_type == "Conv" and loc.layer == "conv1" and loc.error > BOUND, loc.text()
    assert len(loc.weights) == 10, loc.text()  # every parameter was rounded


@pytest.mark.parametrize("framework", ["pytorch", "keras"])
def test_class_swap_and_overflow_are_located_at_their_nodes(framework, bench, good_conversion,
                                                            tmp_path):
    conv = good_conversion("lenet5", framework)
    swap = _locate(bench, conv, faults.swap_output_classes(conv.path, tmp_path / "swap.onnx"))
    assert (swap.node, swap.op_type) == ("fault_class_swap", "Gather"), swap.text()
    nan = _locate(bench, conv, faults.overflow_before_softmax(conv.path, tmp_path / "nan.onnx"))
    assert (nan.node, nan.op_type) == ("fault_overflow", "Mul"), nan.text()


def test_train_mode_export_is_located_at_the_first_batchnorm(bench, good_conversion, tmp_path):
    import onnx

    conv = good_conversion("vgg16", "pytorch")
    # The good conversion folds each BatchNorm into its Conv: fused, not diverging, and the
    # folded weights are the original's.
    good = _locate(bench, conv, conv.path)
    assert good.node is None and not good.weights and good.layers_compared > 20, good.text()
    bad = faults.export_torch_train_mode(conv.original.spec, conv.original.predictor.model,
                                         tmp_path / "train.onnx")
    loc = _locate(bench, conv, bad)
    first_bn = next(n.name for n in onnx.load(str(bad)).graph.node
                    if n.op_type == "BatchNormalization")
    assert (loc.node, loc.op_type) == (first_bn, "BatchNormalization"), loc.text()


def test_the_runtime_direction_names_where_onnxruntime_leaves_the_reference(tmp_path):
    """A Resize whose output size the ONNX spec floors (5 x 1.8 -> 8) and onnxruntime rounds
    (9), as tf2onnx writes for Keras Resizing 5x7 -> 9x4 (a known divergence, regressions)."""
    import numpy as np
    from onnx import TensorProto, helper

    from convcheck.locate import _runtime
    from convcheck.results import Localisation

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 7])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 1.8, 4 / 7])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Resize", ["r", "", "scales"], ["y"], mode="linear",
                              name="resize")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [scales]),
                              opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"x": np.random.default_rng(0).random((1, 1, 5, 7), dtype=np.float32)}
    g = graph.Graph(model)
    ref = graph.reference_values(model, feeds)
    rt = graph.runtime_values(model, feeds, {k: v.dtype for k, v in ref.items()
                                            if isinstance(v, np.ndarray)})
    assert ref["y"].shape != rt["y"].shape, (ref["y"].shape, rt["y"].shape)
    loc = Localisation("resize", [0], bound=BOUND)
    _runtime(loc, g, ref, rt)
    assert (loc.runtime_node, loc.runtime_op_type) == ("resize", "Resize"), loc


def test_a_failing_check_says_where(pytestconfig, tmp_path):
    """The suite in a subprocess on a cache whose PyTorch conversion has its input layout
    swapped: test_output_equivalence fails, and its message names the Transpose."""
    bench = state.bench(pytestconfig)
    cache_with_fault(bench, tmp_path, "lenet5", "onnx", faults.swap_input_hw)
    rc, out = run_suite(bench, "tests_conformance/test_equivalence.py",
                        "--convcheck-models=lenet5", "--convcheck-targets=onnx",
                        f"--convcheck-cache-dir={tmp_path / 'cache'}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}", "-k",
                        "output_equivalence")
    assert rc == 1, out
    assert "first diverging operation: Transpose 'fault_hw_swap'" in out, out
    assert "onnxruntime agrees with the ONNX reference on every tensor" in out, out
    # The repro bundle: its script, run alone (onnxruntime and numpy), gives the same verdict.
    case = "lenet5-pytorch-onnx-s0"
    verdict = re.search(rf"{case}: abs_max = (\S+) > 1e-05", out)
    assert verdict, out
    (bundle,) = (tmp_path / "reports").glob(f"runs/*/bundles/{case}")
    script = bundle / "reproduce.py"
    again = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, env={"PATH": os.environ["PATH"]})
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"{case}: abs_max = {verdict.group(1)} > 1e-05" in again.stdout, again.stdout
    imports = {line.split()[1].split(".")[0] for line in script.read_text().splitlines()
               if line.startswith(("import ", "from "))}
    assert imports == {"json", "sys", "pathlib", "numpy", "onnxruntime"}, imports


def test_property_and_adversarial_failures_are_localised_on_their_own_inputs(pytestconfig,
                                                                            tmp_path):
    """The same fault caught by the property test and by an attack's output check: each
    localises on the inputs it failed on (the shrunk counterexample, the adversarial examples),
    not on the test set, and names the same operation."""
    bench = state.bench(pytestconfig)
    cache_with_fault(bench, tmp_path, "lenet5", "onnx", faults.swap_input_hw)
    rc, out = run_suite(bench, "tests_conformance/test_properties.py",
                        "tests_conformance/test_robustness.py",
                        "--convcheck-models=lenet5", "--convcheck-targets=onnx",
                        f"--convcheck-cache-dir={tmp_path / 'cache'}",
                        f"--convcheck-reports-dir={tmp_path / 'reports'}", "-k",
                        "pytorch and (property or (fgsm and adversarial_output_equivalence))")
    assert rc == 1, out
    for inputs in ("property counterexample", "fgsm adversarial examples"):
        where = re.search(rf"first diverging operation: (\S+) '(\S+)'.*?\n(?:.*\n)*?"
                          rf"\(localised on sample\(s\) [\d, .]+ of the {inputs} in", out)
        assert where and where.groups() == ("Transpose", "fault_hw_swap"), (inputs, out)
