"""Known-wrong conversions made from good ones: the fault battery that shows each check can fail.

Each fault imitates a real conversion bug, writes a new .onnx file and returns its path. Every
model made here passes onnx.checker and keeps the graph's input and output names, so it runs
wherever the good conversion runs. `caught_by_table` words which checks caught which fault.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convcheck.convert import INPUT_NAME, OUTPUT_NAME


def _save(model: onnx.ModelProto, dst) -> Path:
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))
    return Path(dst)


def _rename_uses(graph: onnx.GraphProto, old: str, new: str, outputs: bool = False) -> None:
    """Make every node read (and with outputs=True, also write) tensor `new` instead of `old`."""
    for node in graph.node:
        fields = (node.input, node.output) if outputs else (node.input,)
        for names in fields:
            for k, name in enumerate(names):
                if name == old:
                    names[k] = new


def _last_dense_param(graph: onnx.GraphProto, ndim: int) -> onnx.TensorProto:
    """The last layer's weight matrix (ndim 2: Gemm/MatMul) or bias (ndim 1: Gemm/Add)."""
    inits = {t.name: t for t in graph.initializer}
    ops = ("Gemm", "MatMul") if ndim == 2 else ("Gemm", "Add")
    for node in reversed(graph.node):  # nodes are in topological order
        if node.op_type in ops:
            for name in node.input:
                if name in inits and len(inits[name].dims) == ndim:
                    return inits[name]
    raise ValueError(f"no {'/'.join(ops)} node with a {ndim}-D initializer in the graph")


def perturb_weight(src, dst, scale: float = 0.01, which: str = "bias") -> Path:
    """A silent weight bug (bad copy or cast): the last layer's largest parameter off by `scale`."""
    # The bias by default: the largest element of the weight matrix can sit on a ReLU unit that
    # is dead on every input (LeNet-5 smoke: fc3 weight -1.24 on a dead unit), changing nothing.
    model = onnx.load(str(src))
    w = _last_dense_param(model.graph, {"weight": 2, "bias": 1}[which])
    arr = numpy_helper.to_array(w).copy()
    k = np.unravel_index(np.argmax(np.abs(arr)), arr.shape)
    arr[k] *= 1 + scale
    w.CopyFrom(numpy_helper.from_array(arr, w.name))
    return _save(model, dst)


def export_torch_train_mode(spec, model, dst, opset: int = 17) -> Path:
    """An export left in training mode: Dropout active, BatchNorm using batch statistics."""
    import torch

    model = copy.deepcopy(model)  # tracing in train mode updates BatchNorm's running statistics
    example = torch.rand(2, *spec.framework_input_shape("pytorch"))
    torch.onnx.export(
        model, (example,), str(dst), dynamo=False, opset_version=opset,
        training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False,
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    onnx.checker.check_model(str(dst), full_check=True)
    return Path(dst)


def fp16_round_trip(src, dst) -> Path:
    """A half-precision detour (fp16 storage or export): float weights rounded to float16."""
    model = onnx.load(str(src))
    for t in model.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            arr = numpy_helper.to_array(t).astype(np.float16).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(arr, t.name))
    return _save(model, dst)


def swap_output_classes(src, dst, i: int = 0, j: int = 1) -> Path:
    """A label-map mix-up: output classes i and j come out swapped (a Gather after the output)."""
    model = onnx.load(str(src))
    g, out = model.graph, model.graph.output[0]
    raw = f"{out.name}__before_class_swap"
    _rename_uses(g, out.name, raw, outputs=True)
    perm = np.arange(out.type.tensor_type.shape.dim[1].dim_value, dtype=np.int64)
    perm[[i, j]] = perm[[j, i]]
    g.initializer.append(numpy_helper.from_array(perm, f"{out.name}__class_perm"))
    g.node.append(helper.make_node("Gather", [raw, f"{out.name}__class_perm"], [out.name],
                                   axis=1, name="fault_class_swap"))
    return _save(model, dst)


def overflow_before_softmax(src, dst, scale: float = 1e38) -> Path:
    """An overflow (a mis-scaled or half-precision activation): the logits blow up to +-inf
    before the final Softmax, which then returns NaN."""
    model = onnx.load(str(src))
    g = model.graph
    softmax = next(n for n in reversed(g.node) if n.op_type == "Softmax")
    logits, scaled = softmax.input[0], f"{softmax.input[0]}__overflowed"
    g.initializer.append(numpy_helper.from_array(np.array(scale, dtype=np.float32), "overflow_scale"))
    g.node.insert(list(g.node).index(softmax),
                  helper.make_node("Mul", [logits, "overflow_scale"], [scaled], name="fault_overflow"))
    softmax.input[0] = scaled
    return _save(model, dst)


def _image_layout(dims: list) -> str:
    """"NCHW" or "NHWC" from a square image input's shape (batch, ...)."""
    if len(dims) == 4 and dims[2] == dims[3] and dims[1] != dims[2]:
        return "NCHW"
    if len(dims) == 4 and dims[1] == dims[2] and dims[3] != dims[1]:
        return "NHWC"
    raise ValueError(f"cannot tell the layout of a square image input from shape {dims}; "
                     "pass layout='NCHW' or 'NHWC'")


def swap_input_hw(src, dst, layout: str | None = None) -> Path:
    """A layout mix-up: the image's height and width are swapped (silent for square images)."""
    model = onnx.load(str(src))
    g = model.graph
    inits = {t.name for t in g.initializer}
    inp = next(i for i in g.input if i.name not in inits)
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    perm = {"NCHW": [0, 1, 3, 2], "NHWC": [0, 2, 1, 3]}[layout or _image_layout(dims)]
    swapped = f"{inp.name}__hw_swapped"
    _rename_uses(g, inp.name, swapped)
    g.node.insert(0, helper.make_node("Transpose", [inp.name], [swapped], perm=perm,
                                      name="fault_hw_swap"))
    return _save(model, dst)


def _merged(measured: list[dict]) -> dict:
    return {k: v for m in measured for k, v in m.items()}


def worst(key: str, fmt: str):
    """A figure: the largest `key` over the verdicts that measured it."""
    def cell(measured: list[dict]) -> str:
        values = [m[key] for m in measured if key in m]
        return format(max(values, key=abs), fmt) if values else "-"
    return cell


# The figures the equivalence battery reports beside its verdicts.
EQUIVALENCE_FIGURES = {
    "abs_max": worst("abs_max", ".3g"),
    "label disagreement": lambda ms: (
        f"{m['label_disagreement']:.4f} ({m['n_disagree']}/{m['n_samples']})"
        if "label_disagreement" in (m := _merged(ms)) else "-"),
    "accuracy (original -> converted)": lambda ms: (
        f"{m['accuracy_original']:.4f} -> {m['accuracy_converted']:.4f}"
        if "accuracy_original" in (m := _merged(ms)) else "-"),
}


def caught_by_table(rows: dict, figures: dict = EQUIVALENCE_FIGURES) -> str:
    """A markdown table: for each case id, its verdicts -> what failed, and `figures` (header ->
    cell from the verdicts' measured dicts). A check judged several times (once per attack)
    fails if any of its verdicts does."""
    checks = list(dict.fromkeys(v.check for verdicts in rows.values() for v in verdicts))
    head = ["case", *checks, "failing metrics", *figures]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case_id, verdicts in rows.items():
        cells = [case_id]
        for c in checks:
            judged = [v for v in verdicts if v.check == c]
            cells.append("-" if not judged else "pass" if all(v.passed for v in judged)
                         else "**FAIL**")
        failed = sorted(set().union(*(v.failed_metrics() for v in verdicts)))
        measured = [v.measured for v in verdicts]
        cells += [", ".join(failed) or "none", *(cell(measured) for cell in figures.values())]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def slow_down(src, dst, width: int = 1024, depth: int = 8, seed: int = 0) -> Path:
    """A performance regression with unchanged outputs: `depth` MatMuls of width `width` per
    sample, fed by the output, whose result is added after multiplying by zero.

    onnxruntime cannot drop the extra work: it depends on the input (no constant folding), and
    the zero is computed at run time (s - s), not a constant a rewrite could spot. Tanh keeps
    every value finite, so s - s is exactly 0 and output + 0 is bitwise the original output."""
    model = onnx.load(str(src))
    g, out = model.graph, model.graph.output[0]
    raw = f"{out.name}__before_slowdown"
    _rename_uses(g, out.name, raw, outputs=True)
    n_classes = out.type.tensor_type.shape.dim[1].dim_value
    rng = np.random.default_rng(seed)
    h = raw
    for i, (rows, cols) in enumerate([(n_classes, width)] + [(width, width)] * depth):
        w = (rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32)
        g.initializer.append(numpy_helper.from_array(w, f"slowdown_w{i}"))
        g.node.append(helper.make_node("MatMul", [h, f"slowdown_w{i}"], [f"slowdown_mm{i}"]))
        g.node.append(helper.make_node("Tanh", [f"slowdown_mm{i}"], [f"slowdown_h{i}"]))
        h = f"slowdown_h{i}"
    g.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "slowdown_axis"))
    g.node.extend([
        helper.make_node("ReduceSum", [h, "slowdown_axis"], ["slowdown_sum"], keepdims=1),
        helper.make_node("Sub", ["slowdown_sum", "slowdown_sum"], ["slowdown_zero"]),
        helper.make_node("Add", [raw, "slowdown_zero"], [out.name], name="fault_slowdown"),
    ])
    return _save(model, dst)
