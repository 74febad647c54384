"""Factor analysis.

    z ~ N(0, I_M),   x | z ~ N(W z + μ, Ψ),   Ψ = diag(ψ_1 ... ψ_D)

fitted by EM (the updates of `_lg_em`: a regression of x on (z, 1) with the posterior
moments of z). With complete data the E-step needs only the sample covariance S, computed
once, so an iteration costs O(D² M) whatever N. Each ψ_d is floored at
NOISE_FLOOR · var(x_d) (NOISE_FLOOR = 1e-6): a Heywood case (ψ_d -> 0, a feature explained
entirely by the factors) stops at the floor instead of making the likelihood unbounded.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .._validation import Options
from ..io import register_model
from ._lg_base import LG_EM, LinearGaussianModel

ROTATIONS = (None, "varimax")


def varimax(W: np.ndarray, *, tol: float = 1e-6, max_iter: int = 100) -> np.ndarray:
    """The orthogonal rotation of loadings W : (D, M) that maximizes the variance of the
    squared loadings in each column (Kaiser's varimax), by its SVD fixed point:

        R <- U V^T,  U S V^T = svd(W^T (Λ³ - Λ diag(Λ^T Λ) / D)),  Λ = W R

    Returns the rotated loadings W R : (D, M); the likelihood is unchanged (W R R^T W^T =
    W W^T).
    """
    D, M = W.shape
    R = np.eye(M)
    objective = 0.0
    for _ in range(max_iter):
        L = W @ R
        U, s, Vt = np.linalg.svd(W.T @ (L**3 - L * (np.sum(L**2, axis=0) / D)))
        R = U @ Vt
        if objective != 0 and s.sum() < objective * (1 + tol):
            break
        objective = s.sum()
    return W @ R


@register_model
class FactorAnalysis(LinearGaussianModel):
    """Factor analysis: correlated features explained by a few latent factors plus
    independent per-feature noise; missing values, posterior, imputation.

    Parameters
    ----------
    n_components : int, number of factors M (1 <= M < min(n_features, n_samples)).
    rotation : {None, "varimax"}, an orthogonal rotation of the fitted loadings for
        interpretability (the density is unchanged).
    init_params : {"pca", "random"}, EM's start: closed-form PPCA on the (mean-filled)
        data, or random loadings with ψ = the feature variances.
    tol : float, convergence threshold on the change of the mean log-likelihood.
    max_iter : int, EM iterations.
    n_init, random_state, warm_start, verbose, max_time, callbacks, chunk_size,
    learning_decay, learning_offset : the EM engine's options (see `latentkit.em`).

    Constant columns are an error (ψ_d would be 0); so are all-missing columns.

    Attributes
    ----------
    components_ (M, D) = W^T, mean_ (D,), noise_variance_ (D,) ψ, n_components_,
    converged_, n_iter_, history_ (mean log-likelihood per iteration), lower_bound_,
    em_state_ (LGState: the statistics' centre and the noise floor).
    """

    _isotropic: ClassVar[bool] = False
    em_family = LG_EM
    _parameter_constraints: ClassVar[dict] = {"rotation": [Options(*ROTATIONS)]}

    def __init__(self, n_components=2, *, rotation=None, init_params="pca", tol=1e-6,
                 max_iter=1000, n_init=1, random_state=None, warm_start=False, verbose=None,
                 max_time=None, callbacks=None, chunk_size=None, learning_decay=0.7,
                 learning_offset=10.0):
        self._store_init_args(locals())

    def fit(self, X, y=None):
        """Fit by EM; X : (n_samples, n_features), NaN = missing. Returns self."""
        super().fit(X)
        if self.rotation == "varimax":
            W = varimax(self.components_.T.astype(np.float64))
            self.components_ = np.ascontiguousarray(W.T).astype(self.components_.dtype)
        return self
