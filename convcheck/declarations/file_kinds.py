"""What a saved model file is, read from its bytes, without importing a framework.

A declaration names files by path; a TorchScript file given as a Keras model, a `torch.save`
pickle given as TorchScript, or an ONNX file that is not a model would otherwise fail deep in a
framework's loader, inside the first test that needs it, and read as a conversion failure. The
container formats tell them apart at start-up: TorchScript and torch.export archives are zips
with their own members (``code/`` and ``constants.pkl``; ``archive_format`` and
``models/``), a ``.keras`` file is a zip with ``config.json``, ``.h5`` is HDF5 (its 8-byte
signature), ONNX is a protobuf ModelProto (onnx parses it without running anything) and an
``.mlpackage`` is a directory with a ``Manifest.json``. No library sniffs all of these, hence
this module.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# what each kind is called in messages
NAMES = {"torchscript": "a TorchScript file", "torch-export": "a torch.export program (.pt2)",
         "torch-pickle": "a torch.save pickle (weights or a pickled module, not TorchScript)",
         "keras": "a Keras .keras archive", "h5": "an HDF5 (.h5) file", "onnx": "an ONNX model",
         "mlpackage": "a CoreML .mlpackage", "mlmodel": "a CoreML .mlmodel"}
# the kinds a declaration may name, per framework (`file`) and per artifact suffix
ORIGINAL_KINDS = {"pytorch": ("torchscript", "torch-export"), "keras": ("keras", "h5")}
ARTIFACT_KINDS = {".onnx": ("onnx",), ".mlpackage": ("mlpackage",), ".mlmodel": ("mlmodel",)}


def kind_of(path: Path) -> str | None:
    """The kind of saved model at `path` (a key of NAMES), or None: none convcheck knows."""
    path = Path(path)
    if path.is_dir():
        return "mlpackage" if (path / "Manifest.json").is_file() else None
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        members = {"/".join(n.split("/")[1:]) for n in names}
        if "config.json" in names:
            return "keras"
        if "archive_format" in members or any(m.startswith("models/") for m in members):
            return "torch-export"
        if "constants.pkl" in members and any(m.startswith("code/") for m in members):
            return "torchscript"
        if "data.pkl" in members:
            return "torch-pickle"
        return None
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_SIGNATURE:
        return "h5"
    if path.suffix == ".mlmodel":
        return "mlmodel"  # a protobuf of its own; coremltools reads it when it is used
    return "onnx" if _is_onnx(path) else None


def _is_onnx(path: Path) -> bool:
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:  # pragma: no cover -- onnx is a dependency
        return True
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError, RuntimeError):
        return False
    return bool(model.graph.node) and model.ir_version > 0


def refuse(path: Path, allowed: tuple[str, ...], what: str) -> str | None:
    """Why the file at `path` cannot be `what` (None: it is one of the `allowed` kinds)."""
    kind = kind_of(path)
    if kind in allowed:
        return None
    want = " or ".join(NAMES[k] for k in allowed)
    found = NAMES[kind] if kind else "no saved model convcheck knows"
    hint = {"torch-pickle": "; save the module with torch.jit.save(torch.jit.trace(model, x)) "
                            "or torch.export.save",
            "torchscript": "; declare it under pytorch", "torch-export": "; declare it under "
                                                                          "pytorch",
            "keras": "; declare it under keras", "h5": "; declare it under keras"}
    return f"{path.name} is {found}, not {want} ({what})" + hint.get(kind, "")
