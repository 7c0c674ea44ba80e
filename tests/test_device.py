"""--convcheck-device: where originals train and are attacked. The CUDA path itself runs only
where a GPU is (this project's CI has none): here, the choice, its errors and what it does to
the cache keys."""
from __future__ import annotations

import os

import pytest

from convcheck import frameworks
from convcheck.declarations.registry import MODELS
from convcheck.pipeline.cache import key_of
from tests.test_bad_input import refused


@pytest.fixture(autouse=True)
def _restore_device():
    before = frameworks._device
    yield
    frameworks._device = before


def test_cpu_is_the_default_and_auto_falls_back_to_it():
    assert frameworks.use_device(None) == "cpu"
    if frameworks.torch().cuda.is_available():
        pytest.skip("a CUDA device is present: auto picks it")
    assert frameworks.use_device("auto") == "cpu"
    assert frameworks.device_of("pytorch") == frameworks.device_of("keras") == "cpu"
    assert frameworks.device_line() == "cpu"


def test_an_unknown_device_is_refused_naming_the_option():
    out = refused("--convcheck-device", "gpu")
    assert "convcheck: --convcheck-device: 'gpu': valid values: cpu, cuda, auto" in out


def test_cuda_without_a_cuda_device_is_refused_not_run_on_the_cpu():
    if frameworks.torch().cuda.is_available():
        pytest.skip("a CUDA device is present")
    out = refused(env={"CONVCHECK_DEVICE": "cuda"})
    assert ("convcheck: $CONVCHECK_DEVICE: 'cuda': torch " in out
            and "finds no CUDA device (torch.cuda.is_available() is False" in out
            and "use cpu, or auto (CUDA where present)" in out), out


def test_threads_and_device_are_part_of_an_originals_key(bench, monkeypatch):
    """A LeNet-5 trained on 1 thread differs from one trained on 2 (a weight by 0.41,
    measured), and a GPU's kernels round differently: neither may load the other's entry, nor
    replace it (each sits beside the default's, tagged)."""
    entry, parts, stem = bench._original_entry(MODELS.get("lenet5"), "pytorch", 0)
    assert parts["compute"] == {"threads": frameworks.threads(), "device": "cpu"}
    n = frameworks.threads() + 1
    monkeypatch.setattr(frameworks, "_threads", n)
    other_entry, other, other_stem = bench._original_entry(MODELS.get("lenet5"), "pytorch", 0)
    assert key_of(other) != key_of(parts)
    if n != os.cpu_count():
        assert other_stem.endswith(f"-t{n}") and other_entry != entry
    gpu = {"threads": os.cpu_count(), "device": "gpu", "gpu": "NVIDIA H200", "cuda": "12.8"}
    monkeypatch.setattr(frameworks, "compute", lambda fw: gpu)
    gpu_entry, gpu_parts, gpu_stem = bench._original_entry(MODELS.get("lenet5"), "pytorch", 0)
    assert gpu_stem.endswith("-smoke-gpu") and gpu_entry != entry
    attack_entry, attack_parts = bench._attack_entry(gpu_parts, gpu_stem, "fgsm")
    assert attack_parts["compute"]["gpu"] == "NVIDIA H200"
    assert attack_entry.name == f"{gpu_stem}.fgsm"
