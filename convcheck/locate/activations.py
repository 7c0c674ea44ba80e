"""The original model's layer outputs on a batch, in the order the layers ran: PyTorch through
forward hooks on its leaf modules, Keras through a model whose outputs are every layer's.

A layer reused in a forward pass (one ReLU module applied after every convolution) gives one
output per call, named `relu#2` for its second. An original these cannot open (TorchScript, a
torch.export program, a subclassed Keras model) raises Unavailable with the reason.
"""
from __future__ import annotations

import numpy as np

from convcheck import frameworks


class Unavailable(Exception):
    """The original's layers cannot be reached; the message says why."""


def _array(out) -> np.ndarray | None:
    """A layer's output as numpy: a tensor, or the first tensor of a tuple (an LSTM's)."""
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    if hasattr(out, "detach"):
        return out.detach().cpu().numpy()
    if hasattr(out, "numpy"):
        return np.asarray(out.numpy())
    return None


def torch_layers(model, batch: np.ndarray) -> list[tuple[str, np.ndarray]]:
    torch = frameworks.torch()
    if isinstance(model, torch.jit.ScriptModule):
        raise Unavailable("a TorchScript original: its modules cannot be hooked")
    if not isinstance(model, torch.nn.Module) or type(model).__name__ == "ExportedProgramModule":
        raise Unavailable("a torch.export program: its layers are not modules to hook")
    seen: dict[str, int] = {}
    out: list[tuple[str, np.ndarray]] = []

    def hook(name):
        def record(module, args, result):
            arr = _array(result)
            if arr is not None and arr.dtype.kind == "f":
                seen[name] = seen.get(name, 0) + 1
                out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", arr))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
               if name and not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(batch)))
    finally:
        for h in handles:
            h.remove()
    return out


def keras_layers(model, batch: np.ndarray) -> list[tuple[str, np.ndarray]]:
    keras = frameworks.keras()
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    try:
        probe = keras.Model(model.inputs, [layer.output for layer in layers])
    except Exception as e:  # a subclassed model has no symbolic outputs
        raise Unavailable(f"a Keras model whose layers have no symbolic outputs "
                          f"({type(e).__name__}): build it with the functional API") from None
    outs = probe(batch, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [(layer.name, a) for layer, o in zip(layers, outs)
            if (a := _array(o)) is not None and a.dtype.kind == "f"]


def layer_outputs(predictor, framework: str, batch: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """[(layer name, output)] of the original `predictor` (a runtimes Torch/KerasPredictor)."""
    model = getattr(predictor, "model", None)
    if model is None:
        raise Unavailable(f"a {framework} original without a model object to open")
    return (torch_layers if framework == "pytorch" else keras_layers)(model, batch)
