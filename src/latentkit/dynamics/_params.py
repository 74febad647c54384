"""The parameters of a linear-Gaussian state-space model, and their validation.

    z_1 ~ N(μ0, V0),   z_t = A z_{t-1} + b + w_t,  w_t ~ N(0, Q)
    x_t = C z_t + d + v_t,   v_t ~ N(0, R)

with state z_t : (n,) and observation x_t : (p,). Parameters are validated once, at the
boundary (user-given values, public kernel entry points); kernels never check.

Time-varying models (as pykalman's): A, b, C, d may carry a leading time axis,
A : (T-1, n, n) and b : (T-1, n) with A[t], b[t] the transition from step t to t+1, and
C : (T, p, n), d : (T, p) with C[t], d[t] the observation at step t (t = 0 .. T-1). Such
a model describes sequences of (at most) that many steps; Q, R, μ0, V0 are constant.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..exceptions import InvalidParameterError
from ..io import register_record

#: public (constructor) name -> field of LDSParams
PUBLIC_NAMES = {
    "transition_matrix": "A",
    "transition_offset": "b",
    "observation_matrix": "C",
    "observation_offset": "d",
    "transition_covariance": "Q",
    "observation_covariance": "R",
    "initial_state_mean": "mu0",
    "initial_state_covariance": "V0",
}
FIELD_NAMES = {field: name for name, field in PUBLIC_NAMES.items()}
COVARIANCES = ("transition_covariance", "observation_covariance", "initial_state_covariance")
#: the parameters that may carry a leading time axis
TIME_VARYING = ("transition_matrix", "transition_offset", "observation_matrix",
                "observation_offset")


@register_record  # saved inside LDSStats.params (online_state_ of partial_fit)
class LDSParams(NamedTuple):
    """θ of a linear dynamical system; n = state_dim, p = observation dim."""

    A: np.ndarray  # (n, n) transition matrix
    b: np.ndarray  # (n,) transition offset
    C: np.ndarray  # (p, n) observation matrix
    d: np.ndarray  # (p,) observation offset
    Q: np.ndarray  # (n, n) transition (process) noise covariance
    R: np.ndarray  # (p, p) observation noise covariance
    mu0: np.ndarray  # (n,) mean of the first state
    V0: np.ndarray  # (n, n) covariance of the first state

    @property
    def state_dim(self) -> int:
        return self.A.shape[-1]

    @property
    def obs_dim(self) -> int:
        return self.C.shape[-2]

    @property
    def time_varying(self) -> bool:
        """True when A, b, C or d carries a leading time axis."""
        return (np.ndim(self.A) == 3 or np.ndim(self.b) == 2 or np.ndim(self.C) == 3
                or np.ndim(self.d) == 2)

    def astype(self, dtype) -> LDSParams:
        return LDSParams(*(np.asarray(v, dtype=dtype) for v in self))


def expected_shape(name: str, n: int, p: int) -> tuple[int, ...]:
    """The shape the parameter `name` (public name) must have."""
    return {"A": (n, n), "b": (n,), "C": (p, n), "d": (p,), "Q": (n, n), "R": (p, p),
            "mu0": (n,), "V0": (n, n)}[PUBLIC_NAMES[name]]


def as_param_array(name: str, value, n: int, p: int) -> np.ndarray:
    """A user-given parameter as a finite float64 array of the right shape (a scalar is
    accepted for a 1 x 1 or length-1 parameter; a 1-D vector for a diagonal covariance;
    A, b, C, d may carry a leading time axis, see the module docstring)."""
    shape = expected_shape(name, n, p)
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a numeric array of shape {shape}; got "
                                    f"{type(value).__name__}.") from None
    if name in COVARIANCES and array.ndim == 1 and array.shape == shape[:1]:
        array = np.diag(array)
    if array.size == 1 and int(np.prod(shape)) == 1:
        array = array.reshape(shape)
    if (name in TIME_VARYING and array.ndim == len(shape) + 1 and array.shape[1:] == shape
            and array.shape[0] >= 1):
        shape = array.shape  # a time-varying value: one per time step
    if array.shape != shape:
        raise InvalidParameterError(f"{name} must have shape {shape} (state_dim={n}, "
                                    f"observation dim={p}); got {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise InvalidParameterError(f"{name} contains NaN or inf; every entry must be finite.")
    if name in COVARIANCES:
        check_covariance(name, array)
    return array


def check_covariance(name: str, S: np.ndarray) -> None:
    """S : (k, k) must be symmetric positive semi-definite (up to round-off)."""
    scale = max(float(np.max(np.abs(S))), np.finfo(float).tiny)
    if not np.allclose(S, S.T, rtol=0, atol=1e-10 * scale):
        raise InvalidParameterError(f"{name} must be symmetric; it differs from its transpose by "
                                    f"{np.max(np.abs(S - S.T)):.3g}.")
    lowest = float(np.linalg.eigvalsh(0.5 * (S + S.T))[0])
    if lowest < -1e-10 * scale:
        raise InvalidParameterError(f"{name} must be positive semi-definite (a covariance); its "
                                    f"smallest eigenvalue is {lowest:.6g}. Give a symmetric matrix "
                                    f"with non-negative eigenvalues, e.g. L @ L.T.")


def check_params(params: LDSParams) -> LDSParams:
    """Validate a whole parameter record (shapes consistent, finite, covariances PSD);
    returns it as float64."""
    A = np.asarray(params.A, dtype=np.float64)
    C = np.asarray(params.C, dtype=np.float64)
    if A.ndim not in (2, 3) or A.shape[-2] != A.shape[-1]:
        raise InvalidParameterError(
            f"transition_matrix must be square (n, n), or (T-1, n, n) when time-varying; got "
            f"shape {A.shape}.")
    if C.ndim not in (2, 3):
        raise InvalidParameterError(
            f"observation_matrix must be (p, n), or (T, p, n) when time-varying; got shape "
            f"{C.shape}.")
    n, p = A.shape[-1], C.shape[-2]
    return LDSParams(*(as_param_array(FIELD_NAMES[field], value, n, p)
                       for field, value in zip(LDSParams._fields, params)))


def check_length(params: LDSParams, T: int) -> None:
    """A time-varying model must cover a sequence of T steps: at least T - 1 transitions
    (A, b) and T observations (C, d); the first ones are used, as in pykalman."""
    for name, value, ndim, needed in (("transition_matrix", params.A, 3, T - 1),
                                      ("transition_offset", params.b, 2, T - 1),
                                      ("observation_matrix", params.C, 3, T),
                                      ("observation_offset", params.d, 2, T)):
        if np.ndim(value) == ndim and len(value) < needed:
            raise InvalidParameterError(
                f"{name} is time-varying with {len(value)} steps, but a sequence of {T} time "
                f"steps needs {needed}; give one per step (or a constant value).")


def step_params(params: LDSParams, overrides: dict) -> LDSParams:
    """The time-invariant θ of one online step: `overrides` ({public name: value or None})
    replace the model's values (validated here); a time-varying model value that is not
    overridden is an error, as in pykalman (which step it is, is the caller's to say)."""
    n, p = params.state_dim, params.obs_dim
    fields = {}
    for name, value in overrides.items():
        field = PUBLIC_NAMES[name]
        if value is not None:
            array = as_param_array(name, value, n, p)
            if array.shape != expected_shape(name, n, p):
                raise InvalidParameterError(
                    f"{name} of one step must have shape {expected_shape(name, n, p)}; got "
                    f"{array.shape}.")
            fields[field] = array
        elif np.ndim(getattr(params, field)) > len(expected_shape(name, n, p)):
            raise InvalidParameterError(
                f"{name} is time-varying; give this step's value ({name}=...).")
    return params._replace(**fields)
