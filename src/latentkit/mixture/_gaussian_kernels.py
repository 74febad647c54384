"""Pure kernels of the Gaussian mixture: densities, sufficient statistics, M-step.

    p(x) = Σ_k π_k N(x; μ_k, Σ_k)

Covariance types (shapes of `covariances` and `precisions_cholesky`):
    full      (K, D, D)   one matrix per component
    tied      (D, D)      one matrix shared by all components
    diag      (K, D)      per-component variances
    spherical (K,)        per-component single variance

Complete rows take the fast path: all K components in one GEMM, X @ [P_1 ... P_K], with P_k
the precision Cholesky factor (Σ_k^{-1} = P_k P_k^T). Rows with missing entries (NaN) are
grouped by missingness pattern; each group is marginalized exactly onto its observed
coordinates o, and the M-step uses the conditional moments of the missing ones m:

    E[x_m | x_o, k]   = μ_m + Σ_mo Σ_oo^{-1} (x_o - μ_o)
    Cov[x_m | x_o, k] = Σ_mm - Σ_mo Σ_oo^{-1} Σ_om          (Schur complement)

All statistics are accumulated in coordinates shifted by a fixed vector (a data mean), which
keeps Σ r x x^T - N μ μ^T free of cancellation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import get_blas_funcs

from .._linalg import LOG_2PI, cholesky, precision_cholesky, solve_lower
from .._missing import missingness_patterns  # noqa: F401  (re-exported for the mixtures)
from ..em import ReseedWarning, SufficientStats
from . import _gaussian_expfam as ef

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

def min_support(n_features: int, covariance_type: str) -> float:
    """Samples a component needs for a nonsingular covariance estimate: D + 1 (full),
    2 (diag, spherical); a tied covariance is pooled, so 1 (non-empty)."""
    return {"full": n_features + 1.0, "diag": 2.0, "spherical": 2.0, "tied": 1.0}[
        covariance_type]


class GaussianParams(NamedTuple):
    """θ of a Gaussian mixture, in the coordinates the data are given in."""

    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, D)
    covariances: np.ndarray  # see module docstring for the shape per covariance type
    precisions_cholesky: np.ndarray  # same shape as covariances
    covariance_type: str
    # (D,) the centre statistics are accumulated around: fixed for the life of a fit (all
    # statistics that are summed or blended must share it), set from the data at init.
    shift: np.ndarray
    # derived once per M-step for the complete-data E-step:
    max_const: float = 0.0  # max_k μ_k^T Λ_k μ_k (shifted): how far the farthest mean is
    natural: ef.NaturalForm | None = None  # natural weights, on the expansion path
    stacked: tuple | None = None  # ([P_1 ... P_K], [μ_1 P_1 ... μ_K P_K]), direct full path


@dataclass(frozen=True)
class GaussianStats(SufficientStats):
    """Σ over rows of r_nk, r_nk x_n and r_nk x_n x_n^T (shifted coordinates).

    sxx : full (K, D, D); tied (D, D); diag (K, D) (diagonals); spherical (K,) (Σ_d of the
    diagonal).
    """

    additive = ("n", "nk", "sx", "sxx")
    n: float
    nk: np.ndarray  # (K,)
    sx: np.ndarray  # (K, D)
    sxx: np.ndarray
    shift: np.ndarray  # (D,) carried, not added


# -- densities ----------------------------------------------------------------------------


def log_joint_complete(X, params, log_weights):
    """log π_k + log N(x_n; μ_k, Σ_k) for complete rows X : (n, D), component-major : (K, n),
    computed in X's dtype, with what `complete_stats` reuses: (log_joint, T, Xs).

    On the expansion path (see _gaussian_expfam) T : (F, n) holds the sufficient statistics
    and Xs is None; on the direct path (`uses_expansion` false, or the expansion would
    cancel: `expansion_is_accurate` false) the Mahalanobis terms are direct products and Xs
    : (n, D) is the shifted data (None when T already holds it).
    log_weights : (K,) log π (zeros for the bare densities).
    """
    K, D = params.means.shape
    ct, shift = params.covariance_type, params.shift
    T = Xs = None
    if ef.uses_expansion(D, K, ct):
        T = ef.sufficient_statistics_t(X, shift, ct)
        if ef.expansion_is_accurate(params.max_const, X.dtype):
            return ef.log_joint_expanded(T, params.natural, log_weights), T, None
        rows = ef.data_block(T, D).T
    else:
        Xs = rows = X - shift.astype(X.dtype)
    log_prob = log_gaussian_prob(rows, params.means - shift, params.precisions_cholesky, ct,
                                 params.stacked)
    log_joint = np.ascontiguousarray(log_prob.T)
    log_joint += log_weights[:, None].astype(log_joint.dtype)
    return log_joint, T, Xs


def stacked_factors(means, precisions_cholesky):
    """W = [P_1 ... P_K] : (D, K·D) and b = [μ_1 P_1 ... μ_K P_K] : (K·D,), so that the
    direct Mahalanobis terms of all components come from one product, X W - b."""
    K, D = means.shape
    W = np.ascontiguousarray(precisions_cholesky.transpose(1, 0, 2).reshape(D, K * D))
    b = np.einsum("kd,kde->ke", means, precisions_cholesky).reshape(K * D)
    return W, b


def log_gaussian_prob(X, means, precisions_cholesky, covariance_type,
                      stacked=None) -> np.ndarray:
    """log N(x_n; μ_k, Σ_k) for complete rows : (n, K), by the direct products
    ||(x - μ_k)^T P_k||² (the accurate fallback of `log_joint_complete`).

    X : (n, D); means : (K, D); precisions_cholesky : per covariance type. Computed in X's
    dtype.
    """
    n, D = X.shape
    K = means.shape[0]
    P = precisions_cholesky.astype(X.dtype, copy=False)
    mu = means.astype(X.dtype, copy=False)
    if covariance_type == "full":
        # all components at once: Y = X [P_1 ... P_K] - [μ_1 P_1 ... μ_K P_K]
        W, b = stacked_factors(mu, P) if stacked is None else stacked
        Y = X @ W.astype(X.dtype, copy=False)
        Y -= b.astype(X.dtype, copy=False)
        Y = Y.reshape(n, K, D)
        maha = np.einsum("nkd,nkd->nk", Y, Y)
        log_det = np.log(np.diagonal(P, axis1=1, axis2=2)).sum(axis=1)
    elif covariance_type == "tied":
        Y = (X @ P)[:, None, :] - (mu @ P)[None]
        maha = np.einsum("nkd,nkd->nk", Y, Y)
        log_det = np.log(np.diag(P)).sum()
    elif covariance_type == "diag":
        prec = P**2  # (K, D) precisions
        maha = (X**2) @ prec.T - 2 * (X @ (mu * prec).T) + np.sum(mu**2 * prec, axis=1)
        log_det = np.log(P).sum(axis=1)
    else:  # spherical
        prec = P**2  # (K,)
        maha = (np.einsum("nd,nd->n", X, X)[:, None] * prec - 2 * (X @ mu.T) * prec
                + np.sum(mu**2, axis=1) * prec)
        log_det = D * np.log(P)
    return -0.5 * (D * LOG_2PI + maha) + log_det


def full_covariances(params: GaussianParams) -> np.ndarray:
    """Σ_k as dense matrices (K, D, D), whatever the covariance type."""
    K, D = params.means.shape
    cov = params.covariances
    if params.covariance_type == "full":
        return cov
    if params.covariance_type == "tied":
        return np.broadcast_to(cov, (K, D, D)).copy()
    if params.covariance_type == "diag":
        return cov[:, :, None] * np.eye(D)
    return cov[:, None, None] * np.eye(D)


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
    log_det = 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    log_prob = -0.5 * (d_o * LOG_2PI + log_det[:, None] + np.sum(Z**2, axis=1))
    cond_mean = means[:, None, mis] + np.swapaxes(Z, 1, 2) @ A  # (K, n, d_m)
    cond_cov = S_mm - np.swapaxes(A, 1, 2) @ A
    return log_prob.T, cond_mean, cond_cov


# -- sufficient statistics ----------------------------------------------------------------


def complete_stats(X, shift, resp, covariance_type, T=None, Xs=None):
    """(nk, sx, sxx) from complete rows X : (n, D) and component-major resp : (K, n), in
    coordinates shifted by `shift`. `T` or `Xs` reuse what `log_joint_complete` built;
    the path (one GEMM over T, or per-component products) follows `uses_expansion`.
    Shapes as in GaussianStats."""
    K, D = resp.shape[0], X.shape[1]
    if T is None and Xs is None:
        if ef.uses_expansion(D, K, covariance_type):
            T = ef.sufficient_statistics_t(X, shift, covariance_type)
        else:
            Xs = X - shift.astype(X.dtype)
    if T is not None:
        return ef.statistics(T, resp, covariance_type, D)
    return direct_stats(Xs, resp, covariance_type)


def direct_stats(Xs, resp, covariance_type):
    """(nk, sx, sxx) by per-component products, Σ_n r_nk x x^T = (x ⊙ r_k)^T x: the path
    for full and tied covariances in many dimensions. Xs : (n, D) shifted; resp : (K, n)."""
    resp = resp.astype(Xs.dtype, copy=False)
    nk = resp.sum(axis=1, dtype=np.float64)
    sx = (resp @ Xs).astype(np.float64, copy=False)
    if covariance_type == "full":
        # symmetric rank-n updates (BLAS syrk, half a GEMM's flops): (√r ⊙ x)^T (√r ⊙ x)
        syrk = get_blas_funcs("syrk", (Xs,))
        sxx = np.empty((len(resp), Xs.shape[1], Xs.shape[1]))
        for k, r in enumerate(resp):
            upper = syrk(1.0, np.sqrt(r)[:, None] * Xs, trans=1)  # upper triangle of A^T A
            sxx[k] = np.triu(upper) + np.triu(upper, 1).T
    elif covariance_type == "tied":  # Σ_k r_nk = 1 for every row
        sxx = Xs.T @ Xs
    elif covariance_type == "diag":
        sxx = resp @ (Xs * Xs)
    else:
        sxx = resp @ np.einsum("nd,nd->n", Xs, Xs)
    return nk, sx, sxx.astype(np.float64, copy=False)


def pattern_stats(X_obs, obs, resp, cond_mean, cond_cov, covariance_type):
    """(nk, sx, sxx) from rows sharing observed set `obs`, with the missing coordinates
    replaced by their conditional moments: E[x x^T | x_o, k] = x̂ x̂^T + [0 0; 0 Cov_mm].

    X_obs : (n, d_o); resp : (n, K); cond_mean : (K, n, d_m); cond_cov : (K, d_m, d_m).
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
    if covariance_type == "tied":
        sxx = sxx.sum(axis=0)
    elif covariance_type != "full":
        sxx = np.diagonal(sxx, axis1=1, axis2=2).copy()
        if covariance_type == "spherical":
            sxx = sxx.sum(axis=1)
    return nk, sx, sxx


# -- M-step -------------------------------------------------------------------------------


def m_step(stats: GaussianStats, covariance_type: str, reg_covar: float) -> GaussianParams:
    """Maximize the expected complete-data log-likelihood given summed statistics.

    π_k = N_k / N; μ_k = Σ r x / N_k; Σ_k = Σ r x x^T / N_k - μ_k μ_k^T + reg_covar I
    (tied: pooled over components). Empty or collapsed components are re-seeded by
    splitting the heaviest component, with a ReseedWarning.
    """
    eps = 10 * np.finfo(np.float64).eps
    nk = stats.nk + eps
    means = stats.sx / nk[:, None]
    K, D = means.shape
    if covariance_type == "full":
        cov = stats.sxx / nk[:, None, None] - means[:, :, None] * means[:, None, :]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov[:, np.arange(D), np.arange(D)] += reg_covar
    elif covariance_type == "tied":
        cov = (stats.sxx - (nk[:, None] * means).T @ means) / nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov[np.arange(D), np.arange(D)] += reg_covar
    elif covariance_type == "diag":
        cov = stats.sxx / nk[:, None] - means**2 + reg_covar
    else:  # spherical: the mean of the diagonal variances
        cov = (stats.sxx / nk - np.sum(means**2, axis=1)) / D + reg_covar
    weights = nk / stats.n
    # empty (N_k < 1) or collapsed (fewer samples than a nonsingular covariance needs: it
    # sits on a few points and only reg_covar keeps it positive definite). When the data
    # cannot support every component, collapse is unavoidable and only empties move.
    support = min_support(D, covariance_type)
    if stats.n < K * support:
        support = 1.0
    starved = np.flatnonzero(stats.nk < support)
    if starved.size and starved.size < K:
        weights, means, cov = _reseed(starved, stats, weights, means, cov, covariance_type,
                                      support)
    weights = weights / weights.sum()
    return make_params(weights, means + stats.shift, cov, covariance_type, stats.shift)


def _reseed(starved, stats, weights, means, cov, covariance_type, support):
    """Split the heaviest component in two for each starved one: the pair sits at
    μ_j ± √λ v along the principal axis (λ, v) of Σ_j, shares its covariance and halves
    its weight. (Re-seeding at badly explained rows would put a component back on the very
    outlier it collapsed on.)"""
    means, weights, cov = means.copy(), weights.copy(), cov.copy()
    D = means.shape[1]
    live = np.setdiff1d(np.arange(len(weights)), starved)
    for k in starved:
        j = live[np.argmax(weights[live])]
        if covariance_type == "full":
            lam, vecs = np.linalg.eigh(cov[j])
            axis = np.sqrt(lam[-1]) * vecs[:, -1]
        elif covariance_type == "tied":
            lam, vecs = np.linalg.eigh(cov)
            axis = np.sqrt(lam[-1]) * vecs[:, -1]
        elif covariance_type == "diag":
            d = np.argmax(cov[j])
            axis = np.sqrt(cov[j, d]) * np.eye(D)[d]
        else:
            axis = np.sqrt(cov[j]) * np.eye(D)[0]
        warnings.warn(
            f"component {k} was {'empty' if stats.nk[k] < 1 else 'collapsed'} (supported by "
            f"{stats.nk[k]:.3g} < {support:g} samples, too few for a nonsingular covariance); "
            f"re-seeded by splitting component {j} along its principal axis.",
            ReseedWarning, stacklevel=4)
        means[k], means[j] = means[j] + axis, means[j] - axis
        weights[k] = weights[j] = weights[j] / 2
        if covariance_type != "tied":
            cov[k] = cov[j]
        live = np.append(live, k)
    return weights, means, cov


def make_params(weights, means, covariances, covariance_type, shift=None) -> GaussianParams:
    """Complete a parameter record with the precision Cholesky factors; the shift defaults
    to the mixture mean Σ π_k μ_k."""
    shift = weights @ means if shift is None else shift
    if covariance_type in ("full", "tied"):
        P = precision_cholesky(covariances)
    else:
        if np.any(covariances <= 0):
            raise ValueError("a variance is not positive; increase reg_covar.")
        P = 1.0 / np.sqrt(covariances)
    return assemble(weights, means, covariances, P, covariance_type, shift)


def assemble(weights, means, covariances, precisions_cholesky, covariance_type,
             shift) -> GaussianParams:
    """A parameter record with the derived quantities of the complete-data E-step: the
    natural weights on the expansion path, the stacked factors on the direct full path,
    and max_k μ_k^T Λ_k μ_k = ||P_k^T (μ_k - shift)||² in both."""
    K, D = means.shape
    mu = means - shift
    P = precisions_cholesky
    if covariance_type in ("full", "tied"):
        scaled = np.einsum("kd,kde->ke", mu, np.broadcast_to(P, (K, D, D)))
    elif covariance_type == "diag":
        scaled = mu * P
    else:
        scaled = mu * P[:, None]
    max_const = float(np.max(np.sum(scaled**2, axis=1)))
    natural = stacked = None
    if ef.uses_expansion(D, K, covariance_type):
        natural = ef.natural_form(means, P, covariance_type, shift)
    elif covariance_type == "full":
        stacked = stacked_factors(mu, P)
    return GaussianParams(weights, means, covariances, P, covariance_type, shift, max_const,
                          natural, stacked)



def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Free parameters: K-1 weights, K·D means, and the covariances of the type."""
    K, D = n_components, n_features
    cov = {"full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2, "diag": K * D,
           "spherical": K}[covariance_type]
    return cov + K * D + K - 1


def check_precisions(precisions, covariance_type, n_components, n_features) -> np.ndarray:
    """Validate user-given precisions_init and return their Cholesky factors (lower)."""
    K, D = n_components, n_features
    shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}
    precisions = np.asarray(precisions, dtype=np.float64)
    if precisions.shape != shape[covariance_type]:
        raise ValueError(
            f"precisions_init must have shape {shape[covariance_type]} for "
            f"covariance_type={covariance_type!r}; got {precisions.shape}.")
    if covariance_type in ("diag", "spherical"):
        if np.any(precisions <= 0):
            raise ValueError("precisions_init must be positive.")
        return np.sqrt(precisions)
    if not np.allclose(precisions, np.swapaxes(precisions, -1, -2)):
        raise ValueError("precisions_init must be symmetric.")
    return cholesky(precisions, what="precisions_init")
