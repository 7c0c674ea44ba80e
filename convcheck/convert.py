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
# A CoreML ML program is saved as a package (a directory), a neural network as one file.
COREML_FILE = {"mlprogram": "model.mlpackage", "neuralnetwork": "model.mlmodel"}
# CoreML inputs take a batch of 1..COREML_MAX_BATCH: an mlprogram refuses an unbounded range.
COREML_MAX_BATCH = 1024
UNROLL_ATOL = 1e-5  # the unrolled Keras RNN must compute what the saved one computes
ERROR_FILE = "converter-error.txt"
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"


class ConversionError(Exception):
    pass


def artifact_file(target: Target) -> str:
    if target.format == "coreml":  # config.py keeps convert_to the same for every framework
        return COREML_FILE[next(iter(target.options.values()))["convert_to"]]
    return {"onnx": ONNX_FILE}[target.format]


def coreml_expected(spec, framework: str, options: dict) -> dict:
    """What a CoreML artifact converted with `options` must declare (see describe_coreml)."""
    mlprogram = options["convert_to"] == "mlprogram"
    # CoreML has no int64: token ids are int32 in an ML program; a neural network declares
    # every input float32 (coremltools casts it).
    dtype = "INT32" if spec.input_dtype == "int64" and mlprogram else "FLOAT32"
    dims = [[d, d] for d in spec.framework_input_shape(framework)]
    return {
        "model_type": "mlProgram" if mlprogram else "neuralNetwork",
        "inputs": {INPUT_NAME: {"type": "multiArrayType", "dtype": dtype,
                                "shape": [[1, COREML_MAX_BATCH], *dims]}},
        # a multiarray of probabilities, not a classifier's dictionary
        "outputs": {OUTPUT_NAME: {"type": "multiArrayType", "dtype": "FLOAT32",
                                  "shape": [[1, COREML_MAX_BATCH], [spec.num_classes] * 2]}},
        "weights": "float16" if options["precision"] == "fp16" else "float32",
    }


def describe_coreml(path: Path) -> dict:
    """A saved CoreML model as its spec declares it, read without the runtime (any OS):
    model type, inputs/outputs (type, dtype, [min, max] per dimension), floating-point weight
    elements by storage type, and size on disk."""
    import coremltools as ct
    from coremltools.proto import FeatureTypes_pb2

    spec = ct.utils.load_spec(str(path))
    dtype_name = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name

    def features(described):
        out = {}
        for f in described:
            a = f.type.multiArrayType
            ranges = [[r.lowerBound, r.upperBound] for r in a.shapeRange.sizeRanges]
            out[f.name] = {"type": f.type.WhichOneof("Type"), "dtype": dtype_name(a.dataType),
                           "shape": ranges or [[d, d] for d in a.shape]}
        return out

    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return {"model_type": spec.WhichOneof("Type"), "inputs": features(spec.description.input),
            "outputs": features(spec.description.output), "weights": _weight_elements(spec),
            "size_bytes": sum(p.stat().st_size for p in files)}


def _weight_elements(spec) -> dict[str, int]:
    """Floating-point weight elements of a CoreML spec, by the type they are stored in."""
    import math

    from coremltools.proto import MIL_pb2

    counts = {"float16": 0, "float32": 0}

    def walk_program(block):  # an ML program's weights are its const ops
        for op in block.operations:
            if op.type == "const":
                t = op.attributes["val"].type.tensorType
                kind = MIL_pb2.DataType.Name(t.dataType).lower()
                if kind in counts:
                    counts[kind] += math.prod(d.constant.size for d in t.dimensions)
            for b in op.blocks:
                walk_program(b)

    def walk_network(msg):  # a neural network's weights are its layers' WeightParams
        for field, value in msg.ListFields():
            if field.type != field.TYPE_MESSAGE or field.message_type.GetOptions().map_entry:
                continue
            for m in value if field.is_repeated else [value]:
                if m.DESCRIPTOR.name == "WeightParams":
                    counts["float32"] += len(m.floatValue)
                    counts["float16"] += len(m.float16Value) // 2  # bytes, 2 per value
                else:
                    walk_network(m)

    if spec.WhichOneof("Type") == "mlProgram":
        for function in spec.mlProgram.functions.values():
            for block in function.block_specializations.values():
                walk_program(block)
    else:
        walk_network(spec.neuralNetwork)
    return counts


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


def _coreml_save(model, spec, framework: str, options: dict, path: Path, source: str,
                 output: str) -> None:
    """coremltools.convert with the target's options; input "input" with a ranged batch, the
    source graph's output `output` as float32 "probabilities"."""
    import coremltools as ct
    import numpy as np

    batch = ct.RangeDim(1, COREML_MAX_BATCH, default=1)
    shape = ct.Shape((batch, *spec.framework_input_shape(framework)))
    dtype = np.int32 if spec.input_dtype == "int64" else np.float32  # CoreML has no int64
    mlprogram = options["convert_to"] == "mlprogram"
    precision = {"fp32": ct.precision.FLOAT32, "fp16": ct.precision.FLOAT16}[options["precision"]]
    mlmodel = ct.convert(
        model, source=source, inputs=[ct.TensorType(name=INPUT_NAME, shape=shape, dtype=dtype)],
        # float32 out at every precision: from macOS13 on, an fp16 program would return fp16
        outputs=[ct.TensorType(name=output, dtype=np.float32)],
        convert_to=options["convert_to"], compute_precision=precision if mlprogram else None,
        minimum_deployment_target=getattr(ct.target, options["deployment_target"]))
    if output != OUTPUT_NAME:  # a TF graph's own name ("Identity"): give it the suite's
        model_spec = mlmodel.get_spec()
        ct.utils.rename_feature(model_spec, output, OUTPUT_NAME)
        mlmodel = ct.models.MLModel(model_spec, weights_dir=mlmodel.weights_dir,
                                    skip_model_load=True)
    mlmodel.save(str(path))


def _torch_to_coreml(spec, source: Path, options: dict, path: Path) -> None:
    import torch

    from convcheck.predictors import TorchPredictor

    model = TorchPredictor.load(spec, source).model
    shape = (2, *spec.framework_input_shape("pytorch"))
    example = (torch.zeros(shape, dtype=torch.int64) if spec.input_dtype == "int64"
               else torch.rand(shape))
    _coreml_save(torch.jit.trace(model, example), spec, "pytorch", options, path, "pytorch",
                 OUTPUT_NAME)


def _unrolled_keras_rnn(spec, saved):
    """The saved RNN rebuilt with unroll=True and its weights (same layer names): coremltools'
    TF frontend fails on Keras 3's recurrent loop but converts the unrolled steps."""
    import numpy as np

    from models import VOCAB_SIZE
    from models.rnn import build_keras

    model = build_keras(spec, unroll=True)
    for layer in model.layers:
        layer.set_weights(saved.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).integers(0, VOCAB_SIZE, (16, *spec.input_shape))
    diff = float(np.abs(np.asarray(model(x, training=False))
                        - np.asarray(saved(x, training=False))).max())
    if not diff < UNROLL_ATOL:
        raise RuntimeError(f"{spec.name}: the unrolled Keras model differs from the saved one: "
                           f"max abs diff {diff:.3g} >= {UNROLL_ATOL:g} on 16 random sequences")
    return model


def _keras_to_coreml(spec, source: Path, options: dict, path: Path) -> None:
    import tensorflow as tf

    from convcheck.predictors import KerasPredictor

    model = KerasPredictor.load(spec, source).model
    if spec.kind == "rnn":
        model = _unrolled_keras_rnn(spec, model)
    # coremltools cannot take a Keras 3 model object; the concrete function of a traced one
    # converts. Token ids come in as int32 and are cast back for the int64 input layer.
    dtype = tf.int32 if spec.input_dtype == "int64" else tf.float32
    fn = tf.function(lambda x: model(tf.cast(x, spec.input_dtype), training=False),
                     input_signature=[tf.TensorSpec((None, *spec.input_shape), dtype,
                                                    name=INPUT_NAME)])
    concrete = fn.get_concrete_function()
    _coreml_save([concrete], spec, "keras", options, path, "tensorflow",
                 concrete.outputs[0].name.split(":")[0])


def _child(job: dict) -> None:
    from convcheck import frameworks  # noqa: F401  (environment and threads, as in the parent)
    from models import get_spec

    spec, out_dir = get_spec(job["model"]), Path(job["out_dir"])
    framework, options, source = job["framework"], job["options"], Path(job["source"])
    if job["format"] == "coreml":
        from convcheck import checks

        path = out_dir / COREML_FILE[options["convert_to"]]
        convert_fn = {"pytorch": _torch_to_coreml, "keras": _keras_to_coreml}[framework]
        convert_fn(spec, source, options, path)
        # Reload the saved spec: what a runtime will see must be what was asked for.
        verdict = checks.artifact_declares(f"{spec.name}-{framework}", describe_coreml(path),
                                           coreml_expected(spec, framework, options))
        if not verdict.passed:
            raise RuntimeError(f"saved CoreML model is not as declared:\n{verdict.message()}")
        return
    import onnx

    path = out_dir / ONNX_FILE
    convert_fn = {"pytorch": _torch_to_onnx, "keras": _keras_to_onnx}[framework]
    convert_fn(spec, source, options, path)
    onnx.checker.check_model(str(path), full_check=True)


if __name__ == "__main__":
    job = json.loads(sys.argv[1])
    try:
        _child(job)
    except BaseException as e:  # the parent shows this, the converter's own message
        tb = traceback.format_exception(e)
        Path(job["out_dir"], ERROR_FILE).write_text("".join(tb[-6:]))
        sys.exit(3)
