"""A cache holding a faulty conversion in place of a good one: the suite then runs on it as a
user runs it (a subprocess with --convcheck-cache-dir), and must catch the fault."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convcheck.pipeline import cache


def cache_with_fault(bench, tmp: Path, model: str, target: str, make, tag: str = ""
                     ) -> tuple[Path, object]:
    """A cache under tmp/cache holding the session's entries for `model`'s `target` conversions
    (and their originals), its PyTorch conversion replaced by make(good_path, dst) -> path, its
    checksum updated so the cache takes it as its own. Returns (the faulty file, the good
    Converted it replaced). Trains and converts into the session's cache first if needed.
    tag: take instead the entries another compute built in the session's cache (e.g. '-t1',
    a run with $CONVCHECK_THREADS=1: workbench.compute_tag); the faulty file is made from its
    conversion, at the same path in tmp/cache as returned."""
    if target not in bench.targets:
        pytest.skip(f"target {target} not selected (--convcheck-targets)")
    good = [bench.converted(model, fw, target, seed) for fw in bench.targets[target].frameworks()
            for seed in bench.profile.seeds]
    root = tmp / "cache"
    (root / "models").mkdir(parents=True)
    for name in ("data", "npm"):  # the data sets, shared read-only
        if (bench.cache_dir / name).exists():
            (root / name).symlink_to(bench.cache_dir / name)
    bases = [bench.converted(c.original.spec.name, c.original.framework, c.target.base,
                             c.original.seed) for c in good if c.target.base is not None]
    def tagged(entry: Path, stem: str) -> Path:
        return entry.with_name(entry.name.replace(stem, stem + tag, 1))

    for conv in good + bases:  # a variant's base conversion too: it is not made again
        stem = conv.original.stem
        for entry in (tagged(conv.original.entry, stem), tagged(conv.path.parent, stem)):
            if not entry.is_dir():
                pytest.fail(f"no cache entry {entry}: build it first (the tag {tag!r}'s compute)")
            if not (root / "models" / entry.name).exists():
                shutil.copytree(entry, root / "models" / entry.name)
        # The originals' adversarial sets (made on the original: the fault does not touch them).
        for entry in (bench.cache_dir / "attacks").glob(f"{stem}{tag}.*"):
            if not (root / "attacks" / entry.name).exists():
                shutil.copytree(entry, root / "attacks" / entry.name)
    victim = next(c for c in good if c.original.framework == "pytorch")
    entry = root / "models" / tagged(victim.path.parent, victim.original.stem).name
    faulty = make(entry / victim.path.name, tmp / f"faulty{victim.path.suffix}")
    if faulty.is_dir():  # a bundle (.mlpackage)
        shutil.rmtree(entry / victim.path.name)
        shutil.copytree(faulty, entry / victim.path.name)
    else:
        shutil.copyfile(faulty, entry / victim.path.name)
    meta = json.loads((entry / cache.META).read_text())
    meta["files"] = {str(p.relative_to(entry)): cache.file_sha256(p)
                     for p in sorted(entry.rglob("*")) if p.is_file() and p.name != cache.META}
    (entry / cache.META).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return entry / victim.path.name, victim


ROOT = Path(__file__).resolve().parent.parent


def run_suite(bench, *args: str) -> tuple[int, str]:
    """The suite in a subprocess from the repository root, as a user runs it: the session's
    profile and data directory, none of this session's CONVCHECK_* variables; args name the
    test files, models, targets, cache and reports. Returns (exit status, output)."""
    cmd = [sys.executable, "-m", "pytest", f"--convcheck-profile={bench.profile.name}", *args]
    if bench.data_dir:
        cmd.append(f"--convcheck-data-dir={bench.data_dir}")
    # Nor this session's pytest variables: a run of its own, not a pytest-xdist worker
    # (pytest-benchmark takes PYTEST_XDIST_WORKER for one and stops timing).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVCHECK_", "PYTEST_"))}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr
