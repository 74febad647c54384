"""The complete-data fast path: each Gaussian component as an exponential family.

    log N(x; μ_k, Σ_k) = -½ (D log 2π + w_k · T(x) + c_k) + log det P_k

with sufficient statistics T(x) = [s(x); x], natural weights w_k = [ς_k; -2 Λ_k μ_k] and
c_k = μ_k^T Λ_k μ_k (Λ_k = Σ_k^{-1} = P_k P_k^T):

    covariance   s(x)                           ς_k
    full, tied   [x_i x_j]_{i<=j}, D(D+1)/2     Λ_k packed the same way, off-diagonal doubled
    diag         x ⊙ x, D                       diag Λ_k
    spherical    ||x||², 1                      Λ_k (a scalar)

So for a chunk of n rows, the E-step's K Mahalanobis terms are one GEMM, (W T)^T + c, and the
M-step's statistics Σ_n r_nk T(x_n) — which hold Σ r x x^T (as s) and Σ r x — are another,
T R, both over the same T. T is stored transposed, (F, n): each of its blocks is then a
contiguous write and both products are wide.

The expansion cancels about c_k against the other terms, so it is used while
max_k c_k <= EXPANSION_LIMIT (coordinates are shifted to the data's centre, which keeps c_k
small for ordinary data); beyond it the direct product ||(x - μ_k)^T P_k||² is used.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._linalg import LOG_2PI

#: the largest μ_k^T Λ_k μ_k for which the expansion is used: its round-off in a
#: Mahalanobis term is about 8·eps·c, so the limits keep it under ~1e-8 (float64) and
#: ~1e-3 (float32).
EXPANSION_LIMIT = {np.dtype(np.float64): 1e7, np.dtype(np.float32): 2e3}


class NaturalForm(NamedTuple):
    """Natural weights of the K components for shifted data (computed once per M-step)."""

    weights: np.ndarray  # (K, F) rows w_k = [ς_k; -2 Λ_k μ_k]
    const: np.ndarray  # (K,) μ_k^T Λ_k μ_k
    log_det: np.ndarray  # (K,) log det P_k = ½ log det Λ_k
    max_const: float


def second_moment_size(n_features: int, covariance_type: str) -> int:
    """Rows of s(x) in T(x)."""
    D = n_features
    return {"full": D * (D + 1) // 2, "tied": D * (D + 1) // 2, "diag": D,
            "spherical": 1}[covariance_type]


def triu_pairs(D: int):
    """(i, j) index arrays of the packed upper triangle, i <= j, row by row."""
    return np.triu_indices(D)


def unpack_symmetric(packed: np.ndarray, D: int) -> np.ndarray:
    """(..., D(D+1)/2) packed upper triangles -> (..., D, D) symmetric matrices."""
    i, j = triu_pairs(D)
    out = np.empty(packed.shape[:-1] + (D, D), dtype=packed.dtype)
    out[..., i, j] = packed
    out[..., j, i] = packed
    return out


def pack_symmetric(S: np.ndarray) -> np.ndarray:
    """(..., D, D) symmetric matrices -> (..., D(D+1)/2) packed upper triangles."""
    i, j = triu_pairs(S.shape[-1])
    return S[..., i, j]


def sufficient_statistics_t(Xt: np.ndarray, covariance_type: str) -> np.ndarray:
    """T(x) = [s(x); x] for each row, transposed : (F, n). Xt : (D, n), shifted data."""
    D, n = Xt.shape
    F2 = second_moment_size(D, covariance_type)
    T = np.empty((F2 + D, n), dtype=Xt.dtype)
    T[F2:] = Xt
    if covariance_type in ("full", "tied"):
        offset = 0
        for i in range(D):  # block i: x_i x_j for j >= i
            np.multiply(Xt[i], Xt[i:], out=T[offset:offset + D - i])
            offset += D - i
    elif covariance_type == "diag":
        np.multiply(Xt, Xt, out=T[:D])
    else:
        np.einsum("dn,dn->n", Xt, Xt, out=T[0])
    return T


def natural_form(means, precisions_cholesky, covariance_type, shift) -> NaturalForm:
    """The natural weights of each component for data shifted by `shift`."""
    mu = means - shift
    K, D = mu.shape
    P = precisions_cholesky
    if covariance_type in ("full", "tied"):
        precisions = np.broadcast_to(P @ np.swapaxes(P, -1, -2), (K, D, D))
        i, j = triu_pairs(D)
        second = precisions[:, i, j] * np.where(i == j, 1.0, 2.0)
        linear = np.einsum("kde,ke->kd", precisions, mu)
        log_det = np.broadcast_to(np.log(np.diagonal(P, axis1=-2, axis2=-1)).sum(-1), (K,))
    elif covariance_type == "diag":
        second = P**2
        linear = second * mu
        log_det = np.log(P).sum(axis=1)
    else:
        second = (P**2)[:, None]
        linear = second * mu
        log_det = D * np.log(P)
    const = np.einsum("kd,kd->k", linear, mu)
    weights = np.ascontiguousarray(np.concatenate([second, -2 * linear], axis=1))
    return NaturalForm(weights, const, np.array(log_det, dtype=np.float64),
                       float(const.max()))


def expansion_is_accurate(form: NaturalForm, dtype) -> bool:
    """Whether the expansion's cancellation stays within EXPANSION_LIMIT for `dtype`."""
    return form.max_const <= EXPANSION_LIMIT[np.dtype(dtype)]


def log_prob_expanded(T: np.ndarray, form: NaturalForm, n_features: int) -> np.ndarray:
    """log N(x_n; μ_k, Σ_k), component-major : (K, n),
    = -½ (D log 2π + w_k·T(x_n) + c_k) + log det P_k.

    T : (F, n); computed in T's dtype.
    """
    dt = T.dtype
    maha = form.weights.astype(dt) @ T  # one GEMM: (K, n)
    maha += form.const.astype(dt)[:, None]
    np.maximum(maha, 0, out=maha)  # a quadratic form is >= 0; round-off can dip below
    maha *= -0.5
    maha += (form.log_det - 0.5 * n_features * LOG_2PI).astype(dt)[:, None]
    return maha


def statistics(T: np.ndarray, resp: np.ndarray, covariance_type: str, n_features: int):
    """(nk, sx, sxx) = Σ_n r_nk [1, x_n, s(x_n)] from T : (F, n) and component-major
    responsibilities resp : (K, n).

    sxx : full (K, D(D+1)/2) packed; tied (D, D); diag (K, D); spherical (K,) (Σ_d).
    """
    resp = resp.astype(T.dtype, copy=False)
    S = (T @ resp.T).T.astype(np.float64)  # (K, F): one GEMM
    nk = resp.sum(axis=1, dtype=np.float64)
    D = n_features
    second, sx = S[:, :-D], S[:, -D:]
    if covariance_type == "tied":
        sxx = unpack_symmetric(second.sum(axis=0), D)
    elif covariance_type == "spherical":
        sxx = second[:, 0]
    else:
        sxx = second
    return nk, np.ascontiguousarray(sx), np.ascontiguousarray(sxx)
