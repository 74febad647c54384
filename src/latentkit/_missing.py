"""Missing values (NaN) grouped by missingness pattern, shared by every model that
marginalizes them exactly (Gaussian mixtures, PPCA, factor analysis, mixtures of PPCA).

Rows sharing the set of observed coordinates share every pattern-level quantity (a marginal
covariance's Cholesky factor, a posterior covariance), so those are computed once per
pattern and the rows of a pattern are processed together.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pattern_index", "missingness_patterns"]


def pattern_index(observed: np.ndarray):
    """The distinct rows of a mask and which one each row has.

    observed : (n, D) bool. Returns patterns : (U, D) bool and inverse : (n,) int with
    observed == patterns[inverse]. Rows are packed to bytes first (D/8 bytes a row), so
    the sort that finds the distinct ones is over short byte strings, not D booleans.
    """
    observed = np.ascontiguousarray(observed, dtype=bool)
    n, D = observed.shape
    packed = np.ascontiguousarray(np.packbits(observed, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).reshape(n)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return observed[first], inverse.reshape(n)


def missingness_patterns(observed: np.ndarray):
    """Group rows by which coordinates are observed.

    observed : (n, D) bool. Yields (rows, obs) with rows an index array and obs : (D,) bool.
    """
    patterns, inverse = pattern_index(observed)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(patterns) + 1))
    for p, obs in enumerate(patterns):
        yield order[bounds[p]:bounds[p + 1]], obs
