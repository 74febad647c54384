"""Newton's method for Dirichlet MLEs against scipy.optimize and against the truth of
simulated Dirichlet draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import gammaln, psi

from latentkit.exceptions import InvalidInputError, InvalidParameterError
from latentkit.topics._dirichlet import newton_dirichlet, newton_symmetric


def _log_likelihood(alpha, s, n):
    """The Dirichlet log-likelihood of n points with Σ_i log x_i = s, written out here."""
    return n * (gammaln(alpha.sum()) - gammaln(alpha).sum()) + np.dot(alpha - 1, s)


def _scipy_fit(s, n, alpha0):
    """scipy.optimize.minimize (L-BFGS-B on log α, analytic gradient) of the same objective;
    BFGS stops on precision loss at ~1e-8 relative, L-BFGS-B with ftol=0 reaches ~1e-9."""
    def negative(log_alpha):
        return -_log_likelihood(np.exp(log_alpha), s, n) / n

    def gradient(log_alpha):
        alpha = np.exp(log_alpha)
        return -alpha * (n * (psi(alpha.sum()) - psi(alpha)) + s) / n

    result = minimize(negative, np.log(alpha0), jac=gradient, method="L-BFGS-B",
                      options={"ftol": 0.0, "gtol": 1e-14, "maxcor": 30, "maxiter": 10_000})
    return np.exp(result.x)


def _draws(alpha, n, seed):
    return np.log(np.random.default_rng(seed).dirichlet(alpha, size=n)).sum(axis=0)


@pytest.mark.parametrize("alpha0", [np.ones(4), np.array([0.01, 5.0, 0.2, 30.0])])
def test_newton_matches_scipy_minimize(alpha0):
    truth = np.array([0.4, 1.3, 2.5, 0.8])
    s, n = _draws(truth, 300, seed=1), 300.0
    fitted = newton_dirichlet(s, n, alpha0)
    reference = _scipy_fit(s, n, np.ones(4))
    np.testing.assert_allclose(fitted, reference, rtol=1e-8)
    # first-order condition: n (ψ(Σα) - ψ(α_k)) + s_k = 0
    np.testing.assert_allclose(n * (psi(fitted.sum()) - psi(fitted)) + s, 0, atol=1e-8 * n)


def test_newton_recovers_alpha_from_20000_draws():
    """The MLE's standard error here is about 0.7% of each α_k (from the inverse Fisher
    information (-H)⁻¹), so 5% relative is about 7 standard errors."""
    truth = np.array([0.1, 0.5, 2.0, 0.3, 1.0])
    fitted = newton_dirichlet(_draws(truth, 20_000, seed=2), 20_000.0, np.ones(5))
    np.testing.assert_allclose(fitted, truth, rtol=0.05)


def test_newton_never_lowers_the_objective_from_a_poor_start():
    truth = np.array([0.2, 0.3, 0.15])
    s, n = _draws(truth, 2_000, seed=3), 2_000.0
    start = np.array([50.0, 0.001, 20.0])
    fitted = newton_dirichlet(s, n, start)
    assert _log_likelihood(fitted, s, n) >= _log_likelihood(start, s, n)
    np.testing.assert_allclose(fitted, _scipy_fit(s, n, np.ones(3)), rtol=1e-8)


def test_symmetric_matches_scipy_and_recovers_the_truth():
    K, n, a_true = 50, 400, 0.2
    s_total = _draws(np.full(K, a_true), n, seed=4).sum()

    def negative(log_a):
        a = np.exp(log_a)
        return -(n * (gammaln(K * a) - K * gammaln(a)) + (a - 1) * s_total) / n

    reference = np.exp(minimize_scalar(negative, bracket=(-5, 2),
                                       options={"xtol": 1e-14}).x)
    for a0 in (1.0, 0.001, 30.0):
        fitted = newton_symmetric(s_total, n, K, a0)
        assert abs(fitted - reference) < 1e-8 * reference
    # the standard error of a is 0.77% here (Fisher information n K (ψ'(a) - K ψ'(K a)));
    # 4% is over 5 of them
    assert abs(newton_symmetric(s_total, n, K, 1.0) - a_true) < 0.04 * a_true


def test_non_finite_or_invalid_input_raises():
    with pytest.raises(InvalidInputError, match="log_mean_sum"):
        newton_dirichlet(np.array([-1.0, np.nan]), 10.0, np.ones(2))
    with pytest.raises(InvalidInputError, match="n must be finite"):
        newton_dirichlet(np.array([-1.0, -2.0]), np.inf, np.ones(2))
    with pytest.raises(InvalidInputError, match="alpha0"):
        newton_dirichlet(np.array([-1.0, -2.0]), 10.0, np.array([1.0, np.inf]))
    with pytest.raises(InvalidParameterError, match="alpha0 must be positive"):
        newton_dirichlet(np.array([-1.0, -2.0]), 10.0, np.array([1.0, 0.0]))
    with pytest.raises(InvalidInputError, match="s_total"):
        newton_symmetric(-np.inf, 10.0, 5, 1.0)
    with pytest.raises(InvalidParameterError, match="a0"):
        newton_symmetric(-30.0, 10.0, 5, -1.0)
