"""How well an unmixing (ICA) recovers planted sources."""

from __future__ import annotations

import numpy as np


def amari_index(W: np.ndarray, A: np.ndarray) -> float:
    """Amari's performance index of an unmixing W : (M, D) against a true mixing A : (D, M).

    With P = W A (the identity up to permutation and scale when the sources are recovered),
    the index is [Σ_i (Σ_j |p_ij| / max_j |p_ij| - 1) + Σ_j (Σ_i |p_ij| / max_i |p_ij| - 1)]
    / (2 M (M - 1)): 0 for a perfect recovery, at most 1.
    """
    P = np.abs(W @ A)
    M = P.shape[0]
    if M == 1:
        return 0.0
    rows = (P.sum(axis=1) / P.max(axis=1) - 1).sum()
    cols = (P.sum(axis=0) / P.max(axis=0) - 1).sum()
    return float((rows + cols) / (2 * M * (M - 1)))
