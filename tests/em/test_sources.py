"""Data sources of the EM engine: sparse row blocks and the map-reduce seam."""

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from latentkit import em
from latentkit.exceptions import InvalidInputError


@dataclass(frozen=True)
class Sums(em.SufficientStats):
    additive = ("n", "total")
    n: float
    total: np.ndarray


def column_mean_family():
    """The smallest EM family: a Gaussian with unit variance and unknown mean, whose M-step
    is the sample mean; its E-step works on dense and CSR chunks alike."""

    def e_step(mean, state, config, X):
        total = np.asarray(X.sum(axis=0)).ravel()
        sq = float(X.multiply(X).sum()) if sp.issparse(X) else float((X * X).sum())
        n = X.shape[0]
        loglik = -0.5 * (sq - 2 * total @ mean + n * mean @ mean)
        return Sums(float(n), total), loglik

    def m_step(stats, mean, state, config):
        return stats.total / stats.n, state, em.NOTHING

    def init(X, rng, config, restart):
        return np.zeros(X.shape[1]), None

    return em.EMFamily(init, e_step, m_step)


def test_sparse_source_serves_csr_row_blocks_in_order():
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.3, size=(25, 4)).astype(float)
    source = em.as_source(sp.csr_matrix(dense), chunk_rows=7, allow_nan=False)
    assert isinstance(source, em.SparseSource)
    blocks = list(source)
    assert [b.shape[0] for b in blocks] == [7, 7, 7, 4]
    assert all(sp.issparse(b) for b in blocks)
    np.testing.assert_array_equal(sp.vstack(blocks).toarray(), dense)
    assert source.n_samples == 25 and source.n_features == 4


def test_sparse_source_refuses_inf_and_nan_among_its_entries():
    bad = sp.csr_matrix(np.array([[0.0, 1.0], [np.inf, 0.0]]))
    with pytest.raises(InvalidInputError, match="inf at row 0"):
        em.as_source(bad, chunk_rows=1, allow_nan=False)
    bad = sp.csr_matrix(np.array([[0.0, np.nan], [1.0, 0.0]]))
    with pytest.raises(InvalidInputError, match="NaN"):
        em.as_source(bad, chunk_rows=1, allow_nan=True)


def test_em_on_sparse_chunks_equals_em_on_the_dense_array():
    rng = np.random.default_rng(1)
    dense = rng.poisson(0.5, size=(300, 5)).astype(float)
    family = column_mean_family()
    runs = []
    for source in (em.ArraySource(dense, 64, validated=True, allow_nan=False),
                   em.SparseSource(sp.csr_matrix(dense), 64)):
        runs.append(em.fit_em(family, None, source, n_init=1, rng=np.random.default_rng(0),
                              tol=1e-12, max_iter=5))
    np.testing.assert_allclose(runs[1].params, dense.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(runs[0].history, runs[1].history, rtol=1e-12)


class CountingSource(em.ArraySource):
    """A source with its own map-reduce (as a distributed scheduler would have): the seam
    the engine must go through."""

    calls = 0

    def map_reduce(self, step, reduce=None):
        type(self).calls += 1
        results = [step(chunk) for chunk in reversed(list(self))]  # any order, any place
        total = results[0]
        for item in results[1:]:
            total = total + item
        return total


def test_the_engine_reduces_through_the_sources_map_reduce_seam():
    X = np.random.default_rng(2).normal(size=(50, 3))
    source = CountingSource(X, 8, validated=True, allow_nan=False)
    plain = em.ArraySource(X, 8, validated=True, allow_nan=False)
    family = column_mean_family()
    options = dict(n_init=1, rng=np.random.default_rng(0), tol=1e-12, max_iter=3)
    seamed = em.fit_em(family, None, source, **options)
    reference = em.fit_em(family, None, plain, **options)
    assert CountingSource.calls == seamed.n_iter == 3
    np.testing.assert_allclose(seamed.history, reference.history, rtol=1e-12)


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_threaded_map_maps_every_chunk_in_order(monkeypatch, threads):
    monkeypatch.setenv("LATENTKIT_NUM_THREADS", threads)
    assert em.threaded_map(lambda c: c * 10, iter([1, 2, 3, 4, 5])) == [10, 20, 30, 40, 50]
    assert em.threaded_map(lambda c: c, iter([7])) == [7]
    assert em.threaded_map(lambda c: c, iter([])) == []
