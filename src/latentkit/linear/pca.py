"""Principal component analysis.

The M-dimensional principal subspace is spanned by the eigenvectors u_1 ... u_M of the
sample covariance S = X_c^T X_c / (N - 1) with the M largest eigenvalues λ_i (maximum
variance of the projection and minimum reconstruction error give the same answer). With
the economy SVD X_c = U Σ V^T, u_i are the rows of V^T and λ_i = σ_i² / (N - 1). Solvers:

    covariance_eigh  S from one symmetric rank-N update (syrk), top-M eigh: O(N D²), best
                     when D is small
    full             LAPACK SVD of X_c: O(N D min(N, D)), the most accurate
    gram             N < D: eigenvectors v_i of the Gram matrix X_c X_c^T (N x N), mapped
                     back: u_i = X_c^T v_i / ||X_c^T v_i|| = X_c^T v_i / √(λ'_i): O(N² D)
    randomized       subspace iteration Q <- orth(X_c^T X_c Q) from a random (D, M + p)
                     start, then the exact eigen-decomposition on span(Q) (Halko et al.)
    auto             covariance_eigh when D <= 1000 and N >= D; gram when N < D and
                     N <= 1000; randomized for M < 0.8 min(N, D) when max(N, D) > 500;
                     else full

Signs are deterministic: each component's entry of largest magnitude is positive
(scikit-learn's convention). Variances use N - 1, as scikit-learn does. `score_samples`
is the density of the PPCA with these quantities: σ² = the mean of the discarded
eigenvalues, W = U_M (Λ_M - σ² I)^½ (the closed form of `PPCA` with S over N - 1).
Whitening maps x to Λ_M^{-1/2} U_M^T (x - x̄): zero mean, identity sample covariance; it
changes the representation only, not the density (scikit-learn's whitened PCA rescales its
components inside get_covariance, so its score_samples differs when whiten=True).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.linalg import qr, svd
from sklearn.utils.validation import check_is_fitted

from .._linalg import one_blas_thread
from .._validation import RANDOM_STATE, Interval, Options, as_generator, check_n_samples
from ..base import LatentModel
from ..distributions import Gaussian
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model
from ._lg_base import flip_signs, top_eigen
from ._lg_em import scatter
from ._lowrank import lowrank_log_prob, lowrank_posterior

SVD_SOLVERS = ("auto", "covariance_eigh", "full", "gram", "randomized")

#: rows centred and accumulated per block in covariance_eigh (stays in cache)
BLOCK_ROWS = 4096


# -- solvers: each returns (components (M, D), explained_variance (M,), total_variance) ----


#: largest x̄_d² / var_d for which S = (X^T X - N x̄ x̄^T) / (N - 1) is accurate enough: the
#: subtraction loses about log10(1 + x̄²/var) digits of the eps·N-accurate X^T X.
UNCENTERED_LIMIT = {np.dtype(np.float64): 1e4, np.dtype(np.float32): 1.0}


def pca_covariance_eigh(X, mean, M):
    """S : (D, D) by one GEMM over the raw data, X^T X - N x̄ x̄^T, which is the GEMM limit
    with no centred copy of X; when a column's mean is large against its spread that
    subtraction would cancel (see UNCENTERED_LIMIT), and S is accumulated from centred
    blocks instead (syrk per block of BLOCK_ROWS, summed in float64). Top-M eigh of S."""
    N, D = X.shape
    C = (X.T @ X).astype(np.float64)
    spread = np.diag(C) / N - mean**2
    if np.all(mean**2 <= UNCENTERED_LIMIT[X.dtype] * spread):
        C -= N * np.outer(mean, mean)
    else:
        C = np.zeros((D, D))
        m = mean.astype(X.dtype)
        for start in range(0, N, BLOCK_ROWS):
            C += scatter(X[start:start + BLOCK_ROWS] - m)
    C /= N - 1
    values, components = top_eigen(C, M)
    return components, np.maximum(values, 0.0), float(np.trace(C))


def pca_full(X, mean, M):
    """From the economy SVD X_c = U Σ V^T: components V^T[:M], λ = σ² / (N - 1)."""
    N = X.shape[0]
    _, s, Vt = svd(X - mean.astype(X.dtype), full_matrices=False, check_finite=False,
                   lapack_driver="gesdd")
    values = s.astype(np.float64) ** 2 / (N - 1)
    return Vt[:M].astype(np.float64), values[:M], float(values.sum())


def pca_gram(X, mean, M):
    """N < D: eigenvectors v_i of X_c X_c^T (N x N), u_i = X_c^T v_i / √(λ'_i), λ'_i the
    Gram eigenvalue (= σ_i²)."""
    N = X.shape[0]
    Xc = (X - mean.astype(X.dtype)).astype(np.float64)
    K = scatter(Xc.T)  # X_c X_c^T
    values, V = top_eigen(K, M)
    values = np.maximum(values, np.finfo(np.float64).tiny)
    components = (V @ Xc) / np.sqrt(values)[:, None]
    return components, values / (N - 1), float(np.trace(K) / (N - 1))


def pca_randomized(X, mean, M, *, n_oversamples, n_iter, rng):
    """Subspace iteration on X_c^T X_c from a Gaussian (D, M + p) start, orthonormalized on
    the D side each step (QR of a D x (M + p) matrix, not of N x (M + p)); then the exact
    top-M eigenpairs of Q^T X_c^T X_c Q. The centring is implicit, X_c Q = X Q - 1 (x̄^T Q)
    and X_c^T Y = X^T Y - x̄ (1^T Y), so no centred copy of X is made (its page faults cost
    more than a product here), unless the mean dwarfs the spread (UNCENTERED_LIMIT)."""
    N, D = X.shape
    sum_squares = np.einsum("nd,nd->d", X, X, dtype=np.float64)
    spread = sum_squares / N - mean**2
    if np.all(mean**2 <= UNCENTERED_LIMIT[X.dtype] * spread):
        m = mean.astype(X.dtype)
        total = float((sum_squares - N * mean**2).sum() / (N - 1))
    else:
        X, m = X - mean.astype(X.dtype), np.zeros(D, X.dtype)
        total = float(np.einsum("nd,nd->", X, X, dtype=np.float64) / (N - 1))

    def centred_times(Q):  # X_c Q : (N, width)
        return X @ Q - m @ Q

    def orthonormal(A):  # a small QR (see one_blas_thread)
        with one_blas_thread():
            return qr(A, mode="economic")[0]

    width = min(M + n_oversamples, D)
    Q = orthonormal(rng.standard_normal((D, width))).astype(X.dtype)
    for _ in range(n_iter):
        Y = centred_times(Q)
        Q = orthonormal(X.T @ Y - np.outer(m, Y.sum(axis=0)))
    B = centred_times(Q).astype(np.float64)  # (N, width)
    values, V = top_eigen(B.T @ B / (N - 1), M)
    components = V @ Q.T.astype(np.float64)
    return components, np.maximum(values, 0.0), total


def choose_solver(n_samples, n_features, n_components) -> str:
    """The solver "auto" picks (see module docstring)."""
    N, D, M = n_samples, n_features, n_components
    if D <= 1000 and N >= D:
        return "covariance_eigh"
    if N < D and N <= 1000:
        return "gram"
    if max(N, D) > 500 and M < 0.8 * min(N, D):
        return "randomized"
    return "full"


@register_model
class PCA(LatentModel):
    """Principal component analysis (names and conventions of scikit-learn's PCA).

    Parameters
    ----------
    n_components : int, float or None, the number of components M (1 <= M <= min(N, D));
        a float in (0, 1) keeps the fewest components whose explained-variance ratio
        reaches it (not with "randomized"); None keeps min(N, D).
    whiten : bool, scale the projections to unit variance (Λ^{-1/2} U^T (x - x̄)).
    svd_solver : {"auto", "covariance_eigh", "full", "gram", "randomized"} (module doc).
    iterated_power : int >= 0 or "auto" (7 when M < 0.1 min(N, D), else 4), the subspace
        iterations of "randomized".
    n_oversamples : int >= 0, extra random directions of "randomized".
    random_state : seeds "randomized".

    Attributes
    ----------
    components_ (M, D), explained_variance_ (M,), explained_variance_ratio_ (M,),
    singular_values_ (M,), mean_ (D,), noise_variance_ (the mean discarded eigenvalue, 0
    when M = min(N, D)), n_components_, n_samples_, n_features_in_, svd_solver_ (the one
    used).
    """

    _allow_nan: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 1, None), Interval(float, 0, 1, closed="neither"),
                         Options(None)],
        "whiten": [Options(True, False)],
        "svd_solver": [Options(*SVD_SOLVERS)],
        "iterated_power": [Interval(int, 0, None), Options("auto")],
        "n_oversamples": [Interval(int, 0, None)],
        "random_state": RANDOM_STATE,
    }

    def __init__(self, n_components=None, *, whiten=False, svd_solver="auto",
                 iterated_power="auto", n_oversamples=10, random_state=None):
        self._store_init_args(locals())

    def fit(self, X, y=None):
        """Find the principal subspace of X : (n_samples, n_features). Returns self."""
        self._validate_params()
        X = self._validate_X(X, reset=True)
        N, D = X.shape
        if N < 2:
            raise InvalidInputError(
                f"PCA needs at least 2 samples to estimate a variance; got {N}.")
        fraction = isinstance(self.n_components, float)
        M = min(N, D) if self.n_components is None or fraction else self.n_components
        if M > min(N, D):
            raise InvalidParameterError(
                f"PCA: n_components={M} must be <= min(n_samples, n_features) = {min(N, D)}; "
                "there are no more principal directions. Use fewer components.")
        solver = choose_solver(N, D, M) if self.svd_solver == "auto" else self.svd_solver
        if fraction and solver == "randomized":
            raise InvalidParameterError(
                f"PCA: n_components={self.n_components} (a fraction of the variance) needs "
                "the whole spectrum, which svd_solver='randomized' does not compute; use "
                "'auto', 'covariance_eigh', 'full' or 'gram', or give an integer.")
        if X.dtype == np.float64:
            mean = np.ones(N) @ X / N  # a GEMV: one pass, accumulated in float64
        else:  # float32 accumulation would lose a large mean: sum in float64
            mean = X.mean(axis=0, dtype=np.float64)
        components, values, total, n_iter = self._solve(X, mean, M, solver)
        if fraction:  # the fewest components whose explained-variance ratio reaches it
            ratio = np.cumsum(values) / total
            M = min(int(np.searchsorted(ratio, self.n_components, side="right")) + 1, M)
            components, values = components[:M], values[:M]
        self._store(flip_signs(components), values, total, mean, N, X.dtype)
        self.svd_solver_ = solver
        self.converged_, self.n_iter_ = True, n_iter
        return self

    def _solve(self, X, mean, M, solver):
        """(components (M, D), explained variance (M,), total variance, iterations)."""
        N, D = X.shape
        if solver == "covariance_eigh":
            return (*pca_covariance_eigh(X, mean, M), 0)
        if solver == "full":
            return (*pca_full(X, mean, M), 0)
        if solver == "gram":
            if N > D:
                raise InvalidParameterError(
                    f"PCA: svd_solver='gram' is for n_samples < n_features; got N={N} >= "
                    f"D={D}. Use 'covariance_eigh' or 'auto'.")
            return (*pca_gram(X, mean, M), 0)
        n_iter = self.iterated_power
        if n_iter == "auto":
            n_iter = 7 if M < 0.1 * min(N, D) else 4
        return (*pca_randomized(X, mean, M, n_oversamples=self.n_oversamples, n_iter=n_iter,
                                rng=as_generator(self.random_state)), n_iter)

    def _store(self, components, values, total, mean, n_samples, dtype):
        M = len(values)
        rank = min(n_samples, components.shape[1])
        noise = (total - values.sum()) / (rank - M) if M < rank else 0.0
        self.components_ = components.astype(dtype)
        self.explained_variance_ = values.astype(dtype)
        ratio = values / total if total > 0 else np.zeros_like(values)
        self.explained_variance_ratio_ = ratio.astype(dtype)
        self.singular_values_ = np.sqrt(values * (n_samples - 1)).astype(dtype)
        self.mean_ = mean.astype(dtype)
        self.noise_variance_ = float(max(noise, 0.0))
        self.n_components_, self.n_samples_ = M, n_samples

    # -- projection -----------------------------------------------------------------------

    def transform(self, X):
        """U_M^T (x - x̄) : (n_samples, n_components), divided by √λ when whiten."""
        X = self._validate_X(X, reset=False)
        Z = (X - self.mean_) @ self.components_.T
        if self.whiten:
            Z /= np.sqrt(self.explained_variance_)
        return Z

    def inverse_transform(self, Z):
        """The reconstruction x̄ + U_M z (z scaled back by √λ when whiten) : (n, D)."""
        check_is_fitted(self)
        Z = np.asarray(Z, dtype=self.components_.dtype)
        if Z.ndim != 2 or Z.shape[1] != self.n_components_:
            raise InvalidInputError(f"PCA.inverse_transform needs shape (n, {self.n_components_}); "
                             f"got {Z.shape}.")
        if self.whiten:
            Z = Z * np.sqrt(self.explained_variance_)
        return Z @ self.components_ + self.mean_

    # -- the PPCA density -----------------------------------------------------------------

    def _ppca(self):
        """(mean, W, ψ) of the PPCA with these eigen-quantities; W = U (Λ - σ² I)^½."""
        check_is_fitted(self)
        sigma2 = self.noise_variance_
        if not sigma2 > 0:
            raise InvalidParameterError(
                "PCA: the PPCA density needs a positive noise variance, but noise_variance_ "
                f"= {sigma2} (n_components = min(n_samples, n_features) keeps every "
                "direction). Refit with fewer components.")
        lam = self.explained_variance_.astype(np.float64)
        W = self.components_.T.astype(np.float64) * np.sqrt(np.maximum(lam - sigma2, 0.0))
        D = self.mean_.shape[0]
        return self.mean_.astype(np.float64), W, np.full(D, sigma2)

    def score_samples(self, X):
        """log p(x) : (n_samples,) under the PPCA density, O(N D M)."""
        X = self._validate_X(X, reset=False)
        return lowrank_log_prob(X, *self._ppca()).astype(X.dtype)

    def posterior(self, X) -> Gaussian:
        """p(z | x) of the PPCA density: N(M^{-1} W^T (x - μ), σ² M^{-1})."""
        X = self._validate_X(X, reset=False)
        return Gaussian(*lowrank_posterior(X, *self._ppca()))

    def get_covariance(self) -> np.ndarray:
        """The model covariance W W^T + σ² I : (D, D) (dense, for inspection)."""
        mean, W, psi = self._ppca()
        return W @ W.T + np.diag(psi)

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, Z) from the PPCA density: z ~ N(0, I), x = μ + W z + σ ε."""
        check_n_samples(n_samples)
        mean, W, psi = self._ppca()
        rng = as_generator(random_state)
        Z = rng.standard_normal((n_samples, W.shape[1]))
        X = mean + Z @ W.T + rng.standard_normal((n_samples, len(mean))) * np.sqrt(psi)
        return X.astype(self.mean_.dtype), Z.astype(self.mean_.dtype)

    def _n_parameters(self):
        D, M = self.mean_.shape[0], self.n_components_
        return D + D * M - M * (M - 1) // 2 + 1
