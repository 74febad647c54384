"""The fast paths of LDA's variational E-step against independent truths: scipy's digamma
for exp(E[log β]), numpy's unique for a minibatch's words, the one-call kernel for the
threaded and column-restricted minibatch E-step, and scikit-learn's KMeans for the k-means
start."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import psi

from latentkit.topics._corpus import csr_arrays
from latentkit.topics._vb import (
    TopicConfig,
    TopicParams,
    e_step,
    expected_topics,
    lloyd_labels,
    seed_documents,
)
from latentkit.topics._vb_kernels import (
    accumulate_documents,
    doc_gammas,
    doc_gammas_and_weights,
    doc_topic_inference,
    exp_expected_topics,
    minibatch_words,
    scatter_documents,
)


def _corpus(seed, n_docs=300, V=80, K=6, length=50):
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(V, 0.1), size=K)
    theta = rng.dirichlet(np.full(K, 0.2), size=n_docs)
    rows = [rng.multinomial(rng.poisson(length), p / p.sum()) for p in theta @ beta]
    rows[3] = np.zeros(V, dtype=np.int64)  # an empty document
    return sp.csr_matrix(np.array(rows, dtype=np.float64)), rng


def test_exp_expected_topics_matches_scipy_digamma():
    """exp(ψ(λ_kw) - ψ(Σ_v λ_kv)) over λ from 1e-6 to 1e6 (every regime of ψ), columns
    in any order: relative error below 1e-12 (E[log β] to ~1e-12 absolute); values that
    underflow to subnormals (λ below ~1e-3) to 1e-300 absolute."""
    rng = np.random.default_rng(0)
    lam = np.exp(rng.uniform(np.log(1e-6), np.log(1e6), size=(5, 400)))
    lam[0, :8] = [1.4616321449683622, 1.0, 2.0, 0.5, 10.0, 8.0, 7.999, 1e-8]
    expected = np.exp(psi(lam) - psi(lam.sum(axis=1, keepdims=True)))
    columns = rng.permutation(400)[:150]
    np.testing.assert_allclose(exp_expected_topics(lam, columns), expected[:, columns],
                               rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(expected_topics(lam), expected, rtol=1e-12, atol=1e-300)


def test_minibatch_words_renumbers_as_numpy_unique():
    indices = np.random.default_rng(1).integers(0, 1000, size=3000).astype(np.int32)
    columns, local = minibatch_words(indices, 1000)
    expected_columns, expected_local = np.unique(indices, return_inverse=True)
    np.testing.assert_array_equal(columns, expected_columns)
    np.testing.assert_array_equal(local, expected_local)


def test_any_split_of_the_documents_gives_the_same_gammas():
    """γ_d depends on document d alone: ranges computed separately equal one call, bit for
    bit, and the in-order accumulation equals the one-call kernel."""
    X, rng = _corpus(2)
    exp_elog_beta = np.exp(psi(rng.gamma(2.0, 1.0, size=(6, 80))))
    alpha = np.full(6, 0.2)
    arrays = csr_arrays(X)
    whole = np.empty((300, 6))
    doc_gammas(*arrays, exp_elog_beta, alpha, 100, 1e-3, whole, 0, 300)
    split = np.empty((300, 6))
    for first, last in ((0, 7), (7, 150), (150, 151), (151, 300)):
        doc_gammas(*arrays, exp_elog_beta, alpha, 100, 1e-3, split, first, last)
    np.testing.assert_array_equal(split, whole)
    sstats, bound = np.zeros((6, 80)), np.empty(300)
    accumulate_documents(*arrays, exp_elog_beta, alpha, whole, sstats, bound)
    gamma, sstats_one, bound_one = doc_topic_inference(*arrays, exp_elog_beta, alpha)
    np.testing.assert_array_equal(gamma, whole)
    np.testing.assert_array_equal(sstats, sstats_one)
    np.testing.assert_array_equal(bound, bound_one)


def test_weights_computed_by_ranges_then_scattered_equal_the_serial_accumulation():
    """The minibatch path computes each document's weights and bound with its γ (on
    threads) and scatters the statistics in document order: bit for bit the serial
    `accumulate_documents`, whatever the ranges."""
    X, rng = _corpus(3)  # document 3 is empty: γ = α, bound 0, no statistics
    exp_elog_beta = np.exp(psi(rng.gamma(2.0, 1.0, size=(6, 80))))
    alpha = np.full(6, 0.2)
    arrays = csr_arrays(X)
    gamma, sstats_one, bound_one = doc_topic_inference(*arrays, exp_elog_beta, alpha)
    split, t_doc = np.empty((300, 6)), np.empty((300, 6))
    word_ratio, bound = np.empty(arrays[1].shape[0]), np.empty(300)
    for first, last in ((151, 300), (0, 7), (150, 151), (7, 150)):
        doc_gammas_and_weights(*arrays, exp_elog_beta, alpha, 100, 1e-3, split, t_doc,
                               word_ratio, bound, first, last)
    sstats = np.zeros((6, 80))
    scatter_documents(arrays[0], arrays[1], exp_elog_beta, t_doc, word_ratio, sstats)
    np.testing.assert_array_equal(split, gamma)
    np.testing.assert_array_equal(bound, bound_one)
    np.testing.assert_array_equal(sstats, sstats_one)
    assert bound[3] == 0.0 and np.all(split[3] == alpha)


def _config(minibatch):
    return TopicConfig(6, 80, np.full(6, 0.2), 0.1, False, False, 100, 1e-3,
                       minibatch=minibatch)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_minibatch_e_step_equals_the_chunk_e_step(dtype, monkeypatch):
    """The online E-step (exp(E[log β]) at the minibatch's words only, documents on
    threads) gives the chunk E-step's statistics and bound, whatever the thread count."""
    X, rng = _corpus(3)
    X = X.astype(dtype)
    params = TopicParams(rng.gamma(2.0, 1.0, size=(6, 80)) + 0.1, np.full(6, 0.2), 0.1)
    X_part = X[:, :60]  # words 60-79 absent: their statistics must be exactly zero
    X = sp.hstack([X_part, sp.csr_matrix((300, 20), dtype=dtype)]).tocsr()
    reference, ref_bound = e_step(params, None, _config(False), X)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("LATENTKIT_NUM_THREADS", threads)
        stats, bound = e_step(params, None, _config(True), X)
        assert np.all(stats.topic_word[:, 60:] == 0.0)
        np.testing.assert_allclose(stats.topic_word, reference.topic_word, rtol=tol, atol=tol)
        np.testing.assert_allclose(stats.elog_theta, reference.elog_theta, rtol=tol)
        assert abs(bound - ref_bound) <= tol * abs(ref_bound)
        results.append((stats.topic_word, bound))
    for topic_word, bound in results[1:]:  # thread count changes nothing, bit for bit
        np.testing.assert_array_equal(topic_word, results[0][0])
        assert bound == results[0][1]


def test_lloyd_labels_equal_scikit_learn_kmeans():
    from sklearn.cluster import KMeans

    X, rng = _corpus(4, n_docs=400)
    X = X[np.asarray(X.sum(axis=1)).ravel() > 0]
    lengths = np.asarray(X.sum(axis=1)).ravel()
    roots = (sp.diags(1.0 / lengths) @ X).sqrt().tocsr()
    seeds = roots[seed_documents(X, 6, rng)].toarray()
    ours = lloyd_labels(*csr_arrays(roots), seeds, 50)
    theirs = KMeans(6, init=seeds, n_init=1, max_iter=50, tol=0).fit(roots).labels_
    np.testing.assert_array_equal(ours, theirs)
