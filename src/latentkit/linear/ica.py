"""Independent component analysis: FastICA, with a maximum-likelihood density.

    x = A s + μ,   s_1 .. s_M independent, non-Gaussian, unit variance

FastICA (see `_ica_kernels`) whitens x by PCA and finds the rotation W that makes the
whitened data as non-Gaussian as possible; the unmixing is `components_` = W K and the
mixing `mixing_` = A its pseudo-inverse. Names follow scikit-learn's FastICA.

The maximum-likelihood view gives `score_samples` a density: with the sources' prior
p(s) = ½ sech(π s / 2) (unit-variance hyperbolic secant, super-Gaussian) and, when
M < D, isotropic Gaussian noise of variance σ² (the mean of the D - M discarded PCA
variances, as in probabilistic PCA) on the directions whitening discards:

    log p(x) = Σ_i log p(s_i) + log |det W| - ½ Σ_{i<=M} log λ_i
               - ½ (D - M) log(2π σ²) - ||r||² / (2 σ²)

with s = components_ (x - μ), λ_i the kept PCA variances and r the part of x - μ outside
the kept principal subspace (the last two terms only when M < D). This is a change of
variables x -> (s, r): an exact, normalized density on R^D.
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._linalg import LOG_2PI
from .._validation import RANDOM_STATE, InstanceOf, Interval, Options, as_generator, check_n_samples
from ..base import LatentModel
from ..em import ConvergenceWarning
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model
from ..metrics.unmixing import amari_index
from . import _ica_kernels as ik

__all__ = ["FastICA", "amari_index"]

ARRAY_OR_NONE = [InstanceOf(np.ndarray, list, tuple, type(None), description="an array or None")]


@register_model
class FastICA(LatentModel):
    """FastICA: blind source separation by maximizing non-Gaussianity.

    Parameters
    ----------
    n_components : int or None, number of sources M (M <= min(n_samples, n_features));
        None: min(n_samples, n_features).
    algorithm : {"parallel", "deflation"}: all rows at once with symmetric decorrelation,
        or one row at a time with Gram-Schmidt.
    whiten : {"unit-variance", False}: PCA-whiten the centred data and return unit-variance
        sources; False: X is taken as already white (not centred; n_components must be
        None or n_features).
    fun : {"logcosh", "exp", "cube"}, the contrast g (see `_ica_kernels`).
    fun_args : None or {"alpha": a} with 1 <= a <= 2, for "logcosh" only.
    max_iter : int, fixed-point iterations (per component for "deflation").
    tol : float, stop when every row's change 1 - |<w_new, w_old>| is below it.
    w_init : (M, M) array or None (then standard normal draws).
    whiten_solver : {"svd", "eigh"}: SVD of the data (accurate) or eigendecomposition of
        X^T X (faster when n_samples >> n_features).
    n_init : int, random initializations; the one with the highest training
        log-likelihood (the maximum-likelihood view) is kept. Must be 1 with w_init.
    random_state : seed, Generator or None.

    Attributes
    ----------
    components_ (M, D) unmixing, s = components_ (x - mean_); mixing_ (D, M) its
    pseudo-inverse, x ≈ mixing_ s + mean_; mean_ (D,); whitening_ (M, D) = Λ_M^{-1/2} U_M^T
    (the notes' whitening; scikit-learn's whitening_ is this divided by √n_samples), None
    when whiten=False; unmixing_ (M, M) the matrix W acting on whitened data;
    explained_variance_ (M,) the kept PCA variances λ_i; noise_variance_ σ² (0 when
    M = D); n_iter_, converged_, history_ (the change per fixed-point iteration, all rows
    in order for "deflation"; not a likelihood), log_likelihood_ (mean training
    log-likelihood), n_features_in_.
    """

    _allow_nan: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 1, None), Options(None)],
        "algorithm": [Options(*ik.ALGORITHMS)],
        "whiten": [Options("unit-variance", False)],
        "fun": [Options(*ik.FUNS)],
        "fun_args": [InstanceOf(dict, type(None), description="a dict such as "
                                "{'alpha': 1.0} or None")],
        "max_iter": [Interval(int, 1, None)],
        "tol": [Interval(float, 0, None)],
        "w_init": ARRAY_OR_NONE,
        "whiten_solver": [Options(*ik.WHITEN_SOLVERS)],
        "n_init": [Interval(int, 1, None)],
        "random_state": RANDOM_STATE,
    }

    def __init__(self, n_components=None, *, algorithm="parallel", whiten="unit-variance",
                 fun="logcosh", fun_args=None, max_iter=200, tol=1e-4, w_init=None,
                 whiten_solver="svd", n_init=1, random_state=None):
        self._store_init_args(locals())

    # -- validation -----------------------------------------------------------------------

    def _alpha(self) -> float:
        args = dict(self.fun_args or {})
        unknown = set(args) - {"alpha"}
        if unknown:
            raise InvalidParameterError(f"FastICA: fun_args accepts only 'alpha'; got keys "
                                        f"{sorted(unknown)}.")
        alpha = args.get("alpha", 1.0)
        if args and self.fun != "logcosh":
            raise InvalidParameterError(
                f"FastICA: fun_args {args} applies to fun='logcosh' only; got "
                f"fun={self.fun!r}. Drop fun_args.")
        if alpha not in Interval(float, 1.0, 2.0):
            raise InvalidParameterError(
                f"FastICA: fun_args['alpha'] must be a number in [1, 2]; got "
                f"{alpha!r}.")
        return float(alpha)

    def _n_sources(self, n_samples: int, n_features: int) -> int:
        M = self.n_components
        if not self.whiten:
            if M not in (None, n_features):
                raise InvalidParameterError(
                    f"FastICA: with whiten=False the unmixing is square, so "
                    f"n_components must be None or n_features={n_features}; got "
                    f"{M}. Use whiten='unit-variance' to reduce the dimension.")
            return n_features
        if n_samples < 2:
            raise InvalidInputError(f"FastICA needs at least 2 samples to centre and whiten the "
                                    f"data; got n_samples={n_samples}.")
        if M is None:
            return min(n_samples, n_features)
        if M > n_features or M > n_samples:
            raise InvalidParameterError(
                f"FastICA: n_components={M} must be <= min(n_samples, "
                f"n_features) = {min(n_samples, n_features)}: whitening keeps at "
                f"most that many directions. Use fewer components.")
        return M

    def _initial_unmixings(self, M: int, rng: np.random.Generator):
        if self.w_init is None:
            return [rng.standard_normal((M, M)) for _ in range(self.n_init)]
        if self.n_init != 1:
            raise InvalidParameterError(
                f"FastICA: w_init fixes the start, so n_init must be 1; got "
                f"n_init={self.n_init}.")
        w_init = np.asarray(self.w_init, dtype=np.float64)
        if w_init.shape != (M, M) or not np.isfinite(w_init).all():
            raise InvalidParameterError(
                f"FastICA: w_init must be a finite ({M}, {M}) array (n_components"
                f" squared); got shape {w_init.shape}.")
        return [w_init]

    # -- fitting --------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Find the unmixing of X : (n_samples, n_features) by FastICA; returns self."""
        self._validate_params()
        alpha = self._alpha()
        X = self._validate_X(X, reset=True)
        n, D = X.shape
        M = self._n_sources(n, D)
        starts = self._initial_unmixings(M, as_generator(self.random_state))
        if self.whiten:
            mean = X.mean(axis=0)
            Xc = X - mean
            variances, axes = ik.pca_whitening(Xc, self.whiten_solver)
            _check_rank(variances, M, max(n, D), X.dtype)
            K = (axes[:, :M] / np.sqrt(variances[:M])).T  # Λ_M^{-1/2} U_M^T : (M, D)
            X1 = K @ Xc.T  # whitened, (M, n)
        else:
            mean, K, variances = np.zeros(D, X.dtype), None, None
            X1 = X.T
        solve = ik.ica_parallel if self.algorithm == "parallel" else ik.ica_deflation
        best = None
        for w_init in starts:
            W, changes, converged = solve(X1, w_init, self.fun, alpha, self.tol, self.max_iter)
            S = W @ X1
            W = W / S.std(axis=1)[:, None]  # unit-variance sources (a round-off correction)
            fit_ll = float(ik.log_source_prior(S).sum(axis=0, dtype=np.float64).mean())
            if best is None or fit_ll > best[0]:
                best = (fit_ll, W, changes, converged)
        _, W, changes, converged = best
        if not converged:
            warnings.warn(f"FastICA did not converge in max_iter={self.max_iter} iterations "
                          f"(tol={self.tol}). Increase max_iter or tol, or try another fun.",
                          ConvergenceWarning, stacklevel=2)
        self.mean_ = mean
        self.unmixing_ = W.astype(X.dtype)
        self.whitening_ = None if K is None else K.astype(X.dtype)
        self.components_ = (W if K is None else W @ K).astype(X.dtype)
        self.mixing_ = np.linalg.pinv(self.components_.astype(np.float64)).astype(X.dtype)
        if K is None:
            self.explained_variance_ = None
            self.noise_variance_ = 0.0
        else:
            self.explained_variance_ = variances[:M].astype(X.dtype)
            self.noise_variance_ = _noise_variance(variances, M)
        self.n_iter_ = len(changes)
        self.converged_ = bool(converged)
        self.history_ = np.asarray(changes)
        self.log_likelihood_ = float(np.mean(self._log_density(X), dtype=np.float64))
        return self

    # -- inference ------------------------------------------------------------------------

    def transform(self, X):
        """The sources s = components_ (x - mean_) : (n_samples, M)."""
        X = self._validate_X(X, reset=False)
        return (X - self.mean_) @ self.components_.T

    @property
    def _n_features_out(self) -> int:
        """transform gives one column per source: M."""
        return self.components_.shape[0]

    def inverse_transform(self, S):
        """Back to data space, x = mixing_ s + mean_ : (n_samples, n_features).

        S : (n_samples, M). With M < D this is the projection on the kept subspace."""
        check_is_fitted(self)
        S = np.asarray(S)
        if S.ndim != 2 or S.shape[1] != self.components_.shape[0]:
            raise InvalidInputError(
                f"S must be 2-D with {self.components_.shape[0]} columns (one per "
                f"source); got shape {S.shape}.")
        return S @ self.mixing_.T + self.mean_

    def posterior(self, X):
        raise NotImplementedError(
            "FastICA's sources are a deterministic function of x (p(s | x) is a point mass at "
            "components_ (x - mean_)); use transform(X).")

    def score_samples(self, X):
        """log p(x) : (n_samples,) under the maximum-likelihood view (module docstring)."""
        return self._log_density(self._validate_X(X, reset=False))

    def _log_density(self, X):
        """log p(x) of validated X : (n_samples, n_features) (validated once: fit calls it
        on the array it has already checked)."""
        Xc = (X - self.mean_).astype(np.float64)
        S = Xc @ self.components_.T.astype(np.float64)
        log_p = ik.log_source_prior(S).sum(axis=1)
        if self.whitening_ is None:  # square unmixing of white data: log |det components_|
            return (log_p + np.linalg.slogdet(self.components_.astype(np.float64))[1]).astype(
                X.dtype)
        ev = self.explained_variance_.astype(np.float64)
        log_p += np.linalg.slogdet(self.unmixing_.astype(np.float64))[1] - 0.5 * np.log(ev).sum()
        D, M = Xc.shape[1], S.shape[1]
        if M < D:  # Gaussian noise on the discarded directions: r = x̃ - U_M U_M^T x̃
            U = self.whitening_.T.astype(np.float64) * np.sqrt(ev)  # U_M : (D, M)
            R = Xc - (Xc @ U) @ U.T
            sigma2 = self.noise_variance_
            log_p -= 0.5 * ((D - M) * (LOG_2PI + math.log(sigma2))
                            + np.einsum("nd,nd->n", R, R) / sigma2)
        return log_p.astype(X.dtype)

    def sample(self, n_samples=1, random_state=None):
        """Draw (X, S): sources S : (n, M) from the prior, X = S mixing_^T + mean_ (+ the
        isotropic noise on the discarded directions when M < D). X : (n, D)."""
        check_is_fitted(self)
        check_n_samples(n_samples)
        rng = as_generator(random_state)
        M, D = self.components_.shape
        S = ik.sample_source_prior(rng, (n_samples, M))
        X = S @ self.mixing_.T.astype(np.float64) + self.mean_
        if M < D:
            U = self.whitening_.T.astype(np.float64) * np.sqrt(self.explained_variance_)
            E = math.sqrt(self.noise_variance_) * rng.standard_normal((n_samples, D))
            X += E - (E @ U) @ U.T
        return X.astype(self.components_.dtype), S.astype(self.components_.dtype)

    def _n_parameters(self) -> int:
        """D (mean) + D M (mixing) + 1 (noise variance, when M < D)."""
        M, D = self.components_.shape
        return D + D * M + int(M < D)


def _check_rank(variances: np.ndarray, M: int, size: int, dtype) -> None:
    """Whitening divides by √λ_M: the M-th PCA variance must be clearly non-zero (numpy's
    matrix_rank rule on the singular values, √λ_i > √λ_1 max(n, D) eps)."""
    floor = variances[0] * (size * np.finfo(dtype).eps) ** 2
    rank = int(np.sum(variances > floor))
    if rank < M:
        raise InvalidInputError(
            f"FastICA: X has only {rank} directions with non-zero variance (constant or "
            f"linearly dependent columns), fewer than n_components={M}; whitening would divide "
            f"by zero. Use n_components <= {rank}, or remove the constant/duplicated columns.")


def _noise_variance(variances: np.ndarray, M: int) -> float:
    """σ² = mean of the discarded PCA variances (0 when none are discarded), floored at
    1e-12 λ_1 so the density stays finite on exactly low-rank data."""
    if M == len(variances):
        return 0.0
    return float(max(np.mean(variances[M:], dtype=np.float64), 1e-12 * float(variances[0])))
