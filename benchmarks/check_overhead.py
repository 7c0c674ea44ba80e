"""What the equivalence checks cost beyond the inference they need.

For each selected case: the median time of the inference the checks consume (original and
converted model over the whole test set) against the median time of the checks themselves
(output_equivalence, outputs_finite, label_agreement, accuracy_preserved) on those outputs.

    .venv/bin/python benchmarks/check_overhead.py --models lenet5,resnet18 --target onnx
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convcheck import checks  # noqa: E402
from convcheck.pipeline.workbench import Workbench  # noqa: E402
from convcheck.runtimes import predict_all  # noqa: E402
from convcheck.settings import get_profile, load_targets, load_tolerances  # noqa: E402
from models import FRAMEWORKS  # noqa: E402


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--models", default="lenet5,resnet18,lstm")
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    args = ap.parse_args()
    profile = get_profile(args.profile)
    bench = Workbench(profile, None, args.cache_dir.resolve(), targets=load_targets())
    tolerances = load_tolerances()
    print("| case | inference s | checks s | overhead |\n|---|---|---|---|")
    for model in args.models.split(","):
        for fw in FRAMEWORKS:
            if fw not in bench.targets[args.target].options:
                continue
            conv = bench.converted(model, fw, args.target, profile.seeds[0])
            x, labels = bench.test_set(conv.original.spec, fw)
            ref = predict_all(conv.original.predictor, x)
            got = predict_all(conv.predictor, x)
            tol = lambda key, c=conv.case: tolerances.lookup(key, **c.tolerance_case(profile.name))  # noqa: E731

            def inference():
                predict_all(conv.original.predictor, x)
                predict_all(conv.predictor, x)

            def run_checks():
                checks.outputs_finite(conv.id, got)
                checks.output_equivalence(conv.id, ref, got, tol)
                checks.label_agreement(conv.id, ref, got, tol)
                checks.accuracy_preserved(conv.id, ref, got, labels, tol)

            t_inf = median_time(inference, args.repeat)
            t_chk = median_time(run_checks, args.repeat)
            print(f"| {conv.id} | {t_inf:.4f} | {t_chk:.5f} | {100 * t_chk / t_inf:.2f} % |",
                  flush=True)


if __name__ == "__main__":
    main()
