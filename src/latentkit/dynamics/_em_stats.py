"""The E-step's expected sufficient statistics of a linear dynamical system, from the
smoothed moments (used by `_em.e_step`).

Each half of the model is a regression whose statistics are sums of expected moments:

    transition   u_t = z_t - K_t z_{t-1} - k_t   on  [z_{t-1}; 1]   (coefficients A, b),
    observation  u_t = x_t - K_t z_t - k_t       on  [z_t; 1]       (coefficients C, d),

where K_t is the held matrix (A_{t-1} or C_t, constant or time-varying) and k_t the held
offset (b_{t-1} or d_t), each 0 when EM estimates it (the usual case: u_t = z_t or x_t).
With the held parts inside the target, its moments are formed as covariance plus outer
product of the (small) residual mean, E[u u^T] = Cov(u) + E[u] E[u]^T, the form without
cancellation between large sums. A time-varying offset that EM estimates (its starting
value) travels as cross sums Σ k k^T, Σ k, Σ k E[u]^T, Σ k E[z]^T (pykalman's update
order uses the old offset: `_em._shift`).

A missing coordinate x_{t,m} is latent too: given z_t and the observed x_{t,o},

    x_{t,m} = C_m z_t + d_m + W (x_{t,o} - C_o z_t - d_o) + η,   W = R_mo R_oo^{-1},
    η ~ N(0, R_mm - W R_om)

so x_t = G z_t + g_t + η_t is affine in z_t (G = 0, g = x_o on the observed rows) and
every expected moment follows from the smoothed ones. A step with no observed coordinate
is left out of the observation sums (its x_t integrates out; counts `n_obs`).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .._missing import missingness_patterns
from ._params import LDSParams


def _mT(M):
    return np.swapaxes(M, -1, -2)


def _held(params: LDSParams, fixed, matrix: str, offset: str, T: int):
    """(K, k): the held matrix and offset of one regression, cut to T steps (None when EM
    estimates it), and the time-varying starting offset EM estimates (else None)."""
    field_M, field_c = {"transition_matrix": ("A", "b"), "observation_matrix": ("C", "d")}[matrix]
    M, c = getattr(params, field_M), getattr(params, field_c)
    K = (M[:T] if M.ndim == 3 else M) if matrix in fixed else None
    k = (c[:T] if c.ndim == 2 else c) if offset in fixed else None
    free_tv = c[:T] if offset not in fixed and c.ndim == 2 else None
    return K, k, free_tv


def transition_stats(params: LDSParams, fixed, ms, Ps, Pc) -> dict:
    """Sums over t = 1..T-1 of the transition target moments (module docstring) and, for
    a time-varying b that EM estimates, its cross sums.

    ms : (B, T, n) smoothed means; Ps : (B, T, n, n) covariances; Pc : (B, T, n, n) =
    Cov(z_t, z_{t-1}). Returns {z_next: Σ E[u], zz_next: Σ E[u u^T], zz_cross:
    Σ E[u z_{t-1}^T]} plus {k_trans, kk_trans, ku_trans, kz_trans} for such a b.
    """
    T = ms.shape[1]
    K, k, free_tv = _held(params, fixed, "transition_matrix", "transition_offset", T - 1)
    prev, now = ms[:, :-1], ms[:, 1:]
    if K is None and k is None:
        Ecross = Pc[:, 1:].sum(axis=(0, 1)) + np.einsum("bti,btj->ij", now, prev)
        out = dict(z_next=now.sum(axis=(0, 1)), zz_cross=Ecross,
                   zz_next=(Ps[:, 1:].sum(axis=(0, 1)) + np.einsum("bti,btj->ij", now, now)))
        Eu = now
    else:
        K = np.zeros(Ps.shape[-2:]) if K is None else K
        Eu = now - (K @ prev[..., None])[..., 0] - (0.0 if k is None else k)
        KPc = K @ _mT(Pc[:, 1:])  # K Cov(z_{t-1}, z_t)
        KP = K @ Ps[:, :-1]
        cov = Ps[:, 1:] - KPc - _mT(KPc) + KP @ _mT(K)  # Cov(u_t)
        out = dict(z_next=Eu.sum(axis=(0, 1)),
                   zz_next=cov.sum(axis=(0, 1)) + np.einsum("bti,btj->ij", Eu, Eu),
                   zz_cross=(Pc[:, 1:] - KP).sum(axis=(0, 1))
                   + np.einsum("bti,btj->ij", Eu, prev))
    if free_tv is not None:
        out.update(_offset_cross(free_tv, Eu, prev, "trans"))
    return out


def _offset_cross(k, Eu, Ez, side: str) -> dict:
    """Σ k, Σ k k^T, Σ k E[u]^T, Σ k E[z]^T over all sequences, for a time-varying offset
    k : (T', k_dim) shared by the sequences and Eu, Ez : (B, T', ·)."""
    B = Eu.shape[0]
    return {f"k_{side}": B * k.sum(axis=0), f"kk_{side}": B * (k.T @ k),
            f"ku_{side}": np.einsum("ti,btj->ij", k, Eu),
            f"kz_{side}": np.einsum("ti,btj->ij", k, Ez)}


def observation_stats(params: LDSParams, fixed, X, ms, Ps, Ezz) -> dict:
    """Sums over the steps with an observed coordinate of the observation target moments:
    {n_obs, z_obs, zz_obs (regressors), x: Σ E[u], xx: Σ E[u u^T], xz: Σ E[u z^T]} and,
    for a time-varying d that EM estimates, its cross sums {k_obs, kk_obs, ku_obs, kz_obs}.

    X : (B, T, p) with NaN = missing; ms : (B, T, n); Ps : (B, T, n, n) covariances and
    Ezz = Ps + ms ms^T.
    """
    B, T, p = X.shape
    n = ms.shape[-1]
    K, k, free_tv = _held(params, fixed, "observation_matrix", "observation_offset", T)
    m, P = ms.reshape(B * T, n), Ps.reshape(B * T, n, n)
    if K is None and k is None and np.ndim(params.C) == 2 and np.ndim(params.d) == 1:
        return _observation_stats_const(params, X.reshape(B * T, p), m,
                                        Ezz.reshape(B * T, n, n))
    rows_C, rows_d = _per_row(params, B, T)
    Xf = X.reshape(B * T, p)
    keep = ~np.isnan(Xf).all(axis=1)
    G, g, Omega = completion(rows_C[keep], rows_d[keep], params.R, Xf[keep])
    if K is not None:  # u = x - K z - k: G <- G - K, g <- g - k
        G = G - np.broadcast_to(K, (T, p, n) if K.ndim == 3 else (p, n))[
            np.tile(np.arange(T), B)[keep] if K.ndim == 3 else ...]
    if k is not None:
        g = g - (np.tile(k, (B, 1))[keep] if k.ndim == 2 else k)
    m, P = m[keep], P[keep]
    Eu = (G @ m[..., None])[..., 0] + g  # the residual mean; Cov(u) = G P G^T + Ω
    GP = G @ P
    out = dict(n_obs=float(keep.sum()), z_obs=m.sum(axis=0),
               zz_obs=P.sum(axis=0) + m.T @ m, x=Eu.sum(axis=0),
               xz=GP.sum(axis=0) + Eu.T @ m, xx=(GP @ _mT(G)).sum(axis=0) + Eu.T @ Eu + Omega)
    if free_tv is not None:
        kr = np.tile(free_tv, (B, 1))[keep]
        out.update(k_obs=kr.sum(axis=0), kk_obs=kr.T @ kr, ku_obs=kr.T @ Eu, kz_obs=kr.T @ m)
    return out


def _per_row(params: LDSParams, B: int, T: int):
    """C : (B T, p, n) and d : (B T, p), the observation parameters of every step of B
    sequences of T steps (broadcast views when constant)."""
    p, n = params.obs_dim, params.state_dim
    C = np.broadcast_to(params.C[:T] if np.ndim(params.C) == 3 else params.C, (T, p, n))
    d = np.broadcast_to(params.d[:T] if np.ndim(params.d) == 2 else params.d, (T, p))
    return (np.broadcast_to(C, (B, T, p, n)).reshape(B * T, p, n),
            np.broadcast_to(d, (B, T, p)).reshape(B * T, p))


def _observation_stats_const(params: LDSParams, X, m, Ezz) -> dict:
    """`observation_stats` for constant C, d that EM estimates: X : (N, p), m : (N, n),
    Ezz : (N, n, n); complete rows by matrix products, the others by missingness pattern."""
    observed = ~np.isnan(X)
    complete = observed.all(axis=1)
    keep = observed.any(axis=1)
    Xc, mc = X[complete], m[complete]
    x, xx, xz = Xc.sum(axis=0), Xc.T @ Xc, Xc.T @ mc
    partial = np.flatnonzero(keep & ~complete)
    for rows, obs in missingness_patterns(observed[partial]):
        rows = partial[rows]
        G, g, Omega = completion(params.C, params.d, params.R, X[rows], obs)
        Sz, Szz, gm = m[rows].sum(axis=0), Ezz[rows].sum(axis=0), g.T @ m[rows]
        x = x + G @ Sz + g.sum(axis=0)
        xz = xz + G @ Szz + gm
        xx = xx + G @ Szz @ G.T + G @ gm.T + gm @ G.T + g.T @ g + Omega
    return dict(n_obs=float(keep.sum()), z_obs=m[keep].sum(axis=0),
                zz_obs=Ezz[keep].sum(axis=0), x=x, xx=xx, xz=xz)


def completion(C, d, R, X, obs=None):
    """x_t = G_t z_t + g_t + η_t for rows X : (k, p) with at least one observed coordinate.

    C : (p, n) and d : (p,) shared by the rows (then `obs` : (p,) bool is their common
    observed set), or C : (k, p, n), d : (k, p) one per row (obs None: rows are grouped by
    pattern here). Observed coordinates: G = 0, g = x_o; missing ones:
    G_m = C_m - W C_o, g_m = d_m + W (x_o - d_o), W = R_mo R_oo^{-1} (a Cholesky solve of
    R_oo W^T = R_om). Returns G ((p, n) or (k, p, n)), g (k, p) and Ω = Σ_rows Cov(η_t)
    (R_mm - W R_om on the missing block of each row).
    """
    if obs is not None:
        G, g, Omega = completion(np.broadcast_to(C, (len(X),) + C.shape),
                                 np.broadcast_to(d, X.shape), R, X)
        return G[0] if len(G) else np.zeros_like(C), g, Omega
    observed = ~np.isnan(X)
    G = np.zeros_like(C)
    g = np.where(observed, X, 0.0)
    Omega = np.zeros_like(R)
    for rows, obs_ in missingness_patterns(observed):
        if obs_.all():
            continue
        mis = ~obs_
        W = cho_solve(cho_factor(R[np.ix_(obs_, obs_)]), R[np.ix_(obs_, mis)]).T
        Cr, dr = C[rows], d[rows]
        G[np.ix_(rows, mis)] = Cr[:, mis] - W @ Cr[:, obs_]
        g[np.ix_(rows, mis)] = dr[:, mis] + (X[np.ix_(rows, obs_)] - dr[:, obs_]) @ W.T
        Omega[np.ix_(mis, mis)] += len(rows) * (R[np.ix_(mis, mis)] - W @ R[np.ix_(obs_, mis)])
    return G, g, Omega


def completed_means(params: LDSParams, X, m):
    """E[x_t | x_{1:T}] = G_t m_t + g_t for X : (B, T, p) (NaN = missing) and the smoothed
    means m : (B, T, n); observed entries come back as they are, an all-missing step as
    C_t m_t + d_t."""
    B, T, p = X.shape
    rows_C, rows_d = _per_row(params, B, T)
    Xf, mf = X.reshape(B * T, p), m.reshape(B * T, -1)
    out = np.array(Xf, dtype=np.float64)
    none = np.isnan(Xf).all(axis=1)
    out[none] = (rows_C[none] @ mf[none][..., None])[..., 0] + rows_d[none]
    some = np.flatnonzero(~none & np.isnan(Xf).any(axis=1))
    if len(some):
        G, g, _ = completion(rows_C[some], rows_d[some], params.R, Xf[some])
        out[some] = (G @ mf[some][..., None])[..., 0] + g
    return out.reshape(B, T, p)
