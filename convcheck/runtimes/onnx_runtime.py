"""ONNX models run by onnxruntime's CPU provider (every OS), with convcheck's thread count."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from convcheck import frameworks


class OrtPredictor:
    name = "onnxruntime"

    def __init__(self, session):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def load(cls, path: Path, config: dict[str, str] | None = None) -> "OrtPredictor":
        """config: session config entries, e.g. {"session.intra_op.allow_spinning": "0"}."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = frameworks.threads()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        for key, value in (config or {}).items():
            opts.add_session_config_entry(key, value)
        return cls(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]
