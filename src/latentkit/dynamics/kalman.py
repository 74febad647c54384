"""Inference in a linear-Gaussian state-space model: pure functions over arrays.

    z_1 ~ N(μ0, V0),   z_t = A z_{t-1} + b + w_t,  w_t ~ N(0, Q)
    x_t = C z_t + d + v_t,   v_t ~ N(0, R)

`kalman_filter` (filtered and one-step predicted moments, log-likelihood by the
prediction-error decomposition log p(x_{1:T}) = Σ_t log p(x_t | x_{<t})), `rts_smoother`
(smoothed moments and the lag-one cross-covariances), `sample_posterior` (forward filter,
backward sample) and `forecast` (k steps ahead with predictive covariances).

Every function takes X as one sequence (T, p), a batch of equal-length sequences
(B, T, p) or a list of sequences (T_i, p) of any lengths, and answers in the same layout
(no batch axis / a leading batch axis / a list). NaN marks a missing coordinate: it is
dropped from the update; an all-NaN row is a pure prediction step. A numpy masked array
is read the same way: its masked entries are missing (pykalman users mark missing data so).

Time-varying models (A, b, C, d with a leading time axis, see `_params`) run the serial
kernels (`_serial.filter_batch_tv`); every sequence must be covered by the parameters.

`method`: "serial" runs the compiled recursions (`_serial`), "parallel" the associative
scan (`_parallel`); "auto" picks the serial kernels, which are faster on a CPU at every
length measured (benchmarks/lds.py); the scan is the route for hardware with many lanes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import as_generator, check_finite, check_n_samples, check_observed_columns
from ..exceptions import InvalidInputError, InvalidParameterError
from . import _parallel
from ._params import LDSParams, check_length, check_params

METHODS = ("auto", "serial", "parallel")

__all__ = ["FilterResult", "SmoothResult", "Forecast", "kalman_filter", "rts_smoother",
           "sample_posterior", "forecast", "simulate", "as_sequences", "filter_step"]


class FilterResult(NamedTuple):
    """Moments of p(z_t | x_{1:t}) and p(z_t | x_{1:t-1}) for one sequence (leading batch
    axis for a batch): mean (T, n), cov (T, n, n), predicted_mean (T, n), predicted_cov
    (T, n, n); log_likelihood = log p(x_{1:T}) (a float, or (B,)); step_log_likelihood (T,)
    = log p(x_t | x_{<t}) (0 for an all-missing step)."""

    mean: np.ndarray
    cov: np.ndarray
    predicted_mean: np.ndarray
    predicted_cov: np.ndarray
    log_likelihood: np.ndarray | float
    step_log_likelihood: np.ndarray


class SmoothResult(NamedTuple):
    """Moments of p(z_t | x_{1:T}): mean (T, n), cov (T, n, n), cross_cov (T, n, n) with
    cross_cov[t] = Cov(z_t, z_{t-1} | x_{1:T}) (cross_cov[0] = 0); log_likelihood as the
    filter's."""

    mean: np.ndarray
    cov: np.ndarray
    cross_cov: np.ndarray
    log_likelihood: np.ndarray | float


class Forecast(NamedTuple):
    """p(x_{T+k} | x_{1:T}) and p(z_{T+k} | x_{1:T}) for k = 1..K: mean (K, p), cov
    (K, p, p), state_mean (K, n), state_cov (K, n, n)."""

    mean: np.ndarray
    cov: np.ndarray
    state_mean: np.ndarray
    state_cov: np.ndarray


# -- sequences ----------------------------------------------------------------------------


def as_sequences(X, n_features: int | None = None, *, name: str = "X",
                 check_observed: bool | None = None):
    """(groups, layout): X as groups of equal-length sequences.

    groups : list of (indices, array (B_g, T_g, p) float64); layout : "single" for one
    (T, p) sequence, "batch" for a (B, T, p) array, "list" for a list of (T_i, p) arrays.
    inf is an error; NaN is missing; a value beyond the scale limit of its dtype
    (`latentkit._validation.SCALE_LIMITS`: 1e150 for float64, 1e15 for float32) is an
    error. `n_features` (when given) is checked. `check_observed` (for fit; by default when
    `n_features` is None, i.e. the call that learns it): every column must have an observed
    value in some sequence, else nothing can be learned about it.
    """
    if isinstance(X, list | tuple):
        if len(X) == 0:
            raise InvalidInputError(f"{name} is an empty list; give at least one sequence.")
        seqs = [_as_array(x, f"{name}[{i}]", 2) for i, x in enumerate(X)]
        layout = "list"
    else:
        array = _as_array(X, name, None)
        if array.ndim == 2:
            seqs, layout = [array], "single"
        elif array.ndim == 3:
            seqs, layout = list(array), "batch"
        else:
            raise InvalidInputError(
                f"{name} must be one sequence (T, n_features), a batch (n_sequences, T, "
                f"n_features) or a list of (T_i, n_features) arrays; got shape "
                f"{array.shape}. For a univariate series use x.reshape(-1, 1).")
    p = seqs[0].shape[1] if n_features is None else n_features
    lengths = {}
    for i, seq in enumerate(seqs):
        if seq.shape[1] != p:
            raise InvalidInputError(f"{name}: sequence {i} has {seq.shape[1]} features but "
                                    f"{p} are expected.")
        if seq.shape[0] == 0:
            raise InvalidInputError(f"{name}: sequence {i} has no time steps.")
        check_finite(seq, allow_nan=True, model="the Kalman filter",
                     name=name if layout == "single" else f"{name} (sequence {i})")
        lengths.setdefault(seq.shape[0], []).append(i)
    if check_observed is None:
        check_observed = n_features is None
    if check_observed:
        _check_observed(seqs, name, getattr(X, "columns", None))
    if layout == "batch":
        return [(np.arange(len(seqs)), np.ascontiguousarray(array, dtype=np.float64))], layout
    groups = [(np.asarray(idx), np.ascontiguousarray(np.stack([seqs[i] for i in idx]),
                                                     dtype=np.float64))
              for idx in lengths.values()]
    return groups, layout


def _check_observed(seqs, name, columns):
    """Every column observed somewhere: per sequence, np.fmax skips NaN, so a column's
    maximum over every sequence is NaN only when no step of any sequence observes it."""
    highs = np.stack([np.fmax.reduce(np.asarray(seq, dtype=np.float64), axis=0)
                      for seq in seqs])  # (n_sequences, p)
    check_observed_columns(highs, name=name, model=None, columns=columns,
                           rows="every time step of every sequence")


def _as_array(x, name, ndim):
    try:
        array = np.asarray(x)
        if array.dtype.kind not in "fiub":
            raise TypeError
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a numeric array.") from None
    if np.ma.isMaskedArray(x):  # masked entries are missing values
        array = np.ma.filled(np.ma.asarray(x, dtype=np.result_type(array.dtype, np.float32)),
                             np.nan)
    if ndim is not None and array.ndim != ndim:
        raise InvalidInputError(f"{name} must be a 2-D array (T, n_features); got shape "
                                f"{array.shape}.")
    return array


def _assemble(groups, layout, results: list):
    """Per-group records (leading axis B_g) back into the layout of the input."""
    if layout == "batch":
        return results[0]
    pieces = {}
    for (idx, _), record in zip(groups, results):
        for j, i in enumerate(idx):
            pieces[int(i)] = type(record)(*(np.asarray(f)[j] if np.ndim(f) else f
                                            for f in record))
    ordered = [pieces[i] for i in range(len(pieces))]
    if layout == "single":
        one = ordered[0]
        return type(one)(*(float(f) if np.ndim(f) == 0 else f for f in one))
    return ordered


# -- kernels on groups (B, T, p) ----------------------------------------------------------


def _raise_for(status: int, T: int, what: str):
    if status:
        flat = status - 1
        raise np.linalg.LinAlgError(
            f"the {what} is not positive definite at sequence {flat // T}, time step "
            f"{flat % T}, even after jitter. Check that the covariances are positive definite "
            "(observation_covariance in particular) and the data are on a sensible scale.")


def _resolve(method: str, T: int) -> str:
    if method not in METHODS:
        raise InvalidParameterError(f"method must be one of {METHODS}; got {method!r}.")
    return "serial" if method == "auto" else method


def _contiguous(params: LDSParams) -> LDSParams:
    """Writable C-contiguous float64 arrays: the one array type the compiled kernels are
    specialized for (a slice or a read-only view would compile, and cache, another)."""
    out = []
    for a in params:
        a = np.ascontiguousarray(a, dtype=np.float64)
        out.append(a if a.flags.writeable else a.copy())
    return LDSParams(*out)


def _stepwise(params: LDSParams) -> LDSParams:
    """θ with A (T_A, n, n), b (T_b, n), C (T_C, p, n), d (T_d, p): a constant parameter
    gets a leading axis of length 1 (the layout of the time-varying kernels)."""
    params = _contiguous(params)

    def lead(v, k):
        return v if v.ndim == k else v[None]

    return params._replace(A=lead(params.A, 3), b=lead(params.b, 2), C=lead(params.C, 3),
                           d=lead(params.d, 2))


def filter_group(X: np.ndarray, params: LDSParams, method: str = "auto"):
    """(mp, Pp, mf, Pf, ll) for X : (B, T, p) float64 (params already validated; a
    time-varying θ must cover T steps, see `_params.check_length`)."""
    B, T, _ = X.shape
    if _resolve(method, T) == "parallel":
        return _parallel.filter_parallel(X, params)
    from . import _serial  # numba is imported on first use, not with the package

    n = params.state_dim
    mp, mf = np.empty((B, T, n)), np.empty((B, T, n))
    Pp, Pf = np.empty((B, T, n, n)), np.empty((B, T, n, n))
    ll = np.empty((B, T))
    if params.time_varying:
        status = _serial.filter_batch_tv(X, *_stepwise(params), mp, Pp, mf, Pf, ll)
    else:
        status = _serial.filter_batch(X, *_contiguous(params), mp, Pp, mf, Pf, ll)
    _raise_for(status, T, "innovation covariance C P C^T + R")
    return mp, Pp, mf, Pf, ll


def smooth_group(params: LDSParams, mp, Pp, mf, Pf, method: str = "auto"):
    """(ms, Ps, Pc) from the filter's moments of a group."""
    if _resolve(method, mf.shape[1]) == "parallel":
        return _parallel.smooth_parallel(params, mp, Pp, mf, Pf)
    from . import _serial

    ms, Ps, Pc = np.empty_like(mf), np.empty_like(Pf), np.empty_like(Pf)
    status = _serial.smooth_batch(_stepwise(params).A, mp, Pp, mf, Pf, ms, Ps, Pc)
    _raise_for(status, mf.shape[1], "predicted state covariance A P A^T + Q")
    return ms, Ps, Pc


# -- public functions ---------------------------------------------------------------------


def _groups(X, params: LDSParams):
    """as_sequences(X) for validated params, each group's length checked against a
    time-varying θ."""
    groups, layout = as_sequences(X, params.obs_dim)
    if params.time_varying:
        for _, Xg in groups:
            check_length(params, Xg.shape[1])
    return groups, layout


def kalman_filter(X, params: LDSParams, *, method: str = "auto"):
    """Kalman filter: a FilterResult (or a list of them) for X (see the module docstring).

    params : LDSParams (validated here). Covariance updates are in Joseph form,
    (I - K C) P (I - K C)^T + K R K^T, symmetrized; the gain comes from Cholesky solves
    with S = C P C^T + R, never an inverse.
    """
    params = check_params(params)
    groups, layout = _groups(X, params)
    results = []
    for _, Xg in groups:
        mp, Pp, mf, Pf, ll = filter_group(Xg, params, method)
        results.append(FilterResult(mf, Pf, mp, Pp, ll.sum(axis=1), ll))
    return _assemble(groups, layout, results)


def rts_smoother(X, params: LDSParams, *, method: str = "auto"):
    """Rauch-Tung-Striebel smoother: a SmoothResult (or a list of them) for X."""
    params = check_params(params)
    groups, layout = _groups(X, params)
    results = []
    for _, Xg in groups:
        mp, Pp, mf, Pf, ll = filter_group(Xg, params, method)
        ms, Ps, Pc = smooth_group(params, mp, Pp, mf, Pf, method)
        results.append(SmoothResult(ms, Ps, Pc, ll.sum(axis=1)))
    return _assemble(groups, layout, results)


def sample_posterior(X, params: LDSParams, n_samples: int = 1, random_state=None):
    """Draws from p(z_{1:T} | x_{1:T}) by forward filtering, backward sampling.

    Returns (n_samples, T, n) for one sequence, (B, n_samples, T, n) for a batch, a list of
    (n_samples, T_i, n) for a list.
    """
    check_n_samples(n_samples)
    from . import _serial

    params = check_params(params)
    rng = as_generator(random_state)
    groups, layout = _groups(X, params)
    draws = {}
    for idx, Xg in groups:
        B, T, _ = Xg.shape
        mp, Pp, mf, Pf, _ = filter_group(Xg, params, "serial")
        eps = rng.standard_normal((B, n_samples, T, params.state_dim))
        out = np.empty_like(eps)
        status = _serial.sample_batch(_stepwise(params).A, mp, Pp, mf, Pf, eps, out)
        _raise_for(status, T, "backward conditional covariance")
        for j, i in enumerate(idx):
            draws[int(i)] = out[j]
    if layout == "single":
        return draws[0]
    if layout == "batch":
        return np.stack([draws[i] for i in range(len(draws))])
    return [draws[i] for i in range(len(draws))]


def forecast(X, params: LDSParams, n_steps: int):
    """p(x_{T+k} | x_{1:T}) for k = 1..n_steps: a Forecast (or a list of them).

    From the last filtered state (m, P): m <- A m + b, P <- A P A^T + Q, and the observation
    mean C m + d with covariance C P C^T + R.
    """
    if not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise InvalidParameterError(f"n_steps must be a positive integer; got {n_steps!r}.")
    params = check_params(params)
    if params.time_varying:
        raise InvalidParameterError(
            "forecast needs the parameters of the steps after the data, which a time-varying "
            "model does not have; use filter_step with the future parameters instead.")
    groups, layout = _groups(X, params)
    results = []
    A, b, C, d, Q, R = params[:6]
    for _, Xg in groups:
        _, _, mf, Pf, _ = filter_group(Xg, params)
        m, P = mf[:, -1], Pf[:, -1]
        sm, sc = [], []
        for _ in range(n_steps):
            m = m @ A.T + b
            P = A @ P @ A.T + Q
            P = 0.5 * (P + np.swapaxes(P, -1, -2))
            sm.append(m)
            sc.append(P)
        state_mean, state_cov = np.stack(sm, axis=1), np.stack(sc, axis=1)
        mean = state_mean @ C.T + d
        cov = C @ state_cov @ C.T + R
        results.append(Forecast(mean, 0.5 * (cov + np.swapaxes(cov, -1, -2)), state_mean,
                                state_cov))
    return _assemble(groups, layout, results)


def psd_factor(S: np.ndarray) -> np.ndarray:
    """F with F F^T = S for a symmetric positive semi-definite S : (k, k) (Cholesky when
    positive definite, else from the eigen-decomposition, negative round-off clipped)."""
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        w, U = np.linalg.eigh(0.5 * (S + S.T))
        return U * np.sqrt(np.clip(w, 0.0, None))


def simulate(params: LDSParams, n_timesteps: int, n_sequences: int | None = None,
             random_state=None):
    """Draw (X, Z) from the model: X (T, p) and Z (T, n), or (B, T, p) and (B, T, n) when
    `n_sequences` is given (noise drawn here, states by `propagate`)."""
    params = check_params(params)
    for name, value in (("n_timesteps", n_timesteps), ("n_sequences", n_sequences)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise InvalidParameterError(f"{name} must be a positive integer; got {value!r}.")
    check_length(params, n_timesteps)
    rng = as_generator(random_state)
    B = 1 if n_sequences is None else n_sequences
    n, p = params.state_dim, params.obs_dim
    FQ, FR, FV = (psd_factor(S) for S in (params.Q, params.R, params.V0))
    z0 = params.mu0 + rng.standard_normal((B, n)) @ FV.T
    w = rng.standard_normal((B, n_timesteps, n)) @ FQ.T
    v = rng.standard_normal((B, n_timesteps, p)) @ FR.T
    X, Z = propagate(params, z0, w, v)
    return (X[0], Z[0]) if n_sequences is None else (X, Z)


def propagate(params: LDSParams, z0: np.ndarray, w: np.ndarray, v: np.ndarray):
    """(X, Z) from given noise: z_0 = z0, z_t = A_{t-1} z_{t-1} + b_{t-1} + w_t and
    x_t = C_t z_t + d_t + v_t (constant or time-varying θ, validated and long enough).

    z0 : (B, n); w : (B, T, n) (w[:, 0] is not used); v : (B, T, p). Returns X (B, T, p),
    Z (B, T, n). One vectorized step over all sequences per time step.
    """
    B, T, n = w.shape
    A, b, C, d = (v_ if np.ndim(v_) == k else np.broadcast_to(v_, (T,) + np.shape(v_))
                  for v_, k in ((params.A, 3), (params.b, 2), (params.C, 3), (params.d, 2)))
    Z = np.empty((B, T, n))
    Z[:, 0] = z0
    for t in range(1, T):
        Z[:, t] = Z[:, t - 1] @ A[t - 1].T + b[t - 1] + w[:, t]
    X = np.einsum("tpn,btn->btp", C[:T], Z) + d[:T] + v
    return X, Z


def filter_step(mean: np.ndarray, cov: np.ndarray, observation, params: LDSParams):
    """One online step of the filter: from p(z_t | x_{1:t}) = N(mean, cov) to
    p(z_{t+1} | x_{1:t+1}), as (mean (n,), cov (n, n)).

    Predict m = A m + b, P = A P A^T + Q, then update with observation : (p,) (None, or all
    NaN / masked: predict only; a NaN or masked entry is missing) exactly as a step of
    `kalman_filter` does (the same compiled update, run with (m, P) as its prior).
    params : time-invariant θ of this step (μ0, V0 are not used); validated by the caller.
    """
    from . import _serial

    n, p = params.state_dim, params.obs_dim
    m = params.A @ mean + params.b
    P = params.A @ cov @ params.A.T + params.Q
    P = 0.5 * (P + P.T)
    x = np.full((1, 1, p), np.nan)
    if observation is not None:
        x[0, 0] = _as_array(observation, "observation", 1).reshape(p)
    step = _contiguous(params._replace(mu0=m, V0=P))
    mp, mf = np.empty((1, 1, n)), np.empty((1, 1, n))
    Pp, Pf = np.empty((1, 1, n, n)), np.empty((1, 1, n, n))
    status = _serial.filter_batch(x, *step, mp, Pp, mf, Pf, np.empty((1, 1)))
    _raise_for(status, 1, "innovation covariance C P C^T + R")
    return mf[0, 0], Pf[0, 0]
