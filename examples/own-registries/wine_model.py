"""The team's model and data: nothing here registers anything (team_extensions does)."""
from __future__ import annotations

import numpy as np


def load_wine(data_dir, cache_dir, *, n_train, n_test):
    """scikit-learn's wine data (13 chemical measurements, 3 cultivars), scaled to [0, 1]
    with the training split's range; a held-out quarter to evaluate on."""
    from sklearn.datasets import load_wine as sklearn_wine

    from convcheck.data import Dataset, Provenance, checksum

    d = sklearn_wine()
    order = np.random.default_rng(0).permutation(len(d.target))
    x, y = d.data[order], d.target[order].astype(np.int64)
    cut = len(x) * 3 // 4
    lo, hi = x[:cut].min(axis=0), x[:cut].max(axis=0)
    x = np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    parts = x[:cut], y[:cut], x[cut:], y[cut:]
    prov = Provenance("scikit-learn load_wine", cut, len(x) - cut, checksum(*parts),
                      dataset="sklearn-wine")
    return Dataset("sklearn-wine", *parts, num_classes=3, provenance=prov)


def trained_mlp():
    """The team's model: a small MLP, trained here with a fixed seed (a `load` source)."""
    import torch
    from torch import nn

    ds = load_wine(None, None, n_train=None, n_test=None)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(13, 32), nn.Tanh(), nn.Linear(32, 3), nn.Softmax(dim=1))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    x, y = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.nll_loss(torch.log(model(x) + 1e-9), y).backward()
        opt.step()
    return model.eval()
