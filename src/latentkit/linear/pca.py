"""Principal component analysis.

The M-dimensional principal subspace is spanned by the eigenvectors u_1 ... u_M of the
sample covariance S = X_c^T X_c / (N - 1) with the M largest eigenvalues λ_i (maximum
variance of the projection and minimum reconstruction error give the same answer). With
the economy SVD X_c = U Σ V^T, u_i are the rows of V^T and λ_i = σ_i² / (N - 1). The
solvers (covariance_eigh, full, gram, randomized, arpack) and the "auto" policy are in
`_pca_solvers`; how many components to keep (a fraction of the variance, Minka's MLE) in
`_pca_select`; the density in `_pca_density`.

A drop-in for scikit-learn's PCA: the same parameters, attributes and sign convention (each
component's entry of largest magnitude is positive), variances over N - 1, sparse input
(centred implicitly, never densified) with arpack, covariance_eigh and randomized. Where it
differs on purpose: "auto" also picks covariance_eigh for N >= D (D <= 1000) and gram for
wide data (exact and faster), randomized takes sparse input, and whitening changes the
representation only, not the density (scikit-learn's whitened PCA rescales its components
inside get_covariance, so its score_samples differs when whiten=True).

`score_samples` is the density of the PPCA with these quantities: σ² = the mean of the
discarded eigenvalues, W = U_M (Λ_M - σ² I)^½ (the closed form of `PPCA` with S over N - 1);
with σ² = 0 the (possibly singular) Gaussian N(x̄, U Λ U^T) on its support (the directions
whose variance exceeds 1e6 eps times the largest, as scipy's allow_singular), -inf off it;
a direction of real variance below that cutoff (columns whose scales differ by 1e7 or more)
counts as 0, and every training row is on the support (`_lowrank.support_tolerance`: where
scikit-learn and scipy give such rows -inf). Whitening maps
x to Λ_M^{-1/2} U_M^T (x - x̄): zero mean, identity sample covariance; √λ is floored at the
dtype's eps so that a direction of zero variance (rank-deficient data) stays finite.
"""

from __future__ import annotations

import numbers
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import (
    FLOAT_DTYPES,
    RANDOM_STATE,
    Interval,
    Options,
    as_generator,
    check_n_samples,
)
from ..base import LatentModel
from ..distributions import Gaussian
from ..exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterError
from ..io import register_model
from . import _pca_solvers as solvers
from ._lg_base import flip_signs
from ._lowrank import lowrank_posterior
from ._pca_density import loadings, pca_covariance, pca_log_prob, pca_precision
from ._pca_select import infer_dimension, n_components_for_ratio

SVD_SOLVERS = solvers.SOLVERS


def whitening_scale(variances: np.ndarray) -> np.ndarray:
    """√λ : (M,) floored at the dtype's eps (a zero-variance direction of rank-deficient
    data would divide by 0; scikit-learn floors it the same way)."""
    return np.maximum(np.sqrt(variances), np.finfo(variances.dtype).eps)


def _is_fraction(n_components) -> bool:
    return isinstance(n_components, numbers.Real) and not isinstance(
        n_components, numbers.Integral | bool)


def components_to_compute(request, n_samples, n_features, solver) -> int:
    """How many components `solver` computes for the n_components `request` (int, fraction,
    "mle" or None); InvalidParameterError, in scikit-learn's words, when it cannot."""
    k, truncated = min(n_samples, n_features), solver in ("arpack", "randomized")
    where = f"with svd_solver={solver!r}"
    if request == "mle":
        if truncated:
            raise InvalidParameterError(
                f"PCA: n_components='mle' cannot be a string {where}: Minka's MLE needs the "
                "whole spectrum; use svd_solver='full' or 'covariance_eigh'.")
        if n_samples < n_features:
            raise InvalidParameterError(
                "PCA: n_components='mle' is only supported if n_samples >= n_features; got "
                f"{n_samples} < {n_features}. Give an integer or a fraction instead.")
        return k
    if _is_fraction(request):
        if truncated:
            raise InvalidParameterError(
                f"PCA: n_components={request} (a fraction of the variance) needs the whole "
                f"spectrum, which svd_solver={solver!r} does not compute; use 'auto', "
                "'covariance_eigh', 'full' or 'gram', or give an integer.")
        return k
    if request is None and solver == "arpack" and k < 2:
        raise InvalidParameterError(
            f"PCA: n_components=None keeps min(n_samples, n_features) - 1 = {k - 1} "
            f"components {where}, but ARPACK computes at least 1. Use svd_solver='full'.")
    if request is None:
        return k - 1 if solver == "arpack" else k
    low = 1 if truncated else 0
    if not low <= request <= k:
        raise InvalidParameterError(
            f"PCA: n_components={request} must be between {low} and min(n_samples, "
            f"n_features)={k} {where}. Use fewer components.")
    if solver == "arpack" and request == k:
        raise InvalidParameterError(
            f"PCA: n_components={request} must be strictly less than min(n_samples, "
            f"n_features)={k} {where} (ARPACK cannot compute every singular triplet); use "
            "svd_solver='full' or fewer components.")
    return int(request)


@register_model
class PCA(LatentModel):
    """Principal component analysis (names and conventions of scikit-learn's PCA).

    Parameters
    ----------
    n_components : int, float, "mle" or None. An int is the number of components M
        (0 <= M <= min(N, D); at least 1 with "arpack"/"randomized", below min(N, D) with
        "arpack"); a float in (0, 1) keeps the fewest components whose cumulative
        explained-variance ratio exceeds it; "mle" is Minka's choice (needs N >= D); None
        keeps min(N, D) (min(N, D) - 1 with "arpack").
    copy : bool, when False a solver that centres X explicitly (full, gram, arpack on dense
        X, randomized when the mean dwarfs the spread) may do it in X's memory, which then
        holds X - x̄ (use fit_transform rather than fit(X).transform(X)).
    whiten : bool, scale the projections to unit variance (Λ^{-1/2} U^T (x - x̄)).
    svd_solver : {"auto", "covariance_eigh", "full", "gram", "randomized", "arpack"}
        (`_pca_solvers`); sparse X takes "arpack", "covariance_eigh", "randomized", "auto"
        (= "arpack").
    tol : float >= 0, ARPACK's convergence tolerance (0: machine precision); "arpack" only.
    iterated_power : int >= 0 or "auto" (7 when M < 0.1 min(N, D), else 4), the power
        iterations of "randomized".
    n_oversamples : int >= 0, extra random directions of "randomized".
    power_iteration_normalizer : {"auto", "QR", "LU", "none"}, how "randomized" rescales
        between power iterations ("auto": "none" for iterated_power <= 2, else "LU").
    random_state : seeds "randomized" and ARPACK's start vector (None: a fixed start for
        ARPACK, whose converged answer depends on it only through rounding, so that its fits
        are reproducible).

    Attributes
    ----------
    components_ (M, D), explained_variance_ (M,), explained_variance_ratio_ (M,),
    singular_values_ (M,), mean_ (D,), noise_variance_ (the mean discarded eigenvalue, 0
    when M = min(N, D)), n_components_, n_samples_, n_features_in_, svd_solver_ (the one
    used), n_iter_ (power iterations of "randomized", else 0).
    """

    _allow_nan: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 0, None), Interval(float, 0, 1, closed="neither"),
                         Options(None, "mle")],
        "copy": [Options(True, False)],
        "whiten": [Options(True, False)],
        "svd_solver": [Options(*SVD_SOLVERS)],
        "tol": [Interval(float, 0, None)],
        "iterated_power": [Interval(int, 0, None), Options("auto")],
        "n_oversamples": [Interval(int, 0, None)],
        "power_iteration_normalizer": [Options(*solvers.NORMALIZERS)],
        "random_state": RANDOM_STATE,
    }

    def __init__(self, n_components=None, *, copy=True, whiten=False, svd_solver="auto",
                 tol=0.0, iterated_power="auto", n_oversamples=10,
                 power_iteration_normalizer="auto", random_state=None):
        self._store_init_args(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.svd_solver in solvers.SPARSE_SOLVERS
        return tags

    @property
    def _fit_svd_solver(self) -> str:
        """scikit-learn's private name for the solver used (`svd_solver_`)."""
        return self.svd_solver_

    def fit(self, X, y=None):
        """Find the principal subspace of X : (n_samples, n_features), dense or
        scipy.sparse (CSR/CSC). Returns self."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit, then U_M^T (x - x̄) : (n_samples, n_components) of X (scaled when whiten),
        reusing the centred X a solver formed."""
        X, spectrum = self._fit(X)
        return self._project(X, spectrum.centred)

    def _fit(self, X):
        """Validate, solve, choose M, store; returns (X validated, the solver's Spectrum)."""
        self._validate_params()
        X = self._validate_input(X, reset=True)
        N, D = X.shape
        if N < 2:
            raise InvalidInputError(
                f"PCA needs at least 2 samples to estimate a variance; got {N}.")
        solver = self._choose_solver(X)
        M = components_to_compute(self.n_components, N, D, solver)
        if solver == "gram" and N > D:
            raise InvalidParameterError(
                f"PCA: svd_solver='gram' is for n_samples < n_features; got N={N} >= "
                f"D={D}. Use 'covariance_eigh' or 'auto'.")
        mean = solvers.column_mean(X)
        spectrum = solvers.SOLVE[solver](X, mean, M, copy=self.copy, **self._solver_options(
            solver, M, N, D))
        ratio = (spectrum.variances / spectrum.total if spectrum.total > 0
                 else np.zeros_like(spectrum.variances)).astype(X.dtype)
        if self.n_components == "mle":
            M = infer_dimension(spectrum.variances, N)
        elif _is_fraction(self.n_components):
            M = n_components_for_ratio(ratio, self.n_components)
        self._store(flip_signs(spectrum.components[:M]), spectrum, ratio[:M], mean, N, X.dtype)
        self.svd_solver_ = solver
        self.converged_, self.n_iter_ = True, spectrum.n_iter
        return X, spectrum

    def _choose_solver(self, X) -> str:
        """svd_solver, or what "auto" picks; sparse X only with the sparse solvers."""
        N, D = X.shape
        if sp.issparse(X) and self.svd_solver not in solvers.SPARSE_SOLVERS:
            raise InvalidInputTypeError(
                "PCA supports sparse input only with the 'arpack', 'covariance_eigh' and "
                f"'randomized' solvers (which centre it implicitly); svd_solver="
                f"{self.svd_solver!r} would densify it. Choose one of those, or pass "
                "X.toarray().")
        if self.svd_solver != "auto":
            return self.svd_solver
        request = self.n_components
        M = request if isinstance(request, numbers.Integral) else min(N, D)
        return solvers.choose_solver(N, D, M, sparse=sp.issparse(X))

    def _solver_options(self, solver, M, N, D) -> dict:
        """The keyword arguments of the solver's kernel beyond (X, mean, M, copy)."""
        if solver == "arpack":  # converged, its answer depends on v0 only by rounding
            seed = 0 if self.random_state is None else self.random_state
            return dict(tol=self.tol, rng=as_generator(seed))
        if solver != "randomized":
            return {}
        n_iter = self.iterated_power
        if n_iter == "auto":
            n_iter = 7 if M < 0.1 * min(N, D) else 4
        return dict(n_oversamples=self.n_oversamples, n_iter=n_iter,
                    normalizer=self.power_iteration_normalizer,
                    rng=as_generator(self.random_state))

    def _store(self, components, spectrum, ratio, mean, n_samples, dtype):
        M = len(components)
        values = spectrum.variances[:M]
        rank = min(n_samples, components.shape[1])
        noise = (spectrum.total - values.sum()) / (rank - M) if M < rank else 0.0
        self.components_ = components.astype(dtype)
        self.explained_variance_ = values.astype(dtype)
        self.explained_variance_ratio_ = ratio
        self.singular_values_ = np.sqrt(values * (n_samples - 1)).astype(dtype)
        self.mean_ = mean.astype(dtype)
        self.noise_variance_ = float(max(noise, 0.0))
        self.n_components_, self.n_samples_ = M, n_samples

    def _validate_input(self, X, *, reset: bool):
        """Dense X as `_validate_X`; scipy.sparse X as CSR/CSC float32/float64, finite."""
        if not sp.issparse(X):
            return self._validate_X(X, reset=reset)
        if not reset:
            check_is_fitted(self)
        try:
            X = validate_data(self, X, reset=reset, accept_sparse=("csr", "csc"),
                              dtype=FLOAT_DTYPES, ensure_all_finite=False)
        except TypeError as exc:
            raise InvalidInputTypeError(str(exc)) from exc
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        if not np.all(np.isfinite(X.data)):
            coo = X.tocoo()
            bad = np.flatnonzero(~np.isfinite(coo.data))[0]
            what = "NaN" if np.isnan(coo.data[bad]) else "inf"
            raise InvalidInputError(
                f"X contains {what} at row {coo.row[bad]}, column {coo.col[bad]}; PCA needs "
                "finite values. Impute or drop them first.")
        return X

    # -- projection -----------------------------------------------------------------------

    def transform(self, X):
        """U_M^T (x - x̄) : (n_samples, n_components), divided by √λ when whiten; X dense
        or scipy.sparse."""
        return self._project(self._validate_input(X, reset=False))

    def _project(self, X, centred=None):
        """U_M^T (x - x̄) for X (dense or sparse) or from its centred copy when given."""
        C = self.components_
        if centred is not None:
            Z = centred @ C.T
        elif sp.issparse(X):  # the centring after the product keeps X sparse
            Z = np.asarray(X @ C.T) - self.mean_ @ C.T
        else:
            Z = (X - self.mean_) @ C.T
        if self.whiten:
            Z /= whitening_scale(self.explained_variance_)
        return Z

    def inverse_transform(self, Z):
        """The reconstruction x̄ + U_M z (z scaled back by √λ when whiten) : (n, D)."""
        check_is_fitted(self)
        Z = np.asarray(Z, dtype=self.components_.dtype)
        if Z.ndim != 2 or Z.shape[1] != self.n_components_:
            raise InvalidInputError(f"PCA.inverse_transform needs shape (n, {self.n_components_}); "
                             f"got {Z.shape}.")
        if self.whiten:
            Z = Z * whitening_scale(self.explained_variance_)
        return Z @ self.components_ + self.mean_

    # -- the PPCA density (`_pca_density`) ------------------------------------------------

    def _density(self):
        """(mean, components, variances, noise variance) of the fitted density."""
        check_is_fitted(self)
        return self.mean_, self.components_, self.explained_variance_, self.noise_variance_

    def score_samples(self, X):
        """log p(x) : (n_samples,) under the PPCA density, O(N D M)."""
        X = self._validate_X(X, reset=False)
        return pca_log_prob(X, *self._density(), n_train=self.n_samples_).astype(X.dtype)

    def posterior(self, X) -> Gaussian:
        """p(z | x) of the PPCA density: N(M^{-1} W^T (x - μ), σ² M^{-1})."""
        X = self._validate_X(X, reset=False)
        mean, components, variances, sigma2 = self._density()
        if not sigma2 > 0:
            raise InvalidParameterError(
                "PCA: the posterior of z needs a positive noise variance, but "
                f"noise_variance_ = {sigma2} (n_components = min(n_samples, n_features) keeps "
                "every direction, so z is determined by x). Refit with fewer components.")
        W = loadings(components, variances, sigma2)
        return Gaussian(*lowrank_posterior(X, mean, W, np.full(len(mean), sigma2)))

    def get_covariance(self) -> np.ndarray:
        """The model covariance W W^T + σ² I : (D, D) (dense, for inspection)."""
        return pca_covariance(*self._density()[1:]).astype(self.mean_.dtype)

    def get_precision(self) -> np.ndarray:
        """The model precision (W W^T + σ² I)^{-1} : (D, D) by Woodbury, never inverting
        (the pseudo-inverse when σ² = 0 leaves the covariance singular)."""
        return pca_precision(*self._density()[1:]).astype(self.mean_.dtype)

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, Z) from the PPCA density: z ~ N(0, I), x = μ + W z + σ ε."""
        check_n_samples(n_samples)
        mean, components, variances, sigma2 = self._density()
        W = loadings(components, variances, sigma2)
        rng = as_generator(random_state)
        Z = rng.standard_normal((n_samples, W.shape[1]))
        X = mean + Z @ W.T + rng.standard_normal((n_samples, len(mean))) * np.sqrt(sigma2)
        return X.astype(self.mean_.dtype), Z.astype(self.mean_.dtype)

    def _n_parameters(self):
        D, M = self.mean_.shape[0], self.n_components_
        return D + D * M - M * (M - 1) // 2 + 1
