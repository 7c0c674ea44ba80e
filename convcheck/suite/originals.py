"""Sanity of the trained originals: later equivalence checks never run on untrained models."""
import pytest

from convcheck import checks
from convcheck.suite._applies import labelled

__all__ = ["test_original_answers", "test_accuracy_above_floor"]


def test_original_answers(original, bench):
    """The original trained or loaded, and answers the whole evaluation set with the declared
    task's output shape. A failure here is the one failure of its root cause: every other test
    of the original (its conversions, its attacks) skips naming this test."""
    if isinstance(original, checks.BuildFailed):
        pytest.fail(original.message, pytrace=False)
    out = bench.outputs(original)
    assert len(out) > 0, f"{original.id}: no evaluation sample"


def test_accuracy_above_floor(original, bench, tol, expect):
    _, labels = bench.test_set(original.spec, original.framework)
    labelled(original.spec, labels, "accuracy floor")
    expect(checks.accuracy_floor(original.id, bench.outputs(original), labels, tol(original)),
           original)
