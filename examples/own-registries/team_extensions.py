"""This team's additions to convcheck: a data set, an exporter and a runtime of its own.
convcheck imports this module (named in convcheck.toml's `models`) at start-up and again in
every process it starts (the child that converts), so each register_* call here is in force
wherever convcheck needs it. Nothing else imports it: the model's own module (wine_model) does
not, so the child that converts knows the exporter only through the project's settings."""
from __future__ import annotations

import numpy as np
from wine_model import load_wine

from convcheck import register_dataset, register_exporter, register_runtime


def export_for_reference(spec, framework, source, options, destination):
    """The team's exporter: the legacy (TorchScript) ONNX exporter at opset 17, written for the
    team's reference runtime below."""
    import torch

    from convcheck.conversion.exporters import load_original_model

    model = load_original_model(spec, framework, source)
    example = torch.zeros((2, *spec.framework_input_shape(framework)))
    torch.onnx.export(model, (example,), str(destination), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["probabilities"],
                      dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}})


class ReferencePredictor:
    """The team's runtime: the ONNX graph run by onnx.reference (the ONNX specification's
    own Python evaluator), not onnxruntime."""

    name = "onnx-reference"

    def __init__(self, path):
        from onnx.reference import ReferenceEvaluator

        self.session = ReferenceEvaluator(str(path))

    def predict(self, batch):
        return np.asarray(self.session.run(None, {"input": batch})[0])


register_dataset("sklearn-wine", load_wine)
register_exporter("onnxref", "pytorch", "team-legacy", export_for_reference)
register_runtime("onnxref", ReferencePredictor)
