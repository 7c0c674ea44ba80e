"""Shared by the project's own fault tests: the good conversions that faults are made from."""
import pytest

from convcheck.convert import ConversionError

FAULT_TARGET = "onnx"


@pytest.fixture(scope="session")
def good_conversion(bench):
    """good_conversion(model, framework): the session's good `onnx` conversion of an original."""

    def get(model: str, framework: str):
        if FAULT_TARGET not in bench.targets:
            pytest.skip(f"target {FAULT_TARGET} not selected (--targets)")
        try:
            return bench.converted(model, framework, FAULT_TARGET, bench.profile.seeds[0])
        except ConversionError as e:
            pytest.fail(f"{model}-{framework}: the good conversion failed: {e}", pytrace=False)

    return get
