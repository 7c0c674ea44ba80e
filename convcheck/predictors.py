"""One way to run any model, original or converted.

A Predictor takes a batch in its model's own input layout (the layout ModelSpec gives for the
framework the model came from) and returns its first output as a float32 array (N, width): class
probabilities or logits for a classifier (as its task declares), values otherwise.

Originals load from what their declaration gives: a state_dict or ``.keras`` file written by
convcheck (its build or load callable makes the architecture), TorchScript, a ``torch.export``
``.pt2`` program, or a ``.keras`` / ``.h5`` file. Converted models load through the runtime the
registry names for their format (convcheck.registry.RUNTIMES).
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from convcheck import frameworks
from convcheck.spec import SpecError


class Predictor(Protocol):
    name: str  # the runtime, e.g. "pytorch", "keras", "onnxruntime"

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


def _first(out):
    """A model's first output: tuples, lists and dicts (in their order) give their first."""
    while isinstance(out, (tuple, list, dict)):
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return out


class TorchPredictor:
    name = "pytorch"

    def __init__(self, model):
        try:
            model.eval()
        except (NotImplementedError, RuntimeError):  # a torch.export program: already eval
            pass
        self.model = model

    @classmethod
    def load(cls, spec, path: Path) -> "TorchPredictor":
        torch = frameworks.torch()
        path = Path(path)
        if spec.sources["pytorch"].kind == "file":
            try:
                if path.suffix == ".pt2":
                    return cls(_exported(torch.export.load(str(path)).module()))
                return cls(torch.jit.load(str(path), map_location="cpu"))
            except Exception as e:
                raise SpecError(f"model {spec.name!r}: pytorch.file {path} does not load as "
                                f"{'a torch.export program' if path.suffix == '.pt2' else 'TorchScript'}"
                                f": {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                                ) from None
        model = spec.build("pytorch")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return cls(model)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        torch = frameworks.torch()
        with torch.inference_mode():
            return _first(self.model(torch.from_numpy(np.ascontiguousarray(batch)))).numpy()


def _exported(program):
    """A torch.export program's module, whose train() and eval() are no-ops: the program keeps
    the mode it was exported in, and its own train()/eval() raise NotImplementedError, which
    ART's estimators and the legacy ONNX exporter call. Nothing else changes (the forward,
    its gradients, tracing)."""
    torch = frameworks.torch()

    class ExportedProgramModule(torch.nn.Module):
        def __init__(self, program):
            super().__init__()
            self.program = program

        def train(self, mode: bool = True):
            self.training = mode
            return self

        def forward(self, x):  # one input, as every convcheck model takes
            return self.program(x)

    return ExportedProgramModule(program)


class KerasPredictor:
    name = "keras"

    def __init__(self, model):
        self.model = model
        tf = frameworks.tf()
        # A traced inference function: no per-call Python overhead of model.predict.
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    @classmethod
    def load(cls, spec, path: Path) -> "KerasPredictor":
        path = Path(path)
        if path.is_dir() or path.suffix not in (".keras", ".h5"):
            raise SpecError(f"model {spec.name!r}: keras.file {path}: convcheck reads .keras and "
                            f".h5 files (a SavedModel directory: save it with model.save("
                            f"'model.keras') or declare a load callable)")
        try:
            return cls(frameworks.keras().models.load_model(path, compile=False))
        except Exception as e:
            raise SpecError(f"model {spec.name!r}: keras model {path} does not load: "
                            f"{type(e).__name__}: {e}") from None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(_first(self._fn(batch)))


class OrtPredictor:
    name = "onnxruntime"

    def __init__(self, session):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def load(cls, path: Path, config: dict[str, str] | None = None) -> "OrtPredictor":
        """config: session config entries, e.g. {"session.intra_op.allow_spinning": "0"}."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = frameworks.threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        for key, value in (config or {}).items():
            opts.add_session_config_entry(key, value)
        return cls(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


ORIGINALS = {"pytorch": TorchPredictor.load, "keras": KerasPredictor.load}


def load_original(spec, framework: str, path: Path) -> Predictor:
    """The original of `spec` in `framework`, saved at `path`."""
    return ORIGINALS[framework](spec, path)


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


def load_converted(fmt: str, path: Path) -> Predictor:
    """The runtime predictor for a converted artifact of format `fmt` (registry.RUNTIMES)."""
    from convcheck.registry import RUNTIMES

    return RUNTIMES.get(fmt)(path)


def predict_all(predictor: Predictor, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Outputs for a whole array, in fixed-size batches (memory stays flat)."""
    outs = [predictor.predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs).astype(np.float32, copy=False)
