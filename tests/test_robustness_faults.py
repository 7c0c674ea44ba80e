"""Every robustness check can fail.

Known-wrong conversions (convcheck.testing.faults, made from a trained original's good ONNX conversion)
are replayed on the session's real adversarial sets -- the ones tests_conformance/
test_robustness.py uses -- and put through the same checks with the same tolerances; each
verdict must fail on the metrics the fault is known to break, and a control shows the good
conversions pass. Attacks that did not run (an input returned unchanged) or that never fool the
original must fail the attack check. The caught-by table goes to <reports>/robustness-faults.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from convcheck import checks
from convcheck.checks.metrics import attack_success_rate
from convcheck.pipeline.builds import Attacked
from convcheck.robustness import attacks
from convcheck.robustness.attacks import attacks_for
from convcheck.runtimes import OrtPredictor, TorchPredictor, predict_all
from convcheck.testing import faults

LENET5 = (("lenet5", "pytorch"), ("lenet5", "keras"))
# R(m, c) is not among them: its bound is off by default (each success_rate_delta bounds it);
# tests/test_checks.py shows it failing on its own where its bound is set.
CHANGES_LABELS = frozenset({"success_rate_delta", "adversarial_disagreement",
                            "clean_disagreement"})


@dataclass(frozen=True)
class Fault:
    name: str
    make: Callable  # (path of the good .onnx, dst) -> path of the faulty .onnx
    expects: frozenset  # metrics that must be among the failures
    cases: tuple  # (model, framework) pairs it is made from


_swap01 = lambda src, dst: faults.swap_output_classes(src, dst, 0, 1)  # noqa: E731
FAULTS = (
    Fault("perturbed-weight", faults.perturb_weight, frozenset({"abs_max"}),
          LENET5 + (("lstm", "pytorch"),)),
    Fault("fp16-round-trip", faults.fp16_round_trip, frozenset({"abs_max"}), LENET5),
    # Ten classes: a swap of 0 and 1. Counted over the seeds both models classified correctly
    # (before), the swap's own seeds dropped out and a wrong label stayed wrong: delta 0
    # (measured), only disagreement told. Over the original's seeds (now), an attack that failed
    # on a seed of class 0 or 1 succeeds on the conversion (measured: FGSM delta 0.12-0.14),
    # and the conversion's errors on those clean seeds are counted (clean_disagreement).
    Fault("class-swap", _swap01, CHANGES_LABELS | {"abs_max"}, LENET5),
    # Two classes: every label flips, and with it every success.
    Fault("class-swap", _swap01, CHANGES_LABELS | {"abs_max"}, (("gru", "keras"),)),
    Fault("hw-swap", faults.swap_input_hw, CHANGES_LABELS, LENET5),
)
CONTROLS = sorted({c for f in FAULTS for c in f.cases})
FIGURES = {  # the worst over the model's attacks
    "success rate delta": faults.worst("success_rate_delta", ".3f"),
    "clean errors": faults.worst("clean_disagreement", ".3f"),
    "adversarial disagreement": faults.worst("adversarial_disagreement", ".3f"),
    "abs_max": faults.worst("abs_max", ".3g"),
    "R": faults.worst("robustness_indicator", "+.3f"),
}


@pytest.fixture(scope="module")
def battery(save_report):
    rows: dict = {}
    yield rows
    if rows:
        save_report("robustness-faults.md", "Robustness fault battery: which check caught which "
                    "fault", "adversarial sets of the session; written by "
                    "tests/test_robustness_faults.py", faults.caught_by_table(rows, FIGURES))


def robustness_verdicts(case_id, bench, good, predictor, tol) -> list[checks.Verdict]:
    """The checks of convcheck/suite/robustness.py for `predictor` in place of `good`."""
    verdicts, rates = [], {}
    for attack in attacks_for(good.original.spec):
        adv = bench.adversarial(good.original, attack)
        ref_clean, ref_adv = bench.adversarial_outputs(good.original, attack)
        got_clean, got_adv = predict_all(predictor, adv.x), predict_all(predictor, adv.x_adv)
        t, cid = tol(Attacked(good, attack)), f"{case_id}-{attack}"
        verdicts += [
            checks.success_rate_preserved(cid, adv.labels, ref_clean, ref_adv, got_clean,
                                          got_adv, t),
            checks.adversarial_agreement(cid, ref_adv, got_adv, t),
            checks.output_equivalence(cid, ref_adv, got_adv, t,
                                      check="adversarial_output_equivalence")]
        rates[attack] = checks.adversarial_rates(adv.labels, ref_clean, ref_adv, got_clean,
                                                 got_adv, t)
    verdicts.append(checks.robustness_indicator(case_id, rates, tol(good)))
    return verdicts


def figures(verdicts) -> str:
    keys = ("success_rate_delta", "clean_disagreement", "adversarial_disagreement", "abs_max",
            "robustness_indicator")
    return "; ".join(f"{v.case_id}: " + ", ".join(f"{k} {v.measured[k]:.4g}" for k in keys
                                                  if k in v.measured) for v in verdicts)


@pytest.mark.parametrize("model, framework", [pytest.param(m, f, id=f"good-{m}-{f}")
                                              for m, f in CONTROLS])
def test_good_conversion_passes(model, framework, bench, tol, battery, good_conversion,
                                control_passes):
    good = good_conversion(model, framework)
    control_passes(battery, good.id,
                   robustness_verdicts(good.id, bench, good, good.predictor, tol))


@pytest.mark.parametrize("fault, model, framework", [
    pytest.param(f, m, fw, id=f"{f.name}-{m}-{fw}") for f in FAULTS for m, fw in f.cases])
def test_fault_is_caught(fault, model, framework, bench, tol, battery, tmp_path,
                         good_conversion):
    good = good_conversion(model, framework)
    predictor = OrtPredictor.load(fault.make(good.path, tmp_path / f"{fault.name}.onnx"))
    case_id = f"{good.id}+{fault.name}"
    verdicts = robustness_verdicts(case_id, bench, good, predictor, tol)
    battery[case_id] = verdicts
    failed = set().union(*(v.failed_metrics() for v in verdicts))
    missing = fault.expects - failed
    assert not missing, (f"{case_id}: expected {sorted(missing)} among the failures, got "
                         f"{sorted(failed)} ({figures(verdicts)})")
    for v in verdicts:  # every failure names its case and the measured value
        for line in v.failures:
            metric = line.split(": ", 1)[1].split(" ", 1)[0]
            assert line.startswith(f"{v.case_id}: {metric} = "), line


# --------------------------------------------------------------------------- the attack check


def _seeds(bench, original, n=8):
    x, y = bench.test_set(original.spec, original.framework)
    idx = attacks.select_seeds(bench.outputs(original), y, n)
    return x[idx], y[idx]


def test_fgsm_without_a_gradient_did_not_run(bench, tol):
    """A network whose loss gradient is zero (all weights zero): FGSM returns its inputs."""
    original = bench.original("lenet5", "pytorch", bench.profile.seeds[0])
    x, y = _seeds(bench, original)
    model = original.spec.build("pytorch")
    for p in model.parameters():
        p.data.zero_()
    flat = TorchPredictor(model)
    x_adv = attacks.fgsm(flat, original.spec, "pytorch", x, y, eps=0.15)
    adv = attacks.AdversarialSet("fgsm", np.arange(len(x)), x, x_adv, y)
    v = checks.attack_effective("flat-fgsm", adv.changed, attack_success_rate(flat.predict(x_adv), y),
                                True, tol(original))
    assert not v.passed
    assert v.failures[0].startswith(f"flat-fgsm: unchanged = {len(x)} > 0 (the attack did not "
                                    f"run on them), {len(x)} of {len(x)}"), v.failures


class Constant:
    """A model that answers one class whatever the input (an untrained model)."""

    name = "constant"

    def predict(self, batch):
        out = np.zeros((len(batch), 10), dtype=np.float32)
        out[:, 3] = 1
        return out


def test_boundary_that_cannot_start_did_not_run(bench, tol):
    """ART's Boundary attack returns the input when no random image changes the label."""
    original = bench.original("lenet5", "keras", bench.profile.seeds[0])
    x, y = _seeds(bench, original, n=3)
    x_adv = attacks.boundary(Constant(), original.spec, "keras", x, y, starts=x, seed=0,
                                max_iter=2, num_trial=2, sample_size=2, init_size=5)
    np.testing.assert_array_equal(x_adv, x)
    v = checks.attack_effective("constant-boundary", np.zeros(len(x), bool), 0.0, True,
                                tol(original))
    assert [f.split(" =")[0] for f in v.failures] == ["constant-boundary: unchanged",
                                                      "constant-boundary: success_rate_original"]
    with pytest.raises(attacks.AttackError, match="labels every test image alike"):
        attacks.boundary_starts(Constant().predict(x), x, np.arange(len(x)))


def test_an_attack_that_never_fools_the_original_fails(bench, tol):
    original = bench.original("lenet5", "pytorch", bench.profile.seeds[0])
    x, y = _seeds(bench, original, n=20)
    x_adv = attacks.fgsm(original.predictor, original.spec, "pytorch", x, y, eps=1e-4)
    rate = attack_success_rate(original.predictor.predict(x_adv), y)
    assert rate == 0.0
    v = checks.attack_effective("tiny-fgsm", (x_adv != x).reshape(len(x), -1).any(axis=1), rate,
                                True, tol(original))
    floor = tol(original)("attack_success_floor")[0]
    assert v.failures == [f"tiny-fgsm: success_rate_original = 0.0000 < floor {floor:g} (default): "
                          f"the attack barely fools the original, so comparing a conversion's "
                          f"robustness tests little"]
