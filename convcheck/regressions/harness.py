"""Known silent divergences between a framework and its ONNX conversion, as minimal reproducers.

Each Regression builds the smallest model that shows one behaviour, exports it with one exporter
of the pinned stack, runs both on fixed seeded inputs and returns what it measured (max abs error,
non-finite outputs, shapes, and the graph details that explain it). The test in
convcheck.suite.regressions judges them against tolerances.toml; the ones that still
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


def _op_types(path: Path) -> list[str]:
    import onnx

    return [n.op_type for n in onnx.load(str(path)).graph.node]


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
    """tf2onnx on a traced inference function (what convcheck.conversion.runner does for the zoo)."""
    import tensorflow as tf
    import tf2onnx

    fn = tf.function(lambda x: model(x, training=False))
    with _quiet():
        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        tf2onnx.convert.from_function(
            fn, input_signature=(tf.TensorSpec((None, *input_shape), dtype, name="input"),),
            opset=OPSET, output_path=str(path))
    return path
