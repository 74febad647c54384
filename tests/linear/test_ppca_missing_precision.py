"""PPCA's EM at the edge of float64 (issue 12): columns whose spread is a few ulps of their
value, or none (constant columns next to ones 1e57 smaller), with missing entries.

Two losses of precision made EM's exact log-likelihood fall: the column means were off by an
ulp for constant columns (`column_mean`), and the M-step applied a W solved jointly with a
mean offset that float64 then rounded away (`m_step` re-solves W at the rounded mean). The
checks are independent of our kernels: exact values (a constant's mean is the constant),
the M-step's algebra written out, and scipy's multivariate normal on observed coordinates.
"""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import latentkit
from helpers import assert_monotone
from latentkit.em.contract import ConvergenceWarning
from latentkit.linear import _lg_em as lg

NAN = np.nan


def _fit(X, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return latentkit.PPCA(1, random_state=0, tol=0, **options).fit(X)


def _scipy_mean_log_likelihood(model, X) -> float:
    """Mean over rows of log N(x_o; μ_o, C_oo), C = W W^T + σ² I, by scipy on each row's
    observed coordinates."""
    C = model.get_covariance()
    total = 0.0
    for x in X:
        o = ~np.isnan(x)
        total += multivariate_normal(model.mean_[o], C[np.ix_(o, o)]).logpdf(x[o])
    return total / len(X)


#: the fuzz case of issue 12: a column near 1e-8 beside a constant one at 1.37e49
ISSUE_DATA = np.array([[-2.279395502545297e-09, 1.3709107689152754e+49],
                       [NAN, 1.3709107689152754e+49],
                       [3.5354608710819585e-09, 1.3709107689152754e+49],
                       [2.7608218806292837e-07, 1.3709107689152754e+49],
                       [6.5676808696749116e-09, NAN],
                       [5.163704277098407e-08, 1.3709107689152754e+49],
                       [-1.6218808319515486e-09, 1.3709107689152754e+49]])
ISSUE_DATA.flags.writeable = False


def _issue_data():
    return ISSUE_DATA.copy()


def _ulp_spread_data():
    """A column at 1.3e19 whose values differ by 0, 1 or 2 ulps (2048) beside a constant
    column and one of spread 1e5, two entries missing (a fuzz-style case: EM's
    log-likelihood fell by 1e-3 relative per step before the fix)."""
    c = 1.3120601921930019e+19
    ulps = np.array([0.0, 0.0, 0.0, 2.0, 1.0, NAN])
    third = [240986.0976401, -3298.02393192, -72563.04221537, 42286.93230846,
             13336.78433845, NAN]
    return np.column_stack([c + ulps * np.spacing(c), np.full(6, -82669.29995215118), third])


# -- the centre ---------------------------------------------------------------------------


@pytest.mark.parametrize("skip_nan", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_mean_of_a_constant_column_is_the_constant(skip_nan, dtype):
    c = np.array([1.3709107689152754e+49 if dtype == np.float64 else 3.3e37,
                  0.1, -7.3e-300 if dtype == np.float64 else -7.3e-30], dtype=dtype)
    X = np.tile(c, (7, 1))
    if skip_nan:
        X[2, 0] = X[4, 1] = NAN
    mean = lg.column_mean(X, skip_nan=skip_nan)
    assert mean.dtype == np.float64
    np.testing.assert_array_equal(mean.astype(dtype), c)
    if dtype == np.float64:
        np.testing.assert_array_equal(mean, c)


def test_column_mean_is_accurate_on_ordinary_data():
    """Within 2 ulps of the exact mean (rational arithmetic) plus eps times the spread."""
    from fractions import Fraction

    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 4)) * [1.0, 1e-8, 1e8, 3.0] + [0.0, 1.0, -5e9, 1e6]
    X[rng.random(X.shape) < 0.2] = NAN
    mean = lg.column_mean(X, skip_nan=True)
    for d in range(4):
        values = X[~np.isnan(X[:, d]), d]
        exact = float(sum(Fraction(v) for v in values) / len(values))
        allowed = 2 * np.spacing(abs(exact)) + np.finfo(float).eps * values.std()
        assert abs(mean[d] - exact) <= allowed


def test_fit_centres_a_constant_column_at_its_value():
    X = _issue_data()
    model = _fit(X, max_iter=3)
    assert model.em_state_.shift[1] == X[0, 1]
    assert model.mean_[1] == X[0, 1]


# -- the M-step ---------------------------------------------------------------------------


def _random_stats(rng, D=4, M=2, n=9.0):
    """LGStats of a random positive-definite joint second moment of (x, z̃): any such
    statistics are those of some data, which is all the M-step's algebra needs."""
    A = rng.standard_normal((D + M + 1, 40))
    S = A @ A.T
    szz = S[D:, D:]
    szz[M, :] *= 0.0
    szz[:, M] *= 0.0
    szz[M, M] = n
    szz[:M, M] = szz[M, :M] = rng.standard_normal(M)
    return lg.LGStats(n, szz, S[:D, D:], np.diag(S[:D, :D]).copy())


def test_residual_variances_is_the_expected_squared_residual_for_any_loadings():
    """n ψ_d = Σ E[(x_d - b_d^T z̃)²] = sxx_d - 2 b_d·sxz_d + b_d szz b_d^T for every B, not
    only the normal equations' solution (there it is the textbook sxx_d - b_d·sxz_d)."""
    rng = np.random.default_rng(1)
    stats = _random_stats(rng)
    B = rng.standard_normal(stats.sxz.shape)
    direct = (stats.sxx - 2 * np.einsum("dj,dj->d", B, stats.sxz)
              + np.einsum("di,ij,dj->d", B, stats.szz, B)) / stats.n
    np.testing.assert_allclose(lg.residual_variances(stats, B), direct, rtol=1e-12)
    solution = np.linalg.solve(stats.szz, stats.sxz.T).T
    np.testing.assert_allclose(
        lg.residual_variances(stats, solution),
        (stats.sxx - np.einsum("dj,dj->d", solution, stats.sxz)) / stats.n, rtol=1e-10)


def test_loadings_given_offset_maximize_q_at_that_offset():
    """W(μ') minimizes Σ_d n ψ_d(W, μ') (-σ² times Q, up to a constant) over W: its
    gradient 2 (W szz_zz + μ' szz_1z - sxz_z) is zero, and at the joint optimum μ'* it is
    the joint solution."""
    rng = np.random.default_rng(2)
    stats = _random_stats(rng)
    M = stats.szz.shape[0] - 1
    offset = rng.standard_normal(len(stats.sxx))
    B = lg.loadings_given_offset(stats, offset)
    np.testing.assert_array_equal(B[:, M], offset)
    gradient = B[:, :M] @ stats.szz[:M, :M] + np.outer(offset, stats.szz[M, :M]) \
        - stats.sxz[:, :M]
    np.testing.assert_allclose(gradient, 0.0, atol=1e-10 * np.abs(stats.sxz).max())
    joint = np.linalg.solve(stats.szz, stats.sxz.T).T
    np.testing.assert_allclose(lg.loadings_given_offset(stats, joint[:, M]), joint,
                               rtol=1e-10)


# -- EM on the data -----------------------------------------------------------------------


@pytest.mark.parametrize("data", [_issue_data, _ulp_spread_data])
def test_em_with_missing_entries_at_the_edge_of_float64_is_monotone(data):
    X = data()
    model = _fit(X, max_iter=30, solver="em")
    assert_monotone(model.history_)


@pytest.mark.parametrize("data", [_issue_data, _ulp_spread_data])
def test_fitted_log_likelihood_matches_scipy(data):
    X = data()
    model = _fit(X, max_iter=30, solver="em")
    independent = _scipy_mean_log_likelihood(model, X)
    assert model.score(X) == pytest.approx(independent, rel=1e-10, abs=1e-10)
    # history_ holds the objective at the parameters before each M-step; the last M-step
    # can only have raised it
    assert independent >= model.history_[-1] - 1e-9 * abs(independent)


def _dense_gradient(model, X):
    """The gradient of Σ_n log N(x_o; μ_o, C_oo), C = W W^T + σ² I, in dense algebra: with
    r = x_o - μ_o and A = C_oo^{-1} r r^T C_oo^{-1} - C_oo^{-1} (scattered to D x D),
    ∂/∂μ = Σ C_oo^{-1} r, ∂/∂W = Σ A W, ∂/∂σ² = ½ Σ tr A. Returns (gμ, gW, gσ²)."""
    C, W = model.get_covariance(), model.components_.T
    g_mu, A_sum = np.zeros(len(C)), np.zeros_like(C)
    for x in X:
        o = ~np.isnan(x)
        Ci = np.linalg.inv(C[np.ix_(o, o)])
        v = Ci @ (x[o] - model.mean_[o])
        g_mu[o] += v
        A_sum[np.ix_(o, o)] += np.outer(v, v) - Ci
    return g_mu, A_sum @ W, 0.5 * np.trace(A_sum)


def test_ordinary_data_with_missing_entries_fits_monotone_to_scipy_likelihood():
    """Ordinary data (scale 2, offset 10, 20% missing): EM is monotone to round-off, its
    log-likelihood is scipy's, and it stops at a stationary point of scipy's likelihood
    (the gradient, in dense algebra, is ~0 relative to its terms)."""
    rng = np.random.default_rng(3)
    W = rng.standard_normal((6, 2)) * 2
    X = rng.standard_normal((300, 2)) @ W.T + 0.5 * rng.standard_normal((300, 6)) + 10.0
    X[rng.random(X.shape) < 0.2] = NAN
    model = _fit(X, max_iter=3000, solver="em")
    assert_monotone(model.history_)
    assert model.score(X) == pytest.approx(_scipy_mean_log_likelihood(model, X), rel=1e-12)
    g_mu, g_W, g_sigma2 = _dense_gradient(model, X)
    assert np.abs(g_mu).max() < 1e-6 * len(X)
    assert np.abs(g_W).max() < 1e-6 * len(X)
    assert abs(g_sigma2) < 1e-6 * len(X)
