"""Pure kernels of independent component analysis: whitening, FastICA, the source prior.

Model (noise-free, square after whitening): x = A s + μ with independent, non-Gaussian,
unit-variance sources s_i. FastICA (Hyvärinen & Oja 2000) first whitens,

    x̃ = K (x - μ),   K = Λ_M^{-1/2} U_M^T      (PCA whitening: Cov[x̃] = I_M)

so that the unmixing that remains is a rotation W (W W^T = I), then finds the rows w of W
as fixed points of the negentropy approximation J(w) ∝ (E[G(w^T x̃)] - E[G(ν)])²:

    w ← E[x̃ g(w^T x̃)] - E[g'(w^T x̃)] w            (one Newton step, g = G')

followed by a decorrelation: symmetric, W ← (W W^T)^{-1/2} W ("parallel"), or Gram-Schmidt
against the rows already found ("deflation").

Contrasts g (G in brackets): "logcosh" g(u) = tanh(α u) [log cosh(α u) / α], 1 <= α <= 2;
"exp" g(u) = u exp(-u²/2) [-exp(-u²/2)]; "cube" g(u) = u³ [u⁴/4] (kurtosis).

Arrays are component-major here: whitened data X1 : (M, n_samples), as in the algorithm.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

FUNS = ("logcosh", "exp", "cube")
ALGORITHMS = ("parallel", "deflation")
WHITEN_SOLVERS = ("svd", "eigh")

# -- the contrasts: (g(U), mean over samples of g'(U)) for U : (M, n) ---------------------


def logcosh(U: np.ndarray, alpha: float = 1.0):
    """g(u) = tanh(α u), g'(u) = α (1 - tanh²(α u)). U : (M, n) -> ((M, n), (M,))."""
    G = np.tanh(alpha * U)
    return G, alpha * (1.0 - np.mean(G * G, axis=-1))


def exp(U: np.ndarray, alpha: float = 1.0):
    """g(u) = u exp(-u²/2), g'(u) = (1 - u²) exp(-u²/2). U : (M, n) -> ((M, n), (M,))."""
    U2 = U * U
    E = np.exp(-0.5 * U2)
    return U * E, np.mean((1.0 - U2) * E, axis=-1)


def cube(U: np.ndarray, alpha: float = 1.0):
    """g(u) = u³, g'(u) = 3 u². U : (M, n) -> ((M, n), (M,))."""
    U2 = U * U
    return U2 * U, 3.0 * np.mean(U2, axis=-1)


CONTRASTS = {"logcosh": logcosh, "exp": exp, "cube": cube}


def contrast(fun, fun_args: dict):
    """The contrast as one function U -> (g(U), mean over the last axis of g'(U)), for U :
    (M, n) (parallel) or (n,) (deflation): a name of CONTRASTS with fun_args {"alpha": a}
    ("logcosh" only), or a callable in scikit-learn's convention, fun(U, **fun_args)."""
    if callable(fun):
        return lambda U: fun(U, **fun_args)
    alpha = float(fun_args.get("alpha", 1.0))
    named = CONTRASTS[fun]
    return lambda U: named(U, alpha)


# -- whitening ----------------------------------------------------------------------------


def pca_whitening(Xc: np.ndarray, solver: str):
    """The principal axes of centred data, for whitening.

    Xc : (n_samples, D) centred. Returns (variances (D,), axes (D, D)): eigenvalues of the
    biased covariance S = Xc^T Xc / n in decreasing order, and their unit eigenvectors as
    columns, with the sign fixed so that each axis has a positive first coordinate
    (scikit-learn's convention). "svd": Xc = U Σ V^T, λ = σ² / n (accurate; O(n D²));
    "eigh": eigendecomposition of Xc^T Xc (one GEMM, faster when n >> D, but it squares
    the condition number).
    """
    n = Xc.shape[0]
    if solver == "svd":
        _, sigma, Vt = np.linalg.svd(Xc, full_matrices=False)
        variances, axes = sigma**2 / n, Vt.T
    else:
        lam, vecs = np.linalg.eigh(Xc.T @ Xc)
        order = np.argsort(lam)[::-1]
        variances, axes = np.maximum(lam[order], 0.0) / n, vecs[:, order]
    D = Xc.shape[1]
    if variances.size < D:  # n < D: the other directions carry no variance
        variances = np.concatenate([variances, np.zeros(D - variances.size, variances.dtype)])
    axes = axes * np.where(axes[0] < 0, -1.0, 1.0).astype(axes.dtype)
    return variances, axes


def numerical_rank(variances: np.ndarray, solver: str, size: int, dtype,
                   scale: float = 0.0) -> int:
    """How many PCA variances : (D,) (decreasing) are distinguishable from 0, with numpy's
    matrix_rank rule for each solver's round-off (size = max(n_samples, D)):
    "svd" has singular values accurate to σ_1 size eps, so λ_i > λ_1 (size eps)²;
    "eigh" has the eigenvalues of X^T X accurate only to ||X^T X|| size eps (squaring
    the condition number), so λ_i > λ_1 size eps. The data themselves are rounded to
    eps |x| (and so is their mean), so a direction of no variance can show about D (eps |x|)²
    whatever λ_1 is: λ_i must also exceed D (4 eps)² scale, scale = max_d mean_n x_nd² of
    the raw data (constant data then have rank 0, not the rank of their round-off)."""
    eps = np.finfo(dtype).eps
    relative = variances[0] * ((size * eps) ** 2 if solver == "svd" else size * eps)
    floor = max(relative, scale * len(variances) * (4 * eps) ** 2)
    return int(np.sum(variances > floor))


def centre(X: np.ndarray):
    """(mean (D,), X - mean (n, D)) of X : (n, D) by the corrected two-pass algorithm
    (Chan, Golub & LeVeque): the mean of the first residuals corrects the rounding of the
    first mean, so that a constant column centres to (almost exactly) 0. Both means are
    accumulated in float64; mean and X - mean are in X's dtype."""
    mean = X.mean(axis=0, dtype=np.float64).astype(X.dtype)
    Xc = X - mean
    correction = Xc.mean(axis=0, dtype=np.float64).astype(X.dtype)
    Xc -= correction
    return mean + correction, Xc


# -- the fixed-point iterations -----------------------------------------------------------


def sym_decorrelation(W: np.ndarray) -> np.ndarray:
    """(W W^T)^{-1/2} W : the orthogonal matrix nearest W. W : (M, M).

    The result is invariant to W -> c W, so W is first divided by the power of two nearest
    its largest entry (exactly, in floating point): W W^T cannot overflow then (the
    fixed-point step on unwhitened data at 1e49 is ~1e196, its square beyond float64).
    A W singular to working precision gets its polar factor (the orthogonal matrix
    nearest it) from an SVD."""
    largest = np.max(np.abs(W), initial=0.0)
    if np.isfinite(largest) and largest > 0:
        W = np.ldexp(W, -int(np.frexp(largest)[1]))
    s, u = np.linalg.eigh(W @ W.T)
    if s[-1] > 0 and s[0] <= np.finfo(W.dtype).eps * len(W) * s[-1]:
        # W singular to working precision (rows parallel: the step of data far from white),
        # where (W W^T)^{-1/2} is round-off: the polar factor U V^T of W = U Σ V^T is the
        # same matrix where that is defined, and orthogonal always
        left, _, right = np.linalg.svd(W)
        return left @ right
    s = np.clip(s, np.finfo(W.dtype).tiny, None)
    return (u * (1.0 / np.sqrt(s))) @ u.T @ W


def _vanished(step: np.ndarray) -> bool:
    """Whether a row of the Newton step : (M, M) is exactly 0 (the contrast underflowed, as
    exp(-u²/2) does for |u| >~ 39 on data far from white): sym_decorrelation of it would
    not be orthogonal (0 for a zero step, whose log |det| is -inf)."""
    return bool(np.any(np.all(step == 0, axis=1)))


class ICAResult(NamedTuple):
    """One FastICA run: W : (M, M) the unmixing of the whitened data; changes, the change
    of every iteration (all rows in order for "deflation"); n_iter, the iterations run
    (for "deflation" the most any row took, as scikit-learn counts); converged."""

    W: np.ndarray
    changes: list
    n_iter: int
    converged: bool


def ica_parallel(X1, w_init, g, tol, max_iter) -> ICAResult:
    """Symmetric FastICA. X1 : (M, n) whitened; w_init : (M, M); g the contrast
    (`contrast`). The change is max_i |1 - |<w_i new, w_i old>||: 0 when no row turned.
    A Newton step that overflows ends the run, its W non-finite."""
    W = sym_decorrelation(w_init.astype(X1.dtype))
    n = X1.shape[1]
    changes = []
    for _ in range(max_iter):
        G, g_prime = g(W @ X1)
        step = (G @ X1.T) / n - g_prime[:, None] * W
        if not np.all(np.isfinite(step)):  # overflow (data far from white): the caller
            return ICAResult(step, changes, len(changes), False)  # reports it
        if _vanished(step):  # underflow (e.g. "exp" on data far from white): no direction
            return ICAResult(W, changes, len(changes), False)  # to turn to; keep W
        W_new = sym_decorrelation(step)
        changes.append(float(np.max(np.abs(np.abs(np.einsum("ij,ij->i", W_new, W)) - 1))))
        W = W_new
        if changes[-1] < tol:
            return ICAResult(W, changes, len(changes), True)
    return ICAResult(W, changes, len(changes), False)


def unit_orthogonal(w: np.ndarray, found: np.ndarray) -> np.ndarray:
    """w : (M,) made orthogonal to the orthonormal rows found : (j, M) (Gram-Schmidt) and
    normalized. When only round-off is left (the Newton step of degenerate data, such as
    constant white data, vanishes or falls in their span) a unit vector orthogonal to them
    instead, so that a row is never 0 / 0. The result is invariant to w -> c w, so w is
    first divided by the power of two nearest its largest entry (exactly): its norm
    cannot overflow then (a step of ~1e196 on unwhitened data at 1e49 had norm inf, and
    w / inf = 0 was returned as a row of zeros)."""
    largest = np.max(np.abs(w), initial=0.0)
    if np.isfinite(largest) and largest > 0:
        w = np.ldexp(w, -int(np.frexp(largest)[1]))
    size = np.linalg.norm(w)
    w = w - found.T @ (found @ w)
    norm = np.linalg.norm(w)
    if norm > 16 * np.finfo(w.dtype).eps * size or not np.isfinite(norm):
        return w / norm  # an overflowed step stays non-finite: the caller reports it
    complement = np.linalg.svd(np.vstack([found, np.zeros_like(w)]))[2]  # (M, M)
    return complement[len(found)]


def ica_deflation(X1, w_init, g, tol, max_iter) -> ICAResult:
    """Deflationary FastICA: one row at a time, each kept orthogonal to those found before
    it (Gram-Schmidt). X1 : (M, n) whitened; w_init : (M, M); g the contrast, called on
    the projection w^T X1 : (n,) as scikit-learn does. Converged: every row converged."""
    M, n = X1.shape
    W = np.zeros((M, M), dtype=X1.dtype)
    changes, counts, converged = [], [], True
    for j in range(M):
        w = w_init[j].astype(X1.dtype)
        w /= np.linalg.norm(w)
        start = len(changes)
        for _ in range(max_iter):
            G, g_prime = g(w @ X1)
            w_new = unit_orthogonal((X1 @ G) / n - np.mean(g_prime) * w, W[:j])
            changes.append(float(abs(abs(w_new @ w) - 1)))
            w = w_new
            if changes[-1] < tol:
                break
        else:
            converged = False
        counts.append(len(changes) - start)
        W[j] = w
    return ICAResult(W, changes, max(counts), converged)


# -- the maximum-likelihood view: the source prior ----------------------------------------


def log_source_prior(S: np.ndarray) -> np.ndarray:
    """log p(s) of the unit-variance hyperbolic secant density, elementwise.

        p(s) = ½ sech(π s / 2),   ∫ p = 1,   E[s] = 0,   Var[s] = 1,   excess kurtosis 2

    (super-Gaussian; scipy.stats.hypsecant with scale 2/π). Stably,
    log cosh(u) = |u| + log1p(exp(-2|u|)) - log 2, so log p = -|u| - log1p(exp(-2|u|)).
    """
    u = np.abs((0.5 * math.pi) * S)
    return -u - np.log1p(np.exp(-2.0 * u))


def sample_source_prior(rng: np.random.Generator, shape) -> np.ndarray:
    """Draws from p(s) = ½ sech(π s / 2) by inverting its CDF F(s) = (2/π) arctan(e^{πs/2}):
    s = (2/π) log tan(π u / 2), u ~ U(0, 1)."""
    u = rng.uniform(np.finfo(float).tiny, 1.0, size=shape)
    return (2.0 / math.pi) * np.log(np.tan(0.5 * math.pi * u))
