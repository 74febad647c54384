"""Maximum-likelihood Dirichlet priors by Newton's method (Minka 2000; Blei, Ng & Jordan 2003,
appendix A.4.2): the empirical-Bayes updates of LDA's α (from the documents' E[log θ_d]) and
η (from the topics' E[log β_k]).

Given n points on the simplex (here: variational posteriors) summarized by
s_k = Σ_i E[log x_ik], the Dirichlet log-likelihood in α is

    f(α) = n (log Γ(Σ_k α_k) - Σ_k log Γ(α_k)) + Σ_k (α_k - 1) s_k,
    g_k  = ∂f/∂α_k = n (ψ(Σα) - ψ(α_k)) + s_k,
    H    = diag(q) + z 1 1ᵀ,  q_k = -n ψ'(α_k),  z = n ψ'(Σα),

f is concave (log Γ(Σα) - Σ log Γ(α_k) is minus the Dirichlet log-partition). By the
Sherman-Morrison identity the Newton step needs O(K) work:

    (H⁻¹ g)_k = (g_k - b) / q_k,   b = Σ_j (g_j / q_j) / (1/z + Σ_j 1/q_j),

and α ← α - s H⁻¹ g, where the step size s starts at 1 and is halved until α stays positive
and f does not decrease (beyond
round-off). For a symmetric prior α_k = a the objective is
f(a) = n (log Γ(K a) - K log Γ(a)) + (a - 1) s_total, with the scalar Newton step
f'(a) / f''(a), f' = n K (ψ(K a) - ψ(a)) + s_total, f'' = n K (K ψ'(K a) - ψ'(a)).

When no maximum exists (e.g. all n points identical, where f grows without bound as α → ∞)
the iteration stops after max_iter steps with the last α.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, polygamma, psi

from ..exceptions import InvalidInputError, InvalidParameterError

#: step halvings tried before a Newton step is declared unable to improve f
MAX_HALVINGS = 60
#: a step may lower f by this much relative round-off (f is a sum of large log Γ terms, so
#: near the optimum the exact improvement of a Newton step is below f's rounding error)
ROUND_OFF = 1e-14


def dirichlet_objective(alpha: np.ndarray, log_mean_sum: np.ndarray, n: float) -> float:
    """f(α) = n (log Γ(Σα) - Σ_k log Γ(α_k)) + Σ_k (α_k - 1) s_k; alpha, log_mean_sum : (K,)."""
    return float(n * (gammaln(alpha.sum()) - gammaln(alpha).sum())
                 + np.dot(alpha - 1.0, log_mean_sum))


def _newton_direction(alpha, log_mean_sum, n):
    """H⁻¹ g : (K,) for the diagonal-plus-constant Hessian (Sherman-Morrison)."""
    total = alpha.sum()
    gradient = n * (psi(total) - psi(alpha)) + log_mean_sum
    q = -n * polygamma(1, alpha)
    z = n * polygamma(1, total)
    b = np.sum(gradient / q) / (1.0 / z + np.sum(1.0 / q))
    return (gradient - b) / q


def _check_statistics(n, *arrays) -> None:
    for name, value in (("n", n),) + arrays:
        if not np.all(np.isfinite(value)):
            raise InvalidInputError(f"{name} must be finite; got {value}.")
    if not n > 0:
        raise InvalidParameterError(f"n must be positive; got {n}.")


def newton_dirichlet(log_mean_sum, n: float, alpha0, max_iter: int = 100,
                     tol: float = 1e-10) -> np.ndarray:
    """Maximize f(α) (module docstring) over α > 0 from alpha0 by damped Newton steps.

    log_mean_sum : (K,) s_k = Σ over the n rows of E[log x_k]; n : number of rows (> 0);
    alpha0 : (K,) positive starting point. Stops when max_k |Δα_k| / α_k < tol, when no
    halved step improves f, or after max_iter steps. Returns α : (K,) float64.
    """
    log_mean_sum = np.asarray(log_mean_sum, dtype=np.float64)
    alpha = np.array(alpha0, dtype=np.float64)
    _check_statistics(n, ("log_mean_sum", log_mean_sum), ("alpha0", alpha))
    if alpha.shape != log_mean_sum.shape or alpha.ndim != 1:
        raise InvalidInputError(
            f"alpha0 {alpha.shape} and log_mean_sum {log_mean_sum.shape} must be (K,).")
    if not np.all(alpha > 0):
        raise InvalidParameterError(f"alpha0 must be positive; got {alpha}.")
    value = dirichlet_objective(alpha, log_mean_sum, n)
    for _ in range(max_iter):
        direction = _newton_direction(alpha, log_mean_sum, n)
        step = 1.0
        for _ in range(MAX_HALVINGS):
            candidate = alpha - step * direction
            if np.all(candidate > 0):
                candidate_value = dirichlet_objective(candidate, log_mean_sum, n)
                if candidate_value >= value - ROUND_OFF * max(1.0, abs(value)):
                    break
            step *= 0.5
        else:
            return alpha
        change = np.max(np.abs(candidate - alpha) / alpha)
        alpha, value = candidate, candidate_value
        if change < tol:
            break
    return alpha


def symmetric_objective(a: float, s_total: float, n: float, K: int) -> float:
    """f(a) = n (log Γ(K a) - K log Γ(a)) + (a - 1) s_total for the prior α_k = a."""
    return float(n * (gammaln(K * a) - K * gammaln(a)) + (a - 1.0) * s_total)


def newton_symmetric(s_total: float, n: float, K: int, a0: float, max_iter: int = 100,
                     tol: float = 1e-10) -> float:
    """Maximize f(a) = n (log Γ(K a) - K log Γ(a)) + (a - 1) s_total over a > 0 from a0.

    s_total : Σ over the n rows and the K coordinates of E[log x_k] (for LDA's η: the sum of
    E[log β_kw] over topics and words, n = number of topics, K = V words).
    Stops as `newton_dirichlet` does; returns a float.
    """
    _check_statistics(n, ("s_total", s_total), ("a0", a0))
    if int(K) < 2 or not a0 > 0:
        raise InvalidParameterError(f"K must be >= 2 and a0 > 0; got K={K}, a0={a0}.")
    a = float(a0)
    value = symmetric_objective(a, s_total, n, K)
    for _ in range(max_iter):
        slope = n * K * (psi(K * a) - psi(a)) + s_total
        curvature = n * K * (K * polygamma(1, K * a) - polygamma(1, a))
        direction = slope / curvature
        step = 1.0
        for _ in range(MAX_HALVINGS):
            candidate = a - step * direction
            if candidate > 0:
                candidate_value = symmetric_objective(candidate, s_total, n, K)
                if candidate_value >= value - ROUND_OFF * max(1.0, abs(value)):
                    break
            step *= 0.5
        else:
            return a
        change = abs(candidate - a) / a
        a, value = float(candidate), candidate_value
        if change < tol:
            break
    return a


__all__ = ["dirichlet_objective", "newton_dirichlet", "newton_symmetric", "symmetric_objective"]
