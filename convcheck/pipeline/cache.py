"""An on-disk cache of expensive artifacts (trained models, conversions).

An entry is a directory named by a readable id (``lenet5-keras-s0-smoke``) holding the
artifact's files and a ``meta.json`` with the key it was built under and a sha256 of every
file. Entries are written into a temporary sibling and renamed into place, so a crash never
leaves a half-written entry; on load, a missing/garbled meta, a different key (stale) or a
file whose checksum differs (corrupt) is reported and the entry rebuilt, never loaded.

Processes share the cache (pytest-xdist workers, concurrent runs): an entry is built under an
inter-process lock (``.<name>.lock``, filelock), so it is built once; a process that finds it
being built waits, then loads what the builder made. The lock is the OS's (flock): a builder
that crashes or is killed releases it with its process, so nobody waits on it forever.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

META = "meta.json"
# Temporary directories named before they carried their pid: removed once this old.
LEGACY_AGE_S = 24 * 3600


def key_of(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(entry: Path) -> list[Path]:
    return sorted(p for p in entry.rglob("*") if p.is_file() and p.name != META)


def check_entry(entry: Path, key: str) -> str | None:
    """None if the entry is valid for `key`, else why it is not."""
    if not entry.is_dir():
        return "missing"
    try:
        meta = json.loads((entry / META).read_text())
        recorded = meta["files"]
        if not isinstance(recorded, dict):
            raise TypeError(f"'files' is {type(recorded).__name__}, not an object")
    except FileNotFoundError:
        return f"corrupt: {META} missing"
    except (ValueError, KeyError, TypeError) as e:
        return f"corrupt: {META} unreadable ({e})"
    if meta.get("key") != key:
        return f"stale: built under key {meta.get('key')}, need {key}"
    present = {str(p.relative_to(entry)) for p in _files(entry)}
    if present != set(recorded):
        return f"corrupt: files {sorted(present ^ set(recorded))} differ from {META}"
    for rel, digest in recorded.items():
        if file_sha256(entry / rel) != digest:
            return f"corrupt: checksum of {rel} differs from {META}"
    return None


def looks_fresh(entry: Path, parts: dict) -> bool:
    """Whether the entry was built under `parts`' key, from its meta alone (no checksums): what
    a plan of the work ahead needs. A corrupt file is still found, and rebuilt, on load."""
    try:
        return json.loads((entry / META).read_text()).get("key") == key_of(parts)
    except (OSError, ValueError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep(entry: Path, log: Callable[[str], None] = print) -> list[Path]:
    """Remove what killed builds of `entry` left: temporary siblings ``.<name>.tmp-<pid>-*``
    (and ``.<name>.old-<pid>``) whose process is gone. A live process's are left alone (a
    parallel worker may be building)."""
    removed = []
    for p in entry.parent.glob(f".{entry.name}.*"):
        tag = p.name[len(entry.name) + 2:]
        kind, _, rest = tag.partition("-")
        pid = rest.split("-", 1)[0]
        if tag == "lock":  # the entry's build lock: a process may hold it (cached())
            continue
        if kind in ("tmp", "old") and pid.isdigit():
            if _alive(int(pid)):
                continue
        elif "." in tag or "-" in tag or time.time() - p.stat().st_mtime < LEGACY_AGE_S:
            continue  # not ours (a target's entry is "<name>.<target>", unhidden), or recent
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    if removed:
        log(f"cache: {entry.name}: removed {len(removed)} left by a killed build "
            f"({', '.join(p.name for p in removed)})")
    return removed


def cached(entry: Path, parts: dict, build: Callable[[Path], None],
           log: Callable[[str], None] = print) -> Path:
    """Return `entry`, building it with `build(tmpdir)` unless a valid entry for `parts` exists."""
    key = key_of(parts)
    if check_entry(entry, key) is None:
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    with lock(entry, log):
        return _build(entry, key, parts, build, log)


def lock(entry: Path, log: Callable[[str], None] = print) -> FileLock:
    """The entry's build lock, acquired: at once, or after saying that another process holds
    it and waiting for it (a build takes minutes: no timeout; a dead holder's lock is freed
    by the OS)."""
    held = FileLock(entry.parent / f".{entry.name}.lock")
    try:
        held.acquire(timeout=0)
    except Timeout:
        log(f"cache: {entry.name}: another process is building it; waiting for it")
        t0 = time.perf_counter()
        held.acquire()
        log(f"cache: {entry.name}: waited {time.perf_counter() - t0:.0f} s")
    return held


def _build(entry: Path, key: str, parts: dict, build: Callable[[Path], None],
           log: Callable[[str], None]) -> Path:
    """Build the entry under its lock, unless the process that held it before built it."""
    problem = check_entry(entry, key)
    if problem is None:
        return entry
    if problem != "missing":
        log(f"cache: {entry.name}: {problem}; rebuilding")
    sweep(entry, log)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.tmp-{os.getpid()}-", dir=entry.parent))
    try:
        build(tmp)
        meta = {"key": key, "parts": parts, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "files": {str(p.relative_to(tmp)): file_sha256(p) for p in _files(tmp)}}
        (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        if entry.exists():
            old = entry.with_name(f".{entry.name}.old-{os.getpid()}")
            os.replace(entry, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return entry


def source_digest(*paths: Path) -> str:
    """A digest of source files' bytes: the code part of a cache key."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def callable_file(ref: str) -> Path:
    """The source file of a build/load callable ("module:function"): its code is part of a
    cache key."""
    import inspect

    from convcheck.declarations.spec import import_callable

    return Path(inspect.getsourcefile(import_callable(ref)))
