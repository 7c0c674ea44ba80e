"""The team's own export: Keras 3's built-in ONNX export, used as a convcheck converter
(a target's `converter = "keras_export:to_onnx"`). convcheck calls it in a child process with a
time limit, with the loaded original, the artifact path to write and the target's options."""
import numpy as np


def to_onnx(model, destination, options):
    # A model loaded from .keras has not been called yet; Keras' exporter needs one call.
    model(np.zeros((1, *model.input_shape[1:]), dtype="float32"))
    model.export(str(destination), format="onnx", opset_version=options.get("opset", 18),
                 verbose=False)
