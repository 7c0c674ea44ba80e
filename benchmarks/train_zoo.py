"""Train (or load from the cache) every original of a profile, as the suite's fixtures do;
with --attacks, then make (or load) every adversarial set of the robustness checks.

Times a cold run (empty cache: data built, every model trained) against a warm one (all from
the cache) as whole processes, e.g. with /usr/bin/time -v:

    rm -rf /tmp/zoo-cache
    /usr/bin/time -v .venv/bin/python benchmarks/train_zoo.py --cache-dir /tmp/zoo-cache  # cold
    /usr/bin/time -v .venv/bin/python benchmarks/train_zoo.py --cache-dir /tmp/zoo-cache  # warm

The attacks are timed on their own, after the originals (trained or loaded, untimed): for the
cost of the robustness battery, `rm -rf .cache/attacks` then run with --attacks.

It prints each model's test accuracy, each attack's seconds, samples and success rate on the
original, and the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convcheck.checks import metrics  # noqa: E402
from convcheck.pipeline.workbench import Workbench  # noqa: E402
from convcheck.robustness.attacks import attacks_for  # noqa: E402
from convcheck.settings import get_profile  # noqa: E402
from models import FRAMEWORKS, ZOO  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--attacks", action="store_true", help="also make every adversarial set")
    args = ap.parse_args()
    profile = get_profile(args.profile)
    bench = Workbench(profile, args.data_dir, args.cache_dir.resolve())
    t0 = time.perf_counter()
    originals = []
    for seed in profile.seeds:
        for name, spec in ZOO.items():
            for fw in FRAMEWORKS:
                original = bench.original(name, fw, seed)
                _, labels = bench.test_set(spec, fw)
                acc = metrics.accuracy(bench.outputs(original), labels)
                print(f"{original.id}: test accuracy {acc:.4f}", flush=True)
                originals.append(original)
    print(f"zoo ({profile.name}): {time.perf_counter() - t0:.1f}s")
    if args.attacks:
        t0 = time.perf_counter()
        for o in originals:
            for attack in attacks_for(o.spec):
                t = time.perf_counter()
                adv = bench.adversarial(o, attack)
                rate = metrics.attack_success_rate(o.predictor.predict(adv.x_adv), adv.labels)
                print(f"{o.id} {attack}: {time.perf_counter() - t:.1f}s, {len(adv.x)} samples, "
                      f"success rate on the original {rate:.3f}", flush=True)
        print(f"attacks ({profile.name}): {time.perf_counter() - t0:.1f}s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
