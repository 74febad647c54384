"""A column with no observed value is an error in a stream too (issue 12): a memory-mapped
.npy, a list of chunks and a function of fresh iterators, where it can be seen only after a
full pass; a column observed in a later chunk is fine."""

from __future__ import annotations

import numpy as np
import pytest

from latentkit import GaussianMixture
from latentkit.exceptions import InvalidInputError


def data_with_empty_column(rng):
    X = rng.normal(size=(400, 3))
    X[:, 1] = np.nan
    return X


@pytest.mark.parametrize("form", ["npy", "list", "function"])
def test_a_stream_with_an_all_missing_column_is_refused_naming_it(form, tmp_path):
    X = data_with_empty_column(np.random.default_rng(0))
    if form == "npy":
        data = tmp_path / "x.npy"
        np.save(data, X)
        data = str(data)
    elif form == "list":
        data = [X[:150], X[150:]]
    else:
        def data():
            return iter([X[:100], X[100:300], X[300:]])
    with pytest.raises(InvalidInputError, match=r"column 1 of data is entirely missing") as err:
        GaussianMixture(2, chunk_size=64, random_state=0).fit(data)
    assert "all 400 rows of the stream" in str(err.value)


def test_a_column_observed_only_in_the_last_chunk_is_kept():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2))
    X[:290, 1] = np.nan  # observed in the last 10 rows only
    streamed = GaussianMixture(1, random_state=0, max_iter=200).fit([X[:150], X[150:]])
    in_memory = GaussianMixture(1, random_state=0, max_iter=200).fit(X)
    np.testing.assert_allclose(streamed.means_, in_memory.means_, rtol=1e-9)
