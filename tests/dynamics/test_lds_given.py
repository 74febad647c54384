"""A LinearDynamicalSystem built from known parameters, used without fit (issue 10 part 6):
against pykalman's KalmanFilter built from the same parameters, and against the fitted
path (a model fitted with every parameter held gives the same numbers).
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from latentkit import ConvergenceWarning
from latentkit.dynamics import LinearDynamicalSystem, simulate
from latentkit.dynamics._params import PUBLIC_NAMES
from latentkit.exceptions import InvalidParameterError
from lds_truth import pykalman_reference, random_params


def given_model(params, **kwargs):
    """The unfitted model whose constructor holds every parameter of `params`."""
    return LinearDynamicalSystem(**{name: value for name, value in
                                    zip(PUBLIC_NAMES, params)}, **kwargs)


@pytest.fixture(scope="module")
def problem():
    params = random_params(3, 2, seed=21)
    X, _ = simulate(params, 50, random_state=22)
    X[[4, 20, 21]] = np.nan  # whole rows: pykalman masks rows only
    return params, X


def test_filter_and_smooth_without_fit_match_pykalman(problem):
    params, X = problem
    ref_fm, ref_fc, ref_sm, ref_sc, ref_ll = pykalman_reference(params, X)
    model = given_model(params)
    filtered, smoothed = model.filter(X), model.smooth(X)
    np.testing.assert_allclose(filtered.mean, ref_fm, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(filtered.cov, ref_fc, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(smoothed.mean, ref_sm, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(smoothed.cov, ref_sc, rtol=1e-8, atol=1e-8)
    assert abs(model.score_samples(X)[0] - ref_ll) < 1e-8 * abs(ref_ll)
    assert not hasattr(model, "transition_matrix_")  # inference sets no fitted attribute


def test_offsets_default_to_zero_as_in_pykalman():
    from pykalman import KalmanFilter

    params = random_params(2, 3, seed=23, offsets=False)
    X, _ = simulate(params, 30, random_state=24)
    A, _, C, _, Q, R, mu0, V0 = params
    model = LinearDynamicalSystem(
        transition_matrix=A, observation_matrix=C, transition_covariance=Q,
        observation_covariance=R, initial_state_mean=mu0, initial_state_covariance=V0)
    ref_fm, _ = KalmanFilter(A, C, Q, R, initial_state_mean=mu0,
                             initial_state_covariance=V0).filter(X)
    np.testing.assert_allclose(model.filter(X).mean, ref_fm, rtol=1e-8, atol=1e-8)


def test_every_method_matches_the_fitted_path(problem):
    """max_iter=0 with every parameter held: the fitted attributes are the given values."""
    params, X = problem
    given = given_model(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = given_model(params, max_iter=0, fixed=tuple(PUBLIC_NAMES)).fit(X)
    for name, value in zip(PUBLIC_NAMES, params):
        np.testing.assert_array_equal(getattr(fitted, name + "_"), value)
    for method in ("filter", "smooth"):
        for a, b in zip(getattr(given, method)(X), getattr(fitted, method)(X)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(given.forecast(X, 5), fitted.forecast(X, 5)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(given.score_samples(X), fitted.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(given.impute(X), fitted.impute(X), rtol=1e-12)
    assert not np.isnan(given.impute(X)).any()
    np.testing.assert_allclose(given.transform(X), fitted.transform(X), rtol=1e-12)
    for a, b in zip(given.sample(40, random_state=5), fitted.sample(40, random_state=5)):
        np.testing.assert_array_equal(a, b)


def test_batches_and_lists_without_fit(problem):
    params, X = problem
    model = given_model(params)
    batch = np.stack([X, X[::-1]])
    assert model.filter(batch).mean.shape == (2, 50, 3)
    assert len(model.smooth([X, X[:10]])) == 2
    assert model.score_samples([X, X[:10]]).shape == (2,)
    Xs, Zs = model.sample(7, random_state=1, n_sequences=3)
    assert Xs.shape == (3, 7, 2) and Zs.shape == (3, 7, 3)


def test_missing_parameters_are_named():
    params = random_params(2, 2, seed=25)
    A, b, C, d, Q, R, mu0, V0 = params
    partial = LinearDynamicalSystem(transition_matrix=A, observation_matrix=C,
                                    transition_covariance=Q)
    with pytest.raises(NotFittedError, match="call fit") as info:
        partial.filter(np.zeros((5, 2)))
    message = str(info.value)
    for name in ("observation_covariance", "initial_state_mean", "initial_state_covariance"):
        assert name in message
    assert "transition_matrix," not in message and "offset" not in message
    with pytest.raises(NotFittedError, match="missing: transition_matrix"):
        LinearDynamicalSystem(2).sample(3)


def test_given_values_are_validated(problem):
    params, X = problem
    bad = params._replace(Q=-np.eye(3))
    with pytest.raises(InvalidParameterError, match="transition_covariance"):
        given_model(bad).filter(X)
    with pytest.raises(InvalidParameterError, match="observation_offset"):
        given_model(params._replace(d=np.zeros(3))).smooth(X)
    with pytest.raises(ValueError, match="features"):
        given_model(params).filter(np.zeros((5, 4)))
    with pytest.raises(InvalidParameterError, match="method"):
        given_model(params, method="fast").filter(X)
