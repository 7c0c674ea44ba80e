"""Profiles (profiles.toml): sample counts, seeds, training hyperparameters, the attacks' sizes
and the hypothesis table; the attacks' parameter schema is here, so validating a profile imports
no attack library."""
from __future__ import annotations

from dataclasses import dataclass

from convcheck.settings.files import ConfigError, _check_type, _files, _read_merged, _unknown

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
# Neighbours kept per word (convcheck.robustness.genetic); an attack uses its first `neighbours`.
MAX_NEIGHBOURS = 32


# --------------------------------------------------------------------------- profiles

_HP_TYPES = {
    "optimizer": str, "lr": (int, float), "momentum": (int, float),
    "batch_size": int, "epochs": int,
}
_OPTIMIZERS = ("sgd", "adam")
_PROFILE_TYPES = {"description": str, "seeds": list, "data": dict, "train": dict, "attack": dict,
                  "hypothesis": dict, "timing": dict}
_DATA_TYPES = {"n_train": int, "n_test": int}
_HYPOTHESIS_TYPES = {"max_batch": int, "max_examples": int}
_TIMING_TYPES = {"rounds": int, "samples": int}


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

    def timing_rounds(self) -> int | None:
        """Rounds of each Table III timing (pytest-benchmark's), None: pytest-benchmark's
        --benchmark-min-rounds. An explicit --benchmark-min-rounds wins."""
        return self.extra["timing"].get("rounds")

    def timing_samples(self) -> int | None:
        """Test samples a test-set timing passes over (Table III's and the speed gate's), the
        first ones of the test set; None: the whole test set."""
        return self.extra["timing"].get("samples")

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
    # hypothesis: the property tests' batch size and example count (convcheck/plugin/hypothesis.py);
    # timing: rounds of Table III's timings (convcheck/plugin/benchmarks.py) and the samples of
    # a test-set timing (convcheck/suite/performance.py).
    for section, types in (("hypothesis", _HYPOTHESIS_TYPES), ("timing", _TIMING_TYPES)):
        table = body.get(section, {})
        _unknown(path, f"{name}.{section}", table, types)
        for k, v in table.items():
            _check_type(path, f"{name}.{section}", k, v, types[k])
            if v < 1:
                raise ConfigError(f"{path}: {name}.{section}.{k} must be >= 1, got {v}")
    _check_attacks(path, name, body["attack"])
    extra = {k: body.get(k, {}) for k in ("attack", "hypothesis", "timing")}
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
