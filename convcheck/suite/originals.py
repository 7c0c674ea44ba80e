"""Sanity of the trained originals: later equivalence checks never run on untrained models."""
from convcheck import checks
from convcheck.suite._applies import labelled

__all__ = ["test_accuracy_above_floor"]


def test_accuracy_above_floor(original, bench, tol, expect):
    _, labels = bench.test_set(original.spec, original.framework)
    labelled(original.spec, labels, "accuracy floor")
    expect(checks.accuracy_floor(original.id, bench.outputs(original), labels, tol(original)),
           original)
