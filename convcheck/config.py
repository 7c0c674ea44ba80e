"""Profiles (profiles.toml) and tolerances (tolerances.toml): loaded once, validated strictly.

Every mistake in these files is a ConfigError naming the file and the key, raised at start-up,
so that a typo never silently falls back to a default.
"""
from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

from convcheck.attacks import ATTACKS, PARAMS as ATTACK_PARAMS
from convcheck.genetic import MAX_NEIGHBOURS
from models import FRAMEWORKS, MAX_LEN, ZOO

ROOT = Path(__file__).resolve().parent.parent
PROFILES_FILE = ROOT / "profiles.toml"
TOLERANCES_FILE = ROOT / "tolerances.toml"
DATASET_NAMES = ("mnist", "cifar10", "imdb")


class ConfigError(Exception):
    pass


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


def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    raw = _read_toml(path)
    return {name: _parse_profile(path, name, body) for name, body in raw.items()}


def _parse_profile(path, name, body) -> Profile:
    if not isinstance(body, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    _unknown(path, name, body, _PROFILE_TYPES)
    for k, v in body.items():
        _check_type(path, name, k, v, _PROFILE_TYPES[k])
    for k in ("seeds", "data", "train", "attack"):
        if k not in body:
            raise ConfigError(f"{path}: [{name}] is missing {k!r}")
    seeds = body["seeds"]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{path}: {name}.seeds must be a non-empty list of integers")
    data = {}
    _unknown(path, f"{name}.data", body["data"], DATASET_NAMES)
    for ds in DATASET_NAMES:
        sizes = body["data"].get(ds, {})
        _unknown(path, f"{name}.data.{ds}", sizes, _DATA_TYPES)
        for k, v in sizes.items():
            _check_type(path, f"{name}.data.{ds}", k, v, int)
        # absent = the whole dataset
        data[ds] = {k: sizes.get(k) for k in _DATA_TYPES}
    train = {}
    _unknown(path, f"{name}.train", body["train"], ZOO)
    for model in ZOO:
        where = f"{name}.train.{model}"
        hp = body["train"].get(model)
        if hp is None:
            raise ConfigError(f"{path}: {where} is missing (every profile trains every model)")
        _unknown(path, where, hp, _HP_TYPES)
        for k, v in hp.items():
            _check_type(path, where, k, v, _HP_TYPES[k])
        missing = [k for k in ("optimizer", "lr", "batch_size", "epochs") if k not in hp]
        if missing:
            raise ConfigError(f"{path}: {where} is missing {', '.join(missing)}")
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
            if types[k] is not dict and not v > 0:
                raise ConfigError(f"{path}: {where}.{k} must be > 0, got {v}")
    images = sorted({s.dataset for s in ZOO.values() if s.kind == ATTACKS["fgsm"]})
    eps = attack["fgsm"]["eps"]
    _unknown(path, f"{name}.attack.fgsm.eps", eps, images)
    for ds in images:
        v = eps.get(ds)
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1):
            raise ConfigError(f"{path}: {name}.attack.fgsm.eps.{ds} must be a number in (0, 1] "
                              f"(inputs are in [0, 1]), got {v!r}")
    g = attack["genetic"]
    if g["population"] < 2:
        raise ConfigError(f"{path}: {name}.attack.genetic.population must be at least 2 (an "
                          f"elite and a child), got {g['population']}")
    if not g["min_words"] <= g["max_words"] <= MAX_LEN:
        raise ConfigError(f"{path}: {name}.attack.genetic needs min_words <= max_words <= "
                          f"{MAX_LEN} (reviews are cut to {MAX_LEN} words), got "
                          f"{g['min_words']}..{g['max_words']}")
    if attack["genetic"]["neighbours"] > MAX_NEIGHBOURS:
        raise ConfigError(f"{path}: {name}.attack.genetic.neighbours must be at most "
                          f"{MAX_NEIGHBOURS}, got {attack['genetic']['neighbours']}")
    if attack["genetic"]["max_modification"] > 1:
        raise ConfigError(f"{path}: {name}.attack.genetic.max_modification is a share of a "
                          f"review's words, at most 1, got {attack['genetic']['max_modification']}")


def get_profile(name: str, path: Path = PROFILES_FILE) -> Profile:
    profiles = load_profiles(path)
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
# Keys that select the cases an override applies to.
MATCH_KEYS = {"model": tuple(ZOO), "framework": FRAMEWORKS, "dataset": DATASET_NAMES,
              "target": None, "profile": None, "attack": tuple(ATTACKS)}


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


def load_tolerances(path: Path = TOLERANCES_FILE, targets: tuple[str, ...] | None = None) -> Tolerances:
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
                              f"dataset, target, profile or attack")
        for k, v in match.items():
            valid = MATCH_KEYS[k] if k != "target" else targets
            if valid is not None and v not in valid:
                raise ConfigError(f"{path}: {where}.{k} = {v!r} is unknown; valid: {', '.join(valid)}")
        values = {k: o[k] for k in TOLERANCE_KEYS if k in o}
        for k, v in values.items():
            _check_type(path, where, k, v, TOLERANCE_KEYS[k])
        if not values:
            raise ConfigError(f"{path}: {where} sets no tolerance")
        overrides.append(Override(match, values, reason.strip()))
    return Tolerances(defaults, overrides, path)


# --------------------------------------------------------------------------- targets

TARGETS_FILE = ROOT / "targets.toml"
# Converters each format knows, per source framework.
EXPORTERS = {
    "onnx": {"pytorch": ("dynamo", "torchscript"), "keras": ("tf2onnx",)},
    # jit-trace: torch.jit.trace, then coremltools.convert; tf-function: the concrete function
    # of a traced tf.function (coremltools cannot take a Keras 3 model object).
    "coreml": {"pytorch": ("jit-trace",), "keras": ("tf-function",)},
}
_TARGET_TYPES = {"format": str, "timeout_s": (int, float), "pytorch": dict, "keras": dict}
_OPTION_TYPES = {"exporter": str, "opset": int, "convert_to": str, "precision": str,
                 "deployment_target": str}
# The options each format takes (all required for coreml: nothing falls back to a default).
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

    def frameworks(self) -> tuple[str, ...]:
        return tuple(f for f in FRAMEWORKS if f in self.options)


def load_targets(path: Path = TARGETS_FILE) -> dict[str, Target]:
    raw = _read_toml(path)
    targets = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        _unknown(path, name, body, _TARGET_TYPES)
        for k, v in body.items():
            _check_type(path, name, k, v, _TARGET_TYPES[k])
        fmt = body.get("format")
        if fmt not in EXPORTERS:
            raise ConfigError(f"{path}: {name}.format {fmt!r} unknown; valid: {', '.join(EXPORTERS)}")
        options = {}
        for fw in FRAMEWORKS:
            if fw not in body:
                continue
            where = f"{name}.{fw}"
            _unknown(path, where, body[fw], _FORMAT_OPTIONS[fmt])
            for k, v in body[fw].items():
                _check_type(path, where, k, v, _OPTION_TYPES[k])
            exporter = body[fw].get("exporter")
            if exporter not in EXPORTERS[fmt][fw]:
                raise ConfigError(f"{path}: {where}.exporter {exporter!r} unknown for {fmt}; "
                                  f"valid: {', '.join(EXPORTERS[fmt][fw])}")
            if fmt == "coreml":
                _check_coreml_options(path, where, body[fw])
            options[fw] = dict(body[fw])
        if not options:
            raise ConfigError(f"{path}: [{name}] converts no framework (add pytorch or keras)")
        # One artifact name per target: model.mlpackage (mlprogram) or model.mlmodel.
        if fmt == "coreml" and len({o["convert_to"] for o in options.values()}) > 1:
            raise ConfigError(f"{path}: [{name}] convert_to differs between frameworks; "
                              f"one CoreML target makes one model type")
        targets[name] = Target(name, fmt, float(body.get("timeout_s", 600)), options)
    return targets


def select_targets(names: str | None, path: Path = TARGETS_FILE) -> dict[str, Target]:
    """Targets named in a comma-separated list (None = all); unknown names raise ConfigError."""
    targets = load_targets(path)
    if not names:
        return targets
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    for n in chosen:
        if n not in targets:
            raise ConfigError(f"unknown target {n!r}; valid targets: {', '.join(targets)}")
    return {n: targets[n] for n in chosen}


# --------------------------------------------------------------------------- expected failures

EXPECTED_FAILURES_FILE = ROOT / "expected_failures.toml"
_XFAIL_TYPES = {"case": str, "test": str, "reason": str, "measured": str}


@dataclass(frozen=True)
class ExpectedFailure:
    case: str  # fnmatch pattern on the case id
    test: str  # fnmatch pattern on the test function's name
    reason: str
    measured: str

    def applies(self, test: str, case_id: str) -> bool:
        return fnmatch.fnmatchcase(case_id, self.case) and fnmatch.fnmatchcase(test, self.test)


def load_expected_failures(path: Path = EXPECTED_FAILURES_FILE) -> list[ExpectedFailure]:
    """Known divergences, kept as data: each needs a reason and the number that was measured."""
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
            _check_type(path, where, k, v, str)
        for k in ("case", "reason", "measured"):
            if not str(e.get(k, "")).strip():
                raise ConfigError(f"{path}: {where} has no {k!r} (every entry needs case, "
                                  f"reason and measured)")
        out.append(ExpectedFailure(e["case"], e.get("test", "*"), e["reason"], e["measured"]))
    return out
