"""Which operation of a precision variant (fp16, int8) loses the most against the ONNX conversion
it was made from, on the failing inputs.

A variant is meant to differ from its float32 graph, so "the first operation that departs"
names its first layer every time. What a deployment engineer needs instead is where the loss
is made: onnxruntime's own quantization debugger (`onnxruntime.quantization.qdq_loss_debug`)
saves every float tensor of both graphs and matches them by name (a QDQ graph's tensors before
and after their QuantizeLinear/DequantizeLinear pair too), and scores each by its
signal-to-quantization-noise ratio (SQNR, dB: higher is closer). The operation named is the
one that adds the most noise itself (not the noise it inherits), beside the worst quantized
weight where the graph is QDQ.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from convcheck.locate import graph
from convcheck.results import EXACT_DB

# Operations that cannot add noise of their own: data movement and 1-Lipschitz elementwise or
# max functions. A Relu still lowers the SQNR (it zeroes signal, not the noise on what it
# keeps), which is the noise of the operation before it showing, not a loss made there.
PASS_THROUGH = frozenset({
    "Relu", "LeakyRelu", "Clip", "MaxPool", "GlobalMaxPool", "Reshape", "Flatten", "Transpose",
    "Squeeze", "Unsqueeze", "Identity", "Dropout", "Concat", "Slice", "Split", "Gather",
    "Expand", "Tanh", "Sigmoid", "Shape", "Cast"})


def _activations(path: Path, feeds: dict, tmp: Path) -> dict[str, list[np.ndarray]]:
    """Every float tensor of the graph at `path` on `feeds`, by name, as qdq_loss_debug keeps
    them (a list with one array per batch run: one here)."""
    from onnxruntime.quantization import qdq_loss_debug as qdq

    augmented = tmp / f"{path.parent.name}-augmented.onnx"
    qdq.modify_model_output_intermediate_tensors(str(path), str(augmented))
    return qdq.collect_activations(str(augmented), [feeds])


def _sqnr(x: np.ndarray, y: np.ndarray) -> float:
    from onnxruntime.quantization import qdq_loss_debug as qdq

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape:
        return float("nan")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("-inf")
    return qdq.compute_signal_to_quantization_noice_ratio(x, y)


def compare(base: Path, variant: Path, batch: np.ndarray) -> dict:
    """The variant's loss against its base graph on `batch`: the operation that adds the most
    (`operations`; `input_sqnr_db`, and `sqnr_db` at its output), the output's SQNR
    (`output_sqnr_db`), and for a QDQ graph the worst quantized weight. Keys absent where
    nothing was found to compare. (The debugger's own pre- against post-QDQ score is not used:
    where the quantizer fused a Relu into the pair, the tensor before it is the Conv's,
    negatives and all.)"""
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as qdq

    g = graph.Graph(onnx.load(str(base)))
    feeds = {g.inputs[0]: batch}
    with tempfile.TemporaryDirectory() as d:
        floats = _activations(base, feeds, Path(d))
        got = _activations(variant, feeds, Path(d))
        vm = onnx.load(str(variant))
        is_qdq = any(n.op_type == "DequantizeLinear" for n in vm.graph.node)
        weights = qdq.create_weight_matching(str(base), str(variant)) if is_qdq else {}
    # A QDQ graph's tensor after its QuantizeLinear/DequantizeLinear pair is what its consumers
    # read: that is the variant's value of the float graph's tensor of the same name.
    matched = qdq.create_activation_matching(got, floats) if is_qdq else {}
    variant_of = {name: m["post_qdq"][0] for name, m in matched.items()}
    for name in floats:
        if name not in variant_of and name in got:
            variant_of[name] = got[name][0]
    sqnr = {name: _sqnr(floats[name][0], v) for name, v in variant_of.items() if name in floats}
    out = {"against": "base", "tensors_compared": len(sqnr)}
    if not sqnr:
        return out
    # Each tensor's SQNR, or where the variant fused it away (a QDQ graph's Conv+Relu keeps no
    # tensor between them) the SQNR it was computed from. The loss an operation adds is the
    # noise power (relative to the signal's) at its output less that at its inputs: dB do not
    # subtract along a path (every first lossy operation falls from "exact"), noise powers do.
    # Operations with no scored output of their own are named with the first scored one after.
    level = {i: min(sqnr.get(i, EXACT_DB), EXACT_DB) for i in g.inputs}
    pending: dict[str, list] = {}  # fused-away tensor -> the operations it went through
    pending_types: dict[str, set] = {}
    worst = None  # (added noise power, SQNR before, SQNR after, operations)

    def consider(before: float, at: float, ops: list, types: set) -> None:
        nonlocal worst
        if types <= PASS_THROUGH:
            return
        added = (10 ** (-at / 10) - 10 ** (-before / 10)) if np.isfinite(at) else float("inf")
        if added > 0 and (worst is None or added > worst[0]):
            worst = (added, before, at, ops)

    for i in g.inputs:
        consider(EXACT_DB, level[i], [f"the quantization of input {i!r}"], {"QuantizeLinear"})
    for node in g.nodes:
        before = min([level.get(i, EXACT_DB) for i in node.inputs if i] or [EXACT_DB])
        ops = [op for i in node.inputs for op in pending.get(i, [])]
        ops = list(dict.fromkeys([*ops, f"{node.op_type} {node.name!r}"]))
        types = {node.op_type}.union(*(pending_types.get(i, set()) for i in node.inputs))
        for o in node.outputs:
            if o not in sqnr:
                level[o], pending[o], pending_types[o] = before, ops, types
                continue
            level[o] = min(sqnr[o], EXACT_DB)
            consider(before, sqnr[o], ops, types)
    if worst is not None:
        _, before, at, ops = worst
        out.update(operations=ops, sqnr_db=at, input_sqnr_db=before)
    final = g.outputs[0]
    if final in sqnr:
        out["output_sqnr_db"] = sqnr[final]
    if weights:
        errs = qdq.compute_weight_error(weights)
        name = min(errs, key=errs.get)
        out.update(weight=name, weight_db=errs[name])
    return out
