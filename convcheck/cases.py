"""The cases a run covers: (model, framework, seed[, target]), with readable ids."""
from __future__ import annotations

from dataclasses import dataclass, replace

from convcheck.attacks import attacks_for
from models import FRAMEWORKS, ZOO, get_spec

# Models whose training dominates a run; `-m "not slow"` leaves them out.
SLOW_MODELS = ("resnet18", "vgg16")


@dataclass(frozen=True)
class Case:
    model: str
    framework: str
    seed: int
    target: str | None = None
    attack: str | None = None  # an adversarial set made on the original (robustness checks)

    @property
    def id(self) -> str:
        parts = [self.model, self.framework] + ([self.target] if self.target else [])
        return "-".join(parts) + f"-s{self.seed}" + (f"-{self.attack}" if self.attack else "")

    @property
    def spec(self):
        return get_spec(self.model)

    def tolerance_case(self, profile: str) -> dict:
        """The keys tolerances.toml overrides match on."""
        return {"model": self.model, "framework": self.framework, "dataset": self.spec.dataset,
                "target": self.target, "profile": profile, "attack": self.attack}

    def markers(self) -> list[str]:
        names = [self.model, self.framework, self.spec.kind]
        if self.model in SLOW_MODELS:
            names.append("slow")
        if self.target:
            names.append(self.target.split("-")[0])  # onnx-fp16 -> onnx
        if self.attack:
            names += ["robustness", self.attack]
        return names


def select_models(names: str | None) -> tuple[str, ...]:
    """Models named in a comma-separated list (None = the whole zoo); unknown names raise."""
    if not names:
        return tuple(ZOO)
    chosen = tuple(n.strip() for n in names.split(",") if n.strip())
    for n in chosen:
        get_spec(n)
    return chosen


def original_cases(models, seeds) -> list[Case]:
    return [Case(m, f, s) for m in models for f in FRAMEWORKS for s in seeds]


def conversion_cases(models, targets, seeds) -> list[Case]:
    return [Case(m, f, s, t.name) for t in targets.values() for m in models
            for f in t.frameworks() for s in seeds]


def with_attacks(cases: list[Case]) -> list[Case]:
    """Each case once per attack that applies to its model (convcheck.attacks.ATTACKS)."""
    return [replace(c, attack=a) for c in cases for a in attacks_for(c.spec.kind)]
