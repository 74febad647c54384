"""The PPCA density of a fitted PCA, as pure kernels over its eigen-quantities.

With components U : (D, M) (orthonormal columns), explained variances λ : (M,) and noise
variance σ² (the mean discarded eigenvalue), the model is Tipping & Bishop's closed form,

    x ~ N(x̄, C),   C = U (Λ - σ² I)_+ U^T + σ² I = W W^T + σ² I,   W = U (Λ - σ² I)_+^½

(clipped at 0 where an estimated λ falls below σ²). With orthonormal U,

    C^{-1} = σ^{-2} I + U diag(1/max(λ, σ²) - 1/σ²) U^T          (Woodbury)

When σ² = 0 (every direction kept, M = min(N, D)) C = U Λ U^T, singular unless M = D and
λ > 0: the density is then the one on its support (`_lowrank.subspace_log_prob`) and the
precision the pseudo-inverse U_+ Λ_+^{-1} U_+^T, the inverse whenever C is invertible.
n_components = 0 gives C = σ² I. Whitening changes the representation only, never C.
"""

from __future__ import annotations

import numpy as np

from ._lowrank import lowrank_log_prob, subspace_log_prob, support_cutoff


def loadings(components, variances, noise) -> np.ndarray:
    """W = U (Λ - σ² I)_+^½ : (D, M) float64. components : (M, D); variances : (M,)."""
    excess = np.maximum(np.asarray(variances, dtype=np.float64) - noise, 0.0)
    return np.asarray(components, dtype=np.float64).T * np.sqrt(excess)


def pca_covariance(components, variances, noise) -> np.ndarray:
    """C = W W^T + σ² I : (D, D) float64."""
    W = loadings(components, variances, noise)
    C = W @ W.T
    C[np.diag_indices_from(C)] += noise
    return C


def pca_precision(components, variances, noise) -> np.ndarray:
    """C^{-1} : (D, D) float64 by the Woodbury form above (σ² > 0), else the pseudo-inverse
    over the variances above `support_cutoff`."""
    U = np.asarray(components, dtype=np.float64).T  # (D, M)
    lam = np.asarray(variances, dtype=np.float64)
    if noise > 0:
        P = (U * (1 / np.maximum(lam, noise) - 1 / noise)) @ U.T
        P[np.diag_indices_from(P)] += 1 / noise
        return P
    keep = lam > support_cutoff(lam, np.asarray(components).dtype)
    return (U[:, keep] / lam[keep]) @ U[:, keep].T


def pca_log_prob(X, mean, components, variances, noise, n_train=None) -> np.ndarray:
    """log N(x_n; x̄, C) : (n_samples,) float64, O(N D M). X : (n_samples, D); n_train, the
    fit's number of rows (the variances are over n_train - 1), puts every training row on
    the singular density's support (`_lowrank.support_tolerance`)."""
    if noise > 0:
        W = loadings(components, variances, noise)
        return lowrank_log_prob(X, mean, W, np.full(W.shape[0], noise))
    return subspace_log_prob(X, mean, np.asarray(components).T, variances, n_train)
