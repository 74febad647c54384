"""EM kernels shared by PPCA (isotropic noise) and factor analysis (diagonal noise).

    z ~ N(0, I_M),   x | z ~ N(W z + μ, Ψ),   Ψ = diag(ψ)  (PPCA: ψ = σ² 1)

E-step: p(z | x) from `_lowrank` (posterior mean m_n, covariance P^{-1}). The M-step is a
regression of x on the augmented latent z̃ = (z, 1), so W and μ are updated jointly:

    [W μ] = (Σ_n E[x z̃^T]) (Σ_n E[z̃ z̃^T])^{-1}
    ψ_d   = (Σ_n E[x_d²] - [W μ]_d · (Σ_n E[x_d z̃]) ) / N        (PPCA: σ² = mean_d ψ_d)

The statistics are additive over rows (the engine's contract), accumulated in coordinates
shifted by a fixed centre (the data mean) to avoid cancellation:
    n, szz = Σ E[z̃ z̃^T] : (M+1, M+1), sxz = Σ E[x z̃^T] : (D, M+1), sxx = Σ E[x_d²] : (D,).

Three ways to get them, one per kind of input:
- `Moments` (complete data in memory): the first and second moments of the data, computed
  once; every E-step is then a function of them, O(D² M) per iteration, not O(N D M).
- complete chunks: O(N D M) per pass (streaming, out of core).
- chunks with NaN: the missing coordinates are latent too. For row n with pattern u,
  E[x_d | x_o] = μ_d + w_d^T m_n, Cov(x_d, z | x_o) = w_d^T P_u^{-1},
  Var(x_d | x_o) = w_d^T P_u^{-1} w_d + ψ_d for each missing d; the per-feature sums of
  P_u^{-1} over the rows missing d come from one product (1 - O)^T (counts · P_u^{-1}).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import cho_factor, cho_solve, get_blas_funcs

from .._linalg import LOG_2PI, cholesky, inverse_lower
from ..em import SufficientStats
from ._lowrank import lowrank_mean_log_prob_cov, lowrank_missing

#: the noise floor, relative to each feature's variance: ψ_d >= NOISE_FLOOR · var(x_d)
NOISE_FLOOR = 1e-6


class LGParams(NamedTuple):
    """θ of a linear-Gaussian model. mean : (D,); W : (D, M); psi : (D,) noise variances;
    shift : (D,) the fixed centre of the statistics; psi_floor : (D,) ψ's minimum."""

    mean: np.ndarray
    W: np.ndarray
    psi: np.ndarray
    shift: np.ndarray
    psi_floor: np.ndarray


@dataclass(frozen=True)
class LGStats(SufficientStats):
    """Σ over rows of E[z̃ z̃^T], E[x z̃^T], E[x_d²] (shifted x); see module docstring."""

    additive = ("n", "szz", "sxz", "sxx")
    n: float
    szz: np.ndarray  # (M+1, M+1)
    sxz: np.ndarray  # (D, M+1)
    sxx: np.ndarray  # (D,)
    shift: np.ndarray  # (D,) carried
    psi_floor: np.ndarray  # (D,) carried


class Moments:
    """The complete data summarized once: n rows, shift (D,) their mean, scatter (D, D)
    = Σ (x - shift)(x - shift)^T. Stands in for the data in the EM engine (one 'chunk' of
    n rows)."""

    def __init__(self, X: np.ndarray):
        self.n = len(X)
        self.shift = X.mean(axis=0, dtype=np.float64)
        self.scatter = scatter(X - self.shift.astype(X.dtype))

    def __len__(self) -> int:
        return self.n

    @property
    def covariance(self) -> np.ndarray:
        """(D, D) the maximum-likelihood covariance S = scatter / n."""
        return self.scatter / self.n


def scatter(Xc: np.ndarray) -> np.ndarray:
    """Xc^T Xc : (D, D) float64 from Xc : (n, D), by a symmetric rank-n update (BLAS syrk,
    half the flops of a GEMM) in Xc's dtype; Xc^T is Fortran-ordered, so no copy."""
    syrk = get_blas_funcs("syrk", (Xc,))
    upper = syrk(1.0, Xc.T, trans=0, lower=0)
    upper = np.triu(upper).astype(np.float64)
    return upper + np.triu(upper, 1).T


# -- E-steps ------------------------------------------------------------------------------


def _posterior_operator(params: LGParams):
    """B = P^{-1} W^T Ψ^{-1} : (M, D) (the posterior mean is B (x - μ)), P^{-1} : (M, M)
    and log det C, with P = I + W^T Ψ^{-1} W = L L^T (matrix determinant lemma:
    log det C = log det P + Σ log ψ)."""
    Wp = params.W / params.psi[:, None]  # Ψ^{-1} W
    P = params.W.T @ Wp
    P[np.diag_indices_from(P)] += 1.0
    L = cholesky(P, what="posterior precision I + W^T Ψ^{-1} W")
    Linv = inverse_lower(L)
    cov = Linv.T @ Linv
    log_det = 2 * np.log(np.diag(L)).sum() + np.log(params.psi).sum()
    return cov @ Wp.T, cov, log_det


def _assemble(n, sum_m, sum_mm, cov_total, sxz_m, sum_x, sxx, params):
    """LGStats from the pieces: Σ m : (M,), Σ m m^T : (M, M), Σ Cov[z] : (M, M),
    Σ E[x z^T] : (D, M), Σ E[x] : (D,), Σ E[x_d²] : (D,)."""
    M = len(sum_m)
    szz = np.empty((M + 1, M + 1))
    szz[:M, :M] = sum_mm + cov_total
    szz[:M, M] = szz[M, :M] = sum_m
    szz[M, M] = n
    sxz = np.column_stack([sxz_m, sum_x])
    return LGStats(float(n), szz, sxz, sxx, params.shift, params.psi_floor)


def e_step_moments(params: LGParams, mom: Moments):
    """(stats, total log-likelihood) from the data's moments, O(D² M).

    With x' = x - shift, μ' = μ - shift, m_n = B (x'_n - μ'):
    Σ m = B (Σ x' - n μ'), Σ m m^T = B S_μ B^T, Σ x' m^T = (Σ x' (x' - μ')^T) B^T, where
    S_μ = Σ (x' - μ')(x' - μ')^T = scatter + n μ' μ'^T (Σ x' = 0 about the data mean).
    """
    n = mom.n
    mu = params.mean - mom.shift
    B, cov, _ = _posterior_operator(params)
    S_mu = mom.scatter + n * np.outer(mu, mu)
    SB = S_mu @ B.T  # (D, M)
    sum_m = -n * (B @ mu)
    sum_mm = B @ SB
    sxz_m = mom.scatter @ B.T  # Σ x' (x' - μ')^T B^T = scatter B^T (Σ x' = 0)
    sxx = np.diag(mom.scatter).copy()
    ll = n * lowrank_mean_log_prob_cov(S_mu / n, params.W, params.psi)
    stats = _assemble(n, sum_m, sum_mm, n * cov, sxz_m, np.zeros_like(mu), sxx, params)
    return stats, ll


def e_step_complete(params: LGParams, X: np.ndarray):
    """(stats, total log-likelihood) from complete rows X : (n, D), O(N D M), the products
    in X's dtype.

    Woodbury on r = x - μ: r^T C^{-1} r = r^T Ψ^{-1} r - (W^T Ψ^{-1} r)^T m, m = B r.
    """
    n, D = X.shape
    B, cov, log_det = _posterior_operator(params)
    Xs = X - params.shift.astype(X.dtype)  # x'
    R = Xs - (params.mean - params.shift).astype(X.dtype)  # x - μ
    means = (R @ B.T.astype(X.dtype)).astype(np.float64)  # (n, M)
    sxx = np.square(Xs).sum(axis=0, dtype=np.float64)
    sum_x = Xs.sum(axis=0, dtype=np.float64)
    sxz_m = (Xs.T @ means.astype(X.dtype)).astype(np.float64)
    # log N(x; μ, C): maha = Σ r²/ψ - (W^T Ψ^{-1} r)·m, and W^T Ψ^{-1} r = P m
    P = params.W.T @ (params.W / params.psi[:, None])
    P[np.diag_indices_from(P)] += 1.0
    b = means @ P  # W^T Ψ^{-1} r = P m : (n, M)
    maha = (np.square(R) @ (1.0 / params.psi).astype(X.dtype)).astype(np.float64)
    maha -= np.einsum("ni,ni->n", b, means)
    ll = float(-0.5 * (n * (D * LOG_2PI + log_det) + maha.sum()))
    stats = _assemble(n, means.sum(axis=0), means.T @ means, n * cov, sxz_m, sum_x, sxx,
                      params)
    return stats, ll


def e_step_missing(params: LGParams, X: np.ndarray):
    """(stats, total log-likelihood) from rows X : (n, D) with NaN; exact (module doc)."""
    from ._missing_kernels import impute_shifted, masked_sum  # numba, on first use

    X = np.ascontiguousarray(X, dtype=np.float64)
    observed = ~np.isnan(X)
    post = lowrank_missing(X, params.mean, params.W, params.psi, observed)
    means, W = post.z_mean, params.W
    counts = np.bincount(post.pattern, minlength=len(post.patterns)).astype(np.float64)
    # G_d = Σ_{rows missing d} P_u^{-1} = Σ_{patterns missing d} count_u P_u^{-1} : (D, M, M)
    G = masked_sum(~post.patterns, counts, post.z_cov)
    # x̂' = x - shift where observed, E[x_d | x_o] - shift = μ_d + w_d^T m - shift where missing
    Xs, sum_x, sum_sq = impute_shifted(X, observed, params.mean, W, means, params.shift)
    n_missing = len(X) - np.count_nonzero(observed, axis=0)  # rows missing d : (D,)
    GW = np.einsum("dij,dj->di", G, W)  # w_d^T G_d : (D, M)
    sxz_m = Xs.T @ means + GW
    sxx = sum_sq + np.einsum("di,di->d", GW, W) + n_missing * params.psi
    M = W.shape[1]
    cov_total = (counts @ post.z_cov.reshape(len(counts), M * M)).reshape(M, M)
    stats = _assemble(len(X), means.sum(axis=0), means.T @ means, cov_total, sxz_m, sum_x,
                      sxx, params)
    return stats, float(post.log_prob.sum())


def e_step(params: LGParams, chunk):
    """Dispatch on the kind of chunk: Moments, complete rows, rows with NaN."""
    if isinstance(chunk, Moments):
        return e_step_moments(params, chunk)
    if np.isnan(chunk).any():
        return e_step_missing(params, chunk)
    return e_step_complete(params, chunk)


# -- M-step -------------------------------------------------------------------------------


def m_step(stats: LGStats, isotropic: bool) -> LGParams:
    """[W μ'] = sxz szz^{-1}; ψ_d = (sxx_d - [W μ']_d · sxz_d) / n, floored at psi_floor;
    isotropic (PPCA): σ² = mean_d ψ_d (before the floor)."""
    Wmu = cho_solve(cho_factor(stats.szz, lower=True), stats.sxz.T).T  # (D, M+1)
    psi = (stats.sxx - np.einsum("dj,dj->d", Wmu, stats.sxz)) / stats.n
    if isotropic:
        psi = np.full_like(psi, psi.mean())
    psi = np.maximum(psi, stats.psi_floor)
    M = Wmu.shape[1] - 1
    return LGParams(Wmu[:, M] + stats.shift, Wmu[:, :M].copy(), psi, stats.shift,
                    stats.psi_floor)
