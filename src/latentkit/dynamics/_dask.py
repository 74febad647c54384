"""Sequences on Dask: a (n_sequences, T, p) Dask array, chunked by sequences, as EM's data.

Each block of whole sequences becomes a `SequenceBatch` on the worker that holds it, where
the Kalman smoother runs; the LDS statistics add across blocks like any family's
(`latentkit.distributed.DaskSource`). dask is imported only when such an array is fitted.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_finite
from ..distributed.source import DaskSource
from ._em import SequenceBatch


def prepare_sequences(block, *, dtype, allow_nan: bool, first_row: int) -> SequenceBatch:
    """A block : (B, T, p) of whole sequences as a SequenceBatch, checked: inf is an error
    named by its sequence in the whole array (NaN is missing)."""
    block = np.asarray(block, dtype=dtype)
    for i, seq in enumerate(block):
        check_finite(seq, allow_nan=True, model="the Kalman filter",
                     name=f"X (sequence {first_row + i})")
    return SequenceBatch(block)


class DaskSequences(DaskSource):
    """X : (n_sequences, T, p) Dask array; a chunk is a block of whole sequences. Its rows,
    as the engine counts them, are time steps (the mean log-likelihood is per step)."""

    def __init__(self, X):
        super().__init__(X, allow_nan=True, prepare=prepare_sequences, ndim=3)
        self.n_sequences, self.n_steps = int(self.X.shape[0]), int(self.X.shape[1])
        self.n_samples = self.n_sequences * self.n_steps

    @staticmethod
    def as_rows(chunk: SequenceBatch) -> np.ndarray:
        return chunk.X.reshape(-1, chunk.X.shape[-1])

    def init_sample(self, max_rows, rng):
        """Every sequence, as a list of (T, p): the in-memory fit's initialization sees
        all of them (`SequenceSource.init_sample`)."""
        X, = self._compute(self.X)
        return list(self.prepare(X, first_row=0).X)


__all__ = ["DaskSequences", "prepare_sequences"]
