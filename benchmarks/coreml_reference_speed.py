"""How fast the MIL reference interpreter runs a converted model, beside onnxruntime on the same
model's ONNX conversion and the original: one pass over the test set each, after one warm-up
batch, on this machine's threads.

    .venv/bin/python benchmarks/coreml_reference_speed.py [model ...]   (default: resnet18)
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from convcheck.pipeline.workbench import Workbench
from convcheck.runtimes import predict_all
from convcheck.settings import load_profiles, load_targets, project


def _seconds(predictor, x) -> float:
    predictor.predict(x[:8])  # warm-up (imports, first allocations)
    t0 = time.perf_counter()
    predict_all(predictor, x)
    return time.perf_counter() - t0


def main(models: list[str]) -> None:
    warnings.filterwarnings("ignore")
    root = Path(__file__).resolve().parent.parent
    project.load_models(project.discover(root))
    bench = Workbench(profile=load_profiles()["smoke"], data_dir=None,
                      cache_dir=root / ".cache", targets=load_targets(), log=lambda _: None)
    print("| model | framework | samples | original s | onnxruntime s | coreml-reference fp32 s "
          "| coreml-reference fp16 s |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        for fw in ("pytorch", "keras"):
            o = bench.original(model, fw, 0)
            x, _ = bench.test_set(o.spec, fw)
            row = [_seconds(o.predictor, x)]
            for target in ("onnx", "coreml-mlprogram-fp32", "coreml-mlprogram-fp16"):
                row.append(_seconds(bench.converted(model, fw, target, 0).predictor, x))
            print(f"| {model} | {fw} | {len(x)} | " + " | ".join(f"{s:.2f}" for s in row) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["resnet18"])
