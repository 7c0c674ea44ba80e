"""CoreML models run by coremltools on the CPU: loading and predicting need macOS (the registry's
RUNTIME_OS says so); converting and reading the spec work everywhere. Elsewhere an ML program
runs on convcheck's MIL reference interpreter (convcheck.mil) and a neuralnetwork model on its
layer interpreter (convcheck.nnspec), under the name "coreml-reference" so that no figure they
give is taken for Apple's runtime's."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from convcheck import frameworks

_DTYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "DOUBLE": np.float64,
           "INT32": np.int32}


def _described(spec) -> tuple:
    """(input name, output name, input dtype, largest batch or None) of a model's spec."""
    from coremltools.proto import FeatureTypes_pb2

    described = spec.description
    inp = described.input[0]
    array = inp.type.multiArrayType
    # Token ids are int32 in an ML program, float32 in a neural network: feed what it declares.
    dtype = _DTYPES[FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)]
    ranges = array.shapeRange.sizeRanges
    upper = ranges[0].upperBound if ranges else array.shape[0]
    return inp.name, described.output[0].name, dtype, (upper if upper > 0 else None)


class CoreMLPredictor:
    """A CoreML model (.mlpackage or .mlmodel) run by coremltools; predicting needs macOS."""

    name = "coreml"

    def __init__(self, model):
        self.model = model
        (self.input_name, self.output_name, self.input_dtype,
         self.max_batch) = _described(model.get_spec())

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


class ReferencePredictor:
    """A CoreML model run by convcheck's reference interpreters, on any OS: an ML program
    (.mlpackage) by the MIL interpreter, a neuralnetwork model by the layer interpreter."""

    name = "coreml-reference"

    def __init__(self, path: Path):
        import coremltools as ct

        spec = ct.utils.load_spec(str(path))
        (self.input_name, self.output_name, self.input_dtype,
         self.max_batch) = _described(spec)
        if spec.WhichOneof("Type") == "mlProgram":
            from convcheck.mil import Interpreter

            self.interpreter = Interpreter.load(path)
        else:
            from convcheck.nnspec import Interpreter

            self.interpreter = Interpreter(spec, str(path))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        step = self.max_batch or len(x)
        outs = [self._run(x[i : i + step]) for i in range(0, len(x), step)]
        return np.concatenate(outs).astype(np.float32, copy=False)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """The interpreter on `x`, its samples shared out among the runtime's threads."""
        shares = _shares(len(x), frameworks.threads())
        if len(shares) == 1:
            return self.interpreter.run({self.input_name: x})[self.output_name]
        with _one_blas_thread():
            outs = list(_pool(len(shares)).map(
                lambda s: self.interpreter.run({self.input_name: x[s]})[self.output_name],
                shares))
        return np.concatenate(outs)


# The interpreters are numpy, op after op: a convolution's window copy, a matmul, a cast each
# release the GIL, yet one call runs them one after another on one core. Every op the zoo's
# programs hold is per sample, so a batch is shared out among the runtime's threads
# ($CONVCHECK_THREADS), each interpreting its part, numpy's BLAS on one thread meanwhile.
# Measured on 2 cores (benchmarks/reference_runtime.py, 256 test samples, one call vs two
# shares): PyTorch ResNet-18 ML program fp16 8.4 -> 4.7 s, neuralnetwork 5.7 -> 3.8 s; PyTorch
# GRU fp16 8.2 -> 5.1 s, palettized 8.2 -> 4.1 s, fp32 1.6 -> 1.3 s; outputs equal. A share
# is at least MIN_SHARE samples: a property test's batch of 1..8 runs whole.
MIN_SHARE = 16
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _shares(n: int, threads: int) -> list[slice]:
    parts = max(1, min(threads, n // MIN_SHARE))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _one_blas_thread():
    """numpy's BLAS on one thread while the shares run: each share's thread is a core's work
    already, and a BLAS pool per share on top oversubscribes the cores, where a recurrent
    program's many small matmuls spend their time waking and parking BLAS threads
    (threadpoolctl: process-wide, put back after)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


_blas = None


def _pool(workers: int) -> ThreadPoolExecutor:
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="coreml-reference")
        return _pools[workers]


class _Reference:
    """The stand-in for Core ML where it does not run (registry.STAND_INS): ML programs and
    neuralnetwork models (a layer either interpreter lacks is refused by name when it loads)."""

    name = ReferencePredictor.name  # registered under it (registry._builtins)

    @staticmethod
    def load(path: Path) -> ReferencePredictor:
        return ReferencePredictor(Path(path))

    @staticmethod
    def why_not(target) -> str | None:
        kinds = {o.get("convert_to", "mlprogram") for o in target.options.values()}
        if kinds - {"mlprogram", "neuralnetwork"}:
            return (f"target {target.name} converts to {', '.join(sorted(kinds))}: the "
                    "reference interpreters run ML programs and neuralnetwork models only")
        return None


REFERENCE = _Reference()
