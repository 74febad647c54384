"""`em.fit_online` (running statistics updated in place) against the reference step,
`em.online_em_step` (fresh arrays every step), repeated by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from latentkit import em


@dataclass(frozen=True)
class MeanStats(em.SufficientStats):
    additive: ClassVar[tuple[str, ...]] = ("n", "total")
    n: float
    total: np.ndarray


def _e_step(params, state, config, X):
    X = X.toarray()
    return MeanStats(float(X.shape[0]), X.sum(axis=0)), float(-((X - params) ** 2).sum())


def _m_step(stats, params, state, config):
    return stats.total / stats.n, state, em.NOTHING


FAMILY = em.EMFamily(None, _e_step, _m_step)
STEP = dict(learning_decay=0.7, learning_offset=2.0)


@pytest.mark.parametrize("fresh", [True, False])
def test_fit_online_equals_repeated_online_em_steps(fresh):
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.normal(size=(50, 3)) + np.arange(3))
    source = em.SparseSource(X, 8)  # 7 minibatches, the last of 2 rows
    start = None if fresh else em.OnlineState(MeanStats(1.0, np.array([5.0, -1.0, 2.0])), 3, 40)
    kept = None if fresh else start.stats.total.copy()
    result, online = em.fit_online(FAMILY, None, source, np.zeros(3), None, online=start,
                                   max_passes=3, tol=0.0, total_rows=50, **STEP)
    params, reference, objectives = np.zeros(3), start or em.OnlineState(), []
    for _ in range(3):
        total = 0.0
        for batch in source:
            params, _, reference, value = em.online_em_step(
                FAMILY, None, params, None, reference, batch, total_rows=50, **STEP)
            total += value * batch.shape[0]
        objectives.append(total / 50)
    np.testing.assert_allclose(result.params, params, rtol=1e-13)
    np.testing.assert_allclose(online.stats.total, reference.stats.total, rtol=1e-13)
    assert online.stats.n == pytest.approx(reference.stats.n, rel=1e-13)
    assert (online.n_updates, online.n_seen) == (reference.n_updates, reference.n_seen)
    np.testing.assert_allclose(result.history, objectives, rtol=1e-12)
    if not fresh:  # the caller's running statistics are not written to
        np.testing.assert_array_equal(start.stats.total, kept)
