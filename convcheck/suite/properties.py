"""Does the converted model agree with its original on *any* valid input, not just the test set?

For every converted case, Hypothesis draws batches from the model's whole input domain
(convcheck.fuzz.strategies: 1..max_batch images with pixels anywhere in [0, 1] -- saturated, constant,
sparse, coarse, noisy, patchy, mixed -- or token sequences of every length 0..MAX_LEN, pre-padded,
with OOV and any id) and checks the property of convcheck.fuzz.properties on each: finite outputs,
output equivalence and label agreement within the case's tolerances (the same checks and
tolerances as test_equivalence.py). A failure is shrunk to a minimal batch, saved to
<reports>/counterexamples/<case>.npz with a reproducer <case>.py, and reported with the numbers.

Examples per case and the largest batch come from the profile's `hypothesis` table in
profiles.toml; Hypothesis' own settings profile (dev / ci) from
--hypothesis-profile (convcheck/plugin/hypothesis.py). Trained and converted models are session-scoped:
no example retrains or reconverts anything.
"""
from __future__ import annotations

import pytest

from convcheck.fuzz import properties, strategies

__all__ = ["test_equivalence_property"]


def test_equivalence_property(converted, bench, tol, expect, property_config, reports_dir):
    o = converted.original
    reason = strategies.why_not(o.spec)
    if reason:
        pytest.skip(f"property tests: {o.spec.name}: {reason}")
    loaders = (f"train.load_predictor(MODELS.get({o.spec.name!r}), {o.framework!r}, "
               f"Path({str(o.path)!r}))",
               f"load_converted({converted.target.format!r}, Path({str(converted.path)!r}))")
    failure = None
    try:
        stats = properties.run_property(
            o.predictor, converted.predictor, o.spec, o.framework, converted.id,
            tol(converted), max_batch=property_config.max_batch,
            settings=property_config.settings(),
            save_dir=reports_dir / "counterexamples", loaders=loaders,
            padding=bench.padding(o.spec))
    except properties.PropertyFailed as e:
        failure, stats = e, e.stats
        print(e)  # the reproducer and Hypothesis' own report, under "Captured stdout call"
    what = "executions, shrinking included" if failure else "examples"
    print(f"{converted.id}: {stats.examples} {what}, {stats.samples} samples, "
          f"kinds {dict(stats.kinds)}, {stats.seconds:.1f}s")
    ce = failure.counterexample if failure else None
    on = ("property counterexample", ce.x, ce.ref, ce.got) if ce is not None else None
    expect(properties.verdict(converted.id, stats, failure), converted, inputs=on)
