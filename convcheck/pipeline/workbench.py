"""The session's work, memoized: data sets, trained originals and their outputs.

The pytest fixtures are thin wrappers around one Workbench; a script can use it just the same
(benchmarks/train_zoo.py does). Each expensive step runs at most once per process and is cached
on disk across processes.
"""
from __future__ import annotations

import gc
import json
import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np

from convcheck import data, frameworks
from convcheck.conversion import exporters, runner, variants
from convcheck.data import declared
from convcheck.declarations.registry import MODELS
from convcheck.declarations.spec import ModelSpec, SpecError
from convcheck.pipeline import priority, train, trainer
from convcheck.pipeline.ahead import Ahead, converters
from convcheck.pipeline.builds import Converted, Original
from convcheck.pipeline.cache import (
    cached,
    callable_file,
    file_sha256,
    key_of,
    looks_fresh,
    source_digest,
)
from convcheck.progress import Progress
from convcheck.robustness import attacks, genetic
from convcheck.runtimes import predict_all
from convcheck.runtimes.timer import PairTimer
from convcheck.settings import MAX_NEIGHBOURS, Profile, Target


def compute_tag(compute: dict) -> str:
    """'' for the default compute (every core, the CPU), else what differs: an original trained
    on another thread count or on a GPU sits beside the default one, so that a run with
    $CONVCHECK_THREADS=1 (or on a GPU) in the same cache does not replace the default's
    entries, nor the default run the other's (each would rebuild in turn)."""
    tag = f"-t{compute['threads']}" if compute["threads"] != (os.cpu_count() or 1) else ""
    return tag + ("-gpu" if compute["device"] != "cpu" else "")


def worst_samples(ref: np.ndarray, got: np.ndarray, n: int) -> list[int]:
    """The `n` samples whose outputs differ most (non-finite ones first), in index order."""
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(ref, np.float64)).reshape(len(ref), -1)
    worst = np.argsort(-np.nan_to_num(diff, nan=np.inf).max(axis=1), kind="stable")[:n]
    return sorted(int(i) for i in worst)


@dataclass
class Workbench:
    """Everything a run builds, built once and cached: the declared models' data, their trained
    or loaded originals, conversions and adversarial sets, and their outputs on the test set.

    A script uses it as the plugin does (with the models declared: convcheck.declare_model, or
    convcheck.settings.project.load_models for a project's settings)::

        bench = Workbench(profile=load_profiles()["smoke"], data_dir=None,
                          cache_dir=Path(".cache"), targets=load_targets())
        converted = bench.converted("lenet5", "pytorch", "onnx", seed=0)
        errors = bench.outputs(converted) - bench.outputs(converted.original)

    profile: a convcheck.settings.Profile (sample counts, training and attack parameters);
    data_dir: the standard data sets' files (None: the offline sources); cache_dir: where
    entries are kept (checked against their key on every use, rebuilt when stale); targets:
    target name -> convcheck.settings.Target; log: where progress lines go (written from the
    thread that made the workbench); converters: conversions run at once in the background
    once their original is made (None: convcheck.pipeline.ahead.converters(), from
    $CONVCHECK_CONVERTERS); only those a plan() named run ahead, the others when asked for;
    train_ahead: the originals a plan() named train in a child process, one at a time, from
    then on (None: convcheck.pipeline.trainer.train_ahead(), from $CONVCHECK_TRAIN_AHEAD).
    Models are looked up by name in convcheck.declarations.registry.MODELS (declare_model, or a
    project's settings). Failures raise: SpecError or DataError (a declaration or its data cannot be
    used), runner.ConversionError (a converter failed or timed out), attacks.AttackError (an
    attack could not run); a failed build is remembered for the session."""

    profile: Profile
    data_dir: Path | None
    cache_dir: Path
    targets: dict[str, Target] = field(default_factory=dict)
    log: Callable[[str], None] = print
    _datasets: dict = field(default_factory=dict)
    _originals: dict = field(default_factory=dict)
    _converted: dict = field(default_factory=dict)
    _outputs: dict = field(default_factory=dict)
    _located: dict = field(default_factory=dict)
    _adversarial: dict = field(default_factory=dict)
    _neighbours: dict = field(default_factory=dict)
    progress: Progress = field(default_factory=Progress)
    # the speed gate's timing process, started by the first gate (close() stops it)
    timer: PairTimer = field(default_factory=PairTimer)
    converters: int | None = None
    # (model, framework, seed) -> the targets a plan() needs converted and not yet cached
    _ahead_targets: dict = field(default_factory=dict)
    # originals a plan() needs trained train in a child, ahead, one at a time (None:
    # convcheck.pipeline.trainer.train_ahead(), from $CONVCHECK_TRAIN_AHEAD)
    train_ahead: bool | None = None

    def __post_init__(self) -> None:
        self._ahead = Ahead(converters() if self.converters is None else self.converters,
                            self.log, pools={"trainings": 1})
        if self.train_ahead is None:
            self.train_ahead = trainer.train_ahead()
        self._children = object()  # the owner of the children its background jobs start
        self.log = self._ahead.log  # a background conversion's lines wait for this thread
        self.progress.at_once["conversions"] = self._ahead.workers

    def _owned(self, fn, *args):
        """fn(*args) in a background job, the children it starts this workbench's."""
        token = runner.owner.set(self._children)
        try:
            return fn(*args)
        finally:
            runner.owner.reset(token)

    def flush_log(self) -> None:
        """Write the progress lines background conversions queued (the session calls it after
        each test; waiting for a conversion writes them too)."""
        self._ahead.flush()

    def close(self) -> None:
        """Stop what this workbench started: the timing process, and conversions still running
        in the background (killed: nothing half-built reaches the cache)."""
        self.timer.close()
        self._ahead.close(stop=lambda: runner.stop_all(of=self._children))

    @cached_property
    def versions(self) -> dict[str, str]:
        return frameworks.versions()

    def versions_of(self, stack: tuple[str, ...]) -> dict[str, str]:
        """The versions a kind of cache entry depends on (frameworks.TRAINING_STACK, ...)."""
        return {k: v for k, v in self.versions.items() if k in stack}

    def dataset(self, name: str | ModelSpec) -> data.Dataset:
        """A model's data (by spec), or a data set loaded before (by name)."""
        spec = name if isinstance(name, ModelSpec) else None
        name = spec.data.name if spec else name
        if name not in self._datasets:
            if spec is None:
                spec = next(s for s in map(MODELS.get, MODELS) if s.data.name == name)
            sizes = self.profile.sizes(name)
            self._datasets[name] = declared.load_for(
                spec, self.data_dir, self.cache_dir, n_train=sizes["n_train"],
                n_test=sizes["n_test"])
        return self._datasets[name]

    def padding(self, spec: ModelSpec) -> str | None:
        """Token models: the side the padding goes, as declared or as the data shows."""
        if spec.input.layout != "tokens":
            return None
        return spec.input.padding or declared.padding_side(self.dataset(spec).x_test,
                                                           spec.input.pad_id)

    def labelled(self, spec: ModelSpec) -> bool:
        """Whether the model's evaluation data has labels (checks and attacks that need them
        skip without)."""
        return self.dataset(spec).y_test is not None

    def test_set(self, spec: ModelSpec, framework: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The held-out inputs in the framework's layout, and their labels (None: unlabelled)."""
        ds = self.dataset(spec)
        return spec.to_framework_layout(ds.x_test, framework), ds.y_test

    def original(self, model: str, framework: str, seed: int | None) -> Original:
        """The original of `model` in `framework`: trained with the profile's hyperparameters
        and `seed` (a `build` source), or loaded (a `load` or `file` source: seed None). Checks
        it answers two test samples with the declared output shape. Raises SpecError or
        DataError when the declaration or its data cannot be used, or the loader's own error."""
        key = (model, framework, seed)
        if key not in self._originals:
            spec = MODELS.get(model)
            kind = spec.sources[framework].kind
            made = (self._train_or_load(spec, framework, seed) if kind == "build"
                    else self._given(spec, framework))
            self._check_outputs(made)
            self._originals[key] = made
            self._convert_ahead(made)
        return self._originals[key]

    def _convert_ahead(self, original: Original) -> None:
        """Start, in the background, the conversions of `original` that plan() found the
        selected tests need and the cache lacks (convcheck.pipeline.ahead)."""
        for name in self._ahead_targets.pop((original.spec.name, original.framework,
                                             original.seed), ()):
            key = (original.spec.name, original.framework, name, original.seed)
            target = self.targets[name]
            # built meanwhile (by another pytest-xdist worker): nothing to run beside the tests
            entry = self._conversion_entry(original.cache_parts, original.stem, target,
                                           original.framework)
            if key not in self._converted and not looks_fresh(*entry):
                self._ahead.submit(key, self._owned, self._convert, original, target)

    def _check_outputs(self, o: Original) -> None:
        """The original answers two test samples with the declared task's output shape."""
        x, _ = self.test_set(o.spec, o.framework)
        out = np.asarray(o.predictor.predict(x[:2]))
        want = o.spec.output_shape(len(x[:2]))
        if out.shape != want:
            t = o.spec.task
            field_ = (f"task.num_classes = {t.num_classes}" if t.classification
                      else f"task.outputs = {t.outputs}")
            raise SpecError(f"{o.spec.origin}: model {o.spec.name!r}: {o.framework}: the model "
                            f"returns shape {out.shape} on {len(x[:2])} samples, but {field_} "
                            f"declares {want}")

    def _original_entry(self, spec: ModelSpec, framework: str, seed: int | None
                        ) -> tuple[Path | None, dict, str]:
        """(cache entry or None for a file the team gives, its key's parts, its entries'
        stem) of an original: what building it and planning the run both need."""
        src = spec.sources[framework]
        if src.kind != "build":  # given: no seed, no training
            stem = f"{spec.name}-{framework}-{self.profile.name}{self._data_tag(self.dataset(spec))}"
            if src.kind == "file":
                path = Path(src.ref)
                files = (sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir()
                         else [path])
                return None, {"model": spec.name, "framework": framework, "file": str(path),
                              "sha256": source_digest(*files)}, stem
            return (self.cache_dir / "models" / f"{spec.name}-{framework}-given",
                    {"model": spec.name, "framework": framework, "load": src.ref,
                     "versions": self.versions_of(frameworks.TRAINING_STACK),
                     "code": source_digest(callable_file(src.ref))},
                    stem)
        ds = self.dataset(spec)
        if spec.name not in self.profile.train:
            raise SpecError(f"{spec.origin}: model {spec.name!r} is trained by convcheck (a build "
                            f"source) but profile {self.profile.name!r} has no "
                            f"train.{spec.name} table of hyperparameters")
        parts = {
            "model": spec.name, "framework": framework, "seed": seed,
            "profile": self.profile.name, "hyperparams": self.profile.train[spec.name].as_dict(),
            "data": ds.provenance.as_dict(),
            "versions": self.versions_of(frameworks.TRAINING_STACK),
            "code": source_digest(callable_file(src.ref), Path(train.__file__)),
            "compute": (compute := frameworks.compute(framework)),
        }
        stem = (f"{spec.name}-{framework}-s{seed}-{self.profile.name}{self._data_tag(ds)}"
                f"{compute_tag(compute)}")
        return self.cache_dir / "models" / stem, parts, stem

    def _given(self, spec: ModelSpec, framework: str) -> Original:
        """A trained model the team gives: its file as it is, or what its load callable returns
        (saved once to the cache, so the converters and the size check read a file)."""
        src = spec.sources[framework]
        entry, parts, stem = self._original_entry(spec, framework, None)
        if entry is None:
            path = Path(src.ref)
            return Original(spec, framework, None, path.parent,
                            train.load_predictor(spec, framework, path), parts, stem)

        def build(tmp: Path) -> None:
            self.log(f"loading {spec.name}-{framework} from {src.ref}")
            train.save(spec.build(framework), framework, tmp)

        cached(entry, parts, build, self.log)
        path = entry / train.MODEL_FILE[framework]
        return Original(spec, framework, None, entry, train.load_predictor(spec, framework, path),
                        parts, stem)

    def _train_or_load(self, spec: ModelSpec, framework: str, seed: int) -> Original:
        key = ("train", spec.name, framework, seed)
        if key in self._ahead:  # training (or trained) in a child: its error is this one's
            with priority.waiting():  # no test runs meanwhile: the trainings at full priority
                self._ahead.take(key)
        entry, parts, stem = self._original_entry(spec, framework, seed)
        cached(entry, parts, self._training(spec, framework, seed, in_child=False), self.log)
        predictor = train.load_predictor(spec, framework, entry / train.MODEL_FILE[framework])
        return Original(spec, framework, seed, entry, predictor, parts, stem)

    def _train_ahead(self, spec: ModelSpec, framework: str, seed: int) -> None:
        """A background job: the original trained in a child (convcheck.pipeline.trainer)
        into its cache entry, unless another process has built it."""
        entry, parts, stem = self._original_entry(spec, framework, seed)
        cached(entry, parts, self._training(spec, framework, seed, in_child=True), self.log)
        # its conversions start now, not when its first test asks for it: they need its file,
        # not its runtime (a Converted taken from them gets the loaded original: converted())
        self._convert_ahead(Original(spec, framework, seed, entry, None, parts, stem))

    def _training(self, spec: ModelSpec, framework: str, seed: int, in_child: bool):
        """The build of an original's cache entry: trained here, or in a child process."""
        ds = self.dataset(spec)
        if ds.y_train is None or len(ds.x_train) == 0:
            raise SpecError(f"{spec.origin}: model {spec.name!r} is trained by convcheck, but its "
                            f"data has no x_train/y_train")
        hp = self.profile.train[spec.name]
        case_id = f"{spec.name}-{framework}-s{seed}"
        entry = self._original_entry(spec, framework, seed)[0]

        def build(tmp: Path) -> None:
            self.log(f"training {case_id} ({self.profile.name}: {len(ds.x_train)} samples, "
                     f"{hp.epochs} epochs, {hp.optimizer} lr {hp.lr}, batch {hp.batch_size})"
                     + (", in a child process, ahead of its tests" if in_child else ""))
            t0 = time.perf_counter()
            if in_child:  # the data's own layout: the child makes it the framework's
                trainer.train_in_child(spec, framework, ds.x_train, ds.y_train, hp, seed,
                                       case_id, tmp, self.log)
            else:
                x = spec.to_framework_layout(ds.x_train, framework)
                model = train.train(spec, framework, x, ds.y_train, hp, seed, self.log,
                                    case_id)
                train.save(model, framework, tmp)
            self._built("trainings", entry, f"trained {case_id}", t0)

        return build

    def _built(self, kind: str, entry: Path, what: str, t0: float) -> None:
        seconds = time.perf_counter() - t0
        note = self.progress.built(kind, entry.name, seconds)
        self.log(f"{what} in {seconds:.1f}s" + (f" ({note})" if note else ""))

    def plan(self, cases) -> dict[str, int]:
        """Which cache entries the cases need (their originals, conversions, adversarial sets)
        are not built yet, so that each build's line can say what is left: {kind: count}.
        With train_ahead, the originals to train start training in a child, one after the
        other, in the order of `cases` (the order their tests run in)."""
        trainings: dict = {}
        for c in cases:
            spec = MODELS.get(c.model)
            try:
                entry, parts, stem = self._original_entry(spec, c.framework, c.seed)
            except (SpecError, data.DataError, OSError):
                continue  # the test that needs it fails with the reason
            if entry is not None and spec.sources[c.framework].kind == "build":
                if self._expect("trainings", entry, parts) and self.train_ahead:
                    trainings.setdefault((spec.name, c.framework, c.seed))
            t = self.targets.get(c.target) if c.target else None
            if t is not None and t.base is not None:
                o = Original(spec, c.framework, c.seed, entry, None, parts, stem)
                if t.base not in spec.sources[c.framework].artifacts:
                    self._expect_conversion(c, t.base, parts, stem)
                self._expect("conversions", *self._variant_entry(o, t))
            elif c.target and c.target not in spec.sources[c.framework].artifacts:
                self._expect_conversion(c, c.target, parts, stem)
            if c.attack:
                self._expect("attacks", *self._attack_entry(parts, stem, c.attack))
        # what a conversion child may need: formats of the selected targets (and their bases)
        runner.preload({(self.targets[n].format, c.framework)
                        for c in cases for n in self._converter_targets(c.target)})
        for model, framework, seed in trainings:
            self._ahead.submit(("train", model, framework, seed), self._owned,
                               self._train_ahead, MODELS.get(model), framework, seed,
                               pool="trainings")
        return self.progress.planned()

    def _converter_targets(self, name: str | None) -> list[str]:
        """The targets a case's converter runs for: its own, or a variant's base's."""
        t = self.targets.get(name) if name else None
        if t is None:
            return []
        return [t.base] if t.base is not None and t.base in self.targets else [name]

    def _expect(self, kind: str, entry: Path, parts: dict) -> bool:
        """Count the entry in the work ahead unless it is built; whether it was counted."""
        if looks_fresh(entry, parts):
            return False
        self.progress.expect(kind, [entry.name])
        return True

    def _expect_conversion(self, case, target: str, parts: dict, stem: str) -> None:
        """A converter's run the case needs: counted, and run ahead once its original is
        made (convcheck.pipeline.ahead) unless it is built."""
        if self._expect("conversions", *self._conversion_entry(parts, stem, self.targets[target],
                                                               case.framework)):
            wanted = self._ahead_targets.setdefault((case.model, case.framework, case.seed), [])
            if target not in wanted:
                wanted.append(target)

    def _data_tag(self, ds: data.Dataset) -> str:
        """'' for the default data, else a tag of the data's checksum: models trained on
        different data get entries side by side (a run on --convcheck-data-dir would
        otherwise replace the default data's models, and the next default run retrain them)."""
        return "" if self.data_dir is None else f"-data{ds.provenance.sha256[:8]}"

    def converted(self, model: str, framework: str, target: str, seed: int | None) -> Converted:
        """The original (see `original`) converted to `target`, a name in `targets`, or the
        team's shipped file declared for it. The conversion runs in a child process under the
        target's timeout_s. Raises runner.ConversionError with the converter's own message
        (remembered: asking again raises the same error without converting again)."""
        key = (model, framework, target, seed)
        if key not in self._converted:
            original = self.original(model, framework, seed)
            shipped = original.spec.sources[framework].artifacts.get(target)
            t = self.targets[target]
            try:
                self._converted[key] = (
                    Converted(original, t, shipped) if shipped is not None
                    else self._variant(original, t) if t.base is not None
                    else Converted(original, t, self._ahead.take(key).path)
                    if key in self._ahead else self._convert(original, t))
            except runner.ConversionError as e:
                self._converted[key] = e
        result = self._converted[key]
        if isinstance(result, Exception):
            raise result
        return result

    def _conversion_entry(self, original_parts: dict, original_stem: str, target: Target,
                          framework: str) -> tuple[Path, dict]:
        options = target.options[framework]
        code = [Path(runner.__file__), Path(exporters.__file__)]
        if "converter" in options:
            code.append(callable_file(options["converter"]))
        parts = {"original": key_of(original_parts), "target": target.name,
                 "format": target.format, "options": options,
                 "versions": self.versions_of(frameworks.CONVERSION_STACK),
                 "code": source_digest(*code)}
        return self.cache_dir / "models" / f"{original_stem}.{target.name}", parts

    def _convert(self, original: Original, target: Target) -> Converted:
        fw = original.framework
        entry, parts = self._conversion_entry(original.cache_parts, original.stem, target, fw)

        def build(tmp: Path) -> None:
            self.log(f"converting {original.id} to {target.name} ({target.options[fw]})")
            t0 = time.perf_counter()
            runner.convert(original.spec, fw, original.path, target, tmp)
            self._built("conversions", entry, f"converted {original.id} to {target.name}", t0)

        cached(entry, parts, build, self.log)
        path = entry / runner.artifact_file(target)
        return Converted(original, target, path)

    def _variant_entry(self, original: Original, target: Target) -> tuple[Path, dict]:
        """A variant's cache entry, keyed by its base conversion (or the shipped file it is
        made from), the variant, the tools' versions and, for a calibrated one, the data."""
        fw, base = original.framework, self.targets[target.base]
        shipped = original.spec.sources[fw].artifacts.get(target.base)
        base_key = ({"shipped": file_sha256(Path(shipped))} if shipped is not None
                    else key_of(self._conversion_entry(original.cache_parts, original.stem,
                                                       base, fw)[1]))
        tools = ("onnx", "onnxruntime", "numpy") if base.format == "onnx" else (
            "coremltools", "numpy")
        parts = {"base": base_key, "target": target.name, "variant": target.variant,
                 "versions": self.versions_of(tools),
                 "code": source_digest(Path(variants.__file__))}
        if "calibration" in target.variant:
            parts["data"] = self.dataset(original.spec).provenance.sha256
        return self.cache_dir / "models" / f"{original.stem}.{target.name}", parts

    def _variant(self, original: Original, target: Target) -> Converted:
        """The precision or optimisation variant `target` of the original's conversion to its
        base target (convcheck.conversion.variants), made in this process and cached."""
        base = self.converted(original.spec.name, original.framework, target.base, original.seed)
        entry, parts = self._variant_entry(original, target)

        def build(tmp: Path) -> None:
            self.log(f"making {target.name} ({target.variant}) from {base.id}")
            t0 = time.perf_counter()
            calibration = None
            if "calibration" in target.variant:  # training samples: never the test set
                ds = self.dataset(original.spec)
                calibration = original.spec.to_framework_layout(
                    ds.x_train[:target.variant["calibration"]], original.framework)
            try:
                variants.make(target.variant, base.path, tmp / runner.artifact_file(target),
                              calibration)
            except variants.VariantError as e:
                raise runner.ConversionError(f"{original.id}: {target.name} from {base.id}: "
                                             f"{e}") from e
            self._built("conversions", entry, f"made {target.name} of {original.id}", t0)

        cached(entry, parts, build, self.log)
        return Converted(original, target, entry / runner.artifact_file(target))

    def outputs(self, model: Original | Converted) -> np.ndarray:
        """Outputs (N, width) of an original or converted model on the held-out test set, in
        the model's own layout (computed once). Raises SpecError when their shape is not the
        declared task's."""
        if model.id not in self._outputs:
            spec, fw = model.case.spec, model.case.framework
            x, _ = self.test_set(spec, fw)
            out = predict_all(model.predictor, x)
            if out.shape != spec.output_shape(len(x)):
                raise SpecError(f"{model.id}: outputs have shape {out.shape} on the test set, "
                                f"expected {spec.output_shape(len(x))} (the declared task)")
            self._outputs[model.id] = out
        return self._outputs[model.id]

    def release(self, original_id: str) -> int:
        """Let go of the runtimes the conversions of the original `original_id` loaded (an
        onnxruntime session keeps its memory arena at its largest batch's size); a conversion
        used again loads its runtime again. Their outputs stay. Returns how many were let go."""
        released = 0
        for c in self._converted.values():
            if isinstance(c, Converted) and c.original.id == original_id \
                    and "predictor" in vars(c):  # functools.cached_property's slot
                del c.predictor
                released += 1
        if released:
            gc.collect()  # a runtime's session may sit in a reference cycle (a traceback's)
        return released

    def compared(self) -> list[Converted]:
        """The conversions whose outputs this session computed (what golden data can keep)."""
        return [c for c in self._converted.values()
                if isinstance(c, Converted) and c.id in self._outputs]

    def locate(self, converted: Converted, bound: float, n: int = 4, on=None):
        """Where the ONNX conversion first diverges from its original (convcheck.locate), or
        where a precision variant loses the most against the conversion it was made from, on
        the `n` inputs it gets most wrong (non-finite outputs first); once per case and inputs.
        on: (name, x, original's outputs, converted's outputs) of the inputs a check failed on
        (an attack's adversarial examples, a property's counterexample); the test set if None."""
        if on is None:
            o = converted.original
            on = ("test set", self.test_set(o.spec, o.framework)[0], self.outputs(o),
                  self.outputs(converted))
        name, x, ref, got = on
        key = (converted.id, name)
        if key not in self._located:
            from convcheck.locate import locate, locate_variant

            samples = worst_samples(ref, got, n)
            base = (self.targets[converted.target.base] if converted.target.base is not None
                    else None)
            if base is not None and base.format == "onnx":
                o = converted.original
                made_from = self.converted(o.spec.name, o.framework, base.name, o.seed)
                loc = locate_variant(converted.id, made_from.path, made_from.id, converted.path,
                                     x[samples], samples, bound)
            else:
                loc = locate(converted.id, converted.original.framework,
                             converted.original.predictor, converted.path, x[samples],
                             samples, bound)
            loc.inputs = name
            self._located[key] = loc
        return self._located[key]

    # ------------------------------------------------------------------ adversarial robustness

    def neighbours(self, dataset: str) -> np.ndarray:
        """Each word id's nearest words, from word vectors learned on the training texts
        (convcheck.robustness.genetic): the genetic attack's substitution candidates."""
        if dataset not in self._neighbours:
            ds = self.dataset(dataset)
            spec = next(s for s in map(MODELS.get, MODELS) if s.data.name == dataset)
            if len(ds.x_train) == 0:
                raise attacks.AttackError(
                    f"genetic: learns word neighbours from training texts, and data set "
                    f"{dataset} has none (declare x_train in its data)")
            vectors = genetic.cooccurrence_vectors(
                ds.x_train, spec.input.vocab_size, special=(spec.input.pad_id, spec.input.oov_id))
            self._neighbours[dataset] = genetic.nearest_neighbours(vectors, k=MAX_NEIGHBOURS)
        return self._neighbours[dataset]

    def adversarial(self, original: Original, attack: str) -> attacks.AdversarialSet:
        """The adversarial set `attack` ("fgsm", "boundary", "genetic") makes on `original`
        with the profile's parameters (made once, cached on disk). Raises attacks.AttackError
        when it cannot run (no usable sample, the attack library's own failure)."""
        key = (original.id, attack)
        if key not in self._adversarial:
            try:
                self._adversarial[key] = self._attack(original, attack)
            except attacks.AttackError as e:  # remembered: every case of it fails alike
                self._adversarial[key] = e
            except Exception as e:  # the attack library's own failure: one failure, its message
                err = attacks.AttackError(f"{type(e).__name__}: {e}")
                err.__cause__ = e
                self._adversarial[key] = err
        result = self._adversarial[key]
        if isinstance(result, Exception):
            raise result
        return result

    def _attack_entry(self, original_parts: dict, original_stem: str, attack: str
                      ) -> tuple[Path, dict]:
        parts = {"original": key_of(original_parts), "attack": attack,
                 "params": self.profile.attack(attack),
                 "versions": (self.versions_of(frameworks.ATTACK_STACK)
                              | {"scipy": version("scipy")}),  # scipy: neighbours
                 "code": source_digest(Path(attacks.__file__), Path(genetic.__file__)),
                 "compute": frameworks.compute(original_parts["framework"])}
        return self.cache_dir / "attacks" / f"{original_stem}.{attack}", parts

    def _attack(self, original: Original, attack: str) -> attacks.AdversarialSet:
        entry, parts = self._attack_entry(original.cache_parts, original.stem, attack)
        params = parts["params"]
        info_file = "info.json"

        def build(tmp: Path) -> None:
            self.log(f"attacking {original.id} with {attack} ({params})")
            x, y = self.test_set(original.spec, original.framework)
            adv = attacks.make(attack, original, x, y, self.outputs(original), params,
                               # a given original (load, file) is one instance, with no
                               # training seed: its attacks draw from seed 0
                               seed=0 if original.seed is None else original.seed,
                               neighbours=lambda: self.neighbours(original.spec.dataset),
                               log=self.log)
            adv.save(tmp)
            (tmp / info_file).write_text(json.dumps(adv.info, indent=1))
            note = self.progress.built("attacks", entry.name, adv.info["seconds"])
            self.log(f"attacked {original.id} with {attack}: {len(adv.x)} samples in "
                     f"{adv.info['seconds']:.1f}s" + (f" ({note})" if note else ""))

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
