"""GaussianMixture.from_parameters (issue 10 part 6): a mixture built from known weights,
means and covariances scores (against scipy's densities summed by hand), predicts, samples
(Monte Carlo moments), imputes and saves without fit; bad inputs name their argument.
"""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from latentkit import ConvergenceWarning, GaussianMixture, load
from latentkit.exceptions import InvalidParameterError

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0, 0.0], [4.0, -1.0, 2.0], [-3.0, 3.0, 1.0]])
FULL = np.array([[[1.0, 0.3, 0.0], [0.3, 2.0, 0.4], [0.0, 0.4, 0.5]],
                 [[0.5, 0.0, 0.1], [0.0, 0.5, 0.0], [0.1, 0.0, 1.5]],
                 [[2.0, -0.6, 0.0], [-0.6, 1.0, 0.0], [0.0, 0.0, 0.3]]])
COVARIANCES = {"full": FULL, "tied": FULL[0], "diag": np.array([[1.0, 2.0, 0.5],
                                                                 [0.5, 0.5, 1.5],
                                                                 [2.0, 1.0, 0.3]]),
               "spherical": np.array([1.0, 0.5, 2.0])}


def dense(covariance_type):
    covariances = COVARIANCES[covariance_type]
    return {"full": lambda c: c, "tied": lambda c: np.broadcast_to(c, (3, 3, 3)),
            "diag": lambda c: np.stack([np.diag(v) for v in c]),
            "spherical": lambda c: np.stack([v * np.eye(3) for v in c])}[covariance_type](
        covariances)


def points(n=50, seed=0):
    return np.random.default_rng(seed).normal(scale=3.0, size=(n, 3))


@pytest.mark.parametrize("covariance_type", list(COVARIANCES))
def test_scores_equal_scipy_densities(covariance_type):
    model = GaussianMixture.from_parameters(WEIGHTS, MEANS, COVARIANCES[covariance_type],
                                            covariance_type)
    X = points()
    component = np.stack([multivariate_normal(m, S).pdf(X)
                          for m, S in zip(MEANS, dense(covariance_type))], axis=1)
    np.testing.assert_allclose(model.score_samples(X), np.log(component @ WEIGHTS),
                               rtol=1e-10, atol=1e-10)
    posterior = component * WEIGHTS / (component @ WEIGHTS)[:, None]
    np.testing.assert_allclose(model.predict_proba(X), posterior, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X), np.argmax(posterior, axis=1))


@pytest.mark.parametrize("covariance_type", list(COVARIANCES))
def test_fitted_attributes(covariance_type):
    model = GaussianMixture.from_parameters(WEIGHTS, MEANS, COVARIANCES[covariance_type],
                                            covariance_type)
    assert model.n_components == 3 and model.covariance_type == covariance_type
    assert model.n_features_in_ == 3 and model.converged_ and model.n_iter_ == 0
    assert model.history_.shape == (0,)
    np.testing.assert_allclose(model.em_state_.shift, WEIGHTS @ MEANS)
    np.testing.assert_array_equal(model.covariances_, COVARIANCES[covariance_type])
    inverse = np.linalg.inv(dense(covariance_type))
    precisions = {"full": lambda: inverse, "tied": lambda: inverse[0],
                  "diag": lambda: np.diagonal(inverse, axis1=1, axis2=2),
                  "spherical": lambda: inverse[:, 0, 0]}[covariance_type]()
    np.testing.assert_allclose(model.precisions_, precisions, rtol=1e-12)


def test_sample_moments():
    """Component frequencies within 5 binomial sd; component means within 5 sd of the mean
    of their draws; covariances within 0.1 (n = 60000)."""
    model = GaussianMixture.from_parameters(WEIGHTS, MEANS, FULL)
    n = 60_000
    X, z = model.sample(n, random_state=1)
    frequencies = np.bincount(z, minlength=3) / n
    assert np.all(np.abs(frequencies - WEIGHTS) < 5 * np.sqrt(WEIGHTS * (1 - WEIGHTS) / n))
    for k in range(3):
        Xk = X[z == k]
        sd = np.sqrt(np.diag(FULL[k]) / len(Xk))
        assert np.all(np.abs(Xk.mean(axis=0) - MEANS[k]) < 5 * sd)
        np.testing.assert_allclose(np.cov(Xk.T), FULL[k], atol=0.1)


def test_impute_and_save_load_round_trip(tmp_path):
    model = GaussianMixture.from_parameters(WEIGHTS, MEANS, FULL)
    X = points(20, seed=3)
    X[::3, 1] = np.nan
    filled = model.impute(X)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])
    path = tmp_path / "given.lk"
    model.save(path)
    loaded = load(path)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.impute(X), filled)
    np.testing.assert_array_equal(loaded.em_state_.shift, model.em_state_.shift)


def test_refit_from_given_parameters():
    """The model is an ordinary estimator: warm_start continues EM from the given values."""
    model = GaussianMixture.from_parameters(WEIGHTS, MEANS, FULL, warm_start=True,
                                            max_iter=5, tol=0.0, random_state=0)
    X, _ = model.sample(500, random_state=2)
    before = model.score(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    assert model.n_iter_ == 5 and model.score(X) >= before


@pytest.mark.parametrize("kwargs, name", [
    (dict(weights=[0.5, 0.3, 0.3]), "weights"),
    (dict(weights=[1.2, -0.4, 0.2]), "weights"),
    (dict(weights=[[0.5, 0.3, 0.2]]), "weights"),
    (dict(weights=[0.5, np.nan, 0.5]), "weights"),
    (dict(means=MEANS[:2]), "means"),
    (dict(means=MEANS[:, :2]), "covariances"),
    (dict(means=MEANS.ravel()), "means"),
    (dict(covariances=FULL[:2]), "covariances"),
    (dict(covariances=FULL + np.triu(np.ones((3, 3)), 1)), "covariances must be symmetric"),
    (dict(covariances=FULL - 2 * np.eye(3)), "covariances must be positive definite"),
    (dict(covariances=COVARIANCES["diag"], covariance_type="diag"), None),
    (dict(covariances=-COVARIANCES["diag"], covariance_type="diag"),
     "covariances must be positive definite"),
    (dict(covariances=np.array([1.0, 0.0, 2.0]), covariance_type="spherical"),
     "covariances must be positive definite"),
    (dict(covariance_type="banana"), "covariance_type"),
])
def test_bad_parameters_name_the_argument(kwargs, name):
    arguments = dict(weights=WEIGHTS, means=MEANS, covariances=FULL, covariance_type="full")
    arguments.update(kwargs)
    if name is None:  # the valid control case
        GaussianMixture.from_parameters(**arguments)
        return
    with pytest.raises(InvalidParameterError, match=name):
        GaussianMixture.from_parameters(**arguments)
