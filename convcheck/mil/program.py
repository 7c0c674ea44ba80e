"""Reading a saved ML program back as coremltools' MIL Program (its milproto loader: the same code
coremltools uses to reload a model), on any OS."""
from __future__ import annotations

from pathlib import Path


class ProgramError(Exception):
    """A file that holds no ML program the interpreter can read."""


def load_program(path: Path):
    """The MIL Program of an .mlpackage (an ML program; a neuralnetwork .mlmodel has none)."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    path = Path(path)
    spec = ct.utils.load_spec(str(path))
    kind = spec.WhichOneof("Type")
    if kind != "mlProgram":
        raise ProgramError(f"{path}: a Core ML {kind!r} model, not an ML program: the MIL "
                           "interpreter runs ML programs only")
    weights = path / "Data" / "com.apple.CoreML" / "weights"
    return load(spec, specification_version=spec.specificationVersion,
                file_weights_dir=str(weights))
