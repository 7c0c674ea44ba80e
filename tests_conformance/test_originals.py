"""Sanity of the trained originals: later equivalence checks never run on untrained models."""
from convcheck import checks


def test_accuracy_above_floor(original, bench, tol, expect):
    _, labels = bench.test_set(original.spec, original.framework)
    expect(checks.accuracy_floor(original.id, bench.outputs(original), labels, tol(original)),
           original)
