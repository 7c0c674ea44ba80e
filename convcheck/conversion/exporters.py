"""The built-in converters (convcheck.declarations.registry.EXPORTERS): each writes one artifact from a saved
original, in the converter's child process (convcheck.conversion.runner). Signature of every exporter:
``fn(spec, framework, source_path, options, destination)``.
"""
from __future__ import annotations

from pathlib import Path

from convcheck.conversion.artifacts import COREML_MAX_BATCH, INPUT_NAME, OUTPUT_NAME

UNROLL_ATOL = 1e-5  # the unrolled Keras RNN must compute what the saved one computes


def _example(spec, framework: str, batch: int = 2):
    """A batch the declared input allows, in the framework's layout (tracing needs one)."""
    import numpy as np

    shape = (batch, *spec.framework_input_shape(framework))
    if spec.input_dtype.startswith("int"):
        return np.zeros(shape, dtype=spec.input_dtype)
    lo, hi = spec.input.range or (0.0, 1.0)
    return np.random.default_rng(0).uniform(lo, hi, shape).astype(spec.input_dtype)


def load_original_model(spec, framework: str, source: Path):
    """The framework's model object of the original saved at `source`."""
    from convcheck.runtimes import load_original

    return load_original(spec, framework, source).model


def why_not(exporter: str, source) -> str | None:
    """Why a built-in exporter cannot take a declared source (a spec.Source), known before
    converting; None where it can. Worded to follow the exporter's name."""
    if exporter == "dynamo" and source.kind == "file" and Path(source.ref).suffix != ".pt2":
        return (f"(torch.export) cannot take a TorchScript module, and {source.ref} is a "
                f"TorchScript file")
    return None


def torch_to_onnx(spec, framework: str, source: Path, options: dict, path: Path) -> None:
    import torch

    model = load_original_model(spec, "pytorch", source)
    example = torch.from_numpy(_example(spec, "pytorch"))
    dynamo = options["exporter"] == "dynamo"
    if dynamo and isinstance(model, torch.jit.ScriptModule):  # e.g. from a load callable
        raise RuntimeError(
            f"{spec.name}: the dynamo exporter (torch.export) cannot take a TorchScript module "
            f"({type(model).__name__}); convert it with the torchscript exporter (target "
            f"onnx-legacy), or give the original as an nn.Module")
    torch.onnx.export(
        model, (example,), str(path), dynamo=dynamo, opset_version=options.get("opset"),
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        **({"external_data": False} if dynamo else {}),
    )


def keras_to_onnx(spec, framework: str, source: Path, options: dict, path: Path) -> None:
    import tensorflow as tf
    import tf2onnx

    model = load_original_model(spec, "keras", source)
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
    dtype = np.int32 if spec.input_dtype.startswith("int") else np.float32  # CoreML has no int64
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


def torch_to_coreml(spec, framework: str, source: Path, options: dict, path: Path) -> None:
    import torch

    model = load_original_model(spec, "pytorch", source)
    example = torch.from_numpy(_example(spec, "pytorch"))
    _coreml_save(torch.jit.trace(model, example), spec, "pytorch", options, path, "pytorch",
                 OUTPUT_NAME)


def _unrolled_keras_rnn(spec, saved):
    """The saved model rebuilt with every recurrent layer unroll=True and its weights:
    coremltools' TF frontend fails on Keras 3's recurrent loop but converts the unrolled steps."""
    import keras
    import numpy as np

    def unrolled(layer):
        if isinstance(layer, keras.layers.RNN):
            return type(layer).from_config(layer.get_config() | {"unroll": True})
        return layer.__class__.from_config(layer.get_config())

    model = keras.models.clone_model(saved, clone_function=unrolled)
    model.set_weights(saved.get_weights())
    x = _example(spec, "keras", 16)
    if spec.input.vocab_size:
        x = np.random.default_rng(0).integers(0, spec.input.vocab_size, x.shape).astype(x.dtype)
    diff = float(np.abs(np.asarray(model(x, training=False))
                        - np.asarray(saved(x, training=False))).max())
    if not diff < UNROLL_ATOL:
        raise RuntimeError(f"{spec.name}: the unrolled Keras model differs from the saved one: "
                           f"max abs diff {diff:.3g} >= {UNROLL_ATOL:g} on 16 inputs")
    return model


def keras_to_coreml(spec, framework: str, source: Path, options: dict, path: Path) -> None:
    import keras
    import tensorflow as tf

    model = load_original_model(spec, "keras", source)
    if any(isinstance(layer, keras.layers.RNN) for layer in model.layers):
        model = _unrolled_keras_rnn(spec, model)
    # coremltools cannot take a Keras 3 model object; the concrete function of a traced one
    # converts. Token ids come in as int32 and are cast back for the int64 input layer.
    dtype = tf.int32 if spec.input_dtype.startswith("int") else tf.float32
    fn = tf.function(lambda x: model(tf.cast(x, spec.input_dtype), training=False),
                     input_signature=[tf.TensorSpec((None, *spec.input_shape), dtype,
                                                    name=INPUT_NAME)])
    concrete = fn.get_concrete_function()
    _coreml_save([concrete], spec, "keras", options, path, "tensorflow",
                 concrete.outputs[0].name.split(":")[0])
