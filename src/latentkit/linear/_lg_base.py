"""What PPCA and factor analysis share: the linear-Gaussian model on the EM engine.

    z ~ N(0, I_M),   x | z ~ N(W z + μ, Ψ),   p(x) = N(μ, W W^T + Ψ)

Subclasses say whether Ψ is isotropic (PPCA) or diagonal (FA) and how the noise is stored.
Complete data in memory is summarized once (`Moments`) and EM runs on its moments in
O(D² M) per iteration; streamed chunks and data with NaN take the per-row E-steps.
`init` and `params_from_covariance` are the family's pure start; `LG_EM` is the family
(`init`, `_lg_em.e_step`, `_lg_em.m_step`) that PPCA's solver="em" runs (FA runs it with its
own start, `_fa_svd.FA_EM`, or the SVD iteration `_fa_svd.FA_SVD`). `precision` is the
dense C^{-1} of either model, for `get_precision`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.linalg import eigh
from sklearn.utils.validation import check_is_fitted

from .. import em
from .._linalg import cholesky, inverse_lower, one_blas_thread
from .._validation import Interval, Options, as_generator, check_n_samples
from ..base import EMModel
from ..distributions import Gaussian
from ..exceptions import InvalidInputError, InvalidParameterError
from . import _lg_em as lg
from ._lowrank import lowrank_log_prob, lowrank_missing, lowrank_posterior


class MomentSource(em.ChunkSource):
    """Complete in-memory data as one `Moments` record, computed once per fit."""

    def __init__(self, X: np.ndarray):
        self.moments = lg.Moments(X)
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype

    def __iter__(self):
        yield self.moments

    def init_sample(self, max_rows, rng):
        return self.moments


def top_eigen(S: np.ndarray, M: int):
    """The M largest eigenvalues (descending) : (M,) of the symmetric S : (D, D) and their
    eigenvectors as rows : (M, D). A few of many: LAPACK's relatively robust
    representations (syevr), several times faster than a full decomposition and, unlike
    inverse iteration, not slowed by clustered eigenvalues; else divide and conquer."""
    D = S.shape[0]
    if M == 0:
        return np.zeros(0), np.zeros((0, D))
    with one_blas_thread():  # D x D is small work for threads (see one_blas_thread)
        if M <= D // 4:
            values, vectors = eigh(S, subset_by_index=(D - M, D - 1), driver="evr",
                                   check_finite=False)
        else:
            values, vectors = eigh(S, driver="evd", check_finite=False)
            values, vectors = values[D - M:], vectors[:, D - M:]
    return values[::-1], vectors[:, ::-1].T


def leading_eigen(S: np.ndarray, M: int):
    """top_eigen with the deterministic sign of `flip_signs`: (values (M,), vectors (D, M))."""
    values, components = top_eigen(S, M)
    return values, flip_signs(components).T


def precision(W: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """C^{-1} : (D, D) for C = W W^T + diag(psi), W : (D, M), from the Cholesky factor
    C = L L^T as L^{-T} L^{-1} (accurate where Woodbury's Ψ^{-1} - Ψ^{-1} W P^{-1} W^T Ψ^{-1}
    cancels: ψ at its floor, M = D)."""
    C = W @ W.T
    C[np.diag_indices_from(C)] += psi
    Linv = inverse_lower(cholesky(C, what="model covariance W W^T + Ψ"))
    return Linv.T @ Linv


def flip_signs(components: np.ndarray) -> np.ndarray:
    """Rows of components : (M, D) with the entry of largest magnitude made positive
    (scikit-learn's convention for PCA since 1.5, `svd_flip(u_based_decision=False)`)."""
    biggest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(len(components)), biggest])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


# -- the family's start ---------------------------------------------------------------


def noise_floor(S: np.ndarray, isotropic: bool) -> np.ndarray:
    """ψ's minimum : (D,) from the data covariance S : (D, D): NOISE_FLOOR times each
    feature's variance (FA), or times their mean (PPCA)."""
    var = np.diag(S)
    if isotropic:
        return np.full(len(var), lg.NOISE_FLOOR * var.mean())
    return lg.NOISE_FLOOR * var


def floored(psi: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """max(ψ, floor) : (D,); InvalidInputError when it is not positive (no variance)."""
    psi = np.maximum(psi, floor)
    if not np.all(psi > 0):
        raise InvalidInputError("the data has zero variance; there is nothing to model.")
    return psi


def params_from_covariance(mean, S, config: lg.LGConfig, floor) -> lg.LGParams:
    """Closed-form PPCA on S : (D, D) (Tipping & Bishop): W = U_M (Λ_M - σ² I)^½,
    σ² = the mean of the other eigenvalues (0 when M = D); ψ = σ² (PPCA) or
    diag(S - W W^T) (FA),
    floored at floor : (D,). mean : (D,)."""
    M, D = config.n_components, S.shape[0]
    values, vectors = leading_eigen(S, M)
    sigma2 = max((np.trace(S) - values.sum()) / (D - M), 0.0) if M < D else 0.0
    W = vectors * np.sqrt(np.maximum(values - sigma2, 0.0))
    if config.isotropic:
        psi = np.full(D, sigma2)
    else:
        psi = np.diag(S) - np.einsum("dm,dm->d", W, W)
    return lg.LGParams(mean, W, floored(psi, floor))


def data_moments(X):
    """(mean : (D,), covariance S : (D, D)) of Moments, or of rows X : (n, D) with NaN
    (mean-filled)."""
    if isinstance(X, lg.Moments):
        return X.shift, X.covariance
    X = np.asarray(X, dtype=np.float64)
    shift = lg.column_mean(X, skip_nan=True)
    Xc = np.where(np.isnan(X), 0.0, X - shift)
    return shift, Xc.T @ Xc / len(X)


def init(X, rng, config: lg.LGConfig, restart: int):
    """(LGParams, LGState) to start EM from Moments or rows X : (n, D).

    init_params="pca": closed-form PPCA on the (mean-filled) data's covariance,
    W = U_M (Λ_M - σ² I)^½, ψ = diag(S - W W^T) (FA) or σ² (PPCA), floored;
    "random": W with N(0, var_d / M) entries in row d (each feature's own scale: a row
    drawn at the mean variance "explained" a column at 1e-9 with loadings of 1e99 when
    another column was at 1e99, and EM's first step went to 1e205) and ψ = the feature
    variances (their mean for PPCA). The state keeps the data mean as the statistics'
    centre and the noise floor."""
    shift, S = data_moments(X)
    floor = noise_floor(S, config.isotropic)
    params = params_from_covariance(shift, S, config, floor)
    if config.init_params == "random":
        var = np.diag(S)
        W = rng.standard_normal(params.W.shape) * np.sqrt(var / config.n_components)[:, None]
        psi = np.full_like(var, var.mean()) if config.isotropic else var
        params = params._replace(W=W, psi=np.maximum(psi, floor))
    return params, lg.LGState(shift, floor)


#: EM for the linear-Gaussian model (PPCA's solver="em"; FA's start is `_fa_svd.fa_init`)
LG_EM = em.EMFamily(init, lg.e_step, lg.m_step, objective=em.EXACT, remedy=lg.REMEDY)


class LinearGaussianModel(EMModel):
    """Base of PPCA and FactorAnalysis (not public)."""

    #: True for PPCA (ψ = σ² 1), False for FA (diagonal Ψ)
    _isotropic: ClassVar[bool] = False

    _parameter_constraints: ClassVar[dict] = {"n_components": [Interval(int, 1, None)],
                                              "init_params": [Options("pca", "random")]}

    # -- data -----------------------------------------------------------------------------

    def _em_config(self, n_samples, n_features) -> lg.LGConfig:
        M = self.n_components
        if M >= n_features:
            raise InvalidParameterError(
                f"{type(self).__name__}: n_components={M} must be < n_features={n_features}: "
                "with M >= D the noise is not identifiable (W W^T alone fits any covariance). "
                "Use fewer components, or PCA for a full rotation.")
        if n_samples is not None and M >= n_samples:
            raise InvalidInputError(
                f"{type(self).__name__}: n_components={M} must be < n_samples={n_samples}: "
                "the sample covariance has rank < n_samples, so the noise variance would be "
                "0. Use fewer components or more data.")
        return lg.LGConfig(M, self._isotropic, self.init_params)

    def _source(self, X, *, reset):
        if em.is_streaming(X):
            return super()._source(X, reset=reset)
        X = self._validate_X(X, reset=reset)
        self._check_columns(X)
        if np.isnan(X).any():
            rows = self.chunk_size or em.auto_chunk_rows(self._chunk_floats_per_row(X.shape[1]))
            return em.ArraySource(X, rows, validated=True, allow_nan=True)
        return MomentSource(X)

    def _n_factors(self, n_features: int) -> int:
        """M for data with n_features columns (FactorAnalysis resolves None to D)."""
        return self.n_components

    def _chunk_floats_per_row(self, n_features):
        M = self._n_factors(n_features)
        return 4 * n_features + 2 * M * M + 4 * M

    def _check_columns(self, X):
        """All-missing columns are an error (nothing to learn μ_d from); so are constant
        columns for FA (ψ_d -> 0 makes the likelihood unbounded)."""
        observed = ~np.isnan(X)
        empty = np.flatnonzero(~observed.any(axis=0))
        if empty.size:
            raise InvalidInputError(
                f"{type(self).__name__}: column {empty[0]} of X is entirely missing (NaN); "
                "nothing can be learned about it. Drop the column.")
        with np.errstate(invalid="ignore"):
            spread = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
        if np.all(spread == 0):
            # every column's observed values are one constant: the same error as complete
            # constant data (`floored`), which a NaN would otherwise dodge by a rounding-level
            # variance in the mean-filled moments
            raise InvalidInputError(
                f"{type(self).__name__}: the data has zero variance (every column's observed "
                "values are constant); there is nothing to model.")
        if not self._isotropic:
            constant = np.flatnonzero(spread == 0)
            if constant.size:
                raise InvalidInputError(
                    f"{type(self).__name__}: column {constant[0]} of X is constant; its noise "
                    "variance would be 0 and the likelihood unbounded. Drop constant columns "
                    "(or use PPCA, whose shared noise variance tolerates them).")

    # -- parameters <-> fitted attributes -------------------------------------------------

    def _store_params(self, params, dtype):
        self.mean_ = params.mean.astype(dtype)
        self.components_ = np.ascontiguousarray(params.W.T).astype(dtype)
        psi = params.psi.astype(dtype)
        self.noise_variance_ = psi[0] if self._isotropic else psi
        self.n_components_ = params.W.shape[1]

    def _psi(self) -> np.ndarray:
        """(D,) noise variances in float64."""
        D = self.mean_.shape[0]
        return np.broadcast_to(np.asarray(self.noise_variance_, dtype=np.float64), (D,)).copy()

    def _current_params(self) -> lg.LGParams:
        check_is_fitted(self)
        return lg.LGParams(self.mean_.astype(np.float64),
                           self.components_.T.astype(np.float64), self._psi())

    @property
    def loadings_(self) -> np.ndarray:
        """W : (n_features, n_components), the transpose of components_."""
        check_is_fitted(self)
        return self.components_.T

    def get_covariance(self) -> np.ndarray:
        """C = W W^T + Ψ : (n_features, n_features), the model covariance (dense: for
        inspection; the likelihood never forms it)."""
        check_is_fitted(self)
        W = self.components_.T.astype(np.float64)
        return W @ W.T + np.diag(self._psi())

    def get_precision(self) -> np.ndarray:
        """C^{-1} : (n_features, n_features), the model precision (dense, for inspection:
        from the Cholesky factor of C, see `precision`)."""
        check_is_fitted(self)
        return precision(self.components_.T.astype(np.float64), self._psi())

    def _n_parameters(self):
        D, M = self.mean_.shape[0], self.n_components_
        noise = 1 if self._isotropic else D
        return D + D * M - M * (M - 1) // 2 + noise

    # -- inference ------------------------------------------------------------------------

    def score_samples(self, X):
        """log p(x) : (n_samples,), exact in O(N D M) (determinant lemma and Woodbury);
        NaN entries are marginalized exactly."""
        X = self._validate_X(X, reset=False)
        W, psi, mean = self.components_.T, self._psi(), self.mean_.astype(np.float64)
        if np.isnan(X).any():
            Xf = np.asarray(X, dtype=np.float64)
            observed = ~np.isnan(Xf)
            params = lg.LGParams(mean, W.astype(np.float64), psi)
            post = lowrank_missing(Xf, mean, params.W, psi, observed)
            return lg.missing_log_prob(Xf, observed, params, post).astype(X.dtype)
        return lowrank_log_prob(X, mean, W, psi).astype(X.dtype)

    def posterior(self, X) -> Gaussian:
        """p(z | x) = N(P^{-1} W^T Ψ^{-1} (x - μ), P^{-1}), P = I + W^T Ψ^{-1} W (for PPCA
        N(M^{-1} W^T (x - μ), σ² M^{-1})); rows with NaN condition on their observed
        entries (covariance per row then)."""
        return self._posterior(self._validate_X(X, reset=False))

    def _posterior(self, X) -> Gaussian:
        """p(z | x) of validated X : (n_samples, n_features) (validate once: a second
        check of the bare array would warn that it has lost fit's feature names)."""
        W, psi, mean = self.components_.T, self._psi(), self.mean_.astype(np.float64)
        if np.isnan(X).any():
            post = lowrank_missing(X, mean, W, psi)
            return Gaussian(post.z_mean, post.z_cov[post.pattern])
        means, cov = lowrank_posterior(X, mean, W, psi)
        return Gaussian(means, cov)

    def transform(self, X):
        """E[z | x] : (n_samples, n_components), in X's dtype."""
        X = self._validate_X(X, reset=False)
        return self._posterior(X).mean.astype(X.dtype)

    def impute(self, X):
        """X with each NaN replaced by E[x_m | x_o] = μ_m + W_m E[z | x_o]."""
        X = self._validate_X(X, reset=False)
        missing = np.isnan(X)
        if not missing.any():
            return X.copy()
        W, psi, mean = self.components_.T, self._psi(), self.mean_.astype(np.float64)
        post = lowrank_missing(X, mean, W, psi)
        filled = mean + post.z_mean @ W.T.astype(np.float64)
        return np.where(missing, filled, X).astype(X.dtype)

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, Z): z ~ N(0, I), x = μ + W z + Ψ^½ ε. X : (n, D), Z : (n, M)."""
        check_is_fitted(self)
        check_n_samples(n_samples)
        rng = as_generator(random_state)
        D, M = self.mean_.shape[0], self.n_components_
        Z = rng.standard_normal((n_samples, M))
        X = (self.mean_.astype(np.float64) + Z @ self.components_.astype(np.float64)
             + rng.standard_normal((n_samples, D)) * np.sqrt(self._psi()))
        dtype = self.mean_.dtype
        return X.astype(dtype), Z.astype(dtype)
