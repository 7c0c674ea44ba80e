"""Resampling: bilinear interpolation's coordinate modes, average pooling's ceil-mode divisor and
Resize with an inexact scale."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from convcheck.regressions.harness import (
    SEED,
    Measured,
    _keras,
    _torch,
    _torch_case,
    compare,
    keras_to_onnx,
    node_attributes,
    ort_run,
)


class _Interpolate:
    @staticmethod
    def build(**kw):
        torch = _torch()

        class Net(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.interpolate(x, mode="bilinear", **kw)

        return Net()


def bilinear(exporter: str, **kw) -> Callable[[Path], Measured]:
    def run(tmp: Path) -> Measured:
        torch = _torch()
        path = tmp / "bilinear.onnx"
        m = _torch_case(lambda: _Interpolate.build(**kw), lambda: (torch.rand(1, 2, 5, 7),),
                        exporter, path)
        if m.error is None:
            m.detail["coordinate_transformation_mode"] = node_attributes(
                path, "Resize", "coordinate_transformation_mode")
        return m

    return run


def avg_pool_ceil(exporter: str) -> Callable[[Path], Measured]:
    """avg_pool2d(kernel 3, stride 2, padding 1, ceil_mode, count_include_pad) on a 4x4 ramp:
    the extra right/bottom windows must be divided by their in-bounds-plus-padding size."""

    def run(tmp: Path) -> Measured:
        torch = _torch()

        class Net(torch.nn.Module):
            def forward(self, x):
                return torch.nn.functional.avg_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                      count_include_pad=True)

        x = torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
        return _torch_case(Net, lambda: (x,), exporter, tmp / "avgpool.onnx")

    return run


def keras_upsampling_bilinear(tmp: Path) -> Measured:
    keras = _keras()
    inputs = keras.Input((5, 7, 2), name="input")
    model = keras.Model(inputs, keras.layers.UpSampling2D(2, interpolation="bilinear")(inputs))
    x = np.random.default_rng(SEED).random((2, 5, 7, 2), dtype=np.float32)
    path = keras_to_onnx(model, x.shape[1:], "float32", tmp / "upsampling.onnx")
    m = compare(np.asarray(model(x, training=False)), ort_run(path, {"input": x}))
    m.detail["coordinate_transformation_mode"] = node_attributes(
        path, "Resize", "coordinate_transformation_mode")
    return m


def keras_resizing_inexact_scale(tmp: Path) -> Measured:
    """Keras Resizing 5x7 -> 9x4: tf2onnx emits Resize with *scales* (1.8, 0.571...). The ONNX
    spec floors input size x scale (5 x 1.8 = 8.99.. in float32 -> 8 rows); onnxruntime rounds
    (9 rows, like Keras). The converted model's output shape depends on the runtime."""
    from onnx.reference import ReferenceEvaluator

    keras = _keras()
    inputs = keras.Input((5, 7, 2), name="input")
    model = keras.Model(inputs, keras.layers.Resizing(9, 4, interpolation="bilinear")(inputs))
    x = np.random.default_rng(SEED).random((2, 5, 7, 2), dtype=np.float32)
    ref = np.asarray(model(x, training=False))
    path = keras_to_onnx(model, x.shape[1:], "float32", tmp / "resizing.onnx")
    on_ort = ort_run(path, {"input": x})
    on_reference = ReferenceEvaluator(str(path)).run(None, {"input": x})[0]
    m = compare(ref, on_reference)  # the spec's reading of the graph
    m.problems = [f"onnx.reference: {p}" for p in m.problems]
    on_runtime = compare(ref, on_ort)
    m.problems += [f"onnxruntime: {p}" for p in on_runtime.problems]
    m.detail |= {"runtime": "onnx.reference (the spec)", "shape_onnxruntime": list(on_ort.shape),
                 "abs_max_onnxruntime": on_runtime.abs_max}
    return m
