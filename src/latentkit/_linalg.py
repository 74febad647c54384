"""Numerical building blocks: stable Cholesky factors, triangular solves, log-sum-exp.

Covariances are kept as Cholesky factors (STYLE 3): log det Σ = 2 Σ_i log L_ii, and a
Mahalanobis term is a triangular solve or a product with the precision factor. No `inv`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

LOG_2PI = math.log(2 * math.pi)

__all__ = ["LOG_2PI", "cholesky", "precision_cholesky", "solve_lower", "log_normalize",
           "logsumexp", "covariance_from_precision_cholesky"]


class SingularCovarianceError(np.linalg.LinAlgError, ValueError):
    """A covariance matrix is not positive definite even after regularization."""


def cholesky(S: np.ndarray, *, what: str = "covariance") -> np.ndarray:
    """Lower Cholesky factors of symmetric positive-definite matrices.

    S : (..., D, D). Raises SingularCovarianceError that says what to change.
    """
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        raise SingularCovarianceError(
            f"a {what} matrix is singular or not positive definite. Increase reg_covar, use "
            "fewer components, remove constant or duplicated columns, or use float64."
        ) from None


def solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L^{-1} B for lower-triangular L by triangular solves.

    L : (..., D, D); B : (..., D, M) with the same leading (batch) shape.
    """
    if L.ndim == 2:
        return solve_triangular(L, B, lower=True, check_finite=False)
    out = np.empty(np.broadcast_shapes(L.shape[:-2], B.shape[:-2]) + B.shape[-2:],
                   dtype=np.result_type(L, B))
    Lb = np.broadcast_to(L, out.shape[:-2] + L.shape[-2:])
    Bb = np.broadcast_to(B, out.shape)
    for idx in np.ndindex(out.shape[:-2]):
        out[idx] = solve_triangular(Lb[idx], Bb[idx], lower=True, check_finite=False)
    return out


def precision_cholesky(covariances: np.ndarray) -> np.ndarray:
    """Upper factors P with Σ^{-1} = P P^T, from covariances (..., D, D).

    With Σ = L L^T: Σ^{-1} = L^{-T} L^{-1}, so P = L^{-T} (a triangular solve against I).
    Then (x - μ)^T Σ^{-1} (x - μ) = ||(x - μ)^T P||^2 and log det Σ^{-1} = 2 Σ log diag P.
    """
    L = cholesky(covariances)
    eye = np.broadcast_to(np.eye(L.shape[-1]), L.shape)
    return np.swapaxes(solve_lower(L, eye), -1, -2)


def covariance_from_precision_cholesky(P: np.ndarray) -> np.ndarray:
    """Σ = (P P^T)^{-1} = P^{-T} P^{-1} for triangular (upper or lower) P : (..., D, D)."""
    eye = np.broadcast_to(np.eye(P.shape[-1]), P.shape)
    lower = np.allclose(P, np.tril(P))
    if lower:  # P lower: P^{-1} by a lower solve
        Pinv = solve_lower(P, eye)
    else:  # P upper: P^{-1} = (P^T)^{-T}, and P^T is lower
        Pinv = np.swapaxes(solve_lower(np.swapaxes(P, -1, -2), eye), -1, -2)
    return np.swapaxes(Pinv, -1, -2) @ Pinv


def log_normalize(log_weights: np.ndarray):
    """Row-normalize in log space: (log_resp, log_norm) with log_norm = logsumexp per row.

    log_weights : (n, K) -> log_resp : (n, K), log_norm : (n,).
    """
    log_norm = logsumexp(log_weights, axis=1)
    with np.errstate(under="ignore"):
        return log_weights - log_norm[:, None], log_norm
