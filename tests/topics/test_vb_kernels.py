"""LDA variational kernels against independent truths: scipy's digamma, a dense per-token
reference written from Blei, Ng & Jordan's (2003) equations, the closed-form KL divergence of
two Dirichlets, a Monte Carlo estimate, and the monotone ELBO of batch coordinate ascent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import gammaln, logsumexp, psi

from helpers import assert_monotone
from latentkit.exceptions import InvalidInputError, InvalidParameterError
from latentkit.topics._special import digamma, dirichlet_expectation
from latentkit.topics._vb_kernels import doc_topic_inference, global_bound, infer_documents


@numba.njit
def _digamma_many(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = digamma(x[i])
    return out


def test_digamma_matches_scipy_to_1e14_relative():
    x = np.concatenate([
        np.logspace(-8, 8, 40001),
        np.linspace(0.9, 2.0, 20001),  # around the root 1.4616... and the series' edges
        np.linspace(2.0, 12.0, 20001),  # the recurrence up to the asymptotic series
        [1.4616321449683622, 0.9616321449683622, 1.9616321449683622, 10.0, 9.999999999]])
    expected = psi(x)
    relative = np.abs(_digamma_many(x) - expected) / np.abs(expected)
    assert relative.max() <= 1e-14, (relative.max(), x[np.argmax(relative)])


def test_digamma_outside_domain_is_nan():
    assert np.all(np.isnan(_digamma_many(np.array([0.0, -1.0, np.nan]))))
    assert _digamma_many(np.array([np.inf]))[0] == np.inf


def test_dirichlet_expectation_matches_monte_carlo():
    rng = np.random.default_rng(0)
    params = np.array([[0.7, 2.0, 5.0], [1.5, 1.5, 0.9]])
    expected = dirichlet_expectation(params)
    for row, elog in zip(params, expected):
        logs = np.log(rng.dirichlet(row, size=200_000))
        se = logs.std(axis=0) / np.sqrt(len(logs))
        np.testing.assert_array_less(np.abs(logs.mean(axis=0) - elog), 4 * se)


# ---------------------------------------------------------------- the dense reference


def _reference_document(tokens, elog_beta, alpha, tol=1e-14, max_iter=100_000):
    """Blei et al. (2003) per token: φ_nk ∝ exp(E log θ_k + E log β_k,w_n), γ = α + Σ_n φ_n,
    to convergence; then the ELBO with φ written out. Returns gamma, phi (N, K), elbo."""
    K = len(alpha)
    gamma = alpha + len(tokens) / K
    for _ in range(max_iter):
        elog_theta = psi(gamma) - psi(gamma.sum())
        log_phi = elog_theta[None, :] + elog_beta[:, tokens].T
        phi = np.exp(log_phi - logsumexp(log_phi, axis=1, keepdims=True))
        updated = alpha + phi.sum(axis=0)
        done = np.mean(np.abs(updated - gamma)) < tol
        gamma = updated
        if done:
            break
    elog_theta = psi(gamma) - psi(gamma.sum())
    log_phi = elog_theta[None, :] + elog_beta[:, tokens].T
    phi = np.exp(log_phi - logsumexp(log_phi, axis=1, keepdims=True))
    e_log_p_theta = gammaln(alpha.sum()) - gammaln(alpha).sum() + (alpha - 1) @ elog_theta
    e_log_p_zw = np.sum(phi * log_phi)  # Σ_n Σ_k φ_nk (E log θ_k + E log β_k,w_n)
    entropy_z = -np.sum(phi * np.log(phi))
    e_log_q_theta = gammaln(gamma.sum()) - gammaln(gamma).sum() + (gamma - 1) @ elog_theta
    return gamma, phi, e_log_p_theta + e_log_p_zw + entropy_z - e_log_q_theta


def _tiny_problem():
    """3 documents (one empty) over V = 6 words, K = 3 topics, asymmetric α."""
    docs = [[0, 0, 1, 3, 5, 5, 5], [], [2, 2, 4, 1, 5, 0, 2, 3]]
    rows = np.zeros((3, 6))
    for d, tokens in enumerate(docs):
        np.add.at(rows[d], tokens, 1.0)
    rng = np.random.default_rng(3)
    lam = rng.gamma(2.0, 1.0, size=(3, 6)) + 0.2
    alpha = np.array([0.3, 0.8, 0.15])
    return docs, sp.csr_matrix(rows), dirichlet_expectation(lam), alpha


def _reference_corpus(docs, elog_beta, alpha):
    K, V = elog_beta.shape
    gamma, sstats, bound = np.empty((len(docs), K)), np.zeros((K, V)), np.zeros(len(docs))
    for d, tokens in enumerate(docs):
        tokens = np.array(tokens, dtype=int)
        gamma[d], phi, bound[d] = _reference_document(tokens, elog_beta, alpha)
        np.add.at(sstats.T, tokens, phi)
    return gamma, sstats, bound


def test_matches_dense_per_token_reference_float64():
    docs, X, elog_beta, alpha = _tiny_problem()
    gamma_ref, sstats_ref, bound_ref = _reference_corpus(docs, elog_beta, alpha)
    gamma, sstats, bound = infer_documents(X, np.exp(elog_beta), alpha, max_iter=100_000,
                                           tol=1e-14)
    np.testing.assert_allclose(gamma, gamma_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sstats, sstats_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(bound, bound_ref, rtol=0, atol=1e-10)
    # the empty document: γ = α, bound 0, and it adds no statistics
    np.testing.assert_array_equal(gamma[1], alpha)
    assert bound[1] == 0.0
    assert abs(sstats.sum() - X.sum()) < 1e-12  # Σ_k φ_nk = 1 for every token


def test_float32_matches_reference_to_1e5():
    docs, X, elog_beta, alpha = _tiny_problem()
    gamma_ref, sstats_ref, bound_ref = _reference_corpus(docs, elog_beta, alpha)
    exp_elog_beta = np.exp(elog_beta).astype(np.float32)
    gamma, sstats, bound = infer_documents(X, exp_elog_beta, alpha, max_iter=100_000,
                                           tol=1e-7)
    assert gamma.dtype == np.float32 and sstats.dtype == np.float32
    assert bound.dtype == np.float64
    np.testing.assert_allclose(gamma, gamma_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sstats, sstats_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bound, bound_ref, rtol=1e-5)


def test_default_tolerance_is_close_and_array_kernel_equals_wrapper():
    docs, X, elog_beta, alpha = _tiny_problem()
    gamma_ref, _, bound_ref = _reference_corpus(docs, elog_beta, alpha)
    exp_elog_beta = np.exp(elog_beta)
    gamma, sstats, bound = doc_topic_inference(
        X.indptr.astype(np.int64), X.indices.astype(np.int32), X.data, exp_elog_beta, alpha)
    np.testing.assert_allclose(gamma, gamma_ref, atol=1e-2)
    np.testing.assert_allclose(bound, bound_ref, atol=1e-3)
    wrapped = infer_documents(X.toarray(), exp_elog_beta, alpha)
    for ours, theirs in zip((gamma, sstats, bound), wrapped):
        np.testing.assert_array_equal(ours, theirs)


def test_wrapper_rejects_bad_input():
    _, X, elog_beta, alpha = _tiny_problem()
    beta = np.exp(elog_beta)
    with pytest.raises(InvalidInputError, match="columns"):
        infer_documents(X[:, :5], beta, alpha)
    with pytest.raises(InvalidInputError, match="non-negative counts"):
        infer_documents(-X, beta, alpha)
    with pytest.raises(InvalidInputError, match="exp_elog_beta"):
        infer_documents(X, np.where(beta > 0.2, np.nan, beta), alpha)
    with pytest.raises(InvalidParameterError, match="alpha"):
        infer_documents(X, beta, np.array([0.1, 0.0, 0.2]))


# ---------------------------------------------------------------- the global term


def _kl_dirichlet(a, b):
    """KL(Dir(a) || Dir(b)), the textbook closed form."""
    return (gammaln(a.sum()) - gammaln(a).sum() - gammaln(b.sum()) + gammaln(b).sum()
            + np.dot(a - b, psi(a) - psi(a.sum())))


def test_global_bound_is_minus_kl_to_the_prior():
    rng = np.random.default_rng(5)
    lam = rng.gamma(1.5, 2.0, size=(4, 7)) + 0.05
    eta = 0.3
    expected = -sum(_kl_dirichlet(row, np.full(7, eta)) for row in lam)
    assert abs(global_bound(lam, eta) - expected) < 1e-10 * max(1.0, abs(expected))


def test_global_bound_matches_monte_carlo():
    """E_q[log p(β | η) - log q(β | λ)] by 200,000 draws per topic, within 4 standard errors."""
    rng = np.random.default_rng(6)
    lam = np.array([[1.2, 3.0, 2.2, 1.0, 4.5], [2.5, 1.1, 1.7, 6.0, 1.4]])
    eta = 0.7
    estimate, variance = 0.0, 0.0
    for row in lam:
        log_beta = np.log(rng.dirichlet(row, size=200_000))
        log_p = gammaln(5 * eta) - 5 * gammaln(eta) + (eta - 1) * log_beta.sum(axis=1)
        log_q = gammaln(row.sum()) - gammaln(row).sum() + log_beta @ (row - 1)
        estimate += np.mean(log_p - log_q)
        variance += np.var(log_p - log_q) / len(log_beta)
    assert abs(global_bound(lam, eta) - estimate) < 4 * np.sqrt(variance)


# ---------------------------------------------------------------- batch coordinate ascent


def _synthetic_corpus(rng, n_docs, V, K, length, alpha, eta):
    beta = rng.dirichlet(np.full(V, eta), size=K)
    theta = rng.dirichlet(np.full(K, alpha), size=n_docs)
    rows = [rng.multinomial(rng.poisson(length), p / p.sum()) for p in theta @ beta]
    return sp.csr_matrix(np.array(rows, dtype=np.float64))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_coordinate_ascent_elbo_is_monotone(dtype):
    rng = np.random.default_rng(7)
    K, V, eta = 4, 40, 0.1
    alpha = np.full(K, 0.2)
    X = _synthetic_corpus(rng, n_docs=120, V=V, K=K, length=30, alpha=0.2, eta=eta)
    lam = rng.gamma(100.0, 0.01, size=(K, V))
    history = []
    for _ in range(25):
        exp_elog_beta = np.exp(dirichlet_expectation(lam)).astype(dtype)
        tol = 1e-6 if dtype == np.float32 else 1e-12
        _, sstats, doc_bound = infer_documents(X, exp_elog_beta, alpha, 10_000, tol)
        history.append((doc_bound.sum() + global_bound(lam, eta)) / X.shape[0])
        lam = eta + sstats.astype(np.float64)
    assert_monotone(history, dtype)
    assert history[-1] - history[0] > 1.0  # the fit really moved


def test_chunks_on_two_threads_equal_one_call():
    """The engine's map-reduce: documents split into chunks, run concurrently (nogil), give
    the same γ and bounds, and sstats that sum to the single call's."""
    rng = np.random.default_rng(8)
    X = _synthetic_corpus(rng, n_docs=400, V=60, K=5, length=40, alpha=0.3, eta=0.1)
    exp_elog_beta = np.exp(dirichlet_expectation(rng.gamma(2.0, 1.0, size=(5, 60))))
    alpha = np.full(5, 0.3)
    gamma, sstats, bound = infer_documents(X, exp_elog_beta, alpha)
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(lambda rows: infer_documents(X[rows], exp_elog_beta, alpha),
                              (slice(0, 150), slice(150, 400))))
    np.testing.assert_array_equal(np.vstack([p[0] for p in parts]), gamma)
    np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), bound)
    np.testing.assert_allclose(parts[0][1] + parts[1][1], sstats, rtol=1e-12, atol=1e-12)
