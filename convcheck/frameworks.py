"""Importing the frameworks the same way everywhere: quiet TensorFlow, Keras on its TF backend,
one thread setting shared by torch, TensorFlow and onnxruntime (recorded in reports), and the
device convcheck trains and attacks originals on (--convcheck-device)."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# torch.use_deterministic_algorithms on CUDA requires cuBLAS' fixed workspace (read when CUDA
# initialises); harmless on a CPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

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
        _threads = count_variable(THREADS_ENV, os.cpu_count() or 1,
                                  f"threads per runtime; unset: the core count, {os.cpu_count()}")
    return _threads


def cores(at_most: int) -> int:
    """One per core, at most `at_most`: the default of the work convcheck runs side by side
    (conversions ahead, speed gates at once), each of which keeps a core busy."""
    return max(1, min(at_most, os.cpu_count() or 1))


def count_variable(name: str, default: int, what: str) -> int:
    """A whole number >= 1 from environment variable `name` (unset or blank: `default`); any
    other value raises ValueError naming the variable, its value and `what` it sets."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"${name} = {raw!r}: must be a whole number >= 1 ({what})")
    return n


DEVICES = ("cpu", "cuda", "auto")
_device = "cpu"


class DeviceError(ValueError):
    """A device that was asked for and is not there."""


def use_device(name: str | None, where: str = "--convcheck-device") -> str:
    """Where originals train and are attacked: 'cpu' (the default), 'cuda' (torch's CUDA device,
    an error naming `where` if torch has none), or 'auto' (CUDA when torch has it, else the
    CPU). Returns what it resolved to. Keras follows onto a GPU only where its TensorFlow build
    sees one (tensorflow-cpu never does): see device_of. Conversions and runtimes stay on the
    CPU: the runtimes convcheck checks (onnxruntime's CPU provider, Core ML) run there."""
    global _device
    name = (name or "cpu").strip().lower()
    if name not in DEVICES:
        raise DeviceError(f"{where}: {name!r}: valid values: {', '.join(DEVICES)}")
    if name == "cpu":
        _device = "cpu"
        return _device
    t = torch()
    if t.cuda.is_available():
        _device = "cuda"
    elif name == "auto":
        _device = "cpu"
    else:
        build = "; a CPU build" if t.version.cuda is None else ""
        raise DeviceError(f"{where}: 'cuda': torch {t.__version__} finds no CUDA device "
                          f"(torch.cuda.is_available() is False{build}); use cpu, or auto "
                          f"(CUDA where present)")
    return _device


def device_of(framework: str) -> str:
    """The device `framework` computes on in this session: 'cpu', or 'cuda' for torch
    (torch.device name) and '/GPU:0' for Keras where TensorFlow lists a GPU."""
    if _device == "cpu":
        return "cpu"
    if framework == "pytorch":
        return "cuda"
    return "/GPU:0" if tf().config.list_physical_devices("GPU") else "cpu"


def compute(framework: str) -> dict:
    """What a trained original or an adversarial set depends on besides code, data, seed and
    libraries: the thread count (a LeNet-5 trained on 1 thread differs from one trained on 2 by
    up to 0.41 in a weight, measured) and the device (a GPU's kernels round differently), with
    the GPU's name. Part of those cache entries' keys."""
    where = device_of(framework)
    out = {"threads": threads(), "device": "cpu" if where == "cpu" else "gpu"}
    if where != "cpu" and framework == "pytorch":
        t = torch()
        out |= {"gpu": t.cuda.get_device_name(0), "cuda": t.version.cuda}
    elif where != "cpu":
        out |= {"gpu": tf().config.experimental.get_device_details(
            tf().config.list_physical_devices("GPU")[0]).get("device_name", "GPU")}
    return out


def device_line() -> str:
    """The session's devices, for the report header: 'cpu', or each framework's."""
    if _device == "cpu":
        return "cpu"
    parts = []
    for fw in ("pytorch", "keras"):
        c = compute(fw)
        parts.append(f"{fw} {c.get('gpu', 'cpu') if c['device'] == 'gpu' else 'cpu'}")
    return "cuda (" + ", ".join(parts) + ")"


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
