"""Known-wrong conversions made from good ones: the fault battery that shows each check can fail.

Each fault imitates a real conversion bug, writes a new .onnx file (or .mlpackage, for the Core
ML faults at the end) and returns its path. Every model made here passes onnx.checker (or loads
in coremltools) and keeps the graph's input and output names, so it runs wherever the good
conversion runs. `caught_by_table` words which checks caught which fault.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from convcheck.conversion.artifacts import INPUT_NAME, OUTPUT_NAME


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


def _after_output(model: onnx.ModelProto, tag: str) -> tuple[onnx.GraphProto, str, str, int]:
    """Make room for nodes after the graph's output: (graph, the renamed raw output, the output
    name the new nodes must write, number of classes)."""
    g, out = model.graph, model.graph.output[0]
    raw = f"{out.name}__before_{tag}"
    _rename_uses(g, out.name, raw, outputs=True)
    return g, raw, out.name, out.type.tensor_type.shape.dim[1].dim_value


def _const(g: onnx.GraphProto, name: str, value, dtype=np.float32) -> str:
    g.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
    return name


def _in_band(g: onnx.GraphProto, x: str, lo: float, hi: float, tag: str) -> str:
    """A bool tensor: lo <= x < hi (elementwise), from Less and Not (any opset this suite uses)."""
    lo_c = _const(g, f"{tag}_lo", lo)
    hi_c = _const(g, f"{tag}_hi", hi)
    g.node.extend([
        helper.make_node("Less", [x, lo_c], [f"{tag}_below"]),
        helper.make_node("Not", [f"{tag}_below"], [f"{tag}_from_lo"]),
        helper.make_node("Less", [x, hi_c], [f"{tag}_below_hi"]),
        helper.make_node("And", [f"{tag}_from_lo", f"{tag}_below_hi"], [f"{tag}_gate"]),
    ])
    return f"{tag}_gate"


def perturb_output_band(src, dst, lo: float, hi: float, add: float = 0.0,
                        mul: float = 1.0) -> Path:
    """A calibrated output error: every output value y with lo <= y < hi becomes y * mul + add;
    every other value is left exactly as it was (a Where after the output).

    An exact-size fault: with the band chosen from the good conversion's outputs
    (`value_band`), it puts a known absolute (add) or relative (mul - 1) error on a known share
    of the output elements, so that one chosen metric lands at a chosen multiple of its
    tolerance while the others stay within theirs."""
    model = onnx.load(str(src))
    g, raw, out, _ = _after_output(model, "band_fault")
    gate = _in_band(g, raw, lo, hi, "band_fault")
    g.node.extend([
        helper.make_node("Mul", [raw, _const(g, "band_fault_mul", mul)], ["band_fault_scaled"]),
        helper.make_node("Add", ["band_fault_scaled", _const(g, "band_fault_add", add)],
                         ["band_fault_new"]),
        helper.make_node("Where", [gate, "band_fault_new", raw], [out], name="fault_band"),
    ])
    return _save(model, dst)


def flip_top_two_in_margin_band(src, dst, lo: float, hi: float, overshoot: float = 1.5) -> Path:
    """A tie-breaking bug: samples whose margin (top probability - runner-up) lies in
    [lo, hi) get their top two classes swapped (the top loses `overshoot` x the margin, the
    runner-up gains it), so their label changes; every other sample is left exactly as it was.
    With a band holding one test sample (`value_band` on convcheck.checks.metrics.margins), exactly
    one label flips."""
    model = onnx.load(str(src))
    g, raw, out, k = _after_output(model, "label_flip")
    t = "label_flip"
    g.node.append(helper.make_node("TopK", [raw, _const(g, f"{t}_k", [2], np.int64)],
                                   [f"{t}_v", f"{t}_i"], axis=1))
    for r in (0, 1):  # (N, 1) value and class index of the top (0) and the runner-up (1)
        idx = _const(g, f"{t}_rank{r}", [r], np.int64)
        g.node.extend([helper.make_node("Gather", [f"{t}_v", idx], [f"{t}_v{r}"], axis=1),
                       helper.make_node("Gather", [f"{t}_i", idx], [f"{t}_i{r}"], axis=1)])
    classes = _const(g, f"{t}_classes", np.arange(k).reshape(1, k), np.int64)
    g.node.append(helper.make_node("Sub", [f"{t}_v0", f"{t}_v1"], [f"{t}_margin"]))
    gate = _in_band(g, f"{t}_margin", lo, hi, t)
    for r in (0, 1):
        g.node.extend([helper.make_node("Equal", [classes, f"{t}_i{r}"], [f"{t}_is{r}_b"]),
                       helper.make_node("Cast", [f"{t}_is{r}_b"], [f"{t}_is{r}"],
                                        to=TensorProto.FLOAT)])
    g.node.extend([
        helper.make_node("Sub", [f"{t}_is1", f"{t}_is0"], [f"{t}_dir"]),
        helper.make_node("Mul", [f"{t}_margin", _const(g, f"{t}_overshoot", overshoot)],
                         [f"{t}_step"]),
        helper.make_node("Mul", [f"{t}_dir", f"{t}_step"], [f"{t}_shift"]),
        helper.make_node("Add", [raw, f"{t}_shift"], [f"{t}_new"]),
        helper.make_node("Where", [gate, f"{t}_new", raw], [out], name="fault_label_flip"),
    ])
    return _save(model, dst)


def _edge(below: float, above: float) -> float:
    """A float32 edge e with below < e <= above, halfway when float32 can say so (the graph
    compares float32 values, so a float64 midpoint could round onto either side)."""
    mid = np.float32((np.float64(below) + np.float64(above)) / 2)
    return float(mid if np.float32(below) < mid <= np.float32(above) else np.float32(above))


def value_band(values: np.ndarray, lo: float = -np.inf, hi: float = np.inf,
               at_most: int | None = None, end: str = "top") -> tuple[float, float, int]:
    """(lo', hi', count): a band inside [lo, hi) holding the float32 `values` nearest `end`
    ("top" or "bottom"), at most `at_most` of them; a new edge lies between the last value kept
    and the next one left out (ties stay together). Raises ValueError if the band holds none."""
    v = np.sort(np.asarray(values, dtype=np.float32).ravel())
    v = v[(v >= np.float32(lo)) & (v < np.float32(hi))]
    if at_most is not None and len(v) > at_most:
        if end == "top":
            k = len(v) - at_most
            while k < len(v) and v[k] == v[k - 1]:
                k += 1
            lo, v = (_edge(v[k - 1], v[k]), v[k:]) if k < len(v) else (hi, v[:0])
        else:
            k = at_most
            while k > 0 and v[k] == v[k - 1]:
                k -= 1
            hi, v = (_edge(v[k - 1], v[k]), v[:k]) if k > 0 else (lo, v[:0])
    if not len(v):
        raise ValueError(f"no value in [{lo:g}, {hi:g}) to perturb")
    return float(lo), float(hi), len(v)


def band_around(values: np.ndarray, index: int) -> tuple[float, float]:
    """(lo, hi): a band holding values[index] and every value equal to it, and no other of
    `values` (edges halfway to its neighbours, as in value_band)."""
    v = np.asarray(values, dtype=np.float32).ravel()
    x = v[index]
    below, above = v[v < x], v[v > x]
    lo = _edge(below.max(), x) if len(below) else -np.inf
    hi = _edge(x, above.min()) if len(above) else np.inf  # x < hi <= the next value
    return float(lo), float(hi)


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
    "abs_mean": worst("abs_mean", ".3g"),
    "abs_p99": worst("abs_p99", ".3g"),
    "rel_max": worst("rel_max", ".3g"),
    "rel_mean": worst("rel_mean", ".3g"),
    "ptol_fraction": worst("ptol_fraction", ".3g"),
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
    fails if any of its verdicts does; one whose every bound is inf is "not judged" (it cannot
    fail, so it does not pass)."""
    checks = list(dict.fromkeys(v.check for verdicts in rows.values() for v in verdicts))
    head = ["case", *checks, "failing metrics", *figures]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case_id, verdicts in rows.items():
        cells = [case_id]
        for c in checks:
            judged = [v for v in verdicts if v.check == c]
            unbounded = judged and all(v.tolerances and all(math.isinf(b) for b in
                                                            v.tolerances.values())
                                       for v in judged)
            cells.append("-" if not judged else "not judged" if unbounded
                         else "pass" if all(v.passed for v in judged) else "**FAIL**")
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


# ------------------------------------------------------------------ Core ML ML programs
# Faults written into a saved .mlpackage's weight file, where Core ML (and the MIL reference
# interpreter, convcheck.mil) read them: the program is untouched, one const's bytes change.
# The weight file's layout is MIL's blob storage (coremltools' milstorage, BlobStorageCommon):
# a 64-byte header, then per blob a 64-byte record (uint32 sentinel 0xDEADBEEF, uint32 dtype,
# uint64 size in bytes, uint64 data offset, ...) at the offset the program's const names.
# coremltools has no public writer for one blob in place, hence this.

_BLOB_SENTINEL = 0xDEADBEEF
_MIL_FLOATS = {10: np.float16, 11: np.float32}  # MIL.proto DataType


def _mlpackage_copy(src, dst) -> Path:
    import shutil

    dst = Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def mlpackage_weights(pkg) -> list[dict]:
    """The float consts an ML program keeps in its weight file, in program order: name, shape,
    dtype, the file, and the data's offset in it."""
    import struct

    import coremltools as ct

    pkg = Path(pkg)
    spec = ct.utils.load_spec(str(pkg))
    fn = spec.mlProgram.functions["main"]
    out = []
    for op in fn.block_specializations[fn.opset].operations:
        value = op.attributes["val"] if op.type == "const" else None
        if value is None or value.WhichOneof("value") != "blobFileValue":
            continue
        dtype = _MIL_FLOATS.get(value.type.tensorType.dataType)
        if dtype is None:
            continue
        blob = value.blobFileValue
        path = pkg / "Data" / "com.apple.CoreML" / blob.fileName.replace("@model_path/", "")
        with open(path, "rb") as f:
            f.seek(blob.offset)
            sentinel, _, size, offset = struct.unpack("<IIQQ", f.read(24))
        if sentinel != _BLOB_SENTINEL:
            raise ValueError(f"{path}: no blob record at {blob.offset}")
        shape = tuple(d.constant.size for d in value.type.tensorType.dimensions)
        out.append({"name": op.outputs[0].name, "shape": shape, "dtype": np.dtype(dtype),
                    "file": path, "offset": offset, "size": size})
    return out


def _rewrite(w: dict, change) -> None:
    """Replace one blob's values with change(values) (same shape and dtype), in place."""
    with open(w["file"], "r+b") as f:
        f.seek(w["offset"])
        values = np.frombuffer(f.read(w["size"]), dtype=w["dtype"]).reshape(w["shape"]).copy()
        new = np.asarray(change(values), dtype=w["dtype"])
        assert new.shape == values.shape
        f.seek(w["offset"])
        f.write(new.tobytes())


def _last(weights: list[dict], ndim: int) -> dict:
    return [w for w in weights if len(w["shape"]) == ndim][-1]


def _neuralnetwork(src) -> bool:
    return Path(src).suffix == ".mlmodel"


def _nn_edit(src, dst, edit) -> Path:
    """A neuralnetwork .mlmodel's spec edited by edit(list of its float weight fields, each
    (layer, field name, WeightParams)) and saved to dst."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(src))
    found = []
    for layer in spec.neuralNetwork.layers:
        params = getattr(layer, layer.WhichOneof("layer"))
        for field in ("weights", "bias"):
            if field in params.DESCRIPTOR.fields_by_name and params.HasField(field):
                found.append((layer, field, getattr(params, field)))
    edit(found)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ct.utils.save_spec(spec, str(dst))
    return dst


def _set(w, values: np.ndarray) -> None:
    del w.floatValue[:]
    w.floatValue.extend(np.asarray(values, np.float32).ravel().tolist())


def _last_dense(found) -> tuple:
    """The last innerProduct's (layer, weights as (out, in), bias)."""
    dense = [f for f in found if f[0].WhichOneof("layer") == "innerProduct"]
    layer = dense[-1][0]
    p = layer.innerProduct
    return (layer, np.asarray(p.weights.floatValue, np.float32).reshape(p.outputChannels, -1),
            np.asarray(p.bias.floatValue, np.float32))


def coreml_perturb_weight(src, dst, scale: float = 0.01) -> Path:
    """The classifier's bias (an ML program's last 1-d weight, a neuralnetwork's last dense
    layer's bias): its largest |value| times (1 + scale), as perturb_weight does to an ONNX
    graph."""
    def change(v):
        i = np.argmax(np.abs(v))
        v.flat[i] *= 1 + scale
        return v
    if _neuralnetwork(src):
        def edit(found):
            layer, _, bias = _last_dense(found)
            _set(layer.innerProduct.bias, change(bias))
        return _nn_edit(src, dst, edit)
    dst = _mlpackage_copy(src, dst)
    _rewrite(_last(mlpackage_weights(dst), 1), change)
    return dst


def coreml_swap_classes(src, dst, i: int = 0, j: int = 1) -> Path:
    """Classes i and j swapped: their rows of the last dense layer's weight and bias."""
    def swap(v, axis=0):
        v = np.moveaxis(v, axis, 0)
        v[[i, j]] = v[[j, i]]
        return np.moveaxis(v, 0, axis)
    if _neuralnetwork(src):
        def edit(found):
            layer, weight, bias = _last_dense(found)
            _set(layer.innerProduct.weights, swap(weight))
            _set(layer.innerProduct.bias, swap(bias))
        return _nn_edit(src, dst, edit)
    dst = _mlpackage_copy(src, dst)
    weights = mlpackage_weights(dst)
    bias, weight = _last(weights, 1), _last(weights, 2)
    axis = weight["shape"].index(bias["shape"][0])
    _rewrite(bias, swap)
    _rewrite(weight, lambda v: swap(v, axis))
    return dst


def coreml_fp16_weights(src, dst) -> Path:
    """Every float32 weight rounded to float16's precision, still stored as float32: an fp32
    model that silently got fp16 weights."""
    if _neuralnetwork(src):
        def edit(found):
            for _, _, w in found:
                if len(w.floatValue):
                    _set(w, np.asarray(w.floatValue, np.float32).astype(np.float16))
        return _nn_edit(src, dst, edit)
    dst = _mlpackage_copy(src, dst)
    for w in mlpackage_weights(dst):
        if w["dtype"] == np.float32:
            _rewrite(w, lambda v: v.astype(np.float16).astype(np.float32))
    return dst
