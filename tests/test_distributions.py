"""Posterior distribution objects against scipy and Monte Carlo."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from latentkit import Categorical, Gaussian


def random_covariances(rng, n, M):
    A = rng.normal(size=(n, M, M))
    return A @ np.swapaxes(A, 1, 2) + 0.3 * np.eye(M)


def test_gaussian_log_prob_matches_scipy_per_row_and_shared_covariance():
    rng = np.random.default_rng(0)
    mean, cov = rng.normal(size=(6, 3)), random_covariances(rng, 6, 3)
    z = rng.normal(size=(6, 3))
    expected = [multivariate_normal(m, c).logpdf(x) for m, c, x in zip(mean, cov, z)]
    np.testing.assert_allclose(Gaussian(mean, cov).log_prob(z), expected, rtol=1e-12)
    shared = Gaussian(mean, cov[0])
    expected = [multivariate_normal(m, cov[0]).logpdf(x) for m, x in zip(mean, z)]
    np.testing.assert_allclose(shared.log_prob(z), expected, rtol=1e-12)
    # a leading sample axis: (n, rows, M) -> (n, rows)
    zs = rng.normal(size=(4, 6, 3))
    np.testing.assert_allclose(Gaussian(mean, cov).log_prob(zs)[2],
                               Gaussian(mean, cov).log_prob(zs[2]), rtol=1e-12)


def test_gaussian_samples_have_the_moments():
    rng = np.random.default_rng(1)
    mean, cov = rng.normal(size=(2, 3)), random_covariances(rng, 2, 3)
    draws = Gaussian(mean, cov).sample(100_000, random_state=0)
    assert draws.shape == (100_000, 2, 3)
    # Monte Carlo: the standard error of a mean is sqrt(var / n) <= ~0.01 here; 5 sigma
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.05)
    for i in range(2):
        np.testing.assert_allclose(np.cov(draws[:, i].T), cov[i], atol=0.05 * cov[i].max())


def test_gaussian_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="cov must have shape"):
        Gaussian(np.zeros((4, 2)), np.eye(3))


def test_categorical_from_probs_or_log_probs():
    probs = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    a = Categorical(probs)
    with np.errstate(divide="ignore"):  # log 0 = -inf is a valid log-probability
        b = Categorical(log_probs=np.log(probs) + 7.0)  # unnormalized: normalized on entry
    np.testing.assert_allclose(a.probs, probs)
    np.testing.assert_allclose(b.probs, probs, atol=1e-15)
    np.testing.assert_array_equal(a.mode, [2, 0])
    np.testing.assert_allclose(a.mean, probs)
    np.testing.assert_allclose(a.log_prob([2, 0]), np.log([0.5, 1.0]))
    expected_entropy = -np.sum(probs[0] * np.log(probs[0]))
    np.testing.assert_allclose(a.entropy(), [expected_entropy, 0.0])
    with pytest.raises(ValueError, match="exactly one"):
        Categorical()
    with pytest.raises(ValueError, match="non-negative"):
        Categorical([[-0.1, 1.1]])


def test_categorical_sample_frequencies():
    probs = np.array([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05]])
    draws = Categorical(probs).sample(200_000, random_state=0)
    assert draws.shape == (200_000, 2)
    for row in range(2):
        freq = np.bincount(draws[:, row], minlength=3) / len(draws)
        # std of a frequency <= 0.5 / sqrt(n) ~ 1.1e-3; 5 sigma
        np.testing.assert_allclose(freq, probs[row], atol=6e-3)


def test_dirichlet_log_prob_mean_and_samples_match_scipy():
    from scipy.special import psi
    from scipy.stats import dirichlet

    from latentkit import Dirichlet

    rng = np.random.default_rng(3)
    gamma = rng.uniform(0.2, 5.0, size=(4, 3))
    theta = rng.dirichlet([1.0, 1.0, 1.0], size=4)
    dist = Dirichlet(gamma)
    np.testing.assert_allclose(dist.log_prob(theta),
                               [dirichlet(g).logpdf(t) for g, t in zip(gamma, theta)],
                               rtol=1e-12)
    np.testing.assert_allclose(dist.mean, [dirichlet(g).mean() for g in gamma], rtol=1e-12)
    draws = dist.sample(40_000, random_state=0)  # (n, rows, K)
    assert draws.shape == (40_000, 4, 3)
    np.testing.assert_allclose(draws.sum(axis=-1), 1.0, rtol=1e-12)
    # Monte Carlo: E[log θ] = ψ(γ_k) - ψ(Σγ), within 5 standard errors
    logs = np.log(draws)
    err = logs.std(axis=0) / np.sqrt(len(logs))
    expected = psi(gamma) - psi(gamma.sum(axis=1, keepdims=True))
    assert np.all(np.abs(logs.mean(axis=0) - expected) < 5 * err)
    np.testing.assert_allclose(dist.mean_log, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        Dirichlet([[1.0, 0.0]])


def test_factorized_categorical_is_a_product_of_independent_categoricals():
    from scipy.stats import entropy

    from latentkit.distributions import FactorizedCategorical

    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 3, 5))
    q = FactorizedCategorical(logits)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(q.probs, probs, rtol=1e-12)
    np.testing.assert_array_equal(q.mode, probs.argmax(-1))
    np.testing.assert_allclose(q.entropy(), entropy(probs, axis=-1).sum(-1), rtol=1e-12)
    z = np.array([[0, 1, 2], [4, 4, 4], [1, 0, 3], [2, 2, 0]])
    by_hand = np.log([np.prod([probs[i, l, z[i, l]] for l in range(3)]) for i in range(4)])
    np.testing.assert_allclose(q.log_prob(z), by_hand, rtol=1e-12)
    # draws: each latent's frequencies within 4 standard errors of its probabilities
    draws = q.sample(20_000, random_state=0)
    assert draws.shape == (20_000, 4, 3)
    frequencies = (draws[..., None] == np.arange(5)).mean(0)
    se = np.sqrt(probs * (1 - probs) / 20_000)
    assert np.all(np.abs(frequencies - probs) <= 4 * se + 1e-12)
    np.testing.assert_allclose(q.marginal(1).probs, probs[:, 1], rtol=1e-12)
    with pytest.raises(ValueError, match="n_rows, L, C"):
        FactorizedCategorical(logits[0])
