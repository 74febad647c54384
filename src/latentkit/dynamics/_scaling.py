"""The exact per-column rescaling of an LDS's observations: the units EM and inference run in.

D : (p,) holds powers of two, the columns' scales (`_covariance.column_scales`, kept in the
EM state). The model of x~ = D^{-1} x is the model of x with θ mapped to

    C~ = D^{-1} C,   d~ = D^{-1} d,   R~ = D^{-1} R D^{-1}

(A, b, Q, μ0, V0 are the state's: z's units do not change). Hence

* the state posterior p(z | x_{1:T}) = p(z | x~_{1:T}) is invariant (filtered, predicted,
  smoothed moments, cross-covariances, posterior draws, forecast state moments);
* the means of x (forecast, imputed) are D times those of x~, their covariances D Σ~ D;
* by the change of variables, log p(x_t | x_{<t}) = log p(x~_t | x~_{<t}) - Σ_{j ∈ o_t}
  log D_j, o_t the coordinates observed at step t.

Division by a power of two is exact (away from overflow and underflow), so the kernels'
arithmetic on (x~, θ~) is that on (x, θ), rescaled, while every column is of order 1:
columns at 1e-8 next to 1e50 no longer leave the solves to round-off. `to_scaled` maps
data and θ in; `restored` and `restored_observations` map results back.
"""

from __future__ import annotations

import numpy as np

from ._covariance import LDSState
from ._params import LDSParams
from .kalman import FilterResult, Forecast, SmoothResult, _as_array

__all__ = ["state_scale", "scaled_params", "unscaled_params", "to_scaled",
           "scaled_observation", "restored", "restored_observations", "as_float"]


def state_scale(state, p: int) -> np.ndarray:
    """D : (p,) the column scales an EM state holds (`_covariance.LDSState.scale`); ones
    (no rescaling: x's own units) for anything else, e.g. no state (a model never fitted,
    used with its given parameters)."""
    return np.asarray(state.scale, dtype=np.float64) if isinstance(state, LDSState) else (
        np.ones(p))


def scaled_params(params: LDSParams, D: np.ndarray) -> LDSParams:
    """θ of the observations x / D (D : (p,) powers of two, exact): C / D, d / D,
    D^{-1} R D^{-1}; the state's parameters are unchanged. A, b, C, d may be time-varying
    (C : (T, p, n), d : (T, p) broadcast against D)."""
    return params._replace(C=params.C / D[:, None], d=params.d / D,
                           R=params.R / np.outer(D, D))


def unscaled_params(params: LDSParams, D: np.ndarray) -> LDSParams:
    """The inverse of `scaled_params`: θ of x from θ of x / D."""
    return params._replace(C=params.C * D[:, None], d=params.d * D,
                           R=params.R * np.outer(D, D))


def as_float(X):
    """X (validated: (T, p), (B, T, p) or a list of (T_i, p)) as float64 arrays in the same
    layout (a list for a list or tuple), masked entries as NaN (missing)."""
    if isinstance(X, list | tuple):
        return [as_float(x) for x in X]
    return np.asarray(_as_array(X, "X", None), dtype=np.float64)


def to_scaled(X, params: LDSParams, D: np.ndarray):
    """(X / D in X's layout (`as_float`), θ~ = `scaled_params`(θ, D)). D : (p,)."""
    Xf = as_float(X)
    scaled = [x / D for x in Xf] if isinstance(Xf, list) else Xf / D
    return scaled, scaled_params(params, D)


def scaled_observation(observation, D: np.ndarray):
    """One online observation (p,) (None, NaN or masked entries missing) divided by D : (p,);
    None stays None."""
    if observation is None:
        return None
    x = np.asarray(_as_array(observation, "observation", 1), dtype=np.float64)
    return x / D if x.shape == D.shape else x  # a wrong length is the filter's to report


def _log_scale(X: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Σ_{j observed at t} log D_j for X : (..., T, p) (NaN missing) : (..., T)."""
    return (~np.isnan(X)) @ np.log(D)


def restored(result, X_scaled, D: np.ndarray):
    """A kernel's result on x / D in x's units (module docstring). result : FilterResult,
    SmoothResult or Forecast, or a list of them; X_scaled : the data it was computed from,
    in the same layout (a list for a list); D : (p,)."""
    if isinstance(result, list):
        return [restored(r, x, D) for r, x in zip(result, X_scaled)]
    if isinstance(result, Forecast):
        return result._replace(mean=result.mean * D, cov=result.cov * np.outer(D, D))
    per_step = _log_scale(X_scaled, D)  # (T,) or (B, T)
    total = per_step.sum(axis=-1)
    log_likelihood = result.log_likelihood - (float(total) if np.ndim(total) == 0 else total)
    if isinstance(result, FilterResult):
        return result._replace(log_likelihood=log_likelihood,
                               step_log_likelihood=result.step_log_likelihood - per_step)
    if isinstance(result, SmoothResult):
        return result._replace(log_likelihood=log_likelihood)
    raise TypeError(f"no rescaling rule for a {type(result).__name__}")


def restored_observations(filled_scaled, X_original, D: np.ndarray):
    """Observations completed on x / D, in x's units: the missing (NaN) entries of
    X_original (`as_float` layout) from D times `filled_scaled`, the observed ones as given
    (bit for bit)."""
    if isinstance(X_original, list):
        return [restored_observations(f, x, D) for f, x in zip(filled_scaled, X_original)]
    return np.where(np.isnan(X_original), filled_scaled * D, X_original)
