"""The shared test helpers can fail: a helper that never fails would hide bugs (STYLE 11)."""

import numpy as np
import pytest

from helpers import assert_monotone, assert_recovers


def test_assert_monotone_fails_on_a_decrease():
    assert_monotone([-3.0, -2.0, -2.0, -1.5])
    assert_monotone([-2.0, -2.0 - 1e-12])  # round-off is allowed
    with pytest.raises(AssertionError, match="decreased at iteration 3"):
        assert_monotone([-3.0, -2.0, -2.5, -1.0])
    with pytest.raises(AssertionError, match="decreased at iteration 2"):
        assert_monotone([-2.0, -2.0 - 1e-6])  # beyond float64 round-off
    assert_monotone([-2.0, -2.0 - 1e-6], dtype=np.float32)  # within float32's
    with pytest.raises(AssertionError, match="not finite at iteration 2"):
        assert_monotone([-2.0, np.nan, -1.0])


def test_assert_recovers_matches_up_to_permutation():
    true = np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 0.0]])
    fitted = true[[2, 0, 1]] + 0.01
    order = assert_recovers(true, fitted, atol=0.05)
    np.testing.assert_array_equal(fitted[order] - 0.01, true)
    with pytest.raises(AssertionError):
        assert_recovers(true, fitted, atol=0.001)
    with pytest.raises(AssertionError):
        assert_recovers(true, fitted, atol=0.05, permutation_invariant=False)
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_recovers(true, fitted[:2], atol=1.0)
