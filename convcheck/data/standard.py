"""The standard data sets by name: load_dataset reads a data directory (mnist, cifar10, imdb:
one module each) or builds the offline source once and caches it as .npz under
cache_dir/data/; download_dataset fetches the canonical files (never called by the suite)."""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from convcheck.data import cifar10, imdb, mnist
from convcheck.data.common import (
    _FALLBACK,
    DATASETS,
    NUM_CLASSES,
    DataError,
    Dataset,
    Provenance,
    _stratified_order,
    _to_unit,
    checksum,
)

_SETS = {"mnist": mnist, "cifar10": cifar10, "imdb": imdb}
URLS = {name: m.URLS for name, m in _SETS.items()}
_CACHE_VERSION = 1


def load_dataset(name: str, data_dir: Path | None, *, n_train: int | None, n_test: int | None,
                 cache_dir: Path, seed: int = 0) -> Dataset:
    """Load ``name`` and keep the first n_train / n_test samples of a seeded stratified order.

    Asking for more samples than exist gives all of them; the provenance has the real counts.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    cache_dir = Path(cache_dir)
    for label, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None and n < 0:
            raise ValueError(f"{label} must be >= 0 or None, got {n}")

    if data_dir is not None:
        full = _SETS[name].load_dir(Path(data_dir))
    else:
        full = _offline(name, Path(cache_dir))
    xtr, ytr, xte, yte, source, vocab = full

    rng = np.random.default_rng([seed, 0])
    itr = _stratified_order(ytr, rng)[:n_train]
    ite = _stratified_order(yte, np.random.default_rng([seed, 1]))[:n_test]
    xtr, ytr, xte, yte = xtr[itr], ytr[itr], xte[ite], yte[ite]
    prov = Provenance(source=source, n_train=len(ytr), n_test=len(yte),
                      sha256=checksum(xtr, ytr, xte, yte), dataset=name)
    return Dataset(name, xtr, ytr, xte, yte, NUM_CLASSES[name], prov, vocab)


def _offline(name: str, cache_dir: Path):
    """Build (or read the cached) offline arrays; images are built and cached as uint8."""
    builder, key = _SETS[name].build, _SETS[name].OFFLINE_KEY
    path = cache_dir / "data" / f"{name}-{key}-v{_CACHE_VERSION}.npz"
    built = _read_cache(path)
    if built is None:
        built = builder(cache_dir)
        # A fallback is not cached, so that the real source is tried again next time.
        if not built[4].startswith(_FALLBACK):
            _write_cache(path, built)
    xtr, ytr, xte, yte, source, vocab = built
    if xtr.dtype == np.uint8:
        xtr, xte = _to_unit(xtr), _to_unit(xte)
    return xtr, ytr, xte, yte, source, vocab


def _write_cache(path: Path, built) -> None:
    xtr, ytr, xte, yte, source, vocab = built
    if xtr.dtype == np.int64 and imdb.VOCAB_SIZE <= 2**15:  # int16 ids: a 4x smaller file
        xtr, xte = xtr.astype(np.int16), xte.astype(np.int16)
    words = sorted(vocab, key=vocab.get) if vocab else []
    meta = {"source": source, "sha256": checksum(xtr, ytr, xte, yte)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError as e:
        raise DataError(f"cannot write the data set cache {path}: {e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte,
                     vocab_words=np.array(words, dtype=str), meta=np.array(json.dumps(meta)))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is shareable
        os.replace(tmp, path)  # atomic: a reader never sees a half-written cache
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cache(path: Path):
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            xtr, ytr, xte, yte = (z[k] for k in ("x_train", "y_train", "x_test", "y_test"))
            words = [str(w) for w in z["vocab_words"]]
        if checksum(xtr, ytr, xte, yte) != meta["sha256"]:
            raise ValueError("checksum mismatch")
        if xtr.dtype == np.int16:
            xtr, xte = xtr.astype(np.int64), xte.astype(np.int64)
    except Exception as e:
        warnings.warn(f"corrupt dataset cache {path} ({e}); rebuilding it", stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    vocab = {w: i for i, w in enumerate(words, start=2)} if words else None
    return xtr, ytr, xte, yte, meta["source"], vocab


def download_dataset(name: str, data_dir: Path) -> Path:
    """Fetch the canonical distribution of ``name`` into data_dir/<name>/ (needs network).

    The result is what load_dataset(name, data_dir) reads. Never called by the suite.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    dest = Path(data_dir) / name
    dest.mkdir(parents=True, exist_ok=True)
    for url in URLS[name]:
        target = dest / url.rsplit("/", 1)[1]
        if target.is_file():
            continue
        tmp = target.with_name(target.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
            os.replace(tmp, target)
        except Exception as e:
            tmp.unlink(missing_ok=True)
            raise DataError(f"download of {url} failed: {e}") from e
    if name == "imdb" and not (dest / "aclImdb").is_dir():
        with tarfile.open(dest / "aclImdb_v1.tar.gz", "r:gz") as tf:
            tf.extractall(dest, filter="data")
    return dest
