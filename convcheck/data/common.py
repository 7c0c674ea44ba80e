"""What every data set shares: the Dataset and its Provenance, DataError, the fixed stratified
split of the offline sources, and the checks a data directory's files go through."""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "cifar10", "imdb")
DATA_DIR_ENV = "CONVCHECK_DATA_DIR"
NUM_CLASSES = {"mnist": 10, "cifar10": 10, "imdb": 2}

# The train/test split of the offline sources is fixed, independent of load_dataset's seed,
# so that "the test set" is the same set of samples whatever subsample is asked for.
_SPLIT_SEED = 20240601
_TEST_FRACTION = 0.2
# An offline source's name starts with it when a smaller stand-in replaced the real one.
_FALLBACK = "FALLBACK "


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


def _candidates(data_dir: Path, name: str) -> list[Path]:
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    return [data_dir, data_dir / name]


def _find_file(d: Path, stem: str) -> Path | None:
    for p in (d / stem, d / f"{stem}.gz"):
        if p.is_file():
            return p
    return None
