"""Missing values (NaN) in a Gaussian mixture, marginalized exactly.

Rows are grouped by missingness pattern; each group is marginalized onto its observed
coordinates o, and the M-step uses the conditional moments of the missing ones m:

    E[x_m | x_o, k]   = μ_m + Σ_mo Σ_oo^{-1} (x_o - μ_o)
    Cov[x_m | x_o, k] = Σ_mm - Σ_mo Σ_oo^{-1} Σ_om          (Schur complement)

Conditioning needs the dense Σ_k, so this path works with `full_covariances` whatever the
covariance type, and reduces the second moments back to the type's statistic at the end.
"""

from __future__ import annotations

import numpy as np

from .._linalg import LOG_2PI, cholesky, log_normalize, solve_lower
from .._missing import missingness_patterns
from . import _gaussian_kernels as gk
from ._covariance import CovarianceType


def conditional_gaussians(X_obs, obs, means, covariances):
    """Marginal and conditional moments for rows sharing the observed set `obs`.

    X_obs : (n, d_o) observed values; obs : (D,) bool; means : (K, D); covariances :
    (K, D, D). Returns log N(x_o; μ_o, Σ_oo) : (n, K), E[x_m | x_o, k] : (K, n, d_m) and
    Cov[x_m | x_o, k] : (K, d_m, d_m). With Σ_oo = L L^T, Z = L^{-1}(x_o - μ_o) and
    A = L^{-1} Σ_om: Mahalanobis = ||Z||², E[x_m] = μ_m + A^T Z, Cov = Σ_mm - A^T A.
    """
    mis = ~obs
    n, d_o = X_obs.shape
    K = means.shape[0]
    S_oo = covariances[:, obs][:, :, obs]
    S_om = covariances[:, obs][:, :, mis]
    S_mm = covariances[:, mis][:, :, mis]
    if d_o == 0:  # nothing observed: p(x_o) = 1, the conditional is the prior
        return (np.zeros((n, K)), np.broadcast_to(means[:, None, mis], (K, n, mis.sum())),
                S_mm)
    L = cholesky(S_oo)
    diff = X_obs[None, :, :] - means[:, None, obs]  # (K, n, d_o)
    Z = solve_lower(L, np.swapaxes(diff, 1, 2))  # (K, d_o, n)
    A = solve_lower(L, S_om)  # (K, d_o, d_m)
    log_det = 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)  # Cholesky log-det
    log_prob = -0.5 * (d_o * LOG_2PI + log_det[:, None] + np.sum(Z**2, axis=1))
    cond_mean = means[:, None, mis] + np.swapaxes(Z, 1, 2) @ A  # (K, n, d_m)
    cond_cov = S_mm - np.swapaxes(A, 1, 2) @ A
    return log_prob.T, cond_mean, cond_cov


def pattern_stats(X_obs, obs, resp, cond_mean, cond_cov, covariance: CovarianceType):
    """(nk : (K,), sx : (K, D), sxx per type) from rows sharing observed set `obs`, with
    the missing coordinates replaced by their conditional moments:
    E[x x^T | x_o, k] = x̂ x̂^T + [0 0; 0 Cov_mm].

    X_obs : (n, d_o) shifted; resp : (n, K); cond_mean : (K, n, d_m); cond_cov :
    (K, d_m, d_m).
    """
    K = resp.shape[1]
    D = obs.size
    mis = ~obs
    nk = resp.sum(axis=0)
    x_full = np.empty((K, len(X_obs), D))
    x_full[:, :, obs] = X_obs[None]
    x_full[:, :, mis] = cond_mean
    weighted = resp.T[:, :, None] * x_full  # (K, n, D)
    sx = weighted.sum(axis=1)
    sxx = np.matmul(np.swapaxes(weighted, 1, 2), x_full)  # (K, D, D)
    sxx[:, mis[:, None] & mis[None, :]] += (nk[:, None, None] * cond_cov).reshape(K, -1)
    return nk, sx, covariance.sxx_from_dense(sxx)


def log_prob_missing(params: gk.GaussianParams, X):
    """log N(x_o; μ_k,o, Σ_k,oo) : (n, K) for rows X : (n, D) with NaN, and the per-pattern
    pieces (rows, obs, E[x_m | x_o, k], Cov[x_m | x_o, k]) of the M-step and imputation
    (shifted coordinates; None, None for the complete rows)."""
    out = np.empty((len(X), params.means.shape[0]), dtype=np.float64)
    means = params.means - params.shift
    covs = gk.full_covariances(params)
    parts = []
    for rows, obs in missingness_patterns(~np.isnan(X)):
        if obs.all():
            out[rows] = gk.log_prob_complete(params, X[rows])
            parts.append((rows, obs, None, None))
            continue
        Xo = X[rows][:, obs].astype(np.float64) - params.shift[obs]
        out[rows], cond_mean, cond_cov = conditional_gaussians(Xo, obs, means, covs)
        parts.append((rows, obs, cond_mean, cond_cov))
    return out, parts


def missing_stats(params: gk.GaussianParams, X, log_weights):
    """The E-step of a chunk X : (n, D) with NaN: ((nk, sx, sxx), log p(x_o) : (n,)),
    statistics around params.shift. log_weights : (K,) log π."""
    shift, covariance = params.shift, params.covariance
    log_prob, parts = log_prob_missing(params, X)
    log_resp, log_norm = log_normalize(log_prob + log_weights)
    resp = np.exp(log_resp)
    nk, sx, sxx = 0.0, 0.0, 0.0
    for rows, obs, cond_mean, cond_cov in parts:
        if obs.all():
            part = gk.complete_stats(X[rows], shift, resp[rows].T, covariance)
        else:
            Xo = X[rows][:, obs].astype(np.float64) - shift[obs]
            part = pattern_stats(Xo, obs, resp[rows], cond_mean, cond_cov, covariance)
        nk, sx, sxx = nk + part[0], sx + part[1], sxx + part[2]
    return (nk, sx, sxx), log_norm


def impute(params: gk.GaussianParams, X):
    """X : (n, D) with each NaN replaced by E[x_m | x_o] = Σ_k p(k | x_o) E[x_m | x_o, k]."""
    if not np.isnan(X).any():
        return X.copy()
    log_prob, parts = log_prob_missing(params, X)
    resp = np.exp(log_normalize(log_prob + np.log(params.weights))[0])
    out = X.copy()
    for rows, obs, cond_mean, _ in parts:
        if not obs.all():
            filled = np.einsum("nk,knm->nm", resp[rows], cond_mean) + params.shift[~obs]
            out[np.ix_(rows, np.flatnonzero(~obs))] = filled
    return out
