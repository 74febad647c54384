"""Independent component analysis: FastICA, with a maximum-likelihood density.

    x = A s + μ,   s_1 .. s_M independent, non-Gaussian, unit variance

FastICA (see `_ica_kernels`) whitens x by PCA and finds the rotation W that makes the
whitened data as non-Gaussian as possible; the unmixing is `components_` = W K and the
mixing `mixing_` = A its pseudo-inverse. Names follow scikit-learn's FastICA, and so do
`fastica` (the function, with its return tuple), the whitening options, callable
contrasts and the warnings' categories and wording. Low-rank data: whitening divides by
√λ_i, so the number of sources is capped by the numerical rank of the centred data, judged
on the round-off scale of the whitening solver and of the data's own magnitude
(`_ica_kernels.numerical_rank`); data with no variance at all (every row the same) have no
source and are an error, which names the constant columns.

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
from collections.abc import Callable
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

__all__ = ["FastICA", "amari_index", "fastica"]

#: the whitening options, as scikit-learn names them
WHITEN = ("unit-variance", "arbitrary-variance", False)
ARRAY_OR_NONE = [InstanceOf(np.ndarray, list, tuple, type(None), description="an array or None")]


@register_model
class FastICA(LatentModel):
    """FastICA: blind source separation by maximizing non-Gaussianity.

    Parameters
    ----------
    n_components : int or None, number of sources M (M <= min(n_samples, n_features));
        None: all, min(n_samples, n_features), reduced to the numerical rank of the centred
        data with a UserWarning ("There are some small singular values") when it is
        rank-deficient (whitening cannot scale a zero-variance direction to unit variance).
        An explicit M above the rank, or data of rank 0 (constant), is an error.
    algorithm : {"parallel", "deflation"}: all rows at once with symmetric decorrelation,
        or one row at a time with Gram-Schmidt.
    whiten : {"unit-variance", "arbitrary-variance", False}: PCA-whiten the centred data;
        "unit-variance" then rescales the unmixing to unit-variance sources,
        "arbitrary-variance" keeps scikit-learn's scale (the rotation found applied to its
        whitening, sources of variance about 1 / n_samples); False: X is taken as already
        white (neither centred nor rescaled; n_components is ignored with a UserWarning;
        data far from white can overflow the iterations, an error).
    fun : {"logcosh", "exp", "cube"} or callable, the contrast g (see `_ica_kernels`); a
        callable fun(x, **fun_args) returns (g(x), the mean of g'(x) over the last axis),
        as in scikit-learn.
    fun_args : None or a dict: {"alpha": a} with 1 <= a <= 2 for "logcosh"; the keyword
        arguments of a callable fun; none for "exp" and "cube".
    max_iter : int, fixed-point iterations (per component for "deflation").
    tol : float, stop when every row's change 1 - |<w_new, w_old>| is below it.
    w_init : (M, M) non-singular array or None (then standard normal draws).
    whiten_solver : {"svd", "eigh"}: SVD of the data (accurate) or eigendecomposition of
        X^T X (faster when n_samples >> n_features; it squares the condition number, so its
        rank is judged on that coarser scale, see `_ica_kernels.numerical_rank`).
    n_init : int, random initializations; the one with the highest training
        log-likelihood (the maximum-likelihood view) is kept. Must be 1 with w_init.
    random_state : seed, Generator, RandomState or None.

    Attributes
    ----------
    components_ (M, D) unmixing, s = components_ (x - mean_); mixing_ (D, M) its
    pseudo-inverse, x ≈ mixing_ s + mean_; mean_ (D,) (zeros with whiten=False);
    whitening_ (M, D) = Λ_M^{-1/2} U_M^T (the notes' whitening; scikit-learn's whitening_
    is this divided by √n_samples), None when whiten=False; unmixing_ (M, M) the matrix
    acting on whitened data (components_ = unmixing_ whitening_); explained_variance_ (M,)
    the kept PCA variances λ_i; noise_variance_ σ² (0 when M = D); n_iter_ (iterations
    run; for "deflation" the most any row took, as scikit-learn counts), converged_,
    history_ (the change per fixed-point iteration, all rows in order for "deflation"; not
    a likelihood), log_likelihood_ (mean training log-likelihood), n_features_in_.
    """

    _allow_nan: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(int, 1, None), Options(None)],
        "algorithm": [Options(*ik.ALGORITHMS)],
        "whiten": [Options(*WHITEN)],
        "fun": [Options(*ik.FUNS), InstanceOf(Callable, description="a callable")],
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

    def _fun_args(self) -> dict:
        """fun_args checked against fun: 'alpha' in [1, 2] for "logcosh" only; anything for
        a callable (its keyword arguments)."""
        args = dict(self.fun_args or {})
        if callable(self.fun) or not args:
            return args
        if self.fun != "logcosh":
            raise InvalidParameterError(
                f"FastICA: fun_args {args} applies to fun='logcosh' only; got "
                f"fun={self.fun!r}. Drop fun_args.")
        unknown = set(args) - {"alpha"}
        if unknown:
            raise InvalidParameterError(f"FastICA: fun_args accepts only 'alpha'; got keys "
                                        f"{sorted(unknown)}.")
        if args["alpha"] not in Interval(float, 1.0, 2.0):
            raise InvalidParameterError(
                f"FastICA: fun_args['alpha'] = {args['alpha']!r} is out of range: alpha "
                "must be in [1,2] (the slope of log cosh).")
        return args

    def _n_sources(self, n_samples: int, n_features: int, rank: int, note: str = "") -> int:
        """M from n_components, the data's size and its numerical rank (module doc);
        note : what the error adds about X's columns (constant ones, ones of far smaller
        scale: `_constant_note`, `_faint_note`)."""
        M = self.n_components
        if not self.whiten:
            if M not in (None, n_features):
                warnings.warn(f"Ignoring n_components with whiten=False. FastICA's unmixing "
                              f"of white data is square: {n_features} sources, not {M}. Use "
                              "whiten='unit-variance' to reduce the dimension.", UserWarning,
                              stacklevel=5)
            return n_features
        largest = min(n_samples, n_features)
        if M is None:
            if rank < largest:
                warnings.warn(
                    f"There are some small singular values: the centred X has only {rank} "
                    f"directions with non-zero variance (whiten_solver={self.whiten_solver!r})"
                    f", so FastICA keeps {rank} sources, not min(n_samples, n_features) = "
                    f"{largest}. Pass n_components <= {rank} to silence this.", UserWarning,
                    stacklevel=5)
            return min(rank, largest)
        if M > largest:
            raise InvalidParameterError(
                f"FastICA: n_components={M} must be <= min(n_samples, n_features) = "
                f"{largest}: whitening keeps at most that many directions. Use fewer "
                "components.")
        if M > rank:
            raise InvalidInputError(
                f"FastICA: X has only {rank} directions with non-zero variance (constant, "
                f"linearly dependent, or far smaller-scale columns), fewer than "
                f"n_components={M}; whitening would divide by zero.{note} Use n_components "
                f"<= {rank}, or remove the constant/duplicated columns.")
        return M

    def _initial_unmixings(self, M: int, rng: np.random.Generator, dtype):
        if self.w_init is None:
            return [rng.standard_normal((M, M)).astype(dtype) for _ in range(self.n_init)]
        if self.n_init != 1:
            raise InvalidParameterError(
                f"FastICA: w_init fixes the start, so n_init must be 1; got "
                f"n_init={self.n_init}.")
        w_init = np.asarray(self.w_init, dtype=np.float64)
        if w_init.shape != (M, M):
            raise InvalidParameterError(
                f"FastICA: w_init has invalid shape {w_init.shape} -- should be {(M, M)} "
                "(n_components x n_components).")
        if not np.isfinite(w_init).all():
            raise InvalidParameterError("FastICA: w_init must be finite; it has NaN or inf.")
        rank = np.linalg.matrix_rank(w_init)
        if rank < M:  # its rows are decorrelated (parallel) or normalized (deflation)
            raise InvalidParameterError(
                f"FastICA: w_init must be non-singular (full rank {M}): its rows are the "
                f"starting unmixing directions, but it has rank {rank}. Pass an invertible "
                "matrix, e.g. a random normal one, or w_init=None.")
        return [w_init]

    def _contrast(self, X1: np.ndarray):
        """The contrast g (`_ica_kernels.contrast`); a callable fun is tried once on a few
        columns of X1 : (M, n) so that a wrong return is a clear error."""
        g = ik.contrast(self.fun, self._fun_args())
        if callable(self.fun):
            probe = X1[:, :8].copy() if self.algorithm == "parallel" else X1[0, :8].copy()
            _check_contrast_output(g, probe, self.fun)
        return g

    # -- fitting --------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Find the unmixing of X : (n_samples, n_features) by FastICA; returns self."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit, then the sources of X : (n_samples, M)."""
        return self._fit(X)

    def _whiten(self, X):
        """(mean (D,), K (M, D) or None, PCA variances (D,) or None, whitened X1 (M, n))."""
        n, D = X.shape
        if not self.whiten:
            self._n_sources(n, D, D)
            return np.zeros(D, X.dtype), None, None, X.T
        if n < 2:
            raise InvalidInputError(f"FastICA needs at least 2 samples to centre and whiten the "
                                    f"data; got n_samples={n}.")
        mean, Xc = ik.centre(X)
        variances, axes = ik.pca_whitening(Xc, self.whiten_solver)
        scale = float(np.max(np.einsum("nd,nd->d", X, X, dtype=np.float64))) / n
        rank = ik.numerical_rank(variances, self.whiten_solver, max(n, D), X.dtype, scale)
        constant = np.flatnonzero(np.ptp(X, axis=0) == 0).tolist()
        note = _constant_note(constant) + _faint_note(Xc, max(n, D))
        if rank == 0:
            raise InvalidInputError(
                "FastICA: X has no direction with non-zero variance (every row is the same, "
                f"up to round-off), so there is no independent component to find.{note}")
        M = self._n_sources(n, D, rank, note)
        K = (axes[:, :M] / np.sqrt(variances[:M])).T  # Λ_M^{-1/2} U_M^T : (M, D)
        return mean, K, variances, K @ Xc.T

    def _fit(self, X):
        """Fit on X : (n_samples, n_features); returns the training sources (n, M)."""
        self._validate_params()
        X = self._validate_X(X, reset=True)
        mean, K, variances, X1 = self._whiten(X)
        g = self._contrast(X1)
        M = X1.shape[0]
        starts = self._initial_unmixings(M, as_generator(self.random_state), X.dtype)
        run, unit = self._best_run(X1, starts, g)
        if not run.converged:
            warnings.warn("FastICA did not converge. Consider increasing tolerance or the "
                          f"maximum number of iterations (max_iter={self.max_iter}, "
                          f"tol={self.tol}), or try another fun.", ConvergenceWarning,
                          stacklevel=3)
        if self.whiten == "unit-variance":
            W = unit
        elif self.whiten == "arbitrary-variance":  # scikit-learn's scale: its K = ours / √n
            W = run.W / math.sqrt(X.shape[0])
        else:  # white data as given: the rotation, unscaled
            W = run.W
        self._store(X, mean, K, variances, W, run)
        return (X - mean) @ self.components_.T

    def _best_run(self, X1, starts, g):
        """(ICAResult, its unmixing rescaled to unit-variance sources) of the start whose
        sources have the highest log-likelihood under the source prior. X1 : (M, n)."""
        solve = ik.ica_parallel if self.algorithm == "parallel" else ik.ica_deflation
        best = None
        for w_init in starts:
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                run = solve(X1, w_init, g, self.tol, self.max_iter)
                sources = run.W @ X1 if np.all(np.isfinite(run.W)) else run.W
                spread = sources.std(axis=1) if np.all(np.isfinite(sources)) else sources
            if not (np.all(np.isfinite(run.W)) and np.all(np.isfinite(spread))):
                raise InvalidInputError(
                    "FastICA diverged: the fixed-point iterations overflowed to inf/NaN. "
                    + (f"whiten=False takes X as white, but its largest |value| is "
                       f"{float(np.max(np.abs(X1))):.3g}: whiten=False needs centred data "
                       "with identity covariance. Use whiten='unit-variance', or whiten X "
                       "first." if not self.whiten else
                       f"Try another fun than {self.fun!r}."))
            # unit-variance sources; the spread is 1 for whitened X, and 0 only for a source
            # of constant data given as white (whiten=False), which is left unscaled
            unit = run.W / np.where(spread > 0, spread, 1.0)[:, None]
            fit_ll = float(ik.log_source_prior(unit @ X1).sum(axis=0, dtype=np.float64).mean())
            if best is None or fit_ll > best[0]:
                best = (fit_ll, run, unit)
        return best[1], best[2]

    def _store(self, X, mean, K, variances, W, run):
        """The fitted attributes from one run (module and class docstrings)."""
        M = W.shape[0]
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
        self.n_iter_ = run.n_iter
        self.converged_ = bool(run.converged)
        self.history_ = np.asarray(run.changes)
        self.log_likelihood_ = float(np.mean(self._log_density(X), dtype=np.float64))

    def save(self, path) -> None:
        """Save the fitted model (`latentkit.io`); a callable fun cannot be stored without
        pickle, so such a model is refused rather than written unloadable."""
        if callable(self.fun):
            raise InvalidParameterError(
                f"FastICA: fun={self.fun!r} is a function, which a model file cannot hold (no "
                "pickle); the file could not be loaded. Fit with a named fun ('logcosh', "
                "'exp', 'cube') to save the model.")
        super().save(path)

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


def fastica(X, n_components=None, *, algorithm="parallel", whiten="unit-variance",
            fun="logcosh", fun_args=None, max_iter=200, tol=1e-4, w_init=None,
            whiten_solver="svd", random_state=None, return_X_mean=False,
            compute_sources=True, return_n_iter=False):
    """FastICA as a function, with scikit-learn's signature and return values.

    X : (n_samples, n_features); the other parameters are FastICA's. Returns the tuple
    (K, W, S) followed by X_mean when return_X_mean and n_iter when return_n_iter:
    K : (M, n_features) scikit-learn's pre-whitening (FastICA.whitening_ / √n_samples),
    None when whiten=False; W : (M, M) the unmixing of K's output, so that
    S = (X - X_mean) K^T W^T (W K = FastICA.components_); S : (n_samples, M) the sources,
    None unless compute_sources; X_mean : (n_features,), None when whiten=False; n_iter :
    FastICA.n_iter_.
    """
    for name, flag in (("return_X_mean", return_X_mean), ("compute_sources", compute_sources),
                       ("return_n_iter", return_n_iter)):
        if not isinstance(flag, bool | np.bool_):
            raise InvalidParameterError(f"fastica: {name} must be True or False; got {flag!r}.")
    est = FastICA(n_components, algorithm=algorithm, whiten=whiten, fun=fun,
                  fun_args=fun_args, max_iter=max_iter, tol=tol, w_init=w_init,
                  whiten_solver=whiten_solver, random_state=random_state)
    S = est._fit(X)
    if est.whiten:
        root_n = math.sqrt(len(S))
        K = (est.whitening_ / root_n).astype(est.whitening_.dtype)
        W = (est.unmixing_ * root_n).astype(est.unmixing_.dtype)
        X_mean = est.mean_
    else:
        K, W, X_mean = None, est.unmixing_, None
    returned = (K, W, S if compute_sources else None)
    if return_X_mean:
        returned += (X_mean,)
    if return_n_iter:
        returned += (est.n_iter_,)
    return returned


def _check_contrast_output(g, probe: np.ndarray, fun) -> None:
    """InvalidParameterError unless g(probe) is (g(u) : probe's shape, mean g'(u) over the
    last axis : probe.shape[:-1] or a scalar for 1-D probe), finite."""
    try:
        out = g(probe.copy())
    except (TypeError, ValueError) as error:
        raise InvalidParameterError(f"FastICA: fun={fun!r} failed on a ({probe.shape}) array "
                                    f"of projections: {error}") from error
    ok = isinstance(out, tuple) and len(out) == 2
    if ok:
        gu, g_prime = (np.asarray(o) for o in out)
        ok = gu.shape == probe.shape and g_prime.size == (
            1 if probe.ndim == 1 else probe.shape[0])
    if not ok:
        raise InvalidParameterError(
            f"FastICA: fun={fun!r} must return a tuple (g(x), mean of g'(x) over the last "
            f"axis), e.g. lambda x: (x**3, (3 * x**2).mean(axis=-1)); on an array of shape "
            f"{probe.shape} it returned {type(out).__name__}"
            f"{getattr(out, 'shape', '')}.")


def _faint_note(Xc: np.ndarray, size: int) -> str:
    """' Columns [...] vary, but ...' naming the columns of the centred Xc : (n, D) whose
    variance is non-zero but below the whitening's resolution next to the largest one
    (eps · max(n, D) times it: a column at 1e-150 beside one at 1e100), or ''."""
    variances = np.einsum("nd,nd->d", Xc, Xc, dtype=np.float64) / len(Xc)
    largest = float(np.max(variances, initial=0.0))
    faint = np.flatnonzero((variances > 0)
                           & (variances < np.finfo(Xc.dtype).eps * size * largest)).tolist()
    if not faint:
        return ""
    return (f" Columns {faint[:10]} of X vary, but on a scale float{Xc.dtype.itemsize * 8} "
            f"cannot resolve next to the largest column's (standard deviations down to "
            f"{math.sqrt(float(variances[faint].min())):.3g} against "
            f"{math.sqrt(largest):.3g}): standardize the columns first, e.g. with "
            "sklearn.preprocessing.StandardScaler.")


def _constant_note(constant: list) -> str:
    """' Column j of X is constant: ...' naming the constant columns, or ''."""
    if not constant:
        return ""
    if len(constant) == 1:
        return (f" Column {constant[0]} of X is constant: it has no independent component; "
                "drop it.")
    return (f" Columns {constant[:10]} of X are constant: they have no independent "
            "component; drop them.")


def _noise_variance(variances: np.ndarray, M: int) -> float:
    """σ² = mean of the discarded PCA variances (0 when none are discarded), floored at
    1e-12 λ_1 so the density stays finite on exactly low-rank data."""
    if M == len(variances):
        return 0.0
    return float(max(np.mean(variances[M:], dtype=np.float64), 1e-12 * float(variances[0])))
