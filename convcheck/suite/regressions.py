"""Known silent divergences of the converters, each as the smallest model that shows it.

One test per reproducer of convcheck.regressions: it builds a tiny seeded model, exports it
with one exporter of the pinned stack, compares framework and converted outputs on fixed inputs,
and holds the max abs error to the tolerances (regression_abs_max, or regression_fp16_abs_max
for float16 arithmetic). Those that pass guard against a regression of a fixed bug; those that
still diverge are strict expected failures (the reference project's expected_failures.toml,
with the number measured), so a fix shows up as XPASS. Every test records what it measured
(check "regression").

Not in ``from convcheck.suite import *``: the reproducers judge the converters of the pinned
stack, not a project's models, and which of them diverge is the stack's finding, recorded as
expected failures where the stack is pinned. A project that gates its own converter upgrades
collects them with ``from convcheck.suite.regressions import *`` and selects them with
``-m regression``; they need no trained model and take seconds each.
"""
from __future__ import annotations

import pytest

from convcheck import regressions
from convcheck.results import fail

__all__ = ["pytestmark", "test_regression"]

pytestmark = [
    pytest.mark.regression,
    pytest.mark.onnx,
    # The legacy exporter, TrainingMode and tf2onnx print notices that are not results.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.mark.parametrize("regression", [
    pytest.param(r, id=r.id, marks=[getattr(pytest.mark, r.framework)])
    for r in regressions.REGRESSIONS])
def test_regression(regression, regression_tol, regression_record, tmp_path):
    measured = regression.run(tmp_path)
    verdict = regressions.verdict(regression, measured, regression_tol(regression.framework))
    regression_record(regression, verdict)
    fail(verdict, f"behaviour: {regression.behaviour}\nknown from: {regression.origin}\n"
                  f"measured: {measured.as_dict()}")
