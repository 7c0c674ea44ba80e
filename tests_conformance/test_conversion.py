"""The conversion itself, on every OS: the converter ran and left a well-formed artifact."""


def test_converts(artifact):
    """The converter ran within its time limit (the fixture fails with its message otherwise)."""
    assert artifact.path.exists(), f"{artifact.id}: no artifact at {artifact.path}"
