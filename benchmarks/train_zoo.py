"""Train (or load from the cache) every original of a profile, as the suite's fixtures do.

Times a cold run (empty cache: data built, every model trained) against a warm one (all from
the cache) as whole processes, e.g. with /usr/bin/time -v:

    rm -rf /tmp/zoo-cache
    /usr/bin/time -v .venv/bin/python benchmarks/train_zoo.py --cache-dir /tmp/zoo-cache  # cold
    /usr/bin/time -v .venv/bin/python benchmarks/train_zoo.py --cache-dir /tmp/zoo-cache  # warm

It prints each model's test accuracy and the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convcheck import metrics  # noqa: E402
from convcheck.config import get_profile  # noqa: E402
from convcheck.workbench import Workbench  # noqa: E402
from models import FRAMEWORKS, ZOO  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    profile = get_profile(args.profile)
    bench = Workbench(profile, args.data_dir, args.cache_dir.resolve())
    t0 = time.perf_counter()
    for seed in profile.seeds:
        for name, spec in ZOO.items():
            for fw in FRAMEWORKS:
                original = bench.original(name, fw, seed)
                _, labels = bench.test_set(spec, fw)
                acc = metrics.accuracy(bench.outputs(original), labels)
                print(f"{original.id}: test accuracy {acc:.4f}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"zoo ({profile.name}): {time.perf_counter() - t0:.1f}s, peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
