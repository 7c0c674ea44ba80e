"""Pure numpy metrics comparing a converted model with its original.

Errors follow the study's definitions on the last layer's outputs (class probabilities):
absolute error |y - y'| (eq. 1) and relative error |y - y'| / |y| (eq. 2), summarised over
every output element of the test set.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == labels))


@dataclass(frozen=True)
class OutputErrors:
    n_samples: int
    nonfinite: int  # NaN/Inf elements in the converted outputs
    abs_max: float
    abs_mean: float
    abs_p99: float
    rel_max: float
    rel_mean: float
    worst_sample: int  # sample holding abs_max
    ptol_fraction: float  # share of elements outside atol + rtol * |y|
    ptol_worst_sample: int  # sample holding the element furthest outside that bound (-1: none)
    # Where the samples' largest abs errors sit: counts per decade (HIST_EDGES), for the
    # report's histogram against the tolerance; the records keep no per-sample errors.
    abs_hist: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# Decades of abs error: [0, 1e-9), [1e-9, 1e-8), ..., [0.1, 1), [1, inf] (non-finite included).
HIST_EDGES = tuple(10.0 ** k for k in range(-9, 1))


def error_histogram(per_sample: np.ndarray) -> list[int]:
    """Counts of `per_sample` values per decade of HIST_EDGES (len(HIST_EDGES) + 1 bins)."""
    return np.bincount(np.searchsorted(HIST_EDGES, per_sample, side="right"),
                       minlength=len(HIST_EDGES) + 1).tolist()


def output_errors(ref: np.ndarray, got: np.ndarray, *, atol: float, rtol: float,
                  rel_floor: float) -> OutputErrors:
    """Error statistics of `got` against `ref` (same shape, (N, classes)).

    Relative error divides by max(|y|, rel_floor): near-zero probabilities would otherwise turn
    round-off into arbitrarily large ratios.
    """
    if ref.shape != got.shape:
        raise ValueError(f"output shapes differ: original {ref.shape}, converted {got.shape}")
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    finite = np.isfinite(got64)
    nonfinite = int(got64.size - finite.sum())
    diff = np.where(finite, np.abs(ref64 - got64), np.inf)
    rel = diff / np.maximum(np.abs(ref64), rel_floor)
    excess = diff - (atol + rtol * np.abs(ref64))
    outside = excess > 0
    per_sample = diff.max(axis=1)
    return OutputErrors(
        n_samples=len(ref),
        nonfinite=nonfinite,
        abs_max=float(per_sample.max()),
        abs_mean=float(diff.mean()),
        abs_p99=float(np.percentile(diff, 99)),
        rel_max=float(rel.max()),
        rel_mean=float(rel.mean()),
        worst_sample=int(per_sample.argmax()),
        ptol_fraction=float(outside.mean()),
        ptol_worst_sample=int(excess.max(axis=1).argmax()) if outside.any() else -1,
        abs_hist=error_histogram(per_sample),
    )


def label_disagreement(ref: np.ndarray, got: np.ndarray) -> tuple[float, np.ndarray]:
    """Share of samples whose predicted class differs, and their indices."""
    differ = np.flatnonzero(np.argmax(ref, axis=1) != np.argmax(got, axis=1))
    return len(differ) / len(ref), differ


def attack_success_rate(probs_adv: np.ndarray, labels: np.ndarray) -> float:
    """Share of adversarial examples a model labels other than their seed's true label."""
    return float(np.mean(np.argmax(probs_adv, axis=1) != labels))


def margins(probs: np.ndarray) -> np.ndarray:
    """Per sample: top probability minus the runner-up (how far from the decision boundary)."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


@dataclass(frozen=True)
class SuccessRates:
    original: float
    converted: float
    n: int  # adversarial examples compared: their seed the original classifies correctly
    n_boundary: int  # left out: on the original's decision boundary (margin below the bound)


def _seeds_of_the_original(labels: np.ndarray, ref_clean: np.ndarray) -> np.ndarray:
    return np.argmax(ref_clean, axis=1) == labels


def success_rates(labels: np.ndarray, ref_clean: np.ndarray, ref_adv: np.ndarray,
                  got_clean: np.ndarray, got_adv: np.ndarray, margin: float = 0.0) -> SuccessRates:
    """Attack success rate on the original and on the converted model, over the same sample for
    both: the adversarial examples whose seed the original classifies correctly (the study's
    sample), leaving out those the original labels by less than `margin`: two models that agree
    to within round-off may label those either way.

    The sample does not depend on the model under test: a conversion that misclassifies a clean
    seed the original gets right is not let off that seed (its clean errors are counted apart,
    by clean_errors). `got_clean` is not used here; it is kept so both take the same arrays."""
    del got_clean
    seeds = _seeds_of_the_original(labels, ref_clean)
    decided = margins(ref_adv) >= margin
    use = seeds & decided
    n_boundary = int((seeds & ~decided).sum())
    if not use.any():
        return SuccessRates(float("nan"), float("nan"), 0, n_boundary)
    return SuccessRates(attack_success_rate(ref_adv[use], labels[use]),
                        attack_success_rate(got_adv[use], labels[use]), int(use.sum()),
                        n_boundary)


def clean_errors(labels: np.ndarray, ref_clean: np.ndarray, got_clean: np.ndarray,
                 margin: float = 0.0) -> tuple[np.ndarray, int]:
    """(indices, n): the seeds the original classifies correctly, by at least `margin`, that the
    conversion misclassifies (clean, before any attack), and how many seeds were compared."""
    compared = _seeds_of_the_original(labels, ref_clean) & (margins(ref_clean) >= margin)
    wrong = compared & (np.argmax(got_clean, axis=1) != labels)
    return np.flatnonzero(wrong), int(compared.sum())


def robustness_indicator(rates: dict[str, tuple[float, float]]) -> float:
    """R(m, c): the mean, over the attacks of the run, of the converted model's attack success
    rate minus the original's (rates: attack -> (original, converted)). 0: as robust as the
    original; > 0: the conversion is easier to fool; < 0: harder."""
    return float(np.mean([conv - orig for orig, conv in rates.values()]))
