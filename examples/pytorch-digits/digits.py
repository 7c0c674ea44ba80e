"""The project's model and data: what a team would have in its own repository."""
import numpy as np


def load():
    """scikit-learn's 8x8 digits (1,797 real handwritten digits shipped with the package),
    as NHWC images in [0, 1]: the last 360 for evaluation, the rest for training."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return {"x_train": x[:-360], "y_train": y[:-360], "x": x[-360:], "y": y[-360:]}


def build():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))
