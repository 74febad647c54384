"""EM for a linear dynamical system (Ghahramani & Hinton 1996, with offsets and missing
observations): sufficient statistics from the smoother, closed-form M-step.

E-step: the RTS smoother gives E[z_t], E[z_t z_t^T] = P_t + m_t m_t^T and
E[z_t z_{t-1}^T] = P_{t,t-1} + m_t m_{t-1}^T; `_em_stats` sums them (completing missing
coordinates exactly, and handling held time-varying A_t, b_t, C_t, d_t). The M-step is two
least-squares regressions, z_t on [z_{t-1}; 1] and x_t on [z_t; 1], whose residual
scatters give Q and R (the exact maximizers; held parameters stay at their values and the
others are maximized given them); μ0, V0 from the first states. `order="pykalman"`
updates as pykalman's `em` does instead: a matrix given the old offset, the covariance
given both, then the offset given the new matrix (the same when either is held).

R is maximized over R ⪰ diag(f), a floor relative to each column's mean square that keeps
the filter's arithmetic accurate where the likelihood is unbounded as R -> 0
(`_covariance`); inactive, and without effect, on well-posed data.

`_family` wraps these kernels in the engine's contract (`latentkit.em.EMFamily`), over an
`LDSConfig`, with the state between iterations (`_covariance.LDSState`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from .._validation import check_finite, check_observed_columns
from ..em import ChunkSource, MappedPages, SufficientStats
from ..em.sources import _sample_rows
from ..io import register_record
from . import kalman
from ._covariance import clip_psd, covariance_update
from ._em_stats import completed_means, observation_stats, transition_stats
from ._params import PUBLIC_NAMES, LDSParams

__all__ = ["LDSConfig", "LDSStats", "SequenceSource", "StoredSequenceSource", "e_step", "m_step",
           "completed_means", "initial_params", "regularization_slack"]


class LDSConfig(NamedTuple):
    """The validated hyper-parameters of one fit (built once by the model's `_em_config`).

    state_dim : n; covariance_type : "full" or "diag" (the form of Q and R EM learns);
    reg_covar : added to the diagonal of each estimated covariance; method : the inference
    kernels (`kalman.METHODS`); fixed : public names of the parameters EM holds; given :
    {public name: float64 array} of the user's values (the held ones, and starting values);
    order : "joint" (each matrix and offset maximized together) or "pykalman" (`m_step`).
    """

    state_dim: int
    covariance_type: str
    reg_covar: float
    method: str
    fixed: frozenset
    given: Mapping[str, np.ndarray]
    order: str = "joint"


@register_record
@dataclass(frozen=True)
class LDSStats(SufficientStats):
    """Expected complete-data sufficient statistics, summed over sequences and steps.

    n = state_dim, p = observation dim; "prev" sums over t = 2..T of z_{t-1}, "next" of
    the transition target u_t (z_t, less K_t z_{t-1} for a held time-varying A), "all" of
    z_t over t = 1..T, "obs" over the steps with an observed coordinate; x, xx, xz are of
    the observation target (x_t, less C_t z_t for a held time-varying C). The k_* sums are
    the cross sums of a time-varying offset (`_em_stats`). `params` (not additive) is the θ
    the E-step ran at: the M-step keeps its held (fixed) parameters.
    """

    additive: ClassVar[tuple[str, ...]] = (
        "n_seq", "n_steps", "n_trans", "n_obs", "z1", "z1z1", "z_prev", "z_next", "z_all",
        "z_obs", "zz_prev", "zz_next", "zz_cross", "zz_all", "zz_obs", "x", "xx", "xz",
        "k_trans", "kk_trans", "ku_trans", "kz_trans", "k_obs", "kk_obs", "ku_obs", "kz_obs")

    n_seq: float = 0.0
    n_steps: float = 0.0
    n_trans: float = 0.0
    n_obs: float = 0.0  # steps with at least one observed coordinate
    z1: np.ndarray = 0.0  # (n,) Σ E[z_1]
    z1z1: np.ndarray = 0.0  # (n, n) Σ E[z_1 z_1^T]
    z_prev: np.ndarray = 0.0  # (n,)
    z_next: np.ndarray = 0.0  # (n,)
    z_all: np.ndarray = 0.0  # (n,)
    zz_prev: np.ndarray = 0.0  # (n, n) Σ_{t>=2} E[z_{t-1} z_{t-1}^T]
    zz_next: np.ndarray = 0.0  # (n, n) Σ_{t>=2} E[z_t z_t^T]
    zz_cross: np.ndarray = 0.0  # (n, n) Σ_{t>=2} E[z_t z_{t-1}^T]
    zz_all: np.ndarray = 0.0  # (n, n)
    z_obs: np.ndarray = 0.0  # (n,) Σ_{observed steps} E[z_t]
    zz_obs: np.ndarray = 0.0  # (n, n)
    x: np.ndarray = 0.0  # (p,) Σ E[x_t]
    xx: np.ndarray = 0.0  # (p, p) Σ E[x_t x_t^T]
    xz: np.ndarray = 0.0  # (p, n) Σ E[x_t z_t^T]
    k_trans: np.ndarray = 0.0  # (n,) Σ b_t of a time-varying b
    kk_trans: np.ndarray = 0.0  # (n, n) Σ b_t b_t^T
    ku_trans: np.ndarray = 0.0  # (n, n) Σ b_t E[u_t]^T
    kz_trans: np.ndarray = 0.0  # (n, n) Σ b_t E[z_{t-1}]^T
    k_obs: np.ndarray = 0.0  # (p,) Σ d_t of a time-varying d (observed steps)
    kk_obs: np.ndarray = 0.0  # (p, p)
    ku_obs: np.ndarray = 0.0  # (p, p)
    kz_obs: np.ndarray = 0.0  # (p, n)
    params: LDSParams | None = field(default=None, compare=False)


class SequenceBatch:
    """One EM chunk: equal-length sequences X : (B, T, p). Its len() is the number of time
    steps B * T, so the engine's mean log-likelihood is per time step."""

    def __init__(self, X: np.ndarray):
        self.X = X

    def __len__(self) -> int:
        return self.X.shape[0] * self.X.shape[1]


class SequenceSource(ChunkSource):
    """Sequences grouped by length, served as SequenceBatch chunks of at most about
    `steps_per_chunk` time steps (a sequence is never split)."""

    def __init__(self, groups, n_features: int, dtype, steps_per_chunk: int):
        self.n_features, self.dtype = n_features, np.dtype(dtype)
        self.chunks = []
        for _, Xg in groups:
            B, T, _ = Xg.shape
            per = max(1, steps_per_chunk // T)
            self.chunks += [SequenceBatch(Xg[i:i + per]) for i in range(0, B, per)]
        self.n_samples = sum(len(c) for c in self.chunks)

    def __iter__(self):
        return iter(self.chunks)

    def init_sample(self, max_rows, rng):
        """The sequences (a list of (T_i, p)); all of them: the initialization needs whole
        trajectories."""
        return [seq for chunk in self.chunks for seq in chunk.X]


class StoredSequenceSource(ChunkSource):
    """Equal-length sequences on disk, X : (n_seq, T, p) (an np.memmap or a zarr.Array),
    read lazily as SequenceBatch chunks (float64) of whole sequences: the chunks
    `SequenceSource` makes of the same array in memory, so that EM sums the same statistics
    in the same order; peak memory is one chunk, not the array (a memory map's pages are
    handed back once read, `MappedPages`). Call `check()` once before EM: it validates the
    array in one pass, as `kalman.as_sequences` does in memory."""

    def __init__(self, X, dtype, steps_per_chunk: int):
        self.X, self.dtype = X, np.dtype(dtype)
        self.n_seq, self.T, self.n_features = (int(k) for k in X.shape)
        self.per = max(1, steps_per_chunk // max(1, self.T))
        self.n_samples = self.n_seq * self.T
        self.pages = MappedPages(X) if isinstance(X, np.memmap) else None

    def _read(self, start: int, stop: int) -> np.ndarray:
        """Sequences start..stop-1 : (stop - start, T, p) float64, a copy in memory."""
        raw = self.X[start:stop]
        block = np.array(raw, dtype=np.float64)
        if self.pages is not None:
            self.pages.release(raw)
        return block

    def _blocks(self):
        for start in range(0, self.n_seq, self.per):
            yield start, self._read(start, start + self.per)

    def __iter__(self):
        for _, block in self._blocks():
            yield SequenceBatch(block)

    def check(self, name: str = "X") -> None:
        """InvalidInputError for inf (naming the sequence and its step), a value beyond the
        scale limit, or a column with no observed value in any sequence (read once)."""
        highs = np.full(self.n_features, np.nan)
        for start, block in self._blocks():
            for i, seq in enumerate(block):
                check_finite(np.asarray(seq, dtype=self.dtype), allow_nan=True,
                             model="the Kalman filter", name=f"{name} (sequence {start + i})")
            highs = np.fmax(highs, np.fmax.reduce(block, axis=(0, 1)))  # fmax skips NaN
        check_observed_columns(highs[None], name=name, model=None,
                               rows="every time step of every sequence")

    def init_sample(self, max_rows, rng):
        """The sequences (a list of (T, p)) EM initializes from: all of them (as in memory)
        when they hold at most `max_rows` time steps, else a random subset of whole
        sequences of about max_rows steps (`_sample_rows`), so that memory stays bounded."""
        chosen = _sample_rows(self.n_seq, max(1, max_rows // max(1, self.T)), rng)
        if len(chosen) == self.n_seq:
            return [seq for _, block in self._blocks() for seq in block]
        picked = []
        for start, block in self._blocks():
            low, high = np.searchsorted(chosen, [start, start + len(block)])
            picked += list(block[chosen[low:high] - start])
        return picked


# -- E-step -------------------------------------------------------------------------------


def e_step(params: LDSParams, X: np.ndarray, method: str = "auto", fixed=frozenset()):
    """(LDSStats, total log-likelihood) of a group X : (B, T, p) (NaN = missing); `fixed`
    names the held parameters (a held time-varying matrix is summed into the target)."""
    B, T, p = X.shape
    mp, Pp, mf, Pf, ll = kalman.filter_group(X, params, method)
    ms, Ps, Pc = kalman.smooth_group(params, mp, Pp, mf, Pf, method)
    Ezz = Ps + ms[..., :, None] * ms[..., None, :]
    zz_all = Ezz.sum(axis=(0, 1))
    z_all = ms.sum(axis=(0, 1))
    stats = LDSStats(
        n_seq=float(B), n_steps=float(B * T), n_trans=float(B * (T - 1)),
        z1=ms[:, 0].sum(axis=0), z1z1=Ezz[:, 0].sum(axis=0),
        z_prev=z_all - ms[:, -1].sum(axis=0), z_all=z_all,
        zz_prev=zz_all - Ezz[:, -1].sum(axis=0), zz_all=zz_all,
        **transition_stats(params, fixed, ms, Ps, Pc),
        **observation_stats(params, fixed, X, ms, Ps, Ezz), params=params)
    return stats, float(ll.sum())


# -- M-step -------------------------------------------------------------------------------


def _regress(Syx, Sxx):
    """argmin_B Σ ||y - B x||^2 from Syx = Σ y x^T, Sxx = Σ x x^T (normal equations by a
    Cholesky solve; least squares when Sxx is singular)."""
    try:
        return cho_solve(cho_factor(Sxx), Syx.T).T
    except LinAlgError:
        return np.linalg.lstsq(Sxx, Syx.T, rcond=None)[0].T


def _residual_scatter(yy, yx, xx, y, x, n, M, c):
    """Σ E[(y - M x - c)(y - M x - c)^T] from the moment sums (any M, c)."""
    My = M @ yx.T  # Σ M x y^T
    cy = np.outer(c, y)
    Mxc = np.outer(M @ x, c)
    S = yy - My - My.T + M @ xx @ M.T - cy - cy.T + Mxc + Mxc.T + n * np.outer(c, c)
    return 0.5 * (S + S.T)


def regularization_slack(stats: LDSStats, old: LDSParams, new: LDSParams, fixed,
                         reg_covar: float) -> float:
    """How far the M-step from `old` to `new` may lower the log-likelihood: a bound >= 0.

    With reg_covar = r each covariance the M-step estimates, Σ = S / N + r I from a residual
    scatter S over N terms (Q: N = n_trans, R: n_obs, V0: n_seq), is the exact maximizer of
    the penalized Q(θ) - (r/2) N tr Σ^{-1}, not of EM's Q(θ); EM's inequality then bounds
    the loss by the penalty saved, (r/2) Σ N (tr Σ_old^{-1} - tr Σ_new^{-1})
    (`latentkit.em.contract`; as the Gaussian mixture's `regularization_slack`)."""
    if reg_covar == 0:
        return 0.0
    total = 0.0
    for name, field_, count in (("transition_covariance", "Q", stats.n_trans),
                                ("observation_covariance", "R", stats.n_obs),
                                ("initial_state_covariance", "V0", stats.n_seq)):
        if name in fixed or count <= 0:
            continue
        try:
            saved = (np.trace(np.linalg.inv(getattr(old, field_)))
                     - np.trace(np.linalg.inv(getattr(new, field_))))
        except np.linalg.LinAlgError:
            continue
        if np.isfinite(saved):
            total += 0.5 * reg_covar * count * float(saved)
    return max(0.0, total)


def _regression_pair(yx, y_sum, xx, x_sum, n, M_old, c_old, free_M, free_c):
    """(M, c) maximizing Σ log N(y; M x + c, ·), each held at its old value unless free."""
    if free_M and free_c:
        Syx = np.column_stack([yx, y_sum])
        Sxx = np.block([[xx, x_sum[:, None]], [x_sum[None, :], np.array([[n]])]])
        Mc = _regress(Syx, Sxx)
        return Mc[:, :-1], Mc[:, -1]
    if free_M:
        return _regress(yx - np.outer(c_old, x_sum), xx), c_old
    if free_c:
        return M_old, (y_sum - M_old @ x_sum) / n
    return M_old, c_old


def _shift(uu, uz, u, z, n, c, cross):
    """Sums of y = u - c_t for a held offset: c constant (k,), or time-varying (T', k) with
    the E-step's cross sums cross = (Σ c, Σ c c^T, Σ c E[u]^T, Σ c E[z]^T). Returns
    (Σ E[y y^T], Σ E[y z^T], Σ E[y])."""
    if np.ndim(c) == 1:
        cs, cc, cu, cz = n * c, n * np.outer(c, c), np.outer(c, u), np.outer(c, z)
    else:
        cs, cc, cu, cz = cross
    return uu - cu - cu.T + cc, uz - cz, u - cs


def _fit_side(sums, cross, old, free, order, covariance_type, reg_covar, floor=None):
    """(M, c, S) of one regression u = M z + c + noise(S) (transition or observation).

    sums = (Σ E[u u^T], Σ E[u z^T], Σ E[u], Σ E[z z^T], Σ E[z], count); old = (M, c, S);
    free = (M, c, S) flags; floor : (k,) or None, S's floor (`_covariance`). A held M or c
    is inside the target u already (`_em_stats`), so it acts as 0 here; in pykalman's
    order the old offset shifts the target (`_shift`).
    """
    uu, uz, u, zz, z, n = sums
    (M_old, c_old, S_old), (free_M, free_c, free_S) = old, free
    zero_M, zero_c = np.zeros(np.shape(M_old)[-2:]), np.zeros(len(u))
    if free_c and (order == "joint" or not free_M):
        M, c = _regression_pair(uz, u, zz, z, n, zero_M, None, free_M, True)
        scatter = _residual_scatter(uu, uz, zz, u, z, n, M, c)
    else:  # the offset is held, or (pykalman's order) updated after M and S
        yy, yz, y = _shift(uu, uz, u, z, n, c_old, cross) if free_c else (uu, uz, u)
        M, _ = _regression_pair(yz, y, zz, z, n, zero_M, zero_c, free_M, False)
        scatter = _residual_scatter(yy, yz, zz, y, z, n, M, zero_c)
        c = (u - M @ z) / n if free_c else c_old
    S = covariance_update(scatter, n, covariance_type, reg_covar, floor) if free_S else S_old
    return (M if free_M else M_old), c, S


def m_step(stats: LDSStats, fixed: frozenset, covariance_type: str = "full",
           reg_covar: float = 0.0, order: str = "joint", obs_floor=None,
           obs_reg=None) -> LDSParams:
    """θ maximizing the expected complete-data log-likelihood; parameters named in `fixed`
    (public names) keep the values in stats.params. order "joint": each (matrix, offset)
    pair maximized together; "pykalman": the matrix given the old offset, the covariance
    given both, then the offset given the new matrix (pykalman's `em`). obs_floor : (p,)
    or None: R is maximized over R ⪰ diag(obs_floor) (`_covariance`); obs_reg : (p,) or
    None: what R's diagonal gets instead of reg_covar (reg_covar in rescaled units)."""
    A, b, C, d, Q, R, mu0, V0 = stats.params
    free = {name: name not in fixed for name in PUBLIC_NAMES}
    if stats.n_trans > 0:
        A, b, Q = _fit_side(
            (stats.zz_next, stats.zz_cross, stats.z_next, stats.zz_prev, stats.z_prev,
             stats.n_trans),
            (stats.k_trans, stats.kk_trans, stats.ku_trans, stats.kz_trans), (A, b, Q),
            (free["transition_matrix"], free["transition_offset"],
             free["transition_covariance"]), order, covariance_type, reg_covar)
    if stats.n_obs > 0:
        C, d, R = _fit_side(
            (stats.xx, stats.xz, stats.x, stats.zz_obs, stats.z_obs, stats.n_obs),
            (stats.k_obs, stats.kk_obs, stats.ku_obs, stats.kz_obs), (C, d, R),
            (free["observation_matrix"], free["observation_offset"],
             free["observation_covariance"]), order, covariance_type,
            reg_covar if obs_reg is None else obs_reg, obs_floor)
    if free["initial_state_mean"]:
        mu0 = stats.z1 / stats.n_seq
    if free["initial_state_covariance"]:
        cross = np.outer(mu0, stats.z1)
        V0 = (stats.z1z1 - cross - cross.T) / stats.n_seq + np.outer(mu0, mu0)
        V0 = clip_psd(V0) + reg_covar * np.eye(len(V0))
    return LDSParams(A, b, C, d, Q, R, mu0, V0)


# -- initialization -----------------------------------------------------------------------


def initial_params(sequences: list, state_dim: int, covariance_type: str,
                   reg_covar: float) -> LDSParams:
    """θ from the data, in the spirit of subspace identification.

    1. PCA of the (lag-embedded) observations gives a latent trajectory z_t; the
       embedding [x_t; x_{t+1}; ...] (a Hankel matrix) is used when state_dim > p so that
       state_dim directions exist. Missing entries are filled by column means here.
    2. Least squares of x_t on [z_t; 1] gives C, d.
    3. z_t carries observation noise, so the least-squares regression of z_t on z_{t-1} is
       biased towards 0 (errors in variables). With white noise the lagged moments
       Γ_k = Cov(z_t, z_{t-k}) = A^k Π for k >= 1 are noise-free, so the instrumental-variable
       estimate A = Γ_2 Γ_1^{-1} is consistent, and Π = A^{-1} Γ_1 (falling back to least
       squares and Γ_0 when these are ill-conditioned or unstable).
    4. Q = Π - A Π A^T, R = Cov(x) - C Π C^T, V0 = Π, b and μ0 from the means; every
       covariance is floored (eigenvalues >= 1e-3 of its scale) so EM starts from
       positive-definite values. With a single time step in all, Cov(x) is undefined and
       is taken as the identity (so R starts at about the identity).
    """
    n = state_dim
    p = sequences[0].shape[1]
    stacked = np.concatenate(sequences)
    with np.errstate(invalid="ignore"):
        col_mean = np.nanmean(np.where(np.isnan(stacked).all(axis=0), 0.0, stacked), axis=0)
    filled = [np.where(np.isnan(s), col_mean, s) for s in sequences]
    lags = math.ceil(n / p)
    usable = [s for s in filled if len(s) >= lags + 2] or filled
    lags = max(1, min(lags, min(len(s) for s in usable)))
    hankel = [np.hstack([s[i:len(s) - lags + 1 + i] for i in range(lags)]) for s in usable]
    H = np.concatenate(hankel)
    center = H.mean(axis=0)
    _, sv, Vt = np.linalg.svd(H - center, full_matrices=False)
    k = min(n, Vt.shape[0])
    Zs = [(h - center) @ Vt[:k].T for h in hankel]
    if k < n:  # too few directions: pad with small deterministic ramps
        scale = 1e-3 * (sv[0] / math.sqrt(len(H)) if len(sv) else 1.0)
        Zs = [np.hstack([z, scale * np.cos(np.outer(np.arange(len(z)) + 1.0,
                                                    np.arange(1, n - k + 1)))]) for z in Zs]
    X_now = np.concatenate([s[:len(z)] for s, z in zip(usable, Zs)])
    Z_all = np.concatenate(Zs)
    Cd = np.linalg.lstsq(np.hstack([Z_all, np.ones((len(Z_all), 1))]), X_now,
                         rcond=None)[0].T
    C, d = Cd[:, :n], Cd[:, n]
    z_mean = Z_all.mean(axis=0)
    gamma = [_lagged_moment(Zs, z_mean, lag) for lag in range(3)]
    A, Pi = _transition_from_moments(*gamma)
    Q = _floor(Pi - A @ Pi @ A.T, Pi, covariance_type, reg_covar)
    # Cov(x) needs two time steps; with a single one (T = 1) it starts at the identity
    x_cov = np.cov(X_now.T).reshape(p, p) if len(X_now) > 1 else np.eye(p)
    R = _floor(x_cov - C @ Pi @ C.T, x_cov, covariance_type, reg_covar)
    b = z_mean - A @ z_mean
    mu0 = np.mean([z[0] for z in Zs], axis=0)
    V0 = _floor(Pi, Pi, "full", reg_covar)
    return LDSParams(A, b, C, d, Q, R, mu0, V0)


def _lagged_moment(Zs, mean, lag):
    """Γ_lag = average of (z_t - z̄)(z_{t-lag} - z̄)^T over all sequences : (n, n)."""
    total, count = 0.0, 0
    for z in Zs:
        if len(z) > lag:
            c = z - mean
            total = total + c[lag:].T @ c[:len(c) - lag]
            count += len(c) - lag
    return total / max(count, 1) if count else np.zeros((Zs[0].shape[1],) * 2)


def _transition_from_moments(G0, G1, G2):
    """(A, Π): instrumental variables A = Γ2 Γ1^{-1}, Π = A^{-1} Γ1 when well-posed and
    stable; else least squares A = Γ1 Γ0^{-1} and Π = Γ0."""
    n = len(G0)
    well_posed = np.linalg.cond(G1) < 1e8 if n else False
    if well_posed:
        A = np.linalg.solve(G1.T, G2.T).T
        radius = np.max(np.abs(np.linalg.eigvals(A)))
        if radius <= 1.0 and np.linalg.cond(A) < 1e8:
            Pi = np.linalg.solve(A, G1)
            Pi = 0.5 * (Pi + Pi.T)
            if np.linalg.eigvalsh(Pi)[0] > 0:
                return A, Pi
    A = np.linalg.lstsq(G0 + 1e-12 * np.trace(G0) * np.eye(n), G1.T, rcond=None)[0].T
    return A, G0


def _floor(S, reference, covariance_type, reg_covar):
    """S symmetrized, diagonal when asked, eigenvalues raised to >= 1e-3 of the mean
    diagonal of `reference`, plus reg_covar."""
    S = 0.5 * (S + S.T)
    if covariance_type == "diag":
        S = np.diag(np.diag(S))
    floor = 1e-3 * max(np.trace(reference) / max(len(S), 1), np.finfo(float).tiny)
    w, U = np.linalg.eigh(S)
    S = (U * np.maximum(w, floor)) @ U.T
    return 0.5 * (S + S.T) + reg_covar * np.eye(len(S))
