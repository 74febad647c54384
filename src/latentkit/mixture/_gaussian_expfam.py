"""The complete-data fast path: each Gaussian component as an exponential family.

    log π_k + log N(x; μ_k, Σ_k) = a_k · T(x)

with sufficient statistics T(x) = [s(x); x; 1] and natural weights
a_k = [-½ ς_k; Λ_k μ_k; log π_k - ½ (D log 2π + c_k) + log det P_k], where Λ_k = Σ_k^{-1}
= P_k P_k^T and c_k = μ_k^T Λ_k μ_k:

    covariance   s(x)                           ς_k
    full, tied   [x_i x_j]_{i<=j}, D(D+1)/2     Λ_k packed the same way, off-diagonal doubled
    diag         x ⊙ x, D                       diag Λ_k
    spherical    ||x||², 1                      Λ_k (a scalar)

So for a chunk of n rows the E-step's log π_k + log p(x_n | k) for all components is one
GEMM, A T, and the M-step's statistics Σ_n r_nk T(x_n) — Σ r x x^T (as s), Σ r x and N_k —
are another, T R^T, both over the same T. Everything is component-major: T is (F, n) and
responsibilities (K, n), so T's blocks are contiguous writes, both products are wide, and
reductions over components run down contiguous rows.

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

    weights: np.ndarray  # (K, F) rows a_k, with log π_k left out of the last column


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


def sufficient_statistics_t(X: np.ndarray, shift: np.ndarray,
                            covariance_type: str) -> np.ndarray:
    """T(x - shift) = [s; x - shift; 1] for each row, component-major : (F, n).

    X : (n, D), in its dtype. The shifted transpose is written straight into T's x-block
    (`data_block(T, D)` views it); each of the products that form s is then a contiguous
    block write. (A row-major (n, F) T, read by BLAS through a transpose flag, was measured
    ~10% slower even for diag.)
    """
    n, D = X.shape
    F2 = second_moment_size(D, covariance_type)
    T = np.empty((F2 + D + 1, n), dtype=X.dtype)
    Xt = np.subtract(X.T, shift.astype(X.dtype)[:, None], out=T[F2:F2 + D])
    T[-1] = 1.0
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


def data_block(T: np.ndarray, n_features: int) -> np.ndarray:
    """The rows of T holding the shifted data, (x - shift)^T : (D, n) (a view)."""
    return T[-n_features - 1:-1]


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
    offset = log_det - 0.5 * (D * LOG_2PI + const)
    weights = np.concatenate([-0.5 * second, linear, offset[:, None]], axis=1)
    return NaturalForm(np.ascontiguousarray(weights))


def uses_expansion(n_features: int, n_components: int, covariance_type: str) -> bool:
    """Whether the complete-data path goes through T at all. Full and tied covariances need
    D(D+1)/2 second moments per row; that pays while it is at most twice the direct
    method's K·D products per row, (D + 1)/4 <= K. With few components in many dimensions
    (e.g. K = 10 on 784 pixels) the direct products are cheaper and T would be hundreds of
    MB per chunk. Diag and spherical T is always small."""
    if covariance_type in ("diag", "spherical"):
        return True
    return (n_features + 1) / 4 <= n_components


def expansion_is_accurate(max_const: float, dtype) -> bool:
    """Whether the expansion's cancellation stays within EXPANSION_LIMIT for `dtype`, given
    max_k μ_k^T Λ_k μ_k in shifted coordinates (GaussianParams.max_const)."""
    return max_const <= EXPANSION_LIMIT[np.dtype(dtype)]


def log_joint_expanded(T: np.ndarray, form: NaturalForm, log_weights) -> np.ndarray:
    """log π_k + log N(x_n; μ_k, Σ_k), component-major : (K, n): one GEMM, A T.

    T : (F, n); log_weights : (K,) log π (zeros for the bare densities). In T's dtype.
    """
    A = form.weights.copy()
    A[:, -1] += log_weights
    return A.astype(T.dtype) @ T


def statistics(T: np.ndarray, resp: np.ndarray, covariance_type: str, n_features: int):
    """(nk, sx, sxx) = Σ_n r_nk [1, x_n, s(x_n)] from T : (F, n) and component-major
    responsibilities resp : (K, n), by one GEMM, T R^T.

    sxx : full (K, D, D); tied (D, D); diag (K, D); spherical (K,) (Σ_d).
    """
    S = (T @ resp.astype(T.dtype, copy=False).T).T.astype(np.float64, copy=False)  # (K, F)
    D = n_features
    second, sx, nk = S[:, :-D - 1], S[:, -D - 1:-1], S[:, -1]
    if covariance_type == "full":
        sxx = unpack_symmetric(second, D)
    elif covariance_type == "tied":
        sxx = unpack_symmetric(second.sum(axis=0), D)
    elif covariance_type == "spherical":
        sxx = second[:, 0]
    else:
        sxx = second
    return (np.ascontiguousarray(nk), np.ascontiguousarray(sx), np.ascontiguousarray(sxx))
