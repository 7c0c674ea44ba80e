"""Tests of convcheck.pipeline.cache: build once, detect stale/corrupt entries, never leave half an entry."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from convcheck.pipeline.cache import META, cached, check_entry, key_of

PARTS = {"model": "lenet5", "framework": "keras", "seed": 0, "hyperparams": {"lr": 0.05}}


class Builder:
    """A build function that counts its calls and writes two files (one in a subfolder)."""

    def __init__(self, payload: bytes = b"weights-v1"):
        self.calls = 0
        self.payload = payload

    def __call__(self, tmp: Path) -> None:
        self.calls += 1
        (tmp / "model.bin").write_bytes(self.payload)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "extra.txt").write_text("hello")


@pytest.fixture
def entry(tmp_path) -> Path:
    return tmp_path / "models" / "lenet5-keras-s0-smoke"


def build_once(entry, parts=PARTS):
    build, logs = Builder(), []
    cached(entry, parts, build, logs.append)
    return build, logs


def leftovers(entry: Path) -> list[str]:
    """Everything in the cache folder besides the entry itself and its build lock (temp dirs,
    old entries). The lock file stays: removing it would let a waiting process lock a file
    that another then replaces (filelock keeps it for that reason)."""
    return sorted(p.name for p in entry.parent.iterdir()
                  if p != entry and p.name != f".{entry.name}.lock")


def test_builds_once_then_loads(entry):
    build, logs = Builder(), []
    assert cached(entry, PARTS, build, logs.append) == entry
    assert build.calls == 1
    assert (entry / "model.bin").read_bytes() == b"weights-v1"
    assert (entry / "sub" / "extra.txt").read_text() == "hello"
    meta = json.loads((entry / META).read_text())
    assert meta["key"] == key_of(PARTS)
    assert set(meta["files"]) == {"model.bin", "sub/extra.txt"}
    assert meta["parts"] == PARTS
    assert logs == []  # a first build is not a problem worth a log line

    for _ in range(2):
        assert cached(entry, PARTS, build, logs.append) == entry
    assert build.calls == 1
    assert logs == []
    assert check_entry(entry, key_of(PARTS)) is None
    assert leftovers(entry) == []


def test_key_is_order_independent():
    assert key_of({"a": 1, "b": {"c": 2}}) == key_of({"b": {"c": 2}, "a": 1})
    assert key_of({"a": 1}) != key_of({"a": 2})


def test_corrupt_content_is_rebuilt(entry):
    build_once(entry)
    (entry / "model.bin").write_bytes(b"weights-v2")  # same length, different bytes
    assert check_entry(entry, key_of(PARTS)).startswith("corrupt: checksum of model.bin")
    build, logs = Builder(), []
    cached(entry, PARTS, build, logs.append)
    assert build.calls == 1
    assert (entry / "model.bin").read_bytes() == b"weights-v1"
    assert len(logs) == 1 and "corrupt" in logs[0] and "model.bin" in logs[0]
    assert entry.name in logs[0] and "rebuilding" in logs[0]
    assert leftovers(entry) == []  # the replaced entry is gone too


def test_corrupt_file_in_subfolder_is_detected(entry):
    build_once(entry)
    (entry / "sub" / "extra.txt").write_text("HELLO")
    assert "checksum of sub/extra.txt" in check_entry(entry, key_of(PARTS))


def test_missing_meta_is_rebuilt(entry):
    build_once(entry)
    (entry / META).unlink()
    build, logs = Builder(), []
    cached(entry, PARTS, build, logs.append)
    assert build.calls == 1
    assert len(logs) == 1 and "corrupt" in logs[0] and META in logs[0] and "missing" in logs[0]
    assert check_entry(entry, key_of(PARTS)) is None


@pytest.mark.parametrize("garbled", [
    "{not json", "", "[]", '"a string"', '{"key": "%(key)s"}', '{"key": "%(key)s", "files": null}',
    '{"key": "%(key)s", "files": ["model.bin", "sub/extra.txt"]}',
])
def test_garbled_meta_is_rebuilt(entry, garbled):
    build_once(entry)
    (entry / META).write_text(garbled % {"key": key_of(PARTS)})
    problem = check_entry(entry, key_of(PARTS))
    assert problem.startswith(f"corrupt: {META} unreadable"), problem
    build, logs = Builder(), []
    cached(entry, PARTS, build, logs.append)
    assert build.calls == 1
    assert len(logs) == 1 and "corrupt" in logs[0]
    assert check_entry(entry, key_of(PARTS)) is None


def test_different_key_is_stale_and_rebuilt(entry):
    build_once(entry)
    new_parts = {**PARTS, "hyperparams": {"lr": 0.01}}
    build, logs = Builder(b"weights-new"), []
    cached(entry, new_parts, build, logs.append)
    assert build.calls == 1
    assert len(logs) == 1 and "stale" in logs[0]
    assert key_of(PARTS) in logs[0] and key_of(new_parts) in logs[0]
    assert (entry / "model.bin").read_bytes() == b"weights-new"
    assert json.loads((entry / META).read_text())["key"] == key_of(new_parts)
    # The old key is now the stale one.
    assert check_entry(entry, key_of(PARTS)).startswith("stale")
    assert leftovers(entry) == []


def test_failed_build_leaves_nothing_behind(entry):
    def failing(tmp: Path) -> None:
        (tmp / "model.bin").write_bytes(b"half")
        raise RuntimeError("training diverged")

    with pytest.raises(RuntimeError, match="training diverged"):
        cached(entry, PARTS, failing, lambda line: None)
    assert not entry.exists()
    assert leftovers(entry) == []  # no temp dir either
    # The next call builds from scratch.
    build, _ = build_once(entry)
    assert build.calls == 1


def test_failed_rebuild_keeps_nothing_half_written(entry):
    """A rebuild that fails leaves the previous entry as it was (still reported, never loaded
    half-built) and no temp dir."""
    build_once(entry)
    new_parts = {**PARTS, "seed": 1}

    def failing(tmp: Path) -> None:
        (tmp / "model.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached(entry, new_parts, failing, lambda line: None)
    assert leftovers(entry) == []
    assert (entry / "model.bin").read_bytes() == b"weights-v1"
    assert check_entry(entry, key_of(PARTS)) is None
    assert check_entry(entry, key_of(new_parts)).startswith("stale")


def test_extra_file_is_corrupt(entry):
    build_once(entry)
    (entry / "stray.bin").write_bytes(b"x")
    problem = check_entry(entry, key_of(PARTS))
    assert problem.startswith("corrupt: files") and "stray.bin" in problem
    build, logs = Builder(), []
    cached(entry, PARTS, build, logs.append)
    assert build.calls == 1 and "corrupt" in logs[0]
    assert not (entry / "stray.bin").exists()


def test_missing_file_is_corrupt(entry):
    build_once(entry)
    (entry / "sub" / "extra.txt").unlink()
    problem = check_entry(entry, key_of(PARTS))
    assert problem.startswith("corrupt: files") and "sub/extra.txt" in problem


def test_check_entry_on_absent_entry(entry):
    assert check_entry(entry, key_of(PARTS)) == "missing"


def test_a_killed_builds_leftovers_are_swept(entry):
    """A build killed with SIGKILL leaves its temporary directory: the next build of the entry
    removes those of dead processes and leaves a live process's (a parallel worker's) alone."""
    entry.parent.mkdir(parents=True)
    dead = entry.parent / f".{entry.name}.tmp-{2 ** 22 + 12345}-abcd"  # above pid_max: no process
    live = entry.parent / f".{entry.name}.tmp-{os.getpid()}-efgh"
    other = entry.parent / f".{entry.name}x.tmp-{2 ** 22 + 12345}-ijkl"  # another entry's
    for d in (dead, live, other):
        d.mkdir()
        (d / "model.bin").write_bytes(b"half")
    _, logs = build_once(entry)
    assert not dead.exists() and live.exists() and other.exists()
    assert any("removed 1 left by a killed build" in line for line in logs), logs


def test_entries_of_different_data_live_side_by_side(tmp_path):
    """Models trained on a --convcheck-data-dir are cached apart from the default data's: a run
    on other data never evicts them (the default data keeps its untagged names)."""
    from convcheck.data import Provenance
    from convcheck.pipeline.workbench import Workbench

    class DS:
        provenance = Provenance("idx files in /data", 60000, 10000, "3fa2b1c0" + "0" * 56)

    assert Workbench(None, None, tmp_path)._data_tag(DS) == ""
    assert Workbench(None, tmp_path, tmp_path)._data_tag(DS) == "-data3fa2b1c0"
