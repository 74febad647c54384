"""Gaussian mixture model fitted by EM, with exact handling of missing values.

    z ~ Categorical(π),   x | z = k ~ N(μ_k, Σ_k),   p(x) = Σ_k π_k N(x; μ_k, Σ_k)

Names follow scikit-learn's GaussianMixture so users can switch by changing one import.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._linalg import SingularCovarianceError, cholesky
from .._validation import (
    InstanceOf,
    Interval,
    Options,
    as_generator,
    check_n_components,
    check_n_samples,
)
from ..exceptions import InvalidParameterError
from ..io import register_model
from . import _gaussian_em as gem
from . import _gaussian_kernels as gk
from ._base import MixtureModel
from ._covariance import COVARIANCE_TYPES, FULL, TIED, CovarianceType, covariance_type
from ._gaussian_missing import impute
from ._init import INIT_METHODS

ARRAY_OR_NONE = [InstanceOf(np.ndarray, list, tuple, type(None), description="an array or None")]


@register_model
class GaussianMixture(MixtureModel):
    """Gaussian mixture: clustering and density estimation, with missing values.

    Parameters
    ----------
    n_components : int, number of mixture components K (K <= n_samples).
    covariance_type : {"full", "tied", "diag", "spherical"}.
    tol : float, convergence threshold on the change of the mean log-likelihood.
    reg_covar : float >= 0, added to every covariance diagonal (the one regularizer). The
        M-step then maximizes a penalized EM objective, so the log-likelihood may dip by a
        bounded amount; the engine's guard allows exactly that bound. A fit whose
        covariances are singular (a variance zero up to round-off: a constant column, a
        cluster of identical rows, rows on a line or plane for "full"/"tied", with or
        without missing values, with reg_covar too small) raises a ValueError, for every
        covariance type.
    max_iter : int, EM iterations per initialization.
    n_init : int, initializations; the best final log-likelihood is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"} ("kmeans++" is
        accepted as another spelling of "k-means++").
    weights_init, means_init, precisions_init : optional user-given initial parameters
        (K,), (K, D), and precisions shaped as the covariance type.
    random_state, warm_start, verbose, max_time, callbacks, chunk_size, learning_decay,
    learning_offset : the EM engine's options (see `latentkit.em`). `verbose=None` shows a
        progress bar when stderr is a terminal. With warm_start=True each fit continues from
        the fitted parameters and the stored lower_bound_, so that repeated fits with a
        small max_iter set converged_ once the bound changes by less than tol.

    Missing values: NaN entries are marginalized exactly; EM uses the conditional moments
    of the missing coordinates. `impute(X)` fills them with E[x_m | x_o].

    Degenerate components: a component left empty, or collapsed onto fewer samples than a
    nonsingular covariance needs (D + 1 full, 2 diag or spherical), is re-seeded by
    splitting the heaviest component along its principal axis, with a ReseedWarning —
    never NaN. When N < K (D + 1) some collapse is unavoidable and only reg_covar acts.

    Attributes
    ----------
    weights_ (K,), means_ (K, D), covariances_, precisions_, precisions_cholesky_ (shapes
    per covariance type; precisions_cholesky_ is scikit-learn's upper-triangular P with
    precisions_ = P P^T), converged_, n_iter_, lower_bound_ (mean log-likelihood at the last
    E-step, or at best_iteration_ when EM returned an earlier, better iterate), history_
    (mean log-likelihood per iteration; also named lower_bounds_, as in scikit-learn),
    em_state_ (the centre EM accumulates its statistics around),
    n_features_in_.
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 1, None)],
        "covariance_type": [Options(*COVARIANCE_TYPES)],
        "reg_covar": [Interval(float, 0, None)],
        "init_params": [Options(*INIT_METHODS)],
        "weights_init": ARRAY_OR_NONE,
        "means_init": ARRAY_OR_NONE,
        "precisions_init": ARRAY_OR_NONE,
    }
    em_family = gem.GAUSSIAN_MIXTURE

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=None, max_time=None, callbacks=None, chunk_size=None,
                 learning_decay=0.7, learning_offset=10.0):
        self._store_init_args(locals())

    @classmethod
    def from_parameters(cls, weights, means, covariances, covariance_type="full", **options):
        """A model built from known parameters, usable at once without fit: it scores,
        predicts, samples, imputes and saves like a fitted one.

        weights : (K,) non-negative, summing to 1; means : (K, D); covariances : shaped per
        `covariance_type` (full (K, D, D), tied (D, D), diag (K, D), spherical (K,)),
        symmetric positive definite. `options` are any other constructor arguments (used
        if the model is later refitted). The fitted attributes are set as after a fit of
        no iterations: converged_ = True, n_iter_ = 0, an empty history_, and em_state_
        centred at the mixture mean Σ π_k μ_k.
        """
        covariance = _covariance_record(covariance_type)
        weights, means, covariances, P = _checked_parameters(weights, means, covariances,
                                                             covariance)
        model = cls(n_components=len(weights), covariance_type=covariance.name, **options)
        model._validate_params()
        shift = weights @ means
        params = gk.assemble(weights, means, covariances, P, covariance, shift)
        model.n_features_in_ = means.shape[1]
        model._store_fit(params, gk.GaussianMixtureState(shift), np.float64, converged=True,
                         n_iter=0, history=[], stop_reason="given")
        return model

    # -- wiring to the EM family (_gaussian_em) -------------------------------------------

    def _chunk_floats_per_row(self, n_features):
        """Floats of E-step temporaries per row: the sufficient statistics T(x) and a few
        N x K arrays."""
        K, D = self.n_components, n_features
        covariance = covariance_type(self.covariance_type)
        if covariance.uses_expansion(D, K):
            return covariance.second_moment_size(D) + D + 3 * K
        return 2 * K * D + 3 * K  # the direct products and per-component scatter

    def _em_config(self, n_samples, n_features) -> gk.GaussianConfig:
        """The validated hyper-parameters and user-given initial parameters of a fit."""
        if n_samples is not None:
            check_n_components(self.n_components, n_samples)
        K, D = self.n_components, n_features
        covariance = covariance_type(self.covariance_type)
        weights = means = P = None
        if self.weights_init is not None:
            weights = _initial_weights(self.weights_init, K)
        if self.means_init is not None:
            means = _numeric_init("means_init", self.means_init)
            if means.shape != (K, D):
                raise InvalidParameterError(
                    "means_init is invalid. The parameter 'means' should have the shape of "
                    f"{(K, D)}, but got {means.shape} (n_components, n_features).")
            _check_finite_init("means_init", means)
        if self.precisions_init is not None:
            precisions = _numeric_init("precisions_init", self.precisions_init)
            if precisions.shape == covariance.parameter_shape(K, D):
                _check_finite_init("precisions_init", precisions)
            P = covariance.check_precisions(precisions, K, D)
        return gk.GaussianConfig(K, covariance, float(self.reg_covar), self.init_params,
                                 weights, means, P)

    def _log_prob(self, params, X):
        """log N(x_n; μ_k, Σ_k) with missing entries marginalized : (n, K)."""
        return gem.log_prob(params, X)

    # -- parameters <-> fitted attributes -------------------------------------------------

    def _store_params(self, params, dtype):
        self.weights_ = params.weights.astype(dtype)
        self.means_ = params.means.astype(dtype)
        self.covariances_ = params.covariances.astype(dtype)
        self.precisions_cholesky_ = params.precisions_cholesky.astype(dtype)
        self.precisions_ = params.covariance.precisions(params.precisions_cholesky).astype(dtype)

    def _current_params(self, *, for_inference: bool = False) -> gk.GaussianParams:
        """θ from the fitted attributes. EM continues (warm start, online EM) around the
        centre its statistics were accumulated at (em_state_.shift); inference uses the
        mixture mean Σ π_k μ_k, a function of the public parameters only, so a saved and
        loaded model predicts exactly as the original."""
        check_is_fitted(self)
        weights, means = self.weights_.astype(np.float64), self.means_.astype(np.float64)
        shift = weights @ means if for_inference else self.em_state_.shift
        return gk.assemble(
            weights, means, self.covariances_.astype(np.float64),
            self.precisions_cholesky_.astype(np.float64), covariance_type(self.covariance_type),
            shift)

    def _n_parameters(self):
        return covariance_type(self.covariance_type).n_parameters(
            self.n_components, self.means_.shape[1])

    # -- inference ------------------------------------------------------------------------

    def impute(self, X):
        """X with each NaN replaced by E[x_m | x_o] = Σ_k p(k | x_o) E[x_m | x_o, k]."""
        X = self._validate_X(X, reset=False)
        return impute(self._current_params(for_inference=True), X)

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, z): z ~ Categorical(π), x | z ~ N(μ_z, Σ_z). X : (n, D), z : (n,)."""
        check_is_fitted(self)
        try:
            check_n_samples(n_samples)
        except InvalidParameterError as error:  # scikit-learn's words first
            raise InvalidParameterError(f"Invalid value for 'n_samples': {error}") from None
        rng = as_generator(random_state)
        params = self._current_params(for_inference=True)
        # float32-stored weights can miss numpy's sum-to-1 tolerance: renormalize
        z = rng.choice(self.n_components, size=n_samples, p=params.weights / params.weights.sum())
        L = cholesky(gk.full_covariances(params))
        eps = rng.standard_normal((n_samples, params.means.shape[1]))
        X = params.means[z] + np.einsum("nij,nj->ni", L[z], eps)
        return X.astype(self.means_.dtype), z


# -- parameters given by the user (weights_init, from_parameters) --------------------------


def _numeric_init(name: str, value) -> np.ndarray:
    """A user-given initial parameter as a float64 array, or InvalidParameterError."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{name} must be a numeric array; got {type(value).__name__} that cannot be read "
            "as float64 numbers.") from None


def _check_finite_init(name: str, array: np.ndarray) -> None:
    """InvalidParameterError naming the first NaN or inf entry of a user-given initial
    parameter (EM would turn it into NaN responsibilities, or silently into a component
    at infinity)."""
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        raise InvalidParameterError(
            f"{name} is invalid: every entry must be finite, but {name}{list(where)} = "
            f"{array[where]} ({len(bad)} of {array.size} entries are NaN or inf). Give "
            f"finite values, or {name}=None to initialize from the data.")


def _initial_weights(value, K: int) -> np.ndarray:
    """weights_init as float64 (K,), checked as scikit-learn checks it (in its words): the
    shape, finite, the range [0, 1], the sum."""
    weights = _numeric_init("weights_init", value)
    if weights.shape != (K,):
        raise InvalidParameterError(
            "weights_init is invalid. The parameter 'weights' should have the shape of "
            f"{(K,)}, but got {weights.shape} (one weight per component).")
    _check_finite_init("weights_init", weights)
    if np.any(weights < 0) or np.any(weights > 1):
        raise InvalidParameterError(
            "weights_init is invalid. The parameter 'weights' should be in the range [0, 1], "
            f"but got min value {weights.min():.5f}, max value {weights.max():.5f}.")
    if not np.isclose(weights.sum(), 1.0):
        raise InvalidParameterError(
            "weights_init is invalid. The parameter 'weights' should be normalized, but got "
            f"sum(weights) = {weights.sum():.5f}.")
    return weights


def _covariance_record(name) -> CovarianceType:
    if name not in COVARIANCE_TYPES:
        raise InvalidParameterError(
            f"covariance_type must be one of {COVARIANCE_TYPES}; got {name!r}.")
    return covariance_type(name)


def _finite_array(name: str, value, ndim: int) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{name} must be a numeric array; got {type(value).__name__}.") from None
    if array.ndim != ndim:
        raise InvalidParameterError(
            f"{name} must be a {ndim}-D array; got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise InvalidParameterError(f"{name} contains NaN or inf; every entry must be finite.")
    return array


def _checked_parameters(weights, means, covariances, covariance: CovarianceType):
    """(weights (K,), means (K, D), covariances per type, P per type) as float64, with the
    weights a probability vector and every covariance symmetric positive definite."""
    weights = _finite_array("weights", weights, 1)
    if weights.size == 0 or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0,
                                                                   rtol=0, atol=1e-8):
        raise InvalidParameterError(
            f"weights must be non-negative and sum to 1; got {weights} (sum "
            f"{weights.sum():.10g}).")
    means = _finite_array("means", means, 2)
    if means.shape[0] != weights.size:
        raise InvalidParameterError(
            f"means must have shape (K, D) with K = len(weights) = {weights.size}; got "
            f"{means.shape}.")
    K, D = means.shape
    shape = covariance.parameter_shape(K, D)
    covariances = _finite_array("covariances", covariances, len(shape))
    if covariances.shape != shape:
        raise InvalidParameterError(
            f"covariances must have shape {shape} for covariance_type={covariance.name!r} "
            f"(K={K}, D={D}); got {covariances.shape}.")
    if covariance in (FULL, TIED):  # matrices; diag and spherical hold variances
        transposed = np.swapaxes(covariances, -1, -2)
        scale = max(float(np.max(np.abs(covariances))), np.finfo(float).tiny)
        if not np.allclose(covariances, transposed, rtol=0, atol=1e-10 * scale):
            raise InvalidParameterError("covariances must be symmetric; they differ from "
                                        "their transpose by "
                                        f"{np.max(np.abs(covariances - transposed)):.3g}.")
    try:
        P = covariance.precision_factor(covariances)
    except SingularCovarianceError:
        raise InvalidParameterError(
            f"covariances must be positive definite ({covariance.name} covariance_type); a "
            "given covariance is singular or has a non-positive eigenvalue or variance.") from None
    return weights, means, covariances, P
