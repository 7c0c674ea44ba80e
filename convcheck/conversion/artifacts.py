"""The artifact contract: what every converted model is named and declares, and what it
occupies on disk.

Every converter (built-in exporter, a team's converter, the fault makers) writes one artifact
with input INPUT_NAME (a batch dimension first) and output OUTPUT_NAME, as ONNX_FILE or
COREML_FILE; the runtimes and the checks read it by these names. A model on disk is one file
(model.pt, model.keras, model.mlmodel), a bundle directory (model.mlpackage: every file under
it), or an ONNX file plus the external-data files its tensors point to (the exporters write
those beside the .onnx for large models).
"""
from __future__ import annotations

from pathlib import Path

INPUT_NAME, OUTPUT_NAME = "input", "probabilities"
ONNX_FILE = "model.onnx"
# A CoreML ML program is saved as a package (a directory), a neural network as one file.
COREML_FILE = {"mlprogram": "model.mlpackage", "neuralnetwork": "model.mlmodel"}
# CoreML inputs take a batch of 1..COREML_MAX_BATCH: an mlprogram refuses an unbounded range.
COREML_MAX_BATCH = 1024


def artifact_file_for(fmt: str, options: dict) -> str:
    """The artifact's file name for a target of format `fmt` with these converter options."""
    if fmt == "coreml":
        return COREML_FILE[options.get("convert_to", "mlprogram")]
    return {"onnx": ONNX_FILE}.get(fmt, f"model.{fmt}")


def _onnx_tensors(graph):
    """Every TensorProto of an ONNX graph: initializers and attribute tensors, subgraphs too."""
    yield from graph.initializer
    yield from (s.values for s in graph.sparse_initializer)
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _onnx_tensors(a.g)
            for g in a.graphs:
                yield from _onnx_tensors(g)


def onnx_external_files(path: Path) -> list[Path]:
    """The external-data files an ONNX model refers to, resolved beside it (read without them)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    locations = set()
    for t in _onnx_tensors(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            locations |= {e.value for e in t.external_data if e.key == "location"}
    return sorted(path.parent / loc for loc in locations)


def artifact_files(path: Path) -> list[Path]:
    """All files of the model saved at `path` (a file or a bundle directory)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if path.suffix == ".onnx":
        return [path, *onnx_external_files(path)]
    return [path]


def size_on_disk(path: Path) -> int:
    """Bytes of every file of the model saved at `path`; a missing external file raises."""
    return sum(p.stat().st_size for p in artifact_files(path))
