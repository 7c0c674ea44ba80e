"""Every result a check, a build or a property run produces, and the one failure grammar.

A check returns a Verdict: the figures it measured, the tolerances it judged them by, and each
failure worded ``<case>: <metric> <detail>`` (e.g. ``lenet5-keras-onnx-s0: abs_max = 3e-4 >
1e-5 (default), worst sample 17``), with the failing metric recorded beside the text so that
nothing parses a message back. A Measurement is a figure no tolerance judges. A BuildFailed is
what the owning test of a failed build (an original, a conversion, an attack) gets. CheckFailed
is how a verdict fails a pytest test (`fail`); expected failures read its verdict.

Project code imports results from here (``from convcheck.results import Verdict, fail``); the
check functions themselves are in convcheck.checks, the property runner's results in
convcheck.fuzz.properties.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest

# tol(key) -> (value, source): the tolerance lookup for one case
Lookup = Callable[[str], tuple[float, str]]


@dataclass
class Verdict:
    case_id: str
    check: str
    measured: dict
    tolerances: dict = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # the text, one line per failure
    failed: list[str] = field(default_factory=list)  # the metric of each failure, in order

    @property
    def passed(self) -> bool:
        return not self.failures

    def failed_metrics(self) -> set[str]:
        return set(self.failed)

    def without(self, metrics) -> "Verdict":
        """The verdict with the failures of `metrics` left out (kept as measured figures)."""
        kept = [(m, f) for m, f in zip(self.failed, self.failures) if m not in set(metrics)]
        self.failed, self.failures = [m for m, _ in kept], [f for _, f in kept]
        return self

    def fail(self, metric: str, detail: str) -> None:
        """Record a failure of `metric`: '<case>: <metric> <detail>', e.g. detail
        '= 3e-4 > 1e-4 (default)'. Every failure goes through here, so the metrics that failed
        are known without reading the text back."""
        self.failed.append(metric)
        self.failures.append(f"{self.case_id}: {metric} {detail}")

    def message(self) -> str:
        return "\n".join(self.failures)

    def limit(self, metric: str, value: float, tol: Lookup, key: str | None = None,
              where: str = "") -> None:
        """Fail unless value <= the tolerance `key` (default: the metric's own name)."""
        bound, source = tol(key or metric)
        self.tolerances[key or metric] = bound
        if not value <= bound:  # NaN fails too
            self.fail(metric, f"= {value:.4g} > {bound:g} ({source})"
                              f"{', ' + where if where else ''}")


@dataclass
class Measurement:
    """A figure recorded for the tables that no tolerance judges: it neither passes nor fails
    (a timing; R(m, c) while its bound is off). Recorded without a verdict."""
    case_id: str
    check: str
    measured: dict


@dataclass(frozen=True)
class BuildFailed:
    """A build (an original, a conversion, an adversarial set) that failed, as its owning test
    gets it (test_original_answers, test_converts, test_attack_effective): that test fails in
    its own call with the builder's message; the other tests that need the build skip."""
    kind: str  # "original", "conversion" or "attack"
    case_id: str
    message: str


# A comparison's verdicts, worst first (the order the reports list them in).
REGRESSED, MISSING, NEW = "regressed", "missing", "new"
IMPROVED, UNCHANGED = "improved", "unchanged"
CHANGE_ORDER = (REGRESSED, MISSING, NEW, IMPROVED, UNCHANGED)


@dataclass(frozen=True)
class Change:
    """One figure (or outcome) of one case and check, in the baseline run and in the candidate
    run, and what the gate makes of the difference. metric "passed" / "outcome" compare the
    verdict or the test's outcome themselves; `why` says which rule decided, with its numbers."""
    case: str
    check: str
    metric: str
    baseline: object  # a number, a word ("passed", "failed"), or None where absent
    candidate: object
    verdict: str  # one of CHANGE_ORDER
    why: str = ""

    @property
    def ratio(self) -> float | None:
        """candidate / baseline for two positive numbers, else None."""
        b, c = self.baseline, self.candidate
        if isinstance(b, (int, float)) and isinstance(c, (int, float)) and not isinstance(
                b, bool) and not isinstance(c, bool) and b > 0 and c == c:  # c == c: not NaN
            return c / b
        return None


@dataclass
class RunFacts:
    """What a run was: its directory and the facts its run.json keeps."""
    path: str
    run: str = ""
    profile: str = ""
    versions: dict = field(default_factory=dict)
    data: list = field(default_factory=list)
    started: str = ""


@dataclass
class Comparison:
    """A candidate run against its baseline: every Change, the notes on what could not be
    compared like for like (different data, profile), and the gate's rules as applied."""
    baseline: RunFacts
    candidate: RunFacts
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rules: dict = field(default_factory=dict)  # gate key -> (value, source)
    missing_is_regression: bool = True

    def of(self, verdict: str) -> list[Change]:
        return [c for c in self.changes if c.verdict == verdict]

    @property
    def regressions(self) -> list[Change]:
        return self.of(REGRESSED) + (self.of(MISSING) if self.missing_is_regression else [])

    @property
    def passed(self) -> bool:
        return not self.regressions

    def counts(self) -> dict[str, int]:
        return {v: len(self.of(v)) for v in CHANGE_ORDER}


# A variant's tensor whose SQNR against its base graph is above this is the base's own value
# within float32 rounding (float32 rounding noise sits near 140 dB): nothing is lost there.
EXACT_DB = 120.0


def _db(v: float) -> str:
    return f"{v:.1f} dB" + (" (exact)" if v >= EXACT_DB else "")


def _variant_lines(found: dict, base_id: str) -> list[str]:
    """A precision variant's loss against the conversion it was made from
    (convcheck.locate.variant.compare), a line per finding."""
    if not found.get("tensors_compared"):
        return [f"the variant shares no tensor name with {base_id}: its loss is not localised"]
    lines = []
    if "operations" in found:
        lines.append(
            f"operation that loses the most against {base_id}: "
            f"{' -> '.join(found['operations'])}: SQNR {_db(found['input_sqnr_db'])} at its "
            f"inputs, {_db(found['sqnr_db'])} at its output (onnxruntime's qdq_loss_debug, "
            f"{found['tensors_compared']} tensors compared)")
    if "output_sqnr_db" in found:
        lines.append(f"  the output's SQNR against {base_id}: {_db(found['output_sqnr_db'])}")
    if "weight" in found:
        lines.append(f"  worst quantized weight: {found['weight']!r} ({found['weight_db']:.1f} dB)")
    return lines


@dataclass
class Localisation:
    """Where a conversion first diverges from its original, on the failing inputs.

    `node` is the first operation of the converted graph between the last tensor that still
    agrees with a layer of the original and the first that does not (`layer`); `path` holds
    every operation in between. `runtime_node` is the first operation where onnxruntime leaves
    the ONNX reference semantics (a runtime bug); `first` says which of the two came first.
    `weights` lists the original's parameters whose copy in the graph changed."""
    case_id: str
    samples: list[int]
    node: str | None = None
    op_type: str | None = None
    layer: str | None = None  # the original's layer whose output first disagrees
    tensor: str | None = None  # the graph tensor closest to that layer's output
    error: float | None = None  # relative error at the node's output (of the layer's scale)
    input_errors: dict = field(default_factory=dict)  # input tensor -> relative error
    path: list[str] = field(default_factory=list)  # "op_type name", in graph order
    runtime_node: str | None = None
    runtime_op_type: str | None = None
    runtime_error: float | None = None
    runtime_compared: int = 0  # tensors compared between onnxruntime and the ONNX reference
    first: str | None = None  # "conversion", "runtime" or None (neither diverges)
    weights: list[dict] = field(default_factory=list)  # param, initializer, max_diff, relative
    layers_compared: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    bound: float = 0.0  # the relative error a tensor may differ by (locate_rel)
    against: str = "original"  # what the graph is compared with ("golden graph" on replay)
    inputs: str = "test set"  # which inputs `samples` index: the test set, an attack's
    # adversarial examples ("fgsm adversarial examples"), a property's counterexample
    # A precision variant's loss against the conversion it was made from
    # (convcheck.locate.variant.compare); empty for any other conversion.
    variant: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    def text(self) -> str:
        """The failure's localisation, a line per finding."""
        lines = []
        if self.variant:
            lines += _variant_lines(self.variant, self.against)
        if self.node:
            ins = ", ".join(f"{k} {v:.3g}" for k, v in self.input_errors.items())
            lines.append(f"first diverging operation: {self.op_type} {self.node!r}: the "
                         f"{self.against}'s {self.layer!r} and the graph's {self.tensor!r} "
                         f"differ by "
                         f"{self.error:.3g} of their scale (> {self.bound:g})"
                         f"{'; its inputs agree (' + ins + ')' if ins else ''}")
            if len(self.path) > 1:
                lines.append(f"  operations between the last agreeing tensor and it: "
                             f"{', '.join(self.path)}")
        elif self.layers_compared:
            lines.append(f"every one of the {self.against}'s {self.layers_compared} layer outputs "
                         f"agrees with the graph within {self.bound:g}")
        if self.runtime_node:
            lines.append(f"onnxruntime leaves the ONNX reference first at {self.runtime_op_type} "
                         f"{self.runtime_node!r} (error {self.runtime_error:.3g})")
        elif self.runtime_compared:
            lines.append(f"onnxruntime agrees with the ONNX reference on every tensor "
                         f"({self.runtime_compared} compared)")
        if self.first:
            lines.append(f"diverges first: the {self.first}")
        for w in self.weights:
            lines.append(f"changed weight: {w['param']} (initializer {w['initializer']!r}): "
                         f"largest difference {w['max_diff']:.3g} ({w['relative']:.3g} of its "
                         f"scale)")
        lines += [f"note: {n}" for n in self.notes]
        shown = ", ".join(map(str, self.samples[:8])) + (", ..." if len(self.samples) > 8 else "")
        lines.append(f"(localised on sample(s) {shown} of the {self.inputs} in "
                     f"{self.seconds:.2f} s)")
        return "\n".join(lines)


class CheckFailed(pytest.fail.Exception):
    """A check's failure, carrying its Verdict (expected failures compare its figures)."""

    def __init__(self, verdict: Verdict, detail: str = ""):
        super().__init__(verdict.message() + (f"\n{detail}" if detail else ""), pytrace=False)
        self.verdict = verdict


def fail(verdict: Verdict, detail: str = "") -> None:
    """Fail the running test with the verdict's failures (its numbers), unless it passed.

    Raises CheckFailed (a pytest failure) when verdict.passed is false; returns otherwise."""
    if not verdict.passed:
        raise CheckFailed(verdict, detail)
