"""A reference interpreter for Core ML's neuralnetwork models (the older .mlmodel format, whose
layers NeuralNetwork.proto defines), in numpy: a converted model run where Apple's Core ML
runtime does not exist (Linux), so that its conversion can be checked there, as convcheck.mil
does for ML programs.

Why an interpreter, not a back-conversion: onnxmltools' CoreML converter targets the
specification version 1-3 layers (it has no converter for the ND layers the zoo's conversions
are made of: embeddingND, loadConstantND, sliceStatic, splitND, fillDynamic, the loop layer, ...)
and would add a second converter between the file and the figures; these layers are each a few
lines of numpy over the spec's own fields, read with coremltools' protobuf classes.

Precision: Core ML runs a neuralnetwork model in float32 on the CPU (float16 weights are widened
on load), so every layer computes and stores float32. A layer type the interpreter does not
implement, or a field of one it would have to guess (quantized weights, a deconvolution, image
inputs), raises Unsupported naming the layer and the model before anything runs or while it runs,
never a silent wrong answer.
"""
from __future__ import annotations

from convcheck.nnspec.interpreter import Interpreter, Unsupported, implemented

__all__ = ["Interpreter", "Unsupported", "implemented"]
