"""Factor analysis.

    z ~ N(0, I_M),   x | z ~ N(W z + μ, Ψ),   Ψ = diag(ψ_1 ... ψ_D)

Two solvers on the EM engine, both monotone in the exact log-likelihood:
- "svd" (scikit-learn's algorithm, `_fa_svd`): for the current Ψ the best W in closed form
  from the leading eigenvectors of Ψ^{-1/2} S Ψ^{-1/2} (`svd_method` "lapack" or
  "randomized"), then ψ_d = S_dd - Σ_m W_dm²; complete data in memory, O(D³) (or
  O(D² M) randomized) per iteration on the sample covariance S computed once;
- "em" (`_lg_em`): a regression of x on (z, 1) with the posterior moments of z; it also
  takes data with NaN, streams and partial_fit.
"auto" runs "svd" on complete in-memory data and "em" otherwise. Each ψ_d is floored at
NOISE_FLOOR · var(x_d) (NOISE_FLOOR = 1e-6): a Heywood case (ψ_d -> 0, a feature explained
entirely by the factors) stops at the floor instead of making the likelihood unbounded.
FA is equivariant under an affine map of each feature (μ -> (μ - x̄) / s, W / s, ψ / s²),
so "em" (and "auto" on rows) starts and iterates on the standardized features
(x_d - x̄_d) / s_d (x̄_d, s_d = the data's mean and standard deviation) and maps the
parameters back, rounding the mean once, where it is stored (`_fa_svd.scaled_m_step`):
features whose scales differ by many orders of magnitude then neither swamp each other's
loadings in round-off nor leave a fitted model that cannot score (or sample in the scale of)
its own training data, and a column whose spread is a few ulps of its value keeps EM
monotone.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .. import em
from .._validation import InstanceOf, Interval, Options
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model
from ._fa_svd import FA_EM, FA_SVD, SVD_METHODS, FAConfig
from ._lg_base import LinearGaussianModel, MomentSource

ROTATIONS = (None, "varimax", "quartimax")
SOLVERS = ("auto", "svd", "em")
FAMILIES = {"auto": FA_SVD, "svd": FA_SVD, "em": FA_EM}


def ortho_rotation(W: np.ndarray, method: str = "varimax", *, tol: float = 1e-6,
                   max_iter: int = 100) -> np.ndarray:
    """The orthogonal rotation of loadings W : (D, M) that maximizes Kaiser's varimax (the
    variance of the squared loadings in each column) or quartimax (their fourth powers in
    all), by the SVD fixed point

        R <- U V^T,  U S V^T = svd(W^T G),  Λ = W R,
        G = Λ³ - Λ diag(Λ^T Λ) / D  (varimax),  G = Λ³  (quartimax)

    Returns the rotated loadings W R : (D, M); the likelihood is unchanged (W R R^T W^T =
    W W^T). R is invariant to a common scale of W (G is homogeneous of degree 3), so the
    iteration runs on W / max|W|: loadings of any magnitude rotate without overflow in
    the cubes (entries of W that are negligible next to the largest may then underflow in
    G, as they would not move the rotation anyway). Non-finite or all-zero W is returned
    unrotated.
    """
    D, M = W.shape
    scale = float(np.max(np.abs(W))) if W.size else 0.0
    if not np.isfinite(scale) or scale == 0.0:
        return W.copy()
    Wn = W / scale
    R = np.eye(M)
    objective = 0.0
    for _ in range(max_iter):
        L = Wn @ R
        G = L**3 - L * (np.sum(L**2, axis=0) / D) if method == "varimax" else L**3
        U, s, Vt = np.linalg.svd(Wn.T @ G)
        R = U @ Vt
        if objective != 0 and s.sum() < objective * (1 + tol):
            break
        objective = s.sum()
    return W @ R


def varimax(W: np.ndarray, *, tol: float = 1e-6, max_iter: int = 100) -> np.ndarray:
    """Kaiser's varimax rotation of W : (D, M) (`ortho_rotation`)."""
    return ortho_rotation(W, "varimax", tol=tol, max_iter=max_iter)


@register_model
class FactorAnalysis(LinearGaussianModel):
    """Factor analysis: correlated features explained by a few latent factors plus
    independent per-feature noise; missing values, posterior, imputation.

    Parameters
    ----------
    n_components : int or None, number of factors M (0 <= M <= n_features, M < n_samples);
        None: M = n_features (scikit-learn's default).
    rotation : {None, "varimax", "quartimax"}, an orthogonal rotation of the fitted
        loadings for interpretability (the density is unchanged).
    solver : {"auto", "svd", "em"}, see the module docstring.
    svd_method : {"lapack", "randomized"}, the eigensolver of the SVD iteration: LAPACK's
        (exact), or a randomized range finder with `iterated_power` power iterations per
        FA iteration, warm-started from the previous basis (for large D, M << D).
    iterated_power : int, the power iterations of svd_method="randomized" (only).
    noise_variance_init : (n_features,) positive array or None: the start's ψ, with W its
        best loadings (then init_params must be "pca"); None: init_params decides.
    init_params : {"pca", "random"}, the start: closed-form PPCA on the (mean-filled) data,
        or random (EM: random loadings with ψ = the feature variances; SVD iteration: ψ =
        each variance times U(0.1, 1)).
    tol : float, convergence threshold on the change of the mean log-likelihood (per row,
        where scikit-learn's tol is on the total).
    max_iter : int, iterations.
    n_init, random_state, warm_start, verbose, max_time, callbacks, chunk_size,
    learning_decay, learning_offset : the EM engine's options (see `latentkit.em`).

    Constant columns are an error (ψ_d would be 0); so are all-missing columns.

    Attributes
    ----------
    components_ (M, D) = W^T, mean_ (D,), noise_variance_ (D,) ψ, n_components_,
    converged_, n_iter_, history_ (mean log-likelihood per iteration, at the parameters
    before that iteration's update), loglike_ (scikit-learn's name: the total
    log-likelihood per iteration, history_ times n_samples, followed by that of the fitted
    parameters, so loglike_[-1] = score_samples(X).sum()), lower_bound_,
    em_state_ (LGState: the statistics' centre, the noise floor, the randomized basis).
    get_covariance() W W^T + Ψ and get_precision() its inverse.
    """

    _isotropic: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 0, None), Options(None)],
        "rotation": [Options(*ROTATIONS)],
        "solver": [Options(*SOLVERS)],
        "svd_method": [Options(*SVD_METHODS)],
        "iterated_power": [Interval(int, 0, None)],
        "noise_variance_init": [InstanceOf(np.ndarray, list, tuple, type(None),
                                           description="an array of n_features variances "
                                           "or None")],
    }

    def __init__(self, n_components=None, *, rotation=None, solver="auto",
                 svd_method="lapack", iterated_power=3, noise_variance_init=None,
                 init_params="pca", tol=1e-6, max_iter=1000, n_init=1, random_state=None,
                 warm_start=False, verbose=None, max_time=None, callbacks=None,
                 chunk_size=None, learning_decay=0.7, learning_offset=10.0):
        self._store_init_args(locals())

    @property
    def em_family(self) -> em.EMFamily:
        """The family the solver runs (FA_SVD for "auto" and "svd", FA_EM for "em")."""
        return FAMILIES[self.solver]

    # -- validation -----------------------------------------------------------------------

    def _n_factors(self, n_features: int) -> int:
        return n_features if self.n_components is None else self.n_components

    def _em_config(self, n_samples, n_features) -> FAConfig:
        M = self._n_factors(n_features)
        if M > n_features:
            raise InvalidParameterError(
                f"FactorAnalysis: n_components={M} must be <= n_features={n_features}: "
                "more factors than features are not identifiable. Use fewer components.")
        if n_samples is not None and 0 < M and M >= n_samples:
            raise InvalidInputError(
                f"FactorAnalysis: n_components={M} must be < n_samples={n_samples}: the "
                "sample covariance has rank < n_samples, so the noise variance would be 0. "
                "Use fewer components or more data.")
        return FAConfig(M, False, self.init_params, self.solver, self.svd_method,
                        self.iterated_power, self._noise_init(n_features))

    def _noise_init(self, n_features: int):
        """noise_variance_init as a (D,) float64 array of positive variances, or None."""
        if self.noise_variance_init is None:
            return None
        psi = np.asarray(self.noise_variance_init, dtype=np.float64)
        if psi.shape != (n_features,):
            raise InvalidInputError(
                f"FactorAnalysis: noise_variance_init has shape {psi.shape}, but X has "
                f"n_features={n_features}: give one variance per feature.")
        if not (np.all(np.isfinite(psi)) and np.all(psi > 0)):
            raise InvalidParameterError("FactorAnalysis: noise_variance_init must be finite "
                                        "and positive.")
        if self.init_params != "pca":
            raise InvalidParameterError(
                "FactorAnalysis: noise_variance_init fixes the start, so init_params must be "
                f"'pca' (the default); got {self.init_params!r}.")
        return psi

    def _source(self, X, *, reset):
        """solver="svd" needs complete data in memory (the moments); it refuses a stream
        and NaN."""
        if self.solver == "svd" and em.is_streaming(X):
            raise InvalidParameterError("FactorAnalysis: solver='svd' needs the data in "
                                        "memory; use solver='em' to stream it.")
        source = super()._source(X, reset=reset)
        if self.solver == "svd" and not isinstance(source, MomentSource):
            raise InvalidInputError("FactorAnalysis: solver='svd' needs complete data, and X "
                                    "has missing values (NaN). Use solver='em' (or 'auto').")
        return source

    # -- fitting --------------------------------------------------------------------------

    def _finish_fit(self, result, config, source) -> None:
        """After EM's `fit`: loglike_ (the total log-likelihood per iteration, as
        scikit-learn, and one last E-pass at the fitted parameters for its final entry) and
        the rotation of the loadings."""
        final = em.e_pass(self.em_family, config, result.params, result.state, source)
        self.loglike_ = [float(v) * final.rows for v in self.history_] + [final.objective]
        if self.rotation is not None and self.n_components_ > 0:
            W = ortho_rotation(self.components_.T.astype(np.float64), self.rotation)
            self.components_ = np.ascontiguousarray(W.T).astype(self.components_.dtype)

    def partial_fit(self, X, y=None):
        """One step of online EM (solvers "auto" and "em"); returns self."""
        self._validate_params()
        if self.solver == "svd":
            raise InvalidParameterError("FactorAnalysis: solver='svd' cannot fit online "
                                        "(partial_fit); use solver='em' or 'auto'.")
        return super().partial_fit(X, y)
