"""Tests of convcheck.conversion.artifacts: the size on disk of a model counts every file that belongs to it."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convcheck.conversion.artifacts import artifact_files, size_on_disk


def small_onnx(path, external: bool):
    """y = x @ W with a 64x64 float32 W (16 KiB), saved inline or as external data."""
    w = numpy_helper.from_array(np.ones((64, 64), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [w])
    model = helper.make_model(graph)
    onnx.save(model, str(path), save_as_external_data=external, location="weights.bin",
              size_threshold=0)
    return path


def test_a_single_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x" * 1234)
    assert artifact_files(path) == [path]
    assert size_on_disk(path) == 1234


def test_onnx_with_external_data_counts_the_data_file(tmp_path):
    path = small_onnx(tmp_path / "model.onnx", external=True)
    assert artifact_files(path) == [path, tmp_path / "weights.bin"]
    assert size_on_disk(path) == path.stat().st_size + 64 * 64 * 4
    assert path.stat().st_size < 1000  # the graph alone: the weights are not in it


def test_onnx_inline_is_one_file(tmp_path):
    path = small_onnx(tmp_path / "model.onnx", external=False)
    assert artifact_files(path) == [path]
    assert size_on_disk(path) > 64 * 64 * 4


def test_onnx_with_a_missing_external_file_raises(tmp_path):
    path = small_onnx(tmp_path / "model.onnx", external=True)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(FileNotFoundError):
        size_on_disk(path)


def test_a_bundle_directory_counts_every_file_under_it(tmp_path):
    bundle = tmp_path / "model.mlpackage"
    (bundle / "Data" / "com.apple.CoreML" / "weights").mkdir(parents=True)
    (bundle / "Manifest.json").write_bytes(b"m" * 10)
    (bundle / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"s" * 100)
    (bundle / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").write_bytes(b"w" * 1000)
    assert len(artifact_files(bundle)) == 3
    assert size_on_disk(bundle) == 1110
