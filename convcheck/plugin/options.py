"""Start-up: the project's settings, its models, the options, and every check of them.

Everything a run is configured with is read and validated here, in pytest_configure, before a
test is collected: a mistake (an unknown name, a malformed file, a model declaration that
cannot be used) is one usage error naming the file, the model and the field.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from convcheck import cases, project
from convcheck.config import (ConfigError, get_profile, load_expected_failures, load_targets,
                              load_tolerances, select_targets)
from convcheck.plugin import option
from convcheck.registry import MODELS
from convcheck.spec import SpecError

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
}


def _usage(e: Exception) -> pytest.UsageError:
    return pytest.UsageError(f"convcheck: {str(e).strip(chr(39) + chr(34))}")


def pytest_configure(config):
    try:
        proj = project.discover(config.rootpath)
        project.activate(proj)
        project.load_models(proj)
        if not len(MODELS):
            raise ConfigError(f"{proj.describe()}: no model declared (add [model.NAME] tables, "
                              f"or models = ['module'] naming modules that call "
                              f"convcheck.declare_model)")
        name = option(config, "profile") or proj.settings.get("profile") or DEFAULT_PROFILE
        config.convcheck_profile = get_profile(name)
        config.convcheck_models = cases.select_models(option(config, "models"))
        configured, shipped = load_targets(), cases.shipped_targets(MODELS.names())
        clash = sorted(set(configured) & set(shipped))
        if clash:
            raise ConfigError(f"a shipped artifact is named {clash[0]!r}, like a conversion "
                              f"target: name the artifact apart (e.g. 'shipped-{clash[0]}')")
        all_targets = configured | shipped
        config.convcheck_targets = select_targets(option(config, "targets"), targets=all_targets)
        config.convcheck_tolerances = load_tolerances(
            proj.files("tolerances", option(config, "tolerances")), targets=tuple(all_targets),
            models=MODELS.names(), datasets=tuple({MODELS.get(m).dataset for m in MODELS}))
        config.convcheck_expected_failures = load_expected_failures()
        _check_profile(config.convcheck_profile, config.convcheck_models)
    except (ConfigError, SpecError, project.ProjectError, KeyError) as e:
        raise _usage(e) from None
    data_dir = option(config, "data-dir") or proj.path_setting("data_dir")
    if data_dir and not Path(data_dir).expanduser().is_dir():
        raise pytest.UsageError(f"convcheck: data directory {data_dir}: no such directory")
    config.convcheck_project = proj
    config.convcheck_data_dir = Path(data_dir).expanduser() if data_dir else None
    config.convcheck_cache_dir = _dir(config, proj, "cache-dir", "cache_dir", ".cache")
    config.convcheck_reports_dir = _dir(config, proj, "reports-dir", "reports_dir", "reports")
    for marker, text in {**MARKERS, **_model_markers(config.convcheck_models)}.items():
        config.addinivalue_line("markers", f"{marker}: {text}")


def _dir(config, proj, name: str, setting: str, default: str) -> Path:
    value = option(config, name)
    if value:
        return Path(value).expanduser().resolve()
    return proj.path_setting(setting) or (config.rootpath / default).resolve()


def _model_markers(models) -> dict[str, str]:
    out = {}
    for m in models:
        spec = MODELS.get(m)
        out[m] = f"cases of model {m} ({spec.origin})"
        for k in spec.markers:
            out.setdefault(k, f"declared by models ({m}, ...)")
    from convcheck.registry import RUNTIMES

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
        if spec.input.vocab_size and spec.task.classification:
            g = profile.attack("genetic")
            if g["max_words"] > spec.input_shape[0]:
                raise ConfigError(f"profile {profile.name!r}: attack.genetic.max_words "
                                  f"{g['max_words']} exceeds model {m}'s sequence length "
                                  f"{spec.input_shape[0]}")
