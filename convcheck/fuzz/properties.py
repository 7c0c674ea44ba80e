"""Property-based equivalence: a converted model agrees with its original on *any* valid input.

`equivalence` is the property, a plain function of a predictor pair and one batch: the same
checks as tests_conformance/test_equivalence.py (finite outputs, output equivalence, label
agreement) with the case's tolerances, every output element judged (the test-set aggregates
abs_mean, abs_p99 and rel_mean are recorded, not judged: see AGGREGATES). `run_property` lets Hypothesis search the input domain
(convcheck.fuzz.strategies) for a batch that breaks it. On a failure Hypothesis shrinks the batch; the
minimal one is saved (``<dir>/<case>.npz``: inputs, both outputs, the recipes) beside a Python
snippet that reproduces it, and `PropertyFailed` carries it all. The conformance test and the
project's fault tests (tests/test_property_faults.py) run this same code, so a property that
cannot fail is caught. No pytest here.
"""
from __future__ import annotations

import textwrap
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import given, note, target
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from convcheck import checks
from convcheck.declarations.spec import ModelSpec
from convcheck.fuzz import strategies

CHECK = "property_equivalence"
# Statistics of a whole test set: measured and recorded on every batch, not judged. On a batch
# of 1-8 samples they are no population statistic (with 2 classes and one sample, abs_mean and
# abs_p99 *are* abs_max), and their tolerances (1e-6 by default) were set for 1,000 samples.
# Every element is still held to abs_max, rel_max and the ptol budget (atol + rtol * |y|).
AGGREGATES = ("abs_mean", "abs_p99", "rel_mean")


def equivalence(original, converted, x: np.ndarray, case_id: str,
                tol: checks.Lookup) -> tuple[list[checks.Verdict], np.ndarray, np.ndarray]:
    """The property on one batch: verdicts (finite, output equivalence, labels) and both outputs.
    An original that fails on the batch is a declaration problem, not a conversion's: the one
    verdict says the drawn input lies outside what the model takes."""
    try:
        ref = np.asarray(original.predict(x), dtype=np.float32)
    except Exception as e:  # noqa: BLE001 -- any failure of the original, said as such
        v = checks.Verdict(case_id, "input_domain", {"original_error": f"{type(e).__name__}: {e}"})
        v.fail("input_domain", f"= outside: the original itself fails on this drawn batch "
                               f"({type(e).__name__}: {str(e)[:200]}): the declared input "
                               f"(shape, range, vocab_size, pad_id, padding) admits inputs the "
                               f"model does not take; not a divergence of the conversion")
        return [v], np.zeros((len(x), 0), np.float32), np.zeros((len(x), 0), np.float32)
    got = np.asarray(converted.predict(x), dtype=np.float32)
    if ref.shape != got.shape:
        v = checks.Verdict(case_id, "output_shape", {"shape_original": ref.shape,
                                                     "shape_converted": got.shape})
        v.fail("output_shape", f"= {got.shape}, expected {ref.shape}")
        return [v], ref, got
    outputs = checks.output_equivalence(case_id, ref, got, tol).without(AGGREGATES)
    return [checks.outputs_finite(case_id, got), outputs,
            checks.label_agreement(case_id, ref, got, tol, near_boundary=True)], ref, got


@dataclass
class Counterexample:
    recipes: list  # the shrunk batch, as convcheck.fuzz.strategies recipes
    x: np.ndarray
    ref: np.ndarray
    got: np.ndarray
    verdicts: list
    path: Path | None = None  # the saved .npz
    snippet: str = ""

    @property
    def failures(self) -> list[str]:
        return [f for v in self.verdicts for f in v.failures]


@dataclass
class Stats:
    """What one property run tried: per-example counts and the worst errors seen."""

    examples: int = 0  # executions of the property (shrinking included, when it failed)
    samples: int = 0
    kinds: Counter = field(default_factory=Counter)
    batch_sizes: Counter = field(default_factory=Counter)
    worst: dict = field(default_factory=dict)  # metric -> largest value over the examples
    worst_batch: str = ""  # repr of the batch that gave the largest abs_max
    seconds: float = 0.0
    label_batches: int = 0  # batches whose labels were compared (judged or left out)
    labels_compared: int = 0  # samples outside decision_margin whose labels were compared
    shrink_stopped: bool = False  # shrinking ran out of its budget (SHRINK_SECONDS)

    def add(self, recipes, verdicts) -> None:
        self.examples += 1
        self.samples += len(recipes)
        self.kinds.update(r.kind for r in recipes)
        self.batch_sizes[len(recipes)] += 1
        for v in verdicts:
            if v.check == "label_disagreement":
                self.label_batches += 1
                self.labels_compared += int(v.measured["n_samples"])
            for k in ("abs_max", "rel_max", "ptol_fraction", "label_disagreement", "nonfinite"):
                if k in v.measured:
                    value = float(v.measured[k])
                    old = self.worst.get(k, -np.inf)
                    if np.isnan(value) or value > old:
                        self.worst[k] = value
                        if k == "abs_max":
                            self.worst_batch = repr(list(recipes))

    def as_dict(self) -> dict:
        return {"examples": self.examples, "samples": self.samples,
                "kinds": dict(sorted(self.kinds.items())),
                "batch_sizes": dict(sorted(self.batch_sizes.items())),
                **{f"worst_{k}": v for k, v in self.worst.items()},
                "worst_batch": self.worst_batch,
                "labels_compared": self.labels_compared,
                "seconds": round(self.seconds, 3),
                **({"shrink_stopped": True} if self.shrink_stopped else {})}


class PropertyFailed(AssertionError):
    """Hypothesis found (and shrank) a batch on which the property fails."""

    def __init__(self, message: str, summary: list[str], counterexample: Counterexample,
                 stats: Stats):
        super().__init__(message)
        self.summary = summary  # the failures, one line each, in convcheck.checks' grammar
        self.counterexample, self.stats = counterexample, stats


# Shrinking's budget: past it, the smallest failing batch found so far is the counterexample.
# Why: shrinking replays the two models once per candidate, and on a large program it can cost
# far more than the search (the Keras VGG-16's palettized ML program on the reference
# interpreter: 963 executions, 200 s, shrinking a 48-cell grid). The verdict is the same; the
# counterexample is less simple. Hypothesis' own limit is its engine's MAX_SHRINKING_SECONDS
# (300 s), which it leaves monkeypatchable for this (hypothesis/internal/conjecture/engine.py).
SHRINK_SECONDS = 30.0
# What Hypothesis reports when it stops at that limit (its wording assumes its own 300 s).
_STOPPED = "WARNING: Hypothesis has spent more than"


@contextmanager
def _shrink_budget(seconds: float, stats: "Stats"):
    """Hypothesis' shrinking limited to `seconds` while in this block; its report of stopping
    there is noted in `stats` (shrink_stopped), not printed."""
    from hypothesis.internal.conjecture import engine
    from hypothesis.reporting import current_reporter, with_reporter

    outer, saved = current_reporter(), engine.MAX_SHRINKING_SECONDS

    def reporter(value) -> None:
        if isinstance(value, str) and value.startswith(_STOPPED):
            stats.shrink_stopped = True
        else:
            outer(value)

    engine.MAX_SHRINKING_SECONDS = seconds
    try:
        with with_reporter(reporter):
            yield
    finally:
        engine.MAX_SHRINKING_SECONDS = saved


class _Falsified(AssertionError):
    """Raised inside the Hypothesis test: the property failed on this batch."""


def run_property(original, converted, spec: ModelSpec, framework: str, case_id: str,
                 tol: checks.Lookup, *, max_batch: int, settings: Settings,
                 save_dir: Path | None = None, loaders: tuple[str, str] | None = None,
                 padding: str | None = None, edges: bool = True,
                 shrink_seconds: float = SHRINK_SECONDS) -> Stats:
    """Search for a batch (1..max_batch samples of `spec`'s domain, in `framework`'s layout) on
    which `converted` is not equivalent to `original`. Returns the Stats when none is found;
    raises PropertyFailed with the shrunk counterexample otherwise.

    settings: Hypothesis settings (max_examples, deadline...). A directory database is narrowed
    to <its path>/<case_id>, so each case replays only its own failures; report_multiple_bugs
    is turned off (the search stops at the first failing batch).
    save_dir: where <case_id>.npz and <case_id>.py go (removed when the property holds).
    loaders: Python expressions that load (original, converted) predictors, for the snippet.
    edges: check strategies.edge_batches first (off: the search alone, e.g. to test it).
    shrink_seconds: how long shrinking a failing batch may take (see SHRINK_SECONDS).
    """
    db = settings.database
    if isinstance(db, DirectoryBasedExampleDatabase):
        settings = Settings(settings, database=DirectoryBasedExampleDatabase(
            Path(db.path) / case_id))
    # Stop at the first failing batch and shrink it (one counterexample, one exception).
    settings = Settings(settings, report_multiple_bugs=False)
    stats, last = Stats(), {}
    batch_strategy = strategies.batches(spec, max_batch, padding)

    def check(recipes, in_search: bool = True) -> None:
        x = strategies.render(recipes, spec, framework, padding)
        if in_search:
            note(f"{case_id}: batch of {len(recipes)}, input {x.dtype}{list(x.shape)}")
        verdicts, ref, got = equivalence(original, converted, x, case_id, tol)
        stats.add(recipes, verdicts)
        abs_max = next((v.measured["abs_max"] for v in verdicts if "abs_max" in v.measured), 0)
        if in_search and np.isfinite(abs_max):  # steer the search towards larger errors
            target(float(abs_max), label="abs_max")
        failures = [f for v in verdicts for f in v.failures]
        if failures:
            # The last failing execution is Hypothesis' final replay of the minimal example.
            last["ce"] = Counterexample(list(recipes), x, ref, got, verdicts)
            last["edge"] = not in_search
            raise _Falsified("\n".join(failures))

    @settings
    @given(data=st.data())
    def equivalent_on_every_batch(data):
        check(data.draw(batch_strategy, label="batch"))

    def edges_then_search():
        # The fixed edge batches first (strategies.edge_batches): every run checks them, so a
        # break there is found in every profile, not only when the search happens to draw it.
        for recipes in strategies.edge_batches(spec) if edges else []:
            check(recipes, in_search=False)
        with _shrink_budget(shrink_seconds, stats):
            equivalent_on_every_batch()

    t0 = time.perf_counter()
    try:
        edges_then_search()
    except _Falsified as e:
        stats.seconds = time.perf_counter() - t0
        ce = last["ce"]
        notes = "\n".join(getattr(e, "__notes__", []))
        if save_dir is not None:
            ce.path = save_counterexample(Path(save_dir), case_id, ce)
            ce.snippet = reproducer(ce.path, ce.recipes, *(loaders or ("original", "converted")))
            ce.path.with_suffix(".py").write_text(ce.snippet)
        summary = ce.failures + [
            f"{case_id}: counterexample = {ce.recipes!r} ("
            + ("a fixed edge batch, checked before the search" if last.get("edge")
               else f"shrunk, {stats.examples} executions"
               + (f"; shrinking stopped at its {shrink_seconds:g} s budget"
                  if stats.shrink_stopped else "")) + ")"
            + (f", saved to {ce.path}" if ce.path else "")]
        message = "\n".join(summary + ([f"reproduce with:\n{textwrap.indent(ce.snippet, '    ')}"]
                                       if ce.snippet else []) + ([notes] if notes else []))
        raise PropertyFailed(message, summary, ce, stats) from None
    stats.seconds = time.perf_counter() - t0
    if save_dir is not None:  # the property holds now: an earlier run's counterexample is stale
        for suffix in (".npz", ".py"):
            (Path(save_dir) / f"{case_id}{suffix}").unlink(missing_ok=True)
    return stats


def save_counterexample(directory: Path, case_id: str, ce: Counterexample) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{case_id}.npz"
    np.savez(path, x=ce.x, original=ce.ref, converted=ce.got,
             recipes=np.array(repr(ce.recipes)), failures=np.array("\n".join(ce.failures)))
    return path


def reproducer(path: Path, recipes, original: str, converted: str) -> str:
    """A snippet that reloads the saved batch and both predictors and prints their difference."""
    from convcheck.settings.project import active

    root = active().root
    return textwrap.dedent(f"""\
        import numpy as np
        from pathlib import Path
        from convcheck.pipeline import train
        from convcheck.runtimes import load_converted, OrtPredictor
        from convcheck.settings import project
        from convcheck.declarations.registry import MODELS
        project.load_models(project.discover(Path({str(root)!r})))
        saved = np.load({str(path)!r})
        x = saved["x"]  # {recipes!r}
        original = {original}
        converted = {converted}
        ref, got = original.predict(x), converted.predict(x)
        print("max abs diff", np.abs(ref - got).max(), "labels", ref.argmax(1), got.argmax(1))
        """)


def verdict(case_id: str, stats: Stats, failure: PropertyFailed | None) -> checks.Verdict:
    """The run as one Verdict (check "property_equivalence") for the records."""
    measured = stats.as_dict()
    v = checks.Verdict(case_id, CHECK, measured)
    if failure is not None:
        ce = failure.counterexample
        measured |= {"counterexample": repr(ce.recipes),
                     "counterexample_path": str(ce.path) if ce.path else None,
                     "counterexample_measured": {k: x for vv in ce.verdicts
                                                 for k, x in vv.measured.items()}}
        for vv in ce.verdicts:
            v.tolerances |= vv.tolerances
        # the counterexample's failures, then the line that names the counterexample
        v.failed = [m for vv in ce.verdicts for m in vv.failed] + ["counterexample"]
        v.failures = list(failure.summary)
    elif stats.label_batches and not stats.labels_compared:
        # label agreement over zero samples would pass having compared nothing
        v.tolerances["labels_compared"] = 1
        v.fail("labels_compared", f"= 0 < 1: every one of the {stats.samples} drawn samples lay "
                                  f"within decision_margin of the original's decision boundary, "
                                  f"so no label was compared (lower decision_margin, or draw "
                                  f"inputs the model decides)")
    return v
