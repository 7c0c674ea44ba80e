"""A model's data: a registered data set (the zoo's MNIST, CIFAR-10 and IMDb are three entries of
convcheck.declarations.registry.DATASETS), or a team's own arrays, from an ``.npz`` file or a callable.

A team's arrays are in the declared input's layout: ``x`` (or ``x_test``) the evaluation
samples, ``y`` (or ``y_test``) their labels where there are labels, and optionally ``x_train`` /
``y_train`` (what convcheck trains on, for a ``build`` source, and what calibration and the
genetic attack's word vectors read). Shapes, dtypes, sample counts and label ranges are checked
against the declaration at start-up, and a mismatch names the model and the array.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from convcheck import data
from convcheck.data import DataError, Dataset, Provenance, checksum
from convcheck.declarations.spec import ModelSpec, import_callable

__all__ = ["DataError", "Dataset", "Provenance", "load_for"]


def _zoo(name):
    def load(data_dir, cache_dir, *, n_train, n_test):
        return data.load_dataset(name, data_dir, n_train=n_train, n_test=n_test,
                                 cache_dir=cache_dir)
    return load


load_mnist, load_cifar10, load_imdb = (_zoo(n) for n in ("mnist", "cifar10", "imdb"))


def load_for(spec: ModelSpec, data_dir: Path | None, cache_dir: Path, *, n_train, n_test
             ) -> Dataset:
    """The data of `spec`, checked against its declared input and task."""
    from convcheck.declarations.registry import DATASETS

    d = spec.data
    if d.npz is not None:
        ds = _from_arrays(spec, _read_npz(d.npz), f"npz {d.npz}")
    elif d.loader is not None:
        try:
            arrays = import_callable(d.loader)()
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"data.loader {d.loader}: {type(e).__name__}: {e}") from e
        if not isinstance(arrays, dict):
            raise DataError(f"data.loader {d.loader} must return a dict of arrays "
                            f"(x, y, optionally x_train, y_train), got {type(arrays).__name__}")
        ds = _from_arrays(spec, arrays, f"loader {d.loader}")
    else:
        ds = DATASETS.get(d.name)(data_dir, cache_dir, n_train=n_train, n_test=n_test)
    check(spec, ds)
    return _subsample(ds, n_train, n_test) if d.npz is not None or d.loader else ds


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:
        raise DataError(f"cannot read {path}: {type(e).__name__}: {e}") from e


_KEYS = ("x", "y", "x_test", "y_test", "x_train", "y_train")


def _from_arrays(spec: ModelSpec, arrays: dict, source: str) -> Dataset:
    unknown = sorted(set(arrays) - set(_KEYS))
    if unknown:
        raise DataError(f"{source}: unknown array {unknown[0]!r}; valid: {', '.join(_KEYS)}")
    x_test = arrays.get("x_test", arrays.get("x"))
    if x_test is None:
        raise DataError(f"{source}: no evaluation samples (array x or x_test)")
    y_test = arrays.get("y_test", arrays.get("y"))
    x_train = arrays.get("x_train")
    y_train = arrays.get("y_train")
    empty = np.zeros((0, *spec.input.shape), dtype=spec.input.dtype)
    x_train = empty if x_train is None else np.asarray(x_train)
    if y_train is None:
        y_train = np.zeros(0, dtype=np.int64) if len(x_train) == 0 else None
    x_test = np.asarray(x_test)
    x_test, x_train = (_cast(spec, a, name, source) for a, name in
                       ((x_test, "x"), (x_train, "x_train")))
    y_test, y_train = (None if a is None else np.asarray(a) for a in (y_test, y_train))
    if spec.task.classification:
        y_test = None if y_test is None else y_test.astype(np.int64)
        y_train = None if y_train is None else y_train.astype(np.int64)
    sha = checksum(*(a for a in (x_train, y_train, x_test, y_test) if a is not None))
    prov = Provenance(source=source, n_train=len(x_train), n_test=len(x_test), sha256=sha,
                      dataset=spec.data.name)
    return Dataset(spec.data.name, x_train, y_train, x_test, y_test, spec.task.num_classes or 0,
                   prov)


def _cast(spec: ModelSpec, a: np.ndarray, name: str, source: str) -> np.ndarray:
    want = np.dtype(spec.input.dtype)
    if a.dtype.kind not in "fiub":
        raise DataError(f"{source}: {name} has dtype {a.dtype}, not numbers")
    if a.dtype.kind == "f" and want.kind in "iu":
        raise DataError(f"{source}: {name} holds floats ({a.dtype}) but model {spec.name!r} "
                        f"declares input.dtype {spec.input.dtype}")
    return a.astype(want, copy=False)


def check(spec: ModelSpec, ds: Dataset) -> None:
    """The data fits the declaration: sample shape, labels per sample, labels in range, values
    in the declared range. Raises DataError naming the model, the array and both figures."""
    where = f"model {spec.name!r}, data {ds.provenance.source}"
    for name, x, y in (("x_test", ds.x_test, ds.y_test), ("x_train", ds.x_train, ds.y_train)):
        if name == "x_train" and len(x) == 0:
            continue
        if tuple(x.shape[1:]) != spec.input.shape:
            raise DataError(f"{where}: {name} samples have shape {tuple(x.shape[1:])}, but "
                            f"input.shape declares {list(spec.input.shape)}")
        if y is not None and len(y) != len(x):
            raise DataError(f"{where}: {name} has {len(x)} samples but "
                            f"{len(y)} labels")
        if y is not None and spec.task.classification and len(y) and (
                y.min() < 0 or y.max() >= spec.task.num_classes):
            raise DataError(f"{where}: labels of {name} span {int(y.min())}..{int(y.max())}, "
                            f"outside 0..{spec.task.num_classes - 1} (task.num_classes "
                            f"{spec.task.num_classes})")
        if x.dtype.kind == "f" and len(x) and not np.isfinite(x).all():
            bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
            raise DataError(f"{where}: {name} holds {int((~np.isfinite(x)).sum())} non-finite "
                            f"values (NaN or Inf) in {len(bad)} samples, first sample {bad[0]}: "
                            f"no model output on them could be judged")
        if y is not None and y.dtype.kind == "f" and len(y) and not np.isfinite(y).all():
            raise DataError(f"{where}: the labels of {name} hold non-finite values")
        if spec.input.vocab_size is not None and len(x) and x.min() < 0:
            raise DataError(f"{where}: {name} holds token id {int(x.min())}: ids are "
                            f"0..{spec.input.vocab_size - 1}")
        if spec.input.range is not None and len(x):
            lo, hi = spec.input.range
            if x.min() < lo or x.max() > hi:
                raise DataError(f"{where}: {name} values span {float(x.min()):g}.."
                                f"{float(x.max()):g}, outside input.range [{lo:g}, {hi:g}]")
        if spec.input.vocab_size is not None and len(x) and x.max() >= spec.input.vocab_size:
            raise DataError(f"{where}: {name} holds token id {int(x.max())}, but "
                            f"input.vocab_size is {spec.input.vocab_size}")
    if len(ds.x_test) == 0:
        raise DataError(f"{where}: no evaluation samples")


def _subsample(ds: Dataset, n_train, n_test) -> Dataset:
    """The profile's sample counts on a team's arrays: their first n (their order is theirs)."""
    if n_train is None and n_test is None:
        return ds
    cut = lambda a, n: a if a is None or n is None else a[:n]  # noqa: E731
    xtr, ytr, xte, yte = (cut(ds.x_train, n_train), cut(ds.y_train, n_train),
                          cut(ds.x_test, n_test), cut(ds.y_test, n_test))
    sha = checksum(*(a for a in (xtr, ytr, xte, yte) if a is not None))
    prov = Provenance(ds.provenance.source, len(xtr), len(xte), sha, ds.provenance.dataset)
    return Dataset(ds.name, xtr, ytr, xte, yte, ds.num_classes, prov)


def padding_side(x: np.ndarray, pad_id: int) -> str:
    """Where a token data set's padding goes: "pre" when its sequences start with padding more
    often than they end with it, else "post"."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] == 0:
        return "pre"
    return "pre" if (x[:, 0] == pad_id).sum() > (x[:, -1] == pad_id).sum() else "post"
