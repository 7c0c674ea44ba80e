"""Training a model convcheck builds (a `build` source), deterministically per seed, in either
framework; saving and loading originals.

Both frameworks get the same hyperparameters (optimizer, learning rate, momentum, batch size,
epochs) and report one progress line per epoch: loss, training accuracy (classifiers), seconds.
A classifier is trained on cross-entropy (on its `logits()` where the model has that method, else
on its outputs as the declared task reads them), any other task on the mean squared error.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

import numpy as np

from convcheck import frameworks
from convcheck.progress import duration
from convcheck.runtimes import load_original
from convcheck.settings import HyperParams

MODEL_FILE = {"pytorch": "model.pt", "keras": "model.keras"}
ADAM_EPS = 1e-7  # Keras' default; torch's is 1e-8: use one value for both


def train(spec, framework: str, x: np.ndarray, y: np.ndarray, hp: HyperParams, seed: int,
          log: Callable[[str], None], label: str):
    """Build and train a fresh model; returns the framework's model object."""
    if framework == "pytorch":
        return _train_torch(spec, x, y, hp, seed, log, label)
    if framework == "keras":
        return _train_keras(spec, x, y, hp, seed, log, label)
    raise ValueError(f"unknown framework {framework!r}")


def _epoch_line(label, epoch, hp, loss, acc, secs):
    acc = "" if acc is None else f" acc {acc:.3f}"
    left = f", ~{duration(secs * (hp.epochs - epoch))} left" if epoch < hp.epochs else ""
    return f"{label} epoch {epoch}/{hp.epochs}: loss {loss:.4f}{acc} {secs:.1f}s{left}"


def _torch_loss(spec, model, xb, yb):
    """(loss, scores for accuracy or None)"""
    torch = frameworks.torch()
    f = torch.nn.functional
    if not spec.task.classification:
        out = model(xb)
        return f.mse_loss(out, yb.reshape(out.shape).to(out.dtype)), None
    if hasattr(model, "logits"):
        scores = model.logits(xb)
        return f.cross_entropy(scores, yb), scores
    out = model(xb)
    if spec.task.output == "logits":
        return f.cross_entropy(out, yb), out
    return f.nll_loss(torch.log(out.clamp_min(1e-12)), yb), out


def _train_torch(spec, x, y, hp, seed, log, label):
    torch = frameworks.torch()
    dev = frameworks.device_of("pytorch")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    model = spec.build("pytorch").to(dev)
    if hp.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=hp.lr, momentum=hp.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=hp.lr, eps=ADAM_EPS)
    # the whole training set on the device: the largest (CIFAR-10, 50000 images) is 614 MB
    xt, yt = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
    rng = np.random.default_rng(seed)
    for epoch in range(1, hp.epochs + 1):
        # summed on the device: a .item() per batch would wait on the GPU every step
        t0 = time.perf_counter()
        total = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        model.train()
        order = torch.from_numpy(rng.permutation(len(x))).to(dev)
        for i in range(0, len(x), hp.batch_size):
            idx = order[i : i + hp.batch_size]
            xb, yb = xt[idx], yt[idx]
            loss, scores = _torch_loss(spec, model, xb, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
            if scores is not None:
                correct += (scores.argmax(1) == yb).sum()
        acc = correct.item() / len(x) if spec.task.classification else None
        log(_epoch_line(label, epoch, hp, total.item() / len(x), acc, time.perf_counter() - t0))
    return model.cpu().eval()  # saved and run on the CPU, where the conversions run


def _train_keras(spec, x, y, hp, seed, log, label):
    keras = frameworks.keras()
    keras.utils.set_random_seed(seed)
    frameworks.tf().config.experimental.enable_op_determinism()
    dev = frameworks.device_of("keras")
    # on the CPU, TensorFlow's own placement (what every cached original was trained under)
    with contextlib.nullcontext() if dev == "cpu" else frameworks.tf().device(dev):
        return _fit_keras(spec, x, y, hp, log, label)


def _fit_keras(spec, x, y, hp, log, label):
    keras = frameworks.keras()
    model = spec.build("keras")
    if hp.optimizer == "sgd":
        opt = keras.optimizers.SGD(learning_rate=hp.lr, momentum=hp.momentum)
    else:
        opt = keras.optimizers.Adam(learning_rate=hp.lr, epsilon=ADAM_EPS)
    # jit_compile=False says what happens anyway: Keras (3.15.1, trainer.model_supports_jit)
    # refuses XLA while TensorFlow's op determinism is on, which reproducible weights need
    # (measured: jit_compile=True trained the LSTM, GRU and ResNet-18 to the same losses in the
    # same time, Keras warning "Model doesn't support `jit_compile=True`").
    if spec.task.classification:
        loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=spec.task.output == "logits")
        model.compile(optimizer=opt, loss=loss, metrics=["accuracy"], jit_compile=False)
    else:
        model.compile(optimizer=opt, loss="mse", jit_compile=False)

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            log(_epoch_line(label, epoch + 1, hp, logs["loss"], logs.get("accuracy"),
                            time.perf_counter() - self.t0))

    model.fit(x, y, batch_size=hp.batch_size, epochs=hp.epochs, shuffle=True, verbose=0,
              callbacks=[EpochLine()])
    return model


def save(model, framework: str, directory: Path) -> Path:
    path = directory / MODEL_FILE[framework]
    if framework == "pytorch":
        frameworks.torch().save(model.state_dict(), path)
    else:
        model.save(path)
    return path


def load_predictor(spec, framework: str, path: Path):
    """The original saved at `path` (a cache entry's model file, or the team's own file)."""
    return load_original(spec, framework, Path(path))
