"""Precision and optimisation variants of an ONNX conversion, made from it the way a team makes
what it ships: float16 (onnxruntime's float16 converter, inputs and outputs kept float32), int8
with dynamic quantization (onnxruntime.quantization.quantize_dynamic), int8 with static QDQ
quantization calibrated on training samples (quantize_static, never the test set), and
onnxruntime's offline-optimised graph (extended level). Each writes one self-contained .onnx
file; the Workbench caches it like any conversion, keyed by its base conversion.

And of a CoreML ML program, by coremltools.optimize.coreml (it works on the program, on any OS):
its weights palettized (k-means, 2**nbits values per tensor) or linearly quantized to int8
(symmetric, per channel), written as a new .mlpackage whose constexpr_* ops decompress them.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


class VariantError(Exception):
    """A variant that cannot be made (its tool's own message)."""


def _load(src: Path):
    import onnx

    return onnx.load(str(src))  # external data beside it is read in


def _save(model, dst: Path) -> None:
    import onnx

    onnx.save_model(model, str(dst), save_as_external_data=False)


def fp16(src: Path, dst: Path, options: dict, calibration=None) -> None:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    _save(convert_float_to_float16(_load(src), keep_io_types=True), dst)


def _single_file(src: Path, tmp: Path) -> Path:
    """The model as one file (the quantizer reads its path; the dynamo exporter's external
    data would be left behind)."""
    out = tmp / "float32.onnx"
    _save(_load(src), out)
    return out


def int8_dynamic(src: Path, dst: Path, options: dict, calibration=None) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        quantize_dynamic(_single_file(src, Path(tmp)), dst, weight_type=QuantType.QInt8)


class _Calibration:
    """onnxruntime's CalibrationDataReader over training samples, a few at a time."""

    def __init__(self, name: str, x: np.ndarray, batch: int = 16):
        self.batches = iter([{name: x[i:i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self.batches, None)


def int8_static(src: Path, dst: Path, options: dict, calibration=None) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if calibration is None or len(calibration) == 0:
        raise VariantError("int8-static: no training samples to calibrate on (the test set is "
                           "never used for it)")
    CalibrationDataReader.register(_Calibration)
    with tempfile.TemporaryDirectory() as tmp:
        single = _single_file(src, Path(tmp))
        name = _load(single).graph.input[0].name
        quantize_static(single, dst, _Calibration(name, calibration),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8)


def optimized(src: Path, dst: Path, options: dict, calibration=None) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])


def _coreml_optimized(src: Path, dst: Path, compress, op_config) -> None:
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    # skip_model_load: the program is read and rewritten; Core ML (macOS) never loads it here.
    model = ct.models.MLModel(str(src), skip_model_load=True)
    compress(model, cto.OptimizationConfig(global_config=op_config)).save(str(dst))


def palettize(src: Path, dst: Path, options: dict, calibration=None) -> None:
    import coremltools.optimize.coreml as cto

    _coreml_optimized(src, dst, cto.palettize_weights,
                      cto.OpPalettizerConfig(mode="kmeans", nbits=int(options["nbits"])))


def int8_weights(src: Path, dst: Path, options: dict, calibration=None) -> None:
    import coremltools.optimize.coreml as cto

    _coreml_optimized(src, dst, cto.linear_quantize_weights,
                      cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8"))


KINDS = {"fp16": fp16, "int8-dynamic": int8_dynamic, "int8-static": int8_static,
         "optimized": optimized, "palettize": palettize, "int8-weights": int8_weights}


def make(variant: dict, src: Path, dst: Path, calibration: np.ndarray | None = None) -> Path:
    """Write the `variant` ({"kind": ..., options}) of the model at `src` (an ONNX file or an
    ML program, as the kind takes) to `dst`."""
    try:
        KINDS[variant["kind"]](Path(src), Path(dst), variant, calibration)
    except VariantError:
        raise
    except Exception as e:  # the tool's own failure, said with the variant
        raise VariantError(f"{variant['kind']}: {type(e).__name__}: {e}") from e
    return Path(dst)
