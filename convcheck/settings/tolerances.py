"""Tolerances (tolerances.toml): the default bounds, the overrides that match cases by model,
framework, data set, target, format, profile or attack (each with its reason), and the refusal
of bounds another bound already implies."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from convcheck.declarations.spec import FRAMEWORKS
from convcheck.settings.files import ConfigError, _check_type, _files, _read_toml, _unknown
from convcheck.settings.profiles import ATTACKS

# --------------------------------------------------------------------------- tolerances

# Every tolerance the suite knows, with its type. Later stages add theirs here.
TOLERANCE_KEYS: dict[str, type | tuple] = {
    "accuracy_floor": (int, float),
    "abs_max": (int, float),
    "abs_mean": (int, float),
    "abs_p99": (int, float),
    "rel_max": (int, float),
    "rel_mean": (int, float),
    "rel_floor": (int, float),
    "ptol_atol": (int, float),
    "ptol_rtol": (int, float),
    "ptol_budget": (int, float),
    "label_disagreement": (int, float),
    "accuracy_delta": (int, float),
    "size_ratio": (int, float),
    "speed_ratio": (int, float),
    # convcheck.suite.regressions: max abs error of a minimal reproducer's outputs,
    # float32 paths / float16 arithmetic (convcheck.regressions.Regression.tolerance).
    "regression_abs_max": (int, float),
    "regression_fp16_abs_max": (int, float),
    # tests_conformance/test_robustness.py: adversarial sets made on the original, replayed on
    # the conversion (convcheck.robustness.attacks); output errors there reuse the keys above.
    "attack_success_floor": (int, float),
    "decision_margin": (int, float),
    "success_rate_delta": (int, float),
    "adversarial_disagreement": (int, float),
    "robustness_indicator": (int, float),
    # Localisation (convcheck.locate): how far a graph tensor may differ from the original's
    # layer output, relative to the layer's largest value, and still agree with it.
    "locate_rel": (int, float),
    # The upgrade gate (convcheck.report.compare): how much a candidate run may differ from
    # its baseline, case by case, before the change counts as a regression.
    "gate_error_growth": (int, float),
    "gate_error_floor": (int, float),
    "gate_accuracy_drop": (int, float),
    "gate_agreement_drop": (int, float),
    "gate_speed_growth": (int, float),
    "gate_size_growth": (int, float),
}
# Keys that select the cases an override applies to (model, dataset and target: the names the
# project declares, passed to load_tolerances; format: a target's exchange format, from the
# runtime registry).
MATCH_KEYS = {"model": None, "framework": FRAMEWORKS, "dataset": None, "target": None,
              "format": None, "profile": None, "attack": tuple(ATTACKS),
              # a stand-in runtime running the case where its own does not exist
              # (registry.STAND_INS: "coreml-reference" runs Core ML's ML programs off macOS)
              "runtime": None}


@dataclass(frozen=True)
class Override:
    match: dict
    values: dict
    reason: str

    def applies(self, case: dict) -> bool:
        return all(case.get(k) == v for k, v in self.match.items())


class Tolerances:
    """Defaults plus ordered overrides; the last matching override wins for each key."""

    def __init__(self, defaults: dict, overrides: list[Override], path: Path):
        self.defaults, self.overrides, self.path = defaults, overrides, path

    def lookup(self, key: str, **case) -> tuple[float, str]:
        """(value, where it came from) of tolerance `key` for a case given as model=..., etc."""
        if key not in TOLERANCE_KEYS:
            raise ConfigError(f"unknown tolerance {key!r}; valid: {', '.join(TOLERANCE_KEYS)}")
        value, source = self.defaults.get(key), "default"
        for o in self.overrides:
            if key in o.values and o.applies(case):
                value, source = o.values[key], f"override {o.match}: {o.reason}"
        if value is None:
            raise ConfigError(f"{self.path}: no value for tolerance {key!r} (add it to [default])")
        return value, source

    def get(self, key: str, **case) -> float:
        return self.lookup(key, **case)[0]


def load_tolerances(paths=None, targets: tuple[str, ...] | None = None,
                    models: tuple[str, ...] | None = None,
                    datasets: tuple[str, ...] | None = None,
                    profiles: tuple[str, ...] | None = None) -> Tolerances:
    """[default] of every file, the later ones' values replacing the earlier ones'; then every
    file's [[override]] entries, in file order. targets/models/datasets/profiles: the valid
    names of the match keys (None: not checked; an override naming nothing would never apply)."""
    from convcheck.declarations import registry

    files = _files("tolerances", paths)
    defaults, overrides = {}, []
    for path in files:
        d, o = _parse_tolerances(path, {"target": targets, "model": models, "dataset": datasets,
                                        "profile": profiles,
                                        "format": tuple(registry.RUNTIMES),
                                        "runtime": registry.stand_in_names()})
        defaults |= d
        overrides += o
    return Tolerances(defaults, overrides, files[-1])


def _parse_tolerances(path: Path, names: dict):
    raw = _read_toml(path)
    _unknown(path, "<top>", raw, ("default", "override"))
    defaults = raw.get("default", {})
    _unknown(path, "default", defaults, TOLERANCE_KEYS)
    for k, v in defaults.items():
        _check_type(path, "default", k, v, TOLERANCE_KEYS[k])
    overrides = []
    raw_overrides = raw.get("override", [])
    if not isinstance(raw_overrides, list):
        raise ConfigError(f"{path}: override must be an array of tables ([[override]])")
    for i, o in enumerate(raw_overrides):
        where = f"override[{i}]"
        if not isinstance(o, dict):
            raise ConfigError(f"{path}: {where} must be a table ([[override]])")
        _unknown(path, where, o, {*TOLERANCE_KEYS, *MATCH_KEYS, "reason"})
        reason = o.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{path}: {where} has no 'reason' (every override needs one)")
        match = {k: o[k] for k in MATCH_KEYS if k in o}
        if not match:
            raise ConfigError(f"{path}: {where} matches every case; name a model, framework, "
                              f"dataset, target, format, profile, attack or runtime")
        for k, v in match.items():
            valid = MATCH_KEYS[k] or names.get(k)
            if valid is not None and v not in valid:
                raise ConfigError(f"{path}: {where}.{k} = {v!r} is unknown; valid: "
                                  f"{', '.join(valid)}")
        values = {k: o[k] for k in TOLERANCE_KEYS if k in o}
        for k, v in values.items():
            _check_type(path, where, k, v, TOLERANCE_KEYS[k])
        if not values:
            raise ConfigError(f"{path}: {where} sets no tolerance")
        overrides.append(Override(match, values, reason.strip()))
    return defaults, overrides


def check_implied_bounds(tolerances: Tolerances, cases) -> None:
    """Refuse bounds that can never be the one that fails: a bound at or past what another
    bound of the same case already implies is dead (it fails only when that one fails too).

    Raises ConfigError listing each dead bound once per default/override combination, with
    both values and where each came from. A bound set to inf is off on purpose and not checked.

    cases: one dict per case the run judges: the keys overrides match on
    (Case.tolerance_case(profile)), plus
      "classes": the number of classes when the case's outputs are class probabilities
                 (spec.task.output == "probabilities"; absent or None otherwise), and
      "attacks": for a case without an attack, the attacks run on it
                 (convcheck.robustness.attacks.attacks_for(spec)), for robustness_indicator.

    What is implied (outputs as in convcheck.checks.metrics.output_errors):
      - abs_mean <= abs_max and abs_p99 <= abs_max on any outputs: abs_mean or abs_p99 set at
        or above abs_max is dead (equal too: abs_p99 > b means abs_max > b).
      - probabilities of k classes: sum |p - q| <= 2 per sample, so abs_mean <= 2/k; and
        |p - q| <= 1, so abs_max >= 1 is dead (holds while the conversion outputs a
        distribution; one that does not is caught by abs_max or by the sum going astray).
      - robustness_indicator: |R| = |mean over attacks of the success-rate changes| <= the mean
        of their |changes|, each bounded by that attack's success_rate_delta, so a bound at or
        above that mean is dead (with the deltas at 0, any finite bound): R then is recorded
        for Table VII, not judged (inf, the shipped default).
    """
    match_keys = tuple(MATCH_KEYS)
    found: dict = {}

    def origin(key, case):
        o = next((o for o in reversed(tolerances.overrides)
                  if key in o.values and o.applies(case)), None)
        return "[default]" if o is None else f"[[override]] {o.match}"

    def dead(case, key, value, why, *, other=None, other_value=None, other_case=None):
        where = (origin(key, case), other and origin(other, other_case or case))
        text = (f"{key} = {value:g} ({where[0]})" + (f" >= {other} = {other_value:g} "
                f"({where[1]})" if other else "") + f": {why}")
        label = ", ".join(f"{k}={case[k]}" for k in match_keys if case.get(k) is not None)
        found.setdefault((key, other, where, text), []).append(label)

    for raw in cases:
        case = {k: raw.get(k) for k in match_keys}
        get = lambda key, c=case: tolerances.get(key, **c)  # noqa: E731
        top = get("abs_max")
        for key in ("abs_mean", "abs_p99"):
            v = get(key)
            if v != math.inf and top != math.inf and v >= top:
                dead(case, key, v, f"{key} <= abs_max always, so {key} fails only when abs_max "
                     f"does; set it below abs_max, or to inf to leave it unjudged",
                     other="abs_max", other_value=top)
        k = raw.get("classes")
        if k:
            v = get("abs_mean")
            if v != math.inf and v >= 2 / k:
                dead(case, "abs_mean", v, f"on probabilities of {k} classes the mean |p - q| "
                     f"is at most 2/{k} = {2 / k:.3g}; set it below that, or to inf")
            if top != math.inf and top >= 1:
                dead(case, "abs_max", top, "probabilities differ by at most 1")
        attacks = raw.get("attacks")
        if case.get("attack") is None and attacks:
            r = get("robustness_indicator")
            per = [tolerances.get("success_rate_delta", **(case | {"attack": a}))
                   for a in attacks]
            mean = sum(per) / len(per)
            if r != math.inf and r >= mean:
                worst = max(attacks, key=lambda a: tolerances.get(
                    "success_rate_delta", **(case | {"attack": a})))
                dead(case, "robustness_indicator", r,
                     f"|R| <= the mean success_rate_delta over {', '.join(attacks)} "
                     f"({mean:g}), so R fails only when some success_rate_delta does; set it "
                     f"below {mean:g} to judge a drift every attack allows, or to inf to record "
                     f"R unjudged",
                     other="success_rate_delta", other_value=max(per),
                     other_case=case | {"attack": worst})
    if found:
        lines = [f"{text}; for {labels[0]}" + (f" and {len(labels) - 1} more case(s)"
                                               if len(labels) > 1 else "")
                 for (_, _, _, text), labels in found.items()]
        raise ConfigError(f"{tolerances.path}: dead tolerance bound(s), implied by others:\n  "
                          + "\n  ".join(lines))
