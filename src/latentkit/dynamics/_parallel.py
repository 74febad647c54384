"""Parallel (associative-scan) Kalman filter and RTS smoother in NumPy.

Särkkä & García-Fernández, "Temporal parallelization of Bayesian smoothers", IEEE TAC 66
(2021). Each time step becomes an element of an associative operator; an inclusive scan
over the elements gives every filtered (or smoothed) moment in O(log T) sequential depth,
each level one batched NumPy operation over all steps and sequences. Shapes as in
`_serial` (a leading batch axis B, then time T).

Filtering element of step t, for p(z_t | z_{t-1}, x_t) = N(A_t z_{t-1} + b_t, C_t) and the
likelihood of z_{t-1} from x_t, N_I(η_t, J_t) (information form). With the prediction
from z_{t-1} = 0 (mean b, covariance Q; at t = 0 the prior μ0, V0 and A_0 = 0),
S = H Q H^T + R, K = Q H^T S^{-1}:

    A_t = (I - K H) A,   b_t = b + K (y - H b),   C_t = (I - K H) Q (I - K H)^T + K R K^T
    η_t = A^T H^T S^{-1} (y - H b),   J_t = A^T H^T S^{-1} H A

Missing coordinates are dropped exactly by masking: their row of H and y is zeroed and
their block of R replaced by the identity, so S is block-diagonal and they receive no gain.

    (A_i, b_i, C_i, η_i, J_i) ⊗ (A_j, b_j, C_j, η_j, J_j), with M = I + C_i J_j:
    A = A_j M^{-1} A_i,   b = A_j M^{-1} (b_i + C_i η_j) + b_j,   C = A_j M^{-1} C_i A_j^T + C_j
    η = A_i^T M^{-T} (η_j - J_j b_i) + η_i,   J = A_i^T M^{-T} J_j A_i + J_i

A time-varying θ (A_t, b_t, C_t, d_t with a leading time axis, `_params`) enters the same
elements step by step: element t uses the transition A_{t-1}, b_{t-1} into it and C_t, d_t.

Smoothing element (backwards): E_t = Pf_t A^T Pp_{t+1}^{-1}, g_t = mf_t - E_t mp_{t+1},
L_t = Pf_t - E_t A Pf_t (E = 0, g = mf, L = Pf at the last step), combined as
(E_i E_j, E_i g_j + g_i, E_i L_j E_i^T + L_i).
"""

from __future__ import annotations

import numpy as np

from .._linalg import LOG_2PI
from ._params import LDSParams


def _mT(M):
    return np.swapaxes(M, -1, -2)


def _sym(M):
    return 0.5 * (M + _mT(M))


def associative_scan(op, elems: tuple, *, reverse: bool = False) -> tuple:
    """Inclusive scan of the associative `op(earlier, later)` over axis 1 of each array.

    elems : tuple of arrays (B, T, ...). Returns the prefixes e_0 ⊗ ... ⊗ e_t (or, with
    `reverse`, the suffixes e_t ⊗ ... ⊗ e_{T-1}) in the same layout. Work O(T), depth
    O(log T): pairs are combined, the half-length problem is solved recursively, and the
    even positions are filled in from it.
    """
    if reverse:
        flipped = tuple(e[:, ::-1] for e in elems)
        out = _scan(lambda a, b: op(b, a), flipped)
        return tuple(np.ascontiguousarray(o[:, ::-1]) for o in out)
    return _scan(op, elems)


def _scan(op, elems):
    T = elems[0].shape[1]
    if T < 2:
        return elems
    odd = _scan(op, op(tuple(e[:, 0:-1:2] for e in elems), tuple(e[:, 1::2] for e in elems)))
    later = tuple(e[:, 2::2] for e in elems)
    earlier = odd if T % 2 else tuple(o[:, :-1] for o in odd)
    even = op(earlier, later) if later[0].shape[1] else later
    out = []
    for e, ev, od in zip(elems, even, odd):
        full = np.empty_like(e)
        full[:, 0] = e[:, 0]
        full[:, 2::2] = ev
        full[:, 1::2] = od
        out.append(full)
    return tuple(out)


def _filter_op(first, second):
    A1, b1, C1, eta1, J1 = first
    A2, b2, C2, eta2, J2 = second
    n = A1.shape[-1]
    M = np.eye(n) + C1 @ J2
    # one solve for M^{-1} [A_i, b_i + C_i η_j, C_i]; one for M^{-T} [η_j - J_j b_i, J_j A_i]
    right = np.concatenate([A1, (b1 + (C1 @ eta2[..., None])[..., 0])[..., None], C1], axis=-1)
    Z = np.linalg.solve(M, right)
    left = np.concatenate([(eta2 - (J2 @ b1[..., None])[..., 0])[..., None], J2 @ A1], axis=-1)
    Y = np.linalg.solve(_mT(M), left)
    A2Z = A2 @ Z
    A = A2Z[..., :n]
    b = A2Z[..., n] + b2
    C = _sym(A2Z[..., n + 1:] @ _mT(A2) + C2)
    A1T = _mT(A1)
    eta = (A1T @ Y[..., :1])[..., 0] + eta1
    J = _sym(A1T @ Y[..., 1:] + J1)
    return A, b, C, eta, J


def _masked_observation(X, params: LDSParams):
    """H (B, T, p, n), y = x - d (B, T, p) and R (B, T, p, p) with missing coordinates
    masked out (zero row of H and y, identity block of R), and the observed mask."""
    observed = ~np.isnan(X)
    H = np.where(observed[..., None], params.C, 0.0)
    y = np.where(observed, X - params.d, 0.0)
    both = observed[..., :, None] & observed[..., None, :]
    eye = np.eye(params.obs_dim, dtype=bool)
    R = np.where(both, params.R, np.where(eye, 1.0, 0.0))
    return H, y, R, observed


def _gain(H, R, P):
    """(S, K, (I - K H), Joseph covariance) for prior covariance P and masked H, R."""
    HP = H @ P
    S = _sym(HP @ _mT(H) + R)
    K = _mT(np.linalg.solve(S, HP))  # K = P H^T S^{-1}
    IKH = np.eye(P.shape[-1]) - K @ H
    cov = _sym(IKH @ P @ _mT(IKH) + K @ R @ _mT(K))
    return S, K, IKH, cov


def _trimmed(params: LDSParams, T: int) -> LDSParams:
    """θ for T steps: time-varying A, b cut to their first T - 1 steps, C, d to T."""
    return params._replace(A=params.A[:T - 1] if params.A.ndim == 3 else params.A,
                           b=params.b[:T - 1] if params.b.ndim == 2 else params.b,
                           C=params.C[:T] if params.C.ndim == 3 else params.C,
                           d=params.d[:T] if params.d.ndim == 2 else params.d)


def _into_step(v, ndim):
    """The per-element layout of a transition parameter: element t uses v_{t-1} (element
    0 never uses it: it starts from the prior), so a time-varying v gets a dummy first step."""
    return v if v.ndim == ndim else np.concatenate([v[:1], v])


def _propagate(A, b, Q, mf, Pf):
    """Predicted moments of steps 1..T-1 from the filtered ones of 0..T-2:
    mp = A mf + b, Pp = A Pf A^T + Q (A : (n, n) or (T-1, n, n))."""
    if A.ndim == 2:
        return mf @ A.T + b, _sym(A @ Pf @ A.T + Q)
    return (A @ mf[..., None])[..., 0] + b, _sym(A @ Pf @ _mT(A) + Q)


def filter_parallel(X: np.ndarray, params: LDSParams):
    """Filter by associative scan. X : (B, T, p). Returns (mp, Pp, mf, Pf, ll) as
    `_serial.filter_batch`: predicted and filtered moments and per-step log-likelihoods."""
    B, T, p = X.shape
    n = params.state_dim
    params = _trimmed(params, T)
    A, b, Q = _into_step(params.A, 2), _into_step(params.b, 1), params.Q
    H, y, R, observed = _masked_observation(X, params)
    P_prior = np.broadcast_to(Q, (B, T, n, n)).copy()
    m_prior = np.broadcast_to(b, (B, T, n)).copy()
    P_prior[:, 0], m_prior[:, 0] = params.V0, params.mu0
    S, K, IKH, cov = _gain(H, R, P_prior)
    resid = y - (H @ m_prior[..., None])[..., 0]
    elem_b = m_prior + (K @ resid[..., None])[..., 0]
    elem_A = IKH @ A
    elem_A[:, 0] = 0.0
    HA = H @ A
    SinvHA = np.linalg.solve(S, HA)  # S^{-1} H A
    elem_eta = (_mT(HA) @ np.linalg.solve(S, resid[..., None]))[..., 0]
    elem_J = _sym(_mT(HA) @ SinvHA)
    elem_eta[:, 0], elem_J[:, 0] = 0.0, 0.0
    _, mf, Pf, _, _ = associative_scan(_filter_op, (elem_A, elem_b, cov, elem_eta, elem_J))
    mp = np.empty_like(mf)
    Pp = np.empty_like(Pf)
    mp[:, 0], Pp[:, 0] = params.mu0, params.V0
    mp[:, 1:], Pp[:, 1:] = _propagate(params.A, params.b, Q, mf[:, :-1], Pf[:, :-1])
    ll = _step_log_likelihood(H, y, R, observed, mp, Pp)
    return mp, Pp, mf, Pf, ll


def _step_log_likelihood(H, y, R, observed, mp, Pp):
    """log N(x_o,t; C_o mp_t + d_o, C_o Pp_t C_o^T + R_oo) : (B, T) from masked H, y, R
    (a masked coordinate adds log 1 and a zero residual, so only k_t observed count)."""
    S = _sym(H @ Pp @ _mT(H) + R)
    L = np.linalg.cholesky(S)
    e = y - (H @ mp[..., None])[..., 0]
    v = np.linalg.solve(L, e[..., None])[..., 0]
    logdet = np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    k = observed.sum(-1)
    return -0.5 * (k * LOG_2PI + np.sum(v**2, axis=-1)) - logdet


def _smooth_op(first, second):
    E1, g1, L1 = first
    E2, g2, L2 = second
    return (E1 @ E2, (E1 @ g2[..., None])[..., 0] + g1, _sym(E1 @ L2 @ _mT(E1) + L1))


def smooth_parallel(params: LDSParams, mp, Pp, mf, Pf):
    """RTS smoother by a reverse associative scan; returns (ms, Ps, Pc) as
    `_serial.smooth_batch` (Pc[:, t] = Cov(z_t, z_{t-1} | all), Pc[:, 0] = 0)."""
    A = _trimmed(params, mf.shape[1]).A  # (n, n) or (T-1, n, n)
    E = np.zeros_like(Pf)
    # E_t = Pf_t A^T Pp_{t+1}^{-1} = (Pp_{t+1}^{-1} A Pf_t)^T, Pp symmetric
    APf = A @ Pf[:, :-1]
    E[:, :-1] = _mT(np.linalg.solve(Pp[:, 1:], APf))
    g = mf.copy()
    g[:, :-1] -= (E[:, :-1] @ mp[:, 1:, :, None])[..., 0]
    L = Pf.copy()
    L[:, :-1] = _sym(Pf[:, :-1] - E[:, :-1] @ APf)
    _, ms, Ps = associative_scan(_smooth_op, (E, g, L), reverse=True)
    Pc = np.zeros_like(Ps)
    Pc[:, 1:] = Ps[:, 1:] @ _mT(E[:, :-1])
    return ms, Ps, Pc
