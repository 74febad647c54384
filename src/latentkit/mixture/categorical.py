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

State names (`latentkit._states`): fit on a DataFrame or an object array whose columns hold
strings (or pandas Categoricals) learns each such column's names, `categories_[j]`, and
codes them l = position of the name in that sorted list (a Categorical keeps its order);
every later X may hold the same names, and outputs in data space (impute, sample) are
names again: names in, names out.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .. import em
from .._frames import is_data_frame
from .._linalg import log_normalize
from .._states import (
    MAX_CATEGORIES,
    MAX_ONE_HOT_ENTRIES,
    MAX_TABLE_ENTRIES,
    MAX_TOTAL_LEVELS,
    RECODE,
    SavesStateNames,
    check_as_names,
    check_level_count,
    decode_table,
    encode_table,
    holds_names,
    label_probs,
    learn_table,
)
from .._validation import unmask
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


def check_codes(X: np.ndarray, n_categories, offset: int, model: str,
                limit_names=None) -> np.ndarray:
    """Raise InvalidInputError at the first entry of X : (n, J) that is not NaN or an
    integer code in [0, n_categories[j]) (n_categories None: in [0, MAX_CATEGORIES)); name
    its row and column. Negative entries are reported first (so negative data is always
    reported as such), then non-finite or fractional ones, then codes out of range (a code
    beyond MAX_CATEGORIES, even beyond int64, is an error, never an allocation).
    limit_names : (J,) how messages name each column's limit (default "n_categories[j]").

    Returns the largest observed code per column : (J,), -1 where none is observed.
    """
    observed = ~np.isnan(X)
    values = np.where(observed, X, 0)
    limits = MAX_CATEGORIES if n_categories is None else np.asarray(n_categories)
    with np.errstate(invalid="ignore"):
        checks = (("negative", values < 0),
                  ("malformed", ~np.isfinite(values) | (values != np.floor(values))),
                  ("large", values >= limits))
    for kind, bad in checks:
        if bad.any():
            row, col = np.unravel_index(np.argmax(bad), bad.shape)
            name = (f"n_categories[{col}]" if limit_names is None else limit_names[col])
            raise _code_error(kind, float(X[row, col]), offset + int(row), int(col),
                              n_categories, model, name)
    return np.where(observed, X, -1).max(axis=0, initial=-1).astype(np.int64)


def _code_error(kind: str, value: float, row: int, col: int, n_categories, model: str,
                limit_name: str) -> InvalidInputError:
    """The message of `check_codes` for the bad entry X[row, col] = value."""
    if kind == "large" and n_categories is None:
        return InvalidInputError(
            f"X[:, {col}] holds the code {value:g} (row {row}); categorical codes must be "
            f"integers 0..L-1 with L <= {MAX_CATEGORIES} (MAX_CATEGORIES), so {model} cannot "
            f"model column {col} as it is: {RECODE}.")
    allowed = (f"integer codes 0..{MAX_CATEGORIES - 1}" if n_categories is None else
               f"integer codes 0..{n_categories[col] - 1} ({limit_name} = "
               f"{n_categories[col]})")
    what = "Negative values in data: " if kind == "negative" else ""
    return InvalidInputError(
        f"{what}X[{row}, {col}] = {value!r} is not a valid category code for {model}: "
        f"column {col} takes {allowed}, or NaN for missing.")


def check_layout(n_levels: np.ndarray, n_components: int, size_param: str, latent: str,
                 model: str) -> None:
    """Bound the parameters' size before any is allocated: Σ_j L_j <= MAX_TOTAL_LEVELS (the
    one-hot width) and K Σ_j L_j <= MAX_TABLE_ENTRIES (θ). n_levels : (J,), each already
    <= MAX_CATEGORIES; size_param, latent : the model's words for K ("n_classes",
    "classes")."""
    total = int(np.sum(n_levels, dtype=np.int64))
    if total > MAX_TOTAL_LEVELS:
        widest = int(np.argmax(n_levels))
        raise InvalidInputError(
            f"{model}: the columns have {total} levels in all (column {widest} alone has "
            f"{int(n_levels[widest])}); the one-hot encoding takes at most "
            f"{MAX_TOTAL_LEVELS} (MAX_TOTAL_LEVELS): drop or recode the columns with the "
            "most levels.")
    if n_components * total > MAX_TABLE_ENTRIES:
        raise InvalidParameterError(
            f"{model}: {size_param}={n_components} {latent} times {total} levels is "
            f"{n_components * total} level probabilities, more than {MAX_TABLE_ENTRIES} "
            f"(MAX_TABLE_ENTRIES): use fewer {latent}, or recode the columns with the most "
            "levels.")


def inverse_cdf(probs: np.ndarray, z: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Codes : (n,) drawn from p(x = l | z) = probs[z, l] by inverse CDF: the number of
    cumulative sums <= u Σ_l probs[z, l], capped at L - 1. probs : (K, L); z : (n,) ints;
    u : (n,) uniform on [0, 1). Memory O(n + K L): one searchsorted per component."""
    cumulative = np.cumsum(probs, axis=1)
    out = np.empty(len(z), dtype=np.intp)
    for k in np.unique(z):
        rows = z == k
        out[rows] = np.searchsorted(cumulative[k], u[rows] * cumulative[k, -1], side="right")
    return np.minimum(out, probs.shape[1] - 1)


@register_model
class CategoricalMixture(SavesStateNames, DiscreteMixture):
    """Mixture of categoricals: clustering, density estimation and imputation of
    integer-coded categorical data.

    Parameters
    ----------
    n_components : int, number of mixture components K (K <= n_samples).
    n_categories : None or a sequence of J ints in [1, MAX_CATEGORIES = 10_000], the number
        of levels L_j of each column. None infers L_j = (largest code of column j in the
        fit data) + 1 (1 for a column with no observed value); give it explicitly when the
        fit data may miss the top levels, and for `partial_fit` (later batches must stay
        within it).
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
    and at predict time). Sizes are bounded before anything is allocated (limits in
    `latentkit._states`): codes below MAX_CATEGORIES = 10_000 (a larger code, e.g. an
    identifier, is an InvalidInputError telling to recode the column), Σ_j L_j <=
    MAX_TOTAL_LEVELS = 100_000, K Σ_j L_j <= MAX_TABLE_ENTRIES = 10**7; the initialization
    encodes at most max(K, MAX_ONE_HOT_ENTRIES // Σ_j L_j) random rows of its sample.

    Or X holds state names: a DataFrame with string / object / pandas Categorical columns
    (numeric columns stay codes), or a 2-D object array of strings (at most MAX_CATEGORIES
    distinct names per column); None, NaN and pd.NA are missing. Fit learns
    `categories_`, and every method taking X (predict, predict_proba, score, score_samples,
    transform, posterior, impute, bic, aic, partial_fit) then maps the names; a name not
    seen at fit is an InvalidInputError naming the column, row, value and known states.
    n_categories, when given, must equal the number of names of a named column.

    Attributes
    ----------
    weights_ (K,), probs_ (K, M) concatenated θ, n_categories_ (J,) int64, converged_,
    n_iter_, lower_bound_ and history_ (mean per row of log p(X | θ) + log p(θ)),
    n_features_in_ (and feature_names_in_ after a DataFrame). float32 input gives float32
    attributes and outputs. categories_ : None after a fit on integer codes; after a fit on
    names, a list of J entries: column j's state names (L_j,) object array (sorted, or a
    Categorical's categories in order), None for a column of codes.
    """

    _probs_attribute = "probs_"
    _state_name_attributes = ("categories_",)  # saved as flat arrays
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
        tags.input_tags.categorical = True  # integer codes, or state names (categories_)
        return tags

    # -- layout, encoding and validation --------------------------------------------------

    def _offsets(self) -> np.ndarray:
        """(J,) start of each column's block in the concatenated levels."""
        return level_offsets(self.n_categories_)

    def _layout(self):
        L = self.n_categories_
        return np.repeat(np.arange(len(L)), L), L

    def _given_n_categories(self, n_features: int):
        """The n_categories parameter checked against the data and the learned state names
        : (J,) int64, or None."""
        if self.n_categories is None:
            return None
        given = np.asarray(self.n_categories)
        if (given.shape != (n_features,) or given.dtype.kind not in "iu"
                or np.any(given < 1)):
            raise InvalidParameterError(
                f"{type(self).__name__}: parameter 'n_categories' must be None or one integer "
                f">= 1 per column ({n_features} columns); got {self.n_categories!r}.")
        for j, L in enumerate(given.tolist()):
            check_level_count(L, f"{type(self).__name__}: n_categories[{j}] = {L}",
                              f"is too many levels for column {j}", InvalidParameterError,
                              fix=f"give the column's true number of levels: {RECODE}")
        for j, states in enumerate(getattr(self, "categories_", None) or ()):
            if states is not None and given[j] != len(states):
                raise InvalidParameterError(
                    f"{type(self).__name__}: n_categories[{j}] = {given[j]}, but column {j} "
                    f"has {len(states)} state names {list(states)}; drop n_categories (or "
                    "give a pandas Categorical with every state).")
        return given.astype(np.int64)

    def _named_levels(self, levels: np.ndarray) -> np.ndarray:
        """levels (J,) with each named column's L_j = its number of state names (a
        Categorical's unobserved categories count)."""
        levels = levels.copy()
        for j, states in enumerate(getattr(self, "categories_", None) or ()):
            if states is not None:
                levels[j] = len(states)
        return levels

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        """Names -> codes (learning `categories_` at fit), then the codes' checks."""
        X = unmask(X, allow_nan=True, model=type(self).__name__)
        if reset:
            self.categories_ = learn_table(X)
        else:
            check_is_fitted(self)
            fit_columns = getattr(self, "feature_names_in_", None)
            renamed = fit_columns is not None and is_data_frame(X) and list(X.columns) != list(
                fit_columns)
            if renamed:
                return super()._validate_X(X, reset=reset)  # scikit-learn's column error
        X = encode_table(X, getattr(self, "categories_", None), type(self).__name__)
        return super()._validate_X(X, reset=reset)

    def _source(self, X, *, reset: bool) -> em.ChunkSource:
        if reset and em.is_streaming(X):
            self.categories_ = None  # a stream holds codes
        return super()._source(X, reset=reset)

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
            levels = limits if limits is not None else np.maximum(largest + 1, 1)
            levels = self._named_levels(levels)
            check_layout(levels, self.n_components, self._size_param, self._latent_plural,
                         type(self).__name__)
            self.n_categories_ = levels

    def _init_rows(self):
        """At most MAX_ONE_HOT_ENTRIES / Σ_j L_j rows of one-hot encoding at initialization
        (and never fewer than K)."""
        return max(self.n_components, MAX_ONE_HOT_ENTRIES // int(np.sum(self.n_categories_)))

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

    #: the name of the latent variable's axis in labelled outputs
    _latent_name: ClassVar[str] = "component"

    def category_probs(self, j, *, as_frame: bool = False):
        """θ of column j : (K, L_j), p(x_j = l | z = k). j : a column index, or a column
        name of the fit DataFrame. as_frame=True gives a DataFrame: one row per component,
        one column per state name (per code 0..L_j-1 for a column of codes)."""
        check_is_fitted(self)
        J = len(self.n_categories_)
        names = list(getattr(self, "feature_names_in_", ()))
        if isinstance(j, str) and j in names:
            j = names.index(j)
        if isinstance(j, bool) or not isinstance(j, int | np.integer) or not -J <= j < J:
            raise InvalidParameterError(
                f"column index j must be an integer in [0, {J})"
                + (f" or a column name {names}" if names else "") + f"; got {j!r}.")
        start = self._offsets()[j]
        probs = self.probs_[:, start:start + self.n_categories_[j]]
        if not as_frame:
            return probs
        states = (self.categories_ or [None] * J)[j]
        return label_probs(probs, range(probs.shape[1]) if states is None else states,
                           names[j] if names else j, index_name=self._latent_name)

    # -- uses -----------------------------------------------------------------------------

    def impute(self, X):
        """X with each NaN replaced by the most probable code under the posterior predictive
        p(x_j = l | x_obs) = Σ_k p(k | x_obs) θ_kjl (the mode, not a mean: codes are
        nominal, so an average of codes would be meaningless). X : (n, J). The predictive
        is formed a column and a block of rows at a time (memory O(n K + 2**20)).

        Names in, names out: an X holding state names gives an object array (a DataFrame
        for a DataFrame) of names in the named columns, codes in the others."""
        named = holds_names(X)
        X, log_joint = self._log_joint(X)
        resp = np.exp(log_normalize(log_joint)[0])
        probs = self._current_params().probs
        out = X.copy()
        for j, (start, L) in enumerate(zip(self._offsets(), self.n_categories_)):
            missing = np.flatnonzero(np.isnan(X[:, j]))
            rows = max(1, 2**20 // int(L))
            for first in range(0, len(missing), rows):
                block = missing[first:first + rows]
                out[block, j] = np.argmax(resp[block] @ probs[:, start:start + L], axis=1)
        return decode_table(out, self.categories_) if named else out

    def sample(self, n_samples=1, random_state=None, *, as_names=None):
        """Draw (X, z): z ~ Categorical(π), x_j | z ~ Categorical(θ_zj) by inverse CDF.

        X : (n_samples, J) integer codes in the dtype of probs_; z : (n_samples,) int.
        random_state : None (fresh entropy), an int seed or a Generator. as_names : None
        (names when the model was fitted on names), True or False: X as an object array of
        state names in the named columns (a DataFrame after a fit on a DataFrame).
        """
        categories = getattr(self, "categories_", None)
        named = check_as_names(as_names, categories is not None)
        if named and categories is None:
            raise InvalidParameterError(
                f"as_names=True, but this {type(self).__name__} was fitted on integer codes "
                "and has no state names.")
        rng, params, z = self._sample_setup(n_samples, random_state)
        X = np.empty((n_samples, len(self.n_categories_)), dtype=self.probs_.dtype)
        for j, (start, L) in enumerate(zip(self._offsets(), self.n_categories_)):
            X[:, j] = inverse_cdf(params.probs[:, start:start + L], z,
                                  rng.random((n_samples, 1))[:, 0])
        if named:
            X = decode_table(X, categories)
        return X, z
