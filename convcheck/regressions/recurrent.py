"""Recurrent layers: GRU's linear_before_reset, LSTMs on padded and packed sequences, and a
Keras mask carried into ONNX (as a Loop, or as LSTM sequence_lens)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from convcheck.regressions.harness import (
    OPSET,
    SEED,
    Measured,
    _first_line,
    _keras,
    _op_types,
    _torch,
    _torch_case,
    compare,
    keras_to_onnx,
    node_attributes,
    ort_run,
)

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
