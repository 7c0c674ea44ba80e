"""Conversion: the artifact contract (convcheck.conversion.artifacts: what a converted model is on
disk, its files and size), the built-in exporters (torch.onnx dynamo and legacy, tf2onnx,
coremltools) and the runner that calls an exporter in a child process with a timeout
(convcheck.conversion.runner)."""
