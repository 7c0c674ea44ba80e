"""The fault battery: every check of the conformance suite can fail.

Each fault of convcheck.faults is made from a real trained original's good ONNX conversion (the
session Workbench), run on the held-out test set, and put through the same checks, with the same
tolerances, as convcheck/suite/equivalence.py. The verdict must fail and name the
metrics the fault is known to break. A control shows the good conversions pass every check, so the
battery does not fail for an unrelated reason. The caught-by table goes to
<reports>/fault-battery.md (and stdout with -s).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

from convcheck import checks, faults
from convcheck.predictors import OrtPredictor, predict_all

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


@dataclass(frozen=True)
class Fault:
    name: str
    make: Callable  # (good Converted, dst path) -> path of the faulty .onnx
    expects: frozenset  # metrics that must be among the verdicts' failures
    cases: tuple  # (model, framework) pairs it is made from


def _file_fault(fn, **kw):
    return lambda good, dst: fn(good.path, dst, **kw)


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
          lambda good, dst: faults.export_torch_train_mode(
              good.original.spec, good.original.predictor.model, dst),
          frozenset({"abs_max", "label_disagreement"}), VGG16_TORCH),
)
CONTROLS = sorted({c for f in FAULTS for c in f.cases})


@pytest.fixture(scope="module")
def battery(pytestconfig, save_report):
    """Verdicts by case id; at the end, the caught-by table (printed, and saved as a report)."""
    rows: dict = {}
    yield rows
    if rows:
        seed = pytestconfig.convcheck_bench.profile.seeds[0]
        save_report("fault-battery.md", "Fault battery: which check caught which fault",
                    f"seed {seed}; written by tests/test_fault_battery.py",
                    faults.caught_by_table(rows))


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
    return (f"abs_max {m['abs_max']:.4g}, ptol_fraction {m['ptol_fraction']:.4g}, "
            f"label_disagreement {m['label_disagreement']:.4g}, "
            f"accuracy_delta {m['accuracy_delta']:.4g}")


@pytest.mark.parametrize("model, framework", [pytest.param(m, f, id=f"good-{m}-{f}")
                                              for m, f in CONTROLS])
def test_good_conversion_passes(model, framework, bench, tol, battery, good_conversion,
                                control_passes):
    good = good_conversion(model, framework)
    control_passes(battery, good.id, run_checks(good.id, bench, good, bench.outputs(good), tol))


@pytest.mark.parametrize("fault, model, framework", [
    pytest.param(f, m, fw, id=f"{f.name}-{m}-{fw}") for f in FAULTS for m, fw in f.cases])
def test_fault_is_caught(fault, model, framework, bench, tol, battery, tmp_path,
                         good_conversion):
    good = good_conversion(model, framework)
    path = fault.make(good, tmp_path / f"{fault.name}.onnx")
    predictor = OrtPredictor.load(path)
    names = lambda s: ([i.name for i in s.get_inputs()], [o.name for o in s.get_outputs()])
    assert names(predictor.session) == names(good.predictor.session), "input/output names changed"

    x, _ = bench.test_set(good.original.spec, framework)
    case_id = f"{good.id}+{fault.name}"
    verdicts = run_checks(case_id, bench, good, predict_all(predictor, x), tol)
    battery[case_id] = verdicts

    failed = set().union(*(v.failed_metrics() for v in verdicts))
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
        bound = verdict.tolerances["ptol_budget" if metric == "ptol_fraction" else metric]
        assert value > bound, (metric, value, bound)
