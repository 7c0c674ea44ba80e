"""Half precision: a model run in float16, in range and past float16's largest value."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from convcheck.regressions.harness import (
    SEED,
    Measured,
    _torch,
    compare,
    ort_run,
    torch_export,
)


def onnx_to_fp16(src: Path, dst: Path) -> Path:
    """A float32 ONNX model run at half precision: float initializers, Constant values, Casts to
    float and the graph's float inputs/outputs become float16 (what a float16 converter with
    keep_io_types=False does, for the ops used here)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(src))

    def half(t):
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name))

    for t in model.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            half(t)
    for node in model.graph.node:
        for a in node.attribute:
            constant = node.op_type == "Constant" and a.name == "value"
            if constant and a.t.data_type == TensorProto.FLOAT:
                half(a.t)
            if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    for v in (*model.graph.input, *model.graph.output):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.FLOAT16
    del model.graph.value_info[:]
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(dst))
    return dst


FP16_MAX = 65504.0


def fp16_activations(input_scale: float, gain: float) -> Callable[[Path], Measured]:
    """Linear(64 -> 16, weights x gain) -> LayerNorm -> Linear -> softmax, converted to float16
    and run with float16 arithmetic. With gain 400 on raw 0..255 pixel values the first layer's
    outputs exceed float16's 65504 (inf; LayerNorm makes NaN of them); with gain 100 on 0..1
    inputs every activation and LayerNorm's squared deviations (< 65504 needs |x| < 256) stay in
    range and only rounding differs.

    The half-precision runtime is onnx.reference, which computes each op in the tensor's type.
    onnxruntime's CPU provider has no float16 Gemm/LayerNormalization: it wraps them in Casts
    and computes in float32, which hides the overflow (its number is recorded beside)."""

    def run(tmp: Path) -> Measured:
        from onnx.reference import ReferenceEvaluator

        torch = _torch()
        nn = torch.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc, self.norm, self.out = nn.Linear(64, 16), nn.LayerNorm(16), nn.Linear(16, 3)
                with torch.no_grad():
                    self.fc.weight.mul_(gain)

            def forward(self, x):
                return torch.softmax(self.out(self.norm(self.fc(x))), dim=1)

        torch.manual_seed(SEED)
        model = Net().eval()
        x = torch.rand(8, 64) * input_scale
        with torch.no_grad():
            ref, hidden = model(x).numpy(), model.fc(x)
            on_torch_half = model.half()(x.half()).float().numpy()
        model.float()
        src = torch_export(model, (x,), tmp / "fp32.onnx", "torchscript", ["input"])
        path = onnx_to_fp16(src, tmp / "fp16.onnx")
        x16 = x.numpy().astype(np.float16)
        with np.errstate(all="ignore"):
            got = ReferenceEvaluator(str(path)).run(None, {"input": x16})[0].astype(np.float32)
        on_ort = ort_run(path, {"input": x16}).astype(np.float32)
        m = compare(ref, got)
        m.detail |= {
            "runtime": "onnx.reference (float16 arithmetic)", "input_scale": input_scale,
            "gain": gain, "largest_activation": float(hidden.abs().max()),
            "activations_over_fp16_max": int((hidden.abs() > FP16_MAX).sum()),
            "abs_max_onnxruntime_cpu": compare(ref, on_ort).abs_max,
            "nonfinite_onnxruntime_cpu": int((~np.isfinite(on_ort)).sum()),
            "nonfinite_torch_half": int((~np.isfinite(on_torch_half)).sum())}
        return m

    return run
