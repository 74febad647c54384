"""The worst-explained complete rows of a pass: where empty components are re-seeded."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io import register_record


@register_record
@dataclass(frozen=True)
class WorstPoints:
    """The complete rows with the lowest log-likelihood (at most `capacity` of them): where
    empty components are re-seeded, one distinct row each.

    Merges by keeping the lowest, so it travels with additive statistics across chunks.
    log_likelihood : (m,) ascending; X : (m, D).
    """

    log_likelihood: np.ndarray = field(default_factory=lambda: np.empty(0))
    X: np.ndarray | None = None
    capacity: int = 0

    def __add__(self, other: WorstPoints) -> WorstPoints:
        if other.X is None:
            return self
        if self.X is None:
            return other
        ll = np.concatenate([self.log_likelihood, other.log_likelihood])
        X = np.concatenate([self.X, other.X])
        keep = np.argsort(ll, kind="stable")[: max(self.capacity, other.capacity)]
        return WorstPoints(ll[keep], X[keep], max(self.capacity, other.capacity))

    @staticmethod
    def of(X: np.ndarray, log_likelihood: np.ndarray, capacity: int, *,
           all_complete: bool = False) -> WorstPoints:
        """X : (n, D); log_likelihood : (n,). Rows with NaN are skipped (`all_complete`
        says the caller already knows there are none)."""
        complete = (np.arange(len(X)) if all_complete
                    else np.flatnonzero(~np.isnan(X).any(axis=1)))
        if complete.size == 0 or capacity < 1:
            return WorstPoints(capacity=capacity)
        ll = log_likelihood[complete]
        m = min(capacity, complete.size)
        keep = np.argpartition(ll, m - 1)[:m] if m < complete.size else np.arange(m)
        keep = keep[np.argsort(ll[keep], kind="stable")]
        return WorstPoints(ll[keep].astype(np.float64), np.array(X[complete[keep]],
                                                                  dtype=np.float64), capacity)
