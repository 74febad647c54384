"""LinearDynamicalSystem: a linear-Gaussian state-space model (Kalman filter model) learned
by EM on the shared engine.

    z_1 ~ N(μ0, V0),   z_t = A z_{t-1} + b + w_t,  w_t ~ N(0, Q)
    x_t = C z_t + d + v_t,   v_t ~ N(0, R)

Data: one sequence X : (T, p) (rows are time steps), a batch (B, T, p) of equal-length
sequences, or a list of (T_i, p) sequences; NaN entries are missing and marginalized
exactly (in inference and in EM). `fit` reads a batch on disk (a `.npy` or `.zarr` path, an
np.memmap, a zarr.Array) lazily, in chunks of whole sequences. Per-row quantities of the
contract are per sequence here: `score_samples` gives log p(x_{1:T}) of each sequence;
`score` and `history_` are the mean log-likelihood per time step.
"""

from __future__ import annotations

import math
import os
from types import MappingProxyType
from typing import ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import _check_feature_names, check_is_fitted

from .._io_schemas import Fitted, linear_dynamical_system
from .._validation import InstanceOf, Interval, Options, as_generator
from ..base import EMModel
from ..distributions import Gaussian
from ..em import EXACT, EMFamily, auto_chunk_rows
from ..em.sources import is_dask
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model
from . import _em, _family, _scaling, kalman
from ._params import (
    FIELD_NAMES,
    PUBLIC_NAMES,
    LDSParams,
    as_param_array,
    check_length,
    expected_shape,
    step_params,
)

ARRAY_OR_NONE = [InstanceOf(np.ndarray, list, tuple, float, int, type(None),
                            description="an array or None")]
#: held parameters that default to zero when `fixed` names them without a value
_ZERO_DEFAULTS = ("transition_offset", "observation_offset", "initial_state_mean")
#: parameters an unfitted model may leave out and still filter (zero, as in pykalman)
_OPTIONAL_WITHOUT_FIT = ("transition_offset", "observation_offset")


@register_model
class LinearDynamicalSystem(EMModel):
    """Linear dynamical system: Kalman filtering, RTS smoothing and EM learning.

    Parameters
    ----------
    state_dim : int, dimension n of the latent state (None: taken from a given matrix).
    transition_matrix (n, n), transition_offset (n,), observation_matrix (p, n),
    observation_offset (p,), transition_covariance (n, n), observation_covariance (p, p),
    initial_state_mean (n,), initial_state_covariance (n, n) : optional values of A, b, C,
        d, Q, R, μ0, V0. A given value is EM's initial value, or the held value when its
        name is in `fixed`; the others are initialized from the data (PCA + least squares
        on the latent trajectory). A covariance may be given as a vector (its diagonal).
        Without fit: when A, C, Q, R, μ0 and V0 are all given (the offsets b and d default
        to zero, as in pykalman), the unfitted model filters, smooths, forecasts, scores,
        imputes and samples with the given values; once fitted it uses the fitted ones.
    fixed : names of the parameters EM holds at their given values. Offsets and the
        initial mean named here without a value are held at zero. A, b, C, d may be given
        time-varying (a leading time axis: A (T-1, n, n), b (T-1, n), C (T, p, n),
        d (T, p), as in pykalman) for sequences of T steps; EM then holds them (name them
        in `fixed`) and learns the others.
    covariance_type : {"full", "diag"}, the form of Q and R learned by EM.
    reg_covar : float >= 0, added to the diagonal of each covariance EM estimates. EM also
        keeps R above a floor of 1e-12 times each column's mean square, and runs its
        kernels on the columns rescaled to order 1 (`dynamics._covariance`, `_family`).
    method : {"auto", "serial", "parallel"}, the inference kernels (see
        `latentkit.dynamics.kalman`).
    tol, max_iter, n_init, random_state, warm_start, verbose, max_time, callbacks,
    chunk_size (time steps per E-step chunk; sequences are never split), learning_decay,
    learning_offset : the EM engine's options (see `latentkit.em`).

    Attributes
    ----------
    transition_matrix_, transition_offset_, observation_matrix_, observation_offset_,
    transition_covariance_, observation_covariance_, initial_state_mean_,
    initial_state_covariance_, state_dim_, n_features_in_, converged_, n_iter_, history_
    (mean log-likelihood per time step per iteration), lower_bound_ (the returned
    parameters' value: its last, unless EM returned an earlier best iterate, best_iteration_),
    em_state_ (`_covariance.LDSState`: the observation floor and the column scales D).
    EM and every inference method run on x / D with θ mapped to those units, and answer in
    x's (`_scaling`); a model without a fitted state (given parameters only) uses D = 1.
    """

    _rows_are_time_steps: ClassVar[bool] = True  # X is a sequence: rows are time steps
    em_family: ClassVar[EMFamily] = EMFamily(
        _family.em_init, _family.em_e_step, _family.em_m_step, objective=EXACT,
        remedy="increase reg_covar, hold some parameters fixed, or use a smaller state_dim")

    _parameter_constraints: ClassVar[dict] = {
        "state_dim": [Interval(int, 1, None), Options(None)],
        **{name: ARRAY_OR_NONE for name in PUBLIC_NAMES},
        "fixed": [InstanceOf(tuple, list, set, frozenset, description="a tuple of names")],
        "covariance_type": [Options("full", "diag")],
        "reg_covar": [Interval(float, 0, None)],
        "method": [Options(*kalman.METHODS)],
    }

    def __init__(self, state_dim=None, *, transition_matrix=None, transition_offset=None,
                 observation_matrix=None, observation_offset=None, transition_covariance=None,
                 observation_covariance=None, initial_state_mean=None,
                 initial_state_covariance=None, fixed=(), covariance_type="full",
                 reg_covar=1e-6, method="auto", tol=1e-4, max_iter=100, n_init=1,
                 random_state=None, warm_start=False, verbose=None, max_time=None,
                 callbacks=None, chunk_size=None, learning_decay=0.7, learning_offset=10.0):
        self._store_init_args(locals())

    @classmethod
    def local_level(cls, initial_state_covariance=1e7, **options):
        """The local-level (random walk plus noise) model of one series:
        z_t = z_{t-1} + w_t, x_t = z_t + v_t, with A = C = 1 and zero offsets held fixed,
        and V0 held at `initial_state_covariance` (large: an approximately diffuse start).
        EM learns the level variance Q, the observation variance R and μ0. `options` are
        any other constructor arguments (tol, max_iter, reg_covar, starting variances...).
        """
        fixed = ("transition_matrix", "observation_matrix", "transition_offset",
                 "observation_offset", "initial_state_covariance")
        return cls(1, transition_matrix=1.0, observation_matrix=1.0,
                   initial_state_covariance=initial_state_covariance,
                   fixed=fixed + tuple(options.pop("fixed", ())), **options)

    # -- hyper-parameters -----------------------------------------------------------------

    def _given(self, n_features: int) -> dict:
        """{public name: validated float64 array} of the given parameter values."""
        n = self._state_dim()
        given = {}
        for name in PUBLIC_NAMES:
            value = getattr(self, name)
            if value is not None:
                given[name] = as_param_array(name, value, n, n_features)
        for name in self.fixed:
            if name not in given:
                if name not in _ZERO_DEFAULTS:
                    raise InvalidParameterError(
                        f"fixed names {name!r} but {name}=None; give the value to hold it at.")
                given[name] = np.zeros(n if name != "observation_offset" else n_features)
        return given

    def _state_dim(self) -> int:
        if self.state_dim is not None:
            return self.state_dim
        for name, axis in (("transition_matrix", -1), ("observation_matrix", -1),
                           ("transition_covariance", 0), ("initial_state_covariance", 0),
                           ("initial_state_mean", 0)):
            value = getattr(self, name)
            if value is not None and np.ndim(value) > (axis if axis >= 0 else 1):
                return int(np.shape(value)[axis])
        raise InvalidParameterError(
            "state_dim is required: give state_dim=K (the latent dimension), or a "
            "transition_matrix / observation_matrix to take it from.")

    def _check_fixed(self) -> None:
        unknown = [name for name in self.fixed if name not in PUBLIC_NAMES]
        if unknown:
            raise InvalidParameterError(
                f"fixed contains unknown parameter names {unknown}; valid names: "
                f"{', '.join(PUBLIC_NAMES)}.")

    def _em_config(self, n_samples, n_features) -> _em.LDSConfig:
        self._check_fixed()
        given = self._given(n_features)  # validates every given value now, before any work
        for name, value in given.items():
            if name not in self.fixed and value.ndim > len(expected_shape(name, 1, 1)):
                raise InvalidParameterError(
                    f"{name} is time-varying (shape {value.shape}) but not held: EM learns "
                    f"constant parameters only; add {name!r} to fixed, or give one value.")
        return _em.LDSConfig(self._state_dim(), self.covariance_type, self.reg_covar,
                             self.method, frozenset(self.fixed), MappingProxyType(given))

    # -- the engine's wiring --------------------------------------------------------------

    def _source(self, X, *, reset: bool):
        """Sequences grouped by length, chunked by whole sequences (`_em.SequenceSource`);
        a 3-D array on disk (a `.npy` or `.zarr` path, an np.memmap, a zarr.Array) is read
        lazily, chunk by chunk (`_em.StoredSequenceSource`)."""
        if not reset:
            check_is_fitted(self)
        X = _opened_store(X)
        if is_dask(X) or (_on_disk(X) and X.ndim == 3):
            return self._stored_source(X, reset=reset)
        if _on_disk(X):  # one sequence (T, p) is never split: read it whole
            X = np.asarray(X)
        n_features = None if reset else self.n_features_in_
        groups, _ = kalman.as_sequences(X, n_features)
        dtype = np.float32 if _input_dtype(X) == np.float32 else np.float64
        if reset and groups[0][1].shape[2] == 0:
            raise InvalidInputError(
                f"{type(self).__name__}: X has no columns (n_features = 0), so there is "
                "nothing to observe. Give each time step at least one feature.")
        if reset:
            self.n_features_in_ = groups[0][1].shape[2]
        self._check_names(X, reset=reset)
        if reset:  # a time-varying given value must cover every sequence
            self._check_fixed()
            given = self._given(self.n_features_in_)
            probe = LDSParams(*(given.get(FIELD_NAMES[f], np.zeros(())) for f in LDSParams._fields))
        else:
            probe = self._current_params()
        for _, Xg in groups:
            check_length(probe, Xg.shape[1])
        n = self._state_dim()
        steps = self.chunk_size or auto_chunk_rows(4 * n * n + 4 * n + self.n_features_in_)
        return _em.SequenceSource(groups, self.n_features_in_, dtype, steps)

    def _stored_source(self, X, *, reset: bool) -> _em.StoredSequenceSource:
        """A lazily read source of X : (n_seq, T, p) on disk, validated in one pass, or on
        Dask (`_dask.DaskSequences`: validated on the workers)."""
        n_seq, T, p = X.shape
        if min(n_seq, T, p) == 0:
            raise InvalidInputError(
                f"{type(self).__name__}: X has shape {X.shape}; give at least one sequence "
                "of at least one time step with at least one feature.")
        if not reset and p != self.n_features_in_:
            raise InvalidInputError(f"X: sequences have {p} features but "
                                    f"{self.n_features_in_} are expected.")
        if reset:
            self.n_features_in_ = p
            self._check_fixed()
            given = self._given(p)
            probe = LDSParams(*(given.get(FIELD_NAMES[f], np.zeros(())) for f in LDSParams._fields))
        else:
            probe = self._current_params()
        check_length(probe, T)
        n = self._state_dim()
        steps = self.chunk_size or auto_chunk_rows(4 * n * n + 4 * n + p)
        if is_dask(X):  # the E-steps run where the blocks of sequences live
            from ._dask import DaskSequences
            return DaskSequences(X)
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        source = _em.StoredSequenceSource(X, dtype, steps)
        source.check()
        return source

    def _store_params(self, params, dtype):
        for field, value in zip(LDSParams._fields, params):
            setattr(self, FIELD_NAMES[field] + "_", np.asarray(value, dtype=dtype))
        self.state_dim_ = int(params.A.shape[0])

    def _current_params(self) -> LDSParams:
        check_is_fitted(self)
        return LDSParams(*(np.asarray(getattr(self, FIELD_NAMES[f] + "_"), dtype=np.float64)
                           for f in LDSParams._fields))

    def _fitted_schema(self) -> dict:
        """The fitted attributes checked on load: `_io_schemas.linear_dynamical_system`
        and the EM state's observation floor (`_covariance.LDSState`)."""
        return {**linear_dynamical_system(self),
                "em_state_.obs_floor": Fitted("f", ("n_features_in_",), low=0),
                "em_state_.scale": Fitted("f", ("n_features_in_",), low=0)}

    def _n_parameters(self):
        """Free parameters, less the n^2 of the latent similarity transform when A, C and a
        full Q are all learned (z -> T z leaves the likelihood unchanged)."""
        n, p = self.state_dim_, self.n_features_in_
        cov = (lambda k: k * (k + 1) // 2) if self.covariance_type == "full" else (lambda k: k)
        sizes = {"transition_matrix": n * n, "transition_offset": n,
                 "observation_matrix": p * n, "observation_offset": p,
                 "transition_covariance": cov(n), "observation_covariance": cov(p),
                 "initial_state_mean": n, "initial_state_covariance": n * (n + 1) // 2}
        total = sum(k for name, k in sizes.items() if name not in self.fixed)
        if not {"transition_matrix", "observation_matrix"} & set(self.fixed):
            total -= n * n if self.covariance_type == "full" else n
        return max(total, 0)

    # -- inference ------------------------------------------------------------------------

    def _inference_params(self) -> LDSParams:
        """θ for inference: the fitted parameters, or, before any fit, the given ones when
        A, C, Q, R, μ0 and V0 are all given (b, d default to zero); validated here, once."""
        if hasattr(self, "transition_matrix_"):
            return self._current_params()
        self._validate_params()  # the hyper-parameters (method...) fit would check
        missing = [name for name in PUBLIC_NAMES
                   if getattr(self, name) is None and name not in _OPTIONAL_WITHOUT_FIT]
        if missing:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit, or give every "
                f"parameter to the constructor to use it without fitting; missing: "
                f"{', '.join(missing)}.")
        p = int(np.shape(np.atleast_2d(self.observation_matrix))[-2])
        given = self._given(p)
        n = given["transition_matrix"].shape[-1]
        given.setdefault("transition_offset", np.zeros(n))
        given.setdefault("observation_offset", np.zeros(p))
        return LDSParams(*(given[FIELD_NAMES[field]] for field in LDSParams._fields))

    def _check_names(self, X, *, reset: bool) -> None:
        """A DataFrame's columns become `feature_names_in_` at fit and are checked against
        them afterwards (scikit-learn's rule); a list of sequences carries no names."""
        if hasattr(X, "columns") and (reset or hasattr(self, "feature_names_in_")):
            _check_feature_names(self, X, reset=reset)

    def _inputs(self, X):
        params = self._inference_params()
        kalman.as_sequences(X, params.obs_dim)  # validates (clear errors) before work
        self._check_names(X, reset=False)
        return params, _input_dtype(X)

    def _scale(self, p: int) -> np.ndarray:
        """D : (p,) the column scales inference runs on: EM's (`em_state_.scale`), ones for
        a model never fitted (its given parameters are used in x's units)."""
        return _scaling.state_scale(getattr(self, "em_state_", None), p)

    def _scaled_inputs(self, X):
        """(X / D, θ~, D): validated X (in its layout) and the inference parameters in the
        units of x / D (`_scaling.to_scaled`), where EM ran: every column of order 1."""
        params, _ = self._inputs(X)
        D = self._scale(params.obs_dim)
        X_scaled, scaled = _scaling.to_scaled(X, params, D)
        return X_scaled, scaled, D

    def _inferred(self, kernel, X, *args, **kwargs):
        """kernel(X / D, θ~, ...) (a `kalman` function) mapped back to x's units
        (`_scaling.restored`: log-likelihoods less Σ_obs log D, means of x times D)."""
        X_scaled, params, D = self._scaled_inputs(X)
        return _scaling.restored(kernel(X_scaled, params, *args, **kwargs), X_scaled, D)

    def filter(self, X):
        """Kalman filter: a FilterResult (.mean, .cov, .log_likelihood, .predicted_mean,
        .predicted_cov), or a list of them for a list of sequences."""
        result = self._inferred(kalman.kalman_filter, X, method=self.method)
        return _cast(result, _input_dtype(X))

    def smooth(self, X):
        """RTS smoother: a SmoothResult (.mean, .cov, .cross_cov, .log_likelihood)."""
        return _cast(self._inferred(kalman.rts_smoother, X, method=self.method),
                     _input_dtype(X))

    def score_samples(self, X) -> np.ndarray:
        """log p(x_{1:T}) of each sequence : (n_sequences,) (one entry for one sequence)."""
        dtype = _input_dtype(X)
        result = self._inferred(kalman.kalman_filter, X, method=self.method)
        records = result if isinstance(result, list) else [result]
        return np.concatenate([np.atleast_1d(r.log_likelihood) for r in records]).astype(dtype)

    def loglikelihood(self, X) -> float:
        """log p(X): the total log-likelihood of all sequences (pykalman's name)."""
        return float(np.sum(self.score_samples(X), dtype=np.float64))

    def filter_update(self, filtered_state_mean, filtered_state_covariance, observation=None,
                      transition_matrix=None, transition_offset=None,
                      transition_covariance=None, observation_matrix=None,
                      observation_offset=None, observation_covariance=None):
        """One online filter step (pykalman's `filter_update`), for tracking.

        From p(z_t | x_{1:t}) = N(filtered_state_mean (n,), filtered_state_covariance
        (n, n)) to p(z_{t+1} | x_{1:t+1}): predict with the transition t -> t+1, update with
        `observation` (p,) (None or all missing: predict only; a NaN or masked entry is
        missing). A given parameter replaces the model's for this step (it must be given
        when the model's is time-varying). Returns (mean (n,), covariance (n, n)).
        """
        params = self._inference_params()
        step = step_params(params, {
            "transition_matrix": transition_matrix, "transition_offset": transition_offset,
            "transition_covariance": transition_covariance,
            "observation_matrix": observation_matrix, "observation_offset": observation_offset,
            "observation_covariance": observation_covariance})
        n = step.state_dim
        mean = as_param_array("initial_state_mean", filtered_state_mean, n, step.obs_dim)
        cov = as_param_array("initial_state_covariance", filtered_state_covariance, n,
                             step.obs_dim)
        D = self._scale(step.obs_dim)  # the state's moments are invariant (`_scaling`)
        return kalman.filter_step(mean, cov, _scaling.scaled_observation(observation, D),
                                  _scaling.scaled_params(step, D))

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per time step (the quantity EM's history_ records)."""
        return float(np.sum(self.score_samples(X), dtype=np.float64) / _n_steps(X))

    def bic(self, X) -> float:
        """-2 log p(X) + n_parameters log(number of time steps)."""
        n = _n_steps(X)
        return -2 * self.score(X) * n + self.n_parameters_ * math.log(n)

    def aic(self, X) -> float:
        """-2 log p(X) + 2 n_parameters."""
        return -2 * self.score(X) * _n_steps(X) + 2 * self.n_parameters_

    def posterior(self, X):
        """p(z_t | x_{1:T}) for every step: a Gaussian with rows = time steps (mean (T, n),
        cov (T, n, n)); a list of them for a batch or a list of sequences."""
        smoothed = self.smooth(X)
        if isinstance(smoothed, kalman.SmoothResult) and smoothed.mean.ndim == 2:
            return Gaussian(smoothed.mean, smoothed.cov)
        if isinstance(smoothed, kalman.SmoothResult):
            return [Gaussian(m, c) for m, c in zip(smoothed.mean, smoothed.cov)]
        return [Gaussian(s.mean, s.cov) for s in smoothed]

    def transform(self, X):
        """Smoothed state means E[z_t | x_{1:T}]: (T, n), (B, T, n) or a list."""
        smoothed = self.smooth(X)
        return [s.mean for s in smoothed] if isinstance(smoothed, list) else smoothed.mean

    def sample_posterior(self, X, n_samples=1, random_state=None):
        """Joint draws of z_{1:T} given x_{1:T} (forward filter, backward sample):
        (n_samples, T, n) for one sequence (see `kalman.sample_posterior`)."""
        X_scaled, params, _ = self._scaled_inputs(X)  # z's draws are invariant (`_scaling`)
        return kalman.sample_posterior(X_scaled, params, n_samples, random_state)

    def forecast(self, X, n_steps=1):
        """p(x_{T+k} | x_{1:T}), k = 1..n_steps: a Forecast (.mean (K, p), .cov (K, p, p),
        .state_mean, .state_cov)."""
        return _cast(self._inferred(kalman.forecast, X, n_steps), _input_dtype(X))

    def impute(self, X):
        """X with each NaN replaced by E[x_{t,m} | x_{1:T}] (smoothed state plus the
        conditional of the missing coordinates given the observed ones at that step)."""
        X_scaled, params, D = self._scaled_inputs(X)
        groups, layout = kalman.as_sequences(X_scaled, params.obs_dim)
        out = {}
        for idx, Xg in groups:
            smoothed = kalman.rts_smoother(Xg, params, method=self.method)
            filled = _em.completed_means(params, Xg, smoothed.mean)
            out.update({int(i): filled[j] for j, i in enumerate(idx)})
        ordered = [out[i] for i in range(len(out))]
        filled = ordered[0] if layout == "single" else (
            np.stack(ordered) if layout == "batch" else ordered)
        filled = _scaling.restored_observations(filled, _scaling.as_float(X), D)
        dtype = _input_dtype(X)
        return [f.astype(dtype) for f in filled] if layout == "list" else filled.astype(dtype)

    def sample(self, n_samples=1, random_state=None, *, n_sequences=None):
        """Draw (X, Z) from the model: a sequence of n_samples time steps, X (T, p) and
        Z (T, n); with n_sequences, (n_sequences, T, p) and (n_sequences, T, n)."""
        params = self._inference_params()
        X, Z = kalman.simulate(params, n_samples, n_sequences, as_generator(random_state))
        dtype = getattr(self, "transition_matrix_", params.A).dtype
        return X.astype(dtype), Z.astype(dtype)


def _opened_store(X):
    """X, or the array a path names: a `.npy` file memory-mapped, a `.zarr` store opened
    (`em.stores.open_zarr_array`); InvalidInputError for another path."""
    if not isinstance(X, str | os.PathLike):
        return X
    path = os.fspath(X)
    if path.rstrip("/\\").lower().endswith(".zarr"):
        from ..em.stores import open_zarr_array

        return open_zarr_array(path, name="X")
    if not path.endswith(".npy"):
        raise InvalidInputError(f"X: a path to sequences must name a .npy file or a .zarr "
                                f"store; got {path!r}.")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"X: cannot memory-map {path!r} as a .npy array: "
                                f"{exc}") from None


def _on_disk(X) -> bool:
    """Whether X is an array on disk: an np.memmap or a zarr.Array."""
    from ..em.stores import is_zarr_array

    return isinstance(X, np.memmap) or is_zarr_array(X)


def _input_dtype(X):
    if isinstance(X, list | tuple):
        X = X[0] if len(X) else np.empty(0)
    dtype = np.asarray(X).dtype
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _n_steps(X) -> int:
    if isinstance(X, list | tuple):
        return int(sum(np.shape(x)[0] for x in X))
    shape = np.shape(X)
    return int(np.prod(shape[:-1]))


def _cast(result, dtype):
    if dtype == np.float64:
        return result
    if isinstance(result, list):
        return [_cast(r, dtype) for r in result]
    return type(result)(*(np.asarray(f).astype(dtype) if np.ndim(f) else f for f in result))
