"""The project's data: scikit-learn's diabetes set (442 patients, 10 standardised features; the
target is disease progression after a year, scaled here to hundreds)."""
import numpy as np


def load():
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    x, y = d.data.astype(np.float32), (d.target / 100.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return {"x_train": x[:-100], "y_train": y[:-100], "x": x[-100:], "y": y[-100:]}
