"""Mixture of multivariate Bernoullis for binary data, fitted by MAP-EM, with missing values.

    z ~ Categorical(π),   x_d | z = k ~ Bernoulli(μ_kd) independently,
    p(x) = Σ_k π_k Π_d μ_kd^x_d (1 - μ_kd)^(1 - x_d)

A missing x_d (NaN) is dropped from the product (it sums out exactly). The shared MAP-EM,
priors and re-seeding are described in `latentkit.mixture._discrete`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..exceptions import InvalidInputError
from ..io import register_model
from ._discrete import (
    ARRAY_OR_NONE,
    DiscreteKernels,
    DiscreteMixture,
    check_probability_array,
    discrete_family,
)


def bernoulli_encode(X: np.ndarray, n_levels=None):
    """X : (n, D) -> (X0 : X with NaN -> 0, observed : 1.0 where observed), X's dtype;
    observed is None when nothing is missing (X itself is then X0, no copy). n_levels (every
    column has two) is accepted for the `DiscreteKernels` signature and not needed."""
    missing = np.isnan(X)
    if not missing.any():
        return X, None
    return np.where(missing, X.dtype.type(0), X), (~missing).astype(X.dtype)


def bernoulli_log_likelihood(X0: np.ndarray, observed: np.ndarray | None,
                             means: np.ndarray) -> np.ndarray:
    """log p(x_obs | z = k) : (n, K), as GEMMs in X0's dtype.

    X0 : (n, D) the data with NaN -> 0; observed : (n, D) 1.0 where x_nd is observed, else
    0, or None when every entry is observed; means : (K, D) μ. Over the observed d,
    Σ_d x log μ + (1 - x) log(1 - μ) = X0 @ logit(μ)^T + O @ log(1 - μ)^T, whose second
    term is the row sum Σ_d log(1 - μ_kd) when O = 1.
    """
    dtype = X0.dtype
    log_one_minus_mu = np.log1p(-means)
    logit = np.log(means) - log_one_minus_mu
    out = X0 @ np.ascontiguousarray(logit.T, dtype=dtype)
    if observed is None:
        return out + log_one_minus_mu.sum(axis=1).astype(dtype)
    return out + observed @ np.ascontiguousarray(log_one_minus_mu.T, dtype=dtype)


def bernoulli_log_prior_probs(means: np.ndarray) -> float:
    """Σ_kd log μ_kd + log(1 - μ_kd): the Beta(1 + α, 1 + α) log-density / α. means : (K, D)."""
    return float(np.log(means).sum() + np.log1p(-means).sum())


BERNOULLI_KERNELS = DiscreteKernels(bernoulli_encode, bernoulli_log_likelihood,
                                    bernoulli_log_prior_probs)


@register_model
class BernoulliMixture(DiscreteMixture):
    """Mixture of Bernoullis: clustering, density estimation and imputation of binary data.

    Parameters
    ----------
    n_components : int, number of mixture components K (K <= n_samples).
    alpha : float > 0, Beta pseudo-count on each μ_kd (prior Beta(1 + α, 1 + α)); the
        M-step is μ_kd = (Σ_n r_nk x_nd + α) / (Σ_n r_nk o_nd + 2α), so μ never reaches 0
        or 1, even for a column that is all zeros. Default 0.01: negligible next to a
        component's counts, yet it bounds log μ (≈ log(α / n_k)).
    weight_alpha : float > 0, Dirichlet pseudo-count on each mixing weight (prior
        Dirichlet(1 + β)): π_k = (n_k + β) / (N + K β). Default 1.0 (add-one smoothing).
    tol : float, convergence threshold on the change of the mean objective per row.
    max_iter, n_init : EM iterations per initialization, and initializations (best kept).
    init_params : {"kmeans", "kmeans++", "random", "random_from_data"}: starting
        responsibilities (see `latentkit.mixture._init`), followed by one M-step. Default
        "kmeans" (one k-means run), which started EM nearest the optimum in our trials.
    weights_init : optional (K,) initial π (> 0, summing to 1).
    means_init : optional (K, D) initial μ, strictly between 0 and 1.
    random_state, warm_start, verbose, max_time, callbacks, chunk_size, learning_decay,
    learning_offset : the EM engine's options (see `latentkit.em`).

    X holds 0, 1 or NaN (missing); anything else is an InvalidInputError (a ValueError)
    naming the first bad entry.

    Attributes
    ----------
    weights_ (K,), means_ (K, D) μ, converged_, n_iter_, lower_bound_ and history_ (mean
    per row of log p(X | θ) + log p(θ), the MAP-EM objective), n_features_in_.
    float32 input gives float32 attributes and outputs.
    """

    _probs_attribute = "means_"
    _kernels = BERNOULLI_KERNELS
    em_family = discrete_family(
        BERNOULLI_KERNELS, remedy="increase alpha (the Beta smoothing), use fewer components, "
        "or fit in float64")
    _parameter_constraints: ClassVar[dict] = {
        "means_init": [ARRAY_OR_NONE],
    }

    def __init__(self, n_components=1, *, alpha=0.01, weight_alpha=1.0, tol=1e-3,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, random_state=None, warm_start=False, verbose=None,
                 max_time=None, callbacks=None, chunk_size=None, learning_decay=0.7,
                 learning_offset=10.0):
        self._store_init_args(locals())

    # -- layout, encoding and validation --------------------------------------------------

    def _layout(self):
        """One level per column (the 1s; the 0s are implied): level_column, n_levels = 2."""
        D = self.n_features_in_
        return np.arange(D), np.full(D, 2)

    def _check_chunks(self, chunks, *, reset):
        """Every entry is 0, 1 or NaN; the error names the first bad row and column (the
        first negative one if any, so negative data is always reported as such)."""
        for offset, X in chunks:
            bad = ~((X == 0) | (X == 1) | np.isnan(X))
            if not bad.any():
                continue
            negative = X < 0
            first = negative if negative.any() else bad
            row, col = np.unravel_index(np.argmax(first), first.shape)
            what = "Negative values in data: " if negative.any() else ""
            raise InvalidInputError(
                f"{what}X[{offset + row}, {col}] = {float(X[row, col])!r}, but "
                f"{type(self).__name__} models binary data: every entry must be 0, 1 or NaN "
                "(missing). Binarize the data first, e.g. (X > threshold).astype(float).")

    def _chunk_floats_per_row(self, n_features):
        return 3 * n_features + 3 * self.n_components

    def _user_probs(self):
        if self.means_init is None:
            return None
        return check_probability_array("means_init", self.means_init,
                                       (self.n_components, self.n_features_in_))

    # -- parameters <-> fitted attributes -------------------------------------------------

    def _n_parameters(self):
        K, D = self.means_.shape
        return K * D + K - 1

    # -- uses -----------------------------------------------------------------------------

    def impute(self, X):
        """X with each NaN replaced by E[x_d | x_obs] = Σ_k p(k | x_obs) μ_kd, a probability
        in (0, 1) (threshold it at 0.5 for the most probable value). X : (n, D)."""
        X, observed, predictive = self._predictive(X)
        return np.where(observed, X, predictive.astype(X.dtype))

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, z): z ~ Categorical(π), x_d | z ~ Bernoulli(μ_zd).

        X : (n_samples, D) in {0, 1}, in the dtype of means_; z : (n_samples,) int.
        random_state : None (fresh entropy), an int seed or a Generator.
        """
        rng, params, z = self._sample_setup(n_samples, random_state)
        X = rng.random((n_samples, params.probs.shape[1])) < params.probs[z]
        return X.astype(self.means_.dtype), z
