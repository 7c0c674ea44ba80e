"""Does the converted model compute what the original computes, on the whole held-out set?

The same checks for every target; targets whose runtime exists on one OS only are skipped
elsewhere (their conversion is still checked everywhere, in test_conversion.py)."""
from convcheck import checks
from convcheck.suite._applies import classifier, labelled

__all__ = ["test_loads_in_runtime", "test_outputs_finite", "test_output_equivalence",
           "test_label_agreement", "test_accuracy_preserved"]


def test_loads_in_runtime(converted, bench):
    """The converted model loads in its runtime and answers a one-sample batch."""
    x, _ = bench.test_set(converted.original.spec, converted.original.framework)
    out = converted.predictor.predict(x[:1])
    want = converted.original.spec.output_shape(1)
    assert out.shape == want, f"{converted.id}: output shape {out.shape}, expected {want}"


def test_outputs_finite(converted, bench, expect):
    expect(checks.outputs_finite(converted.id, bench.outputs(converted)), converted)


def test_output_equivalence(converted, bench, tol, expect):
    ref, got = bench.outputs(converted.original), bench.outputs(converted)
    expect(checks.output_equivalence(converted.id, ref, got, tol(converted)), converted)


def test_label_agreement(converted, bench, tol, expect):
    classifier(converted.original.spec, "label agreement")
    ref, got = bench.outputs(converted.original), bench.outputs(converted)
    expect(checks.label_agreement(converted.id, ref, got, tol(converted)), converted)


def test_accuracy_preserved(converted, bench, tol, expect):
    o = converted.original
    _, labels = bench.test_set(o.spec, o.framework)
    labelled(o.spec, labels, "accuracy preserved")
    ref, got = bench.outputs(o), bench.outputs(converted)
    expect(checks.accuracy_preserved(converted.id, ref, got, labels, tol(converted)), converted)
