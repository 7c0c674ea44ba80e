"""The MIL reference interpreter (runtime coreml-reference) measured on the smoke zoo:

    .venv/bin/python benchmarks/coreml_reference.py speed [model ...]    (default: resnet18)
    .venv/bin/python benchmarks/coreml_reference.py faults [model ...]   (default: lenet5)

speed: one pass over the test set after a warm-up batch, beside the original and onnxruntime
on the same model's ONNX conversion, on this machine's threads: the ML programs on the MIL
interpreter, the neuralnetwork model on the layer interpreter. faults: each CoreML fault
written into a saved .mlpackage (convcheck.testing.faults) run on the interpreter against the
original on the test set: abs_max, label disagreement, the interpreter's time.
"""
from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from convcheck.pipeline.workbench import Workbench
from convcheck.runtimes import predict_all
from convcheck.runtimes.coreml import ReferencePredictor
from convcheck.settings import load_profiles, load_targets, project
from convcheck.testing import faults

FAULTS = {"good": None, "perturbed bias": faults.coreml_perturb_weight,
          "swapped classes": faults.coreml_swap_classes,
          "fp16 weights": faults.coreml_fp16_weights}


def _bench() -> Workbench:
    warnings.filterwarnings("ignore")
    root = Path(__file__).resolve().parent.parent
    project.load_models(project.discover(root))
    return Workbench(profile=load_profiles()["smoke"], data_dir=None,
                     cache_dir=root / ".cache", targets=load_targets(), log=lambda _: None)


def _seconds(predictor, x) -> float:
    predictor.predict(x[:8])  # warm-up (imports, first allocations)
    t0 = time.perf_counter()
    predict_all(predictor, x)
    return time.perf_counter() - t0


def speed(models: list[str]) -> None:
    bench = _bench()
    print("| model | framework | samples | original s | onnxruntime s | coreml-reference fp32 s "
          "| coreml-reference fp16 s | coreml-reference neuralnetwork s |")
    print("|---|---|---|---|---|---|---|---|")
    for model in models:
        for fw in ("pytorch", "keras"):
            o = bench.original(model, fw, 0)
            x, _ = bench.test_set(o.spec, fw)
            row = [_seconds(o.predictor, x)]
            for target in ("onnx", "coreml-mlprogram-fp32", "coreml-mlprogram-fp16",
                           "coreml-neuralnetwork"):
                row.append(_seconds(bench.converted(model, fw, target, 0).predictor, x))
            print(f"| {model} | {fw} | {len(x)} | " + " | ".join(f"{s:.2f}" for s in row) + " |")


def fault_figures(models: list[str]) -> None:
    bench = _bench()
    print("| model | framework | fault | abs max | label disagreement | seconds per test set |")
    print("|---|---|---|---|---|---|")
    for model in models:
        for fw in ("pytorch", "keras"):
            conv = bench.converted(model, fw, "coreml-mlprogram-fp32", 0)
            x, _ = bench.test_set(conv.original.spec, fw)
            ref = bench.outputs(conv.original)
            for name, make in FAULTS.items():
                with tempfile.TemporaryDirectory() as tmp:
                    pkg = conv.path if make is None else make(conv.path, Path(tmp) / "f.mlpackage")
                    t0 = time.perf_counter()
                    got = ReferencePredictor(pkg).predict(x)
                    seconds = time.perf_counter() - t0
                d = np.abs(got.astype(np.float64) - ref).max()
                flips = np.mean(got.argmax(1) != ref.argmax(1))
                print(f"| {model} | {fw} | {name} | {d:.3g} | {flips:.3%} | {seconds:.2f} |")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what not in ("speed", "faults"):
        sys.exit("usage: benchmarks/coreml_reference.py speed|faults [model ...]")
    if what == "speed":
        speed(sys.argv[2:] or ["resnet18"])
    else:
        fault_figures(sys.argv[2:] or ["lenet5"])
