"""Start-up: the project's settings, its models, the options, and every check of them.

Everything a run is configured with is read and validated here, in pytest_configure, before a
test is collected: a mistake (an unknown name, a malformed file, a model declaration that
cannot be used) is one usage error naming the file, the model and the field.
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from convcheck import frameworks
from convcheck.declarations.registry import MODELS
from convcheck.declarations.spec import SpecError
from convcheck.pipeline import ahead, cases, trainer
from convcheck.plugin import OPTIONS, option_source
from convcheck.plugin.state import RUN, Run
from convcheck.robustness.attacks import attacks_for, why_not
from convcheck.runtimes import timer
from convcheck.settings import (
    ConfigError,
    check_implied_bounds,
    load_expected_failures,
    load_profiles,
    load_targets,
    load_tolerances,
    project,
    select_targets,
)

DEFAULT_PROFILE = "smoke"
# Markers every convcheck session knows; each model adds its name and its declared markers.
MARKERS = {
    "pytorch": "cases whose original model is a PyTorch model",
    "keras": "cases whose original model is a Keras model",
    "robustness": "adversarial robustness preserved (convcheck.suite.robustness)",
    "fgsm": "adversarial sets made by FGSM (ART; image classifiers)",
    "boundary": "adversarial sets made by the Boundary attack (ART; image classifiers)",
    "genetic": "adversarial sets made by the genetic word-substitution attack (text classifiers)",
    "macos": "runs a converted model whose runtime exists on macOS only (skipped elsewhere)",
    "regression": "minimal reproducers of known converter divergences (convcheck.suite.regressions)",
    "timing": "times something: under pytest-xdist it runs last, with no other test beside it "
              "(convcheck.plugin.workers; the speed gate is one)",
}


def _text(e: Exception) -> str:
    # a KeyError's str() is the repr of its message
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


class Problems:
    """Every start-up problem, each a line naming its source: reported together, so a user
    fixes them in one go instead of one per run."""

    def __init__(self):
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def check(self, fn, *args, where: str = ""):
        """fn(*args), or None with its error added (prefixed by `where`)."""
        try:
            return fn(*args)
        except (ConfigError, SpecError, project.ProjectError, KeyError, ValueError) as e:
            self.add(f"{where}: {_text(e)}" if where else _text(e))
            return None

    def raise_if_any(self) -> None:
        if self.lines:
            raise pytest.UsageError("\n".join(f"convcheck: {p}" for p in self.lines))


def pytest_configure(config):
    problems = Problems()
    got = SimpleNamespace(profile=None, models=None, targets=None, all_targets=None,
                          tolerances=None, expected_failures=None)  # what validated
    proj = problems.check(project.discover, config.rootpath)
    if proj is None:
        problems.raise_if_any()
    project.activate(proj)
    _check_variables(config, problems)
    problems.check(frameworks.threads)
    problems.check(timer.gate_threads)
    problems.check(timer.gate_workers)
    problems.check(ahead.converters)
    problems.check(trainer.train_ahead)
    device, where = option_source(config, "device")
    problems.check(frameworks.use_device, device, where or "--convcheck-device")
    paths = {name: _path_option(config, proj, name, setting, problems)
             for name, setting in PATH_OPTIONS.items()}
    before = len(problems.lines)
    problems.check(project.load_models, proj)
    if len(problems.lines) == before and not len(MODELS):
        problems.add(f"{proj.describe()}: no model declared (add [model.NAME] tables, "
                     f"or models = ['module'] naming modules that call "
                     f"convcheck.declare_model)")
    if len(problems.lines) > before:
        problems.raise_if_any()  # everything below reads the models

    name, where = option_source(config, "profile")
    name = name or proj.settings.get("profile") or DEFAULT_PROFILE
    profiles = problems.check(load_profiles)
    if profiles is not None:
        if name in profiles:
            got.profile = profiles[name]
        else:
            problems.add(f"{where or 'profile'}: unknown profile {name!r}; valid profiles: "
                         f"{', '.join(profiles)}")
    models, where = option_source(config, "models")
    got.models = problems.check(cases.select_models, models, where=where)
    configured = problems.check(load_targets)
    shipped = cases.shipped_targets(MODELS.names())
    if configured is not None:
        clash = sorted(set(configured) & set(shipped))
        if clash:
            problems.add(f"a shipped artifact is named {clash[0]!r}, like a conversion target: "
                         f"name the artifact apart (e.g. 'shipped-{clash[0]}')")
        all_targets = configured | shipped
        got.all_targets = all_targets  # expected failures are checked against all
        for m in MODELS:  # a model's own target list names targets that exist
            spec = MODELS.get(m)
            for t in spec.targets or ():
                if t not in all_targets:
                    near = difflib.get_close_matches(t, list(all_targets), n=1)
                    problems.add(f"{spec.origin}: model {m!r}: targets: unknown target {t!r}"
                                 + (f" (did you mean {near[0]!r}?)" if near else "")
                                 + f"; valid: {', '.join(all_targets)}")
        targets, where = option_source(config, "targets")
        got.targets = problems.check(select_targets, targets, None, all_targets,
                                                  where=where)
        tol = paths["tolerances"]
        if tol is None or tol.is_file():  # else reported above
            got.tolerances = problems.check(
                load_tolerances, proj.files("tolerances", tol), tuple(all_targets),
                MODELS.names(), tuple({MODELS.get(m).dataset for m in MODELS}),
                tuple(profiles) if profiles else None)
        tolerances = got.tolerances
        if tolerances is not None and got.profile is not None:
            problems.check(check_implied_bounds, tolerances,
                           _bound_cases(got.profile.name, all_targets))
    _check_data_names(problems)
    baseline = _baseline(config, problems)
    golden, where = option_source(config, "save-golden")
    golden = Path(golden).expanduser().resolve() if golden else None
    if golden is not None and golden.exists() and not golden.is_dir():
        problems.add(f"{where}: {golden} is not a directory")
    replay, where = option_source(config, "golden")
    replay = Path(replay).expanduser().resolve() if replay else None
    if replay is not None and not any(replay.glob("*/golden.json")):
        problems.add(f"{where}: {replay}: no golden case (<case>/golden.json) in it: save some "
                     "with --convcheck-save-golden=DIR")
    locate, where = option_source(config, "locate")
    if locate not in (None, "failures", "always"):
        problems.add(f"{where}: {locate!r}: valid values: failures, always")
    shard = _shard(config, problems)
    got.expected_failures = problems.check(load_expected_failures)
    if got.profile is not None and got.models:
        problems.check(_check_profile, got.profile, got.models)
    problems.raise_if_any()
    config.stash[RUN] = Run(
        project=proj, profile=got.profile, models=tuple(got.models), targets=got.targets,
        all_targets=got.all_targets, tolerances=got.tolerances,
        expected_failures=tuple(got.expected_failures), data_dir=paths["data-dir"],
        cache_dir=paths["cache-dir"], reports_dir=paths["reports-dir"], baseline=baseline,
        locate_always=locate == "always", save_golden=golden, golden=replay, shard=shard)
    for marker, text in {**MARKERS, **_model_markers(got.models)}.items():
        config.addinivalue_line("markers", f"{marker}: {text}")


def _shard(config, problems: Problems) -> tuple[int, int] | None:
    """--convcheck-shard I/N: this run's part, I of N (1-based)."""
    value, where = option_source(config, "shard")
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        problems.add(f"{where}: {value!r}: write I/N, the part I of N to run (1 <= I <= N), "
                     "e.g. 1/3")
        return None
    return int(m[1]), int(m[2])


def _baseline(config, problems: Problems) -> Path | None:
    """The baseline run to gate against: a run directory with records, or a reports directory
    (its newest run), named by the option or variable when it is neither."""
    value, where = option_source(config, "baseline")
    if value is None:
        return None
    from convcheck.report.compare import CompareError, run_dir

    try:
        return run_dir(Path(value).expanduser().resolve())
    except CompareError as e:
        problems.add(f"{where}: {e}")
        return None


def _bound_cases(profile: str, targets: dict) -> list[dict]:
    """Every case the declared models and targets make under `profile`, as check_implied_bounds
    takes them: a tolerances file is checked whole, not only for this run's selection."""
    out = []
    for m in MODELS:
        spec = MODELS.get(m)
        classes = (spec.num_classes if spec.task.classification
                   and spec.task.output == "probabilities" else None)
        for fw in spec.frameworks:
            for t in (None, *(t for t in targets.values() if cases.applies(spec, fw, t))):
                case = {"model": m, "framework": fw, "dataset": spec.dataset,
                        "target": t and t.name, "format": t and t.format, "profile": profile,
                        "classes": classes}
                out.append(case | {"attack": None, "attacks": attacks_for(spec)})
                out += [case | {"attack": a} for a in attacks_for(spec)]
    return out


def _check_variables(config, problems: Problems) -> None:
    """An option given empty would silently mean its default (an empty path: the working
    directory), and a misspelt CONVCHECK_* variable would be ignored: both are refused."""
    for name in OPTIONS:
        value = config.getoption(f"--convcheck-{name}")
        if value is not None and not value.strip():
            problems.add(f"--convcheck-{name} is empty; leave it out for the default")
    # CONVCHECK_WORKERS: ./run.sh test's worker count (its -n), set in the same shells
    known = ({env for env, _ in OPTIONS.values()}
             | {frameworks.THREADS_ENV, timer.THREADS_ENV, timer.WORKERS_ENV,
                ahead.CONVERTERS_ENV, trainer.TRAIN_AHEAD_ENV, "CONVCHECK_WORKERS"})
    for var in sorted(v for v in os.environ if v.startswith("CONVCHECK_") and v not in known):
        near = difflib.get_close_matches(var, sorted(known), n=1)
        problems.add(f"${var} is not a convcheck variable"
                     + (f" (did you mean ${near[0]}?)" if near else "")
                     + f"; valid: {', '.join(sorted(known))}")


# option -> the settings key that gives it a default
PATH_OPTIONS = {"data-dir": "data_dir", "cache-dir": "cache_dir", "reports-dir": "reports_dir",
                "tolerances": "tolerances"}
DEFAULT_DIRS = {"cache-dir": ".cache", "reports-dir": "reports"}


def _path_option(config, proj, name: str, setting: str, problems: Problems) -> Path | None:
    """A path option, `~` expanded and resolved, checked for what it is used for: the data
    directory must exist, the cache and reports directories must be (or become) writable
    directories, a tolerances file must be a file. Problems name the option or variable."""
    value, where = option_source(config, name)
    if value is not None:
        path = Path(value).expanduser().resolve()
    elif name == "tolerances":
        return None  # the project's file (checked with the settings)
    else:
        where = f"{proj.describe()}: {setting}"
        path = proj.path_setting(setting)
        if path is None and name in DEFAULT_DIRS:
            path, where = (config.rootpath / DEFAULT_DIRS[name]).resolve(), f"default {name}"
    if path is None:
        return None
    shown = f"{where} = {value!r}" if value is not None and value != str(path) else where
    if name == "tolerances":
        if not path.is_file():
            problems.add(f"{shown}: {path} is {'a directory' if path.is_dir() else 'not found'}; "
                         f"give a tolerances TOML file")
    elif name == "data-dir":
        if not path.is_dir():
            problems.add(f"{shown}: {path}: no such directory")
    else:
        why = _unwritable(path)
        if why:
            problems.add(f"{shown}: {path}: {why}")
    return path


def _unwritable(path: Path) -> str | None:
    """Why files cannot be written under `path` (created when missing), or None."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def _model_markers(models) -> dict[str, str]:
    out = {}
    for m in models:
        spec = MODELS.get(m)
        out[m] = f"cases of model {m} ({spec.origin})"
        for k in spec.markers:
            out.setdefault(k, f"declared by models ({m}, ...)")
    from convcheck.declarations.registry import RUNTIMES

    for fmt in RUNTIMES:
        out.setdefault(fmt, f"cases that convert to {fmt}")
    return out


def _check_profile(profile, models) -> None:
    """What the selected models need from the profile is there."""
    # The profile's tables name declared models and their data sets (as tolerance overrides
    # do): a typo would otherwise fall back silently (every sample, or FGSM's default step).
    declared = MODELS.names()
    datasets = tuple(dict.fromkeys(MODELS.get(m).dataset for m in declared))
    eps = profile.attack("fgsm")["eps"]
    for table, names, valid, what in (
            ("train", profile.train, declared, "declared models"),
            ("data", profile.data, datasets, "data sets of the declared models"),
            ("attack.fgsm.eps", eps if isinstance(eps, dict) else {}, (*datasets, "default"),
             "data sets of the declared models, or default")):
        for n in names:
            if n not in valid:
                raise ConfigError(f"profile {profile.name!r}: {table}.{n}: unknown name {n!r}; "
                                  f"valid: {', '.join(valid)} ({what})")
    for m in models:
        spec = MODELS.get(m)
        if any(s.kind == "build" for s in spec.sources.values()) and m not in profile.train:
            raise ConfigError(f"{spec.origin}: model {m!r} is trained by convcheck (a build "
                              f"source), but profile {profile.name!r} has no train.{m} table "
                              f"of hyperparameters")
        if spec.kind == "image" and spec.task.classification and spec.input.range is not None:
            if profile.fgsm_eps(spec.dataset) is None:
                raise ConfigError(f"profile {profile.name!r}: attack.fgsm.eps has no entry for "
                                  f"data set {spec.dataset!r} (model {m}) and no default")


def check_attack_sizes(profile, models, labelled=lambda spec: True) -> None:
    """attack.genetic.max_words against each model's sequence length, where the attack will
    run: called once the data is loaded (plugin.session), since it runs on labelled data only."""
    for m in models:
        spec = MODELS.get(m)
        if why_not("genetic", spec, labelled(spec)) is None:
            g = profile.attack("genetic")
            if g["max_words"] > spec.input_shape[0]:
                raise ConfigError(f"profile {profile.name!r}: attack.genetic.max_words "
                                  f"{g['max_words']} exceeds model {m}'s sequence length "
                                  f"{spec.input_shape[0]}")


def _check_data_names(problems: Problems) -> None:
    """A model whose data is a registered name (no npz, no loader) names one that exists: a
    typo would otherwise surface as a crash when the data loads."""
    from convcheck.declarations.registry import DATASETS

    for m in MODELS:
        spec = MODELS.get(m)
        d = spec.data
        if d.npz is None and d.loader is None and d.name not in DATASETS:
            near = difflib.get_close_matches(d.name, list(DATASETS), n=1)
            problems.add(f"{spec.origin}: model {m!r}: data.name {d.name!r} is no registered "
                         f"data set" + (f" (did you mean {near[0]!r}?)" if near else "")
                         + f"; registered: {', '.join(DATASETS)}; or give data.npz or "
                           f"data.loader")
