"""The fault battery: every check of the conformance suite can fail.

Each fault of convcheck.testing.faults is made from a real trained original's good ONNX conversion (the
session Workbench), run on the held-out test set, and put through the same checks, with the same
tolerances, as convcheck/suite/equivalence.py. The verdict must fail and name the
metrics the fault is known to break. A control shows the good conversions pass every check, so the
battery does not fail for an unrelated reason. The caught-by table goes to
<reports>/fault-battery.md (and stdout with -s).

Besides gross faults, near-boundary ones (convcheck.testing.faults.perturb_output_band,
flip_top_two_in_margin_band) are sized from the case's own tolerances: an error of 2x, 5x or
10x abs_max, 2x abs_p99, abs_mean, rel_max or rel_mean, elements just past ptol, one flipped
label. Each states the metrics that must fail AND those that must pass, so that every check is
shown failing on its own, and where sized, the measured metric / its bound must lie in a band.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from convcheck import checks
from convcheck.checks import metrics
from convcheck.plugin import state
from convcheck.runtimes import OrtPredictor, predict_all
from convcheck.testing import faults

# The train-mode fault uses the legacy TorchScript exporter on purpose; its notices are expected.
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
    pytest.mark.filterwarnings("ignore:Setting `training` to something other than default"),
    pytest.mark.filterwarnings("ignore:The feature will be removed"),
    pytest.mark.filterwarnings("ignore:ONNX Preprocess - Removing mutation"),
    pytest.mark.filterwarnings("ignore:Converting a tensor to a Python boolean"),  # BatchNorm trace
]
LENET5 = (("lenet5", "pytorch"), ("lenet5", "keras"))
VGG16_TORCH = (("vgg16", "pytorch"),)  # Dropout and BatchNorm


# The metrics of run_checks' verdicts; a fine-grained fault says which must fail and which pass.
OUTPUT_METRICS = ("abs_max", "abs_mean", "abs_p99", "rel_max", "rel_mean", "ptol_fraction")
METRICS = (*OUTPUT_METRICS, "nonfinite", "label_disagreement", "accuracy_delta")
BOUND_KEY = {"ptol_fraction": "ptol_budget"}  # a metric judged against another key


def others(*failing) -> frozenset:
    return frozenset(METRICS) - set(failing)


@dataclass(frozen=True)
class Env:
    """What a fault is sized from: the good conversion's outputs on the test set, the labels
    and the case's tolerance lookup (the one run_checks uses)."""
    outputs: np.ndarray
    labels: np.ndarray
    tol: Callable

    def __call__(self, key: str) -> float:
        return self.tol(key)[0]


@dataclass(frozen=True)
class Fault:
    name: str
    make: Callable  # (good Converted, dst path, Env) -> path of the faulty .onnx
    expects: frozenset  # metrics that must be among the verdicts' failures
    cases: tuple  # (model, framework) pairs it is made from
    passes: frozenset = frozenset()  # metrics that must stay within their tolerances
    size: tuple | None = None  # (metric, lo, hi): the metric / its tolerance lies in [lo, hi]
    exact: Callable | None = None  # (measured figures, Env) -> {figure: value it must equal}


def _file_fault(fn, **kw):
    return lambda good, dst, env: fn(good.path, dst, **kw)


def _offset_top(metric: str, factor: float, share: float):
    """factor x tol(metric) added to the `share` of output elements nearest 1 (confident top
    probabilities): off by a known size, on few elements, with no label change."""
    def make(good, dst, env):
        lo, hi, _ = faults.value_band(env.outputs, at_most=max(1, round(share * env.outputs.size)))
        return faults.perturb_output_band(good.path, dst, lo, hi, add=factor * env(metric))
    return make


def _offset_all(metric: str, factor: float):
    """factor x tol(metric) added to every output element."""
    return lambda good, dst, env: faults.perturb_output_band(
        good.path, dst, -np.inf, np.inf, add=factor * env(metric))


def _tiny_band(env, r: float) -> float:
    """The top of the probabilities a relative error r keeps within half the absolute bounds
    that judge every element (abs_p99 and ptol's atol): r * y <= 0.5 min(abs_p99, ptol_atol)."""
    return 0.5 * min(env("abs_p99"), env("ptol_atol")) / r


def _relative_max(factor: float, at_most: int = 10):
    """A relative error of factor x rel_max on a few probabilities just above rel_floor, too
    small in absolute terms for abs_* or ptol's atol, too few for rel_mean."""
    def make(good, dst, env):
        r = factor * env("rel_max")
        lo, hi, _ = faults.value_band(env.outputs, env("rel_floor"), _tiny_band(env, r),
                                      at_most=at_most)
        return faults.perturb_output_band(good.path, dst, lo, hi, mul=1 + r)
    return make


def _relative_mean(factor: float):
    """A relative error on every tiny probability (>= rel_floor), sized so that rel_mean lands
    at factor x its bound while each element stays within rel_max (at most rel_max / 4)."""
    def make(good, dst, env):
        r = env("rel_max") / 4
        lo, hi, n = faults.value_band(env.outputs, env("rel_floor"), _tiny_band(env, r))
        r = min(r, factor * env("rel_mean") * env.outputs.size / n)
        return faults.perturb_output_band(good.path, dst, lo, hi, mul=1 + r)
    return make


def _outside_ptol(at_most: int = 20):
    """A relative error of rel_max / 2 on a few small probabilities, where it puts them at
    least 2x past ptol's atol + rtol * |y| but keeps them under abs_max / 2."""
    def make(good, dst, env):
        r, atol, rtol = env("rel_max") / 2, env("ptol_atol"), env("ptol_rtol")
        assert r > 2 * rtol, f"rel_max {env('rel_max')} leaves no room past ptol_rtol {rtol}"
        lo, hi, _ = faults.value_band(env.outputs, 2 * atol / (r - 2 * rtol),
                                      0.5 * env("abs_max") / r, at_most=at_most)
        return faults.perturb_output_band(good.path, dst, lo, hi, mul=1 + r)
    return make


def _flip_one_label(good, dst, env):
    """The top two classes swapped on one test sample: the one of smallest margin among those
    whose top two hold the true label (so accuracy changes by exactly one sample too)."""
    margins = metrics.margins(env.outputs)
    top2 = np.argsort(env.outputs, axis=1)[:, -2:]
    holds = np.flatnonzero((top2 == env.labels[:, None]).any(axis=1))
    i = holds[np.argmin(margins[holds])]
    lo, hi = faults.band_around(margins, i)
    assert ((margins >= np.float32(lo)) & (margins < np.float32(hi))).sum() == 1, (i, lo, hi)
    return faults.flip_top_two_in_margin_band(good.path, dst, lo, hi)


# Where each threshold sits: controls at 0.5x and 0.9x of a bound pass every check; a fault at
# 1.2x fails its metric alone. The bands allow for the good conversion's own error.
UNDER = {0.5: (0.4, 0.6), 0.9: (0.8, 0.99)}
OVER = (1.1, 1.5)


def _around(metric: str, make):
    """Controls just under `metric`'s bound (nothing fails) and a fault just over it (the
    metric alone fails), made by make(factor)."""
    return (*(Fault(f"{metric}-{f:g}x", make(f), frozenset(), LENET5, frozenset(METRICS),
                    (metric, *UNDER[f])) for f in (0.5, 0.9)),
            Fault(f"{metric}-1.2x", make(1.2), frozenset({metric}), LENET5, others(metric),
                  (metric, *OVER)))


FAULTS = (
    Fault("perturbed-weight", _file_fault(faults.perturb_weight),
          frozenset({"abs_max"}), LENET5),
    Fault("fp16-round-trip", _file_fault(faults.fp16_round_trip),
          frozenset({"abs_max", "ptol_fraction"}), LENET5),
    Fault("class-swap", _file_fault(faults.swap_output_classes, i=0, j=1),
          frozenset({"abs_max", "label_disagreement", "accuracy_delta"}), LENET5),
    Fault("hw-swap", _file_fault(faults.swap_input_hw),
          frozenset({"abs_max", "label_disagreement", "accuracy_delta"}), LENET5),
    Fault("overflow-nan", _file_fault(faults.overflow_before_softmax),
          frozenset({"nonfinite", "label_disagreement"}), LENET5),
    Fault("train-mode",
          lambda good, dst, env: faults.export_torch_train_mode(
              good.original.spec, good.original.predictor.model, dst),
          frozenset({"abs_max", "label_disagreement"}), VGG16_TORCH),
    # Near the boundary: each one fails its metric alone, at a stated multiple of its bound.
    # abs_max: 25 of 10,000 elements (0.25%: under the 1% abs_p99 looks past, too few for
    # abs_mean), all confident top probabilities (ptol allows atol + rtol * ~1 there).
    Fault("abs_max-2x", _offset_top("abs_max", 2, 0.0025), frozenset({"abs_max"}), LENET5,
          others("abs_max"), ("abs_max", 1.5, 3)),
    Fault("abs_max-5x", _offset_top("abs_max", 5, 0.0025), frozenset({"abs_max"}), LENET5,
          others("abs_max"), ("abs_max", 4, 6.5)),
    Fault("abs_max-10x", _offset_top("abs_max", 10, 0.0025), frozenset({"abs_max"}), LENET5,
          others("abs_max"), ("abs_max", 8, 13)),
    *_around("abs_max", lambda f: _offset_top("abs_max", f, 0.0025)),
    # abs_p99: 2% of the elements (more than the 1% the percentile looks past).
    Fault("abs_p99-2x", _offset_top("abs_p99", 2, 0.02), frozenset({"abs_p99"}), LENET5,
          others("abs_p99"), ("abs_p99", 1.5, 3)),
    *_around("abs_p99", lambda f: _offset_top("abs_p99", f, 0.02)),
    # abs_mean cannot fail alone (mean <= 0.99 p99 + 0.01 max leaves a window of 1.09x): an
    # offset on every element fails it with p99 and the relative figures, abs_max passing.
    Fault("abs_mean-2x", _offset_all("abs_mean", 2),
          frozenset({"abs_mean", "abs_p99", "rel_max", "rel_mean", "ptol_fraction"}), LENET5,
          frozenset({"abs_max", "nonfinite", "label_disagreement", "accuracy_delta"}),
          ("abs_mean", 1.5, 3)),
    # Under its bound, the same offset moves abs_mean to 0.5x / 0.9x: abs_mean passes, and so
    # does every absolute figure; the relative ones fail as they must (an offset of 1e-6 on a
    # probability of 1e-8 is a relative error of 100). At 0.9x the offset on every element puts
    # abs_p99 (LeNet-5's bound is abs_mean's, 1e-6) at 0.9x plus the conversion's own error:
    # measured 1.013e-6, so abs_p99 is neither promised to pass nor to fail there.
    *(Fault(f"abs_mean-{f:g}x", _offset_all("abs_mean", f), frozenset({"rel_max", "rel_mean"}),
            LENET5, frozenset({"abs_mean", "abs_max", "ptol_fraction", "nonfinite",
                               "label_disagreement", "accuracy_delta"}
                              | ({"abs_p99"} if f < 0.9 else set())),
            ("abs_mean", *UNDER[f])) for f in (0.5, 0.9)),
    Fault("abs_mean-1.2x", _offset_all("abs_mean", 1.2),
          frozenset({"abs_mean", "rel_max", "rel_mean", "ptol_fraction"}), LENET5,
          frozenset({"abs_max", "nonfinite", "label_disagreement", "accuracy_delta"}),
          ("abs_mean", *OVER)),
    Fault("rel_max-2x", _relative_max(2), frozenset({"rel_max"}), LENET5, others("rel_max"),
          ("rel_max", 1.5, 3)),
    *_around("rel_max", _relative_max),
    Fault("rel_mean-2x", _relative_mean(2), frozenset({"rel_mean"}), LENET5,
          others("rel_mean"), ("rel_mean", 1.5, 3)),
    *_around("rel_mean", _relative_mean),
    Fault("outside-ptol", _outside_ptol(), frozenset({"ptol_fraction"}), LENET5,
          others("ptol_fraction")),
    # One label: a swap of the top two classes on one sample needs abs_max >= its margin, so
    # abs_max fails too; abs_p99 does not see one sample.
    Fault("one-label-flip", _flip_one_label,
          frozenset({"label_disagreement", "accuracy_delta", "abs_max"}), LENET5,
          frozenset({"abs_p99", "nonfinite"}),
          exact=lambda m, env: {"n_disagree": 1,
                                "accuracy_delta": pytest.approx(1 / len(env.labels))}),
)
CONTROLS = sorted({c for f in FAULTS for c in f.cases})


@pytest.fixture(scope="module")
def battery(pytestconfig, save_report):
    """Verdicts by case id; at the end, the caught-by table (printed, and saved as a report),
    then what each near-boundary fault states and measured."""
    rows: dict = {}
    stated: dict = {}
    yield rows, stated
    if rows:
        seed = state.bench(pytestconfig).profile.seeds[0]
        table = faults.caught_by_table(rows)
        if stated:
            table += ("\nNear-boundary faults: sized from the case's own tolerances; each must "
                      "fail the metrics named and pass the others named.\n\n"
                      "| case | must fail | must pass | measured / tolerance |\n|---|---|---|---|\n"
                      + "".join(f"| {c} | {', '.join(sorted(f))} | {', '.join(sorted(p))} | {z} |\n"
                                for c, (f, p, z) in stated.items()))
        save_report("fault-battery.md", "Fault battery: which check caught which fault",
                    f"seed {seed}; written by tests/test_fault_battery.py", table)


def run_checks(case_id: str, bench, good, got, tol) -> list[checks.Verdict]:
    """The checks of convcheck/suite/equivalence.py, with the good case's tolerances."""
    o, t = good.original, tol(good)
    _, labels = bench.test_set(o.spec, o.framework)
    ref = bench.outputs(o)
    return [checks.outputs_finite(case_id, got),
            checks.output_equivalence(case_id, ref, got, t),
            checks.label_agreement(case_id, ref, got, t),
            checks.accuracy_preserved(case_id, ref, got, labels, t)]


def numbers(verdicts) -> str:
    m = {k: v for verdict in verdicts for k, v in verdict.measured.items()}
    return ", ".join(f"{k} {m[k]:.4g}" for k in METRICS if k in m)


def judged(verdicts, metric: str) -> tuple[float, float]:
    """(measured value, its bound) of `metric` over run_checks' verdicts."""
    v = next(v for v in verdicts if metric in v.measured and BOUND_KEY.get(metric, metric)
             in v.tolerances)
    return v.measured[metric], v.tolerances[BOUND_KEY.get(metric, metric)]


@pytest.mark.parametrize("model, framework", [pytest.param(m, f, id=f"good-{m}-{f}")
                                              for m, f in CONTROLS])
def test_good_conversion_passes(model, framework, bench, tol, battery, good_conversion,
                                control_passes):
    good = good_conversion(model, framework)
    control_passes(battery[0], good.id,
                   run_checks(good.id, bench, good, bench.outputs(good), tol))


@pytest.mark.parametrize("fault, model, framework", [
    pytest.param(f, m, fw, id=f"{f.name}-{m}-{fw}") for f in FAULTS for m, fw in f.cases])
def test_fault_is_caught(fault, model, framework, bench, tol, battery, tmp_path,
                         good_conversion):
    good = good_conversion(model, framework)
    _, labels = bench.test_set(good.original.spec, framework)
    env = Env(bench.outputs(good), labels, tol(good))
    path = fault.make(good, tmp_path / f"{fault.name}.onnx", env)
    predictor = OrtPredictor.load(path)
    names = lambda s: ([i.name for i in s.get_inputs()], [o.name for o in s.get_outputs()])
    assert names(predictor.session) == names(good.predictor.session), "input/output names changed"

    x, _ = bench.test_set(good.original.spec, framework)
    case_id = f"{good.id}+{fault.name}"
    verdicts = run_checks(case_id, bench, good, predict_all(predictor, x), tol)
    rows, stated = battery
    rows[case_id] = verdicts

    failed = set().union(*(v.failed_metrics() for v in verdicts))
    if fault.expects:  # a control under every bound (expects nothing) must not be caught
        assert failed, f"{case_id}: NOT CAUGHT by any check ({numbers(verdicts)})"
    missing = fault.expects - failed
    assert not missing, (f"{case_id}: expected {sorted(missing)} among the failures, got "
                         f"{sorted(failed)} ({numbers(verdicts)})")
    for metric in fault.expects:  # each failure is worded with the case id and measured value
        verdict = next(v for v in verdicts if metric in v.measured)
        value = verdict.measured[metric]
        lines = [f for f in verdict.failures if f.startswith(f"{case_id}: {metric} = ")]
        assert len(lines) == 1, verdict.failures
        assert lines[0].startswith(f"{case_id}: {metric} = {value:.4g} > "), lines[0]
        bound = verdict.tolerances[BOUND_KEY.get(metric, metric)]
        assert value > bound, (metric, value, bound)
    # A fine-grained fault: the metrics it must not break stay within their bounds, so each
    # failure above is shown on its own, not only beside grosser ones.
    wrongly = sorted(fault.passes & failed)
    assert not wrongly, (f"{case_id}: {wrongly} must pass for this fault, but failed "
                         f"({numbers(verdicts)})")
    for metric in fault.passes:
        value, bound = judged(verdicts, metric)
        assert value <= bound, (metric, value, bound)
    size = "-"
    if fault.size:
        metric, lo, hi = fault.size
        value, bound = judged(verdicts, metric)
        assert lo * bound <= value <= hi * bound, (
            f"{case_id}: {metric} = {value:.4g}, {value / bound:.3g}x its bound {bound:g}; "
            f"the fault is sized for {lo:g}x-{hi:g}x")
        size = f"{metric} {value:.3g} / {bound:g} = {value / bound:.2f}x"
    if fault.exact:
        m = {k: v for verdict in verdicts for k, v in verdict.measured.items()}
        want = fault.exact(m, env)
        assert {k: m[k] for k in want} == want, (case_id, numbers(verdicts))
        size = ", ".join(f"{k} {m[k]:.4g}" for k in want)
    if fault.passes:
        if size == "-" and fault.expects:
            size = ", ".join(f"{k} {judged(verdicts, k)[0]:.3g} > {judged(verdicts, k)[1]:g}"
                             for k in sorted(fault.expects))
        stated[case_id] = (fault.expects, fault.passes, size)
