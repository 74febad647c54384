"""Numerical building blocks: stable Cholesky factors, triangular solves, log-sum-exp.

Covariances are kept as Cholesky factors (STYLE 3): log det Σ = 2 Σ_i log L_ii, and a
Mahalanobis term is a triangular solve or a product with the precision factor. No `inv`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.linalg import get_lapack_funcs, solve_triangular
from threadpoolctl import ThreadpoolController

LOG_2PI = math.log(2 * math.pi)

__all__ = ["LOG_2PI", "cholesky", "precision_cholesky", "solve_lower", "log_normalize",
           "responsibilities_"]


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS/LAPACK run on one thread. For small factorizations (a QR
    of D x 40, an eigh of 512 x 512) right after large threaded products: the threaded
    library spends up to ~100x the arithmetic waking and synchronizing its threads."""
    return _blas_controller().limit(limits=1, user_api="blas")


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
    """L^{-1} B for lower-triangular L.

    L : (..., D, D); B : (..., D, M), batch shapes broadcast. A single 2-D system uses the
    triangular solver (LAPACK trtrs); a batch goes to one call of numpy's batched solver,
    not a Python loop of small LAPACK calls (each of which pays BLAS threading overhead).
    """
    if L.ndim == 2 and B.ndim == 2:
        return solve_triangular(L, B, lower=True, check_finite=False)
    return np.linalg.solve(L, B)


def precision_cholesky(covariances: np.ndarray) -> np.ndarray:
    """Upper factors P with Σ^{-1} = P P^T, from covariances (..., D, D).

    With Σ = L L^T: Σ^{-1} = L^{-T} L^{-1}, so P = L^{-T} (a triangular solve against I).
    Then (x - μ)^T Σ^{-1} (x - μ) = ||(x - μ)^T P||^2 and log det Σ^{-1} = 2 Σ log diag P.
    """
    L = cholesky(covariances)
    return np.swapaxes(inverse_lower(L), -1, -2)


def inverse_lower(L: np.ndarray) -> np.ndarray:
    """L^{-1} for lower-triangular L : (..., D, D).

    Small matrices: one batched numpy call (a Python loop of tiny LAPACK calls costs more
    in overhead than the arithmetic). Large ones: LAPACK's triangular inverse (trtri,
    D³/3 flops) per matrix, a third of a general solve against the identity.
    """
    D = L.shape[-1]
    if D < 64:
        return np.linalg.solve(L, np.broadcast_to(np.eye(D), L.shape))
    flat = L.reshape(-1, D, D)
    out = np.empty(flat.shape, dtype=np.result_type(L.dtype, np.float32))
    for i, matrix in enumerate(flat):
        trtri = get_lapack_funcs("trtri", (matrix,))
        out[i], info = trtri(matrix, lower=1)
        if info != 0:
            raise SingularCovarianceError(
                "a Cholesky factor is singular. Increase reg_covar or use float64.")
    return out.reshape(L.shape)


def log_normalize(log_weights: np.ndarray, axis: int = 1):
    """Normalize in log space along `axis`: (log_resp, log_norm), log_norm = logsumexp.

    log_weights : (n, K) with axis=1, or component-major (K, n) with axis=0; log_resp has
    its shape and log_norm : (n,). The maximum is factored out, exp(a - max) <= 1, so
    nothing overflows; a slice of -inf stays -inf. (scipy.special.logsumexp does the same
    with several more passes over the array.)
    """
    row_max = log_weights.max(axis=axis, keepdims=True)
    row_max[~np.isfinite(row_max)] = 0.0
    shifted = log_weights - row_max
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero-density row gives NaN
        log_norm = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        shifted -= log_norm
    return shifted, (log_norm + row_max).reshape(-1)


def responsibilities_(log_joint: np.ndarray, axis: int = 0):
    """Posterior probabilities from log joints, in place: (resp, log_norm).

    log_joint : component-major (K, n) with axis=0 (or (n, K) with axis=1); it is
    overwritten by resp = exp(a - max) / Σ exp(a - max), and log_norm : (n,) =
    max + log Σ exp(a - max) is the log-likelihood of each row. Five passes, no temporaries
    of the array's size.
    """
    row_max = log_joint.max(axis=axis, keepdims=True)
    row_max[~np.isfinite(row_max)] = 0.0
    log_joint -= row_max
    np.exp(log_joint, out=log_joint)
    total = log_joint.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero-density row gives NaN
        log_joint *= 1.0 / total  # a reciprocal per row, then products: cheaper than K divides
        log_norm = np.log(total) + row_max
    return log_joint, log_norm.reshape(-1)
