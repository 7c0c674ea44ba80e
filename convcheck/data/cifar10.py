"""CIFAR-10: the python batches or their tarball from a data directory, or offline a stand-in
made of real photographs (scikit-image's bundled images, CIFAR_CONSTRUCTION says how)."""
from __future__ import annotations

import inspect
import pickle
import tarfile
from pathlib import Path

import numpy as np

from convcheck.data.common import _SPLIT_SEED, DataError, _candidates, _check_pair, _to_unit

OFFLINE_KEY = "skimage-photos"
URLS = ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]

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


def load_dir(data_dir: Path):
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


# skimage.data loaders, in class-id order. Slots 0, 1 and 3 echo CIFAR-10's airplane,
# automobile and cat; the wheel ships only eight colour photographs, so the last two
# classes are greyscale photographs repeated over the three channels.
CIFAR_SLOT_CLASSES = ("rocket", "stereo_motorcycle", "astronaut", "chelsea", "coffee",
                      "hubble_deep_field", "immunohistochemistry", "retina", "camera", "coins")
CIFAR_PER_CLASS = (600, 150)  # train, test
_TRAIN_WIDTH = 0.7


def build(cache_dir: Path):
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
CIFAR_CONSTRUCTION = inspect.cleandoc(build.__doc__)


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
