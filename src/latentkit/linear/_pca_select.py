"""How many principal components to keep: a fraction of the variance, or Minka's MLE.

Fraction t in (0, 1) (scikit-learn's rule): the fewest M whose cumulative explained-variance
ratio is strictly greater than t, computed from the very ratios the model exposes
(`explained_variance_ratio_`), so the choice is consistent with them; capped at the spectrum.

Minka (2000), "Automatic choice of dimensionality for PCA": the Laplace approximation of
the PPCA evidence p(X | k) for rank k of a D-dimensional spectrum λ_1 >= ... >= λ_D from n
samples, with v = Σ_{j>k} λ_j / (D - k), m = D k - k (k + 1) / 2:

    log p(X | k) = log p(U) - n/2 Σ_{i<=k} log λ_i - n (D - k)/2 log v
                   + (m + k)/2 log 2π - 1/2 log |A_Z| - k/2 log n
    log p(U) = -k log 2 + Σ_{i=1..k} [log Γ((D - i + 1)/2) - (D - i + 1)/2 log π]
    log |A_Z| = Σ_{i<=k} Σ_{j>i} [log(λ_i - λ_j) + log(1/λ'_j - 1/λ'_i) + log n],
                λ'_j = λ_j for j <= k, v for j > k

(scikit-learn's `_assess_dimension`, term for term). The double sum is split into parts
that do not depend on k (prefix sums) and one that does, so all ranks cost O(D²), not O(D³).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

#: eigenvalues below this are numerically zero: a rank that keeps one has evidence -inf
SMALL_EIGENVALUE = 1e-15


def n_components_for_ratio(ratio: np.ndarray, threshold: float) -> int:
    """The fewest components whose cumulative ratio exceeds threshold (scikit-learn's
    `searchsorted(side="right") + 1`). ratio : (K,) the explained-variance ratios,
    descending, in the dtype the model stores them."""
    cumulative = np.cumsum(ratio)
    return min(int(np.searchsorted(cumulative, threshold, side="right")) + 1, len(ratio))


def _pair_sums(lam: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Σ_{i<k} Σ_{j>i} [log(λ_i - λ_j) + log(1/λ'_j - 1/λ'_i)] : (D - 1,) for k = 1..D-1."""
    D = len(lam)
    # log(λ_i - λ_j) over j > i, and log(1/λ_j - 1/λ_i) over i < j: independent of k
    above = np.array([np.log(lam[i] - lam[i + 1:]).sum() for i in range(D)])
    below = np.array([np.log(1 / lam[j] - 1 / lam[:j]).sum() for j in range(D)])
    fixed = np.cumsum(above)[:D - 1] + np.cumsum(below)[:D - 1]
    # pairs i < k <= j, where λ'_j = v_k: (D - k) copies of log(1/v_k - 1/λ_i) for each i < k
    tail = np.array([(D - k) * np.log(1 / v[k - 1] - 1 / lam[:k]).sum()
                     for k in range(1, D)])
    return fixed + tail


def minka_log_evidence(spectrum, n_samples: int) -> np.ndarray:
    """log p(X | k) : (D,) for k = 0..D-1 (see module doc); entry 0 is -inf (k = 0 is not
    a candidate), as is every k whose λ_k < SMALL_EIGENVALUE or whose evidence is undefined
    (tied eigenvalues). spectrum : (D,) every eigenvalue of the sample covariance,
    descending."""
    lam = np.asarray(spectrum, dtype=np.float64)
    D, n = len(lam), n_samples
    k = np.arange(1, D)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dims = D - np.arange(D)  # D - i + 1 for i = 1..D
        log_gamma_terms = gammaln(dims / 2) - dims / 2 * math.log(math.pi)
        log_pu = -k * math.log(2.0) + np.cumsum(log_gamma_terms)[:D - 1]
        log_pl = -n / 2 * np.cumsum(np.log(lam))[:D - 1]
        v = np.maximum(SMALL_EIGENVALUE, np.cumsum(lam[::-1])[::-1][1:] / (D - k))
        log_pv = -np.log(v) * n * (D - k) / 2
        m = D * k - k * (k + 1) / 2
        log_pp = math.log(2 * math.pi) * (m + k) / 2
        n_pairs = k * (D - 1) - k * (k - 1) / 2
        log_det_a = _pair_sums(lam, v) + n_pairs * math.log(n)
        ll = log_pu + log_pl + log_pv + log_pp - log_det_a / 2 - k * math.log(n) / 2
    ll[~np.isfinite(ll) | (lam[k - 1] < SMALL_EIGENVALUE)] = -np.inf
    return np.concatenate([[-np.inf], ll])


def infer_dimension(spectrum, n_samples: int) -> int:
    """Minka's choice: argmax_k log p(X | k) over k = 1..D-1 (0 when every rank has
    evidence -inf, as scikit-learn's `_infer_dimension`)."""
    return int(np.argmax(minka_log_evidence(spectrum, n_samples)))
