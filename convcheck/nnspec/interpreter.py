"""Running a neuralnetwork model: its layers in order over one namespace of named blobs (a loop
layer's condition and body networks read and write the same namespace, as the spec says), each
layer's outputs stored as float32."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from convcheck.nnspec.layers import LAYERS, Layer, Unsupported


def implemented() -> tuple[str, ...]:
    """The layer types the interpreter runs (besides loop)."""
    return tuple(sorted(LAYERS))


def layer_type(layer) -> str:
    return layer.WhichOneof("layer")


def walk(layers):
    """Every layer, a loop's condition and body networks' included."""
    for layer in layers:
        yield layer
        if layer_type(layer) == "loop":
            yield from walk(layer.loop.conditionNetwork.layers)
            yield from walk(layer.loop.bodyNetwork.layers)


class Interpreter:
    """A neuralnetwork model's spec, ready to run on numpy inputs.

    Every layer type (loop networks included) and the model's input mapping are checked at
    construction: what is not implemented raises Unsupported, naming it all, before anything
    runs."""

    def __init__(self, spec, name: str = ""):
        self.name = name or "the model"
        kind = spec.WhichOneof("Type")
        if kind != "neuralNetwork":
            raise Unsupported(f"{self.name}: a Core ML {kind!r} model: the neuralnetwork "
                              "interpreter runs 'neuralNetwork' models (not classifiers' or "
                              "regressors' wrappers, pipelines or ML programs)")
        self.network = spec.neuralNetwork
        self.layers = LAYERS
        missing = Counter(layer_type(layer) for layer in walk(self.network.layers)
                          if layer_type(layer) not in self.layers and layer_type(layer) != "loop")
        if missing:
            raise Unsupported(
                f"{self.name}: the neuralnetwork interpreter does not implement "
                + ", ".join(f"{t} (x{n})" for t, n in sorted(missing.items()))
                + f"; it implements {', '.join(implemented())}, loop")
        # EXACT_ARRAY_MAPPING (1): an input's shape is taken as it is. The older rank-5 mapping
        # (0) reinterprets it as [Seq, Batch, C, H, W] by rules the interpreter does not follow.
        if self.network.arrayInputShapeMapping != 1:
            raise Unsupported(f"{self.name}: arrayInputShapeMapping "
                              f"{self.network.arrayInputShapeMapping} (rank-5 input mapping); "
                              "only EXACT_ARRAY_MAPPING is implemented")
        if len(self.network.preprocessing):
            raise Unsupported(f"{self.name}: image preprocessing layers")
        for described in spec.description.input:
            if described.type.WhichOneof("Type") != "multiArrayType":
                raise Unsupported(f"{self.name}: input {described.name!r} is a "
                                  f"{described.type.WhichOneof('Type')}, not a multiarray")
        self.inputs = [i.name for i in spec.description.input]
        self.outputs = [o.name for o in spec.description.output]

    @classmethod
    def load(cls, path, name: str = "") -> "Interpreter":
        import coremltools as ct

        return cls(ct.utils.load_spec(str(Path(path))), name or str(path))

    def run(self, feeds: dict) -> dict:
        """The model's outputs (name -> float32 array) on `feeds` (input name -> array)."""
        if set(feeds) != set(self.inputs):
            raise ValueError(f"{self.name}: inputs {sorted(feeds)} given, the model takes "
                             f"{sorted(self.inputs)}")
        blobs = {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()}
        self._network(self.network.layers, blobs)
        return {k: blobs[k] for k in self.outputs}

    def _network(self, layers, blobs: dict) -> None:
        for layer in layers:
            kind = layer_type(layer)
            try:
                if kind == "loop":
                    self._loop(layer, blobs)
                    continue
                results = self.layers[kind](Layer(layer, [blobs[n] for n in layer.input]))
            except Unsupported as e:
                raise Unsupported(f"{self.name}: {e}") from None
            except Exception as e:  # said with the layer it happened in
                raise RuntimeError(f"{self.name}: {kind} {layer.name!r}: "
                                   f"{type(e).__name__}: {e}") from e
            if not isinstance(results, (list, tuple)):
                results = (results,)
            if len(results) != len(layer.output):
                raise RuntimeError(f"{self.name}: {kind} {layer.name!r} gave {len(results)} "
                                   f"outputs, the layer names {len(layer.output)}")
            for name, value in zip(layer.output, results):
                # A neuralnetwork has no rank-0 blobs: what squeezes to a scalar stays rank 1.
                blobs[name] = np.atleast_1d(np.asarray(value, dtype=np.float32))

    def _loop(self, layer, blobs: dict) -> None:
        """LoopLayerParams: the body runs while the condition network's conditionVar is true
        (checked before each iteration), at most maxLoopIterations times where that is set (or
        the layer's input gives it); without a condition network it runs that many times."""
        p = layer.loop
        limit = int(blobs[layer.input[0]].ravel()[0]) if layer.input else p.maxLoopIterations
        has_condition = len(p.conditionNetwork.layers) > 0
        if not has_condition and limit <= 0:
            raise Unsupported(f"loop {layer.name!r}: neither a condition network nor a count")
        done = 0
        while limit <= 0 or done < limit:
            if has_condition:
                self._network(p.conditionNetwork.layers, blobs)
                if not bool(blobs[p.conditionVar].ravel()[0]):
                    break
            self._network(p.bodyNetwork.layers, blobs)
            done += 1
