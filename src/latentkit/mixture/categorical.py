"""Mixture of independent categoricals for integer-coded data, fitted by MAP-EM, with
missing values (the model behind latent class analysis).

    z ~ Categorical(π),   x_j | z = k ~ Categorical(θ_kj) independently over columns j,
    p(x) = Σ_k π_k Π_j θ_kj,x_j,     x_j ∈ {0, ..., L_j - 1}

A missing x_j (NaN) is dropped from the product (it sums out exactly). The shared MAP-EM,
priors and re-seeding are described in `latentkit.mixture._discrete`.

Layout of the parameters: the columns' level probabilities are concatenated, so θ is one
(K, M) array, M = Σ_j L_j, with column j at [offset_j, offset_j + L_j). The one-hot
encoding of a chunk is the matching (n, M) matrix, and log p(x | k) is one GEMM with log θ.
Fitted attributes are plain arrays (safe persistence): `probs_` (K, M) and
`n_categories_` (J,); `category_probs(j)` returns column j's (K, L_j) block.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model
from ._discrete import (
    ARRAY_OR_NONE,
    DiscreteKernels,
    DiscreteMixture,
    check_probability_array,
    discrete_family,
)


def level_offsets(n_levels: np.ndarray) -> np.ndarray:
    """(J,) start of each column's block in the concatenated levels, from n_levels (J,)."""
    return np.concatenate([[0], np.cumsum(n_levels)[:-1]]).astype(np.intp)


def one_hot(X: np.ndarray, offsets: np.ndarray, n_levels_total: int):
    """X : (n, J) integer codes as floats, NaN = missing -> (one_hot (n, M), observed (n, J)),
    both in X's dtype; a missing entry's block of the one-hot row is all zeros. observed is
    None when nothing is missing."""
    observed = ~np.isnan(X)
    rows, cols = np.nonzero(observed)
    encoded = np.zeros((X.shape[0], n_levels_total), dtype=X.dtype)
    encoded[rows, offsets[cols] + X[rows, cols].astype(np.intp)] = 1
    return encoded, (None if observed.all() else observed.astype(X.dtype))


def categorical_encode(X: np.ndarray, n_levels: np.ndarray):
    """`one_hot` of X : (n, J) for columns of n_levels (J,) levels: (n, M), (n, J) or None."""
    return one_hot(X, level_offsets(n_levels), int(np.sum(n_levels)))


def categorical_log_likelihood(encoded: np.ndarray, observed, probs: np.ndarray):
    """log p(x_obs | z = k) : (n, K) = one_hot(X) @ log θ^T for encoded : (n, M) and
    probs : (K, M) (a missing column's block is zero, so it drops out; `observed` is not
    needed)."""
    return encoded @ np.ascontiguousarray(np.log(probs).T, dtype=encoded.dtype)


def categorical_log_prior_probs(probs: np.ndarray) -> float:
    """Σ log θ: the Dirichlet(1 + α) log-density / α, up to a constant. probs : (K, M)."""
    return float(np.log(probs).sum())


CATEGORICAL_KERNELS = DiscreteKernels(categorical_encode, categorical_log_likelihood,
                                      categorical_log_prior_probs)


def check_codes(X: np.ndarray, n_categories, offset: int, model: str) -> np.ndarray:
    """Raise InvalidInputError at the first entry of X : (n, J) that is not NaN or an
    integer code in [0, n_categories[j]) (n_categories None: any integer >= 0); name its row
    and column.

    Returns the largest observed code per column : (J,), -1 where none is observed.
    """
    observed = ~np.isnan(X)
    values = np.where(observed, X, 0)
    bad = (values < 0) | (values != np.floor(values))
    if n_categories is not None:
        bad |= values >= np.asarray(n_categories)
    if bad.any():
        # the first negative entry if any, so negative data is always reported as such
        negative = values < 0
        first = negative if negative.any() else bad
        row, col = np.unravel_index(np.argmax(first), first.shape)
        allowed = ("integer codes >= 0" if n_categories is None else
                   f"integer codes 0..{n_categories[col] - 1} (n_categories[{col}] = "
                   f"{n_categories[col]})")
        what = "Negative values in data: " if negative.any() else ""
        value = float(X[row, col])
        raise InvalidInputError(
            f"{what}X[{offset + row}, {col}] = {value!r} is not a valid category code for "
            f"{model}: column {col} takes {allowed}, or NaN for missing.")
    return np.where(observed, X, -1).max(axis=0, initial=-1).astype(np.int64)


@register_model
class CategoricalMixture(DiscreteMixture):
    """Mixture of categoricals: clustering, density estimation and imputation of
    integer-coded categorical data.

    Parameters
    ----------
    n_components : int, number of mixture components K (K <= n_samples).
    n_categories : None or a sequence of J ints >= 1, the number of levels L_j of each
        column. None infers L_j = (largest code of column j in the fit data) + 1 (1 for a
        column with no observed value); give it explicitly when the fit data may miss the
        top levels, and for `partial_fit` (later batches must stay within it).
    alpha : float > 0, Dirichlet pseudo-count on each level (prior Dirichlet(1 + α)):
        θ_kjl = (c_kjl + α) / (o_kj + L_j α), so no probability is exactly 0 or 1.
        Default 0.01.
    weight_alpha : float > 0, Dirichlet pseudo-count on each mixing weight: π_k =
        (n_k + β) / (N + K β). Default 1.0.
    tol, max_iter, n_init : convergence threshold on the change of the mean objective per
        row, EM iterations per initialization, initializations (the best is kept).
    init_params : {"kmeans", "kmeans++", "random", "random_from_data"}: starting
        responsibilities, computed on the one-hot encoding, followed by one M-step.
    weights_init : optional (K,) initial π. probs_init : optional (K, M) initial θ in the
        concatenated layout, > 0 and summing to 1 over each column's block.
    random_state, warm_start, verbose, max_time, callbacks, chunk_size, learning_decay,
    learning_offset : the EM engine's options (see `latentkit.em`).

    X holds integer codes stored as floats, NaN for missing; a non-integer, negative or
    out-of-range code is a ValueError naming its row, column and the allowed range (at fit
    and at predict time).

    Attributes
    ----------
    weights_ (K,), probs_ (K, M) concatenated θ, n_categories_ (J,) int64, converged_,
    n_iter_, lower_bound_ and history_ (mean per row of log p(X | θ) + log p(θ)),
    n_features_in_. float32 input gives float32 attributes and outputs.
    """

    _probs_attribute = "probs_"
    _kernels = CATEGORICAL_KERNELS
    em_family = discrete_family(
        CATEGORICAL_KERNELS, remedy="increase alpha (the Dirichlet smoothing), use fewer "
        "components, or fit in float64")
    _parameter_constraints: ClassVar[dict] = {
        "n_categories": [ARRAY_OR_NONE],
        "probs_init": [ARRAY_OR_NONE],
    }

    def __init__(self, n_components=1, *, n_categories=None, alpha=0.01, weight_alpha=1.0,
                 tol=1e-3, max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 probs_init=None, random_state=None, warm_start=False, verbose=None,
                 max_time=None, callbacks=None, chunk_size=None, learning_decay=0.7,
                 learning_offset=10.0):
        self._store_init_args(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True  # integer codes
        return tags

    # -- layout, encoding and validation --------------------------------------------------

    def _offsets(self) -> np.ndarray:
        """(J,) start of each column's block in the concatenated levels."""
        return level_offsets(self.n_categories_)

    def _layout(self):
        L = self.n_categories_
        return np.repeat(np.arange(len(L)), L), L

    def _given_n_categories(self, n_features: int):
        """The n_categories parameter checked against the data : (J,) int64, or None."""
        if self.n_categories is None:
            return None
        given = np.asarray(self.n_categories)
        if (given.shape != (n_features,) or given.dtype.kind not in "iu"
                or np.any(given < 1)):
            raise InvalidParameterError(
                f"{type(self).__name__}: parameter 'n_categories' must be None or one integer "
                f">= 1 per column ({n_features} columns); got {self.n_categories!r}.")
        return given.astype(np.int64)

    def _check_chunks(self, chunks, *, reset):
        """Check the codes of every chunk; at fit (reset) also settle `n_categories_`: the
        parameter when given, else the largest code + 1 (1 for an all-missing column)."""
        limits = None if reset else self.n_categories_
        largest = None
        for offset, X in chunks:
            if reset and largest is None:
                limits = self._given_n_categories(X.shape[1])
            top = check_codes(X, limits, offset, type(self).__name__)
            largest = top if largest is None else np.maximum(largest, top)
        if reset:
            self.n_categories_ = limits if limits is not None else np.maximum(largest + 1, 1)

    def _chunk_floats_per_row(self, n_features):
        levels = getattr(self, "n_categories_", None)
        M = int(np.sum(levels)) if levels is not None else 8 * n_features
        return M + n_features + 3 * self.n_components

    def _user_probs(self):
        if self.probs_init is None:
            return None
        starts, L = self._offsets(), self.n_categories_
        blocks = [slice(s, s + n) for s, n in zip(starts, L)]
        return check_probability_array("probs_init", self.probs_init,
                                       (self.n_components, int(L.sum())), blocks=blocks)

    # -- parameters <-> fitted attributes -------------------------------------------------

    def _n_parameters(self):
        K = self.n_components
        return K * int(np.sum(self.n_categories_ - 1)) + K - 1

    def category_probs(self, j: int) -> np.ndarray:
        """θ of column j : (K, L_j), p(x_j = l | z = k)."""
        check_is_fitted(self)
        J = len(self.n_categories_)
        if isinstance(j, bool) or not isinstance(j, int | np.integer) or not -J <= j < J:
            raise InvalidParameterError(
                f"column index j must be an integer in [0, {J}); got {j!r}.")
        start = self._offsets()[j]
        return self.probs_[:, start:start + self.n_categories_[j]]

    # -- uses -----------------------------------------------------------------------------

    def impute(self, X):
        """X with each NaN replaced by the most probable code under the posterior predictive
        p(x_j = l | x_obs) = Σ_k p(k | x_obs) θ_kjl (the mode, not a mean: codes are
        nominal, so an average of codes would be meaningless). X : (n, J)."""
        X, observed, predictive = self._predictive(X)
        out = X.copy()
        for j, (start, L) in enumerate(zip(self._offsets(), self.n_categories_)):
            missing = ~observed[:, j]
            if missing.any():
                out[missing, j] = np.argmax(predictive[missing, start:start + L], axis=1)
        return out

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, z): z ~ Categorical(π), x_j | z ~ Categorical(θ_zj) by inverse CDF.

        X : (n_samples, J) integer codes in the dtype of probs_; z : (n_samples,) int.
        random_state : None (fresh entropy), an int seed or a Generator.
        """
        rng, params, z = self._sample_setup(n_samples, random_state)
        X = np.empty((n_samples, len(self.n_categories_)), dtype=self.probs_.dtype)
        for j, (start, L) in enumerate(zip(self._offsets(), self.n_categories_)):
            cumulative = np.cumsum(params.probs[z, start:start + L], axis=1)
            u = rng.random((n_samples, 1)) * cumulative[:, -1:]
            X[:, j] = np.minimum((u >= cumulative).sum(axis=1), L - 1)
        return X, z
