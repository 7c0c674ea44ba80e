"""The model zoo: one ModelSpec per architecture, each with a PyTorch and a Keras builder.

The two builders of a spec build the same network layer for layer. Frameworks are imported
lazily, inside the builders, so that importing the zoo stays cheap.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent

FRAMEWORKS = ("pytorch", "keras")

# Shared by both frameworks and by the IMDb tokenizer, so token ids are identical.
VOCAB_SIZE = 10_000
EMBED_DIM = 128
HIDDEN_SIZE = 128
MAX_LEN = 200
PAD_ID, OOV_ID = 0, 1


@dataclass(frozen=True)
class ModelSpec:
    name: str
    dataset: str  # "mnist" | "cifar10" | "imdb"
    kind: str  # "cnn" | "rnn"
    input_shape: tuple[int, ...]  # one sample, in the dataset's canonical layout (HWC / tokens)
    input_dtype: str
    num_classes: int
    module: str  # models.<module> holds build_torch() and build_keras()
    # Every model ends in a softmax, in both frameworks: outputs are class probabilities.
    output: str = "probabilities"
    # Trainable parameters of torch minus keras, where the frameworks differ by construction.
    param_difference: int = 0
    param_difference_reason: str = ""
    extra: dict = field(default_factory=dict)

    def build(self, framework: str):
        mod = importlib.import_module(f"models.{self.module}")
        if framework == "pytorch":
            return mod.build_torch(self)
        if framework == "keras":
            return mod.build_keras(self)
        raise ValueError(f"unknown framework {framework!r}; valid: {', '.join(FRAMEWORKS)}")

    def to_framework_layout(self, x: np.ndarray, framework: str) -> np.ndarray:
        """Canonical batch (NHWC images, token ids) -> the layout the framework's model takes."""
        if framework == "pytorch" and x.ndim == 4:
            return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return x

    def framework_input_shape(self, framework: str) -> tuple[int, ...]:
        if framework == "pytorch" and len(self.input_shape) == 3:
            h, w, c = self.input_shape
            return (c, h, w)
        return self.input_shape


_RNN_DIFF = 4 * HIDDEN_SIZE
ZOO: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("lenet5", "mnist", "cnn", (28, 28, 1), "float32", 10, "lenet5"),
        ModelSpec("resnet18", "cifar10", "cnn", (32, 32, 3), "float32", 10, "resnet18"),
        ModelSpec("vgg16", "cifar10", "cnn", (32, 32, 3), "float32", 10, "vgg16"),
        ModelSpec(
            "lstm", "imdb", "rnn", (MAX_LEN,), "int64", 2, "rnn",
            param_difference=_RNN_DIFF,
            param_difference_reason=(
                "torch.nn.LSTM keeps two bias vectors per gate (b_ih and b_hh, 4*hidden each); "
                "Keras' LSTM keeps one"
            ),
            extra={"cell": "lstm"},
        ),
        # Keras' GRU with reset_after=True (its default) keeps the same two bias vectors as
        # torch.nn.GRU and applies the reset gate after the recurrent matmul, as torch does.
        ModelSpec("gru", "imdb", "rnn", (MAX_LEN,), "int64", 2, "rnn", extra={"cell": "gru"}),
    )
}


def get_spec(name: str) -> ModelSpec:
    try:
        return ZOO[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; valid models: {', '.join(ZOO)}") from None
