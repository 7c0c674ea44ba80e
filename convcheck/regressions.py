"""Known silent divergences between a framework and its ONNX conversion, as minimal reproducers.

Each Regression builds the smallest model that shows one behaviour, exports it with one exporter
of the pinned stack, runs both on fixed seeded inputs and returns what it measured (max abs error,
non-finite outputs, shapes, and the graph details that explain it). The tests in
tests_conformance/test_regressions.py judge them against tolerances.toml; the ones that still
diverge with the pinned tools are listed in expected_failures.toml with the measured number, so
a fix shows up as an unexpected pass. No pytest here; frameworks are imported inside functions.

Where each one comes from is said in words (tracker and title), not links.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from convcheck import checks

SEED = 0
OPSET = 17  # tf2onnx and the hand-built graphs; torch exporters use their defaults (18 / 17)


@dataclass
class Measured:
    abs_max: float = float("nan")  # max |framework - converted| over every output element
    nonfinite: int = 0  # NaN/Inf elements in the converted output
    shape_framework: tuple = ()
    shape_converted: tuple = ()
    error: str | None = None  # the exporter's or the runtime's exception, when one was raised
    problems: list[str] = field(default_factory=list)  # structural findings (attributes, shapes)
    detail: dict = field(default_factory=dict)  # what else explains the number

    def as_dict(self) -> dict:
        return {"abs_max": self.abs_max, "nonfinite": self.nonfinite,
                "shape_framework": list(self.shape_framework),
                "shape_converted": list(self.shape_converted), "error": self.error,
                "problems": self.problems, **self.detail}


@dataclass(frozen=True)
class Regression:
    name: str  # the behaviour, e.g. "gru-linear-before-reset"
    framework: str  # "pytorch" | "keras"
    exporter: str  # "dynamo" | "torchscript" | "tf2onnx" | "hand-built"
    behaviour: str  # what diverges (or diverged), in one sentence
    origin: str  # where it is known from, in words
    run: Callable[[Path], Measured]  # builds, exports into the directory, compares
    tolerance: str = "regression_abs_max"  # the tolerances.toml key abs_max is held to

    @property
    def id(self) -> str:
        return f"regression-{self.name}-{self.exporter}"


def compare(ref, got, m: Measured | None = None) -> Measured:
    m = m or Measured()
    ref, got = np.asarray(ref, dtype=np.float64), np.asarray(got, dtype=np.float64)
    m.shape_framework, m.shape_converted = tuple(ref.shape), tuple(got.shape)
    m.nonfinite = int((~np.isfinite(got)).sum())
    if ref.shape != got.shape:
        m.problems.append(f"output shape {tuple(got.shape)}, expected {tuple(ref.shape)}")
        return m
    m.abs_max = float(np.abs(ref - got).max()) if ref.size else 0.0
    return m


def verdict(reg: Regression, m: Measured, tol: checks.Lookup) -> checks.Verdict:
    """The regression's Verdict (check "regression"), in convcheck.checks' failure grammar."""
    v = checks.Verdict(reg.id, "regression", m.as_dict())
    if m.error is not None:
        v.fail("conversion", f"= failed ({m.error})")
        return v
    for p in m.problems:  # structural findings, each its own sentence
        v.failed.append("structure")
        v.failures.append(f"{reg.id}: {p}")
    if m.nonfinite:
        v.fail("nonfinite", f"= {m.nonfinite} NaN/Inf output elements > 0")
    if m.shape_framework == m.shape_converted:
        v.limit("abs_max", m.abs_max, tol, key=reg.tolerance)
    return v


# --------------------------------------------------------------------------- helpers


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


@contextlib.contextmanager
def _quiet():
    """Exporters print progress and deprecation notices; none of it is a result."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        level = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(level)


def _torch():
    from convcheck import frameworks

    return frameworks.torch()


def torch_export(model, args: tuple, path: Path, exporter: str, input_names: list[str],
                 **kw) -> Path:
    torch = _torch()
    with _quiet():
        torch.onnx.export(model, args, str(path), dynamo=exporter == "dynamo",
                          input_names=input_names, output_names=["output"],
                          **({"external_data": False} if exporter == "dynamo" else {}), **kw)
    return path


def ort_run(path: Path, feeds: dict) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def node_attributes(path: Path, op_type: str, name: str) -> list:
    """The value of attribute `name` on every `op_type` node (None where it is unset)."""
    import onnx

    out = []
    for node in onnx.load(str(path)).graph.node:
        if node.op_type == op_type:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            value = attrs.get(name)
            out.append(value.decode() if isinstance(value, bytes) else value)
    return out


def _torch_case(build: Callable, inputs: Callable, exporter: str, path: Path,
                input_names=("input",), eval_mode: bool = True, **export_kw) -> Measured:
    """Build a torch model (seeded), run it, export it with `exporter`, run the export on ORT."""
    torch = _torch()
    torch.manual_seed(SEED)
    model = build()
    args = inputs()
    model.eval()
    with torch.no_grad():
        ref = model(*args)
    if not eval_mode:
        model.train()
    m = Measured()
    try:
        torch_export(model, args, path, exporter, list(input_names), **export_kw)
        got = ort_run(path, {n: a.numpy() for n, a in zip(input_names, args)})
    except Exception as e:  # the exporter's own message is the result
        m.error = _first_line(e)
        return m
    return compare(ref.numpy(), got, m)


def _keras():
    from convcheck import frameworks

    return frameworks.keras()


def keras_to_onnx(model, input_shape: tuple, dtype: str, path: Path) -> Path:
    """tf2onnx on a traced inference function (what convcheck.convert does for the zoo)."""
    import tensorflow as tf
    import tf2onnx

    fn = tf.function(lambda x: model(x, training=False))
    with _quiet():
        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        tf2onnx.convert.from_function(
            fn, input_signature=(tf.TensorSpec((None, *input_shape), dtype, name="input"),),
            opset=OPSET, output_path=str(path))
    return path


# --------------------------------------------------------------------------- recurrent layers

VOCAB, EMBED, HIDDEN = 20, 4, 8
# Pre-padded like the zoo's IMDb batches: a full row, partly padded rows and an all-pad row.
PRE_PADDED = np.array([[1, 2, 3, 4, 5, 6], [0, 0, 0, 3, 4, 5], [0, 0, 0, 0, 0, 7],
                       [0, 0, 0, 0, 0, 0]], dtype=np.int64)
# Post-padded (valid tokens first), as pack_padded_sequence and sequence_lens expect.
POST_PADDED = np.array([[1, 2, 3, 4, 5, 6], [3, 4, 5, 0, 0, 0], [7, 0, 0, 0, 0, 0]],
                       dtype=np.int64)
POST_LENGTHS = np.array([6, 3, 1], dtype=np.int64)


def gru_linear_before_reset(exporter: str) -> Callable[[Path], Measured]:
    """nn.GRU applies the reset gate after the recurrent matmul: ONNX GRU linear_before_reset=1."""

    def run(tmp: Path) -> Measured:
        torch = _torch()
        nn = torch.nn

        class GRUSeq(nn.Module):  # the reported shape: one input feature, 32 units, 10 steps
            def __init__(self):
                super().__init__()
                self.gru = nn.GRU(1, 32, batch_first=True)

            def forward(self, x):
                return self.gru(x)[0]

        path = tmp / "gru.onnx"
        m = _torch_case(GRUSeq, lambda: (torch.randn(2, 10, 1),), exporter, path)
        if m.error is None:
            lbr = node_attributes(path, "GRU", "linear_before_reset")
            m.detail["linear_before_reset"] = lbr
            if any(v != 1 for v in lbr):
                m.problems.append(f"GRU linear_before_reset = {lbr}, expected 1 (torch's GRU)")
        return m

    return run


class _Recurrent:
    """Embedding -> LSTM (torch), in the zoo's RNN shape, small."""

    @staticmethod
    def build(mode: str):
        torch = _torch()
        nn = torch.nn
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(VOCAB, EMBED)
                self.rnn = nn.LSTM(EMBED, HIDDEN, batch_first=True)

            def forward(self, ids, lengths=None):
                e = self.embedding(ids)
                if mode == "padded":  # pads run through the cell, as in the zoo
                    return self.rnn(e)[1][0][-1]
                packed = pack_padded_sequence(e, lengths, batch_first=True, enforce_sorted=False)
                y, (h, _) = self.rnn(packed)
                if mode == "packed-final-state":
                    return h[-1]
                return pad_packed_sequence(y, batch_first=True, total_length=ids.shape[1])[0]

        return Net()


def torch_lstm(mode: str, exporter: str) -> Callable[[Path], Measured]:
    def run(tmp: Path) -> Measured:
        torch = _torch()
        if mode == "padded":
            inputs, names = (lambda: (torch.from_numpy(PRE_PADDED),)), ("input",)
        else:
            inputs = lambda: (torch.from_numpy(POST_PADDED), torch.from_numpy(POST_LENGTHS))
            names = ("input", "lengths")
        return _torch_case(lambda: _Recurrent.build(mode), inputs, exporter,
                           tmp / f"lstm-{mode}.onnx", input_names=names)

    return run


def _keras_masked_lstm(return_sequences: bool):
    keras = _keras()
    keras.utils.set_random_seed(SEED)
    layers = keras.layers
    inputs = keras.Input((PRE_PADDED.shape[1],), dtype="int64", name="input")
    x = layers.Embedding(VOCAB, EMBED, mask_zero=True, name="embedding")(inputs)
    x = layers.LSTM(HIDDEN, return_sequences=return_sequences, name="rnn")(x)
    model = keras.Model(inputs, x)
    # Embeddings of unit scale (the default init is +-0.05): differences show, not round-off.
    emb = np.random.default_rng(SEED).standard_normal((VOCAB, EMBED)).astype(np.float32)
    model.get_layer("embedding").set_weights([emb])
    return model


def keras_mask_zero(padding: str, return_sequences: bool) -> Callable[[Path], Measured]:
    """Keras skips masked steps and carries the state (and the last output) over them."""

    def run(tmp: Path) -> Measured:
        model = _keras_masked_lstm(return_sequences)
        x = PRE_PADDED if padding == "pre" else POST_PADDED
        ref = np.asarray(model(x, training=False))
        m = Measured()
        try:
            path = keras_to_onnx(model, x.shape[1:], "int64", tmp / "masked.onnx")
            got = ort_run(path, {"input": x})
        except Exception as e:
            m.error = _first_line(e)
            return m
        m.detail["onnx_ops"] = sorted(set(_op_types(path)))
        return compare(ref, got, m)

    return run


def _op_types(path: Path) -> list[str]:
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node]


def keras_mask_as_sequence_lens(tmp: Path) -> Measured:
    """The masked Keras LSTM as one ONNX LSTM op fed sequence_lens = the unmasked count: the
    mapping keras2onnx used and tf2onnx's proposed masked-LSTM rewrite makes. onnxruntime
    writes zeros into Y past a sequence's length; Keras repeats the last output there."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = _keras_masked_lstm(return_sequences=True)
    x = POST_PADDED
    ref = np.asarray(model(x, training=False))
    emb = model.get_layer("embedding").get_weights()[0]
    kernel, recurrent, bias = model.get_layer("rnn").get_weights()

    def onnx_gates(w):  # Keras stores gates i, f, c, o; ONNX wants i, o, f, c
        i, f, c, o = np.split(w, 4, axis=-1)
        return np.concatenate([i, o, f, c], axis=-1)

    inits = [numpy_helper.from_array(a.astype(np.float32), n) for a, n in (
        (emb, "emb"), (onnx_gates(kernel).T[None], "W"), (onnx_gates(recurrent).T[None], "R"),
        (np.concatenate([onnx_gates(bias), np.zeros(4 * HIDDEN)])[None], "B"))]
    inits += [numpy_helper.from_array(np.array(0, np.int64), "pad"),
              numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes = [
        helper.make_node("Gather", ["emb", "input"], ["e"]),  # (N, T, E)
        helper.make_node("Transpose", ["e"], ["x"], perm=[1, 0, 2]),  # (T, N, E)
        helper.make_node("Equal", ["input", "pad"], ["is_pad"]),
        helper.make_node("Not", ["is_pad"], ["valid"]),
        helper.make_node("Cast", ["valid"], ["valid32"], to=TensorProto.INT32),
        helper.make_node("ReduceSum", ["valid32", "axis1"], ["lens"], keepdims=0),
        helper.make_node("LSTM", ["x", "W", "R", "B", "lens"], ["y"], hidden_size=HIDDEN),
        helper.make_node("Squeeze", ["y", "axis1"], ["y3"]),  # (T, N, H)
        helper.make_node("Transpose", ["y3"], ["output"], perm=[1, 0, 2]),
    ]
    graph = helper.make_graph(
        nodes, "masked_lstm", [helper.make_tensor_value_info("input", TensorProto.INT64,
                                                             ["N", x.shape[1]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", x.shape[1], HIDDEN])],
        inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model, full_check=True)
    path = tmp / "masked-sequence-lens.onnx"
    onnx.save(onnx_model, str(path))
    got = ort_run(path, {"input": x})
    m = compare(ref, got)
    pad = x == 0
    m.detail["abs_max_on_padded_steps"] = float(np.abs(ref - got)[pad].max())
    m.detail["abs_max_on_valid_steps"] = float(np.abs(ref - got)[~pad].max())
    return m


# --------------------------------------------------------------------------- training mode


def _dropout_batchnorm():
    torch = _torch()
    nn = torch.nn

    class Net(nn.Module):  # Linear -> BatchNorm -> Dropout -> Linear -> softmax
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(4, 8), nn.BatchNorm1d(8)
            self.drop, self.out = nn.Dropout(0.5), nn.Linear(8, 3)
            with torch.no_grad():  # running statistics unlike any batch's
                self.bn.running_mean.fill_(0.3)
                self.bn.running_var.fill_(2.0)

        def forward(self, x):
            return torch.softmax(self.out(self.drop(self.bn(self.fc(x)))), dim=1)

    return Net()


def train_mode(exporter: str, explicit: bool) -> Callable[[Path], Measured]:
    """The original is judged in eval mode; the model is in train mode when exported."""

    def run(tmp: Path) -> Measured:
        torch = _torch()
        kw = ({"training": torch.onnx.TrainingMode.TRAINING, "do_constant_folding": False}
              if explicit else {})
        path = tmp / "train-mode.onnx"
        m = _torch_case(_dropout_batchnorm, lambda: (torch.randn(6, 4),), exporter, path,
                        eval_mode=False, **kw)
        if m.error is None:
            m.detail["onnx_ops"] = sorted(set(_op_types(path)))
        return m

    return run


# --------------------------------------------------------------------------- resampling


class _Interpolate:
    @staticmethod
    def build(**kw):
        torch = _torch()

        class Net(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.interpolate(x, mode="bilinear", **kw)

        return Net()


def bilinear(exporter: str, **kw) -> Callable[[Path], Measured]:
    def run(tmp: Path) -> Measured:
        torch = _torch()
        path = tmp / "bilinear.onnx"
        m = _torch_case(lambda: _Interpolate.build(**kw), lambda: (torch.rand(1, 2, 5, 7),),
                        exporter, path)
        if m.error is None:
            m.detail["coordinate_transformation_mode"] = node_attributes(
                path, "Resize", "coordinate_transformation_mode")
        return m

    return run


def avg_pool_ceil(exporter: str) -> Callable[[Path], Measured]:
    """avg_pool2d(kernel 3, stride 2, padding 1, ceil_mode, count_include_pad) on a 4x4 ramp:
    the extra right/bottom windows must be divided by their in-bounds-plus-padding size."""

    def run(tmp: Path) -> Measured:
        torch = _torch()

        class Net(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                      count_include_pad=True)

        x = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
        return _torch_case(Net, lambda: (x,), exporter, tmp / "avgpool.onnx")

    return run


def keras_upsampling_bilinear(tmp: Path) -> Measured:
    keras = _keras()
    inputs = keras.Input((5, 7, 2), name="input")
    model = keras.Model(inputs, keras.layers.UpSampling2D(2, interpolation="bilinear")(inputs))
    x = np.random.default_rng(SEED).random((2, 5, 7, 2), dtype=np.float32)
    path = keras_to_onnx(model, x.shape[1:], "float32", tmp / "upsampling.onnx")
    m = compare(np.asarray(model(x, training=False)), ort_run(path, {"input": x}))
    m.detail["coordinate_transformation_mode"] = node_attributes(
        path, "Resize", "coordinate_transformation_mode")
    return m


def keras_resizing_inexact_scale(tmp: Path) -> Measured:
    """Keras Resizing 5x7 -> 9x4: tf2onnx emits Resize with *scales* (1.8, 0.571...). The ONNX
    spec floors input size x scale (5 x 1.8 = 8.99.. in float32 -> 8 rows); onnxruntime rounds
    (9 rows, like Keras). The converted model's output shape depends on the runtime."""
    from onnx.reference import ReferenceEvaluator

    keras = _keras()
    inputs = keras.Input((5, 7, 2), name="input")
    model = keras.Model(inputs, keras.layers.Resizing(9, 4, interpolation="bilinear")(inputs))
    x = np.random.default_rng(SEED).random((2, 5, 7, 2), dtype=np.float32)
    ref = np.asarray(model(x, training=False))
    path = keras_to_onnx(model, x.shape[1:], "float32", tmp / "resizing.onnx")
    on_ort = ort_run(path, {"input": x})
    on_reference = ReferenceEvaluator(str(path)).run(None, {"input": x})[0]
    m = compare(ref, on_reference)  # the spec's reading of the graph
    m.problems = [f"onnx.reference: {p}" for p in m.problems]
    on_runtime = compare(ref, on_ort)
    m.problems += [f"onnxruntime: {p}" for p in on_runtime.problems]
    m.detail |= {"runtime": "onnx.reference (the spec)", "shape_onnxruntime": list(on_ort.shape),
                 "abs_max_onnxruntime": on_runtime.abs_max}
    return m


# --------------------------------------------------------------------------- half precision


def onnx_to_fp16(src: Path, dst: Path) -> Path:
    """A float32 ONNX model run at half precision: float initializers, Constant values, Casts to
    float and the graph's float inputs/outputs become float16 (what a float16 converter with
    keep_io_types=False does, for the ops used here)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(src))

    def half(t):
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))

    for t in model.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            half(t)
    for node in model.graph.node:
        for a in node.attribute:
            constant = node.op_type == "Constant" and a.name == "value"
            if constant and a.t.data_type == TensorProto.FLOAT:
                half(a.t)
            if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    for v in (*model.graph.input, *model.graph.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.FLOAT16
    del model.graph.value_info[:]
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))
    return dst


FP16_MAX = 65504.0


def fp16_activations(input_scale: float, gain: float) -> Callable[[Path], Measured]:
    """Linear(64 -> 16, weights x gain) -> LayerNorm -> Linear -> softmax, converted to float16
    and run with float16 arithmetic. With gain 400 on raw 0..255 pixel values the first layer's
    outputs exceed float16's 65504 (inf; LayerNorm makes NaN of them); with gain 100 on 0..1
    inputs every activation and LayerNorm's squared deviations (< 65504 needs |x| < 256) stay in
    range and only rounding differs.

    The half-precision runtime is onnx.reference, which computes each op in the tensor's type.
    onnxruntime's CPU provider has no float16 Gemm/LayerNormalization: it wraps them in Casts
    and computes in float32, which hides the overflow (its number is recorded beside)."""

    def run(tmp: Path) -> Measured:
        from onnx.reference import ReferenceEvaluator

        torch = _torch()
        nn = torch.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc, self.norm, self.out = nn.Linear(64, 16), nn.LayerNorm(16), nn.Linear(16, 3)
                with torch.no_grad():
                    self.fc.weight.mul_(gain)

            def forward(self, x):
                return torch.softmax(self.out(self.norm(self.fc(x))), dim=1)

        torch.manual_seed(SEED)
        model = Net().eval()
        x = torch.rand(8, 64) * input_scale
        with torch.no_grad():
            ref, hidden = model(x).numpy(), model.fc(x)
            on_torch_half = model.half()(x.half()).float().numpy()
        model.float()
        src = torch_export(model, (x,), tmp / "fp32.onnx", "torchscript", ["input"])
        path = onnx_to_fp16(src, tmp / "fp16.onnx")
        x16 = x.numpy().astype(np.float16)
        with np.errstate(all="ignore"):
            got = ReferenceEvaluator(str(path)).run(None, {"input": x16})[0].astype(np.float32)
        on_ort = ort_run(path, {"input": x16}).astype(np.float32)
        m = compare(ref, got)
        m.detail |= {
            "runtime": "onnx.reference (float16 arithmetic)", "input_scale": input_scale,
            "gain": gain, "largest_activation": float(hidden.abs().max()),
            "activations_over_fp16_max": int((hidden.abs() > FP16_MAX).sum()),
            "abs_max_onnxruntime_cpu": compare(ref, on_ort).abs_max,
            "nonfinite_onnxruntime_cpu": int((~np.isfinite(on_ort)).sum()),
            "nonfinite_torch_half": int((~np.isfinite(on_torch_half)).sum())}
        return m

    return run


# --------------------------------------------------------------------------- the list

_TORCH = ("dynamo", "torchscript")
REGRESSIONS: tuple[Regression, ...] = (
    *(Regression("gru-linear-before-reset", "pytorch", e,
                 "nn.GRU needs ONNX GRU linear_before_reset=1; exported with 0 its outputs "
                 "differ by about 0.1",
                 "pytorch and onnxscript trackers: the dynamo exporter's aten GRU translation "
                 "left linear_before_reset unset (torch 2.10, onnxscript 0.6)",
                 gru_linear_before_reset(e)) for e in _TORCH),
    *(Regression("lstm-zero-padded", "pytorch", e,
                 "a pre-padded batch without packing: pad steps run through the cell in torch "
                 "and in the export alike (the zoo's LSTM/GRU)",
                 "the padded-sequence question behind the masking cases below",
                 torch_lstm("padded", e)) for e in _TORCH),
    *(Regression("lstm-packed-sequence", "pytorch", e,
                 "pack_padded_sequence + pad_packed_sequence: torch zero-fills the outputs past "
                 "each length, so does onnxruntime's LSTM with sequence_lens",
                 "pytorch tracker: RNNs with packed sequences fail to export with "
                 "torch.export / the dynamo exporter",
                 torch_lstm("packed-sequence", e)) for e in _TORCH),
    *(Regression("lstm-packed-final-state", "pytorch", e,
                 "the final hidden state of a packed LSTM (the usual classifier head)",
                 "pytorch tracker: RNNs with packed sequences fail to export",
                 torch_lstm("packed-final-state", e)) for e in _TORCH),
    Regression("keras-lstm-mask-zero-prepadded", "keras", "tf2onnx",
               "Embedding(mask_zero=True) + LSTM on pre-padded ids: Keras skips the masked "
               "steps; tf2onnx must keep the mask (it emits a Loop, not an LSTM op)",
               "tensorflow-onnx tracker: a Keras LSTM after a masking Embedding is converted "
               "to loops; its masked-LSTM rewrite proposal assumes post-padding",
               keras_mask_zero("pre", return_sequences=False)),
    Regression("keras-lstm-mask-zero-postpadded-sequences", "keras", "tf2onnx",
               "the same with return_sequences on post-padded ids: Keras repeats the last "
               "output over masked steps",
               "onnxruntime tracker: LSTM Y is inconsistent with TF when sequence_lens is used",
               keras_mask_zero("post", return_sequences=True)),
    Regression("keras-lstm-mask-as-sequence-lens", "keras", "hand-built",
               "a Keras mask mapped to ONNX LSTM sequence_lens: onnxruntime zero-fills Y past "
               "each length where Keras carries the last output",
               "onnxruntime tracker: LSTM Y is inconsistent with TF inference result when "
               "seq_len is effective; keras2onnx's masking support; tensorflow-onnx's masked "
               "LSTM proposal",
               keras_mask_as_sequence_lens),
    *(Regression("train-mode-left-on", "pytorch", e,
                 "a model still in train mode when exported with default options: both "
                 "exporters must export inference behaviour (running BatchNorm statistics, "
                 "no Dropout)",
                 "the study's 'export in training mode' challenge; torch.onnx TrainingMode",
                 train_mode(e, explicit=False)) for e in _TORCH),
    Regression("export-training-mode", "pytorch", "torchscript",
               "export with training=TrainingMode.TRAINING: BatchNorm uses batch statistics and "
               "Dropout stays active in the graph, silently unlike the eval-mode original",
               "torch.onnx TrainingMode documentation; the fault battery's train-mode export",
               train_mode("torchscript", explicit=True)),
    *(Regression(f"bilinear-align-corners-{str(ac).lower()}", "pytorch", e,
                 f"F.interpolate bilinear, align_corners={ac}, 5x7 -> 9x11: ONNX Resize "
                 f"coordinate_transformation_mode must be "
                 f"{'align_corners' if ac else 'half_pixel (pytorch_half_pixel)'}",
                 "pytorch tracker: upsample_bilinear2d / interpolate export mismatches "
                 "(align_corners, coordinate modes)",
                 bilinear(e, size=(9, 11), align_corners=ac)) for ac in (True, False)
      for e in _TORCH),
    Regression("bilinear-upsampling2d", "keras", "tf2onnx",
               "Keras UpSampling2D(2, bilinear) -> Resize half_pixel",
               "the Keras side of the align_corners question",
               keras_upsampling_bilinear),
    *(Regression("bilinear-to-1x1", "pytorch", e,
                 "F.interpolate(size=(1, 1), bilinear, align_corners=False): torch samples the "
                 "centre; pytorch_half_pixel maps a length-1 output to coordinate 0",
                 "pytorch tracker: ONNX export mismatch for F.interpolate(size=(1, 1), "
                 "mode='bilinear', align_corners=False)",
                 bilinear(e, size=(1, 1), align_corners=False)) for e in _TORCH),
    *(Regression("avg-pool-ceil-count-include-pad", "pytorch", e,
                 "avg_pool2d with ceil_mode and count_include_pad: the extra boundary windows' "
                 "divisor",
                 "pytorch tracker: ONNX export mismatch for avg_pool2d with ceil_mode=True and "
                 "count_include_pad=True; onnxruntime tracker on the same divisor",
                 avg_pool_ceil(e)) for e in _TORCH),
    Regression("resize-inexact-scale", "keras", "tf2onnx",
               "Keras Resizing 5x7 -> 9x4 becomes Resize with scales; the ONNX spec floors "
               "5 x 1.8 to 8 rows where onnxruntime (and Keras) give 9",
               "OnnxSlim pull request 'fix resize output calculation': the ONNX operator doc "
               "floors, onnxruntime rounds",
               keras_resizing_inexact_scale),
    Regression("fp16-overflow", "pytorch", "torchscript",
               "the model run at half precision (initializers and inputs cast to float16): "
               "activations over 65504 become inf, LayerNorm turns them into NaN; onnxruntime's "
               "CPU provider computes these ops in float32 and hides it",
               "float16's range; the fp16 targets of the study",
               fp16_activations(255.0, 400.0), tolerance="regression_fp16_abs_max"),
    Regression("fp16-in-range", "pytorch", "torchscript",
               "control for fp16-overflow: the same model on 0..1 inputs stays in float16's "
               "range and differs by rounding only",
               "float16's range",
               fp16_activations(1.0, 100.0), tolerance="regression_fp16_abs_max"),
)
