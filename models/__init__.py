"""The model zoo of the reference project: five architectures, each with a PyTorch and a Keras
builder, declared to convcheck exactly as a team declares its own models
(convcheck.declare_model; the same fields as a ``[model.NAME]`` table in convcheck.toml).

`build` sources: convcheck trains each one with the profile's hyperparameters (profiles.toml),
once per seed. The two builders of a model build the same network layer for layer. Frameworks
are imported lazily, inside the builders, so that declaring the zoo stays cheap.
"""
from __future__ import annotations

from convcheck import declare_model
from convcheck.data import MAX_LEN, OOV_ID, PAD_ID, VOCAB_SIZE

FRAMEWORKS = ("pytorch", "keras")

# Shared by both frameworks and by the IMDb tokenizer (convcheck.data), so token ids are identical.
EMBED_DIM = 128
HIDDEN_SIZE = 128

_IMAGE = {"layout": "nhwc", "range": [0.0, 1.0]}
# torch convolutions take NCHW: the data (NHWC) is transposed for them, never for Keras.
_TORCH_IMAGE = {"layout": "nchw"}


def _cnn(name: str, dataset: str, shape: list[int], module: str, slow: bool):
    return declare_model(
        name, origin=f"models/{module}.py",
        input={"shape": shape, **_IMAGE}, task={"num_classes": 10}, data=dataset,
        pytorch={"build": f"models.{module}:build_torch", **_TORCH_IMAGE},
        keras={"build": f"models.{module}:build_keras"},
        markers=["cnn", *(["slow"] if slow else [])])


def _rnn(name: str, **fields):
    return declare_model(
        name, origin="models/rnn.py",
        input={"shape": [MAX_LEN], "dtype": "int64", "layout": "tokens",
               "vocab_size": VOCAB_SIZE, "pad_id": PAD_ID, "oov_id": OOV_ID,
               # the IMDb tokenizer pads on the left; a review of padding only is still read
               # (the models were trained on sequences cut to MAX_LEN, some nearly empty)
               "padding": "pre", "empty": True},
        task={"num_classes": 2}, data="imdb",
        pytorch={"build": "models.rnn:build_torch"}, keras={"build": "models.rnn:build_keras"},
        markers=["rnn"], **fields)


ZOO = {s.name: s for s in (
    _cnn("lenet5", "mnist", [28, 28, 1], "lenet5", slow=False),
    # The large CNNs dominate a run's training: `-m "not slow"` leaves them out.
    _cnn("resnet18", "cifar10", [32, 32, 3], "resnet18", slow=True),
    _cnn("vgg16", "cifar10", [32, 32, 3], "vgg16", slow=True),
    _rnn("lstm", extra={"cell": "lstm"}, param_difference=4 * HIDDEN_SIZE,
         param_difference_reason=("torch.nn.LSTM keeps two bias vectors per gate (b_ih and b_hh, "
                                  "4*hidden each); Keras' LSTM keeps one")),
    # Keras' GRU with reset_after=True (its default) keeps the same two bias vectors as
    # torch.nn.GRU and applies the reset gate after the recurrent matmul, as torch does.
    _rnn("gru", extra={"cell": "gru"}),
)}


def get_spec(name: str):
    from convcheck.declarations.registry import MODELS

    return MODELS.get(name)
