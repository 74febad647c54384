"""FactorAnalysis's EM on missing data at the edge of float64 (issue 12): a column whose
spread is a few ulps of its value (1.3e30 ± 4e14) beside columns near 1e-8.

FA's EM runs on standardized features. It divided x by the column's spread s without
centring, which rounded the standardized column to multiples of 2 where its spread is 1 (the
E-step's log-likelihood was not the data's), and it rounded the mean twice (in standardized
units, then again when scaling back) after solving W for it, so W no longer maximized Q at
the mean the next E-step used: the log-likelihood fell by 8 % at a step. The checks are
independent of our kernels: scipy's multivariate normal on each row's observed coordinates,
and EM's monotonicity.
"""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import latentkit
from helpers import assert_monotone
from latentkit.em.contract import ConvergenceWarning
from latentkit.linear import _fa_svd
from latentkit.linear import _lg_em as lg

NAN = np.nan


def _ulp_column(c, ulps):
    """c + k ulp(c) for each k in ulps (exact in float64; NaN stays NaN)."""
    return c + np.asarray(ulps, dtype=np.float64) * np.spacing(c)


#: the probe's case (/tmp/ppca12/probe.py adapted to FA, seed 1, trial 273): EM fell
#: -2.5595 -> -2.7638 at its first step
ULP_SPREAD = np.column_stack([
    [-1.8756179466664483e-07, NAN, -1.2795895573171967e-07, -1.3259494151523471e-08,
     -1.4943872932022101e-07, -8.9804115959443915e-08, -6.1617197096993162e-08],
    [NAN, -1.5251711582698668e-08, 2.2563124428123828e-09, NAN, NAN,
     -5.1015464314742729e-09, -2.0124533331308414e-08],
    [1.3154952909337208e-05, 1.2724158916193231e-05, 5.3003124462363200e-06, NAN,
     6.0333974672786348e-06, -4.5935545011168757e-06, 1.4102846589417762e-05],
    _ulp_column(1.2762237549705250e+30, [0, 3, 0, 2, 1, 2, 3]),
])

#: probe trial 53: a column at 1.2e41 whose observed values are 1 ulp apart (the
#: standardized column was rounded to multiples of 2 where its spread is 1)
ULP_SPREAD_41 = np.column_stack([
    [NAN, 1.2333755223109806e-04, 1.5947817310492751e-05, 5.3620856332497295e-05,
     -2.8628582721071423e-05, 1.4612597636316110e-04, 6.2690400079443463e-05,
     -5.0381661599584061e-05, -7.3234860956420398e-05],
    [6.6070083618103723e+01, 2.1309181472039501e+01, 9.1661937652240269e+01, NAN,
     -6.5915933646610512e+01, -1.5679482657473841e+02, -1.0062105414271996e+02,
     2.2693205006581948e+02, NAN],
    _ulp_column(1.2007623652999492e+41, [-1, 0, 0, 0, 0, NAN, NAN, NAN, -1]),
])

CASES = pytest.mark.parametrize("X", [ULP_SPREAD, ULP_SPREAD_41], ids=["1e30", "1e41"])


def _fit(X, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return latentkit.FactorAnalysis(1, random_state=0, tol=0, **options).fit(X)


def _scipy_log_prob(mean, C, X):
    """log N(x_o; μ_o, C_oo) : (n,) by scipy on each row's observed coordinates o. The
    coordinates are standardized first (u = (x - μ) / s, s the columns' observed standard
    deviations; log p(x_o) = log p(u_o) - Σ_o log s), so that scipy's eigendecomposition
    sees a well-conditioned covariance (the raw one spans 1e-16 to 1e29)."""
    s = np.nanstd(X, axis=0)
    out = np.empty(len(X))
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        u = (x[o] - mean[o]) / s[o]
        C_unit = C[np.ix_(o, o)] / np.outer(s[o], s[o])
        out[i] = multivariate_normal(np.zeros(o.sum()), C_unit).logpdf(u) - np.log(s[o]).sum()
    return out


@CASES
@pytest.mark.parametrize("solver", ["auto", "em"])
def test_em_is_monotone_on_ulp_spread_columns_with_missing_entries(X, solver):
    model = _fit(X, max_iter=12, solver=solver)
    assert_monotone(model.history_)
    assert model.score(X) >= max(model.history_) - 1e-12 * abs(max(model.history_))


@CASES
def test_fitted_score_equals_scipy_on_observed_coordinates(X):
    model = _fit(X, max_iter=12)
    truth = _scipy_log_prob(model.mean_, model.get_covariance(), X)
    np.testing.assert_allclose(model.score_samples(X), truth, rtol=1e-9)


@CASES
def test_e_step_objective_is_the_data_log_likelihood(X):
    """What EM records (the E-step's log-likelihood, computed in standardized units) is the
    log-likelihood of the data X, not of a rounded copy: at the fitted parameters it equals
    scipy's sum over the rows."""
    model = _fit(X, max_iter=4)
    params = lg.LGParams(model.mean_, model.components_.T, model.noise_variance_)
    config = _fa_svd.FAConfig(1)
    _, total = _fa_svd.scaled_e_step(params, model.em_state_, config, X)
    truth = _scipy_log_prob(model.mean_, model.get_covariance(), X).sum()
    assert total == pytest.approx(truth, rel=1e-9)


def test_m_step_keeps_the_mean_it_solved_w_for():
    """After an M-step, W maximizes Q at the mean it stores, not at the unrounded one: in
    the standardized statistics, the gradient of Σ_d n ψ_d(W, μ') (-σ² Q up to a constant)
    in W, 2 (W szz_zz + μ' szz_1z - sxz_z), is 0 at μ' = (μ - shift) / s, the offset the
    next E-step sees."""
    X = ULP_SPREAD
    model = _fit(X, max_iter=3)
    state = model.em_state_
    params = lg.LGParams(model.mean_, model.components_.T, model.noise_variance_)
    config = _fa_svd.FAConfig(1)
    stats, _ = _fa_svd.scaled_e_step(params, state, config, X)
    new, _, _ = _fa_svd.scaled_m_step(stats, params, state, config)
    s = _fa_svd.column_scale(state)
    offset = (new.mean - state.shift) / s
    W_unit = new.W / s[:, None]
    M = W_unit.shape[1]
    gradient = W_unit @ stats.szz[:M, :M] + np.outer(offset, stats.szz[M, :M]) \
        - stats.sxz[:, :M]
    np.testing.assert_allclose(gradient, 0.0, atol=1e-10 * np.abs(stats.sxz).max())
