"""The speed gate, proven both ways on this machine: no false alarm on faithful conversions while
another process keeps a core busy, and a conversion slowed on purpose caught every time.

For each case (default: LeNet-5 and the LSTM, PyTorch -> onnx), the suite's own gate
(convcheck.suite.performance: test_speed_ratio's pairing and checks.speed_ratio, with the zoo's
speed_ratio bound) runs --repeat times on
  - the faithful conversion (a failure there is a false alarm), and
  - the conversion slowed by convcheck.testing.faults.slow_down, its extra work scaled so the slowed
    conversion takes about F x its original's time for each F of --factors (the ratio the gate
    judges against speed_ratio; the measured ratio is shown).
Everything is timed as the gate times it, in its timing processes (convcheck.runtimes.timer) on
its threads (default 1; --threads N), the slowed conversions' sizing included, and as many gates
at once as the suite times (default: two, $CONVCHECK_GATE_WORKERS; --workers N): every run of a
variant is submitted at once, so each gate times beside another, the other core busy with it;
the slowed conversions are sized with a busy loop on the other core, the gate's condition.
--load adds a busy loop in a child process keeping one more core at 100 % (harsher than the
suite's own conditions: three processes on two cores).

    .venv/bin/python benchmarks/speed_gate.py --repeat 5 --factors 1.25 1.5 1.75 2 3
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from convcheck import checks  # noqa: E402
from convcheck.pipeline.workbench import Workbench  # noqa: E402
from convcheck.runtimes.timer import PAIRING, PairTimer, Saved  # noqa: E402
from convcheck.settings import get_profile, load_targets, load_tolerances, project  # noqa: E402
from convcheck.testing import faults  # noqa: E402


def _spin() -> None:
    while True:
        pass


def slowed(timer: PairTimer, path: Path, original: Saved, x, factor: float, tmp: Path
           ) -> tuple[Saved, float]:
    """slow_down with its depth chosen so the slowed conversion takes about `factor` x the
    original's time on the batch, timed in the gate's own conditions (its process, its
    threads): the ratio the gate judges. The extra work is per sample, so the test set scales
    alike. Returns (the slowed conversion, its measured ratio to the original)."""
    def saved(name: str, depth: int) -> Saved:
        out = tmp / name
        faults.slow_down(path, out, width=256, depth=depth)
        return Saved.converted("onnx", out)

    base = timer.ratio(original, Saved.converted("onnx", path), x)
    per_layer = max((timer.ratio(original, saved("probe.onnx", 8), x) - base) / 9, 1e-3)
    depth = max(0, round((factor - base) / per_layer) - 1)  # 9 MatMuls: the first and 8 deep
    slow = saved(f"slow{factor}.onnx", depth)
    return slow, timer.ratio(original, slow, x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--cases", nargs="+", default=["lenet5:pytorch:onnx", "lstm:pytorch:onnx"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--factors", type=float, nargs="+", default=[1.5, 2.0, 3.0],
                    help="slowed conversions' times as multiples of the original's")
    ap.add_argument("--load", action="store_true",
                    help="a busy loop in a child process besides the gates' own")
    ap.add_argument("--workers", type=int, default=None,
                    help="gates timed at once (default: the suite's, $CONVCHECK_GATE_WORKERS "
                         "or one per core, at most 2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="every runtime's threads while timing (default: the gate's, "
                         "$CONVCHECK_GATE_THREADS or 1)")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".cache")
    args = ap.parse_args()
    zoo = project.discover(ROOT)  # the reference project: its models, profiles, tolerances
    project.activate(zoo)
    project.load_models(zoo)
    profile = get_profile(args.profile)
    targets = load_targets()
    tolerances = load_tolerances(targets=tuple(targets))
    bench = Workbench(profile, None, args.cache_dir.resolve(), targets=targets, log=print)
    busy = mp.Process(target=_spin, daemon=True) if args.load else None
    if busy:
        busy.start()
    timer = PairTimer(args.threads, args.workers)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for spec in args.cases:
                model, fw, target = spec.split(":")
                conv = bench.converted(model, fw, target, profile.seeds[0])
                x, _ = bench.test_set(conv.original.spec, fw)
                x = x[:profile.timing_samples()]  # the test-set timing's samples, as the gate
                case = conv.case.tolerance_case(profile.name)
                tol = lambda key, c=case: tolerances.lookup(key, **c)  # noqa: E731
                o = conv.original
                orig = Saved.original(o.spec, fw, o.path)
                variants = [("faithful", Saved.converted("onnx", conv.path), float("nan"))]
                # sized as the gate times: with the other core busy (here a busy loop, in the
                # suite another gate)
                sizing = busy or mp.Process(target=_spin, daemon=True)
                if sizing is not busy:
                    sizing.start()
                try:
                    for f in args.factors:
                        p, measured = slowed(timer, conv.path, orig, x, f, Path(tmp))
                        variants.append((f"slowed {f:g}x", p, measured))
                finally:
                    if sizing is not busy:
                        sizing.terminate()
                # every run of every variant submitted at once: each gate times beside another
                futures = [[timer.submit(orig, saved, x, x) for _ in range(args.repeat)]
                           for _, saved, _ in variants]
                for (name, saved, measured), started in zip(variants, futures):
                    verdicts = [checks.speed_ratio(conv.id, timer.result(f), tol)
                                for f in started]
                    failed = sum(not v.passed for v in verdicts)
                    cells = [f"{v.measured['inference_batch_ratio']:.2f} "
                             f"[{v.measured['inference_batch_ratio_low']:.2f}, "
                             f"{v.measured['inference_batch_ratio_high']:.2f}] / "
                             f"{v.measured['inference_testset_ratio']:.2f} "
                             f"[{v.measured['inference_testset_ratio_low']:.2f}, "
                             f"{v.measured['inference_testset_ratio_high']:.2f}]"
                             for v in verdicts]
                    rows.append([conv.id, name, f"{measured:.2f}", f"{failed}/{args.repeat}",
                                 "; ".join(cells)])
                    print(" | ".join(rows[-1]), flush=True)
    finally:
        timer.close()
        if busy:
            busy.terminate()
    print(f"\nspeed_ratio bound {tol('speed_ratio')[0]:g}; {timer.threads} thread(s) while "
          f"timing, {timer.workers} gate(s) at once, each in a timing process; "
          f"{'and a busy loop' if busy else 'no other load'}; pairing {PAIRING}\n")
    print("| case | conversion | its ratio to the original (batch, calibration) | gate failed | ratio batch "
          "[95 %] / test set [95 %], each run |\n|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
