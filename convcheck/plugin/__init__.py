"""convcheck's pytest plugin (entry point ``pytest11: convcheck``).

Inert unless the session uses it: this module imports nothing but pytest and the standard
library, registers its options (all named ``--convcheck-*``, so they collide with nobody's) and
does nothing else, until it finds the project's settings (``convcheck.toml``, or
``[tool.convcheck]`` in ``pyproject.toml``, at the rootdir) or ``--convcheck`` is given. Only
then are the suite's plugins (convcheck.plugin.options, .session, .records, .parametrize,
.fixtures, .expected, .benchmarks, .hypothesis, .gate, .golden, .workers, .order,
.speed_gates) imported and
registered: another project's test session pays no import, prints no header line and collects
nothing more.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

# option (without the leading --convcheck-) -> (environment variable, help)
OPTIONS = {
    "profile": ("CONVCHECK_PROFILE", "profile (packaged: smoke, standard, paper; a project's "
                                     "profiles file adds or extends them); default smoke"),
    "data-dir": ("CONVCHECK_DATA_DIR", "directory with the standard data files (MNIST, "
                                       "CIFAR-10, IMDb); default: the offline data sets that "
                                       "ship with installed packages"),
    "cache-dir": ("CONVCHECK_CACHE_DIR", "where trained and converted models are cached "
                                         "(default: <rootdir>/.cache)"),
    "models": ("CONVCHECK_MODELS", "comma-separated models to run (default: every declared one)"),
    "targets": ("CONVCHECK_TARGETS", "comma-separated conversion targets (default: all)"),
    "tolerances": ("CONVCHECK_TOLERANCES", "tolerances file, over the packaged defaults "
                                           "(default: the project's)"),
    "reports-dir": ("CONVCHECK_REPORTS_DIR", "where each run's records and summary go "
                                             "(default: <rootdir>/reports)"),
    "locate": ("CONVCHECK_LOCATE", "when to localise an ONNX conversion's divergence: 'failures' "
                                   "(default: a failing check's message says where) or 'always' "
                                   "(every conversion's equivalence check records it)"),
    "save-golden": ("CONVCHECK_SAVE_GOLDEN", "keep golden data in this directory: per ONNX "
                                             "conversion compared, its inputs, the original's "
                                             "and its outputs, the artifact and the versions "
                                             "(python -m convcheck.golden DIR replays them)"),
    "golden": ("CONVCHECK_GOLDEN", "replay golden data saved by --convcheck-save-golden in this "
                                   "directory: each case's current conversion (this run's, "
                                   "where it declares the case; else the saved file) on the "
                                   "saved inputs, within abs_max of the saved outputs"),
    "shard": ("CONVCHECK_SHARD", "run part I of N of the selected tests (I/N, e.g. 1/3: a CI "
                                 "matrix's machines; each original model's tests stay in one "
                                 "part); python -m convcheck.report merge RUN... joins the "
                                 "parts' run directories into one report"),
    "device": ("CONVCHECK_DEVICE", "where originals train and are attacked: cpu (default), "
                                   "cuda (torch's GPU; Keras too where its TensorFlow sees one), "
                                   "or auto (cuda where present); conversions and runtimes stay "
                                   "on the CPU. GPU-trained originals are cached apart"),
    "baseline": ("CONVCHECK_BASELINE", "gate this run against a baseline run (a run directory, "
                                       "reports/runs/<stamp>, or a reports directory: its newest "
                                       "run): a regression fails the session; compare.html in "
                                       "this run's directory says what changed"),
}


def pytest_addoption(parser):
    group = parser.getgroup("convcheck", "convcheck: conformance of converted models")
    group.addoption("--convcheck", action="store_true", default=False,
                    help="use convcheck in this session even without project settings "
                         "(convcheck.toml or [tool.convcheck] in pyproject.toml)")
    for name, (env, text) in OPTIONS.items():
        group.addoption(f"--convcheck-{name}", default=None, metavar="VALUE",
                        help=f"{text} (env {env})")


def _has_settings(root: Path) -> bool:
    if (root / "convcheck.toml").is_file():
        return True
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        with open(pyproject, "rb") as f:
            return "convcheck" in tomllib.load(f).get("tool", {})
    except (OSError, tomllib.TOMLDecodeError):
        return True  # let the active plugin report the broken file


def active(config) -> bool:
    return bool(config.getoption("convcheck")) or _has_settings(config.rootpath)


def _spaced(config) -> list[str]:
    """The --convcheck-NAME VALUE options of the command line written with a space."""
    args = list(config.invocation_params.args)
    return [f"{a} {args[i + 1]}" for i, a in enumerate(args[:-1])
            if a.startswith("--convcheck-") and a[len("--convcheck-"):] in OPTIONS]


def _rootdir_without_option_values(config) -> Path:
    """The rootdir pytest would have taken had it known the options' values. pytest decides the
    rootdir on its first parse, before any plugin's options are registered, and reads the value
    of `--convcheck-cache-dir /tmp/x` as a test path (_pytest/config/__init__.py, _preparse):
    an existing path moves the rootdir to the common ancestor. Recomputed here with pytest's own
    function (private, but no public one exists) on the test paths as finally parsed."""
    from _pytest.config.findpaths import determine_setup

    return determine_setup(inifile=config.option.inifilename,
                           override_ini=config.option.override_ini,
                           args=[str(a) for a in config.option.file_or_dir or []],
                           rootdir_cmd_arg=config.option.rootdir or None,
                           invocation_dir=config.invocation_params.dir)[0]


def check_option_spelling(config) -> None:
    """Refuse a run whose rootdir a space-separated option value moved: it would run with the
    wrong project's settings (or none) and collect the wrong tree. Written with '=', or where
    the value moved nothing, the run goes on."""
    spaced = _spaced(config)
    if not spaced:
        return
    rootdir = _rootdir_without_option_values(config)
    if Path(rootdir) != Path(config.rootpath):
        fixed = ", ".join(p.replace(" ", "=", 1) for p in spaced)
        raise pytest.UsageError(
            f"convcheck: {spaced[0]}: pytest read the option's value as a test path before "
            f"convcheck's options were known, and took {config.rootpath} as the rootdir instead "
            f"of {rootdir}; write the option with '=': {fixed}")


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark opens its storage
def pytest_configure(config):
    check_option_spelling(config)
    if not active(config):
        return
    from convcheck.plugin import (
        benchmarks,
        expected,
        fixtures,
        gate,
        hypothesis,
        options,
        order,
        parametrize,
        records,
        session,
        speed_gates,
        workers,
    )
    from convcheck.plugin import golden as golden_plugin

    benchmarks.default_storage(config)
    # Registered now, their pytest_configure runs at once, in this order: options validates
    # everything (a usage error ends the session here), session makes the Workbench, records
    # prepares the run's records; the others add hooks and fixtures.
    for module in (options, session, records, parametrize, fixtures, expected, benchmarks,
                   hypothesis, gate, golden_plugin, workers, order, speed_gates):
        config.pluginmanager.register(module, module.__name__)


def option(config, name: str):
    """An option's value: the command line, else its environment variable (None: neither)."""
    return option_source(config, name)[0]


def option_source(config, name: str) -> tuple[str | None, str]:
    """(value, where it came from: "--convcheck-NAME" or "$CONVCHECK_NAME"), so that an error
    names what the user set; (None, "") when neither is set (an empty variable is unset)."""
    value = config.getoption(f"--convcheck-{name}")
    if value is not None:
        return value, f"--convcheck-{name}"
    env = OPTIONS[name][0]
    value = os.environ.get(env, "").strip()
    return (value, f"${env}") if value else (None, "")
