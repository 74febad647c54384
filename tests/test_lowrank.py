"""Low-rank Gaussian kernels against dense truths: scipy's multivariate normal on C = W W^T
+ Ψ (and on its observed block), the dense conditional of z given x."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from latentkit._missing import missingness_patterns, pattern_index
from latentkit.linear._lowrank import (
    lowrank_log_prob,
    lowrank_log_prob_missing,
    lowrank_mean_log_prob_cov,
    lowrank_missing,
    lowrank_posterior,
    lowrank_posterior_missing,
)


@pytest.fixture
def model():
    rng = np.random.default_rng(0)
    D, M = 7, 3
    W = rng.normal(size=(D, M))
    psi = rng.uniform(0.2, 1.5, D)
    mean = rng.normal(size=D)
    X = mean + rng.normal(size=(50, M)) @ W.T + rng.normal(size=(50, D)) * np.sqrt(psi)
    return X, mean, W, psi


def dense_posterior(x_o, obs, mean, W, psi):
    """p(z | x_o) from the joint Gaussian of (z, x_o): Cov(z, x_o) = W_o^T."""
    C = W[obs] @ W[obs].T + np.diag(psi[obs])
    K = np.linalg.solve(C, W[obs]).T  # W_o^T C_oo^{-1}
    return K @ (x_o - mean[obs]), np.eye(W.shape[1]) - K @ W[obs]


def test_log_prob_equals_dense(model):
    X, mean, W, psi = model
    dense = multivariate_normal(mean, W @ W.T + np.diag(psi)).logpdf(X)
    np.testing.assert_allclose(lowrank_log_prob(X, mean, W, psi), dense, rtol=1e-12)


def test_log_prob_float32(model):
    X, mean, W, psi = model
    dense = multivariate_normal(mean, W @ W.T + np.diag(psi)).logpdf(X)
    out = lowrank_log_prob(X.astype(np.float32), mean, W, psi)
    np.testing.assert_allclose(out, dense, rtol=1e-5)


def test_posterior_equals_dense(model):
    X, mean, W, psi = model
    means, cov = lowrank_posterior(X, mean, W, psi)
    obs = np.ones(X.shape[1], bool)
    for x, m in zip(X[:5], means[:5]):
        m_true, c_true = dense_posterior(x, obs, mean, W, psi)
        np.testing.assert_allclose(m, m_true, atol=1e-12)
        np.testing.assert_allclose(cov, c_true, atol=1e-12)


def test_mean_log_prob_from_scatter(model):
    X, mean, W, psi = model
    S = (X - mean).T @ (X - mean) / len(X)
    dense = multivariate_normal(mean, W @ W.T + np.diag(psi)).logpdf(X).mean()
    np.testing.assert_allclose(lowrank_mean_log_prob_cov(S, W, psi), dense, rtol=1e-12)


def test_missing_equals_dense_marginal(model):
    X, mean, W, psi = model
    rng = np.random.default_rng(1)
    X = X.copy()
    X[rng.random(X.shape) < 0.3] = np.nan
    X[3] = np.nan  # an entirely missing row: density 1, posterior = prior
    X[4, 1:] = np.nan  # a single observed coordinate
    post = lowrank_missing(X, mean, W, psi)
    means, covs = lowrank_posterior_missing(X, mean, W, psi)
    np.testing.assert_array_equal(lowrank_log_prob_missing(X, mean, W, psi), post.log_prob)
    for n, x in enumerate(X):
        obs = ~np.isnan(x)
        if not obs.any():
            assert post.log_prob[n] == 0
            np.testing.assert_allclose(covs[n], np.eye(W.shape[1]))
            np.testing.assert_allclose(means[n], 0)
            continue
        C = W[obs] @ W[obs].T + np.diag(psi[obs])
        dense = multivariate_normal(mean[obs], C).logpdf(x[obs])
        np.testing.assert_allclose(post.log_prob[n], dense, rtol=1e-12)
        m_true, c_true = dense_posterior(x[obs], obs, mean, W, psi)
        np.testing.assert_allclose(means[n], m_true, atol=1e-12)
        np.testing.assert_allclose(covs[n], c_true, atol=1e-12)


def test_missing_on_complete_rows_equals_complete_kernel(model):
    X, mean, W, psi = model
    np.testing.assert_allclose(lowrank_log_prob_missing(X, mean, W, psi),
                               lowrank_log_prob(X, mean, W, psi), rtol=1e-12)


def test_pattern_index_groups_rows():
    rng = np.random.default_rng(2)
    observed = rng.random((300, 20)) < 0.9
    observed[:100] = observed[0]  # a hundred rows of one pattern
    patterns, inverse = pattern_index(observed)
    np.testing.assert_array_equal(patterns[inverse], observed)
    assert len(np.unique(patterns, axis=0)) == len(patterns)
    rows_seen = np.concatenate([rows for rows, obs in missingness_patterns(observed)
                                if (observed[rows] == obs).all()])
    np.testing.assert_array_equal(np.sort(rows_seen), np.arange(300))
