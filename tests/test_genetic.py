"""The genetic word-substitution attack and its neighbour space, on small known problems."""
from __future__ import annotations

import numpy as np
import pytest

from convcheck.robustness import genetic
from convcheck.robustness.genetic import SPECIAL, GeneticParams
from models import PAD_ID

GOOD, BAD, FINE, AWFUL = 2, 3, 4, 5  # word ids; 6.. are neutral words


def keyword_model(weights: dict[int, float]):
    """A black box: p(positive) = sigmoid(sum of the words' weights); class 1 = positive."""

    def predict(batch: np.ndarray) -> np.ndarray:
        w = np.zeros(64)
        for word, value in weights.items():
            w[word] = value
        score = w[batch].sum(axis=1)
        p = 1 / (1 + np.exp(-score))
        return np.stack([1 - p, p], axis=1).astype(np.float32)

    return predict


def review(words: list[int], length: int = 40) -> np.ndarray:
    x = np.full(length, PAD_ID, dtype=np.int64)
    x[length - len(words):] = words  # pre-padded, as the data loader does
    return x


def neighbour_table(pairs: dict[int, list[int]], k: int = 2) -> np.ndarray:
    table = np.full((64, k), -1, dtype=np.int64)
    for word, near in pairs.items():
        table[word, :len(near)] = near
    return table


PARAMS = GeneticParams(population=8, generations=10, neighbours=2)


def test_flips_a_review_by_substituting_a_neighbour():
    x = review([6, 7, GOOD, 8, 9, 10, 11, 12, 13, 14, 15, 16])  # 12 words, positive
    predict = keyword_model({GOOD: 2.0, BAD: -4.0})
    assert predict(x[None]).argmax() == 1
    out = genetic.attack(predict, x, 1, neighbour_table({GOOD: [BAD, FINE]}), PARAMS,
                         np.random.default_rng(0))
    assert out.success and not out.discarded
    assert predict(out.x_adv[None]).argmax() == 0
    changed = np.flatnonzero(out.x_adv != x)
    assert changed.tolist() == [np.flatnonzero(x == GOOD)[0]] and out.x_adv[changed[0]] == BAD
    assert out.modification_rate == pytest.approx(1 / 12)
    assert out.queries > 0 and 1 <= out.generations <= PARAMS.generations


def test_an_example_over_the_modification_budget_is_discarded():
    # Four positive words of ten must all flip (40% > 25%): found, but discarded.
    x = review([GOOD, GOOD, GOOD, GOOD, 6, 7, 8, 9, 10, 11])
    predict = keyword_model({GOOD: 1.0, BAD: -0.1})
    out = genetic.attack(predict, x, 1, neighbour_table({GOOD: [BAD]}), PARAMS,
                         np.random.default_rng(0))
    assert not out.success and out.discarded
    assert out.modification_rate == pytest.approx(0.4)
    np.testing.assert_array_equal(out.x_adv, x)  # a failure keeps the input


def test_no_substitutable_word_means_no_query():
    x = review([6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
    out = genetic.attack(keyword_model({}), x, 1, neighbour_table({GOOD: [BAD]}), PARAMS,
                         np.random.default_rng(0))
    assert not out.success and out.queries == 0
    np.testing.assert_array_equal(out.x_adv, x)


def test_a_robust_model_is_not_fooled():
    x = review([GOOD, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    predict = keyword_model({GOOD: 5.0, FINE: 5.0, 6: 5.0})  # every substitute is positive too
    out = genetic.attack(predict, x, 1, neighbour_table({GOOD: [FINE]}), PARAMS,
                         np.random.default_rng(0))
    assert not out.success and not out.discarded and out.generations == PARAMS.generations


def test_cooccurrence_neighbours_pair_words_used_alike():
    """Words that occur in the same contexts are each other's nearest neighbours."""
    rng = np.random.default_rng(0)
    contexts = {GOOD: (20, 21), FINE: (20, 21), BAD: (30, 31), AWFUL: (30, 31)}
    rows = []
    for _ in range(400):
        word = rng.choice(list(contexts))
        left, right = contexts[word]
        rows.append(np.r_[rng.integers(40, 60, 3), left, word, right, rng.integers(40, 60, 3)])
    vectors = genetic.cooccurrence_vectors(np.array(rows), vocab_size=64, window=1, dim=8)
    assert not vectors[list(SPECIAL)].any()  # padding and out-of-vocabulary have no vector
    table = genetic.nearest_neighbours(vectors, k=1)
    assert table[GOOD, 0] == FINE and table[FINE, 0] == GOOD
    assert table[BAD, 0] == AWFUL and table[AWFUL, 0] == BAD
    assert (table[10] == -1).all()  # never seen: no neighbours
    assert all(table[w, 0] != w for w in range(64))


def test_fewer_words_with_vectors_than_neighbours_asked_for():
    vectors = np.zeros((8, 2), np.float32)
    vectors[[2, 3, 4]] = [[1, 0], [0.9, 0.1], [0, 1]]
    table = genetic.nearest_neighbours(vectors, k=4)
    assert table[2].tolist() == [3, 4, -1, -1]  # only two other words have a vector
