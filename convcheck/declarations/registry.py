"""The open registries: models, data sets, converters (exporters) and runtimes.

Everything the suite runs is found here by name, the zoo's entries and a team's alike: a new
model, data set, converter or runtime is one `register` call (or one TOML table), never a
special case in the code that uses it. Built-in entries are import strings, resolved on first
use, so that registering them imports no framework.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from convcheck.declarations.spec import FRAMEWORKS, ModelSpec, SpecError, parse_model


class Registry:
    """Named entries; an unknown name is a KeyError that lists the valid ones."""

    def __init__(self, what: str):
        self.what, self._entries = what, {}

    def register(self, name, value, *, replace: bool = False):
        if name in self._entries and not replace:
            raise SpecError(f"{self.what} {name!r} is registered twice "
                            f"(first: {getattr(self._entries[name], 'origin', '?')})")
        self._entries[name] = value
        return value

    def get(self, name):
        try:
            value = self._entries[name]
        except KeyError:
            valid = ", ".join(map(str, self._entries)) or "none registered"
            raise KeyError(f"unknown {self.what} {name!r}; valid: {valid}") from None
        if isinstance(value, str):  # "module:attr", resolved once
            value = self._entries[name] = resolve(value)
        return value

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple:
        return tuple(self._entries)

    def clear(self) -> None:
        self._entries.clear()


MODELS = Registry("model")
# name -> loader(data_dir, cache_dir, n_train=, n_test=) -> convcheck.data.declared.Dataset
DATASETS = Registry("data set")
# (format, framework, exporter) -> fn(spec, framework, source_path, options, destination)
EXPORTERS = Registry("exporter")
# format -> fn(path) -> Predictor
RUNTIMES = Registry("runtime")
# format -> the pytest marker of the only OS whose runtime exists (CoreML: macOS)
RUNTIME_OS: dict[str, str] = {}
# format -> (name, stand-in): a runtime for the other OSes, an object with load(path) and
# why_not(target) -> the reason it cannot run that target's artifacts, or None (CoreML: the MIL
# reference interpreter "coreml-reference", convcheck.runtimes.coreml.REFERENCE, for ML programs)
STAND_INS = Registry("stand-in runtime")
# the marker's OS -> sys.platform
PLATFORMS = {"macos": "darwin"}


def declare_model(name: str, *, origin: str | None = None, base: Path | str | None = None,
                  **fields) -> ModelSpec:
    """Declare a model from Python, with the fields a ``[model.NAME]`` TOML table takes.

    name: the model's name (letters, digits, '-', '_', '.'), used in case ids and markers.
    fields: input, task, data, one table per framework (pytorch, keras) with exactly one of
    build, load or file, and optionally targets, markers, description (README, "Check your own
    model"). origin: where it was declared, for messages (default: the caller's file and line);
    base: the directory its relative paths start from (default: the caller's directory).
    Returns the parsed ModelSpec. Raises SpecError naming the model and the field when a field
    is unknown or malformed, a callable does not import or a file is not the kind declared;
    KeyError when the name is declared twice."""
    import inspect

    frame = inspect.stack()[1]
    origin = origin or f"{frame.filename}:{frame.lineno}"
    spec = parse_model(name, fields, origin, Path(base or Path(frame.filename).parent))
    return MODELS.register(name, spec)


def register_dataset(name: str, loader, *, replace: bool = False):
    """Register a data set a declaration can name (``data = { name = "..." }``).

    loader(data_dir, cache_dir, *, n_train, n_test) -> convcheck.data.Dataset: data_dir is
    --convcheck-data-dir (None: its offline source), n_train/n_test the profile's sample
    counts (None: all). May be "module:function", imported on first use. Returns `loader`.
    Raises KeyError when the name is taken (replace=True replaces it)."""
    return DATASETS.register(name, loader, replace=replace)


def register_exporter(fmt: str, framework: str, name: str, fn, *, replace: bool = False):
    """Register a converter a target can name (``<framework> = { exporter = "NAME" }``).

    fmt: the target format ("onnx", "coreml", or a format of the project's own with a runtime
    registered for it); framework: "pytorch" or "keras"; fn(spec, framework, source_path,
    options, destination) writes the artifact at `destination` (input "input", output
    "probabilities"; convcheck.conversion.artifacts), in the converting child process: register it in a
    module the project's `models` setting names, so that the child imports it too. Returns fn.
    Raises SpecError for an unknown framework, KeyError when the name is taken."""
    if framework not in FRAMEWORKS:
        raise SpecError(f"exporter {name!r}: unknown framework {framework!r}; "
                        f"valid: {', '.join(FRAMEWORKS)}")
    return EXPORTERS.register((fmt, framework, name), fn, replace=replace)


def register_runtime(fmt: str, loader, *, os_marker: str | None = None, stand_in=None,
                     replace: bool = False):
    """Register the runtime that runs artifacts of format `fmt`.

    loader(path) -> a predictor: an object whose predict(batch: numpy array) returns the
    outputs (N, width) as a numpy array. os_marker: the pytest marker of the only OS the
    runtime exists on ("macos" for Core ML): its cases skip elsewhere, saying so, unless
    `stand_in` = (name, an object with load(path) and why_not(target) -> reason or None, or its
    import string) runs them there; tolerance overrides match it as `runtime = "name"`.
    Returns `loader`. Raises KeyError when the format has a runtime (replace=True replaces
    it)."""
    RUNTIMES.register(fmt, loader, replace=replace)
    if os_marker:
        RUNTIME_OS[fmt] = os_marker
    if stand_in is not None:
        STAND_INS.register(fmt, stand_in, replace=replace)
    return loader


def stand_in_name(fmt: str) -> str | None:
    """The name of the stand-in runtime that runs `fmt` on this OS in place of its own (which
    runs on another OS only), or None where the format's own runtime runs here or none does."""
    import sys

    os_name = RUNTIME_OS.get(fmt)
    if os_name is None or sys.platform == PLATFORMS.get(os_name) or fmt not in STAND_INS:
        return None
    return STAND_INS.get(fmt)[0]


def stand_in(fmt: str):
    """The stand-in runtime itself (see stand_in_name), or None."""
    if stand_in_name(fmt) is None:
        return None
    entry = STAND_INS.get(fmt)[1]
    return resolve(entry) if isinstance(entry, str) else entry


def stand_in_names() -> tuple[str, ...]:
    return tuple(STAND_INS.get(f)[0] for f in STAND_INS)


def exporters(fmt: str, framework: str) -> tuple[str, ...]:
    return tuple(n for f, fw, n in EXPORTERS if (f, fw) == (fmt, framework))


def formats() -> tuple[str, ...]:
    return tuple(RUNTIMES)


def _builtins() -> None:
    for name in ("mnist", "cifar10", "imdb"):
        register_dataset(name, f"convcheck.data.declared:load_{name}")
    for fmt, fw, exp, fn in (
            ("onnx", "pytorch", "dynamo", "torch_to_onnx"),
            ("onnx", "pytorch", "torchscript", "torch_to_onnx"),
            ("onnx", "keras", "tf2onnx", "keras_to_onnx"),
            ("coreml", "pytorch", "jit-trace", "torch_to_coreml"),
            ("coreml", "keras", "tf-function", "keras_to_coreml")):
        register_exporter(fmt, fw, exp, f"convcheck.conversion.exporters:{fn}")
    register_runtime("onnx", "convcheck.runtimes:OrtPredictor.load")
    register_runtime("coreml", "convcheck.runtimes:CoreMLPredictor.load", os_marker="macos",
                     stand_in=("coreml-reference", "convcheck.runtimes.coreml:REFERENCE"))


_builtins()


def resolve(ref: str) -> Any:
    """"module:attr[.attr]" -> the object (built-in entries are stored this way)."""
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
