"""MIL's elementwise, reduction and tensor operations, as coremltools defines them
(coremltools/converters/mil/mil/ops/defs/iOS15 and later: elementwise_binary, elementwise_unary,
activation, reduction, tensor_operation, tensor_transformation, scatter_gather, control_flow's
select). Each takes the op's Args and returns its output(s); the interpreter stores each in its
declared dtype. Where coremltools has a helper for an op's semantics (slicing, gather), it is
used, so the two cannot drift apart.
"""
from __future__ import annotations

import math

import numpy as np

OPS: dict = {}


def op(*names):
    def register(fn):
        for n in names:
            OPS[n] = fn
        return fn
    return register


def f32(x) -> np.ndarray:
    """Computed in float32 (an fp16 tensor too: its result is rounded back to fp16)."""
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == np.float16 else x


# ------------------------------------------------------------------ elementwise binary

_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide,
    "floor_div": np.floor_divide, "pow": np.power, "maximum": np.maximum,
    "minimum": np.minimum, "mod": np.mod, "equal": np.equal, "not_equal": np.not_equal,
    "less": np.less, "less_equal": np.less_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "logical_and": np.logical_and,
    "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}


def _binary(fn):
    def run(a):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(f32(a("x")), f32(a("y")))
    return run


for _name, _fn in _BINARY.items():
    OPS[_name] = _binary(_fn)


# ------------------------------------------------------------------ elementwise unary


def _sigmoid(x):
    x = f32(x)
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


_UNARY = {
    "relu": lambda x: np.maximum(x, 0), "relu6": lambda x: np.clip(x, 0, 6),
    "sigmoid": _sigmoid, "tanh": np.tanh, "exp": np.exp, "exp2": np.exp2, "sqrt": np.sqrt,
    "abs": np.abs, "sign": np.sign, "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "sinh": np.sinh, "cosh": np.cosh,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atanh": np.arctanh,
    "square": np.square, "logical_not": np.logical_not, "identity": lambda x: x,
    "softsign": lambda x: x / (1 + np.abs(x)), "silu": lambda x: x * _sigmoid(x),
    "softplus": lambda x: np.logaddexp(0, x),
    "erf": np.vectorize(math.erf, otypes=[np.float32]),
}


def _unary(fn):
    def run(a):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return fn(f32(a("x")))
    return run


for _name, _fn in _UNARY.items():
    OPS[_name] = _unary(_fn)


@op("log")
def _log(a):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(f32(a("x")) + a("epsilon", 0.0))


@op("rsqrt")
def _rsqrt(a):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 / np.sqrt(f32(a("x")) + a("epsilon", 1e-12))


@op("inverse")
def _inverse(a):
    with np.errstate(divide="ignore"):
        return 1 / (f32(a("x")) + a("epsilon", 1e-4))


@op("clip")
def _clip(a):
    return np.minimum(np.maximum(f32(a("x")), a("alpha")), a("beta"))


@op("leaky_relu")
def _leaky_relu(a):
    x = f32(a("x"))
    return np.where(x >= 0, x, a("alpha", 0.01) * x)


@op("elu")
def _elu(a):
    x = f32(a("x"))
    return np.where(x > 0, x, a("alpha", 1.0) * np.expm1(np.minimum(x, 0)))


@op("sigmoid_hard")
def _sigmoid_hard(a):
    return np.clip(a("alpha", 0.2) * f32(a("x")) + a("beta", 0.5), 0, 1)


@op("linear_activation")
def _linear_activation(a):
    return a("alpha") * f32(a("x")) + a("beta", 0.0)


@op("scaled_tanh")
def _scaled_tanh(a):
    return a("alpha", 1.0) * np.tanh(a("beta", 1.0) * f32(a("x")))


@op("thresholded_relu")
def _thresholded_relu(a):
    x = f32(a("x"))
    return np.where(x > a("alpha", 1.0), x, 0)


@op("prelu")
def _prelu(a):
    x, alpha = f32(a("x")), f32(a("alpha"))  # alpha per channel: axis -3 (C of [B, C, H, W])
    return np.where(x >= 0, x, x * alpha.reshape((-1,) + (1,) * (x.ndim - 2)))


@op("gelu")
def _gelu(a):
    x, mode = f32(a("x")), a("mode", "EXACT")
    if mode == "EXACT":
        return 0.5 * x * (1 + _UNARY["erf"](x / math.sqrt(2)))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(1.702 * x)
    a.unsupported(f"mode {mode!r}")


@op("cast")
def _cast(a):
    # the output's declared dtype is the cast, which the interpreter applies (lazily where it
    # widens float16: convcheck.mil.interpreter.Widened)
    return a.raw("x")


@op("softmax")
def _softmax(a):
    x, axis = f32(a("x")), int(a("axis", -1))
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@op("select")
def _select(a):
    return np.where(a("cond"), f32(a("a")), f32(a("b")))


# ------------------------------------------------------------------ reductions


def _axes(a):
    axes = a("axes")
    return None if axes is None else tuple(int(i) for i in np.atleast_1d(axes))


def _reduce(fn):
    def run(a):
        return fn(f32(a("x")), axis=_axes(a), keepdims=bool(a("keep_dims", False)))
    return run


for _name, _fn in {"reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max,
                   "reduce_min": np.min, "reduce_prod": np.prod}.items():
    OPS[_name] = _reduce(_fn)


@op("reduce_l2_norm")
def _reduce_l2(a):
    x = f32(a("x"))
    return np.sqrt(np.sum(x * x, axis=_axes(a), keepdims=bool(a("keep_dims", False))))


@op("reduce_log_sum_exp")
def _reduce_lse(a):
    x, axes, keep = f32(a("x")), _axes(a), bool(a("keep_dims", False))
    m = np.max(x, axis=axes, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return out if keep else np.squeeze(out, axis=axes)


@op("reduce_argmax", "reduce_argmin")
def _reduce_arg(a):
    fn = np.argmax if a.op.op_type == "reduce_argmax" else np.argmin
    out = fn(f32(a("x")), axis=int(a("axis", -1)))
    return np.expand_dims(out, int(a("axis", -1))) if a("keep_dims", False) else out


# ------------------------------------------------------------------ shapes and layout


@op("reshape")
def _reshape(a):
    x, shape = a("x"), [int(s) for s in np.atleast_1d(a("shape"))]
    if len(shape) == x.ndim:  # 0: the input's dimension (when the ranks agree)
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return np.reshape(x, shape)


@op("transpose")
def _transpose(a):
    return np.transpose(a("x"), [int(p) for p in a("perm")])


@op("squeeze")
def _squeeze(a):
    axes = _axes(a)
    return np.squeeze(a("x"), axis=axes)


@op("expand_dims")
def _expand_dims(a):
    # coremltools' value_inference: negative axes count from the output's rank.
    x = np.asarray(a("x"))
    axes = [int(i) for i in np.atleast_1d(a("axes"))]
    rank = x.ndim + len(axes)
    shape = list(x.shape)
    for axis in sorted(rank + i if i < 0 else i for i in axes):
        shape.insert(axis, 1)
    return np.reshape(x, shape)


@op("flatten2d")
def _flatten2d(a):
    x, axis = a("x"), int(a("axis", 1))
    axis = axis + x.ndim if axis < 0 else axis
    return np.reshape(x, (int(np.prod(x.shape[:axis])), -1))


@op("concat")
def _concat(a):
    values, axis = a("values"), int(a("axis"))
    if a("interleave", False):
        a.unsupported("interleave = true")
    return np.concatenate([np.atleast_1d(v) for v in values], axis=axis)


@op("stack")
def _stack(a):
    return np.stack(a("values"), axis=int(a("axis")))


@op("split")
def _split(a):
    x, axis = a("x"), int(a("axis"))
    sizes, n = a("split_sizes"), a("num_splits")
    if sizes is not None:
        return np.split(x, np.cumsum([int(s) for s in sizes])[:-1], axis=axis)
    return np.split(x, int(n), axis=axis)


@op("slice_by_index")
def _slice_by_index(a):
    from coremltools.converters.mil.mil.ops.defs._utils import (
        get_squeeze_axes,
        solve_slice_by_index_slice,
    )

    x = np.asarray(a("x"))
    slices = solve_slice_by_index_slice(x.shape, a("begin"), a("end"), a("stride"),
                                        a("begin_mask"), a("end_mask"), a("squeeze_mask"))
    out = x[tuple(slices)]
    axes = get_squeeze_axes(a("squeeze_mask"), x.ndim)
    return np.squeeze(out, axis=tuple(axes)) if axes else out


@op("slice_by_size")
def _slice_by_size(a):
    x = np.asarray(a("x"))
    begin, size = [int(b) for b in a("begin")], [int(s) for s in a("size")]
    return x[tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))]


@op("gather")
def _gather(a):
    from coremltools.converters.mil.mil.ops.defs._utils import compute_gather

    x, indices = np.asarray(a("x")), np.asarray(a("indices")).astype(np.int64)
    axis = int(a("axis", 0))
    bad = (indices >= x.shape[axis]) | (indices < -x.shape[axis])
    if bad.any():  # Core ML's result is undefined there: said, not guessed
        raise IndexError(f"gather: index {int(indices[bad].flat[0])} out of range for axis "
                         f"{axis} of size {x.shape[axis]}")
    return compute_gather(x, indices, axis, int(a("batch_dims", 0)))


@op("gather_along_axis")
def _gather_along_axis(a):
    return np.take_along_axis(np.asarray(a("x")), np.asarray(a("indices")).astype(np.int64),
                              axis=int(a("axis", 0)))


_SCATTER = {"update": None, "add": np.add, "sub": np.subtract, "mul": np.multiply,
            "div": np.divide, "max": np.maximum, "min": np.minimum}


@op("scatter")
def _scatter(a):
    # In the data's own dtype, each updated slice computed in float32 and rounded back into it:
    # the values of the whole tensor computed in float32 and rounded once, without casting the
    # whole tensor there and back. A recurrent loop scatters each step into its output
    # sequence, and those two casts per step made an fp16 GRU's test set take 55 s.
    data = np.array(a("data"), copy=True)
    indices = np.atleast_1d(np.asarray(a("indices")).astype(np.int64))
    updates, axis, mode = np.asarray(a("updates")), int(a("axis", 0)), a("mode", "add")
    if mode not in _SCATTER:
        a.unsupported(f"mode {mode!r}")
    axis = axis + data.ndim if axis < 0 else axis
    moved, upd = np.moveaxis(data, axis, 0), np.moveaxis(updates, axis, 0)
    for i, index in enumerate(indices):  # in order: a repeated index takes the later update
        moved[index] = (upd[i] if mode == "update"
                        else _SCATTER[mode](f32(moved[index]), f32(upd[i])))
    return data


@op("shape")
def _shape(a):
    return np.array(np.shape(a("x")), dtype=np.int32)


@op("fill")
def _fill(a):
    return np.full([int(s) for s in np.atleast_1d(a("shape"))], a("value", 0.0))


@op("tile")
def _tile(a):
    return np.tile(a("x"), [int(r) for r in a("reps")])


@op("reverse")
def _reverse(a):
    axes = _axes(a)
    return np.flip(a("x"), axis=axes)


@op("range_1d")
def _range_1d(a):
    return np.arange(a("start"), a("end"), a("step"))


@op("pad")
def _pad(a):
    x, pad = f32(a("x")), [int(p) for p in a("pad")]
    mode = a("mode", "constant")
    n = len(pad) // 2  # the last n axes
    widths = [(0, 0)] * (x.ndim - n) + [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    if mode == "constant":
        return np.pad(x, widths, constant_values=a("constant_val", 0.0))
    if mode == "reflect":
        return np.pad(x, widths, mode="reflect")
    if mode == "replicate":
        return np.pad(x, widths, mode="edge")
    a.unsupported(f"mode {mode!r}")
