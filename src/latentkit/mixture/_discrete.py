"""What the discrete mixtures (Bernoulli, categorical) share: statistics, the EM family's
pure functions (initialization, E-step, MAP M-step with re-seeding, log-prior) and the
inference methods.

Both are mixtures of independent per-column categoricals (a binary column is a categorical
with two levels), learned by MAP-EM with symmetric Dirichlet smoothing given as pseudo-counts:

    π ~ Dirichlet(1 + β, ..., 1 + β),   θ_kj ~ Dirichlet(1 + α, ..., 1 + α)  (each k, column j)

The M-step is the posterior mode, a smoothed relative frequency,

    θ_kjl = (c_kjl + α) / (o_kj + L_j α),      π_k = (n_k + β) / (Σ_k' n_k' + K β),

with expected counts c_kjl = Σ_n r_nk [x_nj = l], o_kj = Σ_n r_nk [x_nj observed] and
n_k = Σ_n r_nk. A missing x_nj drops out of p(x_n | k) = Π_j θ_kj,x_nj (exact
marginalization: the factor sums to 1 over its levels), so it adds to neither c nor o.
With α, β > 0 no probability is ever exactly 0 or 1, and MAP-EM increases
log p(X | θ) + log p(θ), log p(θ) = α Σ log θ + β Σ log π + const, which is the objective
the engine tracks (its monotonicity guard included).

A model supplies its `DiscreteKernels`: the encoding of a chunk,
`encode(X, n_levels) -> (counts_matrix, observed)`, whose GEMMs with the responsibilities
give c and o, its log-likelihood kernel and its log-prior over θ; `discrete_family` turns
them into the model's `em.EMFamily`. The family keeps no state between iterations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import ClassVar, NamedTuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .. import em
from .._linalg import log_normalize
from .._validation import (
    InstanceOf,
    Interval,
    Options,
    as_generator,
    check_n_samples,
)
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_record
from ._base import MixtureModel
from ._init import INIT_METHODS, initial_responsibilities
from ._worst import WorstPoints

RESEED_THRESHOLD = 1.0  # a component with fewer expected members than this is "empty"
ARRAY_OR_NONE = InstanceOf(np.ndarray, list, tuple, type(None), description="an array or None")


class DiscreteParams(NamedTuple):
    """weights : (K,) π; probs : (K, M) level probabilities (μ_kd for Bernoulli, the
    concatenated θ_kj for categorical)."""

    weights: np.ndarray
    probs: np.ndarray


class DiscreteConfig(NamedTuple):
    """The validated hyper-parameters and level layout of one fit.

    n_components : K; alpha, weight_alpha : the pseudo-counts α, β; init_params : the
    starting responsibilities' method; level_column : (M,) the column of each level;
    n_levels : (J,) L_j; weights_init : (K,) or None and probs_init : (K, M) or None, the
    user's validated starting values; model : the class name, for messages; latent_words :
    the model's word for its latent states in messages ("component(s)", "class(es)");
    init_rows : the most rows of the init sample the initialization encodes (a random
    subset of them when there are more; None: all).
    """

    n_components: int
    alpha: float
    weight_alpha: float
    init_params: str
    level_column: np.ndarray
    n_levels: np.ndarray
    weights_init: np.ndarray | None
    probs_init: np.ndarray | None
    model: str
    latent_words: str = "component(s)"
    init_rows: int | None = None


class DiscreteKernels(NamedTuple):
    """What distinguishes one discrete mixture from another.

    encode : (X (n, J), n_levels (J,)) -> (counts_matrix (n, M), observed (n, J) or None
        when nothing is missing), both in X's dtype.
    log_likelihood : (counts_matrix (n, M), observed, probs (K, M)) -> log p(x_obs | z = k)
        : (n, K).
    log_prior_probs : probs (K, M) -> Σ log θ over all levels (the prior's log-density / α,
        up to a constant).
    """

    encode: Callable
    log_likelihood: Callable
    log_prior_probs: Callable


@register_record
@dataclass(frozen=True)
class DiscreteStats(em.SufficientStats):
    """n : rows seen; nk : (K,) Σ_n r_nk; counts : (K, M) R^T (counts matrix);
    observed : (K, J) R^T O; worst : the K worst-explained complete rows (merged by min).

    `worst` is neither added nor scaled: it merges by minimum and is carried through online
    EM's scaling unchanged.
    """

    n: float
    nk: np.ndarray
    counts: np.ndarray
    observed: np.ndarray
    worst: WorstPoints = WorstPoints()

    additive: ClassVar[tuple[str, ...]] = ("n", "nk", "counts", "observed")

    def __add__(self, other):
        return replace(super().__add__(other), worst=self.worst + other.worst)


# -- kernels ------------------------------------------------------------------------------


def smoothed_frequencies(counts, totals, n_levels, alpha: float) -> np.ndarray:
    """(counts + α) / (totals + n_levels α): the mode of Dirichlet(counts + 1 + α).

    Shapes broadcast: counts (..., M), totals and n_levels broadcastable to it.
    """
    return (counts + alpha) / (totals + n_levels * alpha)


def observed_counts(resp: np.ndarray, observed: np.ndarray | None, n_columns: int):
    """o = R^T O : (K, J) as float64; observed None (nothing missing) gives n_k per column."""
    if observed is None:
        return np.repeat(resp.sum(axis=0, dtype=np.float64)[:, None], n_columns, axis=1)
    return (resp.T @ observed).astype(np.float64)


def collect_stats(log_joint: np.ndarray, X: np.ndarray, counts_matrix: np.ndarray,
                  observed: np.ndarray | None):
    """Statistics of one chunk from log π_k + log p(x_n | k).

    log_joint : (n, K); X : (n, J) the raw chunk (for the worst rows); counts_matrix :
    (n, M); observed : (n, J) or None when nothing is missing. The GEMMs run in the chunk's
    dtype; the results are summed across chunks in float64.
    Returns (DiscreteStats, Σ_n log p(x_n)).
    """
    log_resp, log_px = log_normalize(log_joint)
    resp = np.exp(log_resp).astype(counts_matrix.dtype)
    stats = DiscreteStats(
        n=float(len(X)),
        nk=resp.sum(axis=0, dtype=np.float64),
        counts=(resp.T @ counts_matrix).astype(np.float64),
        observed=observed_counts(resp, observed, X.shape[1]),
        worst=WorstPoints.of(X, log_px, capacity=log_joint.shape[1]),
    )
    return stats, float(log_px.sum(dtype=np.float64))


def map_estimate(stats: DiscreteStats, level_column: np.ndarray, n_levels: np.ndarray,
                 alpha: float, weight_alpha: float) -> DiscreteParams:
    """The MAP update θ, π from the statistics (module docstring).

    level_column : (M,) the column of each level; n_levels : (J,) L_j.
    """
    K = len(stats.nk)
    weights = smoothed_frequencies(stats.nk, stats.nk.sum(), K, weight_alpha)
    probs = smoothed_frequencies(stats.counts, stats.observed[:, level_column],
                                 n_levels[level_column], alpha)
    return DiscreteParams(weights, probs)


def _reseed_threshold(stats: DiscreteStats, n_levels, alpha: float, weight_alpha: float):
    """log π_new + log p(x | new) of a component fitted to one complete row x alone."""
    K = len(stats.nk)
    return (math.log((1.0 + weight_alpha) / (stats.nk.sum() + K * weight_alpha))
            + float(np.sum(np.log((1.0 + alpha) / (1.0 + n_levels * alpha)))))


def reseed_empty(stats: DiscreteStats, encode_row, n_levels: np.ndarray, alpha: float,
                 weight_alpha: float, model: str,
                 latent_words: str = "component(s)") -> tuple[DiscreteStats, em.StepInfo]:
    """Give each empty component (n_k < 1) the statistics of its own badly explained row.

    A component fitted to a row x alone has θ = (onehot(x) + α) / (1 + L_j α), so
    log p(x | new) = Σ_j log((1 + α) / (1 + L_j α)), and weight ≈ (1 + β) / (N + K β). A row
    is used only if the new component would then be the likelier source of it than the
    whole current mixture (log π_new + log p(x | new) > log p(x)); when no row qualifies,
    every row is already explained and the smoothed empty component is left as it is (it
    is still well defined). Rows with equal values are used once, so two components never
    land on the same point.

    encode_row : (J,) complete row -> (M,) its counts-matrix row. Returns (statistics,
    StepInfo naming the re-seeded components in the model's words; `em.NOTHING` and the
    statistics unchanged when none was).
    """
    K = len(stats.nk)
    empty = np.flatnonzero(stats.nk < RESEED_THRESHOLD)
    worst = stats.worst
    if K == 1 or empty.size == 0 or worst.X is None:
        return stats, em.NOTHING
    threshold = _reseed_threshold(stats, n_levels, alpha, weight_alpha)
    seeds, seed_ll = [], []
    for ll, x in zip(worst.log_likelihood, worst.X):  # ascending log-likelihood
        if ll >= threshold or len(seeds) == empty.size:
            break
        if not any(np.array_equal(x, seed) for seed in seeds):
            seeds.append(x)
            seed_ll.append(ll)
    if not seeds:
        return stats, em.NOTHING
    nk, counts, observed = stats.nk.copy(), stats.counts.copy(), stats.observed.copy()
    reseeded = empty[:len(seeds)]
    for k, x in zip(reseeded, seeds):
        nk[k], counts[k], observed[k] = 1.0, encode_row(x), 1.0
    message = (
        f"{model}: {latent_words} {reseeded.tolist()} had fewer than {RESEED_THRESHOLD:g} "
        f"expected members ({np.round(stats.nk[reseeded], 3).tolist()}); re-seeded at the "
        f"worst-explained complete rows (log-likelihood {np.round(seed_ll, 3).tolist()}).")
    return (replace(stats, nk=nk, counts=counts, observed=observed),
            em.StepInfo(tuple(int(k) for k in reseeded), message))


def check_probability_array(name: str, value, shape: tuple, blocks=()) -> np.ndarray:
    """A user-given initial probability array of `shape`, as float64.

    Entries must be > 0 (log 0 = -inf) and each slice of the last axis in `blocks` must sum
    to 1. With no blocks the entries are Bernoulli means μ, whose other level is 1 - μ, so
    they must also be < 1. Raises InvalidParameterError.
    """
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise InvalidParameterError(f"{name} must have shape {shape}; got {array.shape}.")
    upper_ok = bool(blocks) or bool(np.all(array < 1))
    if not (np.all(array > 0) and upper_ok):
        bound = "in (0, 1]" if blocks else "strictly between 0 and 1"
        raise InvalidParameterError(
            f"{name} must hold probabilities {bound} (log 0 is -inf); got min "
            f"{np.nanmin(array):.3g}, max {np.nanmax(array):.3g}.")
    for block in blocks:
        sums = array[..., block].sum(axis=-1)
        if not np.allclose(sums, 1.0, atol=1e-6):
            raise InvalidParameterError(f"{name} must sum to 1 over each distribution; got "
                                        f"sums {np.round(sums, 6)}.")
    return array


# -- the EM family ------------------------------------------------------------------------


def init(X, rng, config: DiscreteConfig, restart: int, *, kernels: DiscreteKernels):
    """(θ, None) from one M-step on the responsibilities of `init_params` (no re-seeding),
    then the user's weights_init / probs_init where set. X : (n, J) the init sample, of
    which at most config.init_rows random rows are used."""
    if config.weights_init is not None and config.probs_init is not None:
        return DiscreteParams(config.weights_init, config.probs_init), None
    if config.init_rows is not None and len(X) > config.init_rows:  # bounded encoding
        X = X[np.sort(rng.choice(len(X), size=config.init_rows, replace=False))]
    counts_matrix, observed = kernels.encode(X, config.n_levels)
    # the counts matrix with NaN where its column is missing: what k-means sees
    features = (counts_matrix if observed is None else
                np.where(observed[:, config.level_column] > 0, counts_matrix, np.nan))
    resp = initial_responsibilities(features, config.n_components, config.init_params, rng)
    stats = DiscreteStats(float(len(X)), resp.sum(axis=0), resp.T @ counts_matrix,
                          observed_counts(resp, observed, X.shape[1]))
    weights, probs = map_estimate(stats, config.level_column, config.n_levels, config.alpha,
                                  config.weight_alpha)
    params = DiscreteParams(weights if config.weights_init is None else config.weights_init,
                            probs if config.probs_init is None else config.probs_init)
    return params, None


def e_step(params: DiscreteParams, state, config: DiscreteConfig, X, *,
           kernels: DiscreteKernels):
    """(DiscreteStats, Σ_n log p(x_n)) of one chunk X : (n, J), NaN = missing."""
    counts_matrix, observed = kernels.encode(X, config.n_levels)
    log_joint = kernels.log_likelihood(counts_matrix, observed, params.probs)
    log_joint += np.log(params.weights).astype(log_joint.dtype)
    return collect_stats(log_joint, X, counts_matrix, observed)


def m_step(stats: DiscreteStats, params: DiscreteParams, state, config: DiscreteConfig, *,
           kernels: DiscreteKernels):
    """(θ, None, StepInfo): empty components re-seeded (`reseed_empty`), then the MAP
    update."""
    def encode_row(x):
        return kernels.encode(x[None], config.n_levels)[0][0]

    stats, info = reseed_empty(stats, encode_row, config.n_levels, config.alpha,
                               config.weight_alpha, config.model, config.latent_words)
    new = map_estimate(stats, config.level_column, config.n_levels, config.alpha,
                       config.weight_alpha)
    return new, state, info


def log_prior(params: DiscreteParams, config: DiscreteConfig, *,
              kernels: DiscreteKernels) -> float:
    """log p(θ) + const = β Σ_k log π_k + α Σ log θ (all levels)."""
    return (config.weight_alpha * float(np.log(params.weights).sum())
            + config.alpha * kernels.log_prior_probs(params.probs))


def discrete_family(kernels: DiscreteKernels, remedy: str) -> em.EMFamily:
    """The MAP-EM family of a discrete mixture with the given kernels (exact objective:
    log p(X | θ) + log p(θ))."""
    return em.EMFamily(init=partial(init, kernels=kernels),
                       e_step=partial(e_step, kernels=kernels),
                       m_step=partial(m_step, kernels=kernels),
                       log_prior=partial(log_prior, kernels=kernels),
                       objective=em.EXACT, remedy=remedy)


# -- the shared model ---------------------------------------------------------------------


class DiscreteMixture(MixtureModel):
    """Base of BernoulliMixture and CategoricalMixture (not public).

    A subclass defines `_kernels` (its `DiscreteKernels`), `em_family`
    (`discrete_family(_kernels, remedy)`), `_check_chunks`, the level layout
    `_layout() -> (level_column (M,), n_levels (J,))`, `_user_probs`, and `_probs_attribute`:
    the public name of the level probabilities (`means_` for Bernoulli, scikit-learn's
    name; `probs_` for categorical).
    """

    _probs_attribute: ClassVar[str]
    _kernels: ClassVar[DiscreteKernels]
    #: the model's words for K and its latent states, in messages
    _size_param: ClassVar[str] = "n_components"
    _latent_plural: ClassVar[str] = "components"
    _latent_words: ClassVar[str] = "component(s)"

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 1, None)],
        "alpha": [Interval(float, 0, None, closed="neither")],
        "weight_alpha": [Interval(float, 0, None, closed="neither")],
        "init_params": [Options(*INIT_METHODS)],
        "weights_init": [ARRAY_OR_NONE],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True  # codes and binary values are >= 0
        return tags

    # -- parameters <-> fitted attributes -------------------------------------------------

    def _store_params(self, params, dtype):
        self.weights_ = params.weights.astype(dtype)
        setattr(self, self._probs_attribute, params.probs.astype(dtype))

    def _current_params(self):
        check_is_fitted(self)
        return DiscreteParams(self.weights_.astype(np.float64),
                              getattr(self, self._probs_attribute).astype(np.float64))

    # -- validation -----------------------------------------------------------------------

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        X = super()._validate_X(X, reset=reset)
        self._check_chunks([(0, X)], reset=reset)
        return X

    def _source(self, X, *, reset: bool) -> em.ChunkSource:
        source = super()._source(X, reset=reset)
        if em.is_streaming(X):  # one checking pass; in memory, _validate_X did it
            self._check_chunks(_with_offsets(source), reset=reset)
        return source

    def _em_config(self, n_samples, n_features) -> DiscreteConfig:
        K = self.n_components
        if n_samples is not None and K > n_samples:
            raise InvalidInputError(
                f"{self._size_param}={K} must be <= n_samples={n_samples}: there are not "
                f"enough samples to fit {K} {self._latent_plural}. Use fewer "
                f"{self._latent_plural} or more data.")
        weights_init, probs_init = self._user_weights(), self._user_probs()
        level_column, n_levels = self._layout()
        return DiscreteConfig(K, self.alpha, self.weight_alpha, self.init_params,
                              level_column, n_levels, weights_init, probs_init,
                              type(self).__name__, self._latent_words, self._init_rows())

    def _init_rows(self) -> int | None:
        """The most rows of the init sample to encode (None: all of them)."""
        return None

    # -- inference ------------------------------------------------------------------------

    def _log_joint(self, X):
        """Validated X and log π_k + log p(x_n | k) : (n, K) at the fitted parameters,
        computed in row chunks so that the encoding's memory stays bounded."""
        X = self._validate_X(X, reset=False)
        params = self._current_params()
        n_levels = self._layout()[1]
        rows = self.chunk_size or em.auto_chunk_rows(self._chunk_floats_per_row(X.shape[1]))
        log_joint = np.concatenate([
            self._kernels.log_likelihood(*self._kernels.encode(X[start:start + rows], n_levels),
                                         params.probs)
            for start in range(0, len(X), rows)])
        return X, log_joint + np.log(params.weights).astype(log_joint.dtype)

    def _predictive(self, X):
        """(validated X, observed mask, posterior predictive level probabilities (n, M)):
        p(x_j = l | x_obs) = Σ_k p(k | x_obs) θ_kjl."""
        X, log_joint = self._log_joint(X)
        resp = np.exp(log_normalize(log_joint)[0])
        return X, ~np.isnan(X), resp @ self._current_params().probs

    def _sample_setup(self, n_samples, random_state):
        check_is_fitted(self)
        check_n_samples(n_samples)
        rng = as_generator(random_state)
        params = self._current_params()
        z = rng.choice(self.n_components, size=n_samples, p=params.weights / params.weights.sum())
        return rng, params, z

    def _user_weights(self):
        """weights_init validated and renormalized : (K,), or None."""
        if self.weights_init is None:
            return None
        weights = check_probability_array("weights_init", self.weights_init,
                                          (self.n_components,), blocks=[slice(None)])
        return weights / weights.sum()


def _with_offsets(chunks):
    """(row offset, chunk) pairs of an iterable of chunks."""
    offset = 0
    for chunk in chunks:
        yield offset, chunk
        offset += len(chunk)
