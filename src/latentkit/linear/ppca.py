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
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigh, qr

from .. import em
from .._validation import Options, as_generator
from ..io import register_model
from . import _lg_em as lg
from ._lg_base import LinearGaussianModel, MomentSource, flip_signs

SOLVERS = ("auto", "closed_form", "em", "em_pca")


def em_pca(S: np.ndarray, W: np.ndarray, *, tol: float, max_iter: int):
    """The σ² -> 0 EM algorithm for PCA on the covariance S : (D, D) from W : (D, M).

    With A = (W^T W)^{-1} W^T (the E-step's projection), the M-step is
    W = S A^T (A S A^T)^{-1}. The objective, -1/2 the mean squared reconstruction error
    -1/2 (tr S - tr(W A S)), never decreases. Returns (W, history, converged).
    """
    history, trace = [], float(np.trace(S))
    for _ in range(max_iter):
        A = cho_solve(cho_factor(W.T @ W), W.T)  # (M, D)
        SAt = S @ A.T  # (D, M)
        history.append(-0.5 * (trace - float(np.sum(W * SAt))))  # tr(W A S) = Σ W ⊙ S A^T
        W = cho_solve(cho_factor(A @ SAt), SAt.T).T
        if len(history) > 1 and abs(history[-1] - history[-2]) < tol:
            return W, history, True
    return W, history, False


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
        "em_pca" the σ² -> 0 EM for the principal subspace from a random start, then the
        ML σ² and scaling on that subspace (complete data); `history_` then holds
        -1/2 the mean squared reconstruction error per iteration, its objective;
        "auto" closed form for complete in-memory data, else EM.
    init_params : {"pca", "random"}, EM's start: the closed form on the (mean-filled)
        data, or random loadings.
    tol, max_iter : convergence of the iterative solvers (change of the mean objective).
    random_state : seeds "em_pca"'s random start.
    n_init, warm_start, verbose, max_time, callbacks, chunk_size, learning_decay,
    learning_offset : the EM engine's options (see `latentkit.em`).

    Constant columns are allowed (σ² is shared, so it stays positive); all-missing columns
    are an error. The noise variance is floored at NOISE_FLOOR = 1e-6 times the mean feature
    variance.

    Attributes
    ----------
    components_ (M, D) = W^T, mean_ (D,), noise_variance_ σ² (float), n_components_,
    converged_, n_iter_, history_ (mean log-likelihood per iteration; the closed form
    records the one value at its solution), lower_bound_ (its last entry).
    """

    _isotropic: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict] = {"solver": [Options(*SOLVERS)]}

    def __init__(self, n_components=2, *, solver="auto", init_params="pca", tol=1e-6,
                 max_iter=1000, n_init=1, random_state=None, warm_start=False, verbose=None,
                 max_time=None, callbacks=None, chunk_size=None, learning_decay=0.7,
                 learning_offset=10.0):
        self._store_init_args(locals())

    def fit(self, X, y=None):
        """Fit by the chosen solver; X : (n_samples, n_features), NaN = missing (EM)."""
        self._validate_params()
        if self.solver == "em" or em.is_streaming(X):
            if self.solver in ("closed_form", "em_pca"):
                raise ValueError(f"PPCA: solver={self.solver!r} needs the data in memory; "
                                 "use solver='em' to stream it.")
            return super().fit(X)
        warm = self.warm_start and hasattr(self, "converged_")
        source = self._source(X, reset=not warm)
        if not isinstance(source, MomentSource):  # X has NaN
            if self.solver != "auto":
                raise ValueError(f"PPCA: solver={self.solver!r} needs complete data, and X "
                                 "has missing values (NaN). Use solver='em' (or 'auto').")
            return super().fit(X)
        self._check_data(source.n_samples, source.n_features)
        mom = source.moments
        params = self._params_from_covariance(mom.shift, mom.covariance)
        history, converged, n_iter = None, True, 0
        if self.solver == "em_pca":
            rng = as_generator(self.random_state)
            W0 = rng.standard_normal(params.W.shape)
            W, history, converged = em_pca(mom.covariance, W0, tol=self.tol,
                                           max_iter=self.max_iter)
            W, sigma2 = ppca_from_subspace(mom.covariance, W)
            n_iter = len(history)
            params = params._replace(W=W, psi=np.maximum(np.full_like(params.psi, sigma2),
                                                         params.psi_floor))
        self._store_params(params, source.dtype)
        ll = lg.e_step_moments(params, mom)[1] / mom.n
        self.converged_, self.n_iter_ = converged, n_iter
        self.history_ = np.asarray(history if history is not None else [ll])
        self.lower_bound_ = self.history_[-1]
        self.stop_reason_ = "converged" if converged else "max_iter"
        return self
