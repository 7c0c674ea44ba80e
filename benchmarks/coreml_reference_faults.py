"""The CoreML fault battery on Linux, as figures: each fault written into a saved .mlpackage
(convcheck.testing.faults), run on the MIL reference interpreter against the original on the
test set: abs_max, label disagreement, and the interpreter's time per test set.

    .venv/bin/python benchmarks/coreml_reference_faults.py [model ...]   (default: lenet5)
"""
from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from convcheck.pipeline.workbench import Workbench
from convcheck.runtimes.coreml import ReferencePredictor
from convcheck.settings import load_profiles, load_targets, project
from convcheck.testing import faults

FAULTS = {"good": None, "perturbed bias": faults.coreml_perturb_weight,
          "swapped classes": faults.coreml_swap_classes,
          "fp16 weights": faults.coreml_fp16_weights}


def main(models: list[str]) -> None:
    warnings.filterwarnings("ignore")
    root = Path(__file__).resolve().parent.parent
    project.load_models(project.discover(root))
    bench = Workbench(profile=load_profiles()["smoke"], data_dir=None,
                      cache_dir=root / ".cache", targets=load_targets(), log=lambda _: None)
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
    main(sys.argv[1:] or ["lenet5"])
