"""numpy masked arrays: a masked entry is missing, never the placeholder value under the mask
(issue 11, defect 1). pykalman and numpy users mark missing data so; `np.asarray` would drop
the mask and read the placeholders as observed data, silently."""

from __future__ import annotations

import numpy as np
import pytest

from latentkit.registry import registered_specs

SPECS = [spec for spec in registered_specs().values()
         if spec.example is not None and spec.name != "lds"]  # the LDS: tests/dynamics


def _holes(X, rng):
    """(X with NaN in some entries, the same as a masked array with 1e6 under the mask)."""
    mask = rng.random(X.shape) < 0.1
    mask[:, 0] &= ~mask[:, 1:].all(axis=1)  # keep a value in every row
    with_nan = np.where(mask, np.nan, X)
    masked = np.ma.masked_array(np.where(mask, 1e6, np.nan_to_num(X)), mask=mask | np.isnan(X))
    return with_nan, masked


@pytest.mark.parametrize("spec", SPECS, ids=[spec.name for spec in SPECS])
def test_a_masked_entry_is_missing(spec):
    rng = np.random.default_rng(0)
    kwargs, X = spec.example(rng)
    model = spec.cls(**kwargs)
    if not model._allow_nan:
        masked = np.ma.masked_array(X, mask=rng.random(X.shape) < 0.1)
        with pytest.raises(ValueError, match="masked array with .* masked entries"):
            spec.cls(**kwargs).fit(masked)
        unmasked = np.ma.masked_array(X, mask=False)  # nothing masked: plain data
        np.testing.assert_allclose(spec.cls(**kwargs).fit(unmasked).score(X),
                                   spec.cls(**kwargs).fit(X).score(X), rtol=1e-12)
        return
    with_nan, masked = _holes(X, rng)
    by_nan = spec.cls(**kwargs).fit(with_nan)
    by_mask = spec.cls(**kwargs).fit(masked)
    np.testing.assert_allclose(by_mask.score_samples(masked), by_nan.score_samples(with_nan),
                               rtol=1e-10)
    np.testing.assert_allclose(by_nan.score_samples(masked), by_nan.score_samples(with_nan),
                               rtol=1e-12)
    if callable(getattr(by_nan, "impute", None)):
        np.testing.assert_allclose(np.asarray(by_nan.impute(masked), dtype=float),
                                   np.asarray(by_nan.impute(with_nan), dtype=float),
                                   rtol=1e-12)
