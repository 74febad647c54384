"""The complete-data fast path: each Gaussian component as an exponential family.

    log π_k + log N(x; μ_k, Σ_k) = a_k · T(x)

with sufficient statistics T(x) = [s(x); x; 1] and natural weights
a_k = [-½ ς_k; Λ_k μ_k; log π_k - ½ (D log 2π + c_k) + log det P_k], where Λ_k = Σ_k^{-1}
= P_k P_k^T and c_k = μ_k^T Λ_k μ_k. The covariance type's record (`_covariance`) supplies
s(x) and ς_k:

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
from ._covariance import CovarianceType

#: the largest μ_k^T Λ_k μ_k for which the expansion is used: its round-off in a
#: Mahalanobis term is about 8·eps·c, so the limits keep it under ~1e-8 (float64) and
#: ~1e-3 (float32).
EXPANSION_LIMIT = {np.dtype(np.float64): 1e7, np.dtype(np.float32): 2e3}


class NaturalForm(NamedTuple):
    """Natural weights of the K components for shifted data (computed once per M-step)."""

    weights: np.ndarray  # (K, F) rows a_k, with log π_k left out of the last column


def sufficient_statistics_t(X: np.ndarray, shift: np.ndarray,
                            covariance: CovarianceType) -> np.ndarray:
    """T(x - shift) = [s; x - shift; 1] for each row, component-major : (F, n).

    X : (n, D), in its dtype; shift : (D,). The shifted transpose is written straight into
    T's x-block (`data_block(T, D)` views it); each of the products that form s is then a
    contiguous block write. (A row-major (n, F) T, read by BLAS through a transpose flag,
    was measured ~10% slower even for diag.)
    """
    n, D = X.shape
    F2 = covariance.second_moment_size(D)
    T = np.empty((F2 + D + 1, n), dtype=X.dtype)
    Xt = np.subtract(X.T, shift.astype(X.dtype)[:, None], out=T[F2:F2 + D])
    T[-1] = 1.0
    covariance.write_second_moments(Xt, T[:F2])
    return T


def data_block(T: np.ndarray, n_features: int) -> np.ndarray:
    """The rows of T : (F, n) holding the shifted data, (x - shift)^T : (D, n) (a view)."""
    return T[-n_features - 1:-1]


def natural_form(means, precisions_cholesky, covariance: CovarianceType,
                 shift) -> NaturalForm:
    """The natural weights (K, F) of each component for data shifted by `shift` : (D,).

    means : (K, D); precisions_cholesky : P per covariance type.
    """
    mu = means - shift
    D = mu.shape[1]
    second, linear, log_det = covariance.natural_parts(mu, precisions_cholesky)
    const = np.einsum("kd,kd->k", linear, mu)
    offset = log_det - 0.5 * (D * LOG_2PI + const)
    weights = np.concatenate([-0.5 * second, linear, offset[:, None]], axis=1)
    return NaturalForm(np.ascontiguousarray(weights))


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


def statistics(T: np.ndarray, resp: np.ndarray, covariance: CovarianceType,
               n_features: int):
    """(nk : (K,), sx : (K, D), sxx) = Σ_n r_nk [1, x_n, s(x_n)] from T : (F, n) and
    component-major responsibilities resp : (K, n), by one GEMM, T R^T. sxx is shaped as
    the covariance type's statistic (see `_covariance`)."""
    S = (T @ resp.astype(T.dtype, copy=False).T).T.astype(np.float64, copy=False)  # (K, F)
    D = n_features
    second, sx, nk = S[:, :-D - 1], S[:, -D - 1:-1], S[:, -1]
    sxx = covariance.sxx_from_packed(second, D)
    return (np.ascontiguousarray(nk), np.ascontiguousarray(sx), np.ascontiguousarray(sxx))
