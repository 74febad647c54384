"""Pure kernels of the mixture of probabilistic PCA models (Tipping & Bishop 1999).

    k ~ Categorical(π),   z ~ N(0, I_M),   x | z, k ~ N(W_k z + μ_k, σ_k² I_D)
    p(x) = Σ_k π_k N(x; μ_k, C_k),   C_k = W_k W_k^T + σ_k² I

Each component's density and posterior p(z | x, k) come from the low-rank kernels of
`latentkit.linear._lowrank` (Woodbury and the matrix determinant lemma: O(D M) per row and
component, C_k is never formed), with the Mahalanobis term in the cancellation-free form
||Ψ^{-1/2} (x - μ - W m)||² + ||m||², m = E[z | x] (`component_moments`,
`linear._lg_em.missing_log_prob`): EM's objective must be exact to round-off for its
history to be monotone.

EM treats (k, z) and, for rows with NaN, the missing coordinates x_m as latent. With the
augmented loading W̄_k = [W_k μ_k] : (D, M+1) and z̄ = [z; 1], the complete-data
log-likelihood is quadratic in W̄_k, so the exact M-step updates μ_k and W_k jointly:

    W̄_k = S_xz,k S_zz,k^{-1},      S_zz,k = Σ_n r_nk E[z̄ z̄^T | x_n, k]
                                   S_xz,k = Σ_n r_nk E[x_n z̄^T | x_n, k]
    σ_k² = (s_xx,k - tr(W̄_k S_xz,k^T)) / (N_k D),   s_xx,k = Σ_n r_nk E[||x_n||² | x_n, k]
    π_k = N_k / N

followed by the parameter-expansion step of `m_step` (PX-EM), which keeps EM monotone and
fast when σ_k² is small.

For a missing coordinate d of row n, x_nd | z, k ~ N(w̄_d z̄, σ_k²) under the current
parameters, so E[x_nd z̄^T] = w̄_d E[z̄ z̄^T] and E[x_nd²] = σ_k² + w̄_d E[z̄ z̄^T] w̄_d^T:
with G_d = Σ_{n: d missing} r_n E[z̄ z̄^T]_n (one product mask^T · (r E[z̄ z̄^T])), the
missing entries add w̄_d G_d to row d of S_xz and σ_k² #missing + Σ_d w̄_d G_d w̄_d^T to
s_xx. Statistics are sums over rows, so they add across chunks (the EM engine's contract),
and are accumulated in coordinates shifted by a fixed vector (a data mean).

The EM family (`MPPCA_FAMILY`): `init`, `e_step`, `m_step` over an `MPPCAConfig`, with an
`MPPCAState` that survives between iterations and is saved with the model: the shift the
statistics are accumulated around and the data's mean feature variance, which scales the
noise floor σ_k² >= min_noise_variance · mean_d var(x_d) (`noise_scale`: never 0, even
for constant data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sklearn.utils.extmath import randomized_svd

from .. import em
from .._linalg import LOG_2PI, cholesky, inverse_lower, log_normalize, solve_lower
from ..io import register_record
from ..linear._lg_em import LGParams, missing_log_prob
from ..linear._lowrank import _whiten_rows, _whitened, lowrank_missing
from ._init import fill_missing_with_means, initial_responsibilities


class MPPCAParams(NamedTuple):
    """θ of a mixture of PPCA, in the coordinates the data are given in, and the centre the
    kernels compute around (in EM the state's fixed shift; for inference the mixture mean)."""

    weights: np.ndarray  # (K,) mixing proportions π
    means: np.ndarray  # (K, D) μ_k
    W: np.ndarray  # (K, D, M) loadings W_k
    noise_variance: np.ndarray  # (K,) σ_k²
    shift: np.ndarray  # (D,) the centre of computation


class MPPCAConfig(NamedTuple):
    """The validated hyper-parameters of one fit: K, M, the relative noise floor and the
    initial clustering's method."""

    n_components: int
    n_latent: int
    min_noise_variance: float
    init_params: str


@register_record
@dataclass(frozen=True)
class MPPCAState:
    """What survives between EM iterations (saved with the model as `em_state_`).

    shift : (D,) the centre the statistics are accumulated around (the init sample's mean,
        fixed for the fit and its warm starts); feature_variance : mean_d var(x_d) of the
        init sample (`noise_scale`), so the noise floor is min_noise_variance ·
        feature_variance.
    """

    shift: np.ndarray
    feature_variance: float


@register_record
@dataclass(frozen=True)
class MPPCAStats(em.SufficientStats):
    """Σ over rows (coordinates shifted by the state's shift) of r_nk, r_nk E[z̄ z̄^T],
    r_nk E[x z̄^T] and r_nk E[||x||²] — see the module docstring."""

    additive = ("n", "nk", "szz", "sxz", "sxx")
    n: float
    nk: np.ndarray  # (K,)
    szz: np.ndarray  # (K, M+1, M+1)
    sxz: np.ndarray  # (K, D, M+1)
    sxx: np.ndarray  # (K,)


# -- densities and posteriors -------------------------------------------------------------


def component_moments(Xs, mean, W, sigma2):
    """log N(x; μ, W W^T + σ² I) and p(z | x) of one component for complete rows.

    Xs : (n, D); mean : (D,); W : (D, M); sigma2 : float. Returns (log_prob (n,) float64,
    z_mean (n, M), z_cov (M, M)). One pass over the rows serves both: with the whitened
    r̃ = (x - μ)/σ, W̃ = W/σ, P = I + W̃^T W̃ = L L^T and q = L^{-1} W̃^T r̃,
    E[z | x] = m = P^{-1} W̃^T r̃ = L^{-T} q, Cov[z | x] = P^{-1}, and
    log N = -½ (D log 2π + log det C + maha) (determinant lemma: the `_lowrank` kernels),
    with the Mahalanobis term in the cancellation-free form of `_lg_em.missing_log_prob`:

        maha = ||r̃ - W̃ m||² + ||m||²     (= ||r̃||² - ||q||², Woodbury, since P m = W̃^T r̃)

    Both terms are >= 0, and m enters only to second order (the form is stationary in m),
    whereas Woodbury's difference of two terms of order ||r̃||² loses ||r̃||² · eps ·
    cond(P) when σ² is small against the spread along W.
    """
    D = Xs.shape[1]
    psi = np.full(D, sigma2)
    Wt, L, log_det = _whitened(W, psi)
    Linv = inverse_lower(L)  # M x M: products with it beat triangular solves on n rows
    R = _whiten_rows(Xs, mean, psi)
    Q = R @ (Linv @ Wt.T).T.astype(Xs.dtype)  # q = L^{-1} W̃^T r̃ per row : (n, M)
    z_mean = Q.astype(np.float64) @ Linv  # (L^{-T} q)^T = q^T L^{-1}
    R -= z_mean.astype(Xs.dtype) @ Wt.T.astype(Xs.dtype)  # r̃ - W̃ m, in X's dtype
    maha = np.square(R).sum(axis=1, dtype=np.float64) + np.square(z_mean).sum(axis=1)
    log_prob = -0.5 * (D * LOG_2PI + log_det + maha)
    return log_prob, z_mean, Linv.T @ Linv


def log_prob_components(X, params: MPPCAParams) -> np.ndarray:
    """log N(x_n; μ_k, C_k) : (n, K), missing entries (NaN) marginalized exactly."""
    return np.column_stack([m[0] for m in _all_moments(X, params)])


def _all_moments(X, params):
    """Per component (log_prob (n,), z_mean (n, M), z_cov (U, M, M), pattern (n,),
    observed (n, D) or None) for rows X : (n, D) in data coordinates; complete rows share
    one posterior covariance (U = 1)."""
    observed = ~np.isnan(X)
    complete = bool(observed.all())
    Xs = X - params.shift.astype(X.dtype)
    out = []
    for mu, W, s2 in zip(params.means - params.shift, params.W, params.noise_variance):
        if complete:
            log_prob, z_mean, z_cov = component_moments(Xs, mu, W, float(s2))
            out.append((log_prob, z_mean, z_cov[None], np.zeros(len(X), np.intp), None))
        else:
            psi = np.full(X.shape[1], float(s2))
            post = lowrank_missing(Xs, mu, W, psi, observed)
            # log p(x_o) in the cancellation-free form (not post.log_prob, Woodbury's)
            log_prob = missing_log_prob(Xs, observed, LGParams(mu, W, psi), post)
            out.append((log_prob, post.z_mean, post.z_cov, post.pattern, observed))
    return out


# -- E-step -------------------------------------------------------------------------------


def e_step(params: MPPCAParams, state: MPPCAState, config: MPPCAConfig, X: np.ndarray):
    """(MPPCAStats, total log-likelihood) of one chunk X : (n, D), NaN = missing, in
    coordinates shifted by params.shift (the state's shift, see `init` and `m_step`)."""
    moments = _all_moments(X, params)
    log_joint = np.column_stack([m[0] for m in moments]) + np.log(params.weights)
    log_resp, log_norm = log_normalize(log_joint)
    resp = np.exp(log_resp)
    Xs = (X - params.shift.astype(X.dtype)).astype(np.float64)
    missing = np.isnan(Xs)
    X0 = np.where(missing, 0.0, Xs) if missing.any() else Xs
    row_sq = np.einsum("nd,nd->n", X0, X0)
    K, D, M = params.W.shape
    szz = np.empty((K, M + 1, M + 1))
    sxz = np.empty((K, D, M + 1))
    sxx = np.empty(K)
    for k, (_, z_mean, z_cov, pattern, observed) in enumerate(moments):
        W_bar = np.column_stack([params.W[k], params.means[k] - params.shift])
        szz[k], sxz[k], sxx[k] = component_stats(
            X0, row_sq, resp[:, k], z_mean, z_cov, pattern,
            None if observed is None else ~observed, W_bar, float(params.noise_variance[k]))
    stats = MPPCAStats(float(len(X)), resp.sum(axis=0), szz, sxz, sxx)
    return stats, float(log_norm.sum())


def component_stats(X0, row_sq, r, z_mean, z_cov, pattern, missing, W_bar, sigma2):
    """(S_zz (M+1, M+1), S_xz (D, M+1), s_xx) of one component (module docstring).

    X0 : (n, D) shifted rows with missing entries set to 0; row_sq : (n,) ||x_o||²;
    r : (n,) responsibilities; z_mean : (n, M) E[z | x_o]; z_cov : (U, M, M) Cov[z | x_o]
    per pattern, pattern : (n,) each row's; missing : (n, D) bool or None; W_bar : (D, M+1)
    the current [W μ] (shifted); sigma2 : the current σ².
    """
    n, M = z_mean.shape
    Ez = np.column_stack([z_mean, np.ones(n)])  # E[z̄] : (n, M+1)
    rEz = r[:, None] * Ez
    szz = Ez.T @ rEz  # Σ r E[z̄] E[z̄]^T
    pattern_weight = np.bincount(pattern, weights=r, minlength=len(z_cov))
    szz[:M, :M] += np.einsum("u,uij->ij", pattern_weight, z_cov)  # + Σ r Cov[z]
    sxz = X0.T @ rEz
    sxx = float(r @ row_sq)
    if missing is not None and missing.any():
        # E[z̄ z̄^T] per row, weighted by r, then G_d = Σ_{n: d missing} r_n E[z̄ z̄^T]_n
        Ezz = Ez[:, :, None] * rEz[:, None, :]
        Ezz[:, :M, :M] += r[:, None, None] * z_cov[pattern]
        G = (missing.T.astype(np.float64) @ Ezz.reshape(n, -1)).reshape(-1, M + 1, M + 1)
        WG = np.einsum("dj,dji->di", W_bar, G)  # w̄_d G_d : (D, M+1)
        sxz += WG
        sxx += sigma2 * float(r @ missing.sum(axis=1)) + float(np.einsum("di,di->", WG, W_bar))
    return szz, sxz, sxx


# -- M-step -------------------------------------------------------------------------------


def m_step(stats: MPPCAStats, params: MPPCAParams, state: MPPCAState, config: MPPCAConfig):
    """(θ, state, StepInfo): maximize the expected complete-data log-likelihood (module
    docstring) for statistics accumulated around state.shift.

    σ_k² is floored at min_noise_variance · feature_variance (the constrained maximum, so EM
    stays monotone). A component with N_k < 1 (empty) is re-seeded by splitting the heaviest
    one along its leading principal axis; the StepInfo names it.
    """
    K, D, M1 = stats.sxz.shape
    eps = 10 * np.finfo(np.float64).eps
    nk = stats.nk + eps
    # W̄ = S_xz S_zz^{-1}: solve S_zz W̄^T = S_xz^T with S_zz = L L^T, all components at once
    L = cholesky(stats.szz + eps * np.eye(M1), what="latent second moment")
    W_bar = np.swapaxes(np.linalg.solve(np.swapaxes(L, 1, 2),
                                        solve_lower(L, np.swapaxes(stats.sxz, 1, 2))), 1, 2)
    residual = stats.sxx - np.einsum("kdj,kdj->k", W_bar, stats.sxz)
    sigma2 = np.maximum(residual / (nk * D),
                        config.min_noise_variance * state.feature_variance)
    # parameter expansion (PX-EM, Liu, Rubin & Wu 1998): maximize also over the prior
    # z ~ N(α, Σ_z), α = Σ r E[z] / N_k, Σ_z = Σ r E[z z^T] / N_k - α α^T, then map back to
    # z ~ N(0, I): μ ← μ + W α, W ← W chol(Σ_z). Same E-step statistics, still monotone,
    # and the part of μ inside span(W) no longer crawls when σ² is small.
    alpha = stats.szz[:, :-1, -1] / nk[:, None]  # (K, M)
    cov_z = stats.szz[:, :-1, :-1] / nk[:, None, None] - alpha[:, :, None] * alpha[:, None, :]
    cov_z[:, np.arange(M1 - 1), np.arange(M1 - 1)] += eps
    W = W_bar[:, :, :-1] @ cholesky(cov_z, what="latent covariance")
    means = W_bar[:, :, -1] + np.einsum("kdm,km->kd", W_bar[:, :, :-1], alpha) + state.shift
    weights = nk / stats.n
    empty = np.flatnonzero(stats.nk < 1.0)
    info = em.NOTHING
    if empty.size and empty.size < K:
        weights, means, W, sigma2, info = _reseed(empty, weights, means, W, sigma2)
    return MPPCAParams(weights / weights.sum(), means, W, sigma2, state.shift), state, info


def _reseed(empty, weights, means, W, sigma2):
    """Split the heaviest live component in two, μ_j ± w_j (its longest loading column).
    Returns the new (weights, means, W, sigma2) and the StepInfo that says so."""
    weights, means, W, sigma2 = weights.copy(), means.copy(), W.copy(), sigma2.copy()
    live = np.setdiff1d(np.arange(len(weights)), empty)
    messages = []
    for k in empty:
        j = live[np.argmax(weights[live])]
        axis = W[j][:, np.argmax(np.sum(W[j] ** 2, axis=0))] if W.shape[2] else 0.0
        messages.append(f"component {k} of the mixture of PPCA was empty; re-seeded by "
                        f"splitting component {j}.")
        means[k], means[j] = means[j] + axis, means[j] - axis
        W[k], sigma2[k] = W[j], sigma2[j]
        weights[k] = weights[j] = weights[j] / 2
    info = em.StepInfo(tuple(int(k) for k in empty), " ".join(messages))
    return weights, means, W, sigma2, info


# -- initialization -----------------------------------------------------------------------


def init(X, rng, config: MPPCAConfig, restart: int):
    """(θ, MPPCAState) from the init sample X : (n, D) (NaN = missing): the clustering of
    `init_params` (NaN filled by column means), then a closed-form PPCA per cluster. The
    state's shift is the filled sample's mean; its feature variance scales the noise floor."""
    feature_variance = noise_scale(X)
    X = fill_missing_with_means(np.asarray(X, dtype=np.float64))
    resp = initial_responsibilities(X, config.n_components, config.init_params, rng)
    params = init_params(X, resp, config.n_latent, X.mean(axis=0),
                         config.min_noise_variance * feature_variance)
    return params, MPPCAState(params.shift, feature_variance)


def noise_scale(X) -> float:
    """The scale of the noise floor: mean_d var(x_d) of X : (n, D) (NaN = missing), but at
    least the round-off of centring X in its dtype, eps · mean x², and 1 for all-zero X.
    Constant data (every row the same) have no variance, and a floor of 0 would let σ_k²
    reach 0 (log N = +inf, then NaN); so min_noise_variance acts from the first iteration."""
    dtype = np.asarray(X).dtype
    dtype = dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)
    X = np.asarray(X, dtype=np.float64)
    seen = ~np.isnan(X)
    columns = X[:, seen.any(axis=0)]  # a column missing in every sampled row has no variance
    variance = float(np.nanvar(columns, axis=0).mean()) if columns.size else 0.0
    magnitude = float(np.square(X[seen]).mean()) if seen.any() else 0.0
    scale = max(variance, float(np.finfo(dtype).eps) * magnitude)
    return scale if scale > 0 else 1.0


def init_params(X, resp, n_latent: int, shift, min_noise_variance: float) -> MPPCAParams:
    """θ from initial responsibilities resp : (n, K) over complete rows X : (n, D): each
    component is the closed-form PPCA fit of its weighted scatter (Tipping & Bishop):
    σ² = mean of the discarded eigenvalues, W = U_M (Λ_M - σ² I)^{1/2}. The top M
    eigenpairs come from the D x D scatter (a randomized SVD of √r (x - μ) when D > 512)."""
    n, D = X.shape
    K = resp.shape[1]
    nk = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = (resp.T @ X) / nk[:, None]
    W = np.zeros((K, D, n_latent))
    sigma2 = np.empty(K)
    for k in range(K):
        Y = np.sqrt(resp[:, k] / nk[k])[:, None] * (X - means[k])  # Y^T Y = S_k
        total = float(np.sum(Y * Y))
        if D <= 512:  # the D x D scatter and its top eigenpairs
            lam_all, vecs = np.linalg.eigh(Y.T @ Y)
            s = np.sqrt(np.maximum(lam_all[::-1][:n_latent], 0.0))
            Vt = vecs[:, ::-1][:, :n_latent].T
        else:
            _, s, Vt = randomized_svd(Y, n_latent, n_iter=6, random_state=0)
        lam = np.zeros(n_latent)
        lam[:len(s)] = s**2
        sigma2[k] = max((total - lam.sum()) / (D - n_latent), min_noise_variance)
        W[k, :, :len(s)] = Vt.T * np.sqrt(np.maximum(lam[:len(s)] - sigma2[k], 0.0))
    return MPPCAParams(nk / n, means, W, sigma2, np.asarray(shift, dtype=np.float64))


def n_parameters(n_components: int, n_features: int, n_latent: int) -> int:
    """K - 1 weights + K (D means + D M - M (M - 1)/2 loadings (up to rotation) + 1 σ²)."""
    K, D, M = n_components, n_features, n_latent
    return K - 1 + K * (D + D * M - M * (M - 1) // 2 + 1)


#: the mixture of PPCA's EM family: exact EM on log p(X | θ)
MPPCA_FAMILY = em.EMFamily(
    init=init, e_step=e_step, m_step=m_step, objective=em.EXACT,
    remedy="increase min_noise_variance, use fewer components or latent dimensions, or fit "
           "in float64")
