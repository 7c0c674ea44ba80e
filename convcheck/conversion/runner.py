"""Converting a trained original to a target format, in a child process.

The converter runs in its own process so that one that crashes (even a segfault) or hangs past
the target's time limit fails its case with the converter's own message, and the rest of the
session goes on.

Each conversion is a fresh child forked from a server that has imported the frameworks once
(multiprocessing's forkserver, its preload): a child starts in milliseconds instead of
importing torch, TensorFlow, tf2onnx and coremltools again (about 6 s for a Keras conversion and
10 s for a CoreML one on 2 cores, each time), yet shares no state with another conversion,
since the server itself never converts anything. The child's stdout and stderr go to a log in
its output directory, read back when it fails.
"""
from __future__ import annotations

import contextvars
import json
import multiprocessing
import os
import sys
import threading
import traceback
from pathlib import Path

from convcheck.children import enter_project, hidden_main, parent_context
from convcheck.conversion.artifacts import (  # noqa: F401
    COREML_FILE,
    COREML_MAX_BATCH,
    INPUT_NAME,
    ONNX_FILE,
    OUTPUT_NAME,
    artifact_file_for,
)
from convcheck.settings import Target

ERROR_FILE = "converter-error.txt"
LOG_FILE = "converter.log"
# What the fork server imports once: the converters' frameworks (by default all of them; a
# session that knows what it will convert asks for those: see preload). Not convcheck's own
# modules, which read settings (threads, the project) that each job sets for itself.
FRAMEWORK_MODULES = {"pytorch": ["torch"], "keras": ["tensorflow", "keras"]}
FORMAT_MODULES = {("onnx", "pytorch"): ["onnx", "onnxscript"],
                  ("onnx", "keras"): ["onnx", "tf2onnx"], ("coreml", None): ["coremltools"]}
PRELOAD = ["torch", "onnx", "onnxscript", "tensorflow", "keras", "tf2onnx", "coremltools"]
_preload = list(PRELOAD)
# The environment a child takes from the process that asked for the conversion (the server's
# was frozen when it started): the frameworks' settings and convcheck's.
PASSED_ENV = ("CONVCHECK_", "KERAS_", "TF_", "CUBLAS_", "OMP_", "PYTHONHASHSEED")
_context = None
# Conversions may run from several threads at once (convcheck.pipeline.ahead): starting the fork
# server and the children is one at a time, and the children alive are known, to be stopped.
_starting = threading.Lock()
_live: dict = {}  # child -> its owner (see owner)
# Who starts a child: a workbench sets itself here in its background jobs, so that closing it
# stops its own children, not those of another workbench in the same process (a test's own).
owner: contextvars.ContextVar = contextvars.ContextVar("convcheck_child_owner", default=None)


def preload(conversions) -> list[str]:
    """Before the first conversion: have the fork server import only what `conversions`
    ((format, framework) pairs) need. coremltools alone takes about 10 s to import (it imports
    torch and TensorFlow): a session converting one PyTorch model to ONNX should not pay it.
    A format convcheck does not know (a team's exporter) keeps the framework's modules; after
    the server has started this changes nothing. Returns the modules."""
    global _preload
    mods: list[str] = []
    for fmt, fw in conversions:
        for m in (FRAMEWORK_MODULES.get(fw, []) + FORMAT_MODULES.get((fmt, fw), [])
                  + FORMAT_MODULES.get((fmt, None), [])):
            if m not in mods:
                mods.append(m)
    if _context is None:
        _preload = mods
    return mods


def context():
    """The children's multiprocessing context: the fork server, with its preload."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_preload)
    return _context


def child_context() -> dict:
    """What a child takes from the process that starts it: its sys.path, its project, and the
    frameworks' and convcheck's environment (the server's was frozen when it started)."""
    return {**parent_context(),
            "env": {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)}}


def start_child(fn, args: tuple, name: str):
    """Start fn(*args) in a child forked from the server; it is known to stop_all() until
    forget(child). (A training ahead of the tests starts its child here too.)"""
    with _starting:
        child = context().Process(target=fn, args=args, name=name)
        with hidden_main():
            child.start()
        _live[child] = owner.get()
    return child


def forget(child) -> None:
    """The child has ended (or is no longer this module's to stop)."""
    _live.pop(child, None)


class ConversionError(Exception):
    pass


def artifact_file(target: Target) -> str:
    """The artifact's file name (config.py keeps convert_to the same for every framework)."""
    return artifact_file_for(target.format, next(iter(target.options.values())))



def coreml_expected(spec, framework: str, options: dict) -> dict:
    """What a CoreML artifact converted with `options` must declare (see describe_coreml)."""
    mlprogram = options["convert_to"] == "mlprogram"
    # CoreML has no int64: token ids are int32 in an ML program; a neural network declares
    # every input float32 (coremltools casts it).
    dtype = "INT32" if spec.input_dtype.startswith("int") and mlprogram else "FLOAT32"
    dims = [[d, d] for d in spec.framework_input_shape(framework)]
    return {
        "model_type": "mlProgram" if mlprogram else "neuralNetwork",
        "inputs": {INPUT_NAME: {"type": "multiArrayType", "dtype": dtype,
                                "shape": [[1, COREML_MAX_BATCH], *dims]}},
        # a multiarray of probabilities, not a classifier's dictionary
        "outputs": {OUTPUT_NAME: {"type": "multiArrayType", "dtype": "FLOAT32",
                                  "shape": [[1, COREML_MAX_BATCH], [spec.task.width] * 2]}},
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
    job = {"model": spec.name, "spec": spec.declaration, "framework": framework,
           "source": str(source), "format": target.format, "options": target.options[framework],
           "out_dir": str(out_dir), **child_context()}
    what = f"{target.name} conversion of {spec.name}-{framework} ({target.options[framework]})"
    child = start_child(_run, (job,), f"convert {what}")
    try:
        child.join(target.timeout_s)
        if child.is_alive():
            child.kill()
            child.join()
            raise ConversionError(f"{what} did not finish within {target.timeout_s:.0f} s "
                                  f"(timeout_s in targets.toml); stopped")
    finally:
        forget(child)
    error_file, log_file = out_dir / ERROR_FILE, out_dir / LOG_FILE
    if child.exitcode != 0:
        # killed or crashed: no Python error, the last it printed
        message = error_file.read_text() if error_file.exists() else last_words(log_file)
        raise ConversionError(f"{what} failed ({how_it_ended(child)}):\n{message}")
    log_file.unlink(missing_ok=True)  # the artifact's directory holds the artifact
    return out_dir / artifact_file(target)


def how_it_ended(child) -> str:
    """A child's end as a failure message says it: its exit status or the signal that killed
    it."""
    code = child.exitcode
    return f"killed by signal {-code}" if code < 0 else f"exit {code}"


def last_words(log_file: Path, lines: int = 15) -> str:
    """The last lines a child wrote to its log: what a crash that raised no Python error (a
    signal, an abort in native code) leaves to show."""
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:]) or "(it printed nothing)"


def live(of=None) -> list:
    """The children still known (started and not forgotten): all, or those `of` an owner."""
    return [c for c, o in list(_live.items()) if of is None or o is of]


def stop_all(of=None) -> int:
    """Kill the children still running (a session that ends or is interrupted with
    conversions or a training in the background): all, or those `of` an owner (see owner);
    each one's convert() then raises. Returns how many."""
    stopped = 0
    for child in live(of):
        if child.is_alive():
            child.kill()
            stopped += 1
    return stopped


def _write_error(out_dir: Path, e: BaseException) -> None:
    """The converter's own error, its traceback's last lines, for the parent to show."""
    (out_dir / ERROR_FILE).write_text("".join(traceback.format_exception(e)[-6:]))


def _run(job: dict) -> None:
    """The forked child: its output to the log, the converter's own error to ERROR_FILE."""
    out_dir = Path(job["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    log = os.open(out_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.environ.update(job.get("env", {}))
    try:
        _child(job)
    except BaseException as e:  # the parent shows this, the converter's own message
        _write_error(out_dir, e)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)
    sys.stdout.flush()
    sys.stderr.flush()


# --------------------------------------------------------------------------- the child


def _child(job: dict) -> None:
    from convcheck import frameworks  # noqa: F401  (environment and threads, as in the parent)
    from convcheck.declarations.registry import EXPORTERS
    from convcheck.declarations.spec import from_declaration, import_callable

    enter_project(job)
    spec, out_dir = from_declaration(job["model"], job["spec"]), Path(job["out_dir"])
    framework, options, source = job["framework"], job["options"], Path(job["source"])
    path = out_dir / artifact_file_for(job["format"], options)
    if "converter" in options:  # a team's own converter: fn(original, destination, options)
        from convcheck.conversion.exporters import load_original_model

        fn = import_callable(options["converter"])
        fn(load_original_model(spec, framework, source), path, dict(options))
        if not path.exists():
            raise RuntimeError(f"converter {options['converter']} wrote nothing at {path}")
    else:
        EXPORTERS.get((job["format"], framework, options["exporter"]))(
            spec, framework, source, options, path)
    if job["format"] == "coreml" and "precision" in options:
        from convcheck import checks

        # Reload the saved spec: what a runtime will see must be what was asked for.
        verdict = checks.artifact_declares(f"{spec.name}-{framework}", describe_coreml(path),
                                           coreml_expected(spec, framework, options))
        if not verdict.passed:
            raise RuntimeError(f"saved CoreML model is not as declared:\n{verdict.message()}")
    elif job["format"] == "onnx":
        import onnx

        onnx.checker.check_model(str(path), full_check=True)


if __name__ == "__main__":  # a job by hand: python -m convcheck.conversion.runner JOB_JSON
    job = json.loads(sys.argv[1])
    try:
        _child(job)
    except BaseException as e:
        _write_error(Path(job["out_dir"]), e)
        sys.exit(3)
