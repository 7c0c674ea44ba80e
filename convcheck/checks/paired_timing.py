"""Paired timing: the original and its conversion timed in interleaved rounds over the same
inputs, so a change in the machine's load between rounds hits both sides of a pair.

A ratio of two medians timed minutes apart measures the machine as much as the models (seen: a
conversion 2x "slower" on a batch and 0.8x on the test set in the same run). Here each round
times both models back to back, alternating which goes first (ABBA: neither always runs on a
warm cache), and the figure judged is the median of the per-pair ratios, with a
distribution-free confidence interval for that median (order statistics of the binomial; no
assumption on the shape of timing noise, which is skewed and heavy-tailed). A gate fails only
when the interval lies wholly above its bound. A side that runs in under `min_round_s` is called
several times per round (timeit's autorange): a LeNet-5 batch takes ~0.1 ms, where one
scheduler tick would be the whole "ratio".
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Pairs:
    """Seconds per call of each side, pair i timed back to back."""
    original_s: tuple[float, ...]
    converted_s: tuple[float, ...]
    load: tuple[float, float]  # the machine's 1-minute load average before and after
    calls: tuple[int, int] = (1, 1)  # calls of each side per round
    threads: int | None = None  # every runtime's threads while timing (None: not recorded)
    samples: int | None = None  # samples per call (None: not recorded)

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
        # the coverage the interval really has: (min, max) of 5 pairs covers 94 %, not 95 %
        return {"ratio": self.median(), "ratio_low": lo, "ratio_high": hi, "pairs": self.n,
                "confidence": interval_coverage(self.n, confidence),
                "confidence_asked": confidence,
                "original_s": float(np.median(self.original_s)),
                "converted_s": float(np.median(self.converted_s)),
                "calls_per_round": list(self.calls), "threads": self.threads,
                "samples": self.samples,
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
    k = _rank(n, confidence)
    return float(x[k - 1]), float(x[n - k])


def _rank(n: int, confidence: float) -> int:
    from scipy.stats import binom  # here: importing scipy.stats is half a second of every
    # pytest start (the plugin imports this module), usage errors and collections included

    # P(x_(k) <= median < x_(n+1-k)) = 1 - 2 P(B <= k - 1), B ~ binomial(n, 1/2)
    # ppf: the smallest j with P(B <= j) >= alpha/2, so P(B <= j-1) < alpha/2: k = j
    return max(int(binom.ppf((1 - confidence) / 2, n, 0.5)), 1)


def interval_coverage(n: int, confidence: float = CONFIDENCE) -> float:
    """The probability that median_interval's interval over n values covers the median: at
    least `confidence` when n allows it, else the (smaller) coverage of (min, max)."""
    from scipy.stats import binom  # see _rank

    if n < 2:
        return 0.0
    return float(1 - 2 * binom.cdf(_rank(n, confidence) - 1, n, 0.5))


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not on every platform
        return float("nan")


def paired_rounds(original: Callable[[], object], converted: Callable[[], object], *,
                  min_pairs: int, max_pairs: int, budget_s: float, warmup: int = 1,
                  min_round_s: float = 0.02,
                  clock: Callable[[], float] = time.perf_counter) -> Pairs:
    """Time `original` and `converted` (each called with no argument) in interleaved rounds:
    `warmup` untimed calls of each, then pairs until `max_pairs`, or until `min_pairs` are done
    and `budget_s` seconds have passed. Within pair i the one that runs first alternates. Each
    side is called often enough per round to take `min_round_s` (from its last warm-up call's
    time); the seconds recorded are per call."""
    if not 1 <= min_pairs <= max_pairs:
        raise ValueError(f"need 1 <= min_pairs <= max_pairs, got {min_pairs}, {max_pairs}")

    def timed(fn, calls: int = 1) -> float:
        t0 = clock()
        for _ in range(calls):
            fn()
        return (clock() - t0) / calls

    once_a = once_b = 0.0
    for _ in range(max(warmup, 1)):
        once_a, once_b = timed(original), timed(converted)
    calls = tuple(max(1, math.ceil(min_round_s / max(t, 1e-9))) for t in (once_a, once_b))

    a, b, load_before, start = [], [], _load(), clock()
    while len(a) < max_pairs and (len(a) < min_pairs or clock() - start < budget_s):
        if len(a) % 2 == 0:
            a.append(timed(original, calls[0]))
            b.append(timed(converted, calls[1]))
        else:
            b.append(timed(converted, calls[1]))
            a.append(timed(original, calls[0]))
    return Pairs(tuple(a), tuple(b), (load_before, _load()), calls)
