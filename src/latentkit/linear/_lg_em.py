"""EM kernels shared by PPCA (isotropic noise) and factor analysis (diagonal noise).

    z ~ N(0, I_M),   x | z ~ N(W z + μ, Ψ),   Ψ = diag(ψ)  (PPCA: ψ = σ² 1)

E-step: p(z | x) from `_lowrank` (posterior mean m_n, covariance P^{-1}). The M-step is a
regression of x on the augmented latent z̃ = (z, 1), so W and μ are updated jointly:

    [W μ] = (Σ_n E[x z̃^T]) (Σ_n E[z̃ z̃^T])^{-1}
    ψ_d   = (Σ_n E[x_d²] - [W μ]_d · (Σ_n E[x_d z̃]) ) / N        (PPCA: σ² = mean_d ψ_d)

(with W then re-solved at μ as float64 rounds it, and ψ the residual at that [W μ]:
`m_step`).

The statistics are additive over rows (the engine's contract), accumulated in coordinates
shifted by a fixed centre (the data mean, kept in the EM state `LGState`) to avoid
cancellation:
    n, szz = Σ E[z̃ z̃^T] : (M+1, M+1), sxz = Σ E[x z̃^T] : (D, M+1), sxx = Σ E[x_d²] : (D,).

Three ways to get them, one per kind of input:
- `Moments` (complete data in memory): the first and second moments of the data, computed
  once; every E-step is then a function of them, O(D² M) per iteration, not O(N D M).
- complete chunks: O(N D M) per pass (streaming, out of core).
- chunks with NaN: the missing coordinates are latent too. For row n with pattern u,
  E[x_d | x_o] = μ_d + w_d^T m_n, Cov(x_d, z | x_o) = w_d^T P_u^{-1},
  Var(x_d | x_o) = w_d^T P_u^{-1} w_d + ψ_d for each missing d; the per-feature sums of
  P_u^{-1} over the rows missing d come from one product (1 - O)^T (counts · P_u^{-1}).

`e_step(params, state, config, chunk)` and `m_step(stats, params, state, config)` are the
family's half of the EM contract (`latentkit.em.EMFamily`); `init` is in `_lg_base`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import cho_factor, cho_solve, get_blas_funcs

from .._linalg import LOG_2PI, cholesky, inverse_lower
from ..em import NOTHING, SufficientStats
from ..io import register_record
from ._lowrank import lowrank_mean_log_prob_cov, lowrank_missing

#: the noise floor, relative to each feature's variance: ψ_d >= NOISE_FLOOR · var(x_d)
NOISE_FLOOR = 1e-6
#: what a user can change when the objective turns non-finite or decreases
REMEDY = "use fewer components, drop near-constant columns, or fit in float64"


class LGParams(NamedTuple):
    """θ of a linear-Gaussian model. mean : (D,); W : (D, M); psi : (D,) noise variances."""

    mean: np.ndarray
    W: np.ndarray
    psi: np.ndarray


@register_record
class LGState(NamedTuple):
    """What survives between EM iterations (saved with the model as `em_state_`).

    shift : (D,) the fixed centre the statistics are accumulated about (the data mean);
    psi_floor : (D,) ψ's minimum, NOISE_FLOOR times the data's variances;
    basis : (D, M) the subspace iterate of PPCA's σ² -> 0 EM (`solver="em_pca"`), or
        (D, min(D, M + 10)) the randomized eigensolver's basis of FA's SVD iteration
        (`svd_method="randomized"`, `_fa_svd`); None for every other solver.
    """

    shift: np.ndarray
    psi_floor: np.ndarray
    basis: np.ndarray | None = None


class LGConfig(NamedTuple):
    """The validated hyper-parameters of one fit: n_components M; isotropic, True for PPCA
    (ψ = σ² 1) and False for FA (diagonal Ψ); init_params, "pca" or "random"."""

    n_components: int
    isotropic: bool
    init_params: str = "pca"


@register_record
@dataclass(frozen=True)
class LGStats(SufficientStats):
    """Σ over rows of E[z̃ z̃^T], E[x z̃^T], E[x_d²] (shifted x); see module docstring."""

    additive = ("n", "szz", "sxz", "sxx")
    n: float
    szz: np.ndarray  # (M+1, M+1)
    sxz: np.ndarray  # (D, M+1)
    sxx: np.ndarray  # (D,)


class Moments:
    """The complete data summarized once: n rows, shift (D,) their mean, scatter (D, D)
    = Σ (x - shift)(x - shift)^T. Stands in for the data in the EM engine (one 'chunk' of
    n rows)."""

    def __init__(self, X: np.ndarray):
        self.n = len(X)
        self.shift = column_mean(X)
        self.scatter = scatter(X - self.shift.astype(X.dtype))

    def __len__(self) -> int:
        return self.n

    @property
    def covariance(self) -> np.ndarray:
        """(D, D) the maximum-likelihood covariance S = scatter / n."""
        return self.scatter / self.n

    @functools.cached_property
    def covariance_root(self) -> np.ndarray:
        """(D, D) L with L L^T = S (the symmetric root, round-off negative eigenvalues
        clipped to 0), computed once: EM-PCA's objective ||(I - P) L||_F² needs no
        difference of large traces (`ppca.em_pca_e_step`)."""
        w, U = np.linalg.eigh(self.covariance)
        return U * np.sqrt(np.maximum(w, 0.0))


def column_mean(X: np.ndarray, *, skip_nan: bool = False) -> np.ndarray:
    """(D,) float64 mean of the columns of X : (n, D) (of their non-NaN entries when
    skip_nan), in two passes: x̄ = m + mean(x - m), m the plain mean rounded to X's dtype.

    The plain mean of a constant column c is not c (the sum of n copies rounds, then the
    division does): it missed c by an ulp, so the statistics about it saw a spread of one
    ulp of c where there is none, 1e33 for c = 1.4e49, and EM then fitted that spread
    with a mean whose own rounding (the same ulp) undid its M-steps. The second pass is
    exact there (c - m is exact, and so is the mean of equal differences to well within
    an ulp of c), and elsewhere it removes the first pass's rounding, as two-pass
    variance formulas do."""
    average = np.nanmean if skip_nan else np.mean
    first = average(X, axis=0, dtype=np.float64).astype(X.dtype)
    return first.astype(np.float64) + average(X - first, axis=0, dtype=np.float64)


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


def _assemble(n, sum_m, sum_mm, cov_total, sxz_m, sum_x, sxx) -> LGStats:
    """LGStats from the pieces: Σ m : (M,), Σ m m^T : (M, M), Σ Cov[z] : (M, M),
    Σ E[x z^T] : (D, M), Σ E[x] : (D,), Σ E[x_d²] : (D,)."""
    M = len(sum_m)
    szz = np.empty((M + 1, M + 1))
    szz[:M, :M] = sum_mm + cov_total
    szz[:M, M] = szz[M, :M] = sum_m
    szz[M, M] = n
    sxz = np.column_stack([sxz_m, sum_x])
    return LGStats(float(n), szz, sxz, sxx)


def moments_log_likelihood(params: LGParams, mom: Moments) -> float:
    """Σ_n log N(x_n; μ, C) from the data's moments, O(D² M): the scatter about μ is
    S_μ = scatter + n (μ - x̄)(μ - x̄)^T."""
    mu = params.mean - mom.shift
    S_mu = mom.scatter + mom.n * np.outer(mu, mu)
    return mom.n * lowrank_mean_log_prob_cov(S_mu / mom.n, params.W, params.psi)


def e_step_moments(params: LGParams, mom: Moments, shift=None):
    """(stats, total log-likelihood) from the data's moments, O(D² M); statistics about
    `shift` : (D,) (default: the model mean).

    With x'' = x - shift, d = x̄ - shift, μ' = μ - x̄, m_n = B (x_n - μ):
    Σ m = -n B μ', Σ m m^T = B S_μ B^T, Σ x'' m^T = (Σ x'' (x - μ)^T) B^T
    = (scatter - n d μ'^T) B^T, Σ x'' = n d, Σ x''_d² = scatter_dd + n d_d², with
    S_μ = scatter + n μ' μ'^T (Σ (x - x̄) = 0).
    """
    n = mom.n
    d = mom.shift - (params.mean if shift is None else shift)
    mu = params.mean - mom.shift
    B, cov, _ = _posterior_operator(params)
    S_mu = mom.scatter + n * np.outer(mu, mu)
    Bmu = B @ mu
    sum_m = -n * Bmu
    sum_mm = B @ (S_mu @ B.T)
    sxz_m = mom.scatter @ B.T - n * np.outer(d, Bmu)
    sxx = np.diag(mom.scatter) + n * np.square(d)
    ll = n * lowrank_mean_log_prob_cov(S_mu / n, params.W, params.psi)
    stats = _assemble(n, sum_m, sum_mm, n * cov, sxz_m, n * d, sxx)
    return stats, ll


def e_step_complete(params: LGParams, X: np.ndarray, shift=None):
    """(stats, total log-likelihood) from complete rows X : (n, D), O(N D M), the products
    in X's dtype; statistics about `shift` : (D,) (default: the model mean).

    Woodbury on r = x - μ: r^T C^{-1} r = r^T Ψ^{-1} r - (W^T Ψ^{-1} r)^T m, m = B r.
    """
    shift = params.mean if shift is None else shift
    n, D = X.shape
    B, cov, log_det = _posterior_operator(params)
    Xs = X - shift.astype(X.dtype)  # x'
    R = Xs - (params.mean - shift).astype(X.dtype)  # x - μ
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
    stats = _assemble(n, means.sum(axis=0), means.T @ means, n * cov, sxz_m, sum_x, sxx)
    return stats, ll


def missing_log_prob(X, observed, params: LGParams, post) -> np.ndarray:
    """log p(x_o) : (n,) of rows X : (n, D) with NaN from their posterior `post`
    (`lowrank_missing`), in the cancellation-free form of the Mahalanobis term,

        r^T C_o^{-1} r = Σ_{d observed} (r_d - w_d^T m)² / ψ_d + ||m||²,   r = x - μ,

    both terms >= 0 (Woodbury's r^T Ψ^{-1} r - b^T P^{-1} b subtracts two terms of order
    r²/ψ, which near a Heywood case (ψ at its floor) loses digits in proportion to P's
    condition and made EM's exact objective jitter down); log det C_o = log det P_u +
    Σ_o log ψ_d with log det P_u = -log det P_u^{-1}."""
    m = post.z_mean
    R = np.where(observed, X - params.mean - m @ params.W.T, 0.0)
    maha = np.square(R) @ (1.0 / params.psi) + np.einsum("ni,ni->n", m, m)
    log_det_P = -np.linalg.slogdet(post.z_cov)[1]
    log_det = log_det_P[post.pattern] + observed @ np.log(params.psi)
    return -0.5 * (np.count_nonzero(observed, axis=1) * LOG_2PI + log_det + maha)


def e_step_missing(params: LGParams, X: np.ndarray, shift=None):
    """(stats, total log-likelihood) from rows X : (n, D) with NaN; exact (module doc);
    statistics about `shift` : (D,) (default: the model mean)."""
    from ._missing_kernels import impute_shifted, masked_sum  # numba, on first use

    shift = params.mean if shift is None else shift
    X = np.ascontiguousarray(X, dtype=np.float64)
    observed = ~np.isnan(X)
    post = lowrank_missing(X, params.mean, params.W, params.psi, observed)
    means, W = post.z_mean, params.W
    counts = np.bincount(post.pattern, minlength=len(post.patterns)).astype(np.float64)
    # G_d = Σ_{rows missing d} P_u^{-1} = Σ_{patterns missing d} count_u P_u^{-1} : (D, M, M)
    G = masked_sum(~post.patterns, counts, post.z_cov)
    # x̂' = x - shift where observed, E[x_d | x_o] - shift = μ_d + w_d^T m - shift where missing
    Xs, sum_x, sum_sq = impute_shifted(X, observed, params.mean, W, means, shift)
    n_missing = len(X) - np.count_nonzero(observed, axis=0)  # rows missing d : (D,)
    GW = np.einsum("dij,dj->di", G, W)  # w_d^T G_d : (D, M)
    sxz_m = Xs.T @ means + GW
    sxx = sum_sq + np.einsum("di,di->d", GW, W) + n_missing * params.psi
    M = W.shape[1]
    cov_total = (counts @ post.z_cov.reshape(len(counts), M * M)).reshape(M, M)
    stats = _assemble(len(X), means.sum(axis=0), means.T @ means, cov_total, sxz_m, sum_x,
                      sxx)
    return stats, float(missing_log_prob(X, observed, params, post).sum())


def e_step(params: LGParams, state: LGState, config: LGConfig, chunk):
    """The family's E-step: (LGStats about state.shift, total log-likelihood) of one chunk,
    dispatched on its kind: Moments, complete rows : (n, D), rows with NaN : (n, D)."""
    if isinstance(chunk, Moments):
        return e_step_moments(params, chunk, state.shift)
    if np.isnan(chunk).any():
        return e_step_missing(params, chunk, state.shift)
    return e_step_complete(params, chunk, state.shift)


# -- M-step -------------------------------------------------------------------------------


def m_step(stats: LGStats, params: LGParams, state: LGState, config: LGConfig):
    """The family's M-step: μ = shift + μ' with [W μ'] = sxz szz^{-1}, rounded to float64;
    W re-solved for that μ (`loadings_given_offset`); ψ_d = the mean expected squared
    residual of column d (`residual_variances`), floored at state.psi_floor; isotropic
    (PPCA): σ² = mean_d ψ_d (before the floor).

    Why W is re-solved: μ is stored in float64, so the μ' the step applies is the rounded
    fl(shift + μ') - shift. Where a column's spread is a few ulps of its value (1e19 ± 2e3)
    that rounding is the size of the spread, and the W solved jointly with the unrounded μ'
    no longer maximizes Q: EM's log-likelihood fell by 1e-3 per step. W solved for the
    rounded μ' maximizes Q over W at it, and the rounded μ' is the representable mean
    nearest the joint optimum, so Q is at least its value at the previous (representable)
    mean: the step stays monotone. Elsewhere the change is round-off.
    Returns (LGParams, LGState without a σ² -> 0 EM basis, NOTHING)."""
    M = stats.szz.shape[0] - 1
    mean = _normal_equations(stats.szz, stats.sxz)[:, M] + state.shift  # rounded here
    B = loadings_given_offset(stats, mean - state.shift)  # [W μ'] : (D, M+1)
    psi = residual_variances(stats, B)
    if config.isotropic:
        psi = np.full_like(psi, psi.mean())
    psi = np.maximum(psi, state.psi_floor)
    params = LGParams(mean, B[:, :M].copy(), psi)
    return params, plain_state(state), NOTHING


def joint_offset(stats: LGStats) -> np.ndarray:
    """μ' : (D,), the mean's offset from the statistics' centre in the joint solution
    [W μ'] of the normal equations [W μ'] szz = sxz (what `m_step` adds to the shift before
    rounding; a caller that stores the mean in other units rounds it there, then re-solves
    W at that mean with `loadings_given_offset`)."""
    M = stats.szz.shape[0] - 1
    return _normal_equations(stats.szz, stats.sxz)[:, M]


def loadings_given_offset(stats: LGStats, offset: np.ndarray) -> np.ndarray:
    """B = [W μ'] : (D, M+1) with W : (D, M) maximizing Q for the mean fixed at
    shift + offset, offset μ' : (D,): the first M normal equations, B szz = sxz on their
    columns, W szz_zz = sxz_z - μ' szz_1z (szz_zz = Σ E[z z^T], szz_1z = Σ m)."""
    M = stats.szz.shape[0] - 1
    rhs = stats.sxz[:, :M] - np.outer(offset, stats.szz[M, :M])
    return np.column_stack([_normal_equations(stats.szz[:M, :M], rhs), offset])


def residual_variances(stats: LGStats, B: np.ndarray) -> np.ndarray:
    """ψ : (D,), ψ_d = (1/n) Σ_n E[(x_d - b_d^T z̃)²] for B = [W μ'] : (D, M+1), rows b_d:

        n ψ_d = sxx_d - 2 b_d·sxz_d + b_d szz b_d^T = sxx_d - b_d·sxz_d - b_d·e_d,

    e = sxz - B szz the residual of the normal equations (0 where B solves them: the
    textbook sxx_d - b_d·sxz_d; not 0 in the mean's column when μ' is the rounded one)."""
    E = stats.sxz - B @ stats.szz
    return (stats.sxx - np.einsum("dj,dj->d", B, stats.sxz) - np.einsum("dj,dj->d", B, E)) \
        / stats.n


def _normal_equations(szz: np.ndarray, sxz: np.ndarray) -> np.ndarray:
    """B : (D, M+1) solving B szz = sxz, szz : (M+1, M+1) symmetric PSD, sxz : (D, M+1):
    a Cholesky solve, or least squares (the minimum-norm solution) when szz is singular to
    working precision (more components than the data's directions, e.g. M = D on columns
    whose scales differ by 1e8: its smallest eigenvalue is round-off). Every solution of
    the normal equations maximizes Q(θ) over [W μ'], so EM's guarantee is kept."""
    try:
        return cho_solve(cho_factor(szz, lower=True), sxz.T).T
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(szz, sxz.T, rcond=None)[0].T


def plain_state(state: LGState) -> LGState:
    """state without the σ² -> 0 EM basis (stale once another M-step has moved W)."""
    return state if state.basis is None else LGState(state.shift, state.psi_floor)


__all__ = ["LGConfig", "LGParams", "LGState", "LGStats", "Moments", "NOISE_FLOOR", "REMEDY",
           "column_mean", "e_step", "e_step_complete", "e_step_missing", "e_step_moments",
           "joint_offset", "loadings_given_offset", "m_step", "missing_log_prob",
           "moments_log_likelihood", "plain_state", "residual_variances", "scatter"]
