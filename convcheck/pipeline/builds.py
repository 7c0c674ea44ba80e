"""What a Workbench builds, each with its readable id and its Case: an Original (trained or
given, loaded), a Converted artifact (its runtime loaded on first use) and an Attacked model."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from convcheck.declarations.spec import ModelSpec
from convcheck.pipeline import train
from convcheck.pipeline.cases import Case
from convcheck.runtimes import load_converted
from convcheck.settings import Target


def _suffix(seed) -> str:
    return "" if seed is None else f"-s{seed}"


@dataclass
class Original:
    """A trained model of the zoo, loaded from the cache."""

    spec: ModelSpec
    framework: str
    seed: int | None  # None: a given original (load, file), one instance
    entry: Path  # its cache directory; conversions are cached beside it
    predictor: object
    cache_parts: dict
    stem: str = ""  # its cache entries' name: conversions and attacks add ".<target>"

    @property
    def id(self) -> str:
        return f"{self.spec.name}-{self.framework}{_suffix(self.seed)}"

    @property
    def case(self) -> Case:
        return Case(self.spec.name, self.framework, self.seed)

    @property
    def path(self) -> Path:
        """The saved original: a file the team gave, or the cache entry's model file."""
        if self.spec.sources[self.framework].kind == "file":
            return Path(self.spec.sources[self.framework].ref)
        return self.entry / train.MODEL_FILE[self.framework]

    def load(self):
        """A fresh predictor loaded from disk (what a load-time measurement times)."""
        return train.load_predictor(self.spec, self.framework, self.path)


@dataclass
class Converted:
    """A converted artifact of an original, loaded into its runtime."""

    original: Original
    target: Target
    path: Path  # the artifact: a file or a bundle directory

    @cached_property
    def predictor(self):
        """Loaded on first use: converting and inspecting need no runtime (CoreML runs on macOS only)."""
        return self.load()

    def load(self):
        """A fresh predictor loaded from disk (what a load-time measurement times)."""
        return load_converted(self.target.format, self.path)

    @property
    def id(self) -> str:
        o = self.original
        return f"{o.spec.name}-{o.framework}-{self.target.name}{_suffix(o.seed)}"

    @property
    def case(self) -> Case:
        o = self.original
        return Case(o.spec.name, o.framework, o.seed, self.target.name, format=self.target.format)


@dataclass
class Attacked:
    """A model (an original or a conversion) and an attack made on its original."""

    model: Original | Converted
    attack: str

    @property
    def case(self) -> Case:
        return replace(self.model.case, attack=self.attack)

    @property
    def id(self) -> str:
        return self.case.id
