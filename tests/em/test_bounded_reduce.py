"""The E-step's map-reduce holds a bounded number of chunk results, whatever the number of
chunks: a pass over a large stream sums the statistics as they come (issue 13's 1,000,000
documents streamed from disk kept every chunk's (K, V) statistics, 1.6 GB, before summing)."""

from __future__ import annotations

import numpy as np
import pytest

from latentkit.em import ArraySource, num_threads


class Counted:
    """A chunk result that counts how many are alive at once."""

    alive = 0
    most = 0

    def __init__(self, value):
        self.value = value
        Counted.alive += 1
        Counted.most = max(Counted.most, Counted.alive)

    def __del__(self):
        Counted.alive -= 1

    def __add__(self, other):
        return Counted(self.value + other.value)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_map_reduce_sums_as_results_arrive(threads, monkeypatch):
    monkeypatch.setenv("LATENTKIT_NUM_THREADS", threads)
    Counted.alive = Counted.most = 0
    X = np.arange(2000, dtype=np.float64).reshape(1000, 2)
    source = ArraySource(X, chunk_rows=5, validated=True, allow_nan=False)  # 200 chunks
    total = source.map_reduce(lambda chunk: Counted(chunk.sum()))
    assert total.value == X.sum()
    # in flight: at most 2 x threads pending results, plus the running total and the sum
    # being formed; never the 200 results of the pass
    assert Counted.most <= 2 * num_threads() + 3, Counted.most
