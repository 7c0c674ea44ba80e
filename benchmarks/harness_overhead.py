"""What the suite's timing harness adds: pytest-benchmark's median for one ONNX model (the
suite's own test_inference_batch_converted, run in this process through pytest.main) against a
bare `InferenceSession.run` loop over the same batch with the same session options.

The two alternate (bare, suite, bare, ..., suite, bare) so that the machine's load drifts over
both alike: each suite median is set against the mean of the bare medians just before and after
it, and the overhead is the median of those ratios.

    CONVCHECK_THREADS=1 .venv/bin/python benchmarks/harness_overhead.py --rounds 200 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from convcheck import frameworks  # noqa: E402
from convcheck.pipeline.workbench import Workbench  # noqa: E402
from convcheck.settings import get_profile, load_targets  # noqa: E402
from convcheck.suite.performance import BATCH  # noqa: E402


def bare_median(path: Path, x, rounds: int) -> float:
    """Median seconds of session.run on x: a fresh session with OrtPredictor.load's options."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = frameworks.threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    session.run(None, feed)  # warm-up, as the suite does
    return statistics.median(timeit.repeat(lambda: session.run(None, feed), number=1,
                                           repeat=rounds))


def suite_median(case_id: str, args, tmp: Path) -> float:
    """The median pytest-benchmark reports for test_inference_batch_converted[case_id]."""
    out = tmp / "bench.json"
    code = pytest.main([
        str(ROOT / "tests_conformance" / "test_performance.py"), "-q", "-p", "no:cacheprovider",
        "--convcheck-models", args.model, "--convcheck-targets", args.target,
        "--convcheck-profile", args.profile,
        "--convcheck-cache-dir", str(args.cache_dir),
        "--convcheck-reports-dir", str(tmp / "reports"),
        "-k", f"test_inference_batch_converted and {case_id}",
        "--benchmark-min-rounds", str(args.rounds), "--benchmark-json", str(out)])
    if code != 0:
        raise SystemExit(f"pytest exited with {code}")
    (bench,) = json.loads(out.read_text())["benchmarks"]
    return bench["stats"]["median"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--framework", default="pytorch")
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".cache")
    args = ap.parse_args()
    args.cache_dir = args.cache_dir.resolve()
    profile = get_profile(args.profile)
    bench = Workbench(profile, None, args.cache_dir, targets=load_targets(), log=print)
    conv = bench.converted(args.model, args.framework, args.target, profile.seeds[0])
    x, _ = bench.test_set(conv.original.spec, args.framework)
    x = x[:BATCH].copy()  # the suite's fixed batch

    bare, suite = [bare_median(conv.path, x, args.rounds)], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            suite.append(suite_median(conv.id, args, Path(tmp)))
            bare.append(bare_median(conv.path, x, args.rounds))
    ratios = [t / ((bare[i] + bare[i + 1]) / 2) for i, t in enumerate(suite)]
    print(f"\n{conv.id}, batch {BATCH}, {frameworks.threads()} threads, {args.rounds} rounds each")
    print("| block | median ms |\n|---|---|")
    for i, t in enumerate(bare):
        print(f"| bare {i + 1} | {t * 1e3:.4f} |")
    for i, t in enumerate(suite):
        print(f"| suite {i + 1} | {t * 1e3:.4f} |")
    print("\nsuite / neighbouring bare: " + ", ".join(f"{r:.3f}" for r in ratios))
    print(f"overhead (median): {100 * (statistics.median(ratios) - 1):+.2f} %")


if __name__ == "__main__":
    main()
