"""A model exported in training mode: BatchNorm's batch statistics and Dropout left in the graph."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from convcheck.regressions.harness import (
    Measured,
    _op_types,
    _torch,
    _torch_case,
)


def _dropout_batchnorm():
    torch = _torch()
    nn = torch.nn

    class Net(nn.Module):  # Linear -> BatchNorm -> Dropout -> Linear -> softmax
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(4, 8), nn.BatchNorm1d(8)
            self.drop, self.out = nn.Dropout(0.5), nn.Linear(8, 3)
            with torch.no_grad():  # running statistics unlike any batch's
                self.bn.running_mean.fill_(0.3)
                self.bn.running_var.fill_(2.0)

        def forward(self, x):
            return torch.softmax(self.out(self.drop(self.bn(self.fc(x)))), dim=1)

    return Net()


def train_mode(exporter: str, explicit: bool) -> Callable[[Path], Measured]:
    """The original is judged in eval mode; the model is in train mode when exported."""

    def run(tmp: Path) -> Measured:
        torch = _torch()
        kw = ({"training": torch.onnx.TrainingMode.TRAINING, "do_constant_folding": False}
              if explicit else {})
        path = tmp / "train-mode.onnx"
        m = _torch_case(_dropout_batchnorm, lambda: (torch.randn(6, 4),), exporter, path,
                        eval_mode=False, **kw)
        if m.error is None:
            m.detail["onnx_ops"] = sorted(set(_op_types(path)))
        return m

    return run
