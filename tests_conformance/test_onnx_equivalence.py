"""Does the converted model compute what the original computes, on the whole held-out set?"""
from convcheck import checks


def test_converts(converted):
    """The converter ran and its artifact loads in the runtime (the fixture fails otherwise)."""
    assert converted.path.is_file(), f"{converted.id}: no artifact at {converted.path}"


def test_outputs_finite(converted, bench, expect):
    expect(checks.outputs_finite(converted.id, bench.outputs(converted)), converted)


def test_output_equivalence(converted, bench, tol, expect):
    ref, got = bench.outputs(converted.original), bench.outputs(converted)
    expect(checks.output_equivalence(converted.id, ref, got, tol(converted)), converted)


def test_label_agreement(converted, bench, tol, expect):
    ref, got = bench.outputs(converted.original), bench.outputs(converted)
    expect(checks.label_agreement(converted.id, ref, got, tol(converted)), converted)


def test_accuracy_preserved(converted, bench, tol, expect):
    o = converted.original
    _, labels = bench.test_set(o.spec, o.framework)
    ref, got = bench.outputs(o), bench.outputs(converted)
    expect(checks.accuracy_preserved(converted.id, ref, got, labels, tol(converted)), converted)
