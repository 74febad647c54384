"""Serial Kalman filter, RTS smoother and backward sampler, compiled with numba.

The recursions loop over time steps, so Python's per-step overhead would dominate them
(pykalman, filterpy); here each loop is one compiled call over a batch of equal-length
sequences, with the small dense algebra written out (Cholesky, triangular solves) so no
LAPACK call is paid per step. Model (one sequence, t = 0 .. T-1):

    z_0 ~ N(μ0, V0),   z_t = A z_{t-1} + b + w_t,  w ~ N(0, Q)
    x_t = C z_t + d + v_t,  v ~ N(0, R)

Shapes: X (B, T, p) with NaN = missing; A (n, n), b (n,), C (p, n), d (p,), Q (n, n),
R (p, p), μ0 (n,), V0 (n, n); a time-varying θ (`filter_batch_tv`, and the smoother and
sampler always) takes A (T_A, n, n) etc. with a leading step axis. Kernels write into
preallocated float64 outputs and return a status: 0 on success, else 1 + the flat index
b * T + t of the step whose covariance was not positive definite even after jitter (the
caller raises a clear error).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .._linalg import LOG_2PI

#: relative jitter tried (times the mean diagonal) when a covariance is only semi-definite
_JITTERS = (0.0, 1e-12, 1e-10, 1e-8)


@njit(cache=True, nogil=True)
def _cholesky(S, L, k):
    """Lower factor L of S[:k, :k] in place; False when S is not positive definite."""
    for i in range(k):
        for j in range(i + 1):
            s = S[i, j]
            for m in range(j):
                s -= L[i, m] * L[j, m]
            if i == j:
                if not s > 0.0:
                    return False
                L[i, i] = math.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
        for j in range(i + 1, k):
            L[i, j] = 0.0
    return True


@njit(cache=True, nogil=True)
def _cholesky_jitter(S, L, k):
    """Cholesky of S[:k, :k], adding a relative jitter to the diagonal when S is only
    semi-definite (a singular Q or R): the solves then give the pseudo-inverse limit."""
    scale = 0.0
    for i in range(k):
        scale += abs(S[i, i])
    scale = scale / max(k, 1) + 1e-300
    for jitter in _JITTERS:
        if jitter > 0.0:
            for i in range(k):
                S[i, i] += jitter * scale
        if _cholesky(S, L, k):
            return True
        if jitter > 0.0:
            for i in range(k):
                S[i, i] -= jitter * scale
    return False


@njit(cache=True, nogil=True)
def _solve_lower(L, B, k, m):
    """B[:k, :m] <- L^{-1} B (forward substitution), L lower (k, k)."""
    for c in range(m):
        for i in range(k):
            s = B[i, c]
            for j in range(i):
                s -= L[i, j] * B[j, c]
            B[i, c] = s / L[i, i]


@njit(cache=True, nogil=True)
def _solve_upper_t(L, B, k, m):
    """B[:k, :m] <- L^{-T} B (back substitution with the transpose of lower L)."""
    for c in range(m):
        for i in range(k - 1, -1, -1):
            s = B[i, c]
            for j in range(i + 1, k):
                s -= L[j, i] * B[j, c]
            B[i, c] = s / L[i, i]


@njit(cache=True, nogil=True)
def _symmetrize(P, n):
    for i in range(n):
        for j in range(i):
            s = 0.5 * (P[i, j] + P[j, i])
            P[i, j] = s
            P[j, i] = s


@njit(cache=True, nogil=True)
def _predict(A, b, Q, m_prev, P_prev, m, P, tmp, n):
    """m = A m_prev + b;  P = A P_prev A^T + Q (symmetrized)."""
    for i in range(n):
        s = b[i]
        for j in range(n):
            s += A[i, j] * m_prev[j]
        m[i] = s
    for i in range(n):  # tmp = A P_prev
        for j in range(n):
            s = 0.0
            for k in range(n):
                s += A[i, k] * P_prev[k, j]
            tmp[i, j] = s
    for i in range(n):  # P = tmp A^T + Q
        for j in range(i + 1):
            s = Q[i, j]
            for k in range(n):
                s += tmp[i, k] * A[j, k]
            P[i, j] = s
            P[j, i] = s


@njit(cache=True, nogil=True)
def _workspace(n, p):
    """Scratch arrays of one filter step: idx, Co, CP, S, L, e, K, IKC, tmp, KR."""
    return (np.empty(p, np.int64), np.empty((p, n)), np.empty((p, n)), np.empty((p, p)),
            np.empty((p, p)), np.empty((p, 1)), np.empty((n, p)), np.empty((n, n)),
            np.empty((n, n)), np.empty((n, p)))


@njit(cache=True, nogil=True, inline="always")
def _correct(X, bb, t, C, d, R, m, P, mf, Pf, idx, Co, CP, S, L, e, K, IKC, tmp, KR):
    """`filter_batch`'s update of the prediction (m, P) by x = X[bb, t], into mf[bb, t],
    Pf[bb, t]: returns log p(x_o | x_{<t}), or NaN when C_o P C_o^T + R_oo is not positive
    definite even after jitter. Whole arrays and indices are passed: a per-step view costs
    reference counting."""
    n, p = m.shape[0], X.shape[2]
    k = 0
    for j in range(p):
        if not math.isnan(X[bb, t, j]):
            idx[k] = j
            k += 1
    if k == 0:
        for i in range(n):
            mf[bb, t, i] = m[i]
            for j in range(n):
                Pf[bb, t, i, j] = P[i, j]
        return 0.0
    for r in range(k):  # observed rows: C_o, e = x_o - C_o m - d_o
        jr = idx[r]
        s = X[bb, t, jr] - d[jr]
        for c in range(n):
            Co[r, c] = C[jr, c]
            s -= C[jr, c] * m[c]
        e[r, 0] = s
    for r in range(k):  # CP = C_o P
        for c in range(n):
            s = 0.0
            for q in range(n):
                s += Co[r, q] * P[q, c]
            CP[r, c] = s
    for r in range(k):  # S = C_o P C_o^T + R_oo
        for c in range(r + 1):
            s = R[idx[r], idx[c]]
            for q in range(n):
                s += CP[r, q] * Co[c, q]
            S[r, c] = s
            S[c, r] = s
    if not _cholesky_jitter(S, L, k):
        return math.nan
    _solve_lower(L, e, k, 1)  # v = L^{-1} e
    quad = 0.0
    logdet = 0.0
    for r in range(k):
        quad += e[r, 0] * e[r, 0]
        logdet += math.log(L[r, r])
    _solve_lower(L, CP, k, n)  # U = L^{-1} C_o P
    for c in range(n):  # m_f = m + U^T v
        s = m[c]
        for r in range(k):
            s += CP[r, c] * e[r, 0]
        mf[bb, t, c] = s
    _solve_upper_t(L, CP, k, n)  # K^T = L^{-T} U = S^{-1} C_o P
    for i in range(n):
        for r in range(k):
            K[i, r] = CP[r, i]
    _joseph(K, Co, R, idx, P, Pf, bb, t, IKC, tmp, KR, n, k)
    return -0.5 * (k * LOG_2PI + quad) - logdet


@njit(cache=True, nogil=True, inline="always")
def _joseph(K, Co, R, idx, P, Pf, bb, t, IKC, tmp, KR, n, k):
    """Pf[bb, t] = (I - K C_o) P (I - K C_o)^T + K R_oo K^T (symmetric by construction)."""
    for i in range(n):
        for j in range(n):
            s = 1.0 if i == j else 0.0
            for r in range(k):
                s -= K[i, r] * Co[r, j]
            IKC[i, j] = s
    for i in range(n):
        for j in range(n):
            s = 0.0
            for q in range(n):
                s += IKC[i, q] * P[q, j]
            tmp[i, j] = s
    for i in range(n):
        for r in range(k):
            s = 0.0
            for q in range(k):
                s += K[i, q] * R[idx[q], idx[r]]
            KR[i, r] = s
    for i in range(n):
        for j in range(i + 1):
            s = 0.0
            for q in range(n):
                s += tmp[i, q] * IKC[j, q]
            for r in range(k):
                s += KR[i, r] * K[j, r]
            Pf[bb, t, i, j] = s
            Pf[bb, t, j, i] = s


@njit(cache=True, nogil=True)
def filter_batch(X, A, b, C, d, Q, R, mu0, V0, mp, Pp, mf, Pf, ll):
    """Kalman filter over a batch of sequences (time-invariant θ), Joseph-form updates.

    Writes predicted (mp, Pp = moments of z_t | x_{<t}), filtered (mf, Pf = z_t | x_{<=t})
    and ll[b, t] = log p(x_t | x_{<t}) (prediction-error decomposition; 0 for an all-missing
    step). A NaN coordinate of x_t is left out of the update (only the observed rows of C, d,
    R enter); an all-NaN row is a pure prediction. The update is `_correct` written out in
    place: this loop is the speed path, and the call costs twice the time for small n.
    """
    B, T, p = X.shape
    n = A.shape[0]
    idx = np.empty(p, np.int64)
    Co = np.empty((p, n))
    CP = np.empty((p, n))
    S = np.empty((p, p))
    L = np.empty((p, p))
    e = np.empty((p, 1))
    K = np.empty((n, p))
    IKC = np.empty((n, n))
    tmp = np.empty((n, n))
    KR = np.empty((n, p))
    for bb in range(B):
        for t in range(T):
            m = mp[bb, t]
            P = Pp[bb, t]
            if t == 0:
                m[:] = mu0
                P[:, :] = V0
            else:
                _predict(A, b, Q, mf[bb, t - 1], Pf[bb, t - 1], m, P, tmp, n)
            k = 0
            for j in range(p):
                if not math.isnan(X[bb, t, j]):
                    idx[k] = j
                    k += 1
            if k == 0:
                mf[bb, t] = m
                Pf[bb, t] = P
                ll[bb, t] = 0.0
                continue
            for r in range(k):  # observed rows: C_o, e = x_o - C_o m - d_o
                jr = idx[r]
                s = X[bb, t, jr] - d[jr]
                for c in range(n):
                    Co[r, c] = C[jr, c]
                    s -= C[jr, c] * m[c]
                e[r, 0] = s
            for r in range(k):
                for c in range(n):
                    s = 0.0
                    for q in range(n):
                        s += Co[r, q] * P[q, c]
                    CP[r, c] = s
            for r in range(k):
                for c in range(r + 1):
                    s = R[idx[r], idx[c]]
                    for q in range(n):
                        s += CP[r, q] * Co[c, q]
                    S[r, c] = s
                    S[c, r] = s
            if not _cholesky_jitter(S, L, k):
                return 1 + bb * T + t
            _solve_lower(L, e, k, 1)  # v = L^{-1} e
            quad = 0.0
            logdet = 0.0
            for r in range(k):
                quad += e[r, 0] * e[r, 0]
                logdet += math.log(L[r, r])
            ll[bb, t] = -0.5 * (k * LOG_2PI + quad) - logdet
            _solve_lower(L, CP, k, n)  # U = L^{-1} C_o P
            mo = mf[bb, t]
            for c in range(n):
                s = m[c]
                for r in range(k):
                    s += CP[r, c] * e[r, 0]
                mo[c] = s
            _solve_upper_t(L, CP, k, n)  # K^T = L^{-T} U = S^{-1} C_o P
            for i in range(n):
                for r in range(k):
                    K[i, r] = CP[r, i]
            # Joseph form: P_f = (I - K C_o) P (I - K C_o)^T + K R_oo K^T
            for i in range(n):
                for j in range(n):
                    s = 1.0 if i == j else 0.0
                    for r in range(k):
                        s -= K[i, r] * Co[r, j]
                    IKC[i, j] = s
            for i in range(n):
                for j in range(n):
                    s = 0.0
                    for q in range(n):
                        s += IKC[i, q] * P[q, j]
                    tmp[i, j] = s
            for i in range(n):
                for r in range(k):
                    s = 0.0
                    for q in range(k):
                        s += K[i, q] * R[idx[q], idx[r]]
                    KR[i, r] = s
            Po = Pf[bb, t]
            for i in range(n):
                for j in range(i + 1):
                    s = 0.0
                    for q in range(n):
                        s += tmp[i, q] * IKC[j, q]
                    for r in range(k):
                        s += KR[i, r] * K[j, r]
                    Po[i, j] = s
                    Po[j, i] = s
    return 0


@njit(cache=True, nogil=True)
def filter_batch_tv(X, A, b, C, d, Q, R, mu0, V0, mp, Pp, mf, Pf, ll):
    """`filter_batch` for a time-varying θ: A (T_A, n, n), b (T_b, n), C (T_C, p, n),
    d (T_d, p), each either one per step (A[t], b[t]: transition t -> t+1; C[t], d[t]:
    observation at t) or a single step (leading axis 1) used at every step."""
    B, T, p = X.shape
    n = A.shape[-1]
    idx, Co, CP, S, L, e, K, IKC, tmp, KR = _workspace(n, p)
    for bb in range(B):
        for t in range(T):
            m = mp[bb, t]
            P = Pp[bb, t]
            if t == 0:
                m[:] = mu0
                P[:, :] = V0
            else:
                At = A[t - 1] if A.shape[0] > 1 else A[0]
                bt = b[t - 1] if b.shape[0] > 1 else b[0]
                _predict(At, bt, Q, mf[bb, t - 1], Pf[bb, t - 1], m, P, tmp, n)
            Ct = C[t] if C.shape[0] > 1 else C[0]
            dt = d[t] if d.shape[0] > 1 else d[0]
            ll[bb, t] = _correct(X, bb, t, Ct, dt, R, m, P, mf, Pf, idx, Co, CP, S, L, e, K, IKC,
                                 tmp, KR)
            if math.isnan(ll[bb, t]):
                return 1 + bb * T + t
    return 0


@njit(cache=True, nogil=True)
def _smoother_gain(A, ia, Pf_t, Pp_next, Jt, G, S, L, n):
    """Jt = J^T = Pp_{t+1}^{-1} A Pf_t (by Cholesky solves; J = Pf_t A^T Pp_{t+1}^{-1});
    G = A Pf_t on return, with A = A[ia] of A : (T_A, n, n) (indexed in place: a per-step
    view would cost reference counting). False when Pp_{t+1} is not positive definite."""
    for i in range(n):
        for j in range(n):
            s = 0.0
            for q in range(n):
                s += A[ia, i, q] * Pf_t[q, j]
            G[i, j] = s
            Jt[i, j] = s
            S[i, j] = Pp_next[i, j]
    if not _cholesky_jitter(S, L, n):
        return False
    _solve_lower(L, Jt, n, n)
    _solve_upper_t(L, Jt, n, n)
    return True


@njit(cache=True, nogil=True)
def smooth_batch(A, mp, Pp, mf, Pf, ms, Ps, Pc):
    """Rauch-Tung-Striebel smoother from the filter's moments. A : (T_A, n, n), one
    transition matrix per step (A[t]: t -> t+1) or a single one (T_A = 1).

    ms, Ps : moments of z_t | x_{1:T}; Pc[b, t] = Cov(z_t, z_{t-1} | x_{1:T}) for t >= 1
    (Pc[b, 0] = 0), the lag-one cross-covariance EM needs. With J_t = Pf_t A^T Pp_{t+1}^{-1}:
        ms_t = mf_t + J_t (ms_{t+1} - mp_{t+1})
        Ps_t = Pf_t + J_t (Ps_{t+1} - Pp_{t+1}) J_t^T
        Cov(z_{t+1}, z_t) = Ps_{t+1} J_t^T
    """
    B, T, n = mf.shape
    Jt = np.empty((n, n))
    G = np.empty((n, n))
    S = np.empty((n, n))
    L = np.empty((n, n))
    D = np.empty((n, n))
    tmp = np.empty((n, n))
    diff = np.empty(n)
    for bb in range(B):
        ms[bb, T - 1] = mf[bb, T - 1]
        Ps[bb, T - 1] = Pf[bb, T - 1]
        Pc[bb, 0] = 0.0
        for t in range(T - 2, -1, -1):
            ia = t if A.shape[0] > 1 else 0
            if not _smoother_gain(A, ia, Pf[bb, t], Pp[bb, t + 1], Jt, G, S, L, n):
                return 1 + bb * T + t + 1
            for i in range(n):
                diff[i] = ms[bb, t + 1, i] - mp[bb, t + 1, i]
                for j in range(n):
                    D[i, j] = Ps[bb, t + 1, i, j] - Pp[bb, t + 1, i, j]
            for i in range(n):  # ms_t = mf_t + Jt^T diff
                s = mf[bb, t, i]
                for q in range(n):
                    s += Jt[q, i] * diff[q]
                ms[bb, t, i] = s
            for i in range(n):  # tmp = D Jt
                for j in range(n):
                    s = 0.0
                    for q in range(n):
                        s += D[i, q] * Jt[q, j]
                    tmp[i, j] = s
            for i in range(n):  # Ps_t = Pf_t + Jt^T tmp
                for j in range(i + 1):
                    s = Pf[bb, t, i, j]
                    for q in range(n):
                        s += Jt[q, i] * tmp[q, j]
                    Ps[bb, t, i, j] = s
                    Ps[bb, t, j, i] = s
            for i in range(n):  # Pc_{t+1} = Ps_{t+1} Jt
                for j in range(n):
                    s = 0.0
                    for q in range(n):
                        s += Ps[bb, t + 1, i, q] * Jt[q, j]
                    Pc[bb, t + 1, i, j] = s
    return 0


@njit(cache=True, nogil=True)
def sample_batch(A, mp, Pp, mf, Pf, eps, out):
    """Forward-filter backward-sample: draws from p(z_{1:T} | x_{1:T}).

    A : (T_A, n, n) as in `smooth_batch`; eps : (B, S, T, n) standard normal draws;
    out : (B, S, T, n). With J_t as in the
    smoother: z_{T-1} ~ N(mf, Pf); z_t | z_{t+1} ~ N(mf_t + J_t (z_{t+1} - mp_{t+1}),
    Pf_t - J_t A Pf_t). A semi-definite conditional covariance gets the relative jitter.
    """
    B, n_draws, T, n = eps.shape
    Jt = np.empty((n, n))
    G = np.empty((n, n))
    S = np.empty((n, n))
    L = np.empty((n, n))
    M = np.empty((n, n))
    for bb in range(B):
        for t in range(T - 1, -1, -1):
            if t == T - 1:
                for i in range(n):
                    for j in range(n):
                        M[i, j] = Pf[bb, t, i, j]
            else:
                ia = t if A.shape[0] > 1 else 0
                if not _smoother_gain(A, ia, Pf[bb, t], Pp[bb, t + 1], Jt, G, S, L, n):
                    return 1 + bb * T + t + 1
                for i in range(n):  # M = Pf_t - Jt^T G  (= Pf_t - J_t A Pf_t)
                    for j in range(i + 1):
                        s = Pf[bb, t, i, j]
                        for q in range(n):
                            s -= Jt[q, i] * G[q, j]
                        M[i, j] = s
                        M[j, i] = s
            if not _cholesky_jitter(M, L, n):
                return 1 + bb * T + t
            for s_ in range(n_draws):
                z = out[bb, s_, t]
                for i in range(n):
                    mean = mf[bb, t, i]
                    if t < T - 1:
                        for q in range(n):
                            mean += Jt[q, i] * (out[bb, s_, t + 1, q] - mp[bb, t + 1, q])
                    noise = 0.0
                    for q in range(i + 1):
                        noise += L[i, q] * eps[bb, s_, t, q]
                    z[i] = mean + noise
    return 0
