"""The session's work, memoized: data sets, trained originals and their outputs.

The pytest fixtures are thin wrappers around one Workbench; a script can use it just the same
(benchmarks/train_zoo.py does). Each expensive step runs at most once per process and is cached
on disk across processes.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np

from convcheck import attacks, convert, data, frameworks, genetic, train
from convcheck.cache import cached, key_of
from convcheck.cases import Case
from convcheck.config import Profile, Target
from convcheck.predictors import load_converted, predict_all
from models import ROOT as MODELS_ROOT, VOCAB_SIZE, ModelSpec, get_spec

_CODE_ROOT = Path(__file__).resolve().parent


def _source_digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@dataclass
class Original:
    """A trained model of the zoo, loaded from the cache."""

    spec: ModelSpec
    framework: str
    seed: int
    entry: Path  # its cache directory; conversions are cached beside it
    predictor: object
    cache_parts: dict

    @property
    def id(self) -> str:
        return f"{self.spec.name}-{self.framework}-s{self.seed}"

    @property
    def case(self) -> Case:
        return Case(self.spec.name, self.framework, self.seed)

    @property
    def path(self) -> Path:
        return self.entry / train.MODEL_FILE[self.framework]

    def load(self):
        """A fresh predictor loaded from disk (what a load-time measurement times)."""
        return train.load_predictor(self.spec, self.framework, self.entry)


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
        return f"{o.spec.name}-{o.framework}-{self.target.name}-s{o.seed}"

    @property
    def case(self) -> Case:
        o = self.original
        return Case(o.spec.name, o.framework, o.seed, self.target.name)


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


@dataclass
class Workbench:
    profile: Profile
    data_dir: Path | None
    cache_dir: Path
    targets: dict[str, Target] = field(default_factory=dict)
    log: Callable[[str], None] = print
    _datasets: dict = field(default_factory=dict)
    _originals: dict = field(default_factory=dict)
    _converted: dict = field(default_factory=dict)
    _outputs: dict = field(default_factory=dict)
    _adversarial: dict = field(default_factory=dict)
    _neighbours: dict = field(default_factory=dict)

    @cached_property
    def versions(self) -> dict[str, str]:
        return frameworks.versions()

    def dataset(self, name: str) -> data.Dataset:
        if name not in self._datasets:
            sizes = self.profile.data[name]
            self._datasets[name] = data.load_dataset(
                name, self.data_dir, n_train=sizes["n_train"], n_test=sizes["n_test"],
                cache_dir=self.cache_dir)
        return self._datasets[name]

    def test_set(self, spec: ModelSpec, framework: str) -> tuple[np.ndarray, np.ndarray]:
        """The held-out inputs in the framework's layout, and their labels."""
        ds = self.dataset(spec.dataset)
        return spec.to_framework_layout(ds.x_test, framework), ds.y_test

    def original(self, model: str, framework: str, seed: int) -> Original:
        key = (model, framework, seed)
        if key not in self._originals:
            self._originals[key] = self._train_or_load(get_spec(model), framework, seed)
        return self._originals[key]

    def _train_or_load(self, spec: ModelSpec, framework: str, seed: int) -> Original:
        ds = self.dataset(spec.dataset)
        hp = self.profile.train[spec.name]
        parts = {
            "model": spec.name, "framework": framework, "seed": seed,
            "profile": self.profile.name, "hyperparams": hp.as_dict(),
            "data": ds.provenance.as_dict(), "versions": self.versions,
            "code": _source_digest(MODELS_ROOT / "__init__.py",
                                   MODELS_ROOT / f"{spec.module}.py", _CODE_ROOT / "train.py"),
        }
        case_id = f"{spec.name}-{framework}-s{seed}"
        entry = self.cache_dir / "models" / f"{case_id}-{self.profile.name}"

        def build(tmp: Path) -> None:
            self.log(f"training {case_id} ({self.profile.name}: {len(ds.x_train)} samples, "
                     f"{hp.epochs} epochs, {hp.optimizer} lr {hp.lr}, batch {hp.batch_size})")
            t0 = time.perf_counter()
            x = spec.to_framework_layout(ds.x_train, framework)
            model = train.train(spec, framework, x, ds.y_train, hp, seed, self.log, case_id)
            train.save(model, framework, tmp)
            self.log(f"trained {case_id} in {time.perf_counter() - t0:.1f}s")

        cached(entry, parts, build, self.log)
        predictor = train.load_predictor(spec, framework, entry)
        return Original(spec, framework, seed, entry, predictor, parts)

    def converted(self, model: str, framework: str, target: str, seed: int) -> Converted:
        """The original converted to `target`; a failed conversion raises ConversionError
        (remembered, so every test of the case fails with the converter's message)."""
        key = (model, framework, target, seed)
        if key not in self._converted:
            try:
                self._converted[key] = self._convert(self.original(model, framework, seed),
                                                     self.targets[target])
            except convert.ConversionError as e:
                self._converted[key] = e
        result = self._converted[key]
        if isinstance(result, Exception):
            raise result
        return result

    def _convert(self, original: Original, target: Target) -> Converted:
        fw = original.framework
        parts = {"original": key_of(original.cache_parts), "target": target.name,
                 "format": target.format, "options": target.options[fw],
                 "versions": self.versions,
                 "code": _source_digest(_CODE_ROOT / "convert.py")}
        entry = original.entry.with_name(f"{original.entry.name}.{target.name}")

        def build(tmp: Path) -> None:
            self.log(f"converting {original.id} to {target.name} ({target.options[fw]})")
            t0 = time.perf_counter()
            convert.convert(original.spec, fw, original.path, target, tmp)
            self.log(f"converted {original.id} to {target.name} in {time.perf_counter() - t0:.1f}s")

        cached(entry, parts, build, self.log)
        path = entry / convert.artifact_file(target)
        return Converted(original, target, path)

    def outputs(self, model: Original | Converted) -> np.ndarray:
        """Outputs of an original or converted model on the held-out test set (computed once)."""
        if model.id not in self._outputs:
            spec, fw = model.case.spec, model.case.framework
            x, _ = self.test_set(spec, fw)
            self._outputs[model.id] = predict_all(model.predictor, x)
        return self._outputs[model.id]

    # ------------------------------------------------------------------ adversarial robustness

    def neighbours(self, dataset: str) -> np.ndarray:
        """Each word id's nearest words, from word vectors learned on the training texts
        (convcheck.genetic): the genetic attack's substitution candidates."""
        if dataset not in self._neighbours:
            ds = self.dataset(dataset)
            vectors = genetic.cooccurrence_vectors(ds.x_train, VOCAB_SIZE)
            self._neighbours[dataset] = genetic.nearest_neighbours(vectors, k=genetic.MAX_NEIGHBOURS)
        return self._neighbours[dataset]

    def adversarial(self, original: Original, attack: str) -> attacks.AdversarialSet:
        """The adversarial set `attack` makes on `original` (made once, cached on disk); an
        attack that cannot run raises AttackError."""
        key = (original.id, attack)
        if key not in self._adversarial:
            try:
                self._adversarial[key] = self._attack(original, attack)
            except attacks.AttackError as e:  # remembered: every case of it fails alike
                self._adversarial[key] = e
        result = self._adversarial[key]
        if isinstance(result, Exception):
            raise result
        return result

    def _attack(self, original: Original, attack: str) -> attacks.AdversarialSet:
        params = self.profile.attack(attack)
        parts = {"original": key_of(original.cache_parts), "attack": attack, "params": params,
                 "versions": self.versions | {"scipy": version("scipy")},  # scipy: neighbours
                 "code": _source_digest(_CODE_ROOT / "attacks.py", _CODE_ROOT / "genetic.py",
                                        MODELS_ROOT / "__init__.py")}
        entry = self.cache_dir / "attacks" / f"{original.id}-{self.profile.name}.{attack}"
        info_file = "info.json"

        def build(tmp: Path) -> None:
            self.log(f"attacking {original.id} with {attack} ({params})")
            x, y = self.test_set(original.spec, original.framework)
            adv = attacks.make(attack, original, x, y, self.outputs(original), params,
                               seed=original.seed,
                               neighbours=lambda: self.neighbours(original.spec.dataset),
                               log=self.log)
            adv.save(tmp)
            (tmp / info_file).write_text(json.dumps(adv.info, indent=1))
            self.log(f"attacked {original.id} with {attack}: {len(adv.x)} samples in "
                     f"{adv.info['seconds']:.1f}s")

        cached(entry, parts, build, self.log)
        info = json.loads((entry / info_file).read_text())
        return attacks.AdversarialSet.load(entry, attack, info)

    def adversarial_outputs(self, model: Original | Converted, attack: str
                            ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs of a model on the seeds and on the adversarial examples of `attack` made on
        its original (computed once)."""
        key = (model.id, attack)
        if key not in self._outputs:
            original = getattr(model, "original", model)
            adv = self.adversarial(original, attack)
            self._outputs[key] = (predict_all(model.predictor, adv.x),
                                  predict_all(model.predictor, adv.x_adv))
        return self._outputs[key]
