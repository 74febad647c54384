"""PCA's solvers: pure kernels from data X : (n_samples, n_features) and its column mean
x̄ : (n_features,) to the leading eigenpairs of S = X_c^T X_c / (N - 1), X_c = X - 1 x̄^T.

    covariance_eigh  S from one GEMM, X^T X - N x̄ x̄^T (or centred blocks when the mean
                     dwarfs the spread), top-M eigh: O(N D²); dense or sparse X
    full             LAPACK SVD of X_c: O(N D min(N, D)), the most accurate
    gram             N < D: eigenvectors v_i of X_c X_c^T (N x N), u_i = X_c^T v_i
                     normalized (one thin QR): O(N² D)
    randomized       Halko et al.'s range finder, as scikit-learn's randomized_svd: from a
                     Gaussian start on the smaller side, n_iter power iterations
                     Q <- norm(A^T norm(A Q)) (norm: "QR", "LU" or "none"), then
                     Q = qr(A Q), B = Q^T A and the SVD of B; dense or sparse X
    arpack           ARPACK's Lanczos (scipy svds) on X_c: M < min(N, D); dense or sparse X

Sparse X is never densified: X_c is applied as a linear operator, X_c Q = X Q - 1 (x̄^T Q)
and X_c^T Y = X^T Y - x̄ (1^T Y). Each solver returns a `Spectrum`. `copy=False` lets a
solver that centres X explicitly do it in place (scikit-learn's `copy`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lu, qr, svd
from scipy.sparse.linalg import LinearOperator, svds

from .._linalg import one_blas_thread
from ._lg_base import top_eigen
from ._lg_em import scatter

SOLVERS = ("auto", "covariance_eigh", "full", "gram", "randomized", "arpack")
#: the solvers that take scipy.sparse input (centred implicitly)
SPARSE_SOLVERS = ("auto", "arpack", "covariance_eigh", "randomized")
NORMALIZERS = ("auto", "QR", "LU", "none")

#: rows centred and accumulated per block in covariance_eigh (stays in cache)
BLOCK_ROWS = 4096

#: largest x̄_d² / var_d for which the uncentred products are accurate enough: forming
#: X^T X - N x̄ x̄^T (or X Q - 1 x̄^T Q) loses about log10(1 + x̄²/var) digits.
UNCENTERED_LIMIT = {np.dtype(np.float64): 1e4, np.dtype(np.float32): 1.0}


class Spectrum(NamedTuple):
    """A solver's answer. components : (M, D) orthonormal rows; variances : (M,) the
    eigenvalues of S, descending; total : tr S; centred : (N, D) X_c when the solver formed
    it (reused by fit_transform), else None; n_iter : power iterations run."""

    components: np.ndarray
    variances: np.ndarray
    total: float
    centred: np.ndarray | None = None
    n_iter: int = 0


def column_mean(X) -> np.ndarray:
    """x̄ : (D,) float64 of dense or sparse X : (N, D), accumulated in float64."""
    N = X.shape[0]
    if sp.issparse(X):
        return np.asarray(X.sum(axis=0, dtype=np.float64)).ravel() / N
    if X.dtype == np.float64:
        return np.ones(N) @ X / N  # a GEMV: one pass, accumulated in float64
    return X.mean(axis=0, dtype=np.float64)


def column_sum_squares(X) -> np.ndarray:
    """Σ_n x_nd² : (D,) float64 of dense or sparse X."""
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=0, dtype=np.float64)).ravel()
    return np.einsum("nd,nd->d", X, X, dtype=np.float64)


def mean_is_small(sum_squares, mean, N, dtype) -> bool:
    """Whether x̄_d² <= UNCENTERED_LIMIT · var_d for every column (see UNCENTERED_LIMIT)."""
    spread = sum_squares / N - mean**2
    return bool(np.all(mean**2 <= UNCENTERED_LIMIT[np.dtype(dtype)] * spread))


def centred(X: np.ndarray, mean, *, copy: bool) -> np.ndarray:
    """X - x̄ : (N, D) in X's dtype; in place when copy is False and X is writeable."""
    m = mean.astype(X.dtype)
    if copy or not X.flags.writeable:
        return X - m
    X -= m
    return X


def centred_products(X, m):
    """(X_c Q, X_c^T Y) as functions for dense or sparse X : (N, D), with the centring
    implicit: m : (D,) the mean in X's dtype (zeros when X is already centred)."""

    def times(Q):  # X_c Q : (N, width)
        return X @ Q - m @ Q

    def rtimes(Y):  # X_c^T Y : (D, width)
        return X.T @ Y - np.multiply.outer(m, Y.sum(axis=0))  # vectors too

    return times, rtimes


# -- the solvers ----------------------------------------------------------------------


def pca_covariance_eigh(X, mean, M, **_) -> Spectrum:
    """S : (D, D) by one product over the raw data, X^T X - N x̄ x̄^T (sparse X: a sparse
    product, whose columns' means rarely dwarf their spread); for dense X whose mean dwarfs
    its spread (UNCENTERED_LIMIT), S is accumulated from centred blocks (syrk per block of
    BLOCK_ROWS, summed in float64). Top-M eigh of S."""
    N, D = X.shape
    if sp.issparse(X):
        C = (X.T @ X).toarray().astype(np.float64) - N * np.outer(mean, mean)
    else:
        C = (X.T @ X).astype(np.float64)
        if mean_is_small(np.diag(C), mean, N, X.dtype):
            C -= N * np.outer(mean, mean)
        else:
            C = np.zeros((D, D))
            m = mean.astype(X.dtype)
            for start in range(0, N, BLOCK_ROWS):
                C += scatter(X[start:start + BLOCK_ROWS] - m)
    C /= N - 1
    values, components = top_eigen(C, M)
    return Spectrum(components, np.maximum(values, 0.0), float(np.trace(C)))


def pca_full(X, mean, M, *, copy=True, **_) -> Spectrum:
    """From the economy SVD X_c = U Σ V^T: components V^T[:M], λ = σ² / (N - 1)."""
    N = X.shape[0]
    Xc = centred(X, mean, copy=copy)
    _, s, Vt = svd(Xc, full_matrices=False, check_finite=False, overwrite_a=False,
                   lapack_driver="gesdd")
    values = s.astype(np.float64) ** 2 / (N - 1)
    return Spectrum(Vt[:M].astype(np.float64), values[:M], float(values.sum()), Xc)


def pca_gram(X, mean, M, *, copy=True, **_) -> Spectrum:
    """N < D: eigenvectors v_i of K = X_c X_c^T (N x N) with eigenvalues λ'_i = σ_i²;
    u_i = X_c^T v_i / ||X_c^T v_i||, made orthonormal by one thin QR (which leaves the
    well-determined directions as they are and completes the basis where λ'_i ≈ 0)."""
    N = X.shape[0]
    Xc = centred(X, mean, copy=copy)
    X64 = Xc.astype(np.float64, copy=False)
    K = scatter(X64.T)  # X_c X_c^T
    values, V = top_eigen(K, M)
    Q, R = qr((V @ X64).T, mode="economic", check_finite=False)  # (D, M)
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    components = (Q * signs).T
    return Spectrum(components, np.maximum(values, 0.0) / (N - 1),
                    float(np.trace(K) / (N - 1)), Xc)


def power_normalizer(name: str, n_iter: int):
    """The map that keeps the power iterations well scaled: "QR" (orthonormal basis),
    "LU" (the permuted L factor: cheaper), "none"; "auto" is "none" for n_iter <= 2, else
    "LU" (scikit-learn's rule)."""
    if name == "auto":
        name = "none" if n_iter <= 2 else "LU"
    if name == "QR":
        return lambda A: qr(A, mode="economic", check_finite=False)[0]
    if name == "LU":
        return lambda A: lu(A, permute_l=True, check_finite=False)[0]
    return lambda A: A


def range_finder(times, rtimes, start, n_iter, normalize):
    """Orthonormal Q : (n_rows of A, width) spanning A (A^T A)^n_iter Ω (Halko et al.,
    algorithm 4.3/4.4), with A applied by `times` and A^T by `rtimes`; start Ω : (n_cols
    of A, width)."""
    Q = start
    for _ in range(n_iter):
        Y = times(Q)
        with one_blas_thread():  # thin factorizations (see one_blas_thread)
            Y = normalize(Y)
        Q = rtimes(Y)
        with one_blas_thread():
            Q = normalize(Q)
    Y = times(Q)
    with one_blas_thread():
        return qr(Y, mode="economic", check_finite=False)[0]


def pca_randomized(X, mean, M, *, n_oversamples, n_iter, normalizer="auto", rng,
                   copy=True, **_) -> Spectrum:
    """scikit-learn's randomized SVD on X_c (A = X_c, or X_c^T when N < D so that the start
    lives on the smaller side): `range_finder`, B = Q^T A : (width, small side), SVD of B
    for the components v_i. Their variances are the Rayleigh quotients ||X_c v_i||² / (N - 1)
    (>= the σ_i² of B, closer to the eigenvalues, and exactly the variances of the
    projections). When the width M + n_oversamples reaches min(N, D) the start is the
    identity: the subspace is the whole space, the answer exact and deterministic. The
    centring is implicit (no centred copy of X; sparse X stays sparse) unless the mean of
    dense X dwarfs its spread (UNCENTERED_LIMIT)."""
    N, D = X.shape
    sum_squares = column_sum_squares(X)
    Xc = None
    if sp.issparse(X) or mean_is_small(sum_squares, mean, N, X.dtype):
        m = mean.astype(X.dtype)
        total = float((sum_squares - N * mean**2).sum() / (N - 1))
    else:
        Xc, m = centred(X, mean, copy=copy), np.zeros(D, X.dtype)
        total = float(column_sum_squares(Xc).sum() / (N - 1))
    times, rtimes = centred_products(X if Xc is None else Xc, m)
    apply, apply_t = (rtimes, times) if N < D else (times, rtimes)  # A = X_c^T when N < D
    width = min(M + n_oversamples, N, D)
    if width == min(N, D):
        start, n_iter = np.eye(width, dtype=X.dtype), 0
    else:
        start = rng.standard_normal((min(N, D), width)).astype(X.dtype)
    Q = range_finder(apply, apply_t, start, n_iter, power_normalizer(normalizer, n_iter))
    B = apply_t(Q).T.astype(np.float64)  # Q^T A : (width, min(N, D))
    with one_blas_thread():
        U_hat, _, Vt = svd(B, full_matrices=False, check_finite=False)
    components = Vt[:M] if N >= D else (Q.astype(np.float64) @ U_hat[:, :M]).T
    Z = times(components.T.astype(X.dtype))  # X_c V : (N, M)
    values = np.einsum("nm,nm->m", Z, Z, dtype=np.float64) / (N - 1)
    order = np.argsort(values)[::-1]
    return Spectrum(components[order], values[order], total, Xc, n_iter)


def pca_arpack(X, mean, M, *, tol=0.0, rng, copy=True, **_) -> Spectrum:
    """The M < min(N, D) leading singular triplets of X_c by ARPACK (scipy's svds, start
    v0 ~ U(-1, 1) as scikit-learn's), λ = σ² / (N - 1). Dense X is centred explicitly;
    sparse X is wrapped as the implicitly centred operator. Constant X (tr S = 0) has
    every variance 0 and any orthonormal components: the first M coordinate axes."""
    N, D = X.shape
    v0 = rng.uniform(-1, 1, min(N, D))
    if sp.issparse(X):
        Xc = None
        times, rtimes = centred_products(X, mean.astype(X.dtype))
        A = LinearOperator((N, D), matvec=times, rmatvec=rtimes, matmat=times,
                           rmatmat=rtimes, dtype=X.dtype)
        total = float((column_sum_squares(X) - N * mean**2).sum() / (N - 1))
    else:
        A = Xc = centred(X, mean, copy=copy)
        total = float(column_sum_squares(Xc).sum() / (N - 1))
    if not total > 0:  # constant data: X_c = 0 (ARPACK would stop on a zero start vector)
        return Spectrum(np.eye(M, D), np.zeros(M), 0.0, Xc)
    _, s, Vt = svds(A, k=M, tol=tol, v0=v0.astype(X.dtype))
    order = np.argsort(s)[::-1]
    values = s[order].astype(np.float64) ** 2 / (N - 1)
    return Spectrum(Vt[order].astype(np.float64), values, total, Xc)


SOLVE = {"covariance_eigh": pca_covariance_eigh, "full": pca_full, "gram": pca_gram,
         "randomized": pca_randomized, "arpack": pca_arpack}


def choose_solver(n_samples, n_features, n_components, *, sparse=False) -> str:
    """The solver "auto" picks. Sparse X: arpack. Dense: covariance_eigh when D <= 1000 and
    N >= 10 D; full for small problems (max(N, D) <= 500: the most accurate, at negligible
    cost); then covariance_eigh for any N >= D with D <= 1000 and gram for N < D with
    N <= 1000 (exact, and faster than LAPACK's SVD); randomized for 1 <= M < 0.8 min(N, D);
    else full. n_components : the number the solver must compute."""
    N, D, M = n_samples, n_features, n_components
    if sparse:
        return "arpack"
    if D <= 1000 and N >= 10 * D:
        return "covariance_eigh"
    if max(N, D) <= 500:
        return "full"
    if D <= 1000 and N >= D:
        return "covariance_eigh"
    if N < D and N <= 1000:
        return "gram"
    if 1 <= M < 0.8 * min(N, D):
        return "randomized"
    return "full"
