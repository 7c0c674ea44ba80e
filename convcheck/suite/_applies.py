"""Skips for checks that cannot apply to a model: said, with the reason, never passed."""
from __future__ import annotations

import pytest


def labelled(spec, labels, what: str) -> None:
    """`what` compares class labels: skip a model that has none."""
    if not spec.task.classification:
        pytest.skip(f"{what}: {spec.name} is a {spec.task.kind} model (task.kind); labels and "
                    f"accuracy do not apply")
    if labels is None:
        pytest.skip(f"{what}: {spec.name}'s evaluation data has no labels (no y in its data)")


def classifier(spec, what: str) -> None:
    if not spec.task.classification:
        pytest.skip(f"{what}: {spec.name} is a {spec.task.kind} model (task.kind); label "
                    f"agreement does not apply")
