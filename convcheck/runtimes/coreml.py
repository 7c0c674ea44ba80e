"""CoreML models run by coremltools on the CPU: loading and predicting need macOS (the registry's
RUNTIME_OS says so); converting and reading the spec work everywhere."""
from __future__ import annotations

from pathlib import Path

import numpy as np


class CoreMLPredictor:
    """A CoreML model (.mlpackage or .mlmodel) run by coremltools; predicting needs macOS."""

    name = "coreml"
    _DTYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "DOUBLE": np.float64,
               "INT32": np.int32}

    def __init__(self, model):
        from coremltools.proto import FeatureTypes_pb2

        self.model = model
        described = model.get_spec().description
        inp = described.input[0]
        self.input_name, self.output_name = inp.name, described.output[0].name
        array = inp.type.multiArrayType
        # Token ids are int32 in an ML program, float32 in a neural network: feed what it declares.
        dtype = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)
        self.input_dtype = self._DTYPES[dtype]
        ranges = array.shapeRange.sizeRanges
        upper = ranges[0].upperBound if ranges else array.shape[0]
        self.max_batch = upper if upper > 0 else None  # -1: unbounded

    @classmethod
    def load(cls, path: Path) -> "CoreMLPredictor":
        import coremltools as ct

        # CPU only: the GPU and the Neural Engine compute in fp16 whatever the model's precision.
        return cls(ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        step = self.max_batch or len(x)
        # The output is a multiarray of probabilities (N, classes), not a classifier's dict.
        outs = [self.model.predict({self.input_name: x[i : i + step]})[self.output_name]
                for i in range(0, len(x), step)]
        return np.concatenate(outs).astype(np.float32, copy=False)
