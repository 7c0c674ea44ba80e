"""A black-box genetic word-substitution attack on text classifiers (Alzantot et al., EMNLP 2018).

A population of copies of a review evolves: each member is mutated by substituting one word with
the nearest neighbour (in a word-vector space) that most lowers the true class's probability;
the fittest member survives unchanged, the others are bred by uniform crossover of two parents
drawn in proportion to their fitness, then mutated. The search stops at the first member the
model labels wrongly. It only queries the model's output probabilities.

Differences from the paper, for lack of network access: the neighbour space is word vectors
learned from the training reviews themselves (positive PMI of co-occurrences within a window,
reduced by a truncated SVD), not counter-fitted GloVe vectors, and no language model filters the
substitutions. Neither needs the attacked model: the attack stays black-box. As in the paper,
reviews of 10-100 words are attacked and an example modifying more than 25% of its words is
discarded (a failure).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from convcheck.data import OOV_ID, PAD_ID

SPECIAL = (PAD_ID, OOV_ID)  # IMDb's padding and out-of-vocabulary ids; a model declares its own


def is_word(x: np.ndarray, special=SPECIAL) -> np.ndarray:
    """Which ids are words: neither padding nor out-of-vocabulary (`special`: their ids)."""
    return ~np.isin(x, special)


@dataclass(frozen=True)
class GeneticParams:
    population: int = 60
    generations: int = 20
    neighbours: int = 8  # candidate substitutes per word
    max_modification: float = 0.25  # share of a review's words; more is discarded
    min_words: int = 10
    max_words: int = 100
    temperature: float = 0.3  # of the softmax over fitness that picks parents


# --------------------------------------------------------------------------- neighbour space


def cooccurrence_vectors(sequences: np.ndarray, vocab_size: int, *, window: int = 4,
                         dim: int = 64, seed: int = 0, special=SPECIAL) -> np.ndarray:
    """Word vectors (vocab_size, dim) from token-id sequences: positive PMI of co-occurrence
    counts within `window` words, reduced by a truncated SVD (Levy & Goldberg 2014). Rows of
    the `special` ids (padding, out-of-vocabulary), and of words never seen, are zero."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    rows, cols = [], []
    for k in range(1, window + 1):
        a, b = sequences[:, :-k].ravel(), sequences[:, k:].ravel()
        keep = is_word(a, special) & is_word(b, special)
        rows += [a[keep], b[keep]]
        cols += [b[keep], a[keep]]
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = coo_matrix((np.ones(len(r), np.float64), (r, c)),
                        shape=(vocab_size, vocab_size)).tocsr()
    counts.sum_duplicates()
    total = counts.sum()
    row_sum = np.asarray(counts.sum(axis=1)).ravel()
    col_sum = np.asarray(counts.sum(axis=0)).ravel() ** 0.75  # context smoothing
    col_sum *= row_sum.sum() / col_sum.sum()
    coo = counts.tocoo()
    pmi = np.log(coo.data * total / (row_sum[coo.row] * col_sum[coo.col]))
    keep = pmi > 0
    ppmi = coo_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape).tocsr()
    u, s, _ = svds(ppmi, k=min(dim, vocab_size - 2), random_state=seed)
    vectors = (u * np.sqrt(s)).astype(np.float32)
    vectors[list(special)] = 0
    return vectors


def nearest_neighbours(vectors: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """(vocab_size, k) ids of each word's k nearest words by cosine similarity (-1: none, for
    ids without a vector). A word is never its own neighbour."""
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.maximum(norms, 1e-12)[:, None]
    has = norms > 0
    out = np.full((len(vectors), k), -1, dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        sims = unit[start:start + chunk] @ unit.T
        sims[:, ~has] = -np.inf
        rows = np.arange(len(sims))
        sims[rows, start + rows] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        near = np.take_along_axis(top, order, axis=1)
        # fewer than k words with a vector: the rest are no neighbours
        near[np.take_along_axis(top_sims, order, axis=1) == -np.inf] = -1
        out[start:start + chunk] = near
    out[~has] = -1
    return out


# --------------------------------------------------------------------------- the search


@dataclass
class Outcome:
    x_adv: np.ndarray  # the adversarial review, or the input itself when the attack failed
    success: bool  # misclassified and within the modification budget
    modification_rate: float  # words changed / words in the review (of the best found)
    discarded: bool  # misclassified, but over the modification budget
    queries: int  # samples the model was asked to label
    generations: int


def n_words(x: np.ndarray, pad_id: int = PAD_ID) -> int:
    return int(np.count_nonzero(x != pad_id))


def attack(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, label: int,
           neighbours: np.ndarray, params: GeneticParams, rng: np.random.Generator,
           special=SPECIAL) -> Outcome:
    """Untargeted attack on one review (token ids, padded on either side): find a version the
    model labels other than `label` by substituting words with their neighbours. special:
    the model's (padding, out-of-vocabulary) ids, never substituted."""
    words = n_words(x, special[0])
    positions = np.flatnonzero(is_word(x, special) & (neighbours[np.maximum(x, 0)] >= 0).any(axis=1))
    if len(positions) == 0:
        return Outcome(x.copy(), False, 0.0, False, 0, 0)
    queries = 0

    def ask(batch):
        nonlocal queries
        queries += len(batch)
        return predict(batch)

    def mutate(pop: np.ndarray) -> np.ndarray:
        """Each member: one random position, replaced by the neighbour of the seed's word there
        that most lowers p(label) (the member keeps its word if none does better)."""
        pos = rng.choice(positions, size=len(pop))
        cands = neighbours[x[pos]]  # (P, k): substitutes of the seed's word, -1 = none
        k = cands.shape[1]
        batch = np.repeat(pop, k + 1, axis=0)  # slot 0 of each member: unchanged
        subst = np.concatenate([pop[np.arange(len(pop)), pos][:, None], cands], axis=1)
        subst = np.where(subst >= 0, subst, pop[np.arange(len(pop)), pos][:, None])
        batch[np.arange(len(batch)), np.repeat(pos, k + 1)] = subst.ravel()
        p = ask(batch)[:, label].reshape(len(pop), k + 1)
        best = p.argmin(axis=1)
        return batch.reshape(len(pop), k + 1, -1)[np.arange(len(pop)), best]

    pop = mutate(np.repeat(x[None], params.population, axis=0))
    best_over: tuple[float, np.ndarray] | None = None  # adversarial but over budget
    for g in range(1, params.generations + 1):
        probs = ask(pop)
        fooled = np.argmax(probs, axis=1) != label
        changed = (pop != x).sum(axis=1)
        rate = changed / words
        within = fooled & (rate <= params.max_modification)
        if within.any():
            i = np.flatnonzero(within)[np.argmin(rate[within])]
            return Outcome(pop[i].copy(), True, float(rate[i]), False, queries, g)
        if fooled.any():
            i = np.flatnonzero(fooled)[np.argmin(rate[fooled])]
            if best_over is None or rate[i] < best_over[0]:
                best_over = (float(rate[i]), pop[i].copy())
        fitness = 1.0 - probs[:, label]
        elite = pop[np.argmax(fitness)]
        w = np.exp((fitness - fitness.max()) / params.temperature)
        w /= w.sum()
        n_children = params.population - 1
        a = pop[rng.choice(len(pop), n_children, p=w)]
        b = pop[rng.choice(len(pop), n_children, p=w)]
        children = np.where(rng.random(a.shape) < 0.5, a, b)
        pop = np.concatenate([elite[None], mutate(children)])
    if best_over is not None:
        return Outcome(x.copy(), False, best_over[0], True, queries, params.generations)
    return Outcome(x.copy(), False, 0.0, False, queries, params.generations)
