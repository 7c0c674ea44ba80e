"""One way to run any model, original or converted.

A Predictor takes a batch in its model's own input layout (the layout ModelSpec gives for the
framework the model came from) and returns class probabilities as float32, shape (N, classes):
every model in the zoo ends in a softmax, and a converted model must keep it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from convcheck import frameworks


class Predictor(Protocol):
    name: str  # the runtime, e.g. "pytorch", "keras", "onnxruntime"

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


class TorchPredictor:
    name = "pytorch"

    def __init__(self, model):
        self.model = model.eval()

    @classmethod
    def load(cls, spec, path: Path) -> "TorchPredictor":
        torch = frameworks.torch()
        model = spec.build("pytorch")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return cls(model)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        torch = frameworks.torch()
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(batch))).numpy()


class KerasPredictor:
    name = "keras"

    def __init__(self, model):
        self.model = model
        tf = frameworks.tf()
        # A traced inference function: no per-call Python overhead of model.predict.
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    @classmethod
    def load(cls, spec, path: Path) -> "KerasPredictor":
        return cls(frameworks.keras().models.load_model(path, compile=False))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._fn(batch))


class OrtPredictor:
    name = "onnxruntime"

    def __init__(self, session):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def load(cls, path: Path) -> "OrtPredictor":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = frameworks.threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        return cls(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


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


RUNTIMES = {"onnx": OrtPredictor.load, "coreml": CoreMLPredictor.load}
# Formats whose runtime exists on one OS only: format -> the pytest marker of that OS.
RUNTIME_OS: dict[str, str] = {"coreml": "macos"}


def load_converted(fmt: str, path: Path) -> Predictor:
    """The runtime predictor for a converted artifact of format `fmt`."""
    return RUNTIMES[fmt](path)


def predict_all(predictor: Predictor, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Outputs for a whole array, in fixed-size batches (memory stays flat)."""
    outs = [predictor.predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs).astype(np.float32, copy=False)
