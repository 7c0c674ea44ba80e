"""Profiles, tolerances, targets and expected failures: loaded once, validated strictly.

Each is the package's default file (convcheck/defaults/) extended by the project's own
(convcheck.project says how they merge). Every mistake in these files is a ConfigError naming
the file and the key, raised at start-up, so that a typo never silently falls back to a default.
"""
from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from convcheck import project as _project
from convcheck.spec import FRAMEWORKS

# attack -> the kind of input it attacks (ModelSpec.kind); every attack needs a classifier.
ATTACKS = {"fgsm": "image", "boundary": "image", "genetic": "tokens"}
# Each attack's parameters in a profile's `attack.<name>` table (profiles.toml), with their types.
# Every attack takes n_samples: the test samples attacked per original model.
_NUM = (int, float)
ATTACK_PARAMS: dict[str, dict] = {
    # eps: the L-inf step, one number or a table per data set (with an optional `default`)
    "fgsm": {"n_samples": int, "eps": (int, float, dict)},
    "boundary": {"n_samples": int, "max_iter": int, "num_trial": int, "sample_size": int,
                 "delta": _NUM, "epsilon": _NUM},
    "genetic": {"n_samples": int, "population": int, "generations": int, "neighbours": int,
                "max_modification": _NUM, "min_words": int, "max_words": int},
}
# Neighbours kept per word (convcheck.genetic); an attack uses its first `neighbours`.
MAX_NEIGHBOURS = 32


class ConfigError(Exception):
    pass


def _files(key: str, paths) -> list[Path]:
    """The files to read for `key`: those given, else the packaged one and the project's."""
    if paths is None:
        return _project.active().files(key)
    return [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]


def _merge(a: dict, b: dict) -> dict:
    """b over a, table by table (a value that is not a table replaces the one below it)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_merged(paths: list[Path]) -> tuple[dict, str]:
    raw = {}
    for p in paths:
        raw = _merge(raw, _read_toml(p))
    return raw, " + ".join(str(p) for p in paths)


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None


def _check_type(path, where, key, value, typ):
    ok = isinstance(value, typ) and not (typ in (int, float, (int, float)) and isinstance(value, bool))
    if not ok:
        name = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ConfigError(f"{path}: {where}.{key} must be {name}, got {value!r}")


def _unknown(path, where, keys, valid):
    if not isinstance(keys, dict):
        raise ConfigError(f"{path}: {where} must be a table, got {keys!r}")
    bad = sorted(set(keys) - set(valid))
    if bad:
        raise ConfigError(
            f"{path}: unknown key {where}.{bad[0]}; valid keys: {', '.join(sorted(valid))}"
        )


# --------------------------------------------------------------------------- profiles

_HP_TYPES = {
    "optimizer": str, "lr": (int, float), "momentum": (int, float),
    "batch_size": int, "epochs": int,
}
_OPTIMIZERS = ("sgd", "adam")
_PROFILE_TYPES = {"description": str, "seeds": list, "data": dict, "train": dict, "attack": dict,
                  "hypothesis": dict}
_DATA_TYPES = {"n_train": int, "n_test": int}
_HYPOTHESIS_TYPES = {"max_batch": int, "max_examples": int}


@dataclass(frozen=True)
class HyperParams:
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    momentum: float = 0.0

    def as_dict(self) -> dict:
        return dict(vars(self))


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    seeds: tuple[int, ...]
    data: dict  # dataset -> {"n_train": int|None, "n_test": int|None}
    train: dict  # model -> HyperParams
    extra: dict  # sections read by later stages (attack, hypothesis)

    def attack(self, name: str) -> dict:
        """The parameters of attack `name` (validated when profiles.toml was read)."""
        return self.extra["attack"][name]

    def fgsm_eps(self, dataset: str) -> float | None:
        """FGSM's L-inf step for `dataset`: a table's entry for it (else its `default`), or
        the one number given for every data set; None when the profile has none for it."""
        eps = self.attack("fgsm")["eps"]
        return eps.get(dataset, eps.get("default")) if isinstance(eps, dict) else eps

    def sizes(self, dataset: str) -> dict:
        return self.data.get(dataset, {"n_train": None, "n_test": None})


def load_profiles(paths=None) -> dict[str, Profile]:
    raw, where = _read_merged(_files("profiles", paths))
    return {name: _parse_profile(where, name, body) for name, body in raw.items()}


def _parse_profile(path, name, body) -> Profile:
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    _unknown(path, name, body, _PROFILE_TYPES)
    for k, v in body.items():
        _check_type(path, name, k, v, _PROFILE_TYPES[k])
    for k in ("seeds", "attack"):
        if k not in body:
            raise ConfigError(f"{path}: [{name}] is missing {k!r}")
    body = {"data": {}, "train": {}} | body
    seeds = body["seeds"]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                            for s in seeds):
        raise ConfigError(f"{path}: {name}.seeds must be a non-empty list of integers >= 0, "
                          f"got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: {name}.seeds lists a seed twice: {seeds!r}")
    data = {}
    for ds in body["data"]:
        sizes = body["data"].get(ds, {})
        _unknown(path, f"{name}.data.{ds}", sizes, _DATA_TYPES)
        for k, v in sizes.items():
            _check_type(path, f"{name}.data.{ds}", k, v, int)
            if v < 1:
                raise ConfigError(f"{path}: {name}.data.{ds}.{k} must be >= 1, got {v} (leave it "
                                  f"out for the whole data set)")
        # absent = the whole dataset
        data[ds] = {k: sizes.get(k) for k in _DATA_TYPES}
    train = {}
    for model, hp in body["train"].items():
        where = f"{name}.train.{model}"
        _unknown(path, where, hp, _HP_TYPES)
        for k, v in hp.items():
            _check_type(path, where, k, v, _HP_TYPES[k])
        missing = [k for k in ("optimizer", "lr", "batch_size", "epochs") if k not in hp]
        if missing:
            raise ConfigError(f"{path}: {where} is missing {', '.join(missing)}")
        for k, lo, hi in (("lr", 0, None), ("batch_size", 1, None), ("epochs", 1, None),
                          ("momentum", None, 1)):
            v = hp.get(k)
            if v is not None and ((lo is not None and (v < lo or (lo == 0 and v == 0)))
                                  or (hi is not None and not 0 <= v < hi)):
                rng = {"lr": "> 0", "batch_size": ">= 1", "epochs": ">= 1",
                       "momentum": "in [0, 1)"}[k]
                raise ConfigError(f"{path}: {where}.{k} must be {rng}, got {v}")
        if hp["optimizer"] not in _OPTIMIZERS:
            raise ConfigError(
                f"{path}: {where}.optimizer {hp['optimizer']!r} unknown; valid: {', '.join(_OPTIMIZERS)}"
            )
        train[model] = HyperParams(**{k: (float(v) if k in ("lr", "momentum") else v)
                                      for k, v in hp.items()})
    # hypothesis: the property tests' batch size and example count (fixtures/hypothesis.py).
    hyp = body.get("hypothesis", {})
    _unknown(path, f"{name}.hypothesis", hyp, _HYPOTHESIS_TYPES)
    for k, v in hyp.items():
        _check_type(path, f"{name}.hypothesis", k, v, _HYPOTHESIS_TYPES[k])
        if v < 1:
            raise ConfigError(f"{path}: {name}.hypothesis.{k} must be >= 1, got {v}")
    _check_attacks(path, name, body["attack"])
    extra = {k: body.get(k, {}) for k in ("attack", "hypothesis")}
    return Profile(name, body.get("description", ""), tuple(seeds), data, train, extra)


def _check_attacks(path, name, attack) -> None:
    """Every attack has its table, with known keys of the right types, positive numbers, and an
    FGSM step for every image data set."""
    _unknown(path, f"{name}.attack", attack, ATTACK_PARAMS)
    for a, types in ATTACK_PARAMS.items():
        where = f"{name}.attack.{a}"
        params = attack.get(a)
        if params is None:
            raise ConfigError(f"{path}: {where} is missing (every profile runs every attack)")
        _unknown(path, where, params, types)
        missing = sorted(set(types) - set(params))
        if missing:
            raise ConfigError(f"{path}: {where} is missing {', '.join(missing)}")
        for k, v in params.items():
            _check_type(path, where, k, v, types[k])
            if not isinstance(v, dict) and not v > 0:
                raise ConfigError(f"{path}: {where}.{k} must be > 0, got {v}")
    eps = attack["fgsm"]["eps"]
    for ds, v in (eps.items() if isinstance(eps, dict) else [("", eps)]):
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1):
            raise ConfigError(f"{path}: {name}.attack.fgsm.eps{'.' + ds if ds else ''} must be a "
                              f"number in (0, 1] (a share of the input's value range), got {v!r}")
    g = attack["genetic"]
    if g["population"] < 2:
        raise ConfigError(f"{path}: {name}.attack.genetic.population must be at least 2 (an "
                          f"elite and a child), got {g['population']}")
    if not g["min_words"] <= g["max_words"]:
        raise ConfigError(f"{path}: {name}.attack.genetic needs min_words <= max_words, got "
                          f"{g['min_words']}..{g['max_words']}")
    if attack["genetic"]["neighbours"] > MAX_NEIGHBOURS:
        raise ConfigError(f"{path}: {name}.attack.genetic.neighbours must be at most "
                          f"{MAX_NEIGHBOURS}, got {attack['genetic']['neighbours']}")
    if attack["genetic"]["max_modification"] > 1:
        raise ConfigError(f"{path}: {name}.attack.genetic.max_modification is a share of a "
                          f"review's words, at most 1, got {attack['genetic']['max_modification']}")


def get_profile(name: str, paths=None) -> Profile:
    profiles = load_profiles(paths)
    if name not in profiles:
        raise ConfigError(f"unknown profile {name!r}; valid profiles: {', '.join(profiles)}")
    return profiles[name]


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
    # tests_conformance/test_regressions.py: max abs error of a minimal reproducer's outputs,
    # float32 paths / float16 arithmetic (convcheck.regressions.Regression.tolerance).
    "regression_abs_max": (int, float),
    "regression_fp16_abs_max": (int, float),
    # tests_conformance/test_robustness.py: adversarial sets made on the original, replayed on
    # the conversion (convcheck.attacks); output errors there reuse the keys above.
    "attack_success_floor": (int, float),
    "decision_margin": (int, float),
    "success_rate_delta": (int, float),
    "adversarial_disagreement": (int, float),
    "robustness_indicator": (int, float),
}
# Keys that select the cases an override applies to (model, dataset and target: the names the
# project declares, passed to load_tolerances; format: a target's exchange format, from the
# runtime registry).
MATCH_KEYS = {"model": None, "framework": FRAMEWORKS, "dataset": None, "target": None,
              "format": None, "profile": None, "attack": tuple(ATTACKS)}


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
    from convcheck import registry

    files = _files("tolerances", paths)
    defaults, overrides = {}, []
    for path in files:
        d, o = _parse_tolerances(path, {"target": targets, "model": models, "dataset": datasets,
                                        "profile": profiles,
                                        "format": tuple(registry.RUNTIMES)})
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
                              f"dataset, target, format, profile or attack")
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


# --------------------------------------------------------------------------- targets

_TARGET_TYPES = {"format": str, "timeout_s": (int, float), "pytorch": dict, "keras": dict}
_OPTION_TYPES = {"exporter": str, "converter": str, "opset": int, "convert_to": str,
                 "precision": str, "deployment_target": str}
# The options each format's built-in exporters take (all required for coreml: nothing falls
# back to a default). A `converter` (module:function) takes any options and checks its own.
_FORMAT_OPTIONS = {"onnx": ("exporter", "opset"),
                   "coreml": ("exporter", "convert_to", "precision", "deployment_target")}
COREML_CONVERT_TO = ("mlprogram", "neuralnetwork")
COREML_PRECISIONS = ("fp32", "fp16")
# coremltools.target names, oldest first. coremltools refuses an mlprogram below macOS12 and a
# neuralnetwork from macOS12 on.
COREML_DEPLOYMENT_TARGETS = ("macOS10_15", "macOS11", "macOS12", "macOS13", "macOS14", "macOS15",
                             "macOS26")


def _check_coreml_options(path, where, opts: dict) -> None:
    for key, valid in (("convert_to", COREML_CONVERT_TO), ("precision", COREML_PRECISIONS),
                       ("deployment_target", COREML_DEPLOYMENT_TARGETS)):
        if opts.get(key) not in valid:
            raise ConfigError(f"{path}: {where}.{key} {opts.get(key)!r} unknown; "
                              f"valid: {', '.join(valid)}")
    mlprogram = opts["convert_to"] == "mlprogram"
    if opts["precision"] == "fp16" and not mlprogram:
        raise ConfigError(f"{path}: {where}.precision 'fp16' needs convert_to = 'mlprogram' "
                          f"(coremltools sets a compute precision for ML programs only)")
    if mlprogram != (COREML_DEPLOYMENT_TARGETS.index(opts["deployment_target"])
                     >= COREML_DEPLOYMENT_TARGETS.index("macOS12")):
        raise ConfigError(f"{path}: {where}.deployment_target {opts['deployment_target']!r} does "
                          f"not fit convert_to {opts['convert_to']!r}: an mlprogram needs macOS12 "
                          f"or later, a neuralnetwork macOS11 or earlier")


@dataclass(frozen=True)
class Target:
    name: str
    format: str
    timeout_s: float
    options: dict  # framework -> converter options
    shipped: bool = False  # a team's already-converted files (ModelSpec sources' artifacts)

    def frameworks(self) -> tuple[str, ...]:
        return tuple(f for f in FRAMEWORKS if f in self.options)


def load_targets(paths=None) -> dict[str, Target]:
    from convcheck import registry

    raw, path = _read_merged(_files("targets", paths))
    targets = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        _unknown(path, name, body, _TARGET_TYPES)
        for k, v in body.items():
            _check_type(path, name, k, v, _TARGET_TYPES[k])
        fmt = body.get("format")
        if fmt not in registry.RUNTIMES:
            raise ConfigError(f"{path}: {name}.format {fmt!r} unknown; valid: "
                              f"{', '.join(registry.RUNTIMES)}")
        if body.get("timeout_s", 1) <= 0:
            raise ConfigError(f"{path}: {name}.timeout_s must be > 0, got {body['timeout_s']}")
        options = {}
        for fw in FRAMEWORKS:
            if fw not in body:
                continue
            where, opts = f"{name}.{fw}", body[fw]
            custom = "converter" in opts
            if not custom:
                _unknown(path, where, opts, _FORMAT_OPTIONS.get(fmt, ("exporter",)))
            for k, v in opts.items():
                if k in _OPTION_TYPES:
                    _check_type(path, where, k, v, _OPTION_TYPES[k])
            if custom:
                if "exporter" in opts:
                    raise ConfigError(f"{path}: {where}: give exporter or converter, not both")
                from convcheck.spec import SpecError, import_callable
                try:
                    import_callable(opts["converter"])
                except SpecError as e:
                    raise ConfigError(f"{path}: {where}.converter: {e}") from None
            else:
                valid = registry.exporters(fmt, fw)
                if opts.get("exporter") not in valid:
                    raise ConfigError(f"{path}: {where}.exporter {opts.get('exporter')!r} unknown "
                                      f"for {fmt}; valid: {', '.join(valid)} (or converter = "
                                      f"'module:function')")
                if fmt == "coreml":
                    _check_coreml_options(path, where, opts)
            options[fw] = dict(opts)
        if not options:
            raise ConfigError(f"{path}: [{name}] converts no framework (add pytorch or keras)")
        # One artifact name per target: model.mlpackage (mlprogram) or model.mlmodel.
        if fmt == "coreml" and len({o.get("convert_to") for o in options.values()}) > 1:
            raise ConfigError(f"{path}: [{name}] convert_to differs between frameworks; "
                              f"one CoreML target makes one model type")
        targets[name] = Target(name, fmt, float(body.get("timeout_s", 600)), options)
    return targets


def select_targets(names: str | None, paths=None, targets: dict | None = None) -> dict[str, Target]:
    """Targets named in a comma-separated list (None = all); unknown names raise ConfigError."""
    targets = load_targets(paths) if targets is None else targets
    if names is None:
        return targets
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if not chosen:
        raise ConfigError(f"no target named in {names!r}; valid targets: {', '.join(targets)}")
    for n in chosen:
        if n not in targets:
            raise ConfigError(f"unknown target {n!r}; valid targets: {', '.join(targets)}")
    twice = sorted({n for n in chosen if chosen.count(n) > 1})
    if twice:
        raise ConfigError(f"{names!r} names {', '.join(twice)} twice (each target runs once)")
    return {n: targets[n] for n in chosen}


# --------------------------------------------------------------------------- expected failures

_XFAIL_TYPES = {"case": str, "test": str, "reason": str, "measured": str, "expect": dict}
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

    def applies(self, test: str, case_id: str) -> bool:
        return fnmatch.fnmatchcase(case_id, self.case) and fnmatch.fnmatchcase(test, self.test)

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
        out.append(ExpectedFailure(
            e["case"], e.get("test", "*"), e["reason"], e["measured"], f"{path}: {where}",
            expect.get("failure"), expect.get("metric"),
            *(float(expect[k]) if k in expect else None for k in ("min", "max"))))
    return out


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
                 (convcheck.attacks.attacks_for(spec)), for robustness_indicator.

    What is implied (outputs as in convcheck.metrics.output_errors):
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
