"""The model contract (DESIGN section 2).

`LatentModel` is what every latentkit model is: a scikit-learn estimator with
score_samples / score / posterior / transform / sample / bic / aic / save, and a persistence
hook (`_saved_state` / `_restore_state`) that `latentkit.io` saves and loads through.
`EMModel` adds `fit` and `partial_fit` on the shared EM engine for models whose family
supplies pure init / E-step / M-step functions (`latentkit.em.EMFamily`); the class itself
only maps the engine's parameter record to the public fitted attributes (names ending in
`_`) and back.
"""

from __future__ import annotations

import math
import sys
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import TransformerTags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _generate_get_feature_names_out, check_is_fitted

from . import em
from ._constraints import MAX_ITERATIONS, check_callbacks
from ._frames import frame_in_frame_out, named_sample
from ._validation import (
    InstanceOf,
    Interval,
    Options,
    as_generator,
    check_params,
    check_X,
)
from .exceptions import InvalidInputError


def _tabular_transform(model) -> bool:
    """Whether transform maps a table to a table (one output row per input row): every
    model but those whose rows are the time steps of sequences (they take batches and lists
    of sequences, and opt out of get_feature_names_out and set_output)."""
    return not model._rows_are_time_steps


class LatentModel(TransformerMixin, BaseEstimator):
    """Base of every latentkit model: p(x, z | θ) = p(z | θ) p(x | z, θ).

    Subclasses implement `score_samples`, `posterior`, `sample` and `_n_parameters`.

    pandas in, pandas out, as in scikit-learn: fit on a DataFrame records
    `feature_names_in_` and later calls check their columns against it;
    `set_output(transform="pandas")` makes transform / fit_transform return DataFrames with
    `get_feature_names_out()` as columns; `impute(DataFrame)` returns a DataFrame with the
    input's index and columns, and `sample` of a model fitted on a DataFrame returns X as a
    DataFrame (`latentkit._frames`).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)  # scikit-learn wraps transform / fit_transform
        if "impute" in cls.__dict__:
            cls.impute = frame_in_frame_out(cls.__dict__["impute"])
        if "sample" in cls.__dict__:
            cls.sample = named_sample(cls.__dict__["sample"])

    #: whether NaN in X means "missing" and is marginalized exactly
    _allow_nan: ClassVar[bool] = True
    #: whether the rows of X are the time steps of one sequence (score_samples then gives
    #: one value per sequence) rather than independent samples
    _rows_are_time_steps: ClassVar[bool] = False
    #: hyper-parameter constraints, checked on fit: {name: [constraint, ...]}
    _parameter_constraints: ClassVar[dict] = {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._allow_nan
        # transform() gives the posterior mean of z, in the input's float dtype
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        return tags

    # -- validation -----------------------------------------------------------------------

    def _store_init_args(self, args: dict) -> None:
        """scikit-learn's convention for __init__: store each argument under its own name
        and nothing else (validation happens in fit). Call as self._store_init_args(locals())."""
        for name, value in args.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _validate_params(self):
        constraints = {}
        for klass in reversed(type(self).__mro__):
            constraints.update(getattr(klass, "_parameter_constraints", {}))
        check_params(self, constraints)

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        """X : (n_samples, n_features) as float32/float64; n_features checked when not reset."""
        if not reset:
            check_is_fitted(self)
        return check_X(self, X, reset=reset, allow_nan=self._allow_nan)

    def _data_columns(self, X) -> list:
        """The names of the data columns (impute's output): `feature_names_in_`, which
        validation has checked X's columns against (a model that matches columns by name
        itself, like DiscreteBayesNet, returns its own order)."""
        return list(getattr(self, "feature_names_in_", X.columns))

    # -- the contract ---------------------------------------------------------------------

    def score_samples(self, X) -> np.ndarray:
        """log p(x) for each row : (n_samples,); missing entries are marginalized."""
        raise NotImplementedError

    def score(self, X, y=None) -> float:
        """Mean per-row log-likelihood log p(x)."""
        return float(np.mean(self.score_samples(X)))

    def posterior(self, X):
        """p(z | x) for each row, as a distribution object (`latentkit.distributions`)."""
        raise NotImplementedError

    def transform(self, X) -> np.ndarray:
        """The posterior mean of z for each row: the usable representation."""
        return self.posterior(X).mean

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit, then return the posterior mean of z for each row of X."""
        return self.fit(X).transform(X)

    @property
    def _n_features_out(self) -> int:
        """Columns of transform's output: the fitted latent size `n_components_` where fit
        records one (PCA, PPCA, FA), else the `n_components` hyper-parameter (the size
        parameter's conventional name). A model whose output has another width (mixtures,
        FastICA, the Bayes net) overrides this property."""
        check_is_fitted(self)
        size = getattr(self, "n_components_", getattr(self, "n_components", None))
        if not isinstance(size, int | np.integer):
            raise NotImplementedError(
                f"{type(self).__name__} does not say how many columns transform returns: "
                "define the property _n_features_out (or set n_components_ in fit).")
        return int(size)

    @available_if(_tabular_transform)
    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of transform's columns, as scikit-learn names them: the lower-cased class
        name and the column number (`pca0`, `pca1`, ...; `gaussianmixture0`, ... for a
        mixture's responsibilities). input_features, when given, must equal
        `feature_names_in_` (or have n_features_in_ entries when fit saw no names)."""
        check_is_fitted(self)
        return _generate_get_feature_names_out(self, self._n_features_out,
                                               input_features=input_features)

    @property
    def n_parameters_(self) -> int:
        """Number of free parameters, for BIC/AIC."""
        check_is_fitted(self)
        return int(self._n_parameters())

    def _n_parameters(self) -> int:
        raise NotImplementedError

    def bic(self, X) -> float:
        """Bayesian information criterion: -2 log p(X) + n_parameters log n (lower is better)."""
        n = np.shape(X)[0]
        return -2 * self.score(X) * n + self.n_parameters_ * math.log(n)

    def aic(self, X) -> float:
        """Akaike information criterion: -2 log p(X) + 2 n_parameters (lower is better)."""
        return -2 * self.score(X) * np.shape(X)[0] + 2 * self.n_parameters_

    def save(self, path) -> None:
        """Write the model to one file, atomically and without pickle (see `latentkit.load`)."""
        from .io import save

        save(self, path)

    # -- persistence hook (latentkit.io) ---------------------------------------------------

    def _saved_state(self) -> dict:
        """{name: value} that `save` stores: by default the fitted attributes. A model
        whose state is not plain arrays (torch weights) returns them converted here."""
        from .io import saved_state

        return saved_state(self)

    def _restore_state(self, state: dict) -> None:
        """Inverse of `_saved_state`, called by `load` on a freshly constructed model."""
        from .io import restore_state

        restore_state(self, state)

    def _progress_delay(self) -> float | None:
        """Seconds before the progress bar appears, or None for no bar: `verbose=None` shows
        one on a terminal once a fit has run for a second (quick fits stay quiet);
        verbose >= 1 shows it at once; 0 never."""
        verbose = getattr(self, "verbose", 0)
        if verbose is None:
            return 1.0 if sys.stderr.isatty() else None
        return 0.0 if verbose else None


#: the engine's hyper-parameters; max_iter and n_init are at most MAX_ITERATIONS (10**9),
#: and `_constraints.Interval` takes ints of any size (10**30 is refused with a message)
ENGINE_CONSTRAINTS = {
    "tol": [Interval(float, 0, None)],
    "max_iter": [Interval(int, 0, MAX_ITERATIONS)],
    "n_init": [Interval(int, 1, MAX_ITERATIONS)],
    "random_state": [
        Interval(int, 0, None),
        InstanceOf(np.random.Generator, np.random.RandomState, type(None), description="None"),
    ],
    "warm_start": [Options(True, False)],
    "verbose": [Interval(int, 0, None), Options(None, True, False)],
    "max_time": [Interval(float, 0, None, closed="neither"), Options(None)],
    "callbacks": [InstanceOf(list, tuple, type(None), description="a list of callables")],
    "chunk_size": [Interval(int, 1, None), Options(None)],
    "learning_decay": [Interval(float, 0.5, 1.0, closed="right")],
    "learning_offset": [Interval(float, 1.0, None)],
}


class EMModel(LatentModel):
    """A model learned by (exact, MAP or variational) EM on the shared engine: thin wiring
    between scikit-learn's estimator surface and its family's pure functions.

    A subclass sets the class attribute `em_family` (an `em.EMFamily`: init, E-step,
    M-step, objective kind, remedy) and supplies three small methods:

        _em_config(n_samples, n_features) -> config   validated hyper-parameters and what
            the family derives from them and the data's size (n_samples is None when a
            stream does not know it); raises InvalidInputError/InvalidParameterError
        _store_params(params, dtype)        the parameter record -> public fitted attributes
        _current_params()                   public fitted attributes -> the parameter record

    The family's state record lives in `em_state_` and the running statistics of online EM
    in `online_state_`: both are fitted attributes, saved with the model. Engine
    hyper-parameters every subclass accepts (and lists in its own __init__): tol, max_iter,
    n_init, random_state, warm_start, verbose, max_time, callbacks, chunk_size,
    learning_decay, learning_offset (max_iter and n_init at most 10**9; every entry of
    callbacks callable, checked when fit starts).

    What a fit records (the engine's `EMResult`): history_ (the mean objective at the E-step
    of each iteration, i.e. at the parameters entering it: history_[i] is the objective of
    the parameters after i M-steps), n_iter_, converged_ and stop_reason_ (how the run
    ended), best_iteration_ and lower_bound_. The engine returns the best complete iterate:
    the parameters after best_iteration_ M-steps. Normally those are the last M-step's
    (best_iteration_ == n_iter_) and lower_bound_ == history_[-1], the objective of the
    parameters that M-step started from (exact EM never lowers it: scikit-learn's
    convention). When a re-seeding (or a failing) step left the run worse than an iterate
    it had seen, it returns that iterate instead: best_iteration_ < n_iter_ and
    lower_bound_ == history_[best_iteration_], the objective of the returned parameters
    (converged_ and stop_reason_ still say how the run ended).

    warm_start=True continues from the fitted parameters and from the objective of the
    iterate before them (history_[best_iteration_ - 1], i.e. lower_bound_ when nothing was
    rolled back): the first iteration's change is measured from it, so repeated fits with a
    small max_iter set `converged_` once the change is below tol (as in scikit-learn).
    """

    _parameter_constraints: ClassVar[dict] = ENGINE_CONSTRAINTS
    #: the family's pure functions (see `latentkit.em.contract`)
    em_family: ClassVar[em.EMFamily]
    #: whether fit takes a scipy.sparse matrix (streamed as CSR row blocks)
    _accept_sparse: ClassVar[bool] = False
    #: the most rows the initialization sees (a random subset of a larger input)
    _max_init_rows: ClassVar[int] = 100_000
    #: rows per block of a partial_fit batch's threaded E-step (None: one block)
    _online_split_rows: ClassVar[int | None] = None

    def _validate_params(self):
        super()._validate_params()
        check_callbacks(type(self).__name__, self.callbacks)

    # -- what a subclass supplies ---------------------------------------------------------

    def _em_config(self, n_samples: int | None, n_features: int):
        raise NotImplementedError

    def _store_params(self, params, dtype) -> None:
        """Write the engine's parameter record to the public fitted attributes."""
        raise NotImplementedError

    def _current_params(self):
        """The parameter record rebuilt from the public fitted attributes."""
        raise NotImplementedError

    def _chunk_floats_per_row(self, n_features: int) -> int:
        return n_features

    # -- fitting --------------------------------------------------------------------------

    def _source(self, X, *, reset: bool) -> em.ChunkSource:
        """Validate X and wrap it as chunks: in memory, memory-mapped .npy, iterator of
        arrays, or (where the model accepts it) a scipy.sparse matrix."""
        if not em.is_streaming(X):
            X = self._validate_X(X, reset=reset)
            rows = self.chunk_size or em.auto_chunk_rows(self._chunk_floats_per_row(X.shape[1]))
            return em.ArraySource(X, rows, validated=True, allow_nan=self._allow_nan)
        if sp.issparse(X) and not self._accept_sparse:
            raise InvalidInputError(
                f"{type(self).__name__} does not take sparse input; pass a dense array "
                "(X.toarray()), or a model made for sparse counts.")
        source = em.as_source(X, chunk_rows=1, allow_nan=self._allow_nan)
        if not reset and source.n_features != self.n_features_in_:
            raise InvalidInputError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input.")
        if hasattr(source, "chunk_rows"):  # an iterator keeps its own chunks
            source.chunk_rows = self.chunk_size or em.auto_chunk_rows(
                self._chunk_floats_per_row(source.n_features))
        self._check_source_names(getattr(source, "feature_names", None), reset=reset)
        if reset:
            self.n_features_in_ = source.n_features
        return source

    def _check_source_names(self, names, *, reset: bool) -> None:
        """A stream's column names (a Parquet file's), kept as feature_names_in_ at fit and
        checked against them afterwards, as scikit-learn does for a DataFrame."""
        if reset:
            self.__dict__.pop("feature_names_in_", None)
            if names is not None:
                self.feature_names_in_ = np.asarray(names, dtype=object)
            return
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is not None and names is not None and list(fitted) != list(names):
            raise InvalidInputError(
                f"the columns of X ({list(names)}) are not those {type(self).__name__} was "
                f"fitted on ({list(fitted)}); give the same columns in the same order.")

    def _store_fit(self, params, state, dtype, *, converged: bool, n_iter: int, history,
                   stop_reason: str, best_iteration: int | None = None,
                   lower_bound: float | None = None) -> None:
        """Record a fit's outcome: parameters, EM state and the engine's bookkeeping.

        params are those after `best_iteration` M-steps (default: the last, n_iter) and
        `lower_bound` is their recorded objective (default: history's last entry)."""
        self._store_params(params, dtype)
        self.em_state_ = state
        self.converged_ = bool(converged)
        self.n_iter_ = int(n_iter)
        self.history_ = np.asarray(history, dtype=np.float64)
        self.best_iteration_ = int(n_iter if best_iteration is None else best_iteration)
        if lower_bound is None:
            lower_bound = self.history_[-1] if len(self.history_) else -math.inf
        self.lower_bound_ = float(lower_bound)
        self.stop_reason_ = stop_reason

    def _warm_bound(self) -> float:
        """The mean objective a warm start continues from: that of the iterate before the
        fitted parameters, history_[best_iteration_ - 1] (fitted attributes, saved with
        the model; `lower_bound_` for a file written before best_iteration_ existed), or
        -inf where there is none: after `partial_fit`, whose objective is a batch's and not
        comparable, or when the fitted parameters are a fit's starting ones."""
        if getattr(self, "stop_reason_", None) == "online":
            return -math.inf
        history = getattr(self, "history_", ())
        best = getattr(self, "best_iteration_", None)
        if best is None:
            return float(getattr(self, "lower_bound_", -math.inf))
        best = int(best)
        return float(history[best - 1]) if 1 <= best <= len(history) else -math.inf

    def _engine_options(self) -> dict:
        return dict(tol=self.tol, max_iter=self.max_iter, max_time=self.max_time,
                    callbacks=self.callbacks or (), progress=self._progress_delay(), model=self)

    def fit(self, X, y=None):
        """Learn θ by maximum marginal likelihood with EM.

        X : (n_samples, n_features) array (NaN = missing where the model marginalizes), or
        for out-of-core data a path to a `.npy` file, an np.memmap, a list of 2-D arrays, or
        a function returning a fresh iterator of 2-D arrays. Returns self.
        """
        self._validate_params()
        warm = self.warm_start and hasattr(self, "converged_")
        source = self._source(X, reset=not warm)
        config = self._em_config(source.n_samples, source.n_features)
        init = (self._current_params(), self.em_state_) if warm else None
        result = em.fit_em(self.em_family, config, source, n_init=self.n_init,
                           rng=as_generator(self.random_state), init=init,
                           bound=self._warm_bound() if warm else -math.inf,
                           max_init_rows=self._max_init_rows, **self._engine_options())
        self._store_fit(result.params, result.state, source.dtype, converged=result.converged,
                        n_iter=result.n_iter, history=result.history,
                        stop_reason=result.stop_reason, best_iteration=result.best_iteration,
                        lower_bound=result.lower_bound)
        self.__dict__.pop("online_state_", None)
        self._finish_fit(result, config, source)
        return self

    def _partial_fit_input(self, X, *, reset: bool):
        """A partial_fit batch, validated: (n_batch, n_features) (by default as `fit`'s
        in-memory input)."""
        return self._validate_X(X, reset=reset)

    def _initial_online_state(self, params, config) -> em.OnlineState:
        """The running statistics online EM starts from: none by default (the first batch's
        statistics are taken whole); a model whose initial parameters are worth keeping
        (LDA's λ, as Hoffman et al.) returns statistics that reproduce them, which the first
        step then blends with the batch's by its step size."""
        return em.OnlineState()

    def _online_total_rows(self) -> int | None:
        """The rows online EM scales its running statistics to: None for the rows seen so
        far (a model of a corpus of known size, like LDA's total_samples, returns it)."""
        return None

    def _finish_fit(self, result: em.EMResult, config, source: em.ChunkSource) -> None:
        """What a model computes once `fit` has stored EM's result (with its config and
        the data's source at hand): nothing by default; e.g. FactorAnalysis's final
        log-likelihood and rotation."""

    def partial_fit(self, X, y=None):
        """One step of online EM on a batch X : (n_batch, n_features); returns self.

        Running statistics blend with step size ρ_t = (t + learning_offset)^(-learning_decay).
        The first call initializes from its batch (or from the fitted parameters).
        """
        self._validate_params()
        fitted = hasattr(self, "converged_")
        online = vars(self).get("online_state_")
        X = self._partial_fit_input(X, reset=not fitted)
        config = self._em_config(X.shape[0] if online is None else None, X.shape[1])
        if fitted:
            params, state = self._current_params(), self.em_state_
        else:
            params, state = self.em_family.init(X, as_generator(self.random_state), config, 0)
        if online is None:
            online, self.history_ = self._initial_online_state(params, config), np.empty(0)
        params, state, online, objective = em.online_em_step(
            self.em_family, config, params, state, online, X,
            learning_decay=self.learning_decay, learning_offset=self.learning_offset,
            total_rows=self._online_total_rows(), split_rows=self._online_split_rows)
        self._store_fit(params, state, X.dtype, converged=False, n_iter=online.n_updates,
                        history=np.append(self.history_, objective), stop_reason="online")
        self.online_state_ = online
        return self
