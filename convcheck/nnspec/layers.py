"""The neuralnetwork layers, as NeuralNetwork.proto defines them (coremltools.proto's
NeuralNetwork_pb2 carries the fields and their defaults). Each takes a Layer (its parameters and
input arrays) and returns its output(s). Convolution and pooling run on the MIL interpreter's own
code (convcheck.mil.op_function), with this format's padding mapped onto MIL's pad types, so the
two interpreters cannot disagree on a window.

Layout: the rank-5 layers (convolution, pooling, padding, innerProduct on rank >= 3, the legacy
slice and concat, batchnorm) read their trailing axes as [C, H, W] whatever the leading axes are,
which is what the spec's [Seq, Batch, C, H, W] and its rank-4 [Batch, C, H, W] come to.
"""
from __future__ import annotations

import numpy as np

from convcheck.mil import op_function

LAYERS: dict = {}


class Unsupported(Exception):
    """The model holds a layer the interpreter does not implement, or a field of one whose meaning
    it would have to guess."""


def layer(*names):
    def register(fn):
        for n in names:
            LAYERS[n] = fn
        return fn
    return register


class Layer:
    """One layer of the spec: its type, name, parameters (the layer's oneof message) and inputs."""

    def __init__(self, spec_layer, inputs: list):
        self.spec = spec_layer
        self.type = spec_layer.WhichOneof("layer")
        self.name = spec_layer.name
        self.p = getattr(spec_layer, self.type)
        self.x = inputs

    def unsupported(self, why: str):
        raise Unsupported(f"{self.type} {self.name!r}: {why}")

    def weights(self, w, shape=None) -> np.ndarray:
        """A WeightParams as float32: float values, or float16 ones widened as Core ML does on
        load. Quantized weights (rawValue / int8RawValue with a quantization) are refused."""
        if w.HasField("quantization") or len(w.int8RawValue) or len(w.rawValue):
            self.unsupported("quantized weights")
        if len(w.float16Value):
            values = np.frombuffer(w.float16Value, dtype="<f2").astype(np.float32)
        else:
            values = np.asarray(w.floatValue, dtype=np.float32)
        return values.reshape(shape) if shape is not None else values


class _Args:
    """The MIL op functions' args(name, default) over given values (op_function's protocol)."""

    def __init__(self, where: Layer, **values):
        self.where, self.values = where, values

    def __call__(self, name: str, default=None):
        value = self.values.get(name)
        return default if value is None else value

    def unsupported(self, why: str):
        self.where.unsupported(why)


def _f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _leading(x: np.ndarray, rank: int = 3):
    """x as (prod(leading), *last `rank` axes), and a function giving a result its leading axes
    back."""
    if x.ndim < rank + 1:
        raise ValueError(f"a rank-{x.ndim} input where the layer needs rank {rank + 1} or more")
    lead = x.shape[:-rank]
    return x.reshape((-1,) + x.shape[-rank:]), (lambda y: y.reshape(lead + y.shape[1:]))


def _border(amounts) -> list[int]:
    """BorderAmounts [height, width] as MIL's custom pad [top, bottom, left, right]."""
    edges = list(amounts.borderAmounts)
    if not edges:
        return [0, 0, 0, 0]
    if len(edges) != 2:
        raise ValueError(f"{len(edges)} border amounts, the layer pads height and width")
    return [edges[0].startEdgeSize, edges[0].endEdgeSize,
            edges[1].startEdgeSize, edges[1].endEdgeSize]


def _same(same) -> str:
    # BOTTOM_RIGHT_HEAVY puts the odd pixel after (MIL's same), TOP_LEFT_HEAVY before.
    return "same" if same.asymmetryMode == 0 else "same_lower"


# ------------------------------------------------------------------ convolution and pooling


@layer("convolution")
def _convolution(lay: Layer):
    p = lay.p
    if p.isDeconvolution:
        lay.unsupported("deconvolution")
    kernel = list(p.kernelSize) or [3, 3]
    groups = p.nGroups or 1
    w = lay.weights(p.weights, (p.outputChannels, p.kernelChannels, *kernel))
    bias = lay.weights(p.bias) if p.hasBias else None
    padding = p.WhichOneof("ConvolutionPaddingType")
    pad_type, pad = ("custom", _border(p.valid.paddingAmounts)) if padding == "valid" else (
        _same(p.same), None)
    x, back = _leading(lay.x[0])
    y = op_function("conv")(_Args(lay, x=x, weight=w, bias=bias, strides=list(p.stride) or [1, 1],
                                  dilations=list(p.dilationFactor) or [1, 1], groups=groups,
                                  pad_type=pad_type, pad=pad))
    return back(y)


@layer("pooling")
def _pooling(lay: Layer):
    p = lay.p
    kind = {0: "max", 1: "avg"}.get(p.type)
    if kind is None:
        lay.unsupported("L2 pooling")
    x, back = _leading(lay.x[0])
    if p.globalPooling:
        y = x.max(axis=(-2, -1), keepdims=True) if kind == "max" else x.mean(
            axis=(-2, -1), keepdims=True)
        return back(y)
    padding = p.WhichOneof("PoolingPaddingType")
    ceil = False
    if padding == "valid":
        pad_type, pad = "custom", _border(p.valid.paddingAmounts)
    elif padding == "same":
        pad_type, pad = _same(p.same), None
    else:
        # includeLastPixel: symmetric padding (height, width), and a last window that may run
        # past the input as long as it starts inside it: MIL's ceil mode.
        h, w = (list(p.includeLastPixel.paddingAmounts) or [0, 0])
        pad_type, pad, ceil = "custom", [h, h, w, w], True
    y = op_function(f"{kind}_pool")(_Args(
        lay, x=x, kernel_sizes=list(p.kernelSize) or [3, 3], strides=list(p.stride) or [1, 1],
        pad_type=pad_type, pad=pad, ceil_mode=ceil,
        exclude_padding_from_average=p.avgPoolExcludePadding))
    return back(y)


@layer("padding")
def _padding(lay: Layer):
    p = lay.p
    top, bottom, left, right = _border(p.paddingAmounts)
    x = lay.x[0]
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    kind = p.WhichOneof("PaddingType")
    if kind == "constant":
        return np.pad(x, widths, constant_values=p.constant.value)
    return np.pad(x, widths, mode={"reflection": "reflect", "replication": "edge"}[kind])


# ------------------------------------------------------------------ dense


@layer("innerProduct")
def _inner_product(lay: Layer):
    p = lay.p
    if p.int8DynamicQuantize:
        lay.unsupported("int8 dynamic quantization")
    w = lay.weights(p.weights, (p.outputChannels, p.inputChannels))
    b = lay.weights(p.bias) if p.hasBias else 0
    x = lay.x[0]
    if x.shape[-1] == p.inputChannels:  # rank 1 or 2: (..., C_in)
        return x @ w.T + b
    if x.ndim >= 3 and x.shape[-3:] == (p.inputChannels, 1, 1):  # rank 3-5: (..., C_in, 1, 1)
        y = x[..., 0, 0] @ w.T + b
        return y[..., None, None]
    raise ValueError(f"input of shape {x.shape} for {p.inputChannels} input channels")


@layer("batchedMatmul")
def _batched_matmul(lay: Layer):
    p = lay.p
    if p.int8DynamicQuantize:
        lay.unsupported("int8 dynamic quantization")
    a = lay.x[0]
    if len(lay.x) == 2:
        b = lay.x[1]
    else:
        # Stored (columns, rows), as innerProduct stores (out, in): read back as (rows, columns).
        b = lay.weights(p.weights,
                        (p.weightMatrixSecondDimension, p.weightMatrixFirstDimension)).T
    if p.transposeA and a.ndim > 1:
        a = np.swapaxes(a, -1, -2)
    if p.transposeB and b.ndim > 1:
        b = np.swapaxes(b, -1, -2)
    y = np.matmul(a, b)
    return y + lay.weights(p.bias) if len(lay.x) == 1 and p.hasBias else y


@layer("embeddingND")
def _embedding_nd(lay: Layer):
    p = lay.p
    # weights: (embeddingSize, vocabSize); the input's last axis (size 1) holds the ids.
    table = lay.weights(p.weights, (p.embeddingSize, p.vocabSize)).T
    ids = lay.x[0]
    if ids.shape[-1] != 1:
        raise ValueError(f"ids of shape {ids.shape}: the last axis must be 1")
    index = ids[..., 0].astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= p.vocabSize):
        raise ValueError(f"an id outside [0, {p.vocabSize}): {index.min()}..{index.max()}")
    y = table[index]
    return y + lay.weights(p.bias) if p.hasBias else y


@layer("batchnorm")
def _batchnorm(lay: Layer):
    p = lay.p
    if p.computeMeanVar or p.instanceNormalization:
        lay.unsupported("mean and variance computed from the input")
    x = lay.x[0]
    shape = (p.channels, 1, 1)
    gamma, beta = lay.weights(p.gamma, shape), lay.weights(p.beta, shape)
    mean, var = lay.weights(p.mean, shape), lay.weights(p.variance, shape)
    return gamma * (x - mean) / np.sqrt(var + p.epsilon) + beta


# ------------------------------------------------------------------ elementwise


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))


def activation(lay: Layer, params, x):
    """ActivationParams' nonlinearity applied to x (the recurrent layers' gates use it too)."""
    kind = params.WhichOneof("NonlinearityType")
    q = getattr(params, kind) if kind else None
    if kind == "linear":
        return q.alpha * x + q.beta
    if kind == "ReLU":
        return np.maximum(x, 0)
    if kind == "leakyReLU":
        return np.where(x >= 0, x, q.alpha * x)
    if kind == "tanh":
        return np.tanh(x)
    if kind == "scaledTanh":
        return q.alpha * np.tanh(q.beta * x)
    if kind == "sigmoid":
        return _sigmoid(x)
    if kind == "sigmoidHard":
        return np.clip(q.alpha * x + q.beta, 0, 1)
    if kind == "ELU":
        return np.where(x >= 0, x, q.alpha * np.expm1(np.minimum(x, 0)))
    if kind == "softsign":
        return x / (1 + np.abs(x))
    if kind == "softplus":
        return np.logaddexp(0, x)
    lay.unsupported(f"activation {kind!r}")


@layer("activation")
def _activation(lay: Layer):
    return activation(lay, lay.p, lay.x[0])


@layer("clip")
def _clip(lay: Layer):
    return np.clip(lay.x[0], lay.p.minVal, lay.p.maxVal)


@layer("add")
def _add(lay: Layer):
    # One input: plus alpha. Several: their (broadcast) sum.
    return lay.x[0] + lay.p.alpha if len(lay.x) == 1 else sum(lay.x[1:], lay.x[0])


@layer("multiply")
def _multiply(lay: Layer):
    if len(lay.x) == 1:
        return lay.x[0] * lay.p.alpha
    out = lay.x[0]
    for v in lay.x[1:]:
        out = out * v
    return out


_BROADCASTABLE = {"addBroadcastable": np.add, "subtractBroadcastable": np.subtract,
                  "multiplyBroadcastable": np.multiply, "divideBroadcastable": np.divide,
                  "maxBroadcastable": np.maximum, "minBroadcastable": np.minimum}


def _broadcastable(fn):
    def run(lay: Layer):
        with np.errstate(divide="ignore", invalid="ignore"):
            return fn(lay.x[0], lay.x[1])
    return run


for _name, _fn in _BROADCASTABLE.items():
    LAYERS[_name] = _broadcastable(_fn)


@layer("lessThan")
def _less_than(lay: Layer):
    other = lay.x[1] if len(lay.x) == 2 else lay.p.alpha
    return (lay.x[0] < other).astype(np.float32)


@layer("whereBroadcastable")
def _where(lay: Layer):
    return np.where(lay.x[0] != 0, lay.x[1], lay.x[2])


@layer("softmaxND")
def _softmax_nd(lay: Layer):
    x = lay.x[0]
    e = np.exp(x - x.max(axis=lay.p.axis, keepdims=True))
    return e / e.sum(axis=lay.p.axis, keepdims=True)


@layer("reduceMean")
def _reduce_mean(lay: Layer):
    p = lay.p
    axes = None if p.reduceAll else tuple(p.axes)
    return lay.x[0].mean(axis=axes, keepdims=p.keepDims)


# ------------------------------------------------------------------ shapes and indexing


@layer("copy")
def _copy(lay: Layer):
    return lay.x[0]


@layer("loadConstantND")
def _load_constant_nd(lay: Layer):
    return lay.weights(lay.p.data, tuple(lay.p.shape))


@layer("getShape")
def _get_shape(lay: Layer):
    return np.asarray(lay.x[0].shape, np.float32)


@layer("fillDynamic")
def _fill_dynamic(lay: Layer):
    return np.full(tuple(int(s) for s in lay.x[0].ravel()), lay.p.value, np.float32)


@layer("reshapeStatic")
def _reshape_static(lay: Layer):
    return lay.x[0].reshape(tuple(lay.p.targetShape))


@layer("flattenTo2D")
def _flatten_to_2d(lay: Layer):
    x = lay.x[0]
    axis = lay.p.axis % x.ndim if x.ndim else 0
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


@layer("transpose")
def _transpose(lay: Layer):
    return np.transpose(lay.x[0], tuple(lay.p.axes))


@layer("expandDims")
def _expand_dims(lay: Layer):
    return np.expand_dims(lay.x[0], tuple(lay.p.axes))


@layer("squeeze")
def _squeeze(lay: Layer):
    x = lay.x[0]
    if lay.p.squeezeAll:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(lay.p.axes))


@layer("concatND")
def _concat_nd(lay: Layer):
    if lay.p.interleave:
        lay.unsupported("interleave")
    return np.concatenate(lay.x, axis=lay.p.axis)


@layer("concat")
def _concat(lay: Layer):
    if lay.p.sequenceConcat:
        lay.unsupported("sequence concat")
    return np.concatenate(lay.x, axis=-3)  # along C of [..., C, H, W]


@layer("splitND")
def _split_nd(lay: Layer):
    p, x = lay.p, lay.x[0]
    if len(p.splitSizes):
        return np.split(x, np.cumsum(list(p.splitSizes))[:-1], axis=p.axis)
    return np.split(x, p.numSplits, axis=p.axis)


@layer("gather")
def _gather(lay: Layer):
    return np.take(lay.x[0], lay.x[1].astype(np.int64), axis=lay.p.axis)


@layer("scatter")
def _scatter(lay: Layer):
    data, index, updates = lay.x
    axis = lay.p.axis
    out = np.moveaxis(data.copy(), axis, 0)
    index = index.astype(np.int64)
    moved = np.moveaxis(updates, axis, 0) if updates.ndim == data.ndim else updates
    mode = lay.p.mode
    ufunc = {1: np.add, 2: np.subtract, 3: np.multiply, 4: np.divide, 5: np.maximum,
             6: np.minimum}.get(mode)
    if mode == 0:
        out[index] = moved
    else:
        ufunc.at(out, index, moved)
    return np.moveaxis(out, 0, axis)


@layer("slice")
def _slice(lay: Layer):
    # The legacy slice: numpy's [start:end:stride] along C, H or W of [..., C, H, W].
    p, x = lay.p, lay.x[0]
    if p.stride <= 0:
        lay.unsupported(f"stride {p.stride}")
    axis = (-3, -2, -1)[p.axis]
    index = [slice(None)] * x.ndim
    index[axis] = slice(p.startIndex, p.endIndex, p.stride)
    return x[tuple(index)]


@layer("sliceStatic")
def _slice_static(lay: Layer):
    p, x = lay.p, lay.x[0]
    index, squeeze = [], []
    for axis in range(x.ndim):
        begin = None if p.beginMasks[axis] else p.beginIds[axis]
        end = None if p.endMasks[axis] else p.endIds[axis]
        index.append(slice(begin, end, p.strides[axis]))
        if len(p.squeezeMasks) and p.squeezeMasks[axis]:
            squeeze.append(axis)
    y = x[tuple(index)]
    return np.squeeze(y, axis=tuple(squeeze)) if squeeze else y


# ------------------------------------------------------------------ recurrent


@layer("uniDirectionalLSTM")
def _lstm(lay: Layer):
    """Gates i (input), f (forget), z (block input), o (output); activations [f, g, h]:
    i, f, o = f(W x + R h + b), z = g(...), c = f * c + i * z clipped to the cell clip
    threshold, h = o * h(c)."""
    p, q = lay.p, lay.p.params
    if q.hasPeepholeVectors or q.coupledInputAndForgetGate or p.reverseInput:
        lay.unsupported("peephole vectors, a coupled input and forget gate or a reversed input")
    if q.cellClipThreshold <= 0:
        lay.unsupported(f"cellClipThreshold {q.cellClipThreshold}")
    acts = list(p.activations)
    if len(acts) != 3:
        lay.unsupported(f"{len(acts)} activations (three are defined)")
    w, hidden, size = p.weightParams, p.outputVectorSize, p.inputVectorSize
    gates = ("inputGate", "forgetGate", "blockInput", "outputGate")
    W = [lay.weights(getattr(w, f"{g}WeightMatrix"), (hidden, size)) for g in gates]
    R = [lay.weights(getattr(w, f"{g}RecursionMatrix"), (hidden, hidden)) for g in gates]
    if q.hasBiasVectors:
        B = [lay.weights(getattr(w, f"{g}BiasVector"), (hidden,)) for g in gates]
    else:
        B = [np.zeros(hidden, np.float32) for _ in gates]
    if q.forgetBias:
        B[1] = B[1] + 1
    x = lay.x[0]  # (Seq, Batch, input, 1, 1)
    steps, batch = x.shape[0], x.shape[1]
    x = x.reshape(steps, batch, size)
    h = lay.x[1].reshape(batch, hidden) if len(lay.x) > 1 else np.zeros((batch, hidden), np.float32)
    c = lay.x[2].reshape(batch, hidden) if len(lay.x) > 2 else np.zeros((batch, hidden), np.float32)
    Wx = np.concatenate(W), np.concatenate(R), np.concatenate(B)
    xw = np.einsum("tbi,gi->tbg", x, Wx[0]) + Wx[2]
    out = np.zeros((steps, batch, hidden), np.float32)
    for t in range(steps):
        g = xw[t] + h @ Wx[1].T
        i, f, z, o = (g[:, k * hidden:(k + 1) * hidden] for k in range(4))
        i, f, o = (activation(lay, acts[0], v) for v in (i, f, o))
        z = activation(lay, acts[1], z)
        c = np.clip(f * c + i * z, -q.cellClipThreshold, q.cellClipThreshold)
        h = o * activation(lay, acts[2], c)
        out[t] = h
    y = out if q.sequenceOutput else h[None]
    return y[..., None, None], h[None, ..., None, None], c[None, ..., None, None]
