"""What a user declares about a model: its input, its task, its data and where each framework's
trained original comes from. One schema for every model, the zoo's and a team's own, read from
a TOML table (``[model.NAME]``) or from ``convcheck.declare_model(NAME, **fields)`` in Python;
both go through `parse_model`, so a mistake is the same SpecError naming the model and the field.

Nothing here imports a framework or numpy: declarations are read at start-up, in a session that
may not run anything yet.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path

FRAMEWORKS = ("pytorch", "keras")
# The layout of one sample. Images: nhwc / nchw; "tokens": integer ids; "features": a vector
# (or any tensor) of numbers; "any": nothing is assumed (no image or text strategy applies).
LAYOUTS = ("nhwc", "nchw", "tokens", "features", "any")
TASKS = ("classification", "regression", "other")
OUTPUTS = ("probabilities", "logits", "values")
DTYPES = ("float32", "float64", "float16", "int64", "int32")
SOURCE_KEYS = ("build", "load", "file")  # exactly one per framework
ARTIFACT_FORMATS = {".onnx": "onnx", ".mlpackage": "coreml", ".mlmodel": "coreml"}


class SpecError(Exception):
    """A model declaration that cannot be used as written."""


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]  # one sample, in the data's layout
    dtype: str = "float32"
    layout: str = "any"
    range: tuple[float, float] | None = None  # every valid value lies in [lo, hi]
    vocab_size: int | None = None  # tokens: ids 0..vocab_size-1
    pad_id: int = 0
    oov_id: int = 1
    # tokens: where the padding goes, "pre" or "post" (None: what the data shows, see
    # convcheck.data.declared.padding_side), and whether an all-padding sequence is a valid input
    padding: str | None = None
    empty: bool = False

    @property
    def is_image(self) -> bool:
        return self.layout in ("nhwc", "nchw") and len(self.shape) == 3


@dataclass(frozen=True)
class Task:
    kind: str = "classification"
    num_classes: int | None = None  # classification
    outputs: int | None = None  # regression / other: the width of the output (N, outputs)
    output: str = "probabilities"

    @property
    def classification(self) -> bool:
        return self.kind == "classification"

    @property
    def width(self) -> int:
        return self.num_classes if self.classification else self.outputs


@dataclass(frozen=True)
class Source:
    """Where one framework's trained original comes from (exactly one of build, load, file)."""

    framework: str
    kind: str  # "build": convcheck trains it (profile's hyperparameters); "load"; "file"
    ref: str  # module:function, or a path
    layout: str | None = None  # this framework's input layout, where it differs from the data's
    artifacts: dict = field(default_factory=dict)  # target name -> a shipped converted file

    @property
    def seeded(self) -> bool:
        """Trained here, once per profile seed; a given model is one instance."""
        return self.kind == "build"

    def constructor(self):
        """The callable of a build or load source, called with the spec if it takes one."""
        fn = import_callable(self.ref)
        takes_spec = bool(inspect.signature(fn).parameters)
        return (lambda spec: fn(spec)) if takes_spec else (lambda spec: fn())


@dataclass(frozen=True)
class DataSpec:
    name: str  # a registered data set (convcheck.declarations.registry.DATASETS), or the model's own
    npz: Path | None = None  # arrays x (or x_test), y (or y_test), optionally x_train, y_train
    loader: str | None = None  # module:function() -> the same arrays as a dict


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input: InputSpec
    task: Task
    data: DataSpec
    sources: dict  # framework -> Source
    markers: tuple[str, ...] = ()
    targets: tuple[str, ...] | None = None  # the targets it converts to (None: every selected one)
    description: str = ""
    origin: str = ""  # where it was declared
    declaration: dict = field(default_factory=dict, compare=False)  # the fields, JSON-ready
    # Trainable parameters of torch minus keras, where the two builders differ by construction.
    param_difference: int = 0
    param_difference_reason: str = ""
    extra: dict = field(default_factory=dict)

    # Short names the rest of the suite reads.
    @property
    def dataset(self) -> str:
        return self.data.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input.shape

    @property
    def input_dtype(self) -> str:
        return self.input.dtype

    @property
    def num_classes(self) -> int | None:
        return self.task.num_classes

    @property
    def kind(self) -> str:
        """"image", "tokens" or "features": what an input strategy or an attack draws."""
        if self.input.is_image:
            return "image"
        return "tokens" if self.input.layout == "tokens" else "features"

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(self.sources)

    def layout(self, framework: str) -> str:
        return self.sources[framework].layout or self.input.layout

    def build(self, framework: str):
        """A fresh model object from the framework's build or load callable."""
        return self.sources[framework].constructor()(self)

    def to_framework_layout(self, x, framework: str):
        """A batch in the data's layout -> the layout `framework`'s model takes."""
        src, dst = self.input.layout, self.layout(framework)
        if {src, dst} == {"nhwc", "nchw"} and x.ndim == 4:
            import numpy as np

            order = (0, 3, 1, 2) if dst == "nchw" else (0, 2, 3, 1)
            return np.ascontiguousarray(x.transpose(order))
        return x

    def framework_input_shape(self, framework: str) -> tuple[int, ...]:
        src, dst, shape = self.input.layout, self.layout(framework), self.input.shape
        if {src, dst} == {"nhwc", "nchw"} and len(shape) == 3:
            return (shape[2], shape[0], shape[1]) if dst == "nchw" else (shape[1], shape[2], shape[0])
        return shape

    def output_shape(self, n: int) -> tuple[int, ...]:
        return (n, self.task.width)


def import_callable(ref: str):
    """"package.module:function" -> the function; a clear SpecError when it cannot be had."""
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise SpecError(f"{ref!r} is not 'module:function'")
    try:
        obj = importlib.import_module(module)
    except Exception as e:
        raise SpecError(f"{ref!r}: cannot import {module!r}: {type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SpecError(f"{ref!r}: module {module!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SpecError(f"{ref!r} is not callable")
    return obj


# --------------------------------------------------------------------------- parsing

_MODEL_KEYS = {"description", "input", "task", "data", "markers", "targets",
               "param_difference", "param_difference_reason", "extra", *FRAMEWORKS}
_INPUT_KEYS = {"shape", "dtype", "layout", "range", "vocab_size", "pad_id", "oov_id", "padding",
               "empty"}
_TASK_KEYS = {"kind", "num_classes", "outputs", "output"}
_DATA_KEYS = {"name", "npz", "loader"}
_SOURCE_KEYS = {*SOURCE_KEYS, "layout", "artifacts"}


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def parse_model(name: str, body: dict, origin: str, base: Path) -> ModelSpec:
    """A declaration (TOML table or keyword arguments) -> ModelSpec. Paths are relative to
    `base` (the declaring file's directory). Errors name the model, the field and what is valid."""
    def err(where: str, msg: str):
        return SpecError(f"{origin}: model {name!r}: {where}: {msg}")

    def table(where, value, keys, required=()):
        if not isinstance(value, dict):
            raise err(where, f"must be a table, got {value!r}")
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise err(f"{where}.{unknown[0]}", f"unknown field; valid: {', '.join(sorted(keys))}")
        missing = [k for k in required if k not in value]
        if missing:
            raise err(where, f"missing {', '.join(missing)}")
        return value

    def choice(where, value, valid):
        if value not in valid:
            raise err(where, f"{value!r} unknown; valid: {', '.join(valid)}")
        return value

    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_." for c in
                                                        name.replace("-", "")):
        raise SpecError(f"{origin}: model name {name!r} must be letters, digits, '-', '_', '.'")
    table("<model>", body, _MODEL_KEYS, required=("input", "task", "data"))

    i = table("input", body["input"], _INPUT_KEYS, required=("shape",))
    shape = i["shape"]
    if not (isinstance(shape, list) and shape and all(_int(d) and d > 0 for d in shape)):
        raise err("input.shape", f"must be a non-empty list of positive integers (one sample, "
                                 f"no batch dimension), got {shape!r}")
    rng = i.get("range")
    if rng is not None and not (isinstance(rng, list) and len(rng) == 2 and all(map(_num, rng))
                                and rng[0] < rng[1]):
        raise err("input.range", f"must be [low, high] with low < high, got {rng!r}")
    layout = choice("input.layout", i.get("layout", "any"), LAYOUTS)
    if layout in ("nhwc", "nchw") and len(shape) != 3:
        raise err("input.shape", f"an {layout} image is 3 dimensions, got {shape!r}")
    dtype = choice("input.dtype", i.get("dtype", "int64" if layout == "tokens" else "float32"),
                   DTYPES)
    vocab = i.get("vocab_size")
    if vocab is not None and not (_int(vocab) and vocab > 2):
        raise err("input.vocab_size", f"must be an integer > 2, got {vocab!r}")
    if vocab is not None and layout != "tokens":
        raise err("input.vocab_size", f"only token inputs have a vocabulary (layout {layout!r})")
    for k in ("pad_id", "oov_id"):
        if k in i and not (_int(i[k]) and 0 <= i[k] < (vocab or 2**31)):
            raise err(f"input.{k}", f"must be an id in 0..vocab_size-1, got {i[k]!r}")
    for k in ("padding", "empty", "pad_id", "oov_id"):
        if k in i and layout != "tokens":
            raise err(f"input.{k}", f"only token inputs have it (layout {layout!r})")
    padding = i.get("padding")
    if padding is not None:
        choice("input.padding", padding, ("pre", "post"))
    if not isinstance(i.get("empty", False), bool):
        raise err("input.empty", f"must be true or false, got {i['empty']!r}")
    if i.get("pad_id", 0) == i.get("oov_id", 1):
        raise err("input.oov_id", f"must differ from pad_id ({i.get('pad_id', 0)})")
    inp = InputSpec(tuple(shape), dtype, layout, tuple(float(v) for v in rng) if rng else None,
                    vocab, i.get("pad_id", 0), i.get("oov_id", 1), padding,
                    i.get("empty", False))

    t = table("task", body["task"], _TASK_KEYS)
    kind = choice("task.kind", t.get("kind", "classification"), TASKS)
    if kind == "classification":
        n = t.get("num_classes")
        if not (_int(n) and n >= 2):
            raise err("task.num_classes", f"a classifier needs num_classes >= 2, got {n!r}")
        if "outputs" in t:
            raise err("task.outputs", "a classifier's output width is num_classes")
        output = choice("task.output", t.get("output", "probabilities"), ("probabilities", "logits"))
        task = Task(kind, n, None, output)
    else:
        n = t.get("outputs")
        if not (_int(n) and n >= 1):
            raise err("task.outputs", f"the output width (N, outputs) is needed, got {n!r}")
        if "num_classes" in t:
            raise err("task.num_classes", f"only classification has classes (kind {kind!r})")
        task = Task(kind, None, n, choice("task.output", t.get("output", "values"), ("values",)))

    d = body["data"]
    if isinstance(d, str):
        d = {"name": d}
    table("data", d, _DATA_KEYS)
    given = [k for k in ("name", "npz", "loader") if k in d]
    if len(set(given) & {"npz", "loader"}) > 1 or not given:
        raise err("data", "give one of name (a registered data set), npz or loader")
    if "loader" in d and not isinstance(d["loader"], str):
        raise err("data.loader", f"must be 'module:function', got {d['loader']!r}")
    npz = _path(base, d["npz"], err, "data.npz") if "npz" in d else None
    if npz is not None and not npz.is_file():
        raise err("data.npz", f"no such file: {npz}")
    data = DataSpec(d.get("name", name), npz, d.get("loader"))

    sources = {}
    for fw in FRAMEWORKS:
        if fw not in body:
            continue
        s = table(fw, body[fw], _SOURCE_KEYS)
        kinds = [k for k in SOURCE_KEYS if k in s]
        if len(kinds) != 1:
            raise err(fw, f"give exactly one of {', '.join(SOURCE_KEYS)} (build: convcheck "
                          f"trains it; load: module:function returning the trained model; "
                          f"file: a saved model), got {kinds or 'none'}")
        k = kinds[0]
        if not isinstance(s[k], str):
            raise err(f"{fw}.{k}", f"must be a string, got {s[k]!r}")
        ref = s[k]
        if k == "file":
            path = _path(base, ref, err, f"{fw}.file")
            if not path.exists():
                raise err(f"{fw}.file", f"no such file: {path}")
            from convcheck.declarations.file_kinds import ORIGINAL_KINDS, refuse

            why = refuse(path, ORIGINAL_KINDS.get(fw, ()), f"a {fw} original")
            if why:
                raise err(f"{fw}.file", why)
            ref = str(path)
        else:
            try:
                import_callable(ref)
            except SpecError as e:
                raise err(f"{fw}.{k}", str(e)) from None
        src_layout = choice(f"{fw}.layout", s["layout"], LAYOUTS) if "layout" in s else None
        artifacts = {}
        for target, p in (s.get("artifacts") or {}).items():
            path = _path(base, p, err, f"{fw}.artifacts.{target}")
            if path.suffix not in ARTIFACT_FORMATS:
                raise err(f"{fw}.artifacts.{target}", f"{path.name}: unknown format; valid "
                                                      f"suffixes: {', '.join(ARTIFACT_FORMATS)}")
            if not path.exists():
                raise err(f"{fw}.artifacts.{target}", f"no such file: {path}")
            from convcheck.declarations.file_kinds import ARTIFACT_KINDS, refuse

            why = refuse(path, ARTIFACT_KINDS[path.suffix], f"a shipped {path.suffix} artifact")
            if why:
                raise err(f"{fw}.artifacts.{target}", why)
            artifacts[target] = path
        sources[fw] = Source(fw, k, ref, src_layout, artifacts)
    if not sources:
        raise err("<model>", f"declares no original: add a {' or '.join(FRAMEWORKS)} table")

    markers = body.get("markers", [])
    if not (isinstance(markers, list) and all(isinstance(m, str) and m.isidentifier()
                                              for m in markers)):
        raise err("markers", f"must be a list of identifiers, got {markers!r}")
    targets = body.get("targets")
    if targets is not None and not (isinstance(targets, list)
                                    and all(isinstance(x, str) for x in targets)):
        raise err("targets", f"must be a list of target names, got {targets!r}")
    declaration = _jsonable(body)
    return ModelSpec(name, inp, task, data, sources, tuple(markers),
                     tuple(targets) if targets is not None else None,
                     body.get("description", ""), origin, {"base": str(base), **declaration},
                     body.get("param_difference", 0), body.get("param_difference_reason", ""),
                     dict(body.get("extra", {})))


def _path(base: Path, value, err, where) -> Path:
    if not isinstance(value, str) or not value:
        raise err(where, f"must be a path, got {value!r}")
    return (base / Path(value).expanduser()).resolve()


def _jsonable(body: dict) -> dict:
    return {k: (_jsonable(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else v)
            for k, v in body.items()}


def from_declaration(name: str, declaration: dict) -> ModelSpec:
    """The spec again from ModelSpec.declaration (what a converter's child process gets)."""
    body = {k: v for k, v in declaration.items() if k != "base"}
    return parse_model(name, body, "<job>", Path(declaration["base"]))
