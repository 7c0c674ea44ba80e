"""The Core ML reference runtime's speed, with and without what makes it faster: a batch shared
out among the runtime's threads (numpy's BLAS on one thread meanwhile), and a loop's invariant
ops computed once per loop run (convcheck.mil.interpreter). Each setting runs the same
samples; the outputs of every setting are checked equal to the plain one's (bit for bit where
the arithmetic is the same; to 1e-6 where a share's smaller batch changes BLAS' blocking).

    .venv/bin/python benchmarks/reference_runtime.py \\
        .cache/models/gru-pytorch-s0-smoke.coreml-mlprogram-fp16 --samples 256 --repeat 2

Entries are cache directories (or .mlpackage / .mlmodel paths) of CoreML conversions; the
inputs are the first --samples of the entry's model's test set (token ids, or images), from
the reference project's data, as the suite feeds them.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from convcheck import frameworks  # noqa: E402
from convcheck.mil import interpreter  # noqa: E402
from convcheck.runtimes import coreml  # noqa: E402


def _model_file(entry: Path) -> Path:
    if entry.suffix in (".mlpackage", ".mlmodel"):
        return entry
    return next(p for p in (entry / "model.mlpackage", entry / "model.mlmodel") if p.exists())


def _inputs(entry: Path, n: int, cache: Path) -> np.ndarray:
    """The first n test samples of the entry's model, in its framework's layout."""
    from convcheck.pipeline.workbench import Workbench
    from convcheck.settings import get_profile, project

    zoo = project.discover(ROOT)
    project.activate(zoo)
    project.load_models(zoo)
    stem = (entry if entry.suffix not in (".mlpackage", ".mlmodel") else entry.parent).name
    model, framework = stem.split("-")[:2]
    bench = Workbench(get_profile("smoke"), None, cache, log=lambda _: None)
    from convcheck.declarations.registry import MODELS

    x, _ = bench.test_set(MODELS.get(model), framework)
    return x[:n]


SETTINGS = {  # name -> (runtime threads, loop-invariant ops hoisted)
    "one call, every op each step": (1, False),
    "one call, invariant ops hoisted": (1, True),
    "shared among 2 threads, hoisted": (2, True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("entries", nargs="+", type=Path)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--cache-dir", type=Path, default=ROOT / ".cache",
                    help="where the test data is cached (the entries' own cache)")
    args = ap.parse_args()
    hoisting = interpreter.Interpreter._invariant
    print("| conversion | setting | seconds (each run) | outputs |\n|---|---|---|---|")
    for entry in args.entries:
        path = _model_file(entry)
        x = _inputs(entry, args.samples, args.cache_dir.resolve())
        predictor = coreml.ReferencePredictor(path)
        plain = None
        for name, (threads, hoist) in SETTINGS.items():
            frameworks._threads = threads
            interpreter.Interpreter._invariant = (
                hoisting if hoist else (lambda self, block: frozenset()))
            if hasattr(predictor.interpreter, "_invariants"):  # an ML program's
                predictor.interpreter._invariants = {}
            seconds, out = [], None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                out = predictor.predict(x)
                seconds.append(time.perf_counter() - t0)
            if plain is None:
                plain, same = out, "-"
            else:
                same = ("equal" if np.array_equal(out, plain)
                        else f"max diff {np.abs(out - plain).max():.1e}")
            print(f"| {entry.name} ({len(x)} samples) | {name} | "
                  f"{', '.join(f'{s:.2f}' for s in seconds)} | {same} |", flush=True)
    interpreter.Interpreter._invariant = hoisting


if __name__ == "__main__":
    main()
