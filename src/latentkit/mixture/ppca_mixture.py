"""Mixture of probabilistic principal component analysers (Tipping & Bishop 1999).

    k ~ Categorical(π),   z ~ N(0, I_M),   x | z, k ~ N(W_k z + μ_k, σ_k² I)

K local PPCA models fitted jointly by EM: clustering (which local model explains x) plus a
local M-dimensional linear coordinate system per cluster; missing values are marginalized
exactly. The kernels are in `_ppca_mixture_kernels`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._linalg import log_normalize
from .._validation import Interval, Options, as_generator, check_n_components, check_n_samples
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model
from . import _ppca_mixture_kernels as mk
from ._base import MixtureModel
from ._init import INIT_METHODS


@register_model
class MixtureOfPPCA(MixtureModel):
    """Mixture of K probabilistic PCA models, each with an M-dimensional latent space.

    Parameters
    ----------
    n_components : int, number of local models K (K <= n_samples).
    n_latent : int, latent dimension M of every local model (1 <= M < n_features).
    tol : float, convergence threshold on the change of the mean log-likelihood.
    min_noise_variance : float > 0, floor on each σ_k², relative to the data's mean
        feature variance (as PPCA's): σ_k² >= min_noise_variance · mean_d var(x_d), from
        the initialization on. It keeps a component that sits on a flat patch of data (a
        cluster of duplicated rows) from collapsing, whatever the data's scale; the floored
        M-step is still a maximization. For data with no variance at all (constant rows)
        the scale is the round-off of the data, eps · mean x² (1 for all-zero data).
    max_iter, n_init : EM iterations per initialization; initializations (best kept).
    init_params : {"kmeans", "kmeans++", "random", "random_from_data"}: the initial
        clustering; each cluster then gets its closed-form PPCA fit.
    random_state, warm_start, verbose, max_time, callbacks, chunk_size, learning_decay,
    learning_offset : the EM engine's options (see `latentkit.em`).

    Inference: `predict` / `predict_proba` / `posterior` / `transform` are over the
    components (the contract's posterior mean of one_hot(k): responsibilities);
    `transform_local(X)` gives each row's local coordinates E[z | x, k] in its most probable
    component (local dimensionality reduction) and `inverse_transform_local` maps them back.
    `impute(X)` fills NaN with E[x_m | x_o] = Σ_k p(k | x_o) (W_k,m E[z | x_o, k] + μ_k,m).

    Attributes
    ----------
    weights_ (K,), means_ (K, D), components_ (K, M, D) the loadings W_k^T (rows are
    scikit-learn's `components_` of each local PCA, up to scale and rotation),
    noise_variance_ (K,) σ_k², converged_, n_iter_, lower_bound_, history_ (mean
    log-likelihood per EM iteration), n_features_in_, em_state_ (the centre EM accumulates
    its statistics around and the data's mean feature variance, which scales the noise
    floor; see `_ppca_mixture_kernels.MPPCAState`).
    """

    em_family = mk.MPPCA_FAMILY

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 1, None)],
        "n_latent": [Interval(int, 1, None)],
        "min_noise_variance": [Interval(float, 0, None, closed="neither")],
        "init_params": [Options(*INIT_METHODS)],
    }

    def __init__(self, n_components=1, n_latent=2, *, tol=1e-4, min_noise_variance=1e-6,
                 max_iter=200, n_init=1, init_params="kmeans", random_state=None,
                 warm_start=False, verbose=None, max_time=None, callbacks=None,
                 chunk_size=None, learning_decay=0.7, learning_offset=10.0):
        self._store_init_args(locals())

    # -- the engine's kernels -------------------------------------------------------------

    def _chunk_floats_per_row(self, n_features):
        return 3 * n_features + self.n_components * (self.n_latent + 2) ** 2

    def _em_config(self, n_samples, n_features) -> mk.MPPCAConfig:
        if n_samples is not None:
            check_n_components(self.n_components, n_samples)
            if self.n_latent >= n_samples:
                raise InvalidInputError(
                    f"MixtureOfPPCA: n_latent={self.n_latent} must be < n_samples="
                    f"{n_samples}: with fewer rows than latent directions a local model "
                    f"fits its rows exactly and its noise variance collapses. Use a smaller "
                    f"n_latent or more data.")
        if self.n_latent >= n_features:
            raise InvalidParameterError(
                f"MixtureOfPPCA: n_latent={self.n_latent} must be < n_features={n_features}: "
                f"each local model keeps M < D directions and puts isotropic noise on the "
                f"rest. Use a smaller n_latent (or a GaussianMixture for full covariances).")
        return mk.MPPCAConfig(self.n_components, self.n_latent, self.min_noise_variance,
                              self.init_params)

    def _validate_X(self, X, *, reset):
        X = super()._validate_X(X, reset=reset)
        if reset and np.isnan(X).any():
            empty = np.flatnonzero(np.isnan(X).all(axis=0))
            if empty.size:
                raise InvalidInputError(
                    f"X column {empty[0]} is missing (NaN) in every row, so its mean and "
                    f"loadings cannot be estimated. Drop the column(s) {empty.tolist()}.")
        return X

    # -- parameters <-> fitted attributes -------------------------------------------------

    def _store_params(self, params, dtype):
        self.weights_ = params.weights.astype(dtype)
        self.means_ = params.means.astype(dtype)
        self.components_ = np.ascontiguousarray(np.swapaxes(params.W, 1, 2), dtype=dtype)
        self.noise_variance_ = params.noise_variance.astype(dtype)

    def _current_params(self, *, for_inference: bool = False):
        """θ from the fitted attributes, with the centre the kernels compute around: for
        inference the mixture mean Σ π_k μ_k (a function of the public parameters, so a
        loaded model predicts exactly as the original); for EM the fixed shift of
        `em_state_` its statistics were accumulated around."""
        check_is_fitted(self)
        weights, means = self.weights_.astype(np.float64), self.means_.astype(np.float64)
        return mk.MPPCAParams(weights, means,
                              np.ascontiguousarray(np.swapaxes(self.components_, 1, 2),
                                                   dtype=np.float64),
                              self.noise_variance_.astype(np.float64),
                              weights @ means if for_inference else self.em_state_.shift)

    def _n_parameters(self):
        K, M, D = self.components_.shape
        return mk.n_parameters(K, D, M)

    # -- inference ------------------------------------------------------------------------

    def _log_prob(self, params, X):
        """log N(x_n; μ_k, C_k) : (n, K), C_k = W_k W_k^T + σ_k² I, missing marginalized."""
        return mk.log_prob_components(X, params)

    def _local(self, X):
        X = self._validate_X(X, reset=False)
        params = self._current_params(for_inference=True)
        moments = mk._all_moments(X, params)
        log_joint = np.column_stack([m[0] for m in moments]) + np.log(params.weights)
        return X, params, moments, log_joint

    def transform_local(self, X, component=None):
        """Local coordinates E[z | x, k] : (n_samples, M) (missing entries marginalized).

        component : None for each row's most probable component (then `predict(X)` says
        which local coordinate system a row is in), or an int k for component k's
        coordinates of every row.
        """
        X, _, moments, log_joint = self._local(X)
        K = self.n_components
        if component is None:
            labels = np.argmax(log_joint, axis=1)
        elif isinstance(component, int | np.integer) and 0 <= component < K:
            labels = np.full(len(X), component)
        else:
            raise InvalidParameterError(
                f"component must be None or an int in [0, {K - 1}]; got {component!r}.")
        z = np.stack([m[1] for m in moments])  # (K, n, M)
        return z[labels, np.arange(len(X))].astype(X.dtype)

    def inverse_transform_local(self, Z, components):
        """Back to data space: x = W_k z + μ_k : (n_samples, D) for local coordinates
        Z : (n_samples, M) in components : (n_samples,) ints (e.g. `predict(X)`)."""
        check_is_fitted(self)
        Z = np.asarray(Z)
        components = np.asarray(components)
        K, M, _ = self.components_.shape
        if Z.ndim != 2 or Z.shape[1] != M or components.shape != (len(Z),):
            raise InvalidInputError(
                f"Z must be (n_samples, {M}) and components (n_samples,); got {Z.shape} and "
                f"{components.shape}.")
        if components.size and (components.min() < 0 or components.max() >= K):
            raise InvalidInputError(f"components must be ints in [0, {K - 1}].")
        return np.einsum("nm,nmd->nd", Z, self.components_[components]) + self.means_[components]

    def impute(self, X):
        """X with each NaN replaced by E[x_m | x_o] = Σ_k p(k | x_o) (W_k z̄_k + μ_k)_m."""
        X, params, moments, log_joint = self._local(X)
        missing = np.isnan(X)
        if not missing.any():
            return X.copy()
        resp = np.exp(log_normalize(log_joint)[0])
        filled = sum(resp[:, [k]] * (m[1] @ params.W[k].T + params.means[k])
                     for k, m in enumerate(moments))
        return np.where(missing, filled, X).astype(X.dtype)

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, k): k ~ Categorical(π), z ~ N(0, I), x = W_k z + μ_k + σ_k ε.
        X : (n, D), k : (n,)."""
        check_is_fitted(self)
        check_n_samples(n_samples)
        rng = as_generator(random_state)
        params = self._current_params(for_inference=True)
        K, D, M = params.W.shape
        labels = rng.choice(K, size=n_samples, p=params.weights / params.weights.sum())
        z = rng.standard_normal((n_samples, M))
        noise = rng.standard_normal((n_samples, D)) * np.sqrt(params.noise_variance[labels])[
            :, None]
        X = np.einsum("nm,ndm->nd", z, params.W[labels]) + params.means[labels] + noise
        return X.astype(self.means_.dtype), labels
