"""LSTM / GRU text classifiers for IMDb (spec.extra["cell"]), in PyTorch and Keras, layer for layer.

Embedding(VOCAB_SIZE, EMBED_DIM) -> one recurrent layer of HIDDEN_SIZE, batch-first, keeping only
the last hidden state -> dense 2 -> softmax. Input: int64 token ids (batch, MAX_LEN), pre-padded
with PAD_ID=0. No masking: pad tokens run through the cell in both frameworks (Keras
mask_zero=False), so both compute the same function.

Keras input dtype is int64, like torch's and spec.input_dtype, so the same id arrays feed torch,
Keras and both ONNX exports. tf2onnx 1.17 converts it cleanly (checked: tf.function +
tf2onnx.convert.from_function, opset 17 -> an INT64 graph input; onnxruntime matches Keras).

Cells: Keras' gate activations (tanh / sigmoid) are torch's. Keras' GRU uses reset_after=True,
torch's formulation (reset gate applied after the recurrent matmul, two bias vectors). Keras'
LSTM has a single bias vector where torch has two (b_ih + b_hh), hence the spec's
param_difference of 4 * HIDDEN_SIZE. Gate order differs only in storage (GRU: torch r,z,n,
Keras z,r,h).

Trainable parameters: LSTM 1,412,354 torch / 1,411,842 Keras; GRU 1,379,330 in both.
"""
from __future__ import annotations

from models import EMBED_DIM, HIDDEN_SIZE, VOCAB_SIZE

CELLS = ("lstm", "gru")


def _cell(spec) -> str:
    cell = spec.extra.get("cell")
    if cell not in CELLS:
        raise ValueError(f"{spec.name}: extra['cell'] is {cell!r}; valid: {', '.join(CELLS)}")
    return cell


def build_torch(spec):
    import torch
    from torch import nn

    rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[_cell(spec)]

    class TextRNN(nn.Module):
        def __init__(self, num_classes: int):
            super().__init__()
            self.embedding = nn.Embedding(VOCAB_SIZE, EMBED_DIM)
            self.rnn = rnn_cls(EMBED_DIM, HIDDEN_SIZE, num_layers=1, batch_first=True)
            self.fc = nn.Linear(HIDDEN_SIZE, num_classes)

        def logits(self, x):
            _, h = self.rnn(self.embedding(x))
            h_n = h[0] if isinstance(h, tuple) else h  # LSTM returns (h_n, c_n)
            return self.fc(h_n[-1])  # (N, HIDDEN_SIZE): last layer's final hidden state

        def forward(self, x):
            return torch.softmax(self.logits(x), dim=1)

    return TextRNN(spec.num_classes)


def build_keras(spec, unroll: bool = False):
    """unroll=True unrolls the recurrence over MAX_LEN steps (needed by the CoreML path)."""
    import keras
    from keras import layers

    cell = _cell(spec)
    inputs = keras.Input(shape=spec.input_shape, dtype="int64", name="input")
    x = layers.Embedding(VOCAB_SIZE, EMBED_DIM, mask_zero=False, name="embedding")(inputs)
    if cell == "lstm":
        x = layers.LSTM(HIDDEN_SIZE, unroll=unroll, name="rnn")(x)
    else:
        x = layers.GRU(HIDDEN_SIZE, reset_after=True, unroll=unroll, name="rnn")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="fc")(x)
    return keras.Model(inputs, outputs, name=spec.name)
