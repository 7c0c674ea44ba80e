"""Expected failures (expected_failures.toml): known divergences as data, each with its reason,
the measured number and what the failure must look like."""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from pathlib import Path

from convcheck.settings.files import ConfigError, _check_type, _files, _read_toml, _unknown

# --------------------------------------------------------------------------- expected failures

_XFAIL_TYPES = {"case": str, "test": str, "reason": str, "measured": str, "expect": dict,
                "runtime": str, "search": bool}
_EXPECT_TYPES = {"failure": str, "metric": str, "min": (int, float), "max": (int, float)}


@dataclass(frozen=True)
class ExpectedFailure:
    """A known divergence: the tests it covers, why, what was measured, and what the failure
    must look like for the test to count as the expected failure (anything else fails)."""

    case: str  # fnmatch pattern on the case id
    test: str  # fnmatch pattern on the test function's name
    reason: str
    measured: str
    where: str  # "<file>: xfail[i]", for messages
    failure: str | None = None  # regex searched in the failure's text
    metric: str | None = None  # a figure of the failing verdict's measured dict ...
    min: float | None = None  # ... that must lie in [min, max]
    max: float | None = None
    # Only where the case runs on this stand-in runtime (registry.STAND_INS, e.g.
    # "coreml-reference"): a divergence measured on it, which the format's own runtime on its
    # own OS may not share.
    runtime: str | None = None
    # A finding of a randomized search (a property test's drawn input): a run whose search does
    # not reach it passes, said in the summary; any other failure still fails. Without it an
    # entry is strict: a pass fails the run (the divergence is gone: remove the entry).
    search: bool = False

    def applies(self, test: str, case_id: str, runtime: str | None = None) -> bool:
        return (fnmatch.fnmatchcase(case_id, self.case) and fnmatch.fnmatchcase(test, self.test)
                and (self.runtime is None or self.runtime == runtime))

    def expects(self) -> str:
        parts = []
        if self.failure is not None:
            parts.append(f"a failure matching {self.failure!r}")
        if self.metric is not None:
            lo = "-inf" if self.min is None else f"{self.min:g}"
            hi = "inf" if self.max is None else f"{self.max:g}"
            parts.append(f"{self.metric} in [{lo}, {hi}]")
        return " and ".join(parts)

    def explains(self, text: str, measured: dict | None,
                 failed: set | None = None) -> str | None:
        """None if a failure with this text (and, from a verdict, these figures and failed
        metrics) is the one expected; else what differs. With `metric`, the verdict must have
        failed on that metric, not only measured it."""
        import re

        if self.failure is not None and not re.search(self.failure, text):
            first = text.strip().splitlines()[0][:300] if text.strip() else "(no message)"
            return f"the failure does not match {self.failure!r}: {first}"
        if self.metric is not None:
            if measured is None or self.metric not in measured:
                return (f"the failure measured no {self.metric} (not a verdict of a check that "
                        f"measures it): {text.strip()[:300]}")
            if failed is not None and self.metric not in failed:
                return (f"the failure is not on {self.metric} (failed: "
                        f"{', '.join(sorted(failed)) or 'none'}; {self.metric} = "
                        f"{measured[self.metric]!r} within its bound): {text.strip()[:300]}")
            value = measured[self.metric]
            try:
                value = float(value)
            except (TypeError, ValueError):
                return f"{self.metric} = {value!r} is not a number"
            if not ((self.min is None or value >= self.min)
                    and (self.max is None or value <= self.max)):
                return (f"{self.metric} = {value:.4g}, outside the expected "
                        f"[{'-inf' if self.min is None else f'{self.min:g}'}, "
                        f"{'inf' if self.max is None else f'{self.max:g}'}] (the divergence "
                        f"changed: measure it again and update the entry)")
        return None


def load_expected_failures(paths=None) -> list[ExpectedFailure]:
    """Known divergences, kept as data: each needs a reason, the number that was measured and
    what the failure must look like (an [xfail.expect] table)."""
    return [e for p in _files("expected_failures", paths) for e in _parse_xfails(p)]


def _parse_xfails(path: Path) -> list[ExpectedFailure]:
    import re

    raw = _read_toml(path)
    _unknown(path, "<top>", raw, ("xfail",))
    entries = raw.get("xfail", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: xfail must be an array of tables ([[xfail]])")
    out = []
    for i, e in enumerate(entries):
        where = f"xfail[{i}]"
        _unknown(path, where, e, _XFAIL_TYPES)
        for k, v in e.items():
            _check_type(path, where, k, v, _XFAIL_TYPES[k])
        for k in ("case", "reason", "measured"):
            if not str(e.get(k, "")).strip():
                raise ConfigError(f"{path}: {where} has no {k!r} (every entry needs case, "
                                  f"reason, measured and expect)")
        expect = e.get("expect")
        if expect is None:
            raise ConfigError(f"{path}: {where} has no 'expect' table: say what the failure "
                              f"must look like, expect = {{ failure = 'regex' }} and/or "
                              f"expect = {{ metric = 'abs_max', min = ..., max = ... }} (any "
                              f"other failure of the test then fails the run)")
        _unknown(path, f"{where}.expect", expect, _EXPECT_TYPES)
        for k, v in expect.items():
            _check_type(path, f"{where}.expect", k, v, _EXPECT_TYPES[k])
        if "failure" not in expect and "metric" not in expect:
            raise ConfigError(f"{path}: {where}.expect names neither failure nor metric")
        if "failure" in expect:
            try:
                re.compile(expect["failure"])
            except re.error as err:
                raise ConfigError(f"{path}: {where}.expect.failure {expect['failure']!r} is not "
                                  f"a regular expression: {err}") from None
        if "metric" in expect:
            if "min" not in expect and "max" not in expect:
                raise ConfigError(f"{path}: {where}.expect.metric {expect['metric']!r} needs "
                                  f"min and/or max (the range the measured figure must lie in)")
            if expect.get("min", -math.inf) > expect.get("max", math.inf):
                raise ConfigError(f"{path}: {where}.expect: min {expect['min']} > max "
                                  f"{expect['max']}")
        elif "min" in expect or "max" in expect:
            raise ConfigError(f"{path}: {where}.expect: min/max need a metric")
        if "runtime" in e:
            from convcheck.declarations.registry import stand_in_names

            if e["runtime"] not in stand_in_names():
                raise ConfigError(f"{path}: {where}.runtime = {e['runtime']!r} is no stand-in "
                                  f"runtime; valid: {', '.join(stand_in_names())}")
        out.append(ExpectedFailure(
            e["case"], e.get("test", "*"), e["reason"], e["measured"], f"{path}: {where}",
            expect.get("failure"), expect.get("metric"),
            *(float(expect[k]) if k in expect else None for k in ("min", "max")),
            runtime=e.get("runtime"), search=e.get("search", False)))
    return out


