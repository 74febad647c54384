"""Low-rank Gaussian kernels against dense truths: scipy's multivariate normal on C = W W^T
+ Ψ (and on its observed block), the dense conditional of z given x."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from latentkit._linalg import SingularCovarianceError
from latentkit._missing import missingness_patterns, pattern_index
from latentkit.linear import _missing_kernels as mk
from latentkit.linear._lowrank import (
    lowrank_log_prob,
    lowrank_log_prob_missing,
    lowrank_mean_log_prob_cov,
    lowrank_missing,
    lowrank_posterior,
    lowrank_posterior_missing,
    subspace_log_prob,
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


@pytest.mark.parametrize("rank, zero_variances", [(5, 0), (3, 0), (3, 2)])
def test_subspace_log_prob_equals_scipy_allow_singular(rank, zero_variances):
    """N(μ, U Λ U^T), singular when rank < D or some λ = 0: scipy's density on the support
    (pseudo-determinant, pseudo-inverse) and -inf off it."""
    rng = np.random.default_rng(3)
    D = 5
    U = np.linalg.qr(rng.normal(size=(D, rank)))[0]
    lam = np.concatenate([rng.uniform(0.5, 3.0, rank - zero_variances),
                          np.zeros(zero_variances)])
    mean = rng.normal(size=D)
    C = (U * lam) @ U.T
    on_support = mean + rng.normal(size=(20, rank)) * np.sqrt(lam) @ U.T
    truth = multivariate_normal(mean, C, allow_singular=True)
    np.testing.assert_allclose(subspace_log_prob(on_support, mean, U, lam),
                               truth.logpdf(on_support), rtol=1e-10)
    if rank - zero_variances < D:
        off = on_support + rng.normal(size=(20, D))
        assert np.all(subspace_log_prob(off, mean, U, lam) == -np.inf)
        assert np.all(truth.logpdf(off) == -np.inf)


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


# -- compiled kernels of the missing-value path (numba) against numpy ----------------------



def random_spd(rng, K, M):
    A = rng.normal(size=(K, M, M + 3))
    return A @ np.swapaxes(A, 1, 2) / (M + 3) + 0.1 * np.eye(M)


def test_spd_inverse_equals_numpy():
    P = random_spd(np.random.default_rng(1), 40, 6)
    inv, log_det = mk.spd_inverse(P)
    np.testing.assert_allclose(inv, np.linalg.inv(P), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log_det, np.linalg.slogdet(P)[1], rtol=1e-12)


def test_spd_inverse_rejects_non_positive_definite():
    P = random_spd(np.random.default_rng(2), 5, 4)
    P[3] = np.diag([1.0, 2.0, -1.0, 1.0])  # indefinite
    with pytest.raises(SingularCovarianceError, match="number 3 of the batch"):
        mk.spd_inverse(P)
    P[3] = np.eye(4)
    P[1, 2, 2] = np.nan
    with pytest.raises(SingularCovarianceError, match="number 1"):
        mk.spd_inverse(P)


def test_pattern_precision_inverse_equals_dense():
    # patterns from all missing to all observed: both the sum over the observed rows and
    # the total minus the missing rows are exercised
    rng = np.random.default_rng(3)
    D, M = 9, 3
    Wt = rng.normal(size=(D, M))
    observed = np.array([np.arange(D) < k for k in range(D + 1)] + list(rng.random((6, D)) < 0.5))
    inv, log_det = mk.pattern_precision_inverse(observed, Wt)
    P = np.eye(M) + np.einsum("ud,di,dj->uij", observed.astype(float), Wt, Wt)
    np.testing.assert_allclose(inv, np.linalg.inv(P), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(log_det, np.linalg.slogdet(P)[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(inv[0], np.eye(M))  # nothing observed: the prior


@pytest.mark.parametrize("density", [0.1, 0.5, 0.9])
def test_masked_sum_equals_dense_product(density):
    rng = np.random.default_rng(4)
    U, D, M = 30, 8, 4
    mask = rng.random((U, D)) < density
    weights = rng.uniform(0.5, 3.0, U)
    A = random_spd(rng, U, M)
    G = mk.masked_sum(mask, weights, A)
    expected = np.einsum("ud,u,uij->dij", mask.astype(float), weights, A)
    np.testing.assert_allclose(G, expected, rtol=1e-10, atol=1e-12)


def test_row_kernels_equal_numpy():
    rng = np.random.default_rng(5)
    n, D, M = 25, 6, 2
    X = rng.normal(size=(n, D))
    observed = rng.random((n, D)) < 0.7
    X[~observed] = np.nan
    mean, scale, shift = rng.normal(size=D), rng.uniform(0.5, 2, D), rng.normal(size=D)
    W, Z = rng.normal(size=(D, M)), rng.normal(size=(n, M))
    R, sq = mk.whiten_observed(X, observed, mean, scale)
    R_np = np.where(observed, (X - mean) * scale, 0.0)
    np.testing.assert_allclose(R, R_np, rtol=1e-14)
    np.testing.assert_allclose(sq, (R_np**2).sum(axis=1), rtol=1e-12)
    Xs, col_sum, col_sq = mk.impute_shifted(X, observed, mean, W, Z, shift)
    Xs_np = np.where(observed, X, mean + Z @ W.T) - shift
    np.testing.assert_allclose(Xs, Xs_np, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(col_sum, Xs_np.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(col_sq, (Xs_np**2).sum(axis=0), rtol=1e-12)
    A, pattern = random_spd(rng, 3, M), np.arange(n) % 3
    y, quad = mk.pattern_matvec(A, pattern, Z)
    y_np = np.einsum("nij,nj->ni", A[pattern], Z)
    np.testing.assert_allclose(y, y_np, rtol=1e-12)
    np.testing.assert_allclose(quad, np.einsum("ni,ni->n", y_np, Z), rtol=1e-12)
