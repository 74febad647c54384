"""Batched small symmetric positive-definite algebra for the missing-value kernels, compiled
with numba.

With missing values every missingness pattern u has its own posterior precision

    P_u = I + Σ_{d observed in u} w̃_d w̃_d^T        (M x M, M small; U patterns, U ≈ n rows
                                                     for values missing at random)

and the E-step needs, per pattern, log det P_u and P_u^{-1}, then per row P_u^{-1} b_n, and
per feature G_d = Σ_{patterns missing d} c_u P_u^{-1}. As numpy calls these are a handful
of batched LAPACK calls on (U, M, M) stacks, each paying per-matrix overhead larger than its
arithmetic, plus (U, M, M) temporaries; here each is one compiled loop with the M x M work
written out (Cholesky, triangular inverse) in a buffer that stays in cache.

A sum over a pattern's coordinates runs over whichever set is smaller: with more than half
observed, Σ_{d observed} = Σ_d - Σ_{d missing}, so the cost is O(min(observed, missing) M²)
per pattern rather than the O(D M²) of a dense masked product.

Kernels are `nogil` (the EM engine runs chunks on threads), write into preallocated float64
outputs and return a status: -1 on success, else the index of the first matrix that is not
positive definite (the Python wrappers raise a clear error).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .._linalg import SingularCovarianceError

__all__ = ["spd_inverse", "pattern_precision_inverse", "masked_sum", "pattern_matvec",
           "whiten_observed", "impute_shifted"]


@njit(cache=True, nogil=True)
def _spd_inverse(A, L, out):
    """out = A^{-1} : (M, M) for SPD A : (M, M) via A = L L^T (L : (M, M) scratch);
    returns log det A = 2 Σ log L_ii, or NaN when A is not positive definite.

    A^{-1} = L^{-T} L^{-1}: L is overwritten by L^{-1} (lower, forward substitution
    column by column), then out_ij = Σ_{p >= max(i, j)} (L^{-1})_pi (L^{-1})_pj.
    """
    M = A.shape[0]
    log_det = 0.0
    for j in range(M):  # Cholesky (Cholesky–Banachiewicz, row j of L)
        s = A[j, j]
        for p in range(j):
            s -= L[j, p] * L[j, p]
        if not s > 0.0:  # also catches NaN
            return np.nan
        d = math.sqrt(s)
        L[j, j] = d
        log_det += 2.0 * math.log(d)
        for i in range(j + 1, M):
            t = A[i, j]
            for p in range(j):
                t -= L[i, p] * L[j, p]
            L[i, j] = t / d
    for i in range(M):  # L <- L^{-1}: row i from rows < i of the inverse, in place
        L[i, i] = 1.0 / L[i, i]
        for j in range(i):
            t = 0.0
            for p in range(j, i):
                t -= L[i, p] * L[p, j]
            L[i, j] = t * L[i, i]
    for i in range(M):  # out = L^{-T} L^{-1}
        for j in range(i, M):
            t = 0.0
            for p in range(j, M):
                t += L[p, i] * L[p, j]
            out[i, j] = t
            out[j, i] = t
    return log_det


@njit(cache=True, nogil=True)
def _select(mask_row, value, idx):
    """Writes into idx the d with mask_row[d] == value, returns their count. Branch-free:
    a branch on a random mask mispredicts and costs more than the arithmetic."""
    c = 0
    for d in range(mask_row.shape[0]):
        idx[c] = d
        c += mask_row[d] == value
    return c


@njit(cache=True, nogil=True)
def _spd_inverse_batch(P, inv, log_det):
    """inv[k] = P[k]^{-1}, log_det[k] = log det P[k] for P : (K, M, M); status."""
    L = np.empty(P.shape[1:])
    for k in range(P.shape[0]):
        log_det[k] = _spd_inverse(P[k], L, inv[k])
        if np.isnan(log_det[k]):
            return k
    return -1


@njit(cache=True, nogil=True)
def _pattern_precision_inverse(observed, Wt, inv, log_det):
    """inv[u] = P_u^{-1}, log_det[u] = log det P_u, P_u = I + Σ_{d: observed[u, d]} w̃_d w̃_d^T,
    for observed : (U, D) bool, Wt : (D, M); status.

    The outer products w̃_d w̃_d^T are formed once (upper triangles packed row by row,
    (D, M(M+1)/2)), with their total Σ_d w̃_d w̃_d^T; each P_u is then the sum over its
    observed rows, or the total minus the sum over its missing ones, whichever is shorter.
    """
    D, M = Wt.shape
    T = M * (M + 1) // 2
    outer = np.empty((D, T))
    total = np.zeros(T)
    for d in range(D):
        k = 0
        for i in range(M):
            for j in range(i, M):
                outer[d, k] = Wt[d, i] * Wt[d, j]
                total[k] += outer[d, k]
                k += 1
    packed = np.empty(T)
    A = np.empty((M, M))
    L = np.empty((M, M))
    idx = np.empty(D, np.int64)
    for u in range(observed.shape[0]):
        n_obs = _select(observed[u], True, idx)
        add = 2 * n_obs <= D  # sum the observed rows (True) or subtract the missing ones
        if not add:
            _select(observed[u], False, idx)
        sign = 1.0 if add else -1.0
        for k in range(T):
            packed[k] = 0.0 if add else total[k]
        for c in range(n_obs if add else D - n_obs):
            d = idx[c]
            for k in range(T):
                packed[k] += sign * outer[d, k]
        k = 0
        for i in range(M):
            for j in range(i, M):
                A[i, j] = A[j, i] = packed[k]
                k += 1
            A[i, i] += 1.0
        log_det[u] = _spd_inverse(A, L, inv[u])
        if np.isnan(log_det[u]):
            return u
    return -1


@njit(cache=True, nogil=True)
def masked_sum(mask, weights, A):
    """G : (D, M, M), G_d = Σ_{u: mask[u, d]} weights_u A_u, for mask : (U, D) bool,
    weights : (U,), symmetric A : (U, M, M) (only upper triangles are read; G is symmetric).

    For a pattern with more than half its mask set, Σ_{d set} = Σ_d - Σ_{d unset}: its
    term goes into a common total added to every G_d and is subtracted where unset. The
    sums run over packed upper triangles (contiguous rows of M(M+1)/2).
    """
    U, D = mask.shape
    M = A.shape[1]
    T = M * (M + 1) // 2
    packed = np.zeros((D, T))
    total = np.zeros(T)
    term = np.empty(T)
    idx = np.empty(D, np.int64)
    for u in range(U):
        n_set = _select(mask[u], True, idx)
        add = 2 * n_set <= D
        if not add:
            _select(mask[u], False, idx)
        w = weights[u] if add else -weights[u]
        k = 0
        for i in range(M):
            for j in range(i, M):
                term[k] = w * A[u, i, j]
                k += 1
        if not add:
            for k in range(T):
                total[k] -= term[k]
        for c in range(n_set if add else D - n_set):
            d = idx[c]
            for k in range(T):
                packed[d, k] += term[k]
    G = np.empty((D, M, M))
    for d in range(D):
        k = 0
        for i in range(M):
            for j in range(i, M):
                G[d, i, j] = G[d, j, i] = packed[d, k] + total[k]
                k += 1
    return G


@njit(cache=True, nogil=True)
def pattern_matvec(A, pattern, b):
    """(y : (n, M), quad : (n,)) with y_n = A_{pattern[n]} b_n and quad_n = b_n^T y_n, for
    A : (U, M, M), pattern : (n,) int, b : (n, M). (No (n, M, M) gather of A.)"""
    n, M = b.shape
    y = np.empty((n, M))
    quad = np.empty(n)
    for r in range(n):
        Au = A[pattern[r]]
        q = 0.0
        for i in range(M):
            t = 0.0
            for j in range(M):
                t += Au[i, j] * b[r, j]
            y[r, i] = t
            q += t * b[r, i]
        quad[r] = q
    return y, quad


def _raise_for(status: int, what: str):
    if status >= 0:
        raise SingularCovarianceError(
            f"a {what} matrix (number {status} of the batch) is singular or not positive "
            "definite. Check the input for inf or NaN, remove constant or duplicated "
            "columns, or use fewer components.")


def spd_inverse(P: np.ndarray, *, what: str = "covariance"):
    """(P^{-1} : (K, M, M), log det P : (K,)) for symmetric positive-definite P : (K, M, M),
    by Cholesky P = L L^T (only the lower triangle of P is read). Raises
    SingularCovarianceError naming the first matrix that is not positive definite."""
    P = np.ascontiguousarray(P, dtype=np.float64)
    inv = np.empty_like(P)
    log_det = np.empty(P.shape[0])
    _raise_for(_spd_inverse_batch(P, inv, log_det), what)
    return inv, log_det


def pattern_precision_inverse(observed: np.ndarray, Wt: np.ndarray):
    """(P_u^{-1} : (U, M, M), log det P_u : (U,)) for P_u = I + Σ_{d observed in u}
    w̃_d w̃_d^T, observed : (U, D) bool, Wt : (D, M) float64 (module docstring)."""
    U, M = observed.shape[0], Wt.shape[1]
    inv = np.empty((U, M, M))
    log_det = np.empty(U)
    status = _pattern_precision_inverse(np.ascontiguousarray(observed, dtype=np.bool_),
                                        np.ascontiguousarray(Wt, dtype=np.float64), inv,
                                        log_det)
    _raise_for(status, "posterior precision I + W_o^T Ψ_o^{-1} W_o")
    return inv, log_det


# -- row passes ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def whiten_observed(X, observed, mean, scale):
    """(R : (n, D), sq : (n,)): R = (x - μ) ⊙ s on observed entries and 0 on missing ones,
    sq_n = ||R_n||², for X : (n, D), observed : (n, D) bool, mean, scale : (D,). One
    branch-free pass (numpy: four passes over n x D arrays)."""
    n, D = X.shape
    R = np.empty((n, D))
    sq = np.empty(n)
    for r in range(n):
        t = 0.0
        for d in range(D):
            v = (X[r, d] - mean[d]) * scale[d]
            v = v if observed[r, d] else 0.0
            R[r, d] = v
            t += v * v
        sq[r] = t
    return R, sq


@njit(cache=True, nogil=True)
def impute_shifted(X, observed, mean, W, z_mean, shift):
    """(Xs : (n, D), col_sum : (D,), col_sq : (D,)): Xs = x̂ - shift, where x̂ = x on
    observed entries and E[x_d | x_o] = μ_d + w_d^T m_n on missing ones, col_sum = Σ_n Xs,
    col_sq = Σ_n Xs², for X : (n, D), observed : (n, D) bool, mean, shift : (D,),
    W : (D, M), z_mean : (n, M) the m_n. One pass; w_d^T m_n only for missing entries."""
    n, D = X.shape
    M = W.shape[1]
    Xs = np.empty((n, D))
    col_sum = np.zeros(D)
    col_sq = np.zeros(D)
    idx = np.empty(D, np.int64)
    for r in range(n):
        for d in range(D):
            Xs[r, d] = X[r, d] - shift[d]
        for c in range(_select(observed[r], False, idx)):
            d = idx[c]
            v = mean[d] - shift[d]
            for j in range(M):
                v += W[d, j] * z_mean[r, j]
            Xs[r, d] = v
        for d in range(D):
            col_sum[d] += Xs[r, d]
            col_sq[d] += Xs[r, d] * Xs[r, d]
    return Xs, col_sum, col_sq
