"""The two families whose rows are not plain rows, on Dask: LDS (blocks of whole sequences)
and LDA's variational EM (blocks of documents, batch and online), equal to their in-memory
fits on a LocalCluster of 2 worker processes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")

from helpers import assert_same_fit  # noqa: E402
from latentkit import LDA, ConvergenceWarning, LinearDynamicalSystem  # noqa: E402
from latentkit.exceptions import InvalidInputError, InvalidParameterError  # noqa: E402
from latentkit.topics._dask import DaskCorpus  # noqa: E402


def sequences(B=12, T=40, p=3, seed=0):
    """B sequences of a 2-D rotating state seen through p noisy channels, 10% missing."""
    rng = np.random.default_rng(seed)
    angle = 0.2
    A = 0.97 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    C = rng.normal(size=(p, 2))
    X = np.empty((B, T, p))
    for b in range(B):
        z = rng.normal(size=2)
        for t in range(T):
            z = A @ z + 0.3 * rng.normal(size=2)
            X[b, t] = C @ z + 0.2 * rng.normal(size=p)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def corpus(n_docs=300, n_words=40, seed=1):
    rng = np.random.default_rng(seed)
    topics = rng.dirichlet(np.full(n_words, 0.1), size=3)
    theta = rng.dirichlet(np.full(3, 0.3), size=n_docs)
    return np.stack([rng.multinomial(rng.integers(20, 60), t @ topics) for t in theta]
                    ).astype(float)


def test_lds_on_blocks_of_sequences_equals_the_in_memory_fit(client):
    X = sequences()
    kwargs = dict(state_dim=2, random_state=0, tol=0.0, max_iter=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = LinearDynamicalSystem(**kwargs).fit(X)
        distributed = LinearDynamicalSystem(**kwargs).fit(da.from_array(X, chunks=(5, 20, 2)))
    assert_same_fit(distributed, memory)


def test_lds_names_an_inf_by_its_sequence_in_the_whole_array(client):
    X = sequences()
    X[7, 3, 1] = np.inf
    with pytest.raises(InvalidInputError, match="sequence 7"):
        LinearDynamicalSystem(state_dim=2).fit(da.from_array(X, chunks=(4, -1, -1)))


def test_lda_batch_variational_em_on_blocks_of_documents(client):
    X = corpus()
    kwargs = dict(n_topics=3, method="batch", random_state=0, tol=0.0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = LDA(**kwargs).fit(X)
        dense = LDA(**kwargs).fit(da.from_array(X, chunks=(70, -1)))
        sparse = LDA(**kwargs).fit(da.from_array(X, chunks=(70, -1)).map_blocks(
            sp.csr_matrix, meta=sp.csr_matrix((0, 0))))
    assert_same_fit(dense, memory)
    assert_same_fit(sparse, memory)


def test_online_lda_minibatches_run_on_the_workers_and_equal_memory(client):
    """Online VB with minibatches of 50 documents: each minibatch's E-step split over the 2
    workers, the running statistics and λ those of the in-memory online fit."""
    X = corpus()
    kwargs = dict(n_topics=3, method="online", batch_size=50, total_samples=300,
                  random_state=0, tol=0.0, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = LDA(**kwargs).fit(X)
        corpus_on_dask = DaskCorpus(da.from_array(X, chunks=(64, -1)), batch_rows=50)
        distributed = LDA(**kwargs).fit(corpus_on_dask)
    assert corpus_on_dask.kept  # the CSR blocks stay on the workers between minibatches
    assert [b.shape[0] for b in corpus_on_dask.minibatches()] == [50] * 6  # as in memory
    assert_same_fit(distributed, memory)


def test_gibbs_lda_refuses_a_dask_array_and_names_the_alternatives(client):
    with pytest.raises(InvalidParameterError, match="method='batch' or 'online'"):
        LDA(n_topics=3, method="gibbs").fit(da.from_array(corpus(), chunks=(100, -1)))


def test_a_corpus_kept_on_the_workers_still_iterates_as_csr_blocks(client):
    """After keep_prepared, the blocks are futures on the workers; a pass over the source
    (a family's checking pass) must still yield the prepared CSR counts, in order."""
    X = corpus()
    source = DaskCorpus(da.from_array(X, chunks=(64, -1)), batch_rows=50)
    source.survey()
    assert source.kept
    blocks = list(source)
    assert all(sp.issparse(b) for b in blocks)
    np.testing.assert_array_equal(sp.vstack(blocks).toarray(), X)
