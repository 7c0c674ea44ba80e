"""Does the converted model compute what the original computes, on the whole held-out set?

The same checks for every target; targets whose runtime exists on one OS only are skipped
elsewhere (their conversion is still checked everywhere, in test_conversion.py)."""
from convcheck import checks


def test_loads_in_runtime(converted, bench):
    """The converted model loads in its runtime and answers a one-sample batch."""
    x, _ = bench.test_set(converted.original.spec, converted.original.framework)
    out = converted.predictor.predict(x[:1])
    n = converted.original.spec.num_classes
    assert out.shape == (1, n), f"{converted.id}: output shape {out.shape}, expected (1, {n})"


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
