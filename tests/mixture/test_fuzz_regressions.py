"""Regressions for the mixtures on hostile scales (issue 12): columns whose scales differ
by 250 orders of magnitude, all within the scale limit."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from latentkit import GaussianMixture, MixtureOfPPCA


def _spread(n=40, offset=0.0):
    X = np.random.default_rng(0).standard_normal((n, 4)) + offset
    X[:, 0] *= 1e-150
    X[:, 1] *= 1e100
    return X


@pytest.mark.parametrize("offset", [0.0, 5.0])
@pytest.mark.parametrize("make", [
    *(lambda kind=kind: GaussianMixture(2, covariance_type=kind, random_state=0)
      for kind in ("full", "tied", "diag", "spherical")),
    lambda: MixtureOfPPCA(2, 1, random_state=0),
])
def test_mixtures_on_columns_of_very_different_scales_stay_finite(make, offset):
    X = _spread(offset=offset)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make().fit(X)
        assert np.all(np.isfinite(model.score_samples(X)))
        assert np.all(np.isfinite(model.predict_proba(X)))
