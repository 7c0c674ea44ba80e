"""The Predictor protocol every runtime implements, and running one over a whole array."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Predictor(Protocol):
    name: str  # the runtime, e.g. "pytorch", "keras", "onnxruntime"

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


def _first(out):
    """A model's first output: tuples, lists and dicts (in their order) give their first."""
    while isinstance(out, (tuple, list, dict)):
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return out


def load_converted(fmt: str, path: Path) -> Predictor:
    """The runtime predictor for a converted artifact of format `fmt` (registry.RUNTIMES); on
    an OS its runtime does not exist on, the stand-in registered for it (registry.STAND_INS)."""
    from convcheck.declarations.registry import RUNTIMES, stand_in

    other = stand_in(fmt)
    return other.load(path) if other is not None else RUNTIMES.get(fmt)(path)


def predict_all(predictor: Predictor, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Outputs for a whole array, in fixed-size batches (memory stays flat)."""
    outs = [predictor.predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs).astype(np.float32, copy=False)
