"""The originals' runtimes: PyTorch (a state_dict with its architecture, TorchScript, or a
torch.export program) and Keras (.keras or .h5), each on every OS."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from convcheck import frameworks
from convcheck.declarations.spec import SpecError
from convcheck.runtimes.base import Predictor, _first


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


ORIGINALS = {"pytorch": TorchPredictor.load, "keras": KerasPredictor.load}


def load_original(spec, framework: str, path: Path) -> Predictor:
    """The original of `spec` in `framework`, saved at `path`."""
    return ORIGINALS[framework](spec, path)
