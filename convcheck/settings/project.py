"""A user project: where its convcheck settings are, and which files replace or extend the
defaults that ship inside the package.

Settings come from, highest first:

1. a command-line option (``--convcheck-profile`` ...) or its environment variable;
2. ``convcheck.toml`` at the project's root (top-level keys);
3. ``[tool.convcheck]`` in the project's ``pyproject.toml``;
4. the package's defaults (``convcheck/defaults/*.toml``).

A project's profiles, tolerances and targets files extend the packaged ones: a profile or
target of the same name is merged key by key over the packaged one, tolerance ``[default]``
values replace the packaged defaults, and its ``[[override]]`` entries come after the packaged
ones (the last match wins). Models are declared inline (``[model.NAME]`` tables) or by Python
modules the settings name (``models = ["mypkg.models"]``), imported at start-up.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULTS = Path(__file__).resolve().parents[1] / "defaults"
CONFIG_FILE = "convcheck.toml"
# key -> type; paths are relative to the file that names them
SETTINGS = {"models": list, "model": dict, "profiles": str, "tolerances": str, "targets": str,
            "expected_failures": str, "profile": str, "cache_dir": str, "reports_dir": str,
            "data_dir": str, "sys_path": list}
FILES = ("profiles", "tolerances", "targets", "expected_failures")


class ProjectError(Exception):
    pass


@dataclass
class Project:
    root: Path
    source: Path | None  # the file the settings came from (None: no project settings)
    settings: dict = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return self.source is not None

    def describe(self) -> str:
        if self.source is None:
            return "no project settings (package defaults)"
        table = " [tool.convcheck]" if self.source.name == "pyproject.toml" else ""
        return f"{self.source}{table}"

    def file(self, key: str) -> Path | None:
        """The project's own file for `key` (profiles, tolerances, ...), if it names one."""
        value = self.settings.get(key)
        return self._path(value) if value else None

    def files(self, key: str, override: str | Path | None = None) -> list[Path]:
        """The packaged file for `key`, then the project's (or `override`, which replaces it)."""
        own = Path(override).expanduser().resolve() if override else self.file(key)
        return [DEFAULTS / f"{key}.toml", *([own] if own else [])]

    def path_setting(self, key: str) -> Path | None:
        value = self.settings.get(key)
        return self._path(value) if value else None

    def _path(self, value: str) -> Path:
        base = self.source.parent if self.source else self.root
        return (base / Path(value).expanduser()).resolve()


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ProjectError(f"{path}: malformed TOML: {e}") from None
    except OSError as e:
        raise ProjectError(f"{path}: cannot read: {e}") from None


def discover(root: Path) -> Project:
    """The project whose root is `root`: convcheck.toml wins over pyproject's [tool.convcheck]."""
    root = Path(root).resolve()
    own = root / CONFIG_FILE
    if own.is_file():
        return _project(root, own, _read(own))
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        table = _read(pyproject).get("tool", {}).get("convcheck")
        if table is not None:
            return _project(root, pyproject, table)
    return Project(root, None, {})


def _project(root: Path, source: Path, settings) -> Project:
    where = f"{source}{' [tool.convcheck]' if source.name == 'pyproject.toml' else ''}"
    if not isinstance(settings, dict):
        raise ProjectError(f"{where}: must be a table")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ProjectError(f"{where}: unknown key {unknown[0]!r}; valid keys: "
                           f"{', '.join(sorted(SETTINGS))}")
    for k, v in settings.items():
        if not isinstance(v, SETTINGS[k]):
            raise ProjectError(f"{where}: {k} must be a {SETTINGS[k].__name__}, got {v!r}")
    for k in ("models", "sys_path"):
        if not all(isinstance(m, str) and m for m in settings.get(k, [])):
            raise ProjectError(f"{where}: {k} must be a list of non-empty strings")
    p = Project(root, source, settings)
    for key in FILES:
        f = p.file(key)
        if f is not None and not f.is_file():
            raise ProjectError(f"{where}: {key} = {settings[key]!r}: no such file {f}")
    return p


_active: Project | None = None


def activate(project: Project) -> None:
    global _active
    _active = project


def active() -> Project:
    """The project of this process: the one the plugin activated, else the one at the cwd."""
    return _active if _active is not None else discover(Path.cwd())


def load_models(project: Project) -> None:
    """Register the project's models: its Python modules first, then its inline tables."""
    import importlib
    import sys

    from convcheck.declarations import registry
    from convcheck.declarations.spec import SpecError, parse_model

    for entry in reversed(project.settings.get("sys_path", ["."])):
        path = str(project._path(entry))
        if path not in sys.path:
            sys.path.insert(0, path)
    for module in project.settings.get("models", []):
        if module in sys.modules:
            continue  # declared already (a second session in one process)
        try:
            importlib.import_module(module)
        except SpecError:
            raise
        except Exception as e:
            raise ProjectError(f"{project.describe()}: models: cannot import {module!r}: "
                               f"{type(e).__name__}: {e}") from e
    for name, body in project.settings.get("model", {}).items():
        if name in registry.MODELS:
            continue
        registry.MODELS.register(name, parse_model(name, body, project.describe(),
                                                   project.source.parent))
