"""Converting a trained original to a target format, in a child process.

The converter runs in its own process so that one that crashes (even a segfault) or hangs past
the target's time limit fails its case with the converter's own message, and the rest of the
session goes on. ``python -m convcheck.convert JOB_JSON`` is that child.
"""
from __future__ import annotations

import json
import subprocess
import sys
import traceback
from pathlib import Path

from convcheck.config import Target

ONNX_FILE = "model.onnx"
ERROR_FILE = "converter-error.txt"
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"


class ConversionError(Exception):
    pass


def artifact_file(target: Target) -> str:
    return {"onnx": ONNX_FILE}[target.format]


def convert(spec, framework: str, source: Path, target: Target, out_dir: Path) -> Path:
    """Convert the model saved at `source` into `out_dir`; returns the artifact's path."""
    job = {"model": spec.name, "framework": framework, "source": str(source),
           "format": target.format, "options": target.options[framework], "out_dir": str(out_dir)}
    cmd = [sys.executable, "-m", "convcheck.convert", json.dumps(job)]
    what = f"{target.name} conversion of {spec.name}-{framework} ({target.options[framework]})"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=target.timeout_s)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"{what} did not finish within {target.timeout_s:.0f} s "
                              f"(timeout_s in targets.toml); stopped") from None
    error_file = out_dir / ERROR_FILE
    if proc.returncode != 0:
        message = (error_file.read_text() if error_file.exists()
                   else "\n".join(proc.stderr.strip().splitlines()[-15:]))
        raise ConversionError(f"{what} failed (exit {proc.returncode}):\n{message}")
    return out_dir / artifact_file(target)


# --------------------------------------------------------------------------- the child


def _torch_to_onnx(spec, source: Path, options: dict, path: Path) -> None:
    import torch

    from convcheck.predictors import TorchPredictor

    model = TorchPredictor.load(spec, source).model
    batch = 2
    shape = (batch, *spec.framework_input_shape("pytorch"))
    example = (torch.zeros(shape, dtype=torch.int64) if spec.input_dtype == "int64"
               else torch.rand(shape))
    dynamo = options["exporter"] == "dynamo"
    torch.onnx.export(
        model, (example,), str(path), dynamo=dynamo, opset_version=options.get("opset"),
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        **({"external_data": False} if dynamo else {}),
    )


def _keras_to_onnx(spec, source: Path, options: dict, path: Path) -> None:
    import tensorflow as tf
    import tf2onnx

    from convcheck.predictors import KerasPredictor

    model = KerasPredictor.load(spec, source).model
    # Keras 3 models lack what tf2onnx.from_keras expects; a traced inference function works.
    signature = (tf.TensorSpec((None, *spec.input_shape), spec.input_dtype, name=INPUT_NAME),)
    fn = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(fn, input_signature=signature, opset=options.get("opset"),
                                  output_path=str(path))


def _child(job: dict) -> None:
    import onnx

    from convcheck import frameworks  # noqa: F401  (environment and threads, as in the parent)
    from models import get_spec

    spec, out_dir = get_spec(job["model"]), Path(job["out_dir"])
    path = out_dir / ONNX_FILE
    convert_fn = {"pytorch": _torch_to_onnx, "keras": _keras_to_onnx}[job["framework"]]
    convert_fn(spec, Path(job["source"]), job["options"], path)
    onnx.checker.check_model(str(path), full_check=True)


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    try:
        _child(job)
    except BaseException as e:  # the parent shows this, the converter's own message
        tb = traceback.format_exception(e)
        Path(job["out_dir"], ERROR_FILE).write_text("".join(tb[-6:]))
        sys.exit(3)
