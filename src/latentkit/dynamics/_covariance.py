"""The covariance updates of LDS EM, and the observation-noise floor that keeps them
within float64's reach (used by `_em`).

Each covariance the M-step estimates is a residual scatter over its count, S / N, the
exact maximizer of -(N/2) (log det Σ + tr(Σ^{-1} S / N)). Two things can make it useless
in float64 although the math is fine:

* formed from moment sums, S can come out slightly indefinite by cancellation (`clip_psd`
  raises negative eigenvalues, round-off, to 0);
* the likelihood is unbounded as R -> 0 when the state explains the observations (p <= n,
  or very short sequences): R's eigenvalues then spread over many orders of magnitude
  (1e-2 next to 2e13 on 1e7-scale data), the Kalman filter's log-likelihood is
  round-off, and EM "decreases" by nats. reg_covar cannot help: it is absolute, and
  below the round-off of R's largest eigenvalue at such scales.

The observation floor bounds R from below relative to each column's scale:

    R ⪰ F = diag(f),   f_d = OBS_FLOOR · mean_t x_{t,d}²   (observed entries)

(with reg_covar = r: R ⪰ F + r I, `covariance_update`), i.e. the eigenvalues of
F^{-1/2} R F^{-1/2} are >= 1 (a per-column rescaling, under which a Cholesky
factorization's accuracy does not change). The raw second moment, not the
variance, sets the scale because the statistics are raw moment sums, whose round-off is
eps · Σ x². Under this constraint the maximizer is still closed-form: with
S̃ = F^{-1/2} (S / N) F^{-1/2} = U diag(w) U^T, R = F^{1/2} U diag(max(w, 1)) U^T F^{1/2}
(the eigenvalue-clipped MLE; for a diagonal R, max(S_dd / N, f_d)). The feasible set is
fixed for the whole fit and the initial R is projected into it (`floor_observation`), so
EM stays monotone. On well-posed data R is far above F, the floor is inactive and the
update is unchanged to the last bit. F is computed once from the data (`observation_floor`)
and travels as the EM state `LDSState`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..io import register_record

__all__ = ["OBS_FLOOR", "LDSState", "column_scales", "observation_floor", "floor_observation",
           "clip_psd", "covariance_update"]

#: R's floor relative to each column's mean square: 1e3 times float64's round-off of the
#: moment sums, and a bound of 1e12 on the condition of R after per-column rescaling
OBS_FLOOR = 1e-12


@register_record
class LDSState(NamedTuple):
    """What LDS EM keeps between iterations (saved with the model as `em_state_`).

    obs_floor : (p,) f, the observation covariance's floor R ⪰ diag(f) (module docstring);
    scale : (p,) powers of two D, the columns' scales: EM's kernels run on x / D
    (`_em.em_e_step`), where every column is of order 1.
    """

    obs_floor: np.ndarray
    scale: np.ndarray


def _mean_squares(sequences) -> np.ndarray:
    """(p,) the mean square of each column's observed entries (0 where none)."""
    stacked = np.concatenate([np.asarray(s, dtype=np.float64) for s in sequences])
    observed = ~np.isnan(stacked)
    squares = np.where(observed, stacked, 0.0) ** 2
    return squares.sum(axis=0) / np.maximum(observed.sum(axis=0), 1)


def column_scales(sequences) -> np.ndarray:
    """D : (p,) the power of two just above each column's root mean square (1 for a column
    that is zero throughout): dividing by it is exact in floating point, so the kernels'
    arithmetic on x / D is the arithmetic on x, rescaled, to the last bit (away from
    overflow and underflow), with every column of order 1."""
    rms = np.sqrt(_mean_squares(sequences))
    exponent = np.frexp(np.where(rms > 0, rms, 1.0))[1]
    return np.ldexp(1.0, exponent)


def observation_floor(sequences) -> np.ndarray:
    """f : (p,) = OBS_FLOOR · the mean square of each column's observed entries, over
    sequences, a list of (T_i, p) arrays (NaN = missing); OBS_FLOOR for a column that is
    zero (or unobserved) throughout, and never below float64's smallest normal number."""
    mean_square = _mean_squares(sequences)
    mean_square = np.where(mean_square > 0, mean_square, 1.0)
    return np.maximum(OBS_FLOOR * mean_square, np.finfo(np.float64).tiny)


def floor_observation(S: np.ndarray, floor, covariance_type: str) -> np.ndarray:
    """The maximizer of the Gaussian likelihood over R ⪰ diag(floor), given the symmetric
    estimate S : (p, p) (module docstring); S itself, bit for bit, when it satisfies the
    floor already. floor : (p,) or None (no floor: a state saved before it existed)."""
    if floor is None:
        return S
    if covariance_type == "diag":
        return np.diag(np.maximum(np.diag(S), floor))
    s = np.sqrt(floor)
    scale = np.outer(s, s)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = S / scale
    if not np.all(np.isfinite(scaled)):  # scales beyond float64: left to the caller's check
        return S
    w, U = np.linalg.eigh(0.5 * (scaled + scaled.T))
    if w[0] >= 1.0:
        return S
    scaled = (U * np.maximum(w, 1.0)) @ U.T
    return 0.5 * (scaled + scaled.T) * scale


def clip_psd(S):
    """The symmetric S with negative eigenvalues (round-off) raised to 0; S itself when it
    has none (so that a well-posed update is unchanged to the last bit)."""
    S = 0.5 * (S + S.T)
    if not np.all(np.isfinite(S)):
        return S
    w, U = np.linalg.eigh(S)
    if w[0] >= 0:
        return S
    S = (U * np.maximum(w, 0.0)) @ U.T
    return 0.5 * (S + S.T)


def covariance_update(scatter, count, covariance_type, reg_covar, floor=None):
    """scatter / count (its diagonal for "diag") + diag(reg_covar) (a scalar or (k,)),
    with the scatter's eigenvalues (diagonal entries) clipped at 0 first: it is an
    expected outer product, so positive semi-definite, but formed from moment sums it can
    come out slightly negative by cancellation (a constant sequence at scale 1e8: its
    residual variance is round-off). The result is symmetric with eigenvalues >= reg_covar.

    With `floor` : (p,) (the observation covariance) the result is then raised to
    R ⪰ diag(floor) + reg_covar I (`floor_observation`): S / N + r I is the maximizer of
    the penalized Q(θ) - (r/2) N tr R^{-1} (`_em.regularization_slack`), and the clipped
    one is its maximizer over that set, which holds every iterate, so the declared slack
    still bounds each step's loss."""
    S = scatter / count
    if covariance_type == "diag":
        S = np.diag(np.maximum(np.diag(S), 0.0))
    else:
        S = clip_psd(S)
    S = S + np.diag(np.broadcast_to(reg_covar, (len(S),)))
    return S if floor is None else floor_observation(S, floor + reg_covar, covariance_type)
