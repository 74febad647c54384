"""Gaussian mixture model fitted by EM, with exact handling of missing values.

    z ~ Categorical(π),   x | z = k ~ N(μ_k, Σ_k),   p(x) = Σ_k π_k N(x; μ_k, Σ_k)

Names follow scikit-learn's GaussianMixture so users can switch by changing one import.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._linalg import (
    cholesky,
    covariance_from_precision_cholesky,
    log_normalize,
    responsibilities_,
)
from .._validation import (
    InstanceOf,
    Interval,
    Options,
    as_generator,
    check_n_components,
    check_n_samples,
)
from ..io import register_model
from . import _gaussian_expfam as ef
from . import _gaussian_kernels as gk
from ._base import MixtureModel
from ._init import INIT_METHODS, fill_missing_with_means, initial_responsibilities

ARRAY_OR_NONE = [InstanceOf(np.ndarray, list, tuple, type(None), description="an array or None")]


@register_model
class GaussianMixture(MixtureModel):
    """Gaussian mixture: clustering and density estimation, with missing values.

    Parameters
    ----------
    n_components : int, number of mixture components K (K <= n_samples).
    covariance_type : {"full", "tied", "diag", "spherical"}.
    tol : float, convergence threshold on the change of the mean log-likelihood.
    reg_covar : float >= 0, added to every covariance diagonal (the one regularizer).
    max_iter : int, EM iterations per initialization.
    n_init : int, initializations; the best final log-likelihood is kept.
    init_params : {"kmeans", "kmeans++", "random", "random_from_data"}.
    weights_init, means_init, precisions_init : optional user-given initial parameters
        (K,), (K, D), and precisions shaped as the covariance type.
    random_state, warm_start, verbose, max_time, callbacks, chunk_size, learning_decay,
    learning_offset : the EM engine's options (see `latentkit.em`). `verbose=None` shows a
        progress bar when stderr is a terminal.

    Missing values: NaN entries are marginalized exactly; EM uses the conditional moments
    of the missing coordinates. `impute(X)` fills them with E[x_m | x_o].

    Degenerate components: a component left empty, or collapsed onto fewer samples than a
    nonsingular covariance needs (D + 1 full, 2 diag or spherical), is re-seeded by
    splitting the heaviest component along its principal axis, with a ReseedWarning —
    never NaN. When N < K (D + 1) some collapse is unavoidable and only reg_covar acts.

    Attributes
    ----------
    weights_ (K,), means_ (K, D), covariances_, precisions_, precisions_cholesky_ (shapes
    per covariance type), converged_, n_iter_, lower_bound_ (mean log-likelihood at the last
    E-step), history_ (mean log-likelihood per iteration), n_features_in_.
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 1, None)],
        "covariance_type": [Options(*gk.COVARIANCE_TYPES)],
        "reg_covar": [Interval(float, 0, None)],
        "init_params": [Options(*INIT_METHODS)],
        "weights_init": ARRAY_OR_NONE,
        "means_init": ARRAY_OR_NONE,
        "precisions_init": ARRAY_OR_NONE,
    }

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=None, max_time=None, callbacks=None, chunk_size=None,
                 learning_decay=0.7, learning_offset=10.0):
        self._store_init_args(locals())

    # -- the engine's kernels -------------------------------------------------------------

    def _chunk_floats_per_row(self, n_features):
        """Floats of E-step temporaries per row: the sufficient statistics T(x) and a few
        N x K arrays."""
        K, D = self.n_components, n_features
        if ef.uses_expansion(D, K, self.covariance_type):
            return ef.second_moment_size(D, self.covariance_type) + D + 3 * K
        return 2 * K * D + 3 * K  # the direct products and per-component scatter

    def _check_data(self, n_samples, n_features):
        if n_samples is not None:
            check_n_components(self.n_components, n_samples)
        K, D = self.n_components, n_features
        for name, shape in (("weights_init", (K,)), ("means_init", (K, D))):
            value = getattr(self, name)
            if value is not None and np.shape(value) != shape:
                raise ValueError(f"{name} must have shape {shape}; got {np.shape(value)}.")
        if self.weights_init is not None:
            w = np.asarray(self.weights_init, dtype=float)
            if np.any(w < 0) or not np.isclose(w.sum(), 1.0):
                raise ValueError(f"weights_init must be non-negative and sum to 1; got {w}.")
        if self.precisions_init is not None:
            gk.check_precisions(self.precisions_init, self.covariance_type, K, D)

    def _em_init(self, X, rng):
        """Initial θ: user-given parameters where set, else an M-step from the initial
        responsibilities of `init_params` (missing entries filled by column means)."""
        X = fill_missing_with_means(np.asarray(X, dtype=np.float64))
        shift = X.mean(axis=0)
        K, D = self.n_components, X.shape[1]
        if self.weights_init is None or self.means_init is None or self.precisions_init is None:
            resp = initial_responsibilities(X, K, self.init_params, rng)
            nk, sx, sxx = gk.complete_stats(X, shift, resp.T, self.covariance_type)
            stats = gk.GaussianStats(float(len(X)), nk, sx, sxx, shift)
            data_params = gk.m_step(stats, self.covariance_type, self.reg_covar)
        weights = (data_params.weights if self.weights_init is None
                   else np.asarray(self.weights_init, dtype=np.float64))
        means = (data_params.means if self.means_init is None
                 else np.asarray(self.means_init, dtype=np.float64))
        if self.precisions_init is None:
            return gk.make_params(weights, means, data_params.covariances,
                                  self.covariance_type, shift)
        P = gk.check_precisions(self.precisions_init, self.covariance_type, K, D)
        if self.covariance_type in ("full", "tied"):
            cov = covariance_from_precision_cholesky(P)
        else:
            cov = 1.0 / P**2
        return gk.assemble(weights, means, cov, P, self.covariance_type, shift)

    def _e_step(self, params, X):
        """Statistics and log-likelihood of one chunk X : (n, D) (NaN = missing)."""
        ct, shift = self.covariance_type, params.shift
        log_weights = np.log(params.weights)
        X = X.astype(self._work_dtype(params, X.dtype), copy=False)
        # the fast path, component-major (K, n); a NaN in a row propagates through the GEMM
        # into that row's log-normalizer, so a chunk with missing values is detected from
        # the (n,) result instead of scanning all n x D entries, and redone exactly below
        log_joint, T, Xs = gk.log_joint_complete(X, params, log_weights)
        resp, log_norm = responsibilities_(log_joint, axis=0)
        complete = not np.isnan(log_norm).any()
        if complete:
            nk, sx, sxx = gk.complete_stats(X, shift, resp, ct, T, Xs)
            # independent of how the BLAS treats NaN: a NaN entry in a row whose
            # responsibilities sum to 1 makes Σ r x non-finite
            complete = bool(np.isfinite(sx).all())
        if not complete:
            log_prob, parts = self._log_prob_missing(params, X)
            log_resp, log_norm = log_normalize(log_prob + log_weights)
            resp = np.exp(log_resp)
            nk, sx, sxx = 0.0, 0.0, 0.0
            for rows, obs, cond_mean, cond_cov in parts:
                if obs.all():
                    part = gk.complete_stats(X[rows], shift, resp[rows].T, ct)
                else:
                    Xo = X[rows][:, obs].astype(np.float64) - shift[obs]
                    part = gk.pattern_stats(Xo, obs, resp[rows], cond_mean, cond_cov, ct)
                nk, sx, sxx = nk + part[0], sx + part[1], sxx + part[2]
        stats = gk.GaussianStats(float(len(X)), nk, sx, sxx, shift)
        return stats, float(log_norm.sum(dtype=np.float64))

    @staticmethod
    def _work_dtype(params, dtype):
        """float32 stays float32 while the components sit within EXPANSION_LIMIT of the
        centre; beyond, both the expansion and the statistics Σ r (x - s)(x - s)^T would
        cancel (a tight component far away), so the chunk is promoted to float64."""
        if dtype == np.float32 and not ef.expansion_is_accurate(params.max_const, dtype):
            return np.float64
        return dtype

    def _m_step(self, stats):
        return gk.m_step(stats, self.covariance_type, self.reg_covar)

    def _log_prob(self, params, X):
        """log N(x_n; μ_k, Σ_k) with missing entries marginalized : (n, K)."""
        if not np.isnan(X).any():
            X = X.astype(self._work_dtype(params, X.dtype), copy=False)
            return gk.log_joint_complete(X, params, np.zeros(self.n_components))[0].T
        return self._log_prob_missing(params, X)[0]

    def _log_prob_missing(self, params, X):
        """log N(x_o; μ_k,o, Σ_k,oo) : (n, K) for rows X with NaN, and the per-pattern
        pieces (rows, obs, E[x_m | x_o, k], Cov[x_m | x_o, k]) of the M-step and
        imputation (shifted coordinates; None, None for the complete rows)."""
        out = np.empty((len(X), self.n_components), dtype=np.float64)
        means = params.means - params.shift
        covs = gk.full_covariances(params)
        parts = []
        for rows, obs in gk.missingness_patterns(~np.isnan(X)):
            if obs.all():
                out[rows] = self._log_prob(params, X[rows])
                parts.append((rows, obs, None, None))
                continue
            Xo = X[rows][:, obs].astype(np.float64) - params.shift[obs]
            out[rows], cond_mean, cond_cov = gk.conditional_gaussians(Xo, obs, means, covs)
            parts.append((rows, obs, cond_mean, cond_cov))
        return out, parts

    # -- parameters <-> fitted attributes -------------------------------------------------

    def _store_params(self, params, dtype):
        self._shift = params.shift  # kept so online EM blends statistics around one centre
        self.weights_ = params.weights.astype(dtype)
        self.means_ = params.means.astype(dtype)
        self.covariances_ = params.covariances.astype(dtype)
        self.precisions_cholesky_ = params.precisions_cholesky.astype(dtype)
        P = params.precisions_cholesky
        if self.covariance_type in ("full", "tied"):
            self.precisions_ = (P @ np.swapaxes(P, -1, -2)).astype(dtype)
        else:
            self.precisions_ = (P**2).astype(dtype)

    def _current_params(self, *, for_inference: bool = False):
        """θ from the fitted attributes. EM continues (warm start, online EM) around the
        centre its statistics were accumulated at; inference uses the mixture mean Σ π_k μ_k,
        a function of the public parameters only, so a saved and loaded model predicts
        exactly as the original."""
        check_is_fitted(self)
        weights, means = self.weights_.astype(np.float64), self.means_.astype(np.float64)
        shift = None if for_inference else getattr(self, "_shift", None)
        return gk.assemble(
            weights, means, self.covariances_.astype(np.float64),
            self.precisions_cholesky_.astype(np.float64), self.covariance_type,
            weights @ means if shift is None else shift)

    def _n_parameters(self):
        return gk.n_parameters(self.n_components, self.means_.shape[1], self.covariance_type)

    # -- inference ------------------------------------------------------------------------

    def impute(self, X):
        """X with each NaN replaced by E[x_m | x_o] = Σ_k p(k | x_o) E[x_m | x_o, k]."""
        X = self._validate_X(X, reset=False)
        params = self._current_params(for_inference=True)
        if not np.isnan(X).any():
            return X.copy()
        log_prob, parts = self._log_prob_missing(params, X)
        resp = np.exp(log_normalize(log_prob + np.log(params.weights))[0])
        out = X.copy()
        for rows, obs, cond_mean, _ in parts:
            if not obs.all():
                filled = np.einsum("nk,knm->nm", resp[rows], cond_mean) + params.shift[~obs]
                out[np.ix_(rows, np.flatnonzero(~obs))] = filled
        return out

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, z): z ~ Categorical(π), x | z ~ N(μ_z, Σ_z). X : (n, D), z : (n,)."""
        check_is_fitted(self)
        check_n_samples(n_samples)
        rng = as_generator(random_state)
        params = self._current_params(for_inference=True)
        # float32-stored weights can miss numpy's sum-to-1 tolerance: renormalize
        z = rng.choice(self.n_components, size=n_samples, p=params.weights / params.weights.sum())
        L = cholesky(gk.full_covariances(params))
        eps = rng.standard_normal((n_samples, params.means.shape[1]))
        X = params.means[z] + np.einsum("nij,nj->ni", L[z], eps)
        return X.astype(self.means_.dtype), z
