"""Variational EM on partially observed binary images (seed 001, "The Variational EM Algorithm").

Model p(x; θ): a mixture of K multivariate Bernoullis, θ = (π, μ),
    p(x) = Σ_k π_k Π_d μ_kd^x_d (1 - μ_kd)^(1 - x_d).
Its log p(x_full) is tractable, so the θ step is exact. The unobserved pixels x_m of row n
get the seed's fully factored Bernoulli q(x_m; φ_n) = Π_{d missing} φ_nd^x_d (1 - φ_nd)^(1 - x_d),
and, the mixture being itself a latent-variable model, the component a second mean-field
factor r_n (K,). The evidence lower bound of row n (seed 001, "The Evidence Lower bound"):

    F_n[φ, r, θ] = Σ_k r_nk [log π_k + Σ_d E_q log Bern(x_nd; μ_kd)] + H(r_n) + H(q_n)
                 <= log p(x_n,obs; θ),

    E_q log Bern(x_d; μ) = x̃_d logit μ + log(1 - μ),   x̃_d = x_d (observed) or φ_d (missing),

H(r_n) = -Σ_k r_nk log r_nk, H(q_n) = Σ_{d missing} h(φ_nd), h(p) = -p log p - (1-p) log(1-p).
F is linear in x̃, so every term is a GEMM. Coordinate ascent, each step an exact maximizer:

    r step  r_nk ∝ π_k exp(Σ_d x̃_nd logit μ_kd + log(1 - μ_kd))           (a softmax)
    φ step  φ_nd = σ(Σ_k r_nk logit μ_kd) for missing d                    (∂F/∂φ_nd = 0;
            F is strictly concave in φ_nd: the term φ a + h(φ) peaks at σ(a))
    θ step  π_k = Σ_n r_nk / n,
            μ_kd = (Σ_n r_nk x̃_nd + a) / (Σ_n r_nk + 2a)

The θ step with smoothing a > 0 maximizes F plus the log-density of a Beta(1 + a, 1 + a)
prior on each μ_kd, a Σ_kd [log μ_kd + log(1 - μ_kd)] (it keeps μ off 0 and 1). That
penalized objective J = Σ_n F_n + a Σ_kd [...] never decreases (each step maximizes it over
its block); `history` records J / n per iteration. Variational EM need not increase
log p(x_obs) (seed 001: "Marginal likelihood might decrease!"): the bound F is what ascends.
Because the mean-field q(x_m) r(k) ignores that the missing pixels depend on k,
F < log p(x_obs) in general, with equality when nothing is missing and r is the posterior.

Measured (binarized MNIST, 10,000 complete training images fitted together with 1,000
test images whose top half is missing, 50 iterations, 2 CPU cores, 8-27 s): pixel error of
the thresholded φ on the missing half 11.4 / 11.8 / 11.1% for K = 10 / 50 / 100, against
12.5% for thresholded column means. The mean-field r collapses onto one component (mean
entropy ~0.001 nats, against 0.05-0.13 for the exact p(k | x_obs)); the exact predictive
Σ_k p(k | x_obs) μ_k under the same θ errs on 10.9 / 9.9 / 9.6%: the gap is the price of
the factorization q(x_m) r(k).

Arrays: X : (n, D) in {0, 1, NaN} (NaN = missing); observed : (n, D) 1.0 where observed;
phi : (n, D), x̃ above (X at observed entries, φ at missing ones); resp : (n, K);
weights : (K,); means : (K, D).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
from scipy.special import expit, log_softmax, xlogy

from latentkit._validation import as_generator
from latentkit.exceptions import InvalidInputError, InvalidParameterError


class VariationalEMResult(NamedTuple):
    """weights : (K,) π; means : (K, D) μ; phi : (n, D) q's Bernoulli parameters at the
    missing entries, X at the observed ones; responsibilities : (n, K) r; history :
    (n_iter,) J / n after each iteration (see the module); converged : whether the last
    change of J / n was below tol."""

    weights: np.ndarray
    means: np.ndarray
    phi: np.ndarray
    responsibilities: np.ndarray
    history: np.ndarray
    converged: bool


# ------------------------------------------------------------------------------ kernels
def expected_log_likelihood(phi: np.ndarray, means: np.ndarray) -> np.ndarray:
    """E_q log p(x_n | k) = x̃_n · logit μ_k + Σ_d log(1 - μ_kd) : (n, K).

    phi : (n, D) x̃; means : (K, D) in (0, 1).
    """
    log_one_minus = np.log1p(-means)
    logit = np.log(means) - log_one_minus
    return phi @ logit.T + log_one_minus.sum(axis=1)


def update_responsibilities(phi, weights, means) -> np.ndarray:
    """r step: r_nk = softmax_k(log π_k + E_q log p(x_n | k)) : (n, K)."""
    with np.errstate(divide="ignore"):   # an empty component: log 0 = -inf, r = 0
        log_weights = np.log(weights)
    return np.exp(log_softmax(log_weights + expected_log_likelihood(phi, means), axis=1))


def update_phi(phi, observed, resp, means) -> np.ndarray:
    """φ step: φ_nd = σ(Σ_k r_nk logit μ_kd) at missing d, x_nd kept elsewhere : (n, D).

    Only rows with a missing entry are computed (a complete row is returned as it is).
    """
    logit = np.log(means) - np.log1p(-means)
    rows = ~(observed > 0).all(axis=1)
    out = phi.copy()
    out[rows] = np.where(observed[rows] > 0, phi[rows], expit(resp[rows] @ logit))
    return out


def update_params(phi, resp, smoothing: float):
    """θ step: (π : (K,), μ : (K, D)) with μ_kd = (Σ_n r_nk x̃_nd + a) / (Σ_n r_nk + 2a)."""
    counts = resp.sum(axis=0)                                     # N_k : (K,)
    weights = counts / counts.sum()
    means = (resp.T @ phi + smoothing) / (counts + 2 * smoothing)[:, None]
    return weights, means


def free_energy(phi, observed, resp, weights, means) -> np.ndarray:
    """F_n[φ, r, θ] per row : (n,) (the module's formula; r log π is 0 where r = 0)."""
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    joint = log_weights + expected_log_likelihood(phi, means)              # (n, K)
    expected = np.where(resp > 0, resp * joint, 0.0).sum(axis=1)
    entropy_r = -xlogy(resp, resp).sum(axis=1)
    rows = ~(observed > 0).all(axis=1)                 # H(q_n) = 0 for a complete row
    part, missing = phi[rows], observed[rows] == 0
    entropy_q = -(xlogy(part, part) + xlogy(1 - part, 1 - part))
    entropy_r[rows] += np.where(missing, entropy_q, 0.0).sum(axis=1)
    return expected + entropy_r


def log_prior(means, smoothing: float) -> float:
    """a Σ_kd [log μ_kd + log(1 - μ_kd)], the Beta(1 + a, 1 + a) log-density up to a constant."""
    return float(smoothing * (np.log(means).sum() + np.log1p(-means).sum()))


def initialize(X0, observed, n_components, rng):
    """(phi : (n, D), weights : (K,), means : (K, D)) to start from.

    X0 : (n, D) X with NaN -> 0; observed : (n, D). θ: π uniform, μ_k = 0.25 + 0.5 x̃ of K
    distinct random rows (x̃ = the column's observed mean at a missing entry, 0.5 for an
    all-missing column). φ: the φ step at r = p(k | x_obs; θ), the exact posterior given the
    observed pixels alone, a start that owes nothing to the missing pixels. (Starting φ at
    the column means imputes about as well: on MNIST with the top half missing, pixel error
    11.5 / 11.7 / 12.2% for K = 10 / 50 / 100, against 11.4 / 11.8 / 11.1% from this start.)
    """
    counts = observed.sum(axis=0)
    column_mean = np.where(counts > 0, X0.sum(axis=0) / np.maximum(counts, 1), 0.5)
    filled = np.where(observed > 0, X0, column_mean)
    rows = rng.choice(len(X0), size=n_components, replace=False)
    means = 0.25 + 0.5 * filled[rows]
    weights = np.full(n_components, 1.0 / n_components)
    log_one_minus = np.log1p(-means)
    logit = np.log(means) - log_one_minus
    log_joint = np.log(weights) + X0 @ logit.T + observed @ log_one_minus.T   # log p(x_obs, k)
    resp = np.exp(log_softmax(log_joint, axis=1))
    return update_phi(X0, observed, resp, means), weights, means


# -------------------------------------------------------------------------------- driver
def variational_em(X, n_components: int, *, n_iter: int = 50, tol: float = 1e-4,
                   smoothing: float = 1e-2, random_state=None) -> VariationalEMResult:
    """Coordinate ascent r -> φ -> θ on J (module docstring) until |ΔJ / n| < tol.

    X : (n, D) in {0, 1, NaN}; n_components : K in [1, n]; n_iter : most iterations;
    tol : >= 0, absolute, on the per-row objective; smoothing : a > 0, the Beta smoothing
    of μ; random_state : None, an int or a numpy Generator (the K initial rows).
    """
    X = _check_data(X)
    _check_options(n_components, len(X), n_iter, tol, smoothing)
    observed = (~np.isnan(X)).astype(float)
    X0 = np.where(observed > 0, X, 0.0)
    phi, weights, means = initialize(X0, observed, n_components, as_generator(random_state))
    history, converged = [], False
    for _ in range(n_iter):
        resp = update_responsibilities(phi, weights, means)
        phi = update_phi(phi, observed, resp, means)
        weights, means = update_params(phi, resp, smoothing)
        objective = free_energy(phi, observed, resp, weights, means).sum()
        history.append((objective + log_prior(means, smoothing)) / len(X))
        if len(history) > 1 and abs(history[-1] - history[-2]) < tol:
            converged = True
            break
    return VariationalEMResult(weights, means, phi, resp, np.asarray(history), converged)


def impute(X, result: VariationalEMResult, *, binary: bool = False) -> np.ndarray:
    """X (n, D) with each missing entry replaced by φ_nd (or 1[φ_nd > 0.5] when binary).

    X must be the data `result` was fitted on (same shape, same observed values).
    """
    X = _check_data(X)
    if X.shape != result.phi.shape:
        raise InvalidInputError(
            f"X has shape {X.shape} but result was fitted on data of shape "
            f"{result.phi.shape}; pass the X given to variational_em.")
    missing = np.isnan(X)
    if not np.array_equal(X[~missing], result.phi[~missing]):
        raise InvalidInputError("X's observed values differ from those result was fitted on; "
                                "pass the X given to variational_em.")
    fill = (result.phi > 0.5).astype(float) if binary else result.phi
    return np.where(missing, fill, X)


# ------------------------------------------------------------------------------ checks
def _check_data(X) -> np.ndarray:
    try:
        X = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"X must be a numeric array (n, D): {error}") from error
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise InvalidInputError(f"X must be a non-empty 2-D array (n, D), got shape {X.shape}.")
    seen = X[~np.isnan(X)]
    if not np.isin(seen, (0.0, 1.0)).all():
        bad = seen[~np.isin(seen, (0.0, 1.0))][0]
        raise InvalidInputError(
            f"X must hold 0, 1 or NaN (missing), found {bad!r}; binarize it (e.g. X > 0.5).")
    return X


def _check_options(n_components, n_rows, n_iter, tol, smoothing) -> None:
    for name, value, low in (("n_components", n_components, 1), ("n_iter", n_iter, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}.")
    if n_components > n_rows:
        raise InvalidParameterError(
            f"n_components={n_components} exceeds the number of rows ({n_rows}); use at "
            "most one component per row.")
    if not (isinstance(tol, numbers.Real) and math.isfinite(tol) and tol >= 0):
        raise InvalidParameterError(f"tol must be a finite number >= 0, got {tol!r}.")
    if not (isinstance(smoothing, numbers.Real) and math.isfinite(smoothing) and smoothing > 0):
        raise InvalidParameterError(
            f"smoothing must be a finite number > 0 (it keeps μ inside (0, 1)), got "
            f"{smoothing!r}.")


__all__ = [
    "VariationalEMResult", "expected_log_likelihood", "free_energy", "impute", "initialize",
    "log_prior", "update_params", "update_phi", "update_responsibilities", "variational_em",
]
