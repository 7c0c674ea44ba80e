"""Each parameter of the original found among the converted graph's initializers, up to
transposition, reshaping and BatchNorm folded into the convolution before it: a weight that
changed is a broken conversion even where no output on the test data moves (a weight behind a
unit that never activates).

Hand-written: onnxruntime's quantization debugger (qdq_loss_debug) and Polygraphy compare
activations, not a framework's parameters with a graph's initializers.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from convcheck import frameworks


@dataclass(frozen=True)
class Param:
    name: str
    value: np.ndarray
    folded: bool = False  # a convolution's weight/bias with the next BatchNorm folded in
    absorbs: tuple[str, ...] = ()  # the BatchNorm parameters a folded one stands for


def torch_params(model) -> list[Param]:
    """named_parameters, plus each Conv's weight and bias with the BatchNorm right after it
    folded in (what exporters write in eval mode)."""
    torch = frameworks.torch()
    out = [Param(n, p.detach().cpu().numpy()) for n, p in model.named_parameters()]
    modules = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    for (name, conv), (_, bn) in zip(modules, modules[1:]):
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
            w = conv.weight.detach() * scale[:, None, None, None]
            b = conv.bias.detach() if conv.bias is not None else torch.zeros_like(scale)
            b = (b - bn.running_mean) * scale + bn.bias.detach()
            bn_name = next(n for n, m in modules if m is bn)
            absorbs = (f"{bn_name}.weight", f"{bn_name}.bias")
            out += [Param(f"{name}.weight", w.numpy(), True, absorbs),
                    Param(f"{name}.bias", b.numpy(), True, absorbs)]
    return out


def keras_params(model) -> list[Param]:
    return [Param(w.path if hasattr(w, "path") else w.name, np.asarray(w.numpy()))
            for w in model.weights]


def _views(a: np.ndarray, shape: tuple) -> list[np.ndarray]:
    """`a` arranged as `shape`: any axis permutation giving it (4-D and less), or a reshape."""
    out = []
    if a.ndim <= 4:
        for perm in permutations(range(a.ndim)):
            if tuple(a.shape[i] for i in perm) == tuple(shape):
                out.append(a.transpose(perm))
    if not out and a.size == int(np.prod(shape)):
        out.append(a.reshape(shape))
    return out


@dataclass(frozen=True)
class WeightMatch:
    param: str
    initializer: str | None  # None: not found among the initializers
    max_diff: float  # the largest |original - initializer| (nan: not found)
    scale: float  # the parameter's largest |value|
    folded: bool
    absorbs: tuple[str, ...] = ()

    @property
    def relative(self) -> float:
        return self.max_diff / max(self.scale, 1e-12)


def match(params: list[Param], initializers: dict[str, np.ndarray]) -> list[WeightMatch]:
    """For each parameter, the initializer closest to it (of those with as many elements)."""
    by_size: dict[int, list[str]] = {}
    for name, v in initializers.items():
        if v.dtype.kind == "f":
            by_size.setdefault(v.size, []).append(name)
    out = []
    for p in params:
        best = (np.inf, None)
        for name in by_size.get(p.value.size, ()):
            init = initializers[name].astype(np.float64)
            for view in _views(p.value.astype(np.float64), init.shape):
                d = float(np.max(np.abs(view - init))) if view.size else 0.0
                if d < best[0]:
                    best = (d, name)
        scale = float(np.max(np.abs(p.value))) if p.value.size else 0.0
        out.append(WeightMatch(p.name, best[1], best[0] if best[1] else float("nan"), scale,
                               p.folded, p.absorbs))
    return out


def changed(matches: list[WeightMatch], rel: float) -> list[WeightMatch]:
    """The parameters that are in the graph but differ by more than `rel` of their scale. A
    plain parameter and its BatchNorm-folded form are alternatives: one of them found unchanged
    is enough."""
    good = [m for m in matches if m.initializer and m.relative <= rel]
    # A BatchNorm folded into its convolution: its parameters live on inside the folded ones.
    ok = {m.param for m in good} | {a for m in good if m.folded for a in m.absorbs}
    return [m for m in matches if m.initializer and m.relative > rel and m.param not in ok
            and not (m.folded is False and any(f.folded and f.param == m.param for f in matches))]
