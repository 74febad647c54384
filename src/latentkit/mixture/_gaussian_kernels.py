"""Pure kernels of the Gaussian mixture: records, complete-data densities and statistics,
and the M-step.

    p(x) = Σ_k π_k N(x; μ_k, Σ_k)

Every type-dependent step is a method of the covariance type's record (`_covariance`: full,
tied, diag, spherical; shapes of Σ and of the precision factors P with Λ = P P^T, P upper,
are listed there). Complete rows take the fast path: the exponential-family expansion
(`_gaussian_expfam`, one GEMM for all components) while it is accurate and cheap, else the
direct products ||(x - μ_k)^T P_k||². Rows with missing entries are handled in
`_gaussian_missing`; the EM family's init / E-step / M-step are in `_gaussian_em`.

All statistics are accumulated in coordinates shifted by a fixed vector (a data mean, the
EM state's `shift`), which keeps Σ r x x^T - N μ μ^T free of cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._linalg import LOG_2PI, SingularCovarianceError
from ..em import SufficientStats
from ..io import register_record
from . import _gaussian_expfam as ef
from ._covariance import CovarianceType

#: A variance (reg_covar included) at most ROUND_OFF times the raw second moment it is
#: computed from (Σ_n r_nk x_d² / N_k around the statistics' centre) is round-off, not a
#: property of the data: Σ_k = Σ r x x^T / N_k - μ_k μ_k^T cancels to ~n·ε of that moment
#: on identical rows (summation error), while a variance it resolves is far above it.
ROUND_OFF = 1024 * np.finfo(np.float64).eps

#: scikit-learn's words for a degenerate fit (users search for them); ours follow
ILL_DEFINED = ("Fitting the mixture model failed because some components have ill-defined "
               "empirical covariance (for instance caused by singleton or collapsed samples). "
               "Try to decrease the number of components, increase reg_covar, or scale the "
               "input data.")


class GaussianConfig(NamedTuple):
    """The validated hyper-parameters of one fit (not saved; rebuilt by `_em_config`)."""

    n_components: int
    covariance: CovarianceType
    reg_covar: float
    init_params: str
    weights_init: np.ndarray | None = None  # (K,)
    means_init: np.ndarray | None = None  # (K, D)
    precisions_cholesky_init: np.ndarray | None = None  # P of precisions_init, per type


@register_record
class GaussianMixtureState(NamedTuple):
    """What survives between iterations: the centre statistics are accumulated around.
    Fixed for the life of a fit (all statistics that are summed or blended share it)."""

    shift: np.ndarray  # (D,)


class GaussianParams(NamedTuple):
    """θ of a Gaussian mixture, in the coordinates the data are given in, with what the
    E-step derives from it once per M-step (params are never saved)."""

    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, D)
    covariances: np.ndarray  # shaped per covariance type
    precisions_cholesky: np.ndarray  # P, shaped as covariances
    covariance: CovarianceType
    # (D,) the centre the derived quantities below are computed in (the state's shift in
    # a fit, the mixture mean for inference)
    shift: np.ndarray
    max_const: float = 0.0  # max_k μ_k^T Λ_k μ_k (shifted): how far the farthest mean is
    natural: ef.NaturalForm | None = None  # natural weights, on the expansion path
    stacked: tuple | None = None  # the covariance type's precomputed direct-path factors


@register_record
@dataclass(frozen=True)
class GaussianMixtureStats(SufficientStats):
    """Σ over rows of r_nk, r_nk x_n and r_nk s(x_n) (shifted coordinates).

    n : rows; nk : (K,); sx : (K, D); sxx : per covariance type (see `_covariance`).
    """

    additive = ("n", "nk", "sx", "sxx")
    n: float
    nk: np.ndarray
    sx: np.ndarray
    sxx: np.ndarray


# -- densities of complete rows -----------------------------------------------------------


def log_joint_complete(X, params: GaussianParams, log_weights):
    """log π_k + log N(x_n; μ_k, Σ_k) for complete rows X : (n, D), component-major : (K, n),
    computed in X's dtype, with what `complete_stats` reuses: (log_joint, T, Xs).

    On the expansion path T : (F, n) holds the sufficient statistics and Xs is None; on the
    direct path (`uses_expansion` false, or the expansion would cancel:
    `expansion_is_accurate` false) the Mahalanobis terms are direct products and Xs : (n, D)
    is the shifted data (None when T already holds it). log_weights : (K,) log π (zeros for
    the bare densities).
    """
    K, D = params.means.shape
    covariance, shift = params.covariance, params.shift
    T = Xs = None
    if covariance.uses_expansion(D, K):
        T = ef.sufficient_statistics_t(X, shift, covariance)
        if ef.expansion_is_accurate(params.max_const, X.dtype):
            return ef.log_joint_expanded(T, params.natural, log_weights), T, None
        rows = ef.data_block(T, D).T
    else:
        Xs = rows = X - shift.astype(X.dtype)
    log_prob = log_gaussian_prob(rows, params.means - shift, params.precisions_cholesky,
                                 covariance, params.stacked)
    log_joint = np.ascontiguousarray(log_prob.T)
    log_joint += log_weights[:, None].astype(log_joint.dtype)
    return log_joint, T, Xs


def log_gaussian_prob(X, means, precisions_cholesky, covariance: CovarianceType,
                      stacked=None) -> np.ndarray:
    """log N(x_n; μ_k, Σ_k) for complete rows : (n, K), by the direct products
    ||(x - μ_k)^T P_k||² (the accurate fallback of `log_joint_complete`).

    X : (n, D); means : (K, D); precisions_cholesky : P per covariance type; stacked : the
    type's precomputed factors or None. Computed in X's dtype.
    """
    D = X.shape[1]
    P = precisions_cholesky.astype(X.dtype, copy=False)
    mu = means.astype(X.dtype, copy=False)
    maha, log_det = covariance.mahalanobis(X, mu, P, stacked)
    return -0.5 * (D * LOG_2PI + maha) + log_det


def full_covariances(params: GaussianParams) -> np.ndarray:
    """Σ_k as dense matrices (K, D, D), whatever the covariance type."""
    K, D = params.means.shape
    return params.covariance.dense(params.covariances, K, D)


# -- sufficient statistics of complete rows -----------------------------------------------


def complete_stats(X, shift, resp, covariance: CovarianceType, T=None, Xs=None):
    """(nk : (K,), sx : (K, D), sxx) from complete rows X : (n, D) and component-major
    resp : (K, n), in coordinates shifted by shift : (D,). `T` or `Xs` reuse what
    `log_joint_complete` built; the path (one GEMM over T, or per-component products)
    follows `uses_expansion`."""
    K, D = resp.shape[0], X.shape[1]
    if T is None and Xs is None:
        if covariance.uses_expansion(D, K):
            T = ef.sufficient_statistics_t(X, shift, covariance)
        else:
            Xs = X - shift.astype(X.dtype)
    if T is not None:
        return ef.statistics(T, resp, covariance, D)
    return direct_stats(Xs, resp, covariance)


def direct_stats(Xs, resp, covariance: CovarianceType):
    """(nk : (K,), sx : (K, D), sxx) by per-component products, Σ_n r_nk x x^T =
    (x ⊙ r_k)^T x: the path for full and tied covariances in many dimensions.
    Xs : (n, D) shifted; resp : (K, n)."""
    resp = resp.astype(Xs.dtype, copy=False)
    nk = resp.sum(axis=1, dtype=np.float64)
    sx = (resp @ Xs).astype(np.float64, copy=False)
    sxx = covariance.sxx_direct(Xs, resp)
    return nk, sx, sxx.astype(np.float64, copy=False)


# -- M-step -------------------------------------------------------------------------------


def estimate(stats: GaussianMixtureStats, shift, covariance: CovarianceType,
             reg_covar: float):
    """Maximize the expected complete-data log-likelihood given summed statistics.

    π_k = N_k / N; μ_k = Σ r x / N_k; Σ_k = Σ r x x^T / N_k - μ_k μ_k^T + reg_covar I
    (tied: pooled over components). Empty or collapsed components are re-seeded by
    splitting the heaviest component. Returns (params, re-seeded indices, message).
    shift : (D,) the centre of the statistics.
    """
    eps = 10 * np.finfo(np.float64).eps
    nk = stats.nk + eps
    means = stats.sx / nk[:, None]
    K, D = means.shape
    cov = covariance.estimate(nk, means, stats.sxx, reg_covar)
    weights = nk / stats.n
    # empty (N_k < 1) or collapsed (fewer samples than a nonsingular covariance needs: it
    # sits on a few points and only reg_covar keeps it positive definite). When the data
    # cannot support every component, collapse is unavoidable and only empties move.
    support = covariance.min_support(D)
    if stats.n < K * support:
        support = 1.0
    starved = np.flatnonzero(stats.nk < support)
    if not 0 < starved.size < K:
        starved = starved[:0]
    unresolved = unresolved_components(covariance, nk, means, stats.sxx, cov, shift)
    unresolved[starved] = False  # replaced by a split of a resolved component below
    if unresolved.any():
        raise ill_defined(covariance, reg_covar, "components "
                          f"{np.flatnonzero(unresolved).tolist()} have a variance that is zero "
                          "up to round-off")
    message = ""
    if starved.size:
        weights, means, cov, message = _reseed(starved, stats.nk, weights, means, cov,
                                               covariance, support)
    weights = weights / weights.sum()
    try:
        params = make_params(weights, means + shift, cov, covariance, shift)
    except SingularCovarianceError:
        raise ill_defined(covariance, reg_covar, "a covariance matrix is singular or not "
                          "positive definite") from None
    return params, tuple(int(k) for k in starved), message


def unresolved_components(covariance: CovarianceType, nk, means, sxx, cov,
                          shift=None) -> np.ndarray:
    """(K,) bool: components with a variance (a diagonal entry of Σ_k, reg_covar included)
    at most ROUND_OFF times the raw second moment it was computed from. nk : (K,); means :
    (K, D) shifted; sxx and cov shaped per covariance type."""
    K, D = means.shape
    raw = covariance.estimate(nk, np.zeros_like(means), sxx, 0.0)  # Σ r x x^T / N_k per type
    variances, scale = covariance.diagonal(cov, K, D), covariance.diagonal(raw, K, D)
    if shift is not None:
        # nor may a standard deviation be below the resolution of the values themselves
        # (ROUND_OFF |μ_kd|): around a centre that equals a constant column the raw moment
        # is as small as the variance (missing values then shrink it geometrically, never
        # to exactly 0), yet the data cannot resolve it
        scale = np.maximum(scale, ROUND_OFF * np.square(means + np.asarray(shift)))
    unresolved = np.any(variances <= ROUND_OFF * scale, axis=1)
    if covariance.name in ("full", "tied") and D > 1:
        # a full Σ_k may be singular with every diagonal entry resolved (rows on a line in
        # 2-D): the conditional variances Var[x_d | x_<d] (the squared Cholesky pivots) are
        # variances too, and must be resolved just the same
        unresolved |= np.any(_conditional_variances(covariance.dense(cov, K, D))
                             <= ROUND_OFF * scale, axis=1)
    return unresolved


def _conditional_variances(S: np.ndarray) -> np.ndarray:
    """Var[x_d | x_<d] : (K, D) of dense covariances S : (K, D, D), the squared diagonal of
    their Cholesky factors; 0 from the first pivot that is not positive on."""
    try:  # the usual case, one batched call
        return np.square(np.diagonal(np.linalg.cholesky(S), axis1=1, axis2=2))
    except np.linalg.LinAlgError:
        pass
    out = np.zeros(S.shape[:2])
    for k, S_k in enumerate(S):
        try:
            out[k] = np.square(np.diagonal(np.linalg.cholesky(S_k)))
        except np.linalg.LinAlgError:
            for d in range(S_k.shape[0]):  # the leading block that is positive definite
                try:
                    out[k, :d + 1] = np.square(np.diagonal(np.linalg.cholesky(S_k[:d + 1, :d + 1])))
                except np.linalg.LinAlgError:
                    break
    return out


def ill_defined(covariance: CovarianceType, reg_covar: float, what: str):
    """The error for a fit whose covariances are singular: scikit-learn's words, then which
    components, and the usual causes."""
    return SingularCovarianceError(
        f"{ILL_DEFINED} With covariance_type={covariance.name!r} and reg_covar={reg_covar:g}, "
        f"{what}: constant or duplicated columns, a cluster of identical rows, or float32 "
        "data cause this.")


def regularization_slack(nk, old: GaussianParams, new: GaussianParams,
                         reg_covar: float) -> float:
    """How far the M-step from `old` to `new` may lower Σ_n log p(x_n): a bound >= 0.

    With reg_covar = r the M-step does not maximize EM's Q(θ) but, exactly, the penalized
    Q(θ) - (r/2) Σ_k N_k tr Λ_k (N_k : (K,) of the E-step at `old`): Σ_k = S_k + r I is its
    stationary point, since d tr(Σ^{-1}) / dΣ = -Σ^{-2} (tied: pooled, N tr Λ). EM's bound
    log p(X | θ) - log p(X | old) >= Q(θ) - Q(old) then gives
    log p(X | new) - log p(X | old) >= -(r/2) Σ_k N_k (tr Λ_k^old - tr Λ_k^new).
    """
    if reg_covar == 0:
        return 0.0
    covariance = new.covariance
    K, D = new.means.shape

    def traces(params):  # tr Λ_k : (K,)
        precisions = covariance.precisions(params.precisions_cholesky)
        return covariance.diagonal(precisions, K, D).sum(axis=1)

    return max(0.0, 0.5 * reg_covar * float(nk @ (traces(old) - traces(new))))


def _reseed(starved, nk, weights, means, cov, covariance: CovarianceType, support):
    """Split the heaviest component in two for each starved one: the pair sits at
    μ_j ± √λ v along the principal axis (λ, v) of Σ_j, shares its covariance and halves
    its weight. (Re-seeding at badly explained rows would put a component back on the very
    outlier it collapsed on.) Returns (weights, means, cov, message)."""
    means, weights, cov = means.copy(), weights.copy(), cov.copy()
    D = means.shape[1]
    live = np.setdiff1d(np.arange(len(weights)), starved)
    notes = []
    for k in starved:
        j = live[np.argmax(weights[live])]
        axis = covariance.principal_axis(cov, j, D)
        notes.append(
            f"component {k} was {'empty' if nk[k] < 1 else 'collapsed'} (supported by "
            f"{nk[k]:.3g} < {support:g} samples, too few for a nonsingular covariance); "
            f"re-seeded by splitting component {j} along its principal axis.")
        means[k], means[j] = means[j] + axis, means[j] - axis
        weights[k] = weights[j] = weights[j] / 2
        covariance.copy_component(cov, k, j)
        live = np.append(live, k)
    return weights, means, cov, " ".join(notes)


def make_params(weights, means, covariances, covariance: CovarianceType,
                shift=None) -> GaussianParams:
    """Complete a parameter record with the precision factors P; the shift defaults to the
    mixture mean Σ π_k μ_k. weights : (K,); means : (K, D); covariances per type."""
    shift = weights @ means if shift is None else shift
    P = covariance.precision_factor(covariances)
    return assemble(weights, means, covariances, P, covariance, shift)


def assemble(weights, means, covariances, precisions_cholesky, covariance: CovarianceType,
             shift) -> GaussianParams:
    """A parameter record with the derived quantities of the complete-data E-step: the
    natural weights on the expansion path, the type's stacked factors on the direct path,
    and max_k μ_k^T Λ_k μ_k = ||P_k^T (μ_k - shift)||² in both.
    weights : (K,); means : (K, D); covariances, precisions_cholesky per type; shift : (D,)."""
    K, D = means.shape
    mu = means - shift
    P = precisions_cholesky
    max_const = float(np.max(np.sum(covariance.scaled_means(mu, P) ** 2, axis=1)))
    natural = stacked = None
    if covariance.uses_expansion(D, K):
        natural = ef.natural_form(means, P, covariance, shift)
    else:
        stacked = covariance.stacked(mu, P)
    return GaussianParams(weights, means, covariances, P, covariance, shift, max_const,
                          natural, stacked)


def work_dtype(params: GaussianParams, dtype):
    """float32 stays float32 while the components sit within EXPANSION_LIMIT of the
    centre; beyond, both the expansion and the statistics Σ r (x - s)(x - s)^T would
    cancel (a tight component far away), so the chunk is promoted to float64."""
    if dtype == np.float32 and not ef.expansion_is_accurate(params.max_const, dtype):
        return np.float64
    return dtype


def log_prob_complete(params: GaussianParams, X) -> np.ndarray:
    """log N(x_n; μ_k, Σ_k) : (n, K) for complete rows X : (n, D), in the work dtype."""
    X = X.astype(work_dtype(params, X.dtype), copy=False)
    K = params.means.shape[0]
    return log_joint_complete(X, params, np.zeros(K))[0].T
