"""Pure kernels of the low-rank-plus-diagonal Gaussian shared by PPCA, factor analysis and
mixtures of PPCA.

The model: z ~ N(0, I_M), x | z ~ N(W z + μ, Ψ), Ψ = diag(ψ) (PPCA: ψ = σ² 1). Then

    p(x)     = N(x; μ, C),          C = W W^T + Ψ                     (D x D, never formed)
    p(z | x) = N(P^{-1} W^T Ψ^{-1} (x - μ), P^{-1}),   P = I + W^T Ψ^{-1} W   (M x M)

(for PPCA, P = M_ppca / σ² with M_ppca = W^T W + σ² I, so the posterior is the notes'
N(M^{-1} W^T (x - μ), σ² M^{-1})). Everything is computed in whitened coordinates
W̃ = Ψ^{-1/2} W, r̃ = Ψ^{-1/2} (x - μ), P = I + W̃^T W̃ = L L^T (Cholesky):

    log det C = log det P + Σ_d log ψ_d                    (matrix determinant lemma)
    (x - μ)^T C^{-1} (x - μ) = ||r̃||² - ||L^{-1} W̃^T r̃||²  (Woodbury:
                               C^{-1} = Ψ^{-1} - Ψ^{-1} W P^{-1} W^T Ψ^{-1})

so a log-density costs O(D M) per row after O(D M²) set-up: O(N D M) for N rows.

Missing values (NaN). Rows are marginalized exactly onto their observed coordinates o: the
marginal of x_o is the same model with W_o (the observed rows of W) and ψ_o, so the formulas
above hold with P_o = I + W̃_o^T W̃_o, which depends only on the missingness pattern. P_o is
built for all patterns in one product, P_o = I + Σ_d o_d w̃_d w̃_d^T = I + O (w̃ ⊗ w̃) with
O : (U, D) the pattern masks, and factored once per pattern (compiled loops in `_missing_kernels`,
which sum over the shorter of a pattern's observed and missing coordinates); each row then
needs b = W̃^T r̃_o (one GEMM with the missing entries zeroed) and a product with its
pattern's P_o^{-1}. No Python loop over rows or patterns.

Zero noise (PCA keeping every direction): C = U Λ U^T may be singular; `subspace_log_prob`
is the density on its support, as scipy.stats.multivariate_normal(allow_singular=True).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._linalg import LOG_2PI, cholesky, inverse_lower, solve_lower
from .._missing import pattern_index

__all__ = [
    "lowrank_log_prob", "lowrank_posterior", "lowrank_log_prob_missing",
    "lowrank_posterior_missing", "lowrank_missing", "lowrank_mean_log_prob_cov",
    "MissingPosterior", "subspace_log_prob", "support_cutoff", "support_tolerance",
]


def _whitened(W, psi):
    """W̃ = Ψ^{-1/2} W : (D, M), the Cholesky factor L of P = I + W̃^T W̃ : (M, M) and
    log det C = 2 Σ log L_ii + Σ log ψ (matrix determinant lemma). float64."""
    W = np.asarray(W, dtype=np.float64)
    psi = np.asarray(psi, dtype=np.float64)
    Wt = W / np.sqrt(psi)[:, None]
    P = Wt.T @ Wt
    P[np.diag_indices_from(P)] += 1.0
    L = cholesky(P, what="posterior precision I + W^T Ψ^{-1} W")
    log_det = 2 * np.log(np.diag(L)).sum() + np.log(psi).sum()
    return Wt, L, log_det


def _whiten_rows(X, mean, psi):
    """r̃ = (x - μ) / √ψ : (n, D), in X's dtype."""
    scale = (1.0 / np.sqrt(np.asarray(psi, dtype=np.float64))).astype(X.dtype)
    R = X - np.asarray(mean).astype(X.dtype)
    R *= scale
    return R


def lowrank_log_prob(X, mean, W, psi) -> np.ndarray:
    """log N(x_n; μ, W W^T + diag ψ) : (n_samples,) float64, in O(N D M).

    X : (n_samples, n_features) complete; mean : (n_features,); W : (n_features,
    n_components); psi : (n_features,) positive noise variances. The products over the data
    run in X's dtype (the float32 fast path); the reductions in float64.
    """
    D = X.shape[1]
    Wt, L, log_det = _whitened(W, psi)
    R = _whiten_rows(X, mean, psi)
    A = solve_lower(L, Wt.T).astype(X.dtype)  # L^{-1} W̃^T : (M, D)
    proj = R @ A.T  # L^{-1} W̃^T r̃ per row : (n, M)
    # Woodbury: r^T C^{-1} r = ||r̃||² - ||L^{-1} W̃^T r̃||²
    maha = np.square(R).sum(axis=1, dtype=np.float64)
    maha -= np.square(proj).sum(axis=1, dtype=np.float64)
    return -0.5 * (D * LOG_2PI + log_det + maha)


def lowrank_posterior(X, mean, W, psi):
    """p(z | x_n) for complete rows: (means : (n_samples, n_components) in X's dtype,
    cov : (n_components, n_components) float64, shared by all rows).

    mean_n = P^{-1} W̃^T r̃_n, cov = P^{-1} with P = I + W^T Ψ^{-1} W = L L^T.
    """
    Wt, L, _ = _whitened(W, psi)
    Linv = inverse_lower(L)
    cov = Linv.T @ Linv  # P^{-1} = L^{-T} L^{-1}
    B = (cov @ Wt.T).astype(X.dtype)  # P^{-1} W̃^T : (M, D)
    return _whiten_rows(X, mean, psi) @ B.T, cov


def lowrank_mean_log_prob_cov(S, W, psi) -> float:
    """Mean log N(x_n; μ, C) over rows whose scatter about μ is S = (1/N) Σ (x - μ)(x - μ)^T
    : (n_features, n_features), in O(D² M):

        -1/2 (D log 2π + log det C + tr(C^{-1} S)),
        tr(C^{-1} S) = Σ_d S_dd / ψ_d - tr(P^{-1} W̃^T S̃ W̃),  S̃ = Ψ^{-1/2} S Ψ^{-1/2}  (Woodbury)
    """
    D = S.shape[0]
    Wt, L, log_det = _whitened(W, psi)
    s = 1.0 / np.sqrt(np.asarray(psi, dtype=np.float64))
    SWt = (S * np.outer(s, s)) @ Wt  # S̃ W̃ : (D, M)
    Linv = inverse_lower(L)
    A = Linv @ Wt.T  # L^{-1} W̃^T
    B = Linv @ SWt.T  # L^{-1} W̃^T S̃
    trace = np.sum(np.diag(S) * s**2) - np.sum(A * B)  # tr(L^{-1} W̃^T S̃ W̃ L^{-T})
    return float(-0.5 * (D * LOG_2PI + log_det + trace))


def support_cutoff(variances, dtype) -> float:
    """Variances at or below this are outside the support of N(μ, U Λ U^T): cond · max λ,
    cond = 1e6 eps (float64) or 1e3 eps (float32), as scipy's pinvh / multivariate_normal."""
    dtype = np.dtype(dtype)
    cond = {np.dtype(np.float32): 1e3}.get(dtype, 1e6) * np.finfo(dtype).eps
    return float(cond * max(np.max(variances, initial=0.0), 0.0))


def support_tolerance(X, mean, variances, keep, n_train=None) -> np.ndarray:
    """How far from the support μ + span(U_+) a row of X : (n, D) may lie and still be on it:
    (n,) distances,

        tol = 1e3 · cutoff  +  √((N - 1) Σ_{dropped} λ_i)  +  64 eps (|x|_∞ + |μ|_∞).

    The first term is scipy's (multivariate_normal(allow_singular=True)); the last a
    round-off allowance, so that the rounding of μ never puts a row on the support off it.
    The middle one, when n_train = N is given, is the root of the total squared distance
    from the support of the N rows the variances λ : (M,) were estimated from (over N - 1),
    held by the directions the cutoff dropped: Σ_n ||(I - U_+ U_+^T)(x_n - μ)||² =
    (N - 1) Σ_{dropped} λ_i when the M components span the rows (M = min(N, D), as PCA's
    σ² = 0 has it), so no training row lies farther. Without it a direction of
    real variance that is tiny next to the largest (columns whose scales differ by 1e8:
    λ ratio 1e-14 < the cutoff's 2e-10) put the training rows themselves off the support
    (log-density -inf), and whether it did depended on the data's units (scipy's term
    compares a distance with a variance).
    keep : (M,) bool, the variances above `support_cutoff`."""
    variances = np.asarray(variances, dtype=np.float64)
    cutoff = support_cutoff(variances, X.dtype)
    dropped = np.maximum(variances[~np.asarray(keep)], 0.0).sum()
    spread = np.sqrt((n_train - 1) * dropped) if n_train is not None else 0.0
    scale = np.max(np.abs(X), axis=1, initial=0.0).astype(np.float64) + float(
        np.max(np.abs(np.asarray(mean, dtype=np.float64)), initial=0.0))
    return 1e3 * cutoff + spread + 64 * np.finfo(X.dtype).eps * scale


def subspace_log_prob(X, mean, U, variances, n_train=None) -> np.ndarray:
    """log N(x_n; μ, U Λ U^T) : (n_samples,) float64 for a covariance that may be singular
    (PCA with noise variance 0), as scipy.stats.multivariate_normal(allow_singular=True):
    the density on the affine support μ + span(U_+), where U_+ : (D, r) are the columns of
    U whose variance exceeds `support_cutoff` (the others count as 0, as scipy's pinvh),

        -1/2 (r log 2π + Σ_+ log λ + ||Λ_+^{-1/2} U_+^T (x - μ)||²)    (pseudo-determinant)

    and -inf for rows farther from the support than `support_tolerance` (given n_train,
    the number of rows the variances were estimated from, never a training row). When
    every λ is 0 (all training rows identical) the support is the point μ and r = 0: the
    density there is the point mass, log-density 0 (the formula above with an empty sum),
    -inf elsewhere.

    X : (n_samples, n_features); mean : (n_features,); U : (n_features, M) orthonormal
    columns; variances λ : (M,) >= 0; n_train : int or None (None: scipy's tolerance only).
    """
    cutoff = support_cutoff(variances, X.dtype)
    keep = np.asarray(variances) > cutoff
    lam = np.asarray(variances, dtype=np.float64)[keep]
    U_kept = np.asarray(U)[:, keep].astype(X.dtype)
    R = X - np.asarray(mean).astype(X.dtype)  # (n, D)
    proj = R @ U_kept  # U_+^T (x - μ) : (n, r)
    maha = np.square(proj / np.sqrt(lam).astype(X.dtype)).sum(axis=1, dtype=np.float64)
    log_prob = -0.5 * (len(lam) * LOG_2PI + np.log(lam).sum() + maha)
    if len(lam) < X.shape[1]:  # the distance from the support: ||(I - U_+ U_+^T)(x - μ)||
        R -= proj @ U_kept.T
        distance = np.sqrt(np.square(R).sum(axis=1, dtype=np.float64))
        off = distance > support_tolerance(X, mean, variances, keep, n_train)
        log_prob[off] = -np.inf
    return log_prob


# -- missing values -----------------------------------------------------------------------


class MissingPosterior(NamedTuple):
    """What the missing-value kernel computes for rows X : (n, D) with NaNs.

    log_prob : (n,) log N(x_o; μ_o, C_oo); z_mean : (n, M) E[z | x_o]; z_cov : (U, M, M)
    Cov[z | x_o] per missingness pattern; pattern : (n,) the pattern of each row;
    patterns : (U, D) bool, the observed coordinates of each pattern.
    """

    log_prob: np.ndarray
    z_mean: np.ndarray
    z_cov: np.ndarray
    pattern: np.ndarray
    patterns: np.ndarray


def lowrank_missing(X, mean, W, psi, observed=None) -> MissingPosterior:
    """Exact marginal log-density and posterior of z for rows with NaNs (see module doc).

    X : (n_samples, n_features), NaN = missing (a row may be entirely missing: its
    log-density is 0 and its posterior the prior); mean : (n_features,); W : (n_features,
    n_components); psi : (n_features,). observed : (n_samples, n_features) bool, ~isnan(X)
    when not given. All in float64.
    """
    # numba is imported on first use, not with the package
    from ._missing_kernels import pattern_matvec, pattern_precision_inverse, whiten_observed

    X = np.ascontiguousarray(X, dtype=np.float64)
    observed = ~np.isnan(X) if observed is None else np.ascontiguousarray(observed, dtype=bool)
    patterns, inverse = pattern_index(observed)
    psi = np.asarray(psi, dtype=np.float64)
    scale = 1.0 / np.sqrt(psi)
    Wt = np.asarray(W, dtype=np.float64) * scale[:, None]
    # P_u = I + Σ_{d observed in u} w̃_d w̃_d^T = L L^T per pattern: P_u^{-1}, log det P_u
    z_cov, log_det_P = pattern_precision_inverse(patterns, Wt)
    # matrix determinant lemma per pattern: log det C_oo = log det P_u + Σ_o log ψ_d
    log_det = log_det_P + np.einsum("ud,d->u", patterns, np.log(psi))
    R, sq = whiten_observed(X, observed, np.asarray(mean, dtype=np.float64), scale)
    b = R @ Wt  # W̃_o^T r̃_o : (n, M), r̃_o zero where missing
    z_mean, quad = pattern_matvec(z_cov, inverse, b)  # P_u^{-1} b, b^T P_u^{-1} b
    # Woodbury: r_o^T C_oo^{-1} r_o = ||r̃_o||² - b^T P_u^{-1} b
    maha = sq - quad
    d_obs = patterns.sum(axis=1)
    log_prob = -0.5 * ((d_obs * LOG_2PI + log_det)[inverse] + maha)
    return MissingPosterior(log_prob, z_mean, z_cov, inverse, patterns)


def lowrank_log_prob_missing(X, mean, W, psi) -> np.ndarray:
    """log N(x_o; μ_o, W_o W_o^T + diag ψ_o) : (n_samples,) for X with NaNs (exact)."""
    return lowrank_missing(X, mean, W, psi).log_prob


def lowrank_posterior_missing(X, mean, W, psi):
    """p(z | x_o) for X with NaNs: (means : (n_samples, n_components), covs :
    (n_samples, n_components, n_components)), each row's covariance that of its pattern."""
    post = lowrank_missing(X, mean, W, psi)
    return post.z_mean, post.z_cov[post.pattern]
