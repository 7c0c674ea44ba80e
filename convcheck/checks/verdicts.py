"""The properties a converted model must keep, as pure functions returning a Verdict.

Each check measures its metrics, compares each with its tolerance, and words every failure in
one grammar: ``<case>: <metric> = <value> > <tolerance> (<source>) [, <where>]``. The tests in
tests_conformance/ assert these verdicts; the project's own tests run the same checks on
conversions known to be wrong and expect them to fail.
"""
from __future__ import annotations

import numpy as np

from convcheck.checks import metrics
from convcheck.results import BuildFailed, Lookup, Measurement, Verdict  # noqa: F401


def output_equivalence(case_id: str, ref: np.ndarray, got: np.ndarray, tol: Lookup,
                       check: str = "output_equivalence") -> Verdict:
    """Absolute and relative error of the last layer (eq. 1, 2) and a ptol-style budget."""
    atol, _ = tol("ptol_atol")
    rtol, _ = tol("ptol_rtol")
    rel_floor, _ = tol("rel_floor")
    e = metrics.output_errors(ref, got, atol=atol, rtol=rtol, rel_floor=rel_floor)
    v = Verdict(case_id, check, e.as_dict(),
                {"ptol_atol": atol, "ptol_rtol": rtol, "rel_floor": rel_floor})
    v.tolerances["nonfinite"] = 0
    if e.nonfinite:
        v.fail("nonfinite", f"= {e.nonfinite:.4g} > 0 (NaN/Inf never passes)")
    at = f"worst sample {e.worst_sample}"
    v.limit("abs_max", e.abs_max, tol, where=at)
    v.limit("abs_mean", e.abs_mean, tol)
    v.limit("abs_p99", e.abs_p99, tol)
    v.limit("rel_max", e.rel_max, tol)
    v.limit("rel_mean", e.rel_mean, tol)
    v.limit("ptol_fraction", e.ptol_fraction, tol, key="ptol_budget",
            where=f"outside {atol:g} + {rtol:g}*|y|, worst sample {e.ptol_worst_sample}")
    return v


def outputs_finite(case_id: str, got: np.ndarray) -> Verdict:
    bad = ~np.isfinite(got)
    rows = np.flatnonzero(bad.any(axis=1))
    v = Verdict(case_id, "outputs_finite", {"nonfinite": int(bad.sum())}, {"nonfinite": 0})
    if len(rows):
        v.fail("nonfinite", f"= {int(bad.sum()):.4g} > 0 (NaN/Inf never passes), "
                            f"first in sample {rows[0]} ({len(rows)} samples)")
    return v


def label_agreement(case_id: str, ref: np.ndarray, got: np.ndarray, tol: Lookup,
                    near_boundary: bool = False) -> Verdict:
    """The share of samples the converted model labels differently from the original.

    near_boundary: leave out samples the original labels by a margin below `decision_margin`
    (for inputs drawn anywhere in the domain, where near-uniform outputs are common and two
    models within abs_max of each other may label them either way). Every sample is still held
    to the output bounds; a batch with none left compares no label and says so in n_boundary."""
    keep = np.arange(len(ref))
    if near_boundary and ref.shape[1] > 1:  # one output column has no runner-up
        keep = np.flatnonzero(metrics.margins(ref) >= tol("decision_margin")[0])
    share, idx = metrics.label_disagreement(ref[keep], got[keep]) if len(keep) else (0.0, keep)
    idx = keep[idx]
    measured = {"label_disagreement": share, "n_disagree": len(idx), "n_samples": len(keep)}
    if near_boundary:
        measured["n_boundary"] = len(ref) - len(keep)
    v = Verdict(case_id, "label_disagreement", measured)
    if not len(keep) and not near_boundary:  # a drawn batch may leave none: its run judges that
        v.tolerances["label_disagreement"] = tol("label_disagreement")[0]
        v.fail("label_disagreement", f"= nan: no sample to compare (0 of {len(ref)})")
        return v
    v.limit("label_disagreement", share, tol,
            where=f"{len(idx)} of {len(keep)} samples, first {idx[:5].tolist()}"
                  f"{_boundary_note(len(ref) - len(keep), len(ref), tol)}")
    return v


def accuracy_preserved(case_id: str, ref: np.ndarray, got: np.ndarray, labels: np.ndarray,
                       tol: Lookup) -> Verdict:
    before, after = metrics.accuracy(ref, labels), metrics.accuracy(got, labels)
    v = Verdict(case_id, "accuracy_preserved",
                {"accuracy_original": before, "accuracy_converted": after,
                 "accuracy_delta": abs(after - before)})
    v.limit("accuracy_delta", abs(after - before), tol,
            where=f"original {before:.4f}, converted {after:.4f}")
    return v


def accuracy_floor(case_id: str, probs: np.ndarray, labels: np.ndarray, tol: Lookup) -> Verdict:
    """A trained original must be well above chance before anything is compared with it."""
    acc = metrics.accuracy(probs, labels)
    majority = float(np.bincount(labels).max() / len(labels))
    v = Verdict(case_id, "accuracy_floor", {"accuracy": acc, "majority_rate": majority})
    bound, source = tol("accuracy_floor")
    v.tolerances["accuracy_floor"] = bound
    if not acc >= bound:
        v.fail("accuracy", f"= {acc:.4f} < floor {bound:g} ({source}), "
                           f"majority-class rate {majority:.4f} on {len(labels)} samples")
    return v


def artifact_declares(case_id: str, described: dict, expected: dict) -> Verdict:
    """A converted artifact's spec says what was asked: model type, input/output names, types,
    dtypes and shapes, and the storage type of its weights. Records its size on disk.

    described/expected: convcheck.conversion.runner.describe_coreml / coreml_expected. A declared output
    shape may leave the batch out or be empty: coremltools declares none under a ranged batch."""
    v = Verdict(case_id, "artifact_declares", described)

    def differ(what, got, want):
        if got != want:
            v.fail(what, f"= {got!r}, expected {want!r}")

    differ("model_type", described["model_type"], expected["model_type"])
    for kind in ("inputs", "outputs"):
        got_all, want_all = described[kind], expected[kind]
        differ(f"{kind} names", sorted(got_all), sorted(want_all))
        for name in sorted(set(got_all) & set(want_all)):
            got, want = got_all[name], want_all[name]
            differ(f"{name} type", got["type"], want["type"])
            differ(f"{name} dtype", got["dtype"], want["dtype"])
            if kind == "inputs":
                differ(f"{name} shape", got["shape"], want["shape"])
            elif got["shape"]:
                differ(f"{name} shape (past the batch)", got["shape"][1:], want["shape"][1:])
    weights, want = described["weights"], expected["weights"]
    if not weights.get(want) or any(n for k, n in weights.items() if k != want):
        v.fail("weights", f"stored as {weights} (elements per type), expected all {want}")
    return v


def model_size(case_id: str, original_bytes: int, converted_bytes: int, tol: Lookup,
               against: str = "original") -> Verdict:
    """Size on disk (every file of each artifact): the converted model must not outgrow the
    original (a variant: the conversion it was made from, `against`) by more than
    `size_ratio`."""
    ratio = converted_bytes / original_bytes
    v = Verdict(case_id, "model_size", {"size_original": original_bytes,
                                        "size_converted": converted_bytes, "size_ratio": ratio,
                                        "against": against})
    v.limit("size_ratio", ratio, tol,
            where=f"{against} {original_bytes:,} bytes, converted {converted_bytes:,} bytes")
    return v


def timing(case_id: str, measurement: str, seconds: list[float], samples: int = 0
           ) -> Measurement:
    """A timing (seconds per round; "time_<measurement>"), recorded for the tables. Absolute
    times are not judged (they depend on the machine): speed_ratio compares them in one run."""
    a = np.asarray(seconds, dtype=float)
    return Measurement(case_id, "time_" + measurement.replace(" ", "_"), {
        "median_s": float(np.median(a)), "mean_s": float(a.mean()),
        "stddev_s": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "min_s": float(a.min()),
        "rounds": len(a), "samples": samples})


def speed_ratio(case_id: str, pairs: dict, tol: Lookup, against: str = "original") -> Verdict:
    """Converted vs original time per measurement (pairs: measurement -> convcheck.checks.paired_timing.Pairs,
    the two timed in interleaved rounds). The figure is the median of the per-pair ratios; a
    measurement fails only when its whole confidence interval lies above speed_ratio, i.e. when
    the interval's lower end does (a noisy run widens the interval instead of failing)."""
    measured = {"against": against}
    v = Verdict(case_id, "speed_ratio", measured)
    for name, p in pairs.items():
        key = name.replace(" ", "_")
        m = p.as_dict()
        measured |= {f"{key}_{k}": x for k, x in m.items()}
        v.limit(f"{key}_ratio_low", m["ratio_low"], tol, key="speed_ratio",
                where=f"the lower end of the {m['confidence']:.1%} interval of the median "
                      f"ratio {m['ratio']:.3g} ({m['ratio_low']:.3g}-{m['ratio_high']:.3g}) over "
                      f"{m['pairs']} interleaved pairs"
                      + (f" of {m['samples']} samples" if m.get("samples") else "")
                      + f"; median {against} "
                      f"{m['original_s'] * 1e3:.3f} ms, converted {m['converted_s'] * 1e3:.3f} "
                      f"ms; load {m['load_before']:.2f} -> {m['load_after']:.2f}"
                      + (f"; {m['threads']} thread{'s' if m['threads'] != 1 else ''} per "
                         f"runtime" if m.get("threads") else ""))
    return v


# --------------------------------------------------------------------------- robustness


def attack_effective(case_id: str, changed: np.ndarray, success_rate: float, must_change: bool,
                     tol: Lookup, report: dict | None = None) -> Verdict:
    """An adversarial set tests something: its examples differ from their inputs where the
    attack always moves them (an unchanged example means the attack did not run on it), and
    the attack fools the original on at least `attack_success_floor` of them. `report`: what
    the attack said of itself (AdversarialSet.info), recorded beside."""
    unchanged = np.flatnonzero(~changed)
    v = Verdict(case_id, "attack_effective",
                {**(report or {}), "n_samples": len(changed), "unchanged": len(unchanged),
                 "success_rate_original": success_rate})
    if must_change:
        v.tolerances["unchanged"] = 0
        if len(unchanged):
            v.fail("unchanged",
                   f"= {len(unchanged)} > 0 (the attack did not run on them), {len(unchanged)} of "
                   f"{len(changed)} adversarial examples equal their input (or the start of "
                   f"their walk), first {unchanged[:5].tolist()}")
    bound, source = tol("attack_success_floor")
    v.tolerances["attack_success_floor"] = bound
    if not success_rate >= bound:
        v.fail("success_rate_original", f"= {success_rate:.4f} < floor {bound:g} ({source}): "
                                        f"the attack barely fools the original, so comparing "
                                        f"a conversion's robustness tests little")
    return v


def adversarial_rates(labels: np.ndarray, ref_clean: np.ndarray, ref_adv: np.ndarray,
                      got_clean: np.ndarray, got_adv: np.ndarray,
                      tol: Lookup) -> metrics.SuccessRates:
    """Success rates on both models over the original's seeds, leaving out examples within
    `decision_margin` of the original's decision boundary (see tolerances.toml)."""
    return metrics.success_rates(labels, ref_clean, ref_adv, got_clean, got_adv,
                                 margin=tol("decision_margin")[0])


def _boundary_note(n_boundary: int, total: int, tol: Lookup) -> str:
    return (f"; {n_boundary} of {total} within decision_margin {tol('decision_margin')[0]:g} "
            f"of the boundary left out" if n_boundary else "")


def _nothing_compared(v: Verdict, metric: str, total: int, why: str) -> None:
    """A comparison over no example tells nothing: it fails, saying why none was left."""
    v.fail(metric, f"= nan: no adversarial example to compare, 0 of {total} left ({why})")


def success_rate_preserved(case_id: str, labels: np.ndarray, ref_clean: np.ndarray,
                           ref_adv: np.ndarray, got_clean: np.ndarray, got_adv: np.ndarray,
                           tol: Lookup) -> Verdict:
    """The attack's success rate on the converted model vs on the original, over the same
    adversarial examples for both: those whose seed the original classifies correctly (the
    sample does not depend on the model under test). The conversion's own errors on those clean
    seeds are a label disagreement: counted apart (clean_disagreement, judged by
    label_disagreement; seeds within decision_margin of the original's boundary left out)."""
    margin = tol("decision_margin")[0]
    r = adversarial_rates(labels, ref_clean, ref_adv, got_clean, got_adv, tol)
    wrong, n_clean = metrics.clean_errors(labels, ref_clean, got_clean, margin)
    clean_share = len(wrong) / n_clean if n_clean else 0.0
    delta = abs(r.converted - r.original)
    v = Verdict(case_id, "success_rate", {"success_rate_original": r.original,
                                          "success_rate_converted": r.converted,
                                          "success_rate_delta": delta, "n_samples": r.n,
                                          "n_boundary": r.n_boundary, "n_seeds": len(labels),
                                          "clean_errors": len(wrong), "n_clean": n_clean,
                                          "clean_disagreement": clean_share})
    v.limit("clean_disagreement", clean_share, tol, key="label_disagreement",
            where=f"{len(wrong)} of {n_clean} seeds the original classifies correctly are "
                  f"misclassified by the conversion before any attack, first "
                  f"{wrong[:5].tolist()}")
    if r.n == 0:
        _nothing_compared(v, "success_rate_delta", len(labels),
                          f"{r.n_boundary} within decision_margin {margin:g} of the boundary, "
                          f"{len(labels) - r.n_boundary} whose clean seed the original "
                          f"misclassifies")
        return v
    count = lambda rate: round(rate * r.n)  # noqa: E731
    v.limit("success_rate_delta", delta, tol,
            where=f"original {r.original:.4f} ({count(r.original)} of {r.n}), converted "
                  f"{r.converted:.4f} ({count(r.converted)} of {r.n}; seeds the original "
                  f"classifies correctly{_boundary_note(r.n_boundary, len(labels), tol)})")
    return v


def adversarial_agreement(case_id: str, ref_adv: np.ndarray, got_adv: np.ndarray,
                          tol: Lookup) -> Verdict:
    """The share of adversarial examples the conversion labels differently from the original
    (the study's Tables V, VI), leaving out those within `decision_margin` of the boundary."""
    decided = np.flatnonzero(metrics.margins(ref_adv) >= tol("decision_margin")[0])
    n_boundary = len(ref_adv) - len(decided)
    if len(decided) == 0:
        v = Verdict(case_id, "adversarial_disagreement",
                    {"adversarial_disagreement": float("nan"), "n_samples": 0,
                     "n_boundary": n_boundary})
        _nothing_compared(v, "adversarial_disagreement", len(ref_adv),
                          f"all within decision_margin {tol('decision_margin')[0]:g} of the "
                          f"boundary")
        return v
    share, idx = metrics.label_disagreement(ref_adv[decided], got_adv[decided])
    v = Verdict(case_id, "adversarial_disagreement",
                {"adversarial_disagreement": share, "n_disagree": len(idx),
                 "n_samples": len(decided), "n_boundary": n_boundary})
    v.limit("adversarial_disagreement", share, tol,
            where=f"{len(idx)} of {len(decided)} examples, first {decided[idx[:5]].tolist()}"
                  f"{_boundary_note(n_boundary, len(ref_adv), tol)}")
    return v


def robustness_indicator(case_id: str, rates: dict[str, metrics.SuccessRates],
                         tol: Lookup) -> Verdict:
    """|R(m, c)| (convcheck.checks.metrics.robustness_indicator) over the run's attacks on the model."""
    pairs = {a: (r.original, r.converted) for a, r in rates.items()}
    r = metrics.robustness_indicator(pairs)
    v = Verdict(case_id, "robustness_indicator",
                {"robustness_indicator": r, "attacks": sorted(rates),
                 **{f"success_rate_{a}_original": o for a, (o, _) in pairs.items()},
                 **{f"success_rate_{a}_converted": c for a, (_, c) in pairs.items()}})
    v.limit("robustness_indicator", abs(r), tol, where=f"R = {r:+.4f} over " + ", ".join(
        f"{a} {o:.4f} -> {c:.4f}" for a, (o, c) in sorted(pairs.items())))
    return v
