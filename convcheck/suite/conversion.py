"""The conversion itself, on every OS: the converter ran and left a well-formed artifact."""
import pytest

from convcheck import checks
from convcheck.conversion import runner

__all__ = ["test_converts", "test_coreml_artifact_as_declared"]


def test_converts(artifact):
    """The converter ran within its time limit; a conversion that failed fails here with the
    converter's message (and every other test of the conversion skips, naming this one)."""
    if isinstance(artifact, checks.BuildFailed):
        pytest.fail(artifact.message, pytrace=False)
    assert artifact.path.exists(), f"{artifact.id}: no artifact at {artifact.path}"


def test_coreml_artifact_as_declared(coreml_artifact, expect):
    """The saved CoreML model reloads and declares what was asked: model type (mlprogram or
    neuralnetwork), input "input" with its ranged batch, shape and dtype, output "probabilities"
    as a float32 multiarray, weights stored in the asked precision. Records the size on disk."""
    a, o = coreml_artifact, coreml_artifact.original
    if a.target.shipped:
        import pytest

        pytest.skip(f"{a.id}: a shipped CoreML file: there are no converter options to compare "
                    f"its spec with")
    described = runner.describe_coreml(a.path)
    expected = runner.coreml_expected(o.spec, o.framework, a.target.options[o.framework])
    expect(checks.artifact_declares(a.id, described, expected), a)
