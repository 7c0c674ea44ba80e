"""Paired timing: the original and its conversion timed in interleaved rounds over the same
inputs, so a change in the machine's load between rounds hits both sides of a pair.

A ratio of two medians timed minutes apart measures the machine as much as the models (seen: a
conversion 2x "slower" on a batch and 0.8x on the test set in the same run). Here each round
times both models back to back, alternating which goes first (ABBA: neither always runs on a
warm cache), and the figure judged is the median of the per-pair ratios, with a
distribution-free confidence interval for that median (order statistics of the binomial; no
assumption on the shape of timing noise, which is skewed and heavy-tailed). A gate fails only
when the interval lies wholly above its bound.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import binom

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Pairs:
    """Seconds per round of each side, pair i timed back to back."""
    original_s: tuple[float, ...]
    converted_s: tuple[float, ...]
    load: tuple[float, float]  # the machine's 1-minute load average before and after

    @property
    def ratios(self) -> np.ndarray:
        return np.asarray(self.converted_s) / np.asarray(self.original_s)

    @property
    def n(self) -> int:
        return len(self.original_s)

    def median(self) -> float:
        return float(np.median(self.ratios))

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        return median_interval(self.ratios, confidence)

    def as_dict(self, confidence: float = CONFIDENCE) -> dict:
        lo, hi = self.interval(confidence)
        return {"ratio": self.median(), "ratio_low": lo, "ratio_high": hi, "pairs": self.n,
                "confidence": confidence,
                "original_s": float(np.median(self.original_s)),
                "converted_s": float(np.median(self.converted_s)),
                "load_before": self.load[0], "load_after": self.load[1]}


def median_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """A distribution-free interval for the median of `values`: (x_(k), x_(n+1-k)) of the sorted
    values, with k the largest rank for which the binomial(n, 1/2) coverage is still at least
    `confidence`. Too few values for that coverage give (min, max), which is wider than asked
    (5 values cover 94 % at most)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    # P(x_(k) <= median < x_(n+1-k)) = 1 - 2 P(B <= k - 1), B ~ binomial(n, 1/2)
    # ppf: the smallest j with P(B <= j) >= alpha/2, so P(B <= j-1) < alpha/2: k = j
    k = max(int(binom.ppf((1 - confidence) / 2, n, 0.5)), 1)
    return float(x[k - 1]), float(x[n - k])


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not on every platform
        return float("nan")


def paired_rounds(original: Callable[[], object], converted: Callable[[], object], *,
                  min_pairs: int, max_pairs: int, budget_s: float, warmup: int = 1,
                  clock: Callable[[], float] = time.perf_counter) -> Pairs:
    """Time `original` and `converted` (each called with no argument) in interleaved rounds:
    `warmup` untimed calls of each, then pairs until `max_pairs`, or until `min_pairs` are done
    and `budget_s` seconds have passed. Within pair i the one that runs first alternates."""
    if not 1 <= min_pairs <= max_pairs:
        raise ValueError(f"need 1 <= min_pairs <= max_pairs, got {min_pairs}, {max_pairs}")
    for _ in range(warmup):
        original()
        converted()

    def timed(fn) -> float:
        t0 = clock()
        fn()
        return clock() - t0

    a, b, load_before, start = [], [], _load(), clock()
    while len(a) < max_pairs and (len(a) < min_pairs or clock() - start < budget_s):
        if len(a) % 2 == 0:
            a.append(timed(original))
            b.append(timed(converted))
        else:
            b.append(timed(converted))
            a.append(timed(original))
    return Pairs(tuple(a), tuple(b), (load_before, _load()))
