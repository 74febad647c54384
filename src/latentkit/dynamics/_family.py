"""LDS EM in the engine's contract (`latentkit.em.EMFamily`): `em_init`, `em_e_step` and
`em_m_step` wrap the kernels of `_em` over an `LDSConfig`.

The kernels run on the rescaled observations x / D, D : (p,) the powers of two just above the
columns' root mean squares (`_covariance.column_scales`): every column is then of order 1,
so that columns whose scales differ by many orders of magnitude (1e-9 next to 1e50) do
not leave the Kalman filter's arithmetic to round-off, while the parameters the engine
holds, and the log-likelihood it records, stay in x's units:

    C = D C~,  d = D d~,  R = D R~ D,   log p(x) = log p(x / D) - Σ_{observed x_td} log D_d

(A, b, Q, μ0, V0 are the state's, unchanged; the maps are `_scaling`'s, which the model's
inference methods run on too). Division by a power of two is exact, so on data of ordinary
scale the fit is the unscaled one up to the rounding of log D. The EM state
(`_covariance.LDSState`) holds D and the observation floor.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..em import NOTHING, StepInfo, SufficientStats
from ..exceptions import InvalidInputError
from ._covariance import LDSState, column_scales, floor_observation, observation_floor
from ._em import (
    LDSConfig,
    LDSParams,
    LDSStats,
    SequenceBatch,
    e_step,
    initial_params,
    m_step,
    regularization_slack,
)
from ._params import PUBLIC_NAMES
from ._scaling import scaled_params, state_scale, unscaled_params

__all__ = ["em_init", "em_e_step", "em_m_step"]


# -- the family's EM contract (latentkit.em.EMFamily) -------------------------------------


#: what the user can change when EM's arithmetic leaves the range of float64
_OUT_OF_RANGE = (
    "the data's scale is beyond what float64 EM can handle here (columns with very large "
    "magnitudes, or of very different scales, overflow or make a covariance singular). "
    "Rescale (standardize) the columns, or increase reg_covar.")


def _finite(value) -> bool:
    if isinstance(value, tuple):  # a parameter record
        return all(_finite(v) for v in value)
    if isinstance(value, SufficientStats):
        return all(_finite(getattr(value, f)) for f in value.additive)
    return bool(np.all(np.isfinite(value)))


def _in_range(what: str, kernel, *args):
    """kernel(*args), with float64 overflow and LinAlgError turned into an InvalidInputError
    that names the remedy (`_OUT_OF_RANGE`): an intermediate that overflows and a result
    that is not finite raise, with no RuntimeWarning on the way."""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = kernel(*args)
    except np.linalg.LinAlgError as exc:
        raise InvalidInputError(f"LinearDynamicalSystem {what} failed ({exc}): "
                                f"{_OUT_OF_RANGE}") from exc
    if not _finite(result[0]) or (what == "E-step" and not math.isfinite(result[1])):
        raise InvalidInputError(f"LinearDynamicalSystem {what} gave non-finite values: "
                                f"{_OUT_OF_RANGE}")
    return result


def em_init(sequences, rng: np.random.Generator, config: LDSConfig, restart: int):
    """(θ, LDSState): PCA + least squares (`initial_params`) on the rescaled sequences
    x / D (a list of (T_i, p), or one (T, p) array; D : (p,) the columns' scales,
    `_covariance.column_scales`), mapped back and overridden by the given values. Restarts
    after the first (restart >= 1, n_init > 1) perturb a learned transition matrix,
    rescaled to spectral radius <= 0.99. The state holds D and the observation floor F
    (`_covariance.observation_floor`); a starting R that EM learns is raised to
    R ⪰ F + r I so that EM starts inside the set its M-step maximizes over (and stays
    monotone)."""
    if isinstance(sequences, np.ndarray):
        sequences = [sequences]
    state = LDSState(observation_floor(sequences), column_scales(sequences))
    params, _ = _in_range("initialization", lambda: (_starting_params(
        sequences, config, state), None))
    if restart and "transition_matrix" not in config.fixed:
        A = params.A + 0.2 * rng.standard_normal(params.A.shape) / math.sqrt(len(params.A))
        radius = np.max(np.abs(np.linalg.eigvals(A)))
        params = params._replace(A=A / max(1.0, radius / 0.99))
    return params, state


def _starting_params(sequences, config: LDSConfig, state: LDSState) -> LDSParams:
    """`initial_params` of x / D mapped back (of x when C is given: the state's other
    starting values are then in the units C gives it), overridden by the given values, R
    raised to its floor (plus reg_covar I: the set every M-step's R lies in,
    `_covariance.covariance_update`) unless held."""
    D = state.scale
    if "observation_matrix" in config.given:  # C sets the state's units: start in x's
        params = initial_params(sequences, config.state_dim, config.covariance_type,
                                config.reg_covar)
    else:
        params = unscaled_params(initial_params([s / D for s in sequences],
                                                config.state_dim, config.covariance_type,
                                                config.reg_covar), D)
    params = params._replace(**{PUBLIC_NAMES[k]: v for k, v in config.given.items()})
    if "observation_covariance" in config.fixed:
        return params
    R = floor_observation(params.R / np.outer(D, D),
                          (state.obs_floor + config.reg_covar) / D**2, "full")
    return params._replace(R=R * np.outer(D, D))


def em_e_step(params: LDSParams, state, config: LDSConfig, chunk):
    """(LDSStats of x / D, total log-likelihood of x) of a chunk: a SequenceBatch
    (B, T, p), or one sequence (T, p) (a partial_fit batch). The kernels run on the
    rescaled observations (D the state's column scales), where every column is of order
    1; log p(x) = log p(x / D) - Σ_{observed x_td} log D_d (the change of variables)."""
    X = chunk.X if isinstance(chunk, SequenceBatch) else np.asarray(
        chunk, dtype=np.float64)[None]
    D = state_scale(state, X.shape[-1])
    X = np.ascontiguousarray(X, dtype=np.float64) / D
    stats, ll = _in_range("E-step", e_step, scaled_params(params, D), X, config.method,
                          config.fixed)
    return stats, ll - float((~np.isnan(X)).sum(axis=(0, 1)) @ np.log(D))


def em_m_step(stats: LDSStats, params: LDSParams, state, config: LDSConfig):
    """(θ', state, info): the closed-form M-step on the E-step's statistics of x / D,
    mapped back; held parameters kept at `params` (exactly), R kept above the state's
    floor (none for a state saved before the floor existed) and reg_covar added to R in
    x's units (reg_covar / D² in x / D's). With reg_covar > 0 the info's slack bounds how
    far the step may lower the log-likelihood (`regularization_slack`)."""
    D = state_scale(state, params.obs_dim)
    floor = state.obs_floor / D**2 if isinstance(state, LDSState) else None
    new, _ = _in_range("M-step", lambda: (unscaled_params(m_step(
        replace(stats, params=scaled_params(params, D)), config.fixed, config.covariance_type,
        config.reg_covar, config.order, floor, config.reg_covar / D**2), D), None))
    new = new._replace(**{PUBLIC_NAMES[k]: getattr(params, PUBLIC_NAMES[k])
                          for k in config.fixed})
    slack = regularization_slack(stats, params, new, config.fixed, config.reg_covar)
    return new, state, (StepInfo(slack=slack) if slack > 0 else NOTHING)
