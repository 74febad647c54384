"""The Gaussian mixture's EM family: pure init / E-step / M-step over a config record, a
state record (the centring shift) and the parameter record.

    init(X_sample, rng, config, restart)    -> (params, state)
    e_step(params, state, config, X_chunk)  -> (stats, log-likelihood summed over the chunk)
    m_step(stats, params, state, config)    -> (params, state, StepInfo)

The objective is the exact log-likelihood (missing entries marginalized). An M-step that
re-seeds empty or collapsed components says so in its StepInfo; the engine warns. With
reg_covar > 0 the M-step maximizes a penalized Q (see `regularization_slack`), so it may
lower the log-likelihood by a bounded amount: its StepInfo's slack, which the engine's
monotonicity guard allows.
"""

from __future__ import annotations

import numpy as np

from .._linalg import responsibilities_
from ..em import EXACT, EMFamily, StepInfo
from . import _gaussian_kernels as gk
from ._gaussian_missing import log_prob_missing, missing_stats
from ._init import fill_missing_with_means, initial_responsibilities


def init(X, rng, config: gk.GaussianConfig, restart: int = 0):
    """Initial (params, state): user-given parameters where set, else an M-step from the
    initial responsibilities of `init_params` (missing entries filled by column means).

    X : (n, D) a sample of the data; the state's shift is its column mean. `restart` is
    not used: successive initializations differ through rng.
    """
    X = fill_missing_with_means(np.asarray(X, dtype=np.float64))
    shift = X.mean(axis=0)
    covariance = config.covariance
    user = (config.weights_init, config.means_init, config.precisions_cholesky_init)
    if any(value is None for value in user):
        resp = initial_responsibilities(X, config.n_components, config.init_params, rng)
        nk, sx, sxx = gk.complete_stats(X, shift, resp.T, covariance)
        stats = gk.GaussianMixtureStats(float(len(X)), nk, sx, sxx)
        # a component starved at this first M-step is re-seeded silently: it is part of
        # building the initial guess, not a step of EM
        data_params = gk.estimate(stats, shift, covariance, config.reg_covar)[0]
    weights = data_params.weights if config.weights_init is None else config.weights_init
    means = data_params.means if config.means_init is None else config.means_init
    P = config.precisions_cholesky_init
    if P is None:
        params = gk.make_params(weights, means, data_params.covariances, covariance, shift)
    else:
        params = gk.assemble(weights, means, covariance.covariances_from_factor(P), P,
                             covariance, shift)
    return params, gk.GaussianMixtureState(shift)


def e_step(params: gk.GaussianParams, state: gk.GaussianMixtureState,
           config: gk.GaussianConfig, X):
    """(statistics around state.shift, Σ_n log p(x_n)) of one chunk X : (n, D), NaN =
    missing."""
    if params.shift is not state.shift and not np.array_equal(params.shift, state.shift):
        params = gk.assemble(params.weights, params.means, params.covariances,
                             params.precisions_cholesky, params.covariance, state.shift)
    log_weights = np.log(params.weights)
    X = X.astype(gk.work_dtype(params, X.dtype), copy=False)
    # the fast path, component-major (K, n); a NaN in a row propagates through the GEMM
    # into that row's log-normalizer, so a chunk with missing values is detected from
    # the (n,) result instead of scanning all n x D entries, and redone exactly below
    log_joint, T, Xs = gk.log_joint_complete(X, params, log_weights)
    resp, log_norm = responsibilities_(log_joint, axis=0)
    complete = not np.isnan(log_norm).any()
    if complete:
        nk, sx, sxx = gk.complete_stats(X, state.shift, resp, params.covariance, T, Xs)
        # independent of how the BLAS treats NaN: a NaN entry in a row whose
        # responsibilities sum to 1 makes Σ r x non-finite
        complete = bool(np.isfinite(sx).all())
    if not complete:
        (nk, sx, sxx), log_norm = missing_stats(params, X, log_weights)
    stats = gk.GaussianMixtureStats(float(len(X)), nk, sx, sxx)
    return stats, float(log_norm.sum(dtype=np.float64))


def m_step(stats: gk.GaussianMixtureStats, params: gk.GaussianParams,
           state: gk.GaussianMixtureState, config: gk.GaussianConfig):
    """(new params, the unchanged state, StepInfo naming any re-seeded components and the
    slack of the regularized M-step: how far reg_covar may lower the log-likelihood)."""
    new, reseeded, message = gk.estimate(stats, state.shift, config.covariance,
                                         config.reg_covar)
    slack = gk.regularization_slack(stats.nk, params, new, config.reg_covar)
    return new, state, StepInfo(reseeded, message, slack)


def log_prob(params: gk.GaussianParams, X) -> np.ndarray:
    """log N(x_n; μ_k, Σ_k) : (n, K) for rows X : (n, D), missing entries marginalized."""
    if not np.isnan(X).any():
        return gk.log_prob_complete(params, X)
    return log_prob_missing(params, X)[0]


GAUSSIAN_MIXTURE = EMFamily(
    init=init, e_step=e_step, m_step=m_step, objective=EXACT,
    remedy="increase reg_covar, use fewer components, or fit in float64")
