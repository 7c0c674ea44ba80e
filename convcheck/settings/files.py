"""Reading the settings files: which files (the package's defaults, then the project's), merged
table by table, and the checks every file's keys and values go through (ConfigError names the
file and the key)."""
from __future__ import annotations

import tomllib
from pathlib import Path

from convcheck.settings import project as _project


class ConfigError(Exception):
    pass


def _files(key: str, paths) -> list[Path]:
    """The files to read for `key`: those given, else the packaged one and the project's."""
    if paths is None:
        return _project.active().files(key)
    return [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]


def _merge(a: dict, b: dict) -> dict:
    """b over a, table by table (a value that is not a table replaces the one below it)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_merged(paths: list[Path]) -> tuple[dict, str]:
    raw = {}
    for p in paths:
        raw = _merge(raw, _read_toml(p))
    return raw, " + ".join(str(p) for p in paths)


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None


def _check_type(path, where, key, value, typ):
    ok = isinstance(value, typ) and not (typ in (int, float, (int, float)) and isinstance(value, bool))
    if not ok:
        name = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ConfigError(f"{path}: {where}.{key} must be {name}, got {value!r}")


def _unknown(path, where, keys, valid):
    if not isinstance(keys, dict):
        raise ConfigError(f"{path}: {where} must be a table, got {keys!r}")
    bad = sorted(set(keys) - set(valid))
    if bad:
        raise ConfigError(
            f"{path}: unknown key {where}.{bad[0]}; valid keys: {', '.join(sorted(valid))}"
        )
