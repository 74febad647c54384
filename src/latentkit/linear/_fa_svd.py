"""Factor analysis by the SVD iteration (scikit-learn's algorithm; Barber, BRML 21.2).

    z ~ N(0, I_M),   x | z ~ N(W z + μ, Ψ),   Ψ = diag(ψ),   C = W W^T + Ψ

For a fixed Ψ the likelihood is maximized over W in closed form, from the eigenvalues
λ_1 >= ... >= λ_D and unit eigenvectors u_i of the scaled covariance S̃ = Ψ^{-1/2} S Ψ^{-1/2}:

    W(Ψ) = Ψ^{1/2} U_M (Λ_M - I)_+^{1/2}

and each iteration then sets ψ_d = max(S_dd - Σ_m W_dm², floor_d). That update is exactly
EM's M-step from (W(Ψ), Ψ): there W is stationary, S C^{-1} W = W, so EM keeps W and its
Ψ-update reduces to diag(S - W W^T); the profile likelihood max_W L(W, Ψ) therefore never
decreases (EM's guarantee, then the exact maximization over W). Per iteration O(D³) for the
eigendecomposition ("lapack"), or O(D² k) with k = min(D, M + 10) for "randomized": a
randomized range finder (Halko, Martinsson & Tropp 2011) for the leading eigenvectors of S̃,
warm-started from the previous iteration's basis (kept in the EM state) with
`iterated_power` power iterations each time, then Rayleigh-Ritz.

`fa_init`, `svd_e_step` and `svd_m_step` form the family `FA_SVD` on the EM engine (its
objective is the exact log-likelihood, from the data's moments in O(D² M)); rows (data with
NaN, a stream, partial_fit) take EM's steps (`_lg_em`) instead. `FA_EM` is EM with FA's
start (`noise_variance_init`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import eigh, qr

from .. import em
from . import _lg_em as lg
from ._lg_base import data_moments, floored, noise_floor, params_from_covariance, top_eigen
from ._lg_base import init as lg_init
from .ppca import MomentStats, mean_and_covariance, moment_stats

SVD_METHODS = ("lapack", "randomized")
#: the extra columns of the randomized basis (scikit-learn's n_oversamples)
OVERSAMPLES = 10


class FAConfig(NamedTuple):
    """The validated hyper-parameters of one FA fit: n_components M; isotropic (False:
    the `_lg_em` kernels' switch); init_params, "pca" or "random"; solver, "auto", "svd"
    or "em"; svd_method, "lapack" or "randomized"; iterated_power, the power iterations per
    randomized eigendecomposition; noise_init : (D,) the start's ψ, or None."""

    n_components: int
    isotropic: bool = False
    init_params: str = "pca"
    solver: str = "auto"
    svd_method: str = "lapack"
    iterated_power: int = 3
    noise_init: np.ndarray | None = None


# -- the kernels ----------------------------------------------------------------------------


def leading_scaled_eigen(S, psi, config: FAConfig, basis=None):
    """The M leading eigenpairs of S̃ = Ψ^{-1/2} S Ψ^{-1/2}: (values (M,) decreasing,
    vectors (D, M), the next basis (D, k) or None). S : (D, D); psi : (D,).

    "lapack": LAPACK's symmetric eigensolver. "randomized": 1 + `iterated_power` steps of
    subspace iteration Q <- qr(S̃ Q) from basis : (D, k) (the range finder's product and
    its power iterations, as scikit-learn's randomized_svd counts them; basis None: LAPACK
    this once, its leading k eigenvectors becoming the basis), then Rayleigh-Ritz on
    span(Q)."""
    M, D = config.n_components, S.shape[0]
    scale = 1.0 / np.sqrt(psi)
    S_tilde = S * np.outer(scale, scale)
    if M == 0:
        return np.zeros(0), np.zeros((D, 0)), None
    if config.svd_method == "lapack" or basis is None:
        k = min(D, M + OVERSAMPLES) if config.svd_method == "randomized" else M
        values, vectors = top_eigen(S_tilde, k)
        nxt = vectors.T if config.svd_method == "randomized" else None
        return values[:M], vectors[:M].T, nxt
    Q = basis
    for _ in range(config.iterated_power + 1):  # the range finder's product, then the powers
        Q = qr(S_tilde @ Q, mode="economic")[0]
    ritz_values, ritz_vectors = eigh(Q.T @ S_tilde @ Q)
    Q = Q @ ritz_vectors[:, ::-1]  # Ritz vectors, leading first
    return ritz_values[::-1][:M], Q[:, :M], Q


def factors_given_noise(S, psi, config: FAConfig, basis=None):
    """W(Ψ) = Ψ^{1/2} U_M (Λ_M - I)_+^{1/2} : (D, M), the loadings that maximize the
    likelihood for fixed psi : (D,), and the next randomized basis (or None). S : (D, D)."""
    values, vectors, basis = leading_scaled_eigen(S, psi, config, basis)
    W = np.sqrt(psi)[:, None] * vectors * np.sqrt(np.maximum(values - 1.0, 0.0))
    return W, basis


def random_basis(rng: np.random.Generator, D: int, M: int) -> np.ndarray:
    """An orthonormal Gaussian test basis : (D, min(D, M + OVERSAMPLES))."""
    return qr(rng.standard_normal((D, min(D, M + OVERSAMPLES))), mode="economic")[0]


# -- the family -----------------------------------------------------------------------------


def _start_noise(X, rng, config: FAConfig, S, floor, restart):
    """ψ's start : (D,) for the SVD iteration: noise_init, closed-form PPCA's diag(S - W W^T)
    ("pca"), or each feature's variance times U(0.1, 1) ("random")."""
    if config.noise_init is not None:
        return floored(np.asarray(config.noise_init, dtype=np.float64), floor)
    if config.init_params == "random":
        return floored(np.diag(S) * rng.uniform(0.1, 1.0, S.shape[0]), floor)
    return lg_init(X, rng, config, restart)[0].psi


def fa_init(X, rng, config: FAConfig, restart: int):
    """(LGParams, LGState) to start from Moments or rows X : (n, D).

    The SVD iteration (Moments, unless solver="em"): ψ from `_start_noise`, W = W(ψ). EM
    (rows, or solver="em"): closed-form PPCA or random loadings (`_lg_base.init`), or with
    noise_init ψ = noise_init and W = W(ψ) on the (mean-filled) covariance."""
    shift, S = data_moments(X)
    floor = noise_floor(S, False)
    svd = isinstance(X, lg.Moments) and config.solver != "em"
    if not svd and config.noise_init is None:
        if config.init_params != "pca":
            return lg_init(X, rng, config, restart)
        # closed-form PPCA on the standardized covariance, scaled back: on S itself the
        # eigenvectors' round-off (eps times the largest scale) swamps the loadings of
        # features many orders of magnitude smaller
        state = lg.LGState(shift, floor)
        s = column_scale(state)
        unit = params_from_covariance(shift / s, S / np.outer(s, s), config,
                                      floor / np.square(s))
        psi = np.maximum(unit.psi * np.square(s), floor)
        return lg.LGParams(shift, unit.W * s[:, None], floored(psi, floor)), state
    psi = _start_noise(X, rng, config, S, floor, restart)
    randomized = svd and config.svd_method == "randomized"
    basis = random_basis(rng, len(shift), config.n_components) if randomized else None
    W, basis = factors_given_noise(S, psi, config, basis)
    return lg.LGParams(shift, W, psi), lg.LGState(shift, floor, basis if svd else None)


# -- EM in standardized coordinates ---------------------------------------------------------


def column_scale(state) -> np.ndarray:
    """s : (D,) the per-feature scale FA's EM runs in: the data's standard deviations, read
    back from the noise floor (ψ_floor = NOISE_FLOOR · var(x_d)); 1 where that is 0."""
    s = np.sqrt(state.psi_floor / lg.NOISE_FLOOR)
    return np.where(np.isfinite(s) & (s > 0), s, 1.0)


def _unit_params(params, state, s):
    """θ in standardized coordinates u = (x - shift) / s: ((μ - shift) / s, W / s, ψ / s²)."""
    return lg.LGParams((params.mean - state.shift) / s, params.W / s[:, None],
                       params.psi / np.square(s))


def _unit_chunk(chunk, state, s):
    """Moments or rows : (n, D) in standardized coordinates u = (x - shift) / s (NaN kept)."""
    if isinstance(chunk, lg.Moments):
        unit = object.__new__(lg.Moments)
        unit.n, unit.shift = chunk.n, (chunk.shift - state.shift) / s
        unit.scatter = chunk.scatter / np.outer(s, s)
        return unit
    return (np.asarray(chunk, dtype=np.float64) - state.shift) / s


def _unit_state(state, s):
    """The state in standardized coordinates: centre 0, floor ψ_floor / s²."""
    return lg.LGState(np.zeros_like(state.shift), state.psi_floor / np.square(s))


def scaled_e_step(params, state, config, chunk):
    """`_lg_em.e_step` on u = (x - shift) / s (s = `column_scale`, shift the data mean): FA
    is equivariant under an affine map of each feature (μ -> (μ - shift) / s, W / s,
    ψ / s²), and the standardized problem keeps features whose scales differ by many orders
    of magnitude from swamping each other in the posterior's round-off. Centring first keeps
    every digit of the spread: x / s alone rounded a column at 1e41 ± 3e25 to multiples of 2
    where its spread is 1 (x - shift is exact there, by Sterbenz). The statistics stay in
    standardized units, about 0 (`scaled_m_step` reads them); the log-likelihood is converted
    back: log p(x) = log p(u) - Σ_{d observed} log s_d."""
    s = column_scale(state)
    unit = _unit_chunk(chunk, state, s)
    stats, ll = lg.e_step(_unit_params(params, state, s), _unit_state(state, s), config, unit)
    if isinstance(chunk, lg.Moments):
        observed = chunk.n * np.ones(len(s))
    else:
        observed = np.count_nonzero(~np.isnan(unit), axis=0)
    return stats, ll - float(observed @ np.log(s))


def scaled_m_step(stats, params, state, config):
    """EM's M-step on the standardized statistics of `scaled_e_step`, the mean rounded once,
    where it is stored:

        μ = fl(shift + s ⊙ μ'),   μ' : (D,) the joint solution of the normal equations (unit);
        W = `loadings_given_offset` at the offset the next E-step sees, (μ - shift) / s;
        ψ = `residual_variances` at that (W, μ), floored; returned as (μ, W s, ψ s²).

    Why: where a column's spread is a few ulps of its value (1e30 ± 3e14), its mean's
    rounding is the size of the spread. `_lg_em.m_step` on the unit statistics rounded the
    unit mean, and scaling it back rounded it again after W had been solved for it, so W no
    longer maximized Q at the mean the next E-step used: EM's log-likelihood fell by up to
    17 % per step. Rounded once, in original units, to the representable mean nearest the
    joint optimum, with W (and ψ as the residual) solved at exactly that mean, each step is
    monotone (the argument of `_lg_em.m_step`). FA only: ψ is per feature.
    Returns (LGParams, LGState without a basis, NOTHING)."""
    s = column_scale(state)
    mean = state.shift + lg.joint_offset(stats) * s  # the one rounding of μ
    offset = (mean - state.shift) / s  # as `_unit_params` forms it in the next E-step
    B = lg.loadings_given_offset(stats, offset)  # [W μ'] : (D, M+1), unit
    psi = np.maximum(lg.residual_variances(stats, B), state.psi_floor / np.square(s))
    params = lg.LGParams(mean, B[:, :-1] * s[:, None],
                         np.maximum(psi * np.square(s), state.psi_floor))
    return params, lg.plain_state(state), em.NOTHING


def svd_e_step(params, state, config, chunk):
    """(MomentStats about state.shift, total log-likelihood) of Moments, O(D² M); rows take
    EM's E-step."""
    if not isinstance(chunk, lg.Moments):
        return scaled_e_step(params, state, config, chunk)
    return moment_stats(chunk, state.shift), lg.moments_log_likelihood(params, chunk)


def svd_m_step(stats, params, state, config):
    """ψ = max(diag(S) - Σ_m W_dm², floor), then W = W(ψ) (module docstring); EM's M-step
    for the statistics of rows."""
    if not isinstance(stats, MomentStats):
        return scaled_m_step(stats, params, state, config)
    mean, S = mean_and_covariance(stats, state.shift)
    psi = np.maximum(np.diag(S) - np.einsum("dm,dm->d", params.W, params.W), state.psi_floor)
    W, basis = factors_given_noise(S, psi, config, state.basis)
    return (lg.LGParams(mean, W, psi), lg.LGState(state.shift, state.psi_floor, basis),
            em.NOTHING)


FA_SVD = em.EMFamily(fa_init, svd_e_step, svd_m_step, objective=em.EXACT, remedy=lg.REMEDY)
FA_EM = em.EMFamily(fa_init, scaled_e_step, scaled_m_step, objective=em.EXACT, remedy=lg.REMEDY)


__all__ = ["FAConfig", "FA_EM", "FA_SVD", "SVD_METHODS", "fa_init", "factors_given_noise",
           "leading_scaled_eigen", "scaled_e_step", "scaled_m_step", "svd_e_step",
           "svd_m_step"]
