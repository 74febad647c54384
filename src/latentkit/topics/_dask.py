"""A corpus on Dask: a (n_docs, n_words) Dask array of word counts (dense blocks or
scipy.sparse blocks), chunked by documents, as the data of variational EM.

Each block is checked and turned into CSR counts (`check_counts`) on the worker that holds
it, where the E-step of its documents runs; the topic statistics add across blocks like any
family's (`latentkit.distributed.DaskSource`). Online variational Bayes takes the blocks in
minibatches of `batch_size` documents whose E-steps run on the workers at once.
"""

from __future__ import annotations

import math

import numpy as np

from ..distributed.cluster import active_client, worker_count
from ..distributed.source import DaskSource
from ..em.sources import ChunkSource
from ..exceptions import InvalidInputError
from ._corpus import check_counts


def prepare_counts(block, *, dtype, allow_nan: bool, first_row: int):
    """A block : (n_block_docs, V) of counts as canonical CSR, checked (a negative,
    fractional or non-finite count is an error naming its document in the whole corpus)."""
    return check_counts(block, dtype=dtype, first_row=first_row)


def _words_and_entries(chunk) -> np.ndarray:
    """(word tokens, stored entries) of a prepared block : (2,)."""
    return np.array([chunk.sum(), chunk.nnz], dtype=np.float64)


class DaskCorpus(DaskSource):
    """X : (n_docs, n_words) Dask array of counts. batch_rows : documents per online
    minibatch (the array is rechunked so that each worker holds a share of every one)."""

    #: whether the CSR blocks are kept on the workers (`survey`)
    kept = False

    def __init__(self, X, *, batch_rows: int | None = None):
        if batch_rows is not None:
            workers = worker_count(active_client())
            X = X.rechunk({0: max(1, math.ceil(batch_rows / workers))})
        super().__init__(X, allow_nan=False, prepare=prepare_counts, check_columns=False,
                         persist=False)
        self.batch_rows = batch_rows

    def survey(self) -> tuple[float, int]:
        """(Σ counts, stored entries) over the corpus: one pass on the workers, which also
        checks every block; then the CSR blocks are kept on the workers when they fit
        (`keep_prepared`), so the passes of online EM do not re-read and re-cut them."""
        words, entries = self.map_reduce(_words_and_entries, record=False)
        csr_bytes = int(entries) * (self.dtype.itemsize + 4) + 8 * (self.n_samples + 1)
        self.kept = self.kept or self.keep_prepared(csr_bytes)
        return float(words), int(entries)



def dask_corpus(model, X, *, reset: bool, batch_rows: int | None = None) -> DaskCorpus:
    """The DaskCorpus of X (a Dask array, or a DaskCorpus as it is) for `model` (an LDA),
    setting its corpus attributes at fit."""
    if isinstance(X, DaskCorpus):
        source = X
    elif isinstance(X, ChunkSource):
        raise InvalidInputError(f"LDA takes a Dask array or a DaskCorpus as a source; got a "
                                f"{type(X).__name__}. Pass the counts or a path instead.")
    else:
        source = DaskCorpus(X, batch_rows=batch_rows)
    words, _ = source.survey()
    if reset:
        if words == 0:
            raise InvalidInputError(
                f"the corpus has {source.n_samples} document(s) but no words at all: there "
                "is nothing to learn topics from. Check that X holds word counts.")
        model.vocabulary_ = None
        model.n_features_in_ = source.n_features
        model.mean_doc_length_ = words / max(source.n_samples, 1)
    elif source.n_features != model.n_features_in_:
        raise InvalidInputError(f"X has {source.n_features} words (columns), but the model "
                                f"was fitted on {model.n_features_in_}.")
    return source


__all__ = ["DaskCorpus", "dask_corpus", "prepare_counts"]
