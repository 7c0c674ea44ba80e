"""One way to run any model, original or converted.

A Predictor takes a batch in its model's own input layout (the layout ModelSpec gives for the
framework the model came from) and returns its first output as a float32 array (N, width): class
probabilities or logits for a classifier (as its task declares), values otherwise.

Originals load from what their declaration gives: a state_dict or ``.keras`` file written by
convcheck (its build or load callable makes the architecture), TorchScript, a ``torch.export``
``.pt2`` program, or a ``.keras`` / ``.h5`` file. Converted models load through the runtime the
registry names for their format (convcheck.declarations.registry.RUNTIMES).
"""
from convcheck.runtimes.base import Predictor, load_converted, predict_all
from convcheck.runtimes.coreml import CoreMLPredictor
from convcheck.runtimes.onnx_runtime import OrtPredictor
from convcheck.runtimes.originals import ORIGINALS, KerasPredictor, TorchPredictor, load_original

__all__ = ["ORIGINALS", "CoreMLPredictor", "KerasPredictor", "OrtPredictor", "Predictor",
           "TorchPredictor", "load_converted", "load_original", "predict_all"]
