"""The cases a run covers: (model, framework, seed[, target][, attack]), with readable ids.

A model convcheck trains (a `build` source) has one case per profile seed
(``lenet5-keras-onnx-s0``); a model the team gives (a load callable, a saved file) is one
instance and its ids carry no seed (``digits-mlp-pytorch-onnx``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from convcheck.declarations.registry import MODELS, stand_in_name
from convcheck.declarations.spec import ARTIFACT_FORMATS
from convcheck.robustness.attacks import attacks_for


@dataclass(frozen=True)
class Case:
    model: str
    framework: str
    seed: int | None
    target: str | None = None
    attack: str | None = None  # an adversarial set made on the original (robustness checks)
    format: str | None = None  # the target's format (its marker)

    @property
    def id(self) -> str:
        parts = [self.model, self.framework] + ([self.target] if self.target else [])
        seed = "" if self.seed is None else f"-s{self.seed}"
        return "-".join(parts) + seed + (f"-{self.attack}" if self.attack else "")

    @property
    def spec(self):
        return MODELS.get(self.model)

    def tolerance_case(self, profile: str) -> dict:
        """The keys tolerances.toml overrides match on."""
        return {"model": self.model, "framework": self.framework, "dataset": self.spec.dataset,
                "target": self.target, "format": self.format, "profile": profile,
                "attack": self.attack, "runtime": self.runtime}

    @property
    def runtime(self) -> str | None:
        """The stand-in runtime that runs this conversion on this OS (registry.STAND_INS:
        "coreml-reference" for Core ML off macOS), or None: the format's own runtime."""
        return stand_in_name(self.format) if self.format else None

    def markers(self) -> list[str]:
        names = [self.model, self.framework, *self.spec.markers]
        if self.format:
            names.append(self.format)
        if self.attack:
            names += ["robustness", self.attack]
        return names


def select_models(names: str | None) -> tuple[str, ...]:
    """Models named in a comma-separated list (None = every declared model); unknown names
    raise KeyError listing the valid ones, and a list that names none is an error too."""
    if names is None:
        return MODELS.names()
    chosen = tuple(n.strip() for n in names.split(",") if n.strip())
    if not chosen:
        raise KeyError(f"no model named in {names!r}; valid models: {', '.join(MODELS)}")
    for n in chosen:
        MODELS.get(n)
    twice = sorted({n for n in chosen if chosen.count(n) > 1})
    if twice:
        raise KeyError(f"{names!r} names {', '.join(twice)} twice (each model runs once)")
    return chosen


def _seeds(spec, framework: str, seeds) -> tuple:
    return tuple(seeds) if spec.sources[framework].seeded else (None,)


def original_cases(models, seeds) -> list[Case]:
    return [Case(m, f, s) for m in models for f in MODELS.get(m).frameworks
            for s in _seeds(MODELS.get(m), f, seeds)]


def shipped_targets(models, timeout_s: float = 600.0) -> dict:
    """A Target per artifact name the models' declarations ship (checked as they are)."""
    from convcheck.settings import Target

    out: dict = {}
    for m in models:
        for fw, src in MODELS.get(m).sources.items():
            for name, path in src.artifacts.items():
                fmt = ARTIFACT_FORMATS[Path(path).suffix]
                t = out.get(name)
                options = dict(t.options) if t else {}
                options[fw] = {"shipped": True}
                out[name] = Target(name, fmt, timeout_s, options, shipped=True)
    return out


def applies(spec, framework: str, target) -> bool:
    """Whether `target` is one of this model's conversions."""
    if target.shipped:
        return target.name in spec.sources[framework].artifacts
    if framework not in target.options:
        return False
    return spec.targets is None or target.name in spec.targets


def conversion_cases(models, targets, seeds) -> list[Case]:
    return [Case(m, f, s, t.name, format=t.format) for t in targets.values() for m in models
            for f in MODELS.get(m).frameworks if applies(MODELS.get(m), f, t)
            for s in _seeds(MODELS.get(m), f, seeds)]


def with_attacks(cases: list[Case], labelled=lambda spec: True) -> list[Case]:
    """Each case once per attack that applies to its model (convcheck.robustness.attacks);
    labelled(spec): whether the model's evaluation data has labels."""
    return [replace(c, attack=a) for c in cases for a in attacks_for(c.spec, labelled(c.spec))]
