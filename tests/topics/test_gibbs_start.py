"""The starts of a collapsed Gibbs chain (`_gibbs_fit`: gibbs_init="kmeans", the default, and
"uniform") against independent truths.

The k-means start's last step draws each document's tokens left to right with the topics
fixed, z_i ∝ (n_dk^<i + α_k) φ_kw: its exact law over all assignments of a tiny corpus is
the product of those conditionals, enumerated here with plain loops. R independent starts
(one seed each) give an empirical law p̂ whose total variation distance to it is bounded as
in test_gibbs_kernels,

    E TV(p̂, p) <= ½ Σ_s sqrt(p_s (1 − p_s) / R)   (Jensen, per state),
    P(TV − E TV > t) <= exp(−2 R t²)               (McDiarmid),

the tolerance being that bound plus t at δ = 1e-6.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from latentkit.datasets import make_lda_corpus
from latentkit.exceptions import InvalidParameterError
from latentkit.topics import LDA
from latentkit.topics._corpus import csr_arrays
from latentkit.topics._gibbs_fit import (
    collapsed_log_joint,
    fixed_topics_sequential,
    initial_topics,
    kmeans_assignments,
)
from latentkit.topics._gibbs_kernels import (
    count_matrices,
    initial_assignments,
    tokens_from_counts,
)
from latentkit.topics._rng import seed_from

DELTA = 1e-6
TINY_DOCS = [[0, 1, 0], [2, 1, 2], [1, 1]]
TINY_ALPHA = [0.3, 0.8]


def tiny_arrays():
    lengths = [len(doc) for doc in TINY_DOCS]
    doc_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return doc_ptr, np.array(sum(TINY_DOCS, []), dtype=np.int32)


def empirical_law(draw, n_draws, n_topics, n_tokens):
    place = n_topics ** np.arange(n_tokens - 1, -1, -1)
    states = np.array([draw(seed) @ place for seed in range(n_draws)])
    return np.bincount(states, minlength=n_topics ** n_tokens) / n_draws


def fixed_topics_law(doc_words, phi, alpha):
    """p(z) for every z in K^N: Π_i (n_dk^<i + α_k) φ_kw / Σ_j (n_dj^<i + α_j) φ_jw, the
    counts n_dk^<i over the tokens before i in its document, by loops."""
    flat = [(d, w) for d, doc in enumerate(doc_words) for w in doc]
    n_topics = len(alpha)
    law = []
    for z in itertools.product(range(n_topics), repeat=len(flat)):
        prob = 1.0
        for i, (d, w) in enumerate(flat):
            earlier = [z[j] for j in range(i) if flat[j][0] == d]
            weights = [(earlier.count(k) + alpha[k]) * phi[k][w] for k in range(n_topics)]
            prob *= weights[z[i]] / sum(weights)
        law.append(prob)
    return np.array(law)


def test_fixed_topics_start_law_matches_the_product_of_conditionals():
    """The last step of the k-means start, `fixed_topics_sequential`."""
    n_draws = 20_000
    doc_ptr, words = tiny_arrays()
    phi = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    law = fixed_topics_law(TINY_DOCS, phi.tolist(), TINY_ALPHA)
    assert law.sum() == pytest.approx(1.0, abs=1e-12)
    tolerance = (0.5 * np.sum(np.sqrt(law * (1 - law) / n_draws))
                 + math.sqrt(math.log(1 / DELTA) / (2 * n_draws)))
    observed = empirical_law(
        lambda seed: fixed_topics_sequential(doc_ptr, words, phi, TINY_ALPHA, seed),
        n_draws, 2, len(words))
    assert 0.5 * np.abs(observed - law).sum() < tolerance
    # power: the law with the tokens independent (n_dk^<i left out) is outside it
    independent = fixed_topics_law([[w] for w in sum(TINY_DOCS, [])], phi.tolist(),
                                   TINY_ALPHA)
    assert 0.5 * np.abs(independent - law).sum() > 3 * tolerance


def planted(seed=1):
    corpus = make_lda_corpus(200, 60, 4, doc_length=40, alpha=0.1, eta=0.05,
                             random_state=seed)
    return corpus.counts, *tokens_from_counts(*csr_arrays(corpus.counts))


def test_kmeans_start_has_a_higher_log_joint_than_uniform():
    """On a planted corpus (4 well separated topics, α = 0.1) every k-means start is
    already clustered: log p(w, z) above that of every uniform start (by
    hundreds of nats here), for each of several seeds."""
    counts, doc_ptr, words = planted()
    n_topics, n_words = 4, counts.shape[1]
    alpha = np.full(n_topics, 0.1)
    config = gibbs_model()._em_config(*counts.shape)

    def log_joint(z):
        return collapsed_log_joint(*count_matrices(doc_ptr, words, z, n_topics, n_words),
                                   alpha, 0.05)

    uniform = [log_joint(initial_assignments(doc_ptr, words, n_topics, s)) for s in range(5)]
    kmeans = [log_joint(kmeans_assignments(counts, doc_ptr, words, config, s))
              for s in range(5)]
    assert min(kmeans) > max(uniform) + 100


def gibbs_model(**options):
    return LDA(4, method="gibbs", doc_topic_prior=0.1, topic_word_prior=0.05, **options)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_fit_starts_from_the_assignments_of_its_seed(n_threads):
    """max_iter=0 keeps the start: for each gibbs_init it is that start's assignments for
    the model's chain seed (the seed LDA derives from random_state), the same for every
    number of threads; the default is the k-means start, not the uniform one; the chain's
    counts are those of its assignments."""
    counts, doc_ptr, words = planted()
    seed = seed_from(np.random.default_rng(3))
    config = gibbs_model()._em_config(*counts.shape)
    expected = {
        "kmeans": kmeans_assignments(counts, doc_ptr, words, config, seed),
        "uniform": initial_assignments(doc_ptr, words, 4, seed),
    }
    default = gibbs_model(max_iter=0, n_threads=n_threads, random_state=3).fit(counts)
    assert default.em_state_.seed == seed
    assert default.em_state_.sweeps == 0  # none made: a warm start continues from sweep 0
    assert np.array_equal(default.em_state_.z, expected["kmeans"])
    assert not np.array_equal(expected["kmeans"], expected["uniform"])
    for start, z in expected.items():
        model = gibbs_model(max_iter=0, n_threads=n_threads, random_state=3,
                            gibbs_init=start).fit(counts)
        assert np.array_equal(model.em_state_.z, z)
        n_dk, n_wk, n_k = count_matrices(doc_ptr, words, z, 4, counts.shape[1])
        np.testing.assert_allclose(model.components_, n_wk.T + 0.05, rtol=0, atol=1e-12)


@pytest.mark.parametrize("start", ["kmeans", "uniform"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_fits_are_reproducible_per_seed_and_thread_count(start, n_threads):
    counts, _, _ = planted()
    runs = [gibbs_model(max_iter=12, burn_in=4, thin=2, n_threads=n_threads, gibbs_init=start,
                        random_state=seed).fit(counts) for seed in (5, 5, 6)]
    assert np.array_equal(runs[0].em_state_.z, runs[1].em_state_.z)
    assert np.array_equal(runs[0].components_, runs[1].components_)
    assert np.array_equal(runs[0].history_, runs[1].history_)
    assert not np.array_equal(runs[0].em_state_.z, runs[2].em_state_.z)


def test_bad_start_is_rejected():
    counts, doc_ptr, words = planted()
    with pytest.raises(InvalidParameterError, match="gibbs_init"):
        gibbs_model(gibbs_init="random").fit(counts)
    config = gibbs_model()._em_config(*counts.shape)
    with pytest.raises(ValueError, match="start must be one of"):
        initial_topics(counts, doc_ptr, words, config, 0, "random")
    with pytest.raises(ValueError, match="word ids"):
        fixed_topics_sequential(doc_ptr, words, np.ones((4, 3)), np.full(4, 0.1), 0)
    with pytest.raises(ValueError, match="phi must be"):
        fixed_topics_sequential(doc_ptr, words, np.ones((4, 60)), np.ones(3), 0)
