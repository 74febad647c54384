"""Probabilistic PCA (Tipping & Bishop 1999).

    z ~ N(0, I_M),   x | z ~ N(W z + μ, σ² I),   p(x) = N(μ, W W^T + σ² I)

Maximum likelihood in closed form, from the eigendecomposition S = U Λ U^T of the sample
covariance S = (1/N) Σ (x - x̄)(x - x̄)^T:

    μ = x̄,   σ² = (1 / (D - M)) Σ_{i > M} λ_i,   W = U_M (Λ_M - σ² I)^{1/2}

(unique up to a rotation W R; we take R = I with the sign convention of PCA). The same
optimum is reached by EM (`solver="em"`), which also handles missing values exactly, and the
σ² -> 0 limit of EM (`solver="em_pca"`, Roweis 1998) finds the principal subspace by
alternating projections, O(D² M) per iteration on the covariance:

    E-step  Z = (W^T W)^{-1} W^T X_c^T        M-step  W = X_c^T Z^T (Z Z^T)^{-1}

Every solver runs on the EM engine as a family of its own, so history, callbacks, the
max_time budget, the progress bar, n_init and warm starts apply to all of them:
- `CLOSED_FORM` (solver "closed_form", and "auto" on complete data in memory): the E-step
  gathers the data's moments (`MomentStats`), the M-step is the ML solution above. From
  init_params="pca" (already the solution) it converges at iteration 2.
- `EM_PCA`: the σ² -> 0 EM on the subspace iterate kept in the state (`LGState.basis`);
  each M-step's parameters are the ML PPCA restricted to the new subspace, and the
  objective is -1/2 the mean squared reconstruction error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, eigh, qr

from .. import em
from .._validation import Options
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model, register_record
from . import _lg_em as lg
from ._lg_base import (
    LG_EM,
    LinearGaussianModel,
    MomentSource,
    data_moments,
    flip_signs,
    floored,
    noise_floor,
    params_from_covariance,
)
from ._lg_base import init as lg_init

SOLVERS = ("auto", "closed_form", "em", "em_pca")
#: solvers that need complete data in memory (one Moments record)
MOMENT_SOLVERS = ("closed_form", "em_pca")


@register_record
@dataclass(frozen=True)
class MomentStats(em.SufficientStats):
    """The data's moments about the state's shift: n rows, sum_x = Σ (x - shift) : (D,),
    scatter = Σ (x - shift)(x - shift)^T : (D, D)."""

    additive = ("n", "sum_x", "scatter")
    n: float
    sum_x: np.ndarray
    scatter: np.ndarray


def moment_stats(mom: lg.Moments, shift: np.ndarray) -> MomentStats:
    """MomentStats of Moments (centred at their mean x̄) re-centred at shift : (D,):
    Σ (x - shift)(x - shift)^T = scatter + n d d^T, d = x̄ - shift."""
    d = mom.shift - shift
    return MomentStats(float(mom.n), mom.n * d, mom.scatter + mom.n * np.outer(d, d))


def mean_and_covariance(stats: MomentStats, shift: np.ndarray):
    """(x̄ : (D,), S : (D, D)) the ML mean and covariance from MomentStats about shift."""
    m = stats.sum_x / stats.n
    return shift + m, stats.scatter / stats.n - np.outer(m, m)


def _need_moments(chunk) -> None:
    if not isinstance(chunk, lg.Moments):  # the boundary (PPCA._source) refuses this
        raise TypeError("this PPCA solver runs on the moments of complete in-memory data.")


# -- the closed form ----------------------------------------------------------------------


def closed_form_e_step(params, state, config, chunk):
    """(MomentStats, total log-likelihood) of Moments; rows (solver "auto" on data with
    NaN, a stream, partial_fit) take EM's E-step instead."""
    if not isinstance(chunk, lg.Moments):
        return lg.e_step(params, state, config, chunk)
    return moment_stats(chunk, state.shift), lg.moments_log_likelihood(params, chunk)


def closed_form_m_step(stats, params, state, config):
    """The ML PPCA of the moments (Tipping & Bishop's closed form); EM's M-step for the
    statistics of rows."""
    if isinstance(stats, lg.LGStats):
        return lg.m_step(stats, params, state, config)
    mean, S = mean_and_covariance(stats, state.shift)
    params = params_from_covariance(mean, S, config, state.psi_floor)
    return params, lg.plain_state(state), em.NOTHING


CLOSED_FORM = em.EMFamily(lg_init, closed_form_e_step, closed_form_m_step,
                          objective=em.EXACT, remedy=lg.REMEDY)


# -- the σ² -> 0 EM -----------------------------------------------------------------------


def ppca_from_subspace(S: np.ndarray, basis: np.ndarray):
    """ML PPCA restricted to span(basis : (D, M)): eigen-rotate the projected covariance,
    σ² = mean of the variance left out, W = U (Λ - σ² I)^½. Returns (W, σ²)."""
    Q = qr(basis, mode="economic")[0]
    values, vectors = eigh(Q.T @ S @ Q)
    values, U = values[::-1], Q @ vectors[:, ::-1]
    D, M = basis.shape
    sigma2 = (np.trace(S) - values.sum()) / (D - M)
    U = flip_signs(U.T).T
    return U * np.sqrt(np.maximum(values - sigma2, 0.0)), sigma2


def _projection(S: np.ndarray, basis: np.ndarray):
    """The E-step's projection A = (W^T W)^{-1} W^T : (M, D) of basis W : (D, M), and
    S A^T : (D, M)."""
    A = cho_solve(cho_factor(basis.T @ basis), basis.T)
    return A, S @ A.T


def _basis(params, state) -> np.ndarray:
    """The subspace iterate : (D, M): the state's, or the span of params.W when the state
    has none (a warm start from another solver)."""
    return params.W if state.basis is None else state.basis


def em_pca_init(X, rng, config, restart):
    """A random subspace (N(0, 1) basis : (D, M)) and the ML PPCA on it."""
    shift, S = data_moments(X)
    floor = noise_floor(S, True)
    basis = rng.standard_normal((S.shape[0], config.n_components))
    W, sigma2 = ppca_from_subspace(S, basis)
    psi = floored(np.full(len(shift), sigma2), floor)
    return lg.LGParams(shift, W, psi), lg.LGState(shift, floor, basis)


def em_pca_e_step(params, state, config, chunk):
    """(MomentStats, n times -1/2 the mean squared reconstruction error of the projection
    on span(state.basis)): -1/2 tr((I - P) S (I - P)) = -1/2 ||(I - P) L||_F², with P the
    orthogonal projection on the span (Q Q^T, Q an orthonormal basis of it) and L L^T = S
    (`Moments.covariance_root`). Not tr S - tr(P S): that difference of two large traces
    is round-off (~eps tr S) when the span holds nearly all the variance, and EM's
    history then rose and fell at that level (3 points of scale 1e5 in 2 components)."""
    _need_moments(chunk)
    L = chunk.covariance_root
    Q = qr(_basis(params, state), mode="economic")[0]  # (D, M) orthonormal
    residual = L - Q @ (Q.T @ L)
    objective = -0.5 * float(np.sum(residual * residual))
    return moment_stats(chunk, state.shift), chunk.n * objective


#: round-off of the reconstruction error, in units of eps tr S per row (`em_pca_m_step`)
EM_PCA_ROUND_OFF = 16.0


def em_pca_m_step(stats, params, state, config):
    """W_new = S A^T (A S A^T)^{-1}; the parameters are the ML PPCA on span(W_new), the
    state keeps W_new.

    The step declares as its slack (`em.StepInfo`) the round-off of the objective it is
    judged by: the basis and its projection are known to ~eps relative to the data, so the
    reconstruction error after the step is known to ~eps tr S per row. When the span holds
    all the variance (a residual of 3e70 beside tr S = 7e99: the fuzz suite's constant
    column at 4e50) the iterations only move at that level, up and down, and are not a
    failure of EM."""
    mean, S = mean_and_covariance(stats, state.shift)
    A, SAt = _projection(S, _basis(params, state))
    try:
        basis = cho_solve(cho_factor(A @ SAt), SAt.T).T
    except LinAlgError:
        # A S A^T singular: the data has fewer than M directions of variance inside the
        # current subspace (rank-deficient S). span(S A^T) is still the update; take an
        # orthonormal basis of it, completed by arbitrary orthonormal directions (pivoted
        # QR keeps the range first), so the iterate keeps M independent columns.
        basis = qr(SAt, mode="economic", pivoting=True)[0]
    W, sigma2 = ppca_from_subspace(S, basis)
    psi = floored(np.full(len(mean), sigma2), state.psi_floor)
    slack = EM_PCA_ROUND_OFF * np.finfo(np.float64).eps * float(np.trace(S)) * stats.n
    return (lg.LGParams(mean, W, psi), lg.LGState(state.shift, state.psi_floor, basis),
            em.StepInfo(slack=slack))


EM_PCA = em.EMFamily(em_pca_init, em_pca_e_step, em_pca_m_step, objective=em.EXACT,
                     remedy="use fewer components, or fit in float64",
                     label="negative reconstruction error")

FAMILIES = {"auto": CLOSED_FORM, "closed_form": CLOSED_FORM, "em": LG_EM, "em_pca": EM_PCA}


@register_model
class PPCA(LinearGaussianModel):
    """Probabilistic PCA: dimensionality reduction with a density, missing values and
    imputation.

    Parameters
    ----------
    n_components : int, latent dimension M (1 <= M < min(n_features, n_samples)).
    solver : {"auto", "closed_form", "em", "em_pca"}.
        "closed_form" the ML solution from the eigendecomposition of S (complete data);
        "em" EM on the shared engine (complete, streamed, or with NaN);
        "em_pca" the σ² -> 0 EM for the principal subspace from a random start, each
        iterate scaled to the ML PPCA on its subspace (complete data); `history_` then
        holds -1/2 the mean squared reconstruction error per iteration, its objective;
        "auto" closed form for complete in-memory data, else EM.
        All run on the EM engine: history_, callbacks, max_time, verbose, n_init and
        warm_start apply to each. "closed_form" and "em_pca" refuse partial_fit.
    init_params : {"pca", "random"}, the start of "em" and "closed_form": the closed form
        on the (mean-filled) data (the closed form then converges at iteration 2), or
        random loadings.
    tol, max_iter : convergence of the iterations (change of the mean objective).
    random_state : seeds "em_pca"'s random start and init_params="random".
    n_init, warm_start, verbose, max_time, callbacks, chunk_size, learning_decay,
    learning_offset : the EM engine's options (see `latentkit.em`).

    Constant columns are allowed (σ² is shared, so it stays positive); all-missing columns
    are an error. The noise variance is floored at NOISE_FLOOR = 1e-6 times the mean feature
    variance.

    Attributes
    ----------
    components_ (M, D) = W^T, mean_ (D,), noise_variance_ σ² (float), n_components_,
    converged_, n_iter_, history_ (mean objective per iteration, at the parameters before
    that iteration's M-step), lower_bound_ (its last entry, or that of best_iteration_ when
    EM returned an earlier, better iterate), em_state_ (LGState).
    """

    _isotropic: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {"solver": [Options(*SOLVERS)]}

    def __init__(self, n_components=2, *, solver="auto", init_params="pca", tol=1e-6,
                 max_iter=1000, n_init=1, random_state=None, warm_start=False, verbose=None,
                 max_time=None, callbacks=None, chunk_size=None, learning_decay=0.7,
                 learning_offset=10.0):
        self._store_init_args(locals())

    @property
    def em_family(self) -> em.EMFamily:
        """The family the solver runs (CLOSED_FORM, LG_EM or EM_PCA)."""
        return FAMILIES[self.solver]

    def _source(self, X, *, reset):
        """The moments of complete in-memory data for "closed_form" and "em_pca"; they
        refuse a stream and NaN."""
        moments_only = self.solver in MOMENT_SOLVERS
        if moments_only and em.is_streaming(X):
            raise InvalidParameterError(f"PPCA: solver={self.solver!r} needs the data in "
                                        "memory; use solver='em' to stream it.")
        source = super()._source(X, reset=reset)
        if moments_only and not isinstance(source, MomentSource):
            raise InvalidInputError(f"PPCA: solver={self.solver!r} needs complete data, and X "
                                    "has missing values (NaN). Use solver='em' (or 'auto').")
        return source

    def partial_fit(self, X, y=None):
        """One step of online EM (solvers "auto" and "em"); returns self."""
        self._validate_params()
        if self.solver in MOMENT_SOLVERS:
            raise InvalidParameterError(
                f"PPCA: solver={self.solver!r} cannot fit online (partial_fit); use "
                "solver='em' or 'auto'.")
        return super().partial_fit(X, y)
