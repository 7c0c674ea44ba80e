"""convcheck.robustness.attacks without a model: seed selection, Boundary starts, what counts as moved."""
from __future__ import annotations

import numpy as np
import pytest

from convcheck.robustness import attacks
from convcheck.robustness.attacks import AdversarialSet, AttackError


def test_seeds_are_the_first_correct_and_usable_samples():
    probs = np.eye(3)[[0, 1, 1, 2, 0, 2]]
    labels = np.array([0, 0, 1, 2, 0, 2])  # sample 1 is misclassified
    assert attacks.select_seeds(probs, labels, 3).tolist() == [0, 2, 3]
    usable = np.array([False, True, True, False, True, True])
    assert attacks.select_seeds(probs, labels, 10, usable).tolist() == [2, 4, 5]
    with pytest.raises(AttackError, match="no test sample is both correctly classified and usable"):
        attacks.select_seeds(probs, labels, 3, np.zeros(6, bool))


def test_boundary_starts_from_the_nearest_image_labelled_otherwise():
    x = np.array([[0.0], [0.1], [0.9], [0.2]], dtype=np.float32)
    probs = np.eye(2)[[0, 0, 1, 1]]
    starts = attacks.boundary_starts(probs, x, np.array([0, 2]))
    assert starts[:, 0].tolist() == pytest.approx([0.2, 0.1])


def test_an_example_that_did_not_move_is_unchanged():
    x = np.zeros((3, 2), np.float32)
    starts = np.ones((3, 2), np.float32)
    x_adv = np.array([[0.5, 0.5], [0, 0], [1, 1]], np.float32)  # moved, input, its start
    adv = AdversarialSet("boundary", np.arange(3), x, x_adv, np.zeros(3, int), starts=starts)
    assert adv.changed.tolist() == [True, False, False]
    fgsm = AdversarialSet("fgsm", np.arange(3), x, x_adv, np.zeros(3, int))
    assert fgsm.changed.tolist() == [True, False, True]


def test_adversarial_set_round_trip(tmp_path):
    x = np.random.default_rng(0).random((4, 1, 2, 2), dtype=np.float32)
    adv = AdversarialSet("boundary", np.array([3, 5, 8, 9]), x, x + 0.1, np.array([1, 2, 3, 4]),
                         {"seconds": 1.0}, starts=x + 0.5)
    adv.save(tmp_path)
    back = AdversarialSet.load(tmp_path, "boundary", {"seconds": 1.0})
    for name in ("indices", "x", "x_adv", "labels", "starts"):
        np.testing.assert_array_equal(getattr(back, name), getattr(adv, name))
    AdversarialSet("fgsm", adv.indices, x, x, adv.labels).save(tmp_path)
    assert AdversarialSet.load(tmp_path, "fgsm", {}).starts is None
