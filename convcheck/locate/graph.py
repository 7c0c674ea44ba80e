"""Every intermediate tensor of an ONNX graph on a batch, two ways: by the ONNX reference
semantics (onnx.reference.ReferenceEvaluator, which returns all of them) and by onnxruntime with
every node output made a graph output (Polygraphy's "mark all"), and which node made each."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Node:
    index: int  # position in the graph's (topological) node list
    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class Graph:
    """An ONNX model's nodes, who produces each tensor, and its inputs and outputs."""

    def __init__(self, model):
        self.model = model
        g = model.graph
        self.nodes = [Node(i, n.name or f"#{i}", n.op_type, tuple(n.input), tuple(n.output))
                      for i, n in enumerate(g.node)]
        self.producer = {o: node for node in self.nodes for o in node.outputs if o}
        inits = {t.name for t in g.initializer}
        self.inputs = [i.name for i in g.input if i.name not in inits]
        self.outputs = [o.name for o in g.output]
        self.initializers = inits

    def ancestors_after(self, tensor: str, after: int) -> list[Node]:
        """The nodes with index > `after` that `tensor` depends on, itself's producer included,
        in graph order: everything between the last agreeing tensor and this one."""
        out, todo = {}, [tensor]
        while todo:
            node = self.producer.get(todo.pop())
            if node is None or node.index <= after or node.index in out:
                continue
            out[node.index] = node
            todo.extend(node.inputs)
        return [out[i] for i in sorted(out)]


def reference_values(model, feeds: dict) -> dict[str, np.ndarray]:
    """Every tensor the graph computes on `feeds`, by the ONNX reference implementation."""
    from onnx.reference import ReferenceEvaluator

    return dict(ReferenceEvaluator(model).run(None, feeds, intermediate=True))


def runtime_values(model, feeds: dict, dtypes: dict[str, np.dtype]) -> dict[str, np.ndarray]:
    """Every node output onnxruntime computes on `feeds` (dtypes: each tensor's element type,
    e.g. from the reference run: a graph output must declare one)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    from convcheck import frameworks

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for node in m.graph.node:
        for name in node.output:
            if name and name not in have and name in dtypes:
                m.graph.output.append(helper.make_tensor_value_info(
                    name, helper.np_dtype_to_tensor_dtype(np.dtype(dtypes[name])), None))
                have.add(name)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = frameworks.threads()
    opts.log_severity_level = 3
    session = ort.InferenceSession(m.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))
