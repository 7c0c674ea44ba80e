"""The property test can fail: on a known-wrong conversion Hypothesis finds a counterexample and
shrinks it to a minimal one.

Each fault of convcheck.testing.faults is made from a trained original's good ONNX conversion (the
session Workbench) and put through convcheck.fuzz.properties.run_property -- the function
convcheck/suite/properties.py runs -- with the good case's tolerances. Hypothesis must
report a failure, the shrunk batch must be a single sample (and, where the fault breaks every
input, the simplest one the strategies have), and the saved counterexample must reproduce the
failure. A control shows the good conversions pass the same search. The shrunk examples go to
<reports>/property-faults.md (and stdout with -s).

Settings here are fixed (derandomize=True, no database, no explain phase): the shrunk examples
are the same on every run and do not depend on --hypothesis-profile.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import Phase
from hypothesis import settings as Settings

from convcheck.fuzz import properties, strategies
from convcheck.fuzz.strategies import Image, Tokens
from convcheck.runtimes import OrtPredictor
from convcheck.testing import faults

MAX_EXAMPLES = 100  # a cap: the search stops at the first failure
# No explain phase: on a fault that breaks every input it spends ~100 more executions to say
# "or any other generated value"; what is tested here is finding and shrinking.
SETTINGS = dict(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                print_blob=False, phases=[p for p in Phase if p != Phase.explain])
# Inputs on which a swapped height/width changes nothing: symmetric under the transpose.
SYMMETRIC_KINDS = ("black", "white", "constant")


@dataclass(frozen=True)
class Fault:
    name: str
    make: Callable  # (good conversion's path, dst) -> faulty .onnx path
    model: str
    framework: str
    minimal: object = None  # the simplest input, expected where the fault breaks every input
    not_kinds: tuple = ()  # kinds the shrunk sample cannot have (they do not expose the fault)

    @property
    def id(self) -> str:
        return f"{self.name}-{self.model}-{self.framework}"


FAULTS = (
    # Break every input: the search shrinks to the simplest sample of the domain.
    Fault("class-swap", lambda src, dst: faults.swap_output_classes(src, dst, i=0, j=1),
          "lenet5", "pytorch", minimal=Image("black")),
    Fault("class-swap", lambda src, dst: faults.swap_output_classes(src, dst, i=0, j=1),
          "lenet5", "keras", minimal=Image("black")),
    Fault("fp16-round-trip", faults.fp16_round_trip, "lenet5", "pytorch", minimal=Image("black")),
    Fault("fp16-round-trip", faults.fp16_round_trip, "lenet5", "keras", minimal=Image("black")),
    Fault("perturbed-weight", faults.perturb_weight, "lenet5", "pytorch", minimal=Image("black")),
    Fault("class-swap", lambda src, dst: faults.swap_output_classes(src, dst, i=0, j=1),
          "lstm", "pytorch", minimal=Tokens("oov", length=0)),
    # Breaks only asymmetric images: the search must leave the constant kinds behind.
    Fault("hw-swap", faults.swap_input_hw, "lenet5", "pytorch", not_kinds=SYMMETRIC_KINDS),
    Fault("hw-swap", faults.swap_input_hw, "lenet5", "keras", not_kinds=SYMMETRIC_KINDS),
)
CONTROLS = sorted({(f.model, f.framework) for f in FAULTS})


def search(good, converted_predictor, case_id: str, tol, property_config, save_dir, loaders=None,
           **settings):
    o = good.original
    return properties.run_property(
        o.predictor, converted_predictor, o.spec, o.framework, case_id, tol(good),
        max_batch=property_config.max_batch, settings=Settings(**(SETTINGS | settings)),
        save_dir=save_dir, loaders=loaders)


@pytest.fixture(scope="module")
def shrunk(save_report):
    """Shrunk counterexamples by case; at the end, a table (printed, and saved as a report)."""
    rows: dict = {}
    yield rows
    if rows:
        lines = ["| case | shrunk counterexample | executions | failing metrics | abs_max | "
                 "label disagreement |", "|---|---|---|---|---|---|"]
        for case_id, (ce, stats) in rows.items():
            m = {k: v for v in ce.verdicts for k, v in v.measured.items()}
            failed = sorted(set().union(*(v.failed_metrics() for v in ce.verdicts)))
            lines.append(f"| {case_id} | `{ce.recipes!r}` | {stats.examples} | "
                         f"{', '.join(failed)} | {m.get('abs_max', float('nan')):.3g} | "
                         f"{m.get('label_disagreement', float('nan')):.3g} |")
        save_report("property-faults.md",
                    "Property tests on known-wrong conversions: shrunk counterexamples",
                    "derandomized; written by tests/test_property_faults.py",
                    "\n".join(lines) + "\n")


@pytest.mark.parametrize("model, framework", [pytest.param(m, f, id=f"good-{m}-{f}")
                                              for m, f in CONTROLS])
def test_good_conversion_passes_the_property(model, framework, bench, tol, property_config,
                                             good_conversion, tmp_path):
    good = good_conversion(model, framework)
    try:
        # As many examples as the conformance test runs (the profile's max_examples).
        stats = search(good, good.predictor, good.id, tol, property_config, tmp_path,
                       max_examples=property_config.max_examples)
    except properties.PropertyFailed as e:
        pytest.fail(f"the good conversion fails the property, so the fault tests prove "
                    f"nothing:\n{e}", pytrace=False)
    print(f"{good.id}: {stats.as_dict()}")


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.id) for f in FAULTS])
def test_property_finds_and_shrinks_the_fault(fault, bench, tol, property_config, shrunk,
                                              good_conversion, tmp_path):
    good = good_conversion(fault.model, fault.framework)
    path = fault.make(good.path, tmp_path / f"{fault.name}.onnx")
    bad = OrtPredictor.load(path)
    case_id = f"{good.id}+{fault.name}"
    o = good.original
    loaders = (f"train.load_predictor(MODELS.get({o.spec.name!r}), {o.framework!r}, "
               f"Path({str(o.path)!r}))", f"OrtPredictor.load(Path({str(path)!r}))")

    with pytest.raises(properties.PropertyFailed) as info:
        search(good, bad, case_id, tol, property_config, tmp_path, loaders)
    e = info.value
    ce, stats = e.counterexample, e.stats
    shrunk[case_id] = (ce, stats)

    # Found and shrunk: one sample, of the simplest kind that shows the fault.
    assert len(ce.recipes) == 1, f"{case_id}: not shrunk to one sample: {ce.recipes!r}"
    if fault.minimal is not None:  # recipes may differ (constant 0.0 is black): compare inputs
        simplest = strategies.render([fault.minimal], o.spec, o.framework)
        assert np.array_equal(ce.x, simplest), (
            f"{case_id}: shrunk to {ce.recipes!r}, not the simplest input {fault.minimal!r}")
    assert ce.recipes[0].kind not in fault.not_kinds, (
        f"{case_id}: a {ce.recipes[0].kind} sample cannot show {fault.name}: {ce.recipes!r}")
    assert ce.failures and all(f.startswith(f"{case_id}: ") for f in ce.failures), ce.failures

    # Reported with the numbers, saved, and reproducible from the file alone.
    message = str(e)
    assert f"counterexample = {ce.recipes!r}" in message and str(ce.path) in message, message
    saved = np.load(ce.path)
    np.testing.assert_array_equal(saved["x"], ce.x)
    assert saved["recipes"].item() == repr(ce.recipes)
    verdicts, _, _ = properties.equivalence(o.predictor, bad, saved["x"], case_id, tol(good))
    assert any(v.failures for v in verdicts), f"{case_id}: the saved batch no longer fails"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(ce.path.with_suffix(".py").read_text(), str(ce.path), "exec"), {})
    assert "max abs diff" in out.getvalue(), out.getvalue()
