"""Where a failing ONNX conversion first diverges: the first operation, on the failing inputs.

Both directions of blame, as torch.onnx's verification and Polygraphy's "mark all" each answer
one of them for one framework:
  - the original against the converted graph (a converter bug): the original's layer outputs
    (convcheck.locate.activations), in the order they ran, each matched to the graph tensor
    (ONNX reference semantics) that equals it up to layout; the first layer no tensor agrees
    with locates the divergence, between the last tensor that agreed and the closest one;
  - onnxruntime against the ONNX reference (a runtime bug): every node output of both;
and which came first. Then the weights: each parameter of the original found among the
initializers (convcheck.locate.weights). It runs only when a check fails (or on request).
"""
from __future__ import annotations

import time
from itertools import permutations
from pathlib import Path

import numpy as np

from convcheck.locate import activations, graph, variant, weights
from convcheck.results import Localisation


def _views(a: np.ndarray, shape: tuple) -> list[np.ndarray]:
    """An activation arranged as a graph tensor's `shape`, batch axis first: an axis
    permutation (NHWC <-> NCHW), or a per-sample reshape (a flatten)."""
    out = [a.transpose((0, *p)) for p in permutations(range(1, a.ndim))
           if (a.shape[0], *(a.shape[i] for i in p)) == tuple(shape)] if a.ndim <= 5 else []
    if not out and a.size == int(np.prod(shape)) and shape and shape[0] == a.shape[0]:
        out.append(a.reshape(shape))
    return out


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| over max |a| (inf where shapes or non-finite positions differ)."""
    if a.shape != b.shape:
        return float("inf")
    fa, fb = np.isfinite(a), np.isfinite(b)
    if (fa != fb).any():
        return float("inf")
    both = fa & fb
    if not both.any():
        return 0.0
    a64, b64 = a[both].astype(np.float64), b[both].astype(np.float64)
    return float(np.max(np.abs(a64 - b64)) / max(float(np.max(np.abs(a64))), 1e-12))


def _floats(values: dict, g: graph.Graph) -> dict[str, np.ndarray]:
    """The node outputs that are float arrays (what a layer output can be compared with)."""
    return {k: v for k, v in values.items() if k in g.producer and isinstance(v, np.ndarray)
            and v.dtype.kind == "f" and v.ndim >= 1}


# How far a layer's closest tensor may be from it and still count as a layer fused away rather
# than a divergence (when the next layer agrees): a folded BatchNorm changes a Conv's output by
# 3.3x its scale (VGG-16, dynamo), numeric drift stays near locate_rel (fp16: 1.6e-4).
FUSED = 0.05


def _walk(loc: Localisation, g: graph.Graph, values: dict, layers, final: np.ndarray,
          changed_inits: set[str]):
    """Match the original's layers to the graph's tensors in order; fill in where they part."""
    tensors = _floats(values, g)
    last_index, last_tensor, agreed = -1, None, {}
    steps: list[tuple] = []  # (layer, tensor, error, agreed?, last_index before it)
    for layer, a in [*layers, ("output", final)]:
        errors = {}
        for name, t in tensors.items():
            if g.producer[name].index < last_index or t.shape[0] != a.shape[0]:
                continue
            for view in _views(a, t.shape):
                errors[name] = min(errors.get(name, float("inf")), relative(view, t))
        if not errors:
            continue  # no tensor of this layer's size: a layer the converter fused away
        loc.layers_compared += 1
        name = min(errors, key=errors.get)
        if errors[name] <= loc.bound:  # an agreed tensor may agree again (an identity layer)
            steps.append((layer, name, errors[name], True, last_index))
            last_index, last_tensor = g.producer[name].index, name
            agreed[name] = errors[name]
            continue
        # Disagreeing: its counterpart is among the tensors no earlier layer agreed with.
        fresh = {k: v for k, v in errors.items() if k not in agreed} or errors
        name = min(fresh, key=fresh.get)
        steps.append((layer, name, fresh[name], False, last_index))
    # A layer no tensor comes near (error over FUSED) right before one that agrees was fused
    # away (a Conv with the BatchNorm after it folded in); any other disagreeing layer is the
    # divergence, even where a later one agrees again (a softmax squashes a logit's error).
    located = None
    for i, (layer, name, err, ok, before) in enumerate(steps):
        fused = (not ok and err > FUSED and i + 1 < len(steps) and steps[i + 1][3])
        if not ok and not fused:
            located, last_index = (layer, name, err), before
            break
    if located is None:  # every layer agrees: does the graph's output?
        out = g.outputs[0]
        err = relative(final, values[out]) if out in values else 0.0
        if err > loc.bound and out != last_tensor:
            located = ("output", out, err)
    if located is None:
        return
    out = values.get(g.outputs[0])
    # Only where the graph's output itself is not finite: a good graph may hold -inf on purpose
    # (an attention mask before its softmax).
    overflow = (_first_nonfinite(g, values, last_index)
                if isinstance(out, np.ndarray) and not np.isfinite(out).all() else None)
    loc.layer, tensor, loc.error = located
    loc.tensor = tensor
    path = g.ancestors_after(tensor, last_index)
    # A changed weight's consumer on the path is the cause (a bias read by the Add after a
    # MatMul); else the first operation after the last agreeing tensor.
    suspects = [n for n in path if set(n.inputs) & changed_inits]
    first = overflow or (suspects or path or [g.producer[tensor]])[0]
    if overflow and overflow not in path:
        path = [n for n in g.nodes if last_index < n.index <= overflow.index
                and n in g.ancestors_after(overflow.outputs[0], last_index)]
    loc.node, loc.op_type = first.name, first.op_type
    loc.path = [f"{n.op_type} {n.name}" for n in path]
    loc.input_errors = {i: agreed[i] for i in first.inputs if i in agreed}


def _first_nonfinite(g: graph.Graph, values: dict, after: int):
    """The first node after `after` whose output holds inf or NaN that none of its inputs
    holds: an overflow starts there, whatever a layer's granularity hides."""
    def bad(name):
        v = values.get(name)
        return isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.isfinite(v).all()

    for node in g.nodes:
        if node.index > after and any(bad(o) for o in node.outputs) and not any(
                bad(i) for i in node.inputs):
            return node
    return None


def _runtime(loc: Localisation, g: graph.Graph, ref: dict, rt: dict) -> None:
    for node in g.nodes:
        for name in node.outputs:
            if name in ref and name in rt and isinstance(ref[name], np.ndarray):
                loc.runtime_compared += 1
                err = relative(np.asarray(ref[name]), np.asarray(rt[name]))
                if err > loc.bound:
                    loc.runtime_node, loc.runtime_op_type, loc.runtime_error = (
                        node.name, node.op_type, err)
                    return


def _weights(loc: Localisation, framework: str, original, model, bound: float) -> None:
    from onnx import numpy_helper

    try:
        obj = getattr(original, "model", None)
        params = ((weights.torch_params(obj) if framework == "pytorch"
                   else weights.keras_params(obj)) if obj is not None else [])
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        loc.weights = [{"param": m.param, "initializer": m.initializer, "max_diff": m.max_diff,
                        "relative": m.relative}
                       for m in weights.changed(weights.match(params, inits), bound)]
    except Exception as e:  # a model whose parameters cannot be read: said, not fatal
        loc.notes.append(f"weights not compared ({type(e).__name__}: {e})")


def locate(case_id: str, framework: str, original, artifact: Path, batch: np.ndarray,
           samples: list[int], bound: float) -> Localisation:
    """Localise a conversion's divergence on `batch` (the failing samples, in the original's
    layout, which the converted graph takes too). original: the runtimes predictor of the
    original; artifact: the .onnx file; bound: the relative error a tensor may differ by."""
    import onnx

    t0 = time.perf_counter()
    loc = Localisation(case_id, list(samples), bound=bound)
    model = onnx.load(str(artifact))
    g = graph.Graph(model)
    feeds = {g.inputs[0]: batch}
    try:
        ref = graph.reference_values(model, feeds)
    except Exception as e:  # an op the reference does not implement
        ref = None
        loc.notes.append(f"the ONNX reference cannot run this graph ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else ''}): the original is "
                         "compared with onnxruntime's tensors, and the runtime with nothing")
    try:
        dtypes = {k: v.dtype for k, v in (ref or {}).items() if isinstance(v, np.ndarray)}
        if ref is None:
            from onnx import shape_inference

            inferred = shape_inference.infer_shapes(model).graph.value_info
            dtypes = {v.name: onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)
                      for v in inferred if v.type.tensor_type.elem_type}
        rt = graph.runtime_values(model, feeds, dtypes)
    except Exception as e:
        rt = None
        loc.notes.append(f"onnxruntime's intermediate tensors not read ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200] if str(e) else ''})")
    _weights(loc, framework, original, model, bound)
    values = ref if ref is not None else rt
    final = original.predict(batch)
    try:
        layers = activations.layer_outputs(original, framework, batch)
    except activations.Unavailable as e:
        layers = []
        loc.notes.append(f"the original's layers are not compared: {e}")
    if values is not None:
        _walk(loc, g, values, layers, np.asarray(final),
              {w["initializer"] for w in loc.weights})
    if ref is not None and rt is not None:
        _runtime(loc, g, ref, rt)
    conv_at = g.producer[loc.tensor].index if loc.node else None
    rt_at = next((n.index for n in g.nodes if n.name == loc.runtime_node), None)
    if conv_at is not None or rt_at is not None:
        loc.first = ("runtime" if rt_at is not None and (conv_at is None or rt_at < conv_at)
                     else "conversion")
    loc.seconds = time.perf_counter() - t0
    return loc


def locate_variant(case_id: str, base: Path, base_id: str, artifact: Path, batch: np.ndarray,
                   samples: list[int], bound: float) -> Localisation:
    """Localise a precision variant's loss (convcheck.locate.variant) against the ONNX
    conversion `base` (its id `base_id`) it was made from, on `batch`. The original is not
    walked: every layer of a variant departs from it by design, and the base conversion's own
    target answers for the converter."""
    t0 = time.perf_counter()
    loc = Localisation(case_id, list(samples), bound=bound, against=base_id)
    try:
        loc.variant = variant.compare(base, artifact, batch)
    except Exception as e:  # said, never replacing the verdict
        loc.notes.append(f"the variant's tensors not compared with {base_id} "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})")
    loc.seconds = time.perf_counter() - t0
    return loc
