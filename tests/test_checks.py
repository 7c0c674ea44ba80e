"""Tests of convcheck.checks.metrics (on hand-computed arrays) and convcheck.checks (verdicts and messages)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from convcheck import checks
from convcheck.checks import metrics

# Values are powers of two, so every difference below is exact.
REF = np.array([[0.5, 0.25, 0.25],
                [0.5, 0.5, 0.0],
                [0.125, 0.125, 0.75]])
GOT = np.array([[0.5, 0.25, 0.25],     # identical
                [0.5, 0.25, 0.25],     # |d| = 0, .25, .25   (the worst sample)
                [0.125, 0.25, 0.625]])  # |d| = 0, .125, .125

DEFAULTS = {
    "accuracy_floor": 0.60, "abs_max": 1e-5, "abs_mean": 1e-6, "abs_p99": 1e-6,
    "rel_max": 1e-2, "rel_mean": 1e-4, "rel_floor": 1e-6, "ptol_atol": 1e-6, "ptol_rtol": 1e-4,
    "ptol_budget": 0.0, "label_disagreement": 0.0, "accuracy_delta": 0.0,
    "attack_success_floor": 0.05, "success_rate_delta": 0.0, "adversarial_disagreement": 0.0,
    "robustness_indicator": math.inf, "decision_margin": 2e-5,
}


def fake_tol(**overrides):
    """A tolerance lookup like the suite's: (value, source)."""

    def lookup(key):
        if key in overrides:
            return overrides[key], f"override {{'model': 'm'}}: test says {key}"
        return DEFAULTS[key], "default"

    return lookup


def probs(n: int = 40, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs of a fake classifier and labels it gets all right."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)).astype(np.float32)
    labels = rng.integers(0, classes, size=n)
    logits[np.arange(n), labels] += 5.0
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32), labels


# --------------------------------------------------------------------------- metrics


def test_output_errors_by_hand():
    e = metrics.output_errors(REF, GOT, atol=0.1, rtol=0.0, rel_floor=1e-6)
    assert e.n_samples == 3 and e.nonfinite == 0
    assert e.abs_max == 0.25
    assert e.worst_sample == 1
    assert e.abs_mean == pytest.approx(0.75 / 9)  # (.25 + .25 + .125 + .125) / 9
    assert e.abs_p99 == 0.25  # 99th percentile of 7 small and 2 largest values: the largest
    # rel = |d| / max(|y|, floor): .25/.5, .25/1e-6 (y = 0), .125/.125, .125/.75
    assert e.rel_max == pytest.approx(0.25 / 1e-6)
    assert e.rel_mean == pytest.approx((0.5 + 0.25e6 + 1.0 + 0.125 / 0.75) / 9)
    # 4 of the 9 elements differ by more than atol = 0.1; sample 1 is furthest outside (.15)
    assert e.ptol_fraction == pytest.approx(4 / 9)
    assert e.ptol_worst_sample == 1


def test_rel_floor_caps_the_ratio_of_near_zero_outputs():
    tiny = metrics.output_errors(REF, GOT, atol=1, rtol=0, rel_floor=1e-9)
    assert tiny.rel_max == pytest.approx(0.25 / 1e-9)
    floored = metrics.output_errors(REF, GOT, atol=1, rtol=0, rel_floor=0.5)
    # every |y| < 0.5 counts as 0.5: .25/.5, .25/.5 (y = 0), .125/.5, and .125/.75 (|y| > floor)
    assert floored.rel_max == 0.5
    assert floored.rel_mean == pytest.approx((0.5 + 0.5 + 0.25 + 0.125 / 0.75) / 9)
    # abs errors do not depend on the floor
    assert floored.abs_max == tiny.abs_max == 0.25


def test_ptol_fraction_uses_atol_plus_rtol_times_y():
    # bound = .1 + .5 |y|: (.5, .25) -> .35 inside; (0, .25) -> .1 outside;
    # (.125, .125) -> .1625 inside; (.75, .125) -> .475 inside
    e = metrics.output_errors(REF, GOT, atol=0.1, rtol=0.5, rel_floor=1e-6)
    assert e.ptol_fraction == pytest.approx(1 / 9)
    assert e.ptol_worst_sample == 1
    within = metrics.output_errors(REF, GOT, atol=0.3, rtol=0.0, rel_floor=1e-6)
    assert within.ptol_fraction == 0.0 and within.ptol_worst_sample == -1


def test_ptol_worst_sample_can_differ_from_the_abs_worst_sample():
    ref = np.array([[0.9, 0.1], [0.01, 0.99]])
    got = np.array([[0.8, 0.2], [0.06, 0.94]])  # |d| .1 (sample 0) vs .05 (sample 1)
    e = metrics.output_errors(ref, got, atol=0.0, rtol=0.5, rel_floor=1e-6)
    assert e.worst_sample == 0
    # bound .5|y|: sample 0: (y .9, bound .45) inside, (y .1, bound .05) excess .05;
    #              sample 1: (y .01, bound .005) excess .045, (y .99, bound .495) inside
    assert e.ptol_fraction == pytest.approx(2 / 4)
    assert e.ptol_worst_sample == 0
    # bound 1.5|y|: only (y .01, bound .015, |d| .05) is outside, in sample 1, while the largest
    # absolute error stays in sample 0
    e = metrics.output_errors(ref, got, atol=0.0, rtol=1.5, rel_floor=1e-6)
    assert (e.worst_sample, e.ptol_worst_sample) == (0, 1)
    assert e.ptol_fraction == pytest.approx(1 / 4)


# np.percentile interpolates between inf values (inf - inf): abs_p99 may be NaN, which fails too.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_output_errors_count_nonfinite_and_never_hide_them():
    got = GOT.copy()
    got[0, 1] = np.nan
    got[2, 0] = np.inf
    e = metrics.output_errors(REF, got, atol=1e9, rtol=1e9, rel_floor=1e-6)
    assert e.nonfinite == 2
    assert math.isinf(e.abs_max) and math.isinf(e.rel_max)
    assert not e.abs_p99 <= 1e9  # inf or NaN: never within a tolerance
    assert e.ptol_fraction == pytest.approx(2 / 9)  # NaN/Inf is outside any finite bound


def test_output_errors_shape_mismatch():
    with pytest.raises(ValueError, match=r"shapes differ: original \(3, 3\), converted \(3, 2\)"):
        metrics.output_errors(REF, GOT[:, :2], atol=0, rtol=0, rel_floor=1e-6)


def test_label_disagreement_and_accuracy_by_hand():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    got = np.array([[0.9, 0.1], [0.6, 0.4], [0.6, 0.4], [0.7, 0.3]])
    share, idx = metrics.label_disagreement(ref, got)
    assert share == 0.5
    assert idx.tolist() == [1, 3]
    labels = np.array([0, 1, 1, 1])
    assert metrics.accuracy(ref, labels) == 0.75  # predicts 0, 1, 0, 1
    assert metrics.accuracy(got, labels) == 0.25  # predicts 0, 0, 0, 0


# --------------------------------------------------------------------------- checks


def all_verdicts(case_id, ref, got, labels, tol):
    return [checks.output_equivalence(case_id, ref, got, tol),
            checks.outputs_finite(case_id, got),
            checks.label_agreement(case_id, ref, got, tol),
            checks.accuracy_preserved(case_id, ref, got, labels, tol),
            checks.accuracy_floor(case_id, got, labels, tol)]


def test_identical_outputs_pass_every_check():
    ref, labels = probs()
    verdicts = all_verdicts("lenet5-keras-onnx-s0", ref, ref.copy(), labels, fake_tol())
    for v in verdicts:
        assert v.passed, v.message()
        assert v.failures == [] and v.message() == "" and v.failed_metrics() == set()
        assert v.case_id == "lenet5-keras-onnx-s0"
    eq = verdicts[0]
    assert eq.check == "output_equivalence"
    assert eq.measured["abs_max"] == 0.0 and eq.measured["nonfinite"] == 0
    # every tolerance the check compared with is recorded
    assert {"abs_max", "abs_mean", "abs_p99", "rel_max", "rel_mean", "ptol_budget",
            "ptol_atol", "ptol_rtol", "rel_floor"} <= set(eq.tolerances)
    assert verdicts[2].measured == {"label_disagreement": 0.0, "n_disagree": 0,
                                    "n_samples": len(ref)}
    assert verdicts[3].measured["accuracy_delta"] == 0.0
    assert verdicts[4].measured["accuracy"] == 1.0


def test_perturbed_output_fails_output_equivalence_with_its_numbers():
    ref, labels = probs()
    got = ref.copy()
    got[7, 3] += np.float32(1e-3)
    v = checks.output_equivalence("lenet5-keras-onnx-s0", ref, got, fake_tol())
    assert not v.passed
    assert "abs_max" in v.failed_metrics()
    line = next(f for f in v.failures if ": abs_max = " in f)
    assert line.startswith("lenet5-keras-onnx-s0: abs_max = 0.001 > 1e-05 (default)"), line
    assert line.endswith("worst sample 7"), line
    assert v.measured["worst_sample"] == 7
    assert v.measured["abs_max"] == pytest.approx(1e-3, rel=1e-3)
    assert v.tolerances["abs_max"] == 1e-5
    # the other statistics fail too, each in the same grammar; one element in 400 stays below the
    # 99th percentile, so abs_p99 (0) passes
    assert v.failed_metrics() == {"abs_max", "abs_mean", "rel_max", "rel_mean", "ptol_fraction"}
    assert v.measured["abs_p99"] == 0.0
    ptol = next(f for f in v.failures if ": ptol_fraction = " in f)
    assert "> 0 (default)" in ptol and "outside 1e-06 + 0.0001*|y|, worst sample 7" in ptol
    # labels did not move, so label agreement and accuracy still pass
    assert checks.label_agreement("c", ref, got, fake_tol()).passed
    assert checks.accuracy_preserved("c", ref, got, labels, fake_tol()).passed


def test_tolerance_source_appears_in_the_message():
    ref, _ = probs()
    got = ref.copy()
    got[2, 0] += np.float32(1e-3)
    v = checks.output_equivalence("c", ref, got, fake_tol(abs_max=1e-4))
    line = next(f for f in v.failures if ": abs_max = " in f)
    assert "> 0.0001 (override {'model': 'm'}: test says abs_max)" in line


def test_loose_enough_tolerances_pass_a_perturbed_output():
    ref, _ = probs()
    got = ref.copy()
    got[7, 3] += np.float32(1e-3)
    loose = fake_tol(abs_max=1e-2, abs_mean=1e-2, abs_p99=1e-2, rel_max=1e3, rel_mean=1e3,
                     ptol_budget=0.01)
    v = checks.output_equivalence("c", ref, got, loose)
    assert v.passed, v.message()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_outputs_never_pass(bad):
    ref, labels = probs()
    got = ref.copy()
    got[4, 2] = bad
    fin = checks.outputs_finite("gru-keras-onnx-s0", got)
    assert not fin.passed
    assert fin.measured == {"nonfinite": 1}
    assert fin.failures == ["gru-keras-onnx-s0: nonfinite = 1 > 0 (NaN/Inf never passes), "
                            "first in sample 4 (1 samples)"]
    # Even with infinite tolerances and budget, a NaN/Inf output fails equivalence.
    inf = float("inf")
    anything = fake_tol(**{k: inf for k in DEFAULTS if k not in ("rel_floor", "ptol_atol",
                                                                 "ptol_rtol")})
    for tol in (fake_tol(), anything):
        v = checks.output_equivalence("gru-keras-onnx-s0", ref, got, tol)
        assert not v.passed
        assert "nonfinite" in v.failed_metrics()
        assert v.measured["nonfinite"] == 1
    assert "abs_max" in checks.output_equivalence("c", ref, got, fake_tol()).failed_metrics()


def test_nan_in_the_original_outputs_fails_too():
    ref, _ = probs()
    got = ref.copy()
    ref = ref.copy()
    ref[1, 1] = np.nan
    inf = float("inf")
    v = checks.output_equivalence("c", ref, got, fake_tol(abs_max=inf, abs_mean=inf, abs_p99=inf,
                                                          rel_max=inf, rel_mean=inf))
    assert not v.passed
    assert "abs_max = nan" in v.message()


def test_nan_outputs_spread_over_samples():
    got, _ = probs()
    got[[3, 9], 0] = np.nan
    got[9, 1] = np.nan
    v = checks.outputs_finite("c", got)
    assert v.failures == ["c: nonfinite = 3 > 0 (NaN/Inf never passes), first in sample 3 (2 samples)"]


def test_swapped_argmax_fails_label_agreement_and_accuracy():
    ref, labels = probs(n=40)
    got = ref.copy()
    swapped = [5, 11, 30]
    for i in swapped:  # swap the top class with the runner-up: probabilities stay valid
        top, second = np.argsort(got[i])[::-1][:2]
        got[i, [top, second]] = got[i, [second, top]]
    la = checks.label_agreement("lstm-pytorch-onnx-s0", ref, got, fake_tol())
    assert not la.passed
    assert la.measured == {"label_disagreement": 3 / 40, "n_disagree": 3, "n_samples": 40}
    assert la.failed_metrics() == {"label_disagreement"}
    assert la.failures == ["lstm-pytorch-onnx-s0: label_disagreement = 0.075 > 0 (default), "
                           "3 of 40 samples, first [5, 11, 30]"]

    acc = checks.accuracy_preserved("lstm-pytorch-onnx-s0", ref, got, labels, fake_tol())
    assert not acc.passed
    assert acc.measured["accuracy_original"] == 1.0
    assert acc.measured["accuracy_converted"] == pytest.approx(37 / 40)
    assert acc.measured["accuracy_delta"] == pytest.approx(3 / 40)
    assert acc.failed_metrics() == {"accuracy_delta"}
    assert "original 1.0000, converted 0.9250" in acc.message()
    # a tolerance above the change lets both pass
    loose = fake_tol(label_disagreement=0.1, accuracy_delta=0.1)
    assert checks.label_agreement("c", ref, got, loose).passed
    assert checks.accuracy_preserved("c", ref, got, labels, loose).passed


def test_accuracy_floor():
    p, labels = probs(n=40)
    wrong = p.copy()
    # 20 of 40 samples now predict another class: accuracy 0.5, below the 0.6 floor
    for i in range(20):
        wrong[i] = np.roll(wrong[i], 1)
    v = checks.accuracy_floor("lenet5-pytorch-s0", wrong, labels, fake_tol())
    assert not v.passed
    assert v.measured["accuracy"] == 0.5
    assert v.tolerances == {"accuracy_floor": 0.6}
    majority = np.bincount(labels).max() / 40
    assert v.failures == [f"lenet5-pytorch-s0: accuracy = 0.5000 < floor 0.6 (default), "
                          f"majority-class rate {majority:.4f} on 40 samples"]
    assert v.failed_metrics() == {"accuracy"}
    # at or above the floor it passes
    assert checks.accuracy_floor("c", wrong, labels, fake_tol(accuracy_floor=0.5)).passed
    assert checks.accuracy_floor("c", p, labels, fake_tol()).passed



# --------------------------------------------------------------------------- robustness


def onehot(labels, classes=3):
    return np.eye(classes, dtype=np.float32)[labels]


LABELS = np.array([0, 1, 2, 0, 1])
CLEAN = onehot(LABELS)  # both models classify every seed correctly


def test_success_rates_count_the_seeds_of_the_original():
    ref_adv = onehot([1, 1, 2, 1, 1])  # fooled on samples 0 and 3: 2 of 5
    got_clean = onehot([0, 1, 2, 0, 0])  # the conversion gets seed 4 wrong: still counted
    got_adv = onehot([1, 1, 0, 0, 0])  # fooled on 0, 2 and 4
    r = metrics.success_rates(LABELS, CLEAN, ref_adv, got_clean, got_adv)
    assert r == metrics.SuccessRates(0.4, 0.6, 5, 0)  # the same 5 seeds for both models
    wrong, n = metrics.clean_errors(LABELS, CLEAN, got_clean)
    assert wrong.tolist() == [4] and n == 5
    # the sample is the original's: what the conversion does on clean seeds does not change it
    assert metrics.success_rates(LABELS, CLEAN, ref_adv, onehot([1, 0, 0, 1, 0]),
                                 got_adv) == r
    ref_clean = onehot([1, 0, 0, 1, 0])  # the original gets every seed wrong: nothing to count
    assert math.isnan(metrics.success_rates(LABELS, ref_clean, ref_adv, CLEAN, got_adv).original)
    assert metrics.clean_errors(LABELS, ref_clean, CLEAN)[1] == 0


def test_a_class_swap_changes_the_success_rate_over_the_original_seeds():
    """Ten classes, 0 and 1 swapped by the conversion. Counted over the seeds both models
    classify correctly (as before), the swap's seeds (labels 0, 1) drop out and a wrong label
    stays wrong, so the delta was 0; over the original's seeds an attack that failed on a seed
    of class 0 succeeds on the conversion (it answers 1), and the clean errors are counted."""
    labels = np.array([0, 1, 2, 3, 0, 5])
    clean = onehot(labels, 10)
    ref_adv = onehot([0, 7, 4, 3, 8, 9], 10)  # fooled on seeds 1, 2, 4, 5: 4 of 6
    swap = np.arange(10)
    swap[[0, 1]] = [1, 0]
    got_clean, got_adv = clean[:, swap], ref_adv[:, swap]
    both = np.argmax(got_clean, axis=1) == labels  # the old sample: seeds 2, 3, 5
    assert (metrics.attack_success_rate(ref_adv[both], labels[both])
            == metrics.attack_success_rate(got_adv[both], labels[both]))  # delta 0: not caught
    r = metrics.success_rates(labels, clean, ref_adv, got_clean, got_adv)
    assert (r.original, r.converted, r.n) == (pytest.approx(4 / 6), pytest.approx(5 / 6), 6)
    v = checks.success_rate_preserved("m-fgsm", labels, clean, ref_adv, got_clean, got_adv,
                                      fake_tol())
    assert v.measured["success_rate_delta"] == pytest.approx(1 / 6)
    assert v.measured["clean_errors"] == 3 and v.measured["n_clean"] == 6
    assert v.failures == [
        "m-fgsm: clean_disagreement = 0.5 > 0 (default), 3 of 6 seeds the original classifies "
        "correctly are misclassified by the conversion before any attack, first [0, 1, 4]",
        "m-fgsm: success_rate_delta = 0.1667 > 0 (default), original 0.6667 (4 of 6), converted "
        "0.8333 (5 of 6; seeds the original classifies correctly)"]
    assert v.failed_metrics() == {"clean_disagreement", "success_rate_delta"}


def test_examples_on_the_boundary_are_left_out_of_label_comparisons():
    """A tie on the original (margin 0) may go either way in a faithful conversion."""
    ref_adv = onehot([1, 1, 2, 1, 1])
    ref_adv[3] = [0.5, 0.5, 0.0]  # sample 3: on the boundary (argmax 0: not fooled)
    got_adv = ref_adv.copy()
    got_adv[3] = [0.5 - 1e-7, 0.5 + 1e-7, 0.0]  # round-off tips it over: fooled
    r = metrics.success_rates(LABELS, CLEAN, ref_adv, CLEAN, got_adv, margin=2e-5)
    assert r == metrics.SuccessRates(0.25, 0.25, 4, 1)
    assert metrics.success_rates(LABELS, CLEAN, ref_adv, CLEAN, got_adv).converted == 0.4
    v = checks.success_rate_preserved("m", LABELS, CLEAN, ref_adv, CLEAN, got_adv, fake_tol())
    assert v.passed and v.measured["n_boundary"] == 1
    v = checks.adversarial_agreement("m", ref_adv, got_adv, fake_tol())
    assert v.passed and v.measured["n_boundary"] == 1 and v.measured["n_samples"] == 4
    # with no margin the same round-off fails both checks, and the message says what was compared
    strict = fake_tol(decision_margin=0.0)
    assert not checks.success_rate_preserved("m", LABELS, CLEAN, ref_adv, CLEAN, got_adv,
                                             strict).passed
    got_adv[0] = [0.0, 0.0, 1.0]  # a decided example changes its label
    v = checks.adversarial_agreement("m", ref_adv, got_adv, fake_tol())
    assert v.failures == ["m: adversarial_disagreement = 0.25 > 0 (default), 1 of 4 examples, "
                          "first [0]; 1 of 5 within decision_margin 2e-05 of the boundary left out"]


def test_robustness_indicator_is_the_mean_success_rate_change():
    assert metrics.robustness_indicator({"fgsm": (0.2, 0.3), "boundary": (1.0, 0.9)}) == 0.0
    assert metrics.robustness_indicator({"fgsm": (0.2, 0.5), "boundary": (1.0, 1.0)}) == \
        pytest.approx(0.15)


def test_success_rate_preserved_words_the_change():
    ref_adv, got_adv = onehot([1, 1, 2, 0, 1]), onehot([1, 0, 2, 0, 1])
    v = checks.success_rate_preserved("m-onnx-fgsm", LABELS, CLEAN, ref_adv, CLEAN, got_adv,
                                      fake_tol())
    assert not v.passed and v.measured["success_rate_delta"] == pytest.approx(0.2)
    assert v.failures == ["m-onnx-fgsm: success_rate_delta = 0.2 > 0 (default), original 0.2000 "
                          "(1 of 5), converted 0.4000 (2 of 5; seeds the original classifies "
                          "correctly)"]
    assert checks.success_rate_preserved("m", LABELS, CLEAN, ref_adv, CLEAN, ref_adv,
                                         fake_tol()).passed


def test_robustness_indicator_check():
    rates = {"fgsm": metrics.SuccessRates(0.25, 0.5, 4, 0),
             "boundary": metrics.SuccessRates(1.0, 1.0, 4, 0)}
    # R judged on its own (success_rate_delta loosened to, say, 0.3 lets each attack's change,
    # 0.25 and 0, pass): their mean, 0.125, is past R's bound
    v = checks.robustness_indicator("m-onnx", rates, fake_tol(robustness_indicator=0.1))
    assert v.failures == ["m-onnx: robustness_indicator = 0.125 > 0.1 (override {'model': 'm'}: "
                          "test says robustness_indicator), R = +0.1250 over "
                          "boundary 1.0000 -> 1.0000, fgsm 0.2500 -> 0.5000"]
    assert checks.robustness_indicator("m-onnx", rates, fake_tol(robustness_indicator=0.2)).passed
    # off by default (inf): recorded, not judged
    off = checks.robustness_indicator("m-onnx", rates, fake_tol())
    assert off.tolerances["robustness_indicator"] == math.inf
    assert v.measured["success_rate_fgsm_converted"] == 0.5


def test_attack_effective():
    changed = np.array([True, False, True, False])
    v = checks.attack_effective("m-boundary", changed, 0.5, True, fake_tol())
    assert v.failures == ["m-boundary: unchanged = 2 > 0 (the attack did not run on them), 2 of 4 "
                          "adversarial examples equal their input (or the start of their walk), "
                          "first [1, 3]"]
    assert checks.attack_effective("m-genetic", changed, 0.5, False, fake_tol()).passed
    v = checks.attack_effective("m-fgsm", np.ones(4, bool), 0.0, True, fake_tol())
    assert [f.split(" =")[0] for f in v.failures] == ["m-fgsm: success_rate_original"]


def test_adversarial_output_error_names_its_check():
    v = checks.output_equivalence("m", REF, GOT, fake_tol(), check="adversarial_output_equivalence")
    assert v.check == "adversarial_output_equivalence" and "abs_max" in v.failed_metrics()


def test_a_comparison_over_no_example_fails():
    on_boundary = np.full((5, 3), 1 / 3, dtype=np.float32)  # every example a three-way tie
    v = checks.adversarial_agreement("m", on_boundary, on_boundary, fake_tol())
    assert v.failures == ["m: adversarial_disagreement = nan: no adversarial example to compare, "
                          "0 of 5 left (all within decision_margin 2e-05 of the boundary)"]
    ref_clean = onehot([1, 1, 2, 1, 1])  # the original gets seeds 0 and 3 wrong
    on_boundary[[0, 3]] = onehot([1, 1])  # the rest are ties
    v = checks.success_rate_preserved("m", LABELS, ref_clean, on_boundary, ref_clean,
                                      on_boundary, fake_tol())
    assert v.failures == ["m: success_rate_delta = nan: no adversarial example to compare, 0 of "
                          "5 left (3 within decision_margin 2e-05 of the boundary, 2 whose clean "
                          "seed the original misclassifies)"]
    assert v.failed_metrics() == {"success_rate_delta"}


def test_failures_carry_their_metric_and_can_be_left_out_by_it():
    v = checks.Verdict("c", "output_equivalence", {})
    v.limit("abs_max", 0.5, fake_tol())
    v.fail("abs_mean", "= 0.2 > 0.1 (default)")
    assert v.failed == ["abs_max", "abs_mean"] and v.failed_metrics() == {"abs_max", "abs_mean"}
    assert v.failures[1] == "c: abs_mean = 0.2 > 0.1 (default)"
    assert v.without(["abs_mean"]).failures == [v.failures[0]] and v.failed == ["abs_max"]
    assert v.without(["abs_max"]).passed and v.failed == []
