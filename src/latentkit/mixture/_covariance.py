"""The four covariance types of a Gaussian mixture, one small record each.

Every type-dependent step of the Gaussian mixture lives on its record: the shape of its
parameters, its parameter count, its sufficient statistics (by the expansion, by direct
products, from the conditional moments of missing values), its M-step estimate, its
precision factor and its log-density. The string `covariance_type` is looked up once, at the
estimator's boundary (`covariance_type(name)`); the kernels take the record.

    type       covariances (Σ)   precision factors (P)   second-moment statistic sxx
    full       (K, D, D)         (K, D, D)               (K, D, D)  Σ_n r_nk x x^T
    tied       (D, D)            (D, D)                  (D, D)     Σ_k Σ_n r_nk x x^T
    diag       (K, D)            (K, D)                  (K, D)     Σ_n r_nk x ⊙ x
    spherical  (K,)              (K,)                    (K,)       Σ_n r_nk ||x||²

The precision factor convention, the only one used anywhere in the Gaussian mixture, is
scikit-learn's `precisions_cholesky_`: P with Λ = Σ^{-1} = P P^T, P UPPER triangular with a
positive diagonal (the unique such factor: with Σ = L L^T Cholesky, P = L^{-T}). Then
(x - μ)^T Λ (x - μ) = ||(x - μ)^T P||² and log det Λ = 2 Σ_i log P_ii. For diag and
spherical, P = 1 / sqrt(Σ) elementwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.linalg import get_blas_funcs

from .._linalg import SingularCovarianceError, cholesky, precision_cholesky, solve_lower
from ..exceptions import InvalidParameterError


def unpack_symmetric(packed: np.ndarray, D: int) -> np.ndarray:
    """(..., D(D+1)/2) packed upper triangles, row by row -> (..., D, D) symmetric."""
    i, j = np.triu_indices(D)
    out = np.empty(packed.shape[:-1] + (D, D), dtype=packed.dtype)
    out[..., i, j] = packed
    out[..., j, i] = packed
    return out


def upper_precision_factor(precisions: np.ndarray) -> np.ndarray:
    """The upper factor P with P P^T = Λ, from symmetric positive-definite Λ : (..., D, D).

    With J the reversal permutation, J Λ J = M M^T (lower Cholesky M), so Λ = (J M J)(J M J)^T
    and J M J is upper triangular with a positive diagonal: the convention's unique P.
    """
    flipped = precisions[..., ::-1, ::-1]
    return cholesky(np.ascontiguousarray(flipped))[..., ::-1, ::-1].copy()


@dataclass(frozen=True)
class CovarianceType:
    """What a covariance type owns. Subclasses are field-less frozen records."""

    name: ClassVar[str]

    def parameter_shape(self, K: int, D: int) -> tuple[int, ...]:
        """Shape of Σ, P and Λ."""
        raise NotImplementedError

    def n_covariance_parameters(self, K: int, D: int) -> int:
        """Free parameters of the covariances."""
        raise NotImplementedError

    def n_parameters(self, K: int, D: int) -> int:
        """Free parameters of the mixture: K-1 weights, K·D means and the covariances."""
        return self.n_covariance_parameters(K, D) + K * D + K - 1

    def min_support(self, D: int) -> float:
        """Samples a component needs for a nonsingular covariance estimate."""
        raise NotImplementedError

    def uses_expansion(self, D: int, K: int) -> bool:
        """Whether complete rows go through the exponential-family expansion T(x)."""
        return True

    # -- statistics (see _gaussian_expfam for T) -----------------------------------------

    def second_moment_size(self, D: int) -> int:
        """Rows F2 of s(x) in T(x)."""
        raise NotImplementedError

    def write_second_moments(self, Xt: np.ndarray, out: np.ndarray) -> None:
        """s(x) of shifted data Xt : (D, n) into out : (F2, n)."""
        raise NotImplementedError

    def sxx_from_packed(self, second: np.ndarray, D: int) -> np.ndarray:
        """The type's sxx from Σ_n r_nk s(x_n) : (K, F2)."""
        raise NotImplementedError

    def sxx_direct(self, Xs: np.ndarray, resp: np.ndarray) -> np.ndarray:
        """The type's sxx by direct products. Xs : (n, D) shifted; resp : (K, n) in Xs's
        dtype."""
        raise NotImplementedError

    def sxx_from_dense(self, sxx: np.ndarray) -> np.ndarray:
        """The type's sxx from per-component second moments Σ_n r_nk x x^T : (K, D, D)."""
        raise NotImplementedError

    # -- M-step and precision factors ----------------------------------------------------

    def estimate(self, nk, means, sxx, reg_covar: float) -> np.ndarray:
        """Σ (shaped per type) from nk : (K,) (> 0), means : (K, D) (shifted) and sxx (the
        type's statistic, shifted), with reg_covar added to the diagonal."""
        raise NotImplementedError

    def precision_factor(self, covariances: np.ndarray) -> np.ndarray:
        """P (the module's convention) from Σ; both shaped per type."""
        raise NotImplementedError

    def covariances_from_factor(self, P: np.ndarray) -> np.ndarray:
        """Σ = (P P^T)^{-1} from P; both shaped per type."""
        raise NotImplementedError

    def precisions(self, P: np.ndarray) -> np.ndarray:
        """Λ = P P^T from P; both shaped per type."""
        raise NotImplementedError

    def check_precisions(self, precisions, K: int, D: int) -> np.ndarray:
        """Validate user-given precisions_init Λ (shaped per type, see `parameter_shape`)
        and return its factor P in the module's convention."""
        precisions = np.asarray(precisions, dtype=np.float64)
        shape = self.parameter_shape(K, D)
        if precisions.shape != shape:  # scikit-learn's wording, then ours
            raise InvalidParameterError(
                f"precisions_init is invalid. The parameter '{self.name} precision' should "
                f"have the shape of {shape}, but got {precisions.shape} (K={K}, D={D}).")
        return self._factor_of_precisions(precisions)

    def _factor_of_precisions(self, precisions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- densities -----------------------------------------------------------------------

    def scaled_means(self, mu: np.ndarray, P: np.ndarray) -> np.ndarray:
        """P_k^T μ_k : (K, D) for shifted means mu : (K, D) and P shaped per type; its squared
        row norms are μ_k^T Λ_k μ_k."""
        raise NotImplementedError

    def natural_parts(self, mu: np.ndarray, P: np.ndarray):
        """(ς : (K, F2), Λ_k μ_k : (K, D), log det P_k : (K,)) of the natural weights, for
        shifted means mu : (K, D) and P shaped per type."""
        raise NotImplementedError

    def stacked(self, mu: np.ndarray, P: np.ndarray):
        """What the direct density precomputes once per M-step from mu : (K, D) and P
        (None: nothing)."""
        return None

    def mahalanobis(self, X, mu, P, stacked=None):
        """(||(x_n - μ_k)^T P_k||² : (n, K), log det P_k : (K,) or scalar), in X's dtype.
        X : (n, D) shifted; mu : (K, D) shifted; P cast to X's dtype."""
        raise NotImplementedError

    def dense(self, covariances: np.ndarray, K: int, D: int) -> np.ndarray:
        """Σ_k as dense matrices (K, D, D) from Σ shaped per type."""
        raise NotImplementedError

    def diagonal(self, S: np.ndarray, K: int, D: int) -> np.ndarray:
        """The diagonals of S_k : (K, D) from S shaped like Σ (Σ, Λ, or the M-step's raw
        second moments), without forming dense matrices."""
        raise NotImplementedError

    # -- re-seeding ----------------------------------------------------------------------

    def principal_axis(self, covariances: np.ndarray, j: int, D: int) -> np.ndarray:
        """√λ v : (D,) for the largest eigenpair (λ, v) of Σ_j (Σ shaped per type)."""
        raise NotImplementedError

    def copy_component(self, covariances: np.ndarray, k: int, j: int) -> None:
        """Σ_k <- Σ_j in place, Σ shaped per type (a shared covariance has nothing to copy)."""
        covariances[k] = covariances[j]


@dataclass(frozen=True)
class _MatrixCovariance(CovarianceType):
    """Full and tied: dense matrices, second moments packed as x_i x_j, i <= j."""

    def uses_expansion(self, D, K):
        """The expansion needs D(D+1)/2 second moments per row; it pays while that is at
        most twice the direct method's K·D products per row, (D + 1)/4 <= K. With few
        components in many dimensions (K = 10 on 784 pixels) the direct products are
        cheaper and T would be hundreds of MB per chunk."""
        return (D + 1) / 4 <= K

    def second_moment_size(self, D):
        return D * (D + 1) // 2

    def write_second_moments(self, Xt, out):
        D, offset = len(Xt), 0
        for i in range(D):  # block i: x_i x_j for j >= i, a contiguous block write
            np.multiply(Xt[i], Xt[i:], out=out[offset:offset + D - i])
            offset += D - i

    def sxx_from_dense(self, sxx):
        return sxx

    def precision_factor(self, covariances):
        return precision_cholesky(covariances)

    def covariances_from_factor(self, P):
        # P upper, so P^T lower: P^{-T} = solve_lower(P^T, I) and Σ = P^{-T} (P^{-T})^T
        eye = np.broadcast_to(np.eye(P.shape[-1]), P.shape)
        inv_t = solve_lower(np.swapaxes(P, -1, -2), eye)
        return inv_t @ np.swapaxes(inv_t, -1, -2)

    def precisions(self, P):
        return P @ np.swapaxes(P, -1, -2)

    def _factor_of_precisions(self, precisions):
        try:
            if np.allclose(precisions, np.swapaxes(precisions, -1, -2)):
                return upper_precision_factor(precisions)
        except SingularCovarianceError:
            pass
        raise InvalidParameterError(f"precisions_init is invalid: '{self.name} precision' "
                                    "should be symmetric, positive-definite.")

    def scaled_means(self, mu, P):
        K, D = mu.shape
        return np.einsum("kd,kde->ke", mu, np.broadcast_to(P, (K, D, D)))

    def natural_parts(self, mu, P):
        K, D = mu.shape
        precisions = np.broadcast_to(self.precisions(P), (K, D, D))
        i, j = np.triu_indices(D)
        second = precisions[:, i, j] * np.where(i == j, 1.0, 2.0)  # off-diagonal doubled
        linear = np.einsum("kde,ke->kd", precisions, mu)
        log_det = np.broadcast_to(np.log(np.diagonal(P, axis1=-2, axis2=-1)).sum(-1), (K,))
        return second, linear, log_det

    def principal_axis(self, covariances, j, D):
        lam, vecs = np.linalg.eigh(self._component(covariances, j))
        return np.sqrt(lam[-1]) * vecs[:, -1]

    def _component(self, covariances, j):
        raise NotImplementedError


@dataclass(frozen=True)
class Full(_MatrixCovariance):
    """One covariance matrix per component."""

    name: ClassVar[str] = "full"

    def parameter_shape(self, K, D):
        return (K, D, D)

    def n_covariance_parameters(self, K, D):
        return K * D * (D + 1) // 2

    def min_support(self, D):
        return D + 1.0

    def sxx_from_packed(self, second, D):
        return unpack_symmetric(second, D)

    def sxx_direct(self, Xs, resp):
        # symmetric rank-n updates (BLAS syrk, half a GEMM's flops): (√r ⊙ x)^T (√r ⊙ x)
        syrk = get_blas_funcs("syrk", (Xs,))
        sxx = np.empty((len(resp), Xs.shape[1], Xs.shape[1]))
        for k, r in enumerate(resp):
            upper = syrk(1.0, np.sqrt(r)[:, None] * Xs, trans=1)  # upper triangle of A^T A
            sxx[k] = np.triu(upper) + np.triu(upper, 1).T
        return sxx

    def estimate(self, nk, means, sxx, reg_covar):
        D = means.shape[1]
        cov = sxx / nk[:, None, None] - means[:, :, None] * means[:, None, :]
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        cov[:, np.arange(D), np.arange(D)] += reg_covar
        return cov

    def stacked(self, mu, P):
        """W = [P_1 ... P_K] : (D, K·D) and b = [μ_1 P_1 ... μ_K P_K] : (K·D,), so that the
        direct Mahalanobis terms of all components come from one product, X W - b."""
        K, D = mu.shape
        W = np.ascontiguousarray(P.transpose(1, 0, 2).reshape(D, K * D))
        b = np.einsum("kd,kde->ke", mu, P).reshape(K * D)
        return W, b

    def mahalanobis(self, X, mu, P, stacked=None):
        n, D = X.shape
        K = mu.shape[0]
        W, b = self.stacked(mu, P) if stacked is None else stacked
        Y = X @ W.astype(X.dtype, copy=False)
        Y -= b.astype(X.dtype, copy=False)
        Y = Y.reshape(n, K, D)
        return (np.einsum("nkd,nkd->nk", Y, Y),
                np.log(np.diagonal(P, axis1=1, axis2=2)).sum(axis=1))

    def dense(self, covariances, K, D):
        return covariances

    def diagonal(self, S, K, D):
        return np.diagonal(S, axis1=1, axis2=2)

    def _component(self, covariances, j):
        return covariances[j]


@dataclass(frozen=True)
class Tied(_MatrixCovariance):
    """One covariance matrix shared by all components (pooled statistics)."""

    name: ClassVar[str] = "tied"

    def parameter_shape(self, K, D):
        return (D, D)

    def n_covariance_parameters(self, K, D):
        return D * (D + 1) // 2

    def min_support(self, D):
        return 1.0  # pooled: a component only needs to be non-empty

    def sxx_from_packed(self, second, D):
        return unpack_symmetric(second.sum(axis=0), D)

    def sxx_direct(self, Xs, resp):
        return Xs.T @ Xs  # Σ_k r_nk = 1 for every row

    def sxx_from_dense(self, sxx):
        return sxx.sum(axis=0)

    def estimate(self, nk, means, sxx, reg_covar):
        D = means.shape[1]
        cov = (sxx - (nk[:, None] * means).T @ means) / nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov[np.arange(D), np.arange(D)] += reg_covar
        return cov

    def mahalanobis(self, X, mu, P, stacked=None):
        Y = (X @ P)[:, None, :] - (mu @ P)[None]
        return np.einsum("nkd,nkd->nk", Y, Y), np.log(np.diag(P)).sum()

    def dense(self, covariances, K, D):
        return np.broadcast_to(covariances, (K, D, D)).copy()

    def diagonal(self, S, K, D):
        return np.broadcast_to(np.diag(S), (K, D))

    def _component(self, covariances, j):
        return covariances

    def copy_component(self, covariances, k, j):
        pass


@dataclass(frozen=True)
class _VarianceCovariance(CovarianceType):
    """Diag and spherical: positive variances, P = 1 / sqrt(Σ) elementwise."""

    def precision_factor(self, covariances):
        if np.any(covariances <= 0):
            raise SingularCovarianceError("a variance is not positive; increase reg_covar.")
        return 1.0 / np.sqrt(covariances)

    def covariances_from_factor(self, P):
        return 1.0 / P**2

    def precisions(self, P):
        return P**2

    def _factor_of_precisions(self, precisions):
        if np.any(precisions <= 0):
            raise InvalidParameterError(
                f"precisions_init is invalid: '{self.name} precision' should be positive; got "
                f"a smallest value of {precisions.min():.6g}.")
        return np.sqrt(precisions)

    def min_support(self, D):
        return 2.0


@dataclass(frozen=True)
class Diag(_VarianceCovariance):
    """Per-component variances (axis-aligned ellipsoids)."""

    name: ClassVar[str] = "diag"

    def parameter_shape(self, K, D):
        return (K, D)

    def n_covariance_parameters(self, K, D):
        return K * D

    def second_moment_size(self, D):
        return D

    def write_second_moments(self, Xt, out):
        np.multiply(Xt, Xt, out=out)

    def sxx_from_packed(self, second, D):
        return second

    def sxx_direct(self, Xs, resp):
        return resp @ (Xs * Xs)

    def sxx_from_dense(self, sxx):
        return np.diagonal(sxx, axis1=1, axis2=2).copy()

    def estimate(self, nk, means, sxx, reg_covar):
        return sxx / nk[:, None] - means**2 + reg_covar

    def scaled_means(self, mu, P):
        return mu * P

    def natural_parts(self, mu, P):
        second = P**2
        return second, second * mu, np.log(P).sum(axis=1)

    def mahalanobis(self, X, mu, P, stacked=None):
        prec = P**2  # (K, D) precisions
        maha = (X**2) @ prec.T - 2 * (X @ (mu * prec).T) + np.sum(mu**2 * prec, axis=1)
        return maha, np.log(P).sum(axis=1)

    def dense(self, covariances, K, D):
        return covariances[:, :, None] * np.eye(D)

    def diagonal(self, S, K, D):
        return S

    def principal_axis(self, covariances, j, D):
        d = np.argmax(covariances[j])
        return np.sqrt(covariances[j, d]) * np.eye(D)[d]


@dataclass(frozen=True)
class Spherical(_VarianceCovariance):
    """One variance per component (balls)."""

    name: ClassVar[str] = "spherical"

    def parameter_shape(self, K, D):
        return (K,)

    def n_covariance_parameters(self, K, D):
        return K

    def second_moment_size(self, D):
        return 1

    def write_second_moments(self, Xt, out):
        np.einsum("dn,dn->n", Xt, Xt, out=out[0])

    def sxx_from_packed(self, second, D):
        return second[:, 0]

    def sxx_direct(self, Xs, resp):
        return resp @ np.einsum("nd,nd->n", Xs, Xs)

    def sxx_from_dense(self, sxx):
        return np.diagonal(sxx, axis1=1, axis2=2).sum(axis=1)

    def estimate(self, nk, means, sxx, reg_covar):
        D = means.shape[1]  # the mean of the diagonal variances
        return (sxx / nk - np.sum(means**2, axis=1)) / D + reg_covar

    def scaled_means(self, mu, P):
        return mu * P[:, None]

    def natural_parts(self, mu, P):
        second = (P**2)[:, None]
        return second, second * mu, mu.shape[1] * np.log(P)

    def mahalanobis(self, X, mu, P, stacked=None):
        prec = P**2  # (K,)
        maha = (np.einsum("nd,nd->n", X, X)[:, None] * prec - 2 * (X @ mu.T) * prec
                + np.sum(mu**2, axis=1) * prec)
        return maha, X.shape[1] * np.log(P)

    def dense(self, covariances, K, D):
        return covariances[:, None, None] * np.eye(D)

    def diagonal(self, S, K, D):
        return np.broadcast_to(S[:, None], (K, D))

    def principal_axis(self, covariances, j, D):
        return np.sqrt(covariances[j]) * np.eye(D)[0]


FULL, TIED, DIAG, SPHERICAL = Full(), Tied(), Diag(), Spherical()
COVARIANCES: dict[str, CovarianceType] = {c.name: c for c in (FULL, TIED, DIAG, SPHERICAL)}
COVARIANCE_TYPES = tuple(COVARIANCES)


def covariance_type(name: str) -> CovarianceType:
    """The record of a covariance type name (validated upstream by the estimator)."""
    try:
        return COVARIANCES[name]
    except KeyError:
        raise InvalidParameterError(
            f"covariance_type must be one of {COVARIANCE_TYPES}; got {name!r}.") from None


__all__ = ["COVARIANCES", "COVARIANCE_TYPES", "CovarianceType", "DIAG", "FULL", "SPHERICAL",
           "TIED", "covariance_type", "unpack_symmetric", "upper_precision_factor"]
