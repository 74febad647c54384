"""Variational EM with a fully factored Bernoulli q over missing pixels (seed 001).

Truths: brute-force enumeration of the missing pixels and the component on tiny problems
(the exact log p(x_obs) and the ELBO as a sum over every completion), perturbations of each
coordinate-ascent step's maximizer, and recovery of known templates.
"""

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from helpers import assert_monotone
from latentkit.deep.partial_em import (
    free_energy,
    impute,
    log_prior,
    update_params,
    update_phi,
    update_responsibilities,
    variational_em,
)
from latentkit.exceptions import InvalidInputError, InvalidParameterError


def _tiny(seed=0, n=5, D=4, K=2):
    """(X with NaN, observed, weights, means, phi, resp): random parameters and q."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n, D)).astype(float)
    observed = np.ones((n, D))
    observed[0, [0, 1]] = 0
    observed[1, [3]] = 0
    observed[2, [0, 1, 2]] = 0
    observed[3, :] = 0                   # a row with nothing observed: log p(x_obs) = 0
    X[observed == 0] = np.nan
    weights = rng.dirichlet(np.ones(K))
    means = rng.uniform(0.05, 0.95, size=(K, D))
    phi = np.where(observed > 0, np.nan_to_num(X), rng.uniform(size=(n, D)))
    resp = rng.dirichlet(np.ones(K), size=n)
    return X, observed, weights, means, phi, resp


def _log_joint(x, k, weights, means):
    """log π_k + Σ_d log Bern(x_d; μ_kd) for one full binary row."""
    return np.log(weights[k]) + np.sum(x * np.log(means[k]) + (1 - x) * np.log1p(-means[k]))


def _completions(x, observed_row):
    """Every full binary row agreeing with x on the observed entries."""
    missing = np.flatnonzero(observed_row == 0)
    for bits in itertools.product((0.0, 1.0), repeat=len(missing)):
        full = np.nan_to_num(x).copy()
        full[missing] = bits
        yield full, missing


def _exact_log_p_observed(X, observed, weights, means):
    """log Σ_{x_m} Σ_k p(x_obs, x_m, k) per row, by enumeration : (n,)."""
    return np.array([
        logsumexp([_log_joint(full, k, weights, means)
                   for full, _ in _completions(x, m) for k in range(len(weights))])
        for x, m in zip(X, observed)])


def _brute_force_elbo(X, observed, weights, means, phi, resp):
    """Σ_{x_m, k} q(x_m) r(k) [log p(x_obs, x_m, k) - log q(x_m) - log r(k)] : (n,)."""
    out = []
    for x, m, p, r in zip(X, observed, phi, resp):
        total = 0.0
        for full, missing in _completions(x, m):
            log_q = np.sum(np.log(np.where(full[missing] == 1, p[missing], 1 - p[missing])))
            for k in range(len(weights)):
                mass = np.exp(log_q) * r[k]
                total += mass * (_log_joint(full, k, weights, means) - log_q - np.log(r[k]))
        out.append(total)
    return np.array(out)


def _templates(n_rows=300, n_test=60, side=8, flip=0.1, seed=0):
    """Binary 8×8 'images': one of two random templates with 10% pixels flipped.

    Returns (X with the top half of the last n_test rows NaN, the full images, which
    template each row comes from, templates (2, 64)).
    """
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 2, size=(2, side * side)).astype(float)
    labels = rng.integers(0, 2, size=n_rows)
    flips = rng.uniform(size=(n_rows, side * side)) < flip
    full = np.abs(templates[labels] - flips)
    X = full.copy()
    X[-n_test:, : side * side // 2] = np.nan
    return X, full, labels, templates


# ------------------------------------------------------------------------------ tests
def test_free_energy_equals_the_elbo_summed_over_every_completion():
    X, observed, weights, means, phi, resp = _tiny()
    np.testing.assert_allclose(free_energy(phi, observed, resp, weights, means),
                               _brute_force_elbo(X, observed, weights, means, phi, resp),
                               rtol=1e-12, atol=1e-12)


def test_free_energy_bounds_the_exact_log_likelihood():
    X, observed, weights, means, phi, resp = _tiny()
    exact = _exact_log_p_observed(X, observed, weights, means)
    assert np.all(free_energy(phi, observed, resp, weights, means) <= exact + 1e-12)
    # after coordinate ascent on the tiny data: still a bound, and tight without missing pixels
    fitted = variational_em(X, 2, n_iter=30, tol=0, random_state=0)
    exact = _exact_log_p_observed(X, observed, fitted.weights, fitted.means)
    bound = free_energy(fitted.phi, observed, fitted.responsibilities, fitted.weights,
                        fitted.means)
    assert np.all(bound <= exact + 1e-12)
    complete = observed.all(axis=1)
    assert complete.sum() == 1 and not np.allclose(bound[~complete], exact[~complete])
    # a full row with r the exact posterior: F = log p(x)
    resp = update_responsibilities(fitted.phi, fitted.weights, fitted.means)
    tight = free_energy(fitted.phi, observed, resp, fitted.weights, fitted.means)
    np.testing.assert_allclose(tight[complete], exact[complete], rtol=0, atol=1e-12)
    # nothing observed in row 3: log p(x_obs) = log 1 = 0
    assert exact[3] == pytest.approx(0.0, abs=1e-12)


def test_each_step_maximizes_its_block():
    X, observed, weights, means, phi, resp = _tiny(seed=2)
    resp = update_responsibilities(phi, weights, means)
    phi = update_phi(phi, observed, resp, means)
    best = free_energy(phi, observed, resp, weights, means)
    rng = np.random.default_rng(0)
    missing = observed == 0
    for _ in range(20):
        moved = np.clip(phi + rng.normal(scale=0.05, size=phi.shape), 1e-6, 1 - 1e-6)
        moved = np.where(missing, moved, phi)
        lower = free_energy(moved, observed, resp, weights, means)
        assert np.all(lower[missing.any(axis=1)] < best[missing.any(axis=1)])
    # the r step given this φ: any other distribution over components scores lower
    resp = update_responsibilities(phi, weights, means)
    best = free_energy(phi, observed, resp, weights, means)
    for _ in range(20):
        other = rng.dirichlet(np.ones(resp.shape[1]), size=len(resp))
        assert np.all(free_energy(phi, observed, other, weights, means) < best)
    # the θ step maximizes J = Σ_n F_n + a Σ_kd [log μ + log(1 - μ)]
    a = 0.5

    def penalized(w, mu):
        return free_energy(phi, observed, resp, w, mu).sum() + log_prior(mu, a)

    weights, means = update_params(phi, resp, a)
    best = penalized(weights, means)
    for _ in range(20):
        moved = np.clip(means + rng.normal(scale=0.02, size=means.shape), 1e-3, 1 - 1e-3)
        assert penalized(weights, moved) < best
        assert penalized(rng.dirichlet(50 * weights), means) < best


def test_objective_never_decreases_and_rises():
    X, _, _, _ = _templates(flip=0.25)
    result = variational_em(X, 4, n_iter=40, tol=0, random_state=1)
    assert len(result.history) == 40
    assert_monotone(result.history)
    assert result.history[-1] > result.history[0] + 1.0
    # the recorded value is J / n = (Σ_n F_n + log prior) / n at the returned state
    observed = (~np.isnan(X)).astype(float)
    F = free_energy(result.phi, observed, result.responsibilities, result.weights,
                    result.means).sum()
    assert result.history[-1] == pytest.approx(
        (F + log_prior(result.means, 1e-2)) / len(X), rel=1e-12)


def test_recovers_the_missing_top_half_far_better_than_column_means():
    X, full, labels, templates = _templates()
    result = variational_em(X, 2, n_iter=100, random_state=0)
    assert result.converged
    filled = impute(X, result, binary=True)
    top = np.isnan(X)
    truth_template = templates[labels][top]
    column_means = np.nanmean(X, axis=0)
    baseline = (np.broadcast_to(column_means, X.shape) > 0.5)[top]
    error_vem = np.mean(filled[top] != truth_template)
    error_baseline = np.mean(baseline != truth_template)
    # measured (seeds 0-4 alike): variational EM 0.0 against the templates, 0.092 against
    # the noisy pixels (the flip rate is 0.1); thresholded column means 0.20 against the
    # templates, 0.26 against the pixels
    assert error_vem <= 0.01
    assert error_baseline >= 0.15
    assert np.mean(filled[top] != full[top]) <= 0.13
    assert np.array_equal(filled[~top], X[~top])
    soft = impute(X, result)
    assert np.all((soft[top] > 0) & (soft[top] < 1))


def test_reproducible_and_bad_input_refused():
    X, _, _, _ = _templates(n_rows=40, n_test=10)
    first = variational_em(X, 2, n_iter=5, random_state=3)
    again = variational_em(X, 2, n_iter=5, random_state=3)
    np.testing.assert_array_equal(first.phi, again.phi)
    np.testing.assert_array_equal(first.history, again.history)
    with pytest.raises(InvalidInputError, match="0, 1 or NaN"):
        variational_em(np.full((3, 2), 0.5), 1)
    with pytest.raises(InvalidParameterError, match="smoothing"):
        variational_em(X, 2, smoothing=0)
    with pytest.raises(InvalidParameterError, match="n_components"):
        variational_em(X[:1], 2)
    with pytest.raises(InvalidInputError, match="fitted on"):
        impute(X[:5], first)


def test_fills_the_top_half_of_mnist_test_images_better_than_column_means():
    """The issue's setting on real data: 2,000 complete binarized MNIST training images and
    200 test images whose top half (14 rows) is missing, fitted together (K = 20, 20
    iterations); the thresholded φ on the missing half against thresholded column means of
    the training images.

    Measured, seeds 0-2: error 11.8 / 11.9 / 12.0% against 13.1% for column means (and with
    5,000 training images 11.9 / 11.8 / 11.5%). Asserted: at least 0.5 points better.
    """
    from latentkit.datasets import load_mnist

    try:
        train = load_mnist(split="train", n_samples=2000, binarize=True, random_state=0).data
        test = load_mnist(split="test", n_samples=200, binarize=True, random_state=0).data
    except FileNotFoundError as error:
        pytest.skip(f"MNIST is not available: {error}"[:200])
    train, test = train.astype(float), test.astype(float)
    masked = test.copy()
    masked[:, :14 * 28] = np.nan
    result = variational_em(np.concatenate([train, masked]), 20, n_iter=20, random_state=0)
    filled = impute(masked, result._replace(phi=result.phi[len(train):]), binary=True)
    top = np.isnan(masked)
    error_vem = np.mean(filled[top] != test[top])
    column_means = np.broadcast_to(train.mean(axis=0) > 0.5, test.shape)
    error_baseline = np.mean(column_means[top] != test[top])
    assert error_vem < error_baseline - 0.005, (error_vem, error_baseline)
    np.testing.assert_array_equal(filled[~top], test[~top])
