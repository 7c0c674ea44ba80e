"""MIL's neural-network operations, as coremltools defines them (ops/defs/iOS15: conv, pool,
linear, normalization, recurrent): convolutions and pooling over any number of spatial axes
(padding by coremltools' own aggregated_pad rule, dilation, groups, ceil mode), linear and
matmul, the normalisations, and lstm / gru / rnn with the definitions' gate orders (lstm
[input, forget, output, cell], gru [reset, output, update]) and named activations."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convcheck.mil.ops import _sigmoid, f32, op  # registered in convcheck.mil.ops.OPS


def _pads(a, spatial: tuple, kernel: tuple, strides, dilations) -> list[tuple[int, int]]:
    """(before, after) per spatial axis: pad_type valid, custom (pad), same (the odd one after)
    or same_lower (before), totals by coremltools' aggregated_pad."""
    from coremltools.converters.mil.mil.ops.defs._utils import aggregated_pad

    pad_type = a("pad_type", "valid")
    custom = [int(p) for p in a("pad")] if a("pad") is not None else [0] * 2 * len(kernel)
    if pad_type == "custom":
        return [(custom[2 * i], custom[2 * i + 1]) for i in range(len(kernel))]
    if pad_type == "valid":
        return [(0, 0)] * len(kernel)
    if pad_type not in ("same", "same_lower"):
        a.unsupported(f"pad_type {pad_type!r}")
    totals = aggregated_pad(pad_type, list(kernel), list(spatial), list(strides),
                            list(dilations))
    if pad_type == "same":
        return [(t // 2, t - t // 2) for t in totals]
    return [(t - t // 2, t // 2) for t in totals]


def _windows(x: np.ndarray, kernel, strides, dilations, first: int = 2) -> np.ndarray:
    """Every window of the (padded) x, strided and dilated: its spatial axes start at `first`
    (2: channels first, (N, C, *out, *kernel); 1: channels last, (N, *out, C, *kernel))."""
    n = len(kernel)
    axes = tuple(range(first, first + n))
    extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations))
    w = sliding_window_view(x, extent, axis=axes)
    index = ((slice(None),) * first + tuple(slice(None, None, s) for s in strides)
             + (slice(None),) * (x.ndim - first - n)
             + tuple(slice(None, None, d) for d in dilations))
    return w[index]


def _ints(v, n: int, default: int = 1) -> list[int]:
    return [int(i) for i in v] if v is not None else [default] * n


@op("conv")
def _conv(a):
    x, w = a("x"), f32(a("weight"))
    n = w.ndim - 2
    kernel = w.shape[2:]
    strides, dilations = _ints(a("strides"), n), _ints(a("dilations"), n)
    groups = int(a("groups", 1))
    pads = _pads(a, x.shape[2:], kernel, strides, dilations)
    # Channels last for the window copy (im2col): each window's values then come in runs of
    # whole channel vectors, where channels first gathers them one element apart a plane away.
    # The input is moved, padded and made float32 in one copy (the previous op's output usually
    # is channels last in memory already: this op returns a channels-first view of it).
    # Measured against the channels-first copy it replaces (benchmarks/reference_runtime.py, the
    # smoke PyTorch ResNet-18's conversions, 256 test images, shared among 2 threads / one
    # call): ML program fp32 3.5 -> 2.2 s / 5.2 -> 2.7 s, fp16 4.6 -> 3.5 s, palettized 4.6 ->
    # 3.4 s, neuralnetwork 3.6 -> 2.3 s / 5.5 -> 2.8 s. The sums run in another order: fp32
    # outputs agree to 1e-6, fp16 ones to one fp16 rounding (0.002 at most on the smoke Keras
    # ResNet-18). What is left in fp16 is mostly numpy's float16 casts (each op's result is
    # rounded to its declared dtype).
    last = np.moveaxis(np.asarray(x), 1, -1)
    inner = last.shape[1:-1]
    padded = np.zeros((last.shape[0], *(s + lo + hi for s, (lo, hi) in zip(inner, pads)),
                       last.shape[-1]), np.float32)
    padded[(slice(None), *(slice(lo, lo + s) for s, (lo, _) in zip(inner, pads)))] = last
    x = padded
    win = _windows(x, kernel, strides, dilations, first=1)  # (N, *out, C, *k)
    out = win.shape[1:1 + n]
    win = np.moveaxis(win, 1 + n, -1)  # (N, *out, *k, C)
    cout, cin = w.shape[0], x.shape[-1] // groups
    per = cout // groups
    parts = []
    for g in range(groups):  # (N * out, k * Cin) x (k * Cin, Cout/G): float32 sums
        cols = np.ascontiguousarray(win[..., g * cin:(g + 1) * cin]).reshape(-1, cin * int(
            np.prod(kernel)))
        wg = np.moveaxis(w[g * per:(g + 1) * per], 1, -1).reshape(per, -1)  # (Cout/G, *k, Cin)
        parts.append((cols @ wg.T).reshape(x.shape[0], *out, per))
    y = np.moveaxis(parts[0] if groups == 1 else np.concatenate(parts, axis=-1), -1, 1)
    bias = a("bias")
    if bias is not None:
        y = y + f32(bias).reshape((-1,) + (1,) * n)
    return y


def _pool(a, kind: str):
    x = f32(a("x"))
    kernel = _ints(a("kernel_sizes"), x.ndim - 2)
    n = len(kernel)
    strides = _ints(a("strides"), n)
    pads = _pads(a, x.shape[2:], kernel, strides, [1] * n)
    if a("ceil_mode", False):
        # The last window may run past the (padded) input, as long as it starts inside it
        # (or in the leading padding): the output size coremltools' shape inference gives.
        extra = []
        for size, k, s, (lo, hi) in zip(x.shape[2:], kernel, strides, pads):
            length = size + lo + hi
            out = -(-(length - k) // s) + 1
            if (out - 1) * s >= size + lo:
                out -= 1
            extra.append(max(0, (out - 1) * s + k - length))
    else:
        extra = [0] * n
    widths = [(0, 0), (0, 0)] + [(lo, hi + e) for (lo, hi), e in zip(pads, extra)]
    if kind == "max":
        padded = np.pad(x, widths, constant_values=-np.inf)
        return _windows(padded, kernel, strides, [1] * n).max(axis=tuple(range(-n, 0)))
    total = _windows(np.pad(x, widths), kernel, strides, [1] * n).sum(axis=tuple(range(-n, 0)))
    # The count: the window's elements inside the input, plus its explicit padding unless
    # exclude_padding_from_average (never the ceil mode's extra).
    inside = np.pad(np.ones((1, 1, *x.shape[2:]), np.float32), widths)
    if not a("exclude_padding_from_average", False):
        inside = np.pad(np.ones((1, 1, *(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads))),
                                np.float32),
                        [(0, 0), (0, 0)] + [(0, e) for e in extra])
    count = _windows(inside, kernel, strides, [1] * n).sum(axis=tuple(range(-n, 0)))
    return total / count


@op("max_pool")
def _max_pool(a):
    return _pool(a, "max")


@op("avg_pool")
def _avg_pool(a):
    return _pool(a, "avg")


@op("linear")
def _linear(a):
    y = np.matmul(f32(a("x")), f32(a("weight")).T)
    bias = a("bias")
    return y if bias is None else y + f32(bias)


@op("matmul")
def _matmul(a):
    x, y = f32(a("x")), f32(a("y"))
    if a("transpose_x", False):
        x = np.swapaxes(x, -1, -2) if x.ndim > 1 else x
    if a("transpose_y", False):
        y = np.swapaxes(y, -1, -2) if y.ndim > 1 else y
    return np.matmul(x, y)


def _channel(v, ndim: int):
    return f32(v).reshape((-1,) + (1,) * (ndim - 2))


@op("batch_norm")
def _batch_norm(a):
    x = f32(a("x"))
    mean, var = _channel(a("mean"), x.ndim), _channel(a("variance"), x.ndim)
    y = (x - mean) / np.sqrt(var + a("epsilon", 1e-5))
    if a("gamma") is not None:
        y = y * _channel(a("gamma"), x.ndim)
    if a("beta") is not None:
        y = y + _channel(a("beta"), x.ndim)
    return y


def _normalised(a, axes: tuple, affine_shape) -> np.ndarray:
    """(x - mean) / sqrt(var + epsilon) over `axes`, then gamma and beta (reshaped)."""
    x = f32(a("x"))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(
        x.var(axis=axes, keepdims=True) + a("epsilon", 1e-5))
    for name, combine in (("gamma", np.multiply), ("beta", np.add)):
        if a(name) is not None:
            y = combine(y, affine_shape(f32(a(name))))
    return y


@op("instance_norm")
def _instance_norm(a):
    ndim = np.ndim(a("x"))
    return _normalised(a, tuple(range(2, ndim)), lambda v: v.reshape((-1,) + (1,) * (ndim - 2)))


@op("layer_norm")
def _layer_norm(a):
    axes = a("axes")
    axes = tuple(int(i) for i in (axes if axes is not None else range(np.ndim(a("x")))))
    return _normalised(a, axes, lambda v: v)


# ------------------------------------------------------------------ recurrent

_ACTIVATIONS = {"sigmoid": _sigmoid, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
                "linear": lambda v: v}


def _activation(a, name: str, default: str):
    kind = str(a(name, default)).lower()
    if kind not in _ACTIVATIONS:  # hard_sigmoid and scaled_tanh take parameters MIL's op lacks
        a.unsupported(f"{name} {kind!r}")
    return _ACTIVATIONS[kind]


def _steps(length: int, reverse: bool):
    return range(length - 1, -1, -1) if reverse else range(length)


def _lstm_direction(x, h, c, w_ih, w_hh, bias, reverse, act_rec, act_cell, act):
    hidden = w_hh.shape[1]
    xw = np.einsum("tbi,gi->tbg", x, w_ih) + (0 if bias is None else bias)
    out = np.zeros((x.shape[0], x.shape[1], hidden), np.float32)
    for t in _steps(x.shape[0], reverse):
        gates = xw[t] + h @ w_hh.T
        i, f, o = (act_rec(gates[:, k * hidden:(k + 1) * hidden]) for k in range(3))
        z = act_cell(gates[:, 3 * hidden:])
        c = f * c + i * z
        h = o * act(c)
        out[t] = h
    return out, h, c


@op("lstm")
def _lstm(a):
    if a("peephole") is not None or a("peephole_back") is not None:
        a.unsupported("peephole weights")
    if a("clip") is not None:
        a.unsupported("clip")
    x, h0, c0 = f32(a("x")), f32(a("initial_h")), f32(a("initial_c"))
    acts = (_activation(a, "recurrent_activation", "sigmoid"),
            _activation(a, "cell_activation", "tanh"), _activation(a, "activation", "tanh"))
    direction = a("direction", "forward")
    bias = None if a("bias") is None else f32(a("bias"))
    if direction == "bidirectional":
        hidden = f32(a("weight_hh")).shape[1]
        back_bias = None if a("bias_back") is None else f32(a("bias_back"))
        fw = _lstm_direction(x, h0[:, :hidden], c0[:, :hidden], f32(a("weight_ih")),
                             f32(a("weight_hh")), bias, False, *acts)
        bw = _lstm_direction(x, h0[:, hidden:], c0[:, hidden:], f32(a("weight_ih_back")),
                             f32(a("weight_hh_back")), back_bias, True, *acts)
        out = np.concatenate([fw[0], bw[0]], axis=-1)
        h, c = np.concatenate([fw[1], bw[1]], -1), np.concatenate([fw[2], bw[2]], -1)
    else:
        reverse = direction == "reverse"
        out, h, c = _lstm_direction(x, h0, c0, f32(a("weight_ih")), f32(a("weight_hh")),
                                    bias, reverse, *acts)
    # Not a sequence: each direction's final state (the backward one's is at step 0).
    return (out if a("output_sequence", False) else h[None]), h, c


@op("gru")
def _gru(a):
    x, h = f32(a("x")), f32(a("initial_h"))
    w_ih, w_hh = f32(a("weight_ih")), f32(a("weight_hh"))
    hidden = w_hh.shape[1]
    bias = np.zeros(3 * hidden, np.float32) if a("bias") is None else f32(a("bias"))
    act_rec = _activation(a, "recurrent_activation", "sigmoid")
    act = _activation(a, "activation", "tanh")
    xw = np.einsum("tbi,gi->tbg", x, w_ih) + bias
    out = np.zeros((x.shape[0], x.shape[1], hidden), np.float32)
    for t in _steps(x.shape[0], a("direction", "forward") == "reverse"):
        hw = h @ w_hh.T  # [reset, output, update]
        r = act_rec(xw[t, :, :hidden] + hw[:, :hidden])
        z = act_rec(xw[t, :, 2 * hidden:] + hw[:, 2 * hidden:])
        o = act(xw[t, :, hidden:2 * hidden] + r * hw[:, hidden:2 * hidden])
        h = (1 - z) * o + z * h
        out[t] = h
    return (out if a("output_sequence", False) else h[None]), h


@op("rnn")
def _rnn(a):
    x, h = f32(a("x")), f32(a("initial_h"))
    w_ih, w_hh = f32(a("weight_ih")), f32(a("weight_hh"))
    bias = 0 if a("bias") is None else f32(a("bias"))
    act = _activation(a, "activation", "tanh")
    out = np.zeros((x.shape[0], x.shape[1], w_hh.shape[0]), np.float32)
    for t in _steps(x.shape[0], a("direction", "forward") == "reverse"):
        h = act(x[t] @ w_ih.T + h @ w_hh.T + bias)
        out[t] = h
    return (out if a("output_sequence", False) else h[None]), h
