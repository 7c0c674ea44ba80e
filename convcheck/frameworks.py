"""Importing the frameworks the same way everywhere: quiet TensorFlow, Keras on its TF backend,
and one thread setting shared by torch, TensorFlow and onnxruntime (recorded in reports)."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

THREADS_ENV = "CONVCHECK_THREADS"
_threads: int | None = None


def threads() -> int:
    """Threads every runtime uses (intra-op), from $CONVCHECK_THREADS or the core count; a
    value that is not a whole number >= 1 raises ValueError naming the variable (TensorFlow
    aborts the process on a negative one).

    Not shared out among pytest-xdist workers: the thread count changes what is computed (a
    LeNet-5 trained on 1 thread differs from one trained on 2 by up to 0.41 in a weight,
    measured, and its adversarial sets with it), so a worker computes as the serial run does
    and builds the same cache entries; the workers oversubscribe the cores instead."""
    global _threads
    if _threads is None:
        raw = os.environ.get(THREADS_ENV, "").strip()
        if not raw:
            _threads = os.cpu_count() or 1
        else:
            try:
                n = int(raw)
            except ValueError:
                n = 0
            if n < 1:
                raise ValueError(f"${THREADS_ENV} = {raw!r}: must be a whole number >= 1 "
                                 f"(threads per runtime; unset: the core count, "
                                 f"{os.cpu_count()})")
            _threads = n
    return _threads


_configured: set[str] = set()


def torch():
    import torch as _torch

    if "torch" not in _configured:
        _torch.set_num_threads(threads())
        _configured.add("torch")
    return _torch


def tf():
    import tensorflow as _tf

    if "tf" not in _configured:
        try:  # only possible before TensorFlow's runtime starts
            _tf.config.threading.set_intra_op_parallelism_threads(threads())
            _tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass
        _configured.add("tf")
    return _tf


def keras():
    tf()
    import keras as _keras

    return _keras


# Which libraries each kind of cache entry depends on: a trained original on the training stack
# only, a conversion on it and the converters, an adversarial set on it and ART. onnxruntime is
# in none of them: it is the runtime a run measures, so a candidate onnxruntime reuses every
# original, conversion and adversarial set of the baseline (python -m convcheck.compare).
TRAINING_STACK = ("torch", "tensorflow-cpu", "tensorflow", "tensorflow-macos", "keras", "numpy")
CONVERSION_STACK = TRAINING_STACK + ("onnx", "onnxscript", "tf2onnx", "coremltools")
ATTACK_STACK = TRAINING_STACK + ("adversarial-robustness-toolbox",)


def versions(stack: tuple[str, ...] | None = None) -> dict[str, str]:
    """Versions of every library whose behaviour the suite measures (stack: only these)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    # TensorFlow ships under several distribution names (tensorflow-cpu on Linux, tensorflow
    # on macOS): the first one installed is recorded, under its own name.
    for pkgs in (("torch",), ("tensorflow-cpu", "tensorflow", "tensorflow-macos"), ("keras",),
                 ("onnx",), ("onnxruntime",), ("onnxscript",), ("tf2onnx",), ("coremltools",),
                 ("numpy",), ("adversarial-robustness-toolbox",)):
        for pkg in pkgs:
            try:
                out[pkg] = version(pkg)
                break
            except PackageNotFoundError:
                pass
    return out if stack is None else {k: v for k, v in out.items() if k in stack}
