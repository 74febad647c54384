"""Regressions for LinearDynamicalSystem defects found by the property-based fuzz suite
(tests/fuzz): each reproducer is the fuzz suite's own minimal example."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from latentkit import LinearDynamicalSystem
from latentkit.em import loop
from latentkit.exceptions import UserError


def _fit_quietly(model, X):
    """fit with EM's (expected) ConvergenceWarning silenced and any other warning an
    error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def _assert_psd_plus_reg(S, reg_covar):
    S = np.asarray(S)
    assert np.all(np.isfinite(S))
    np.testing.assert_array_equal(S, S.T)
    assert np.linalg.eigvalsh(S)[0] >= reg_covar * (1 - 1e-9)


@pytest.mark.parametrize("X", [np.full((2, 1), 2e8), np.full((3, 1), 10000001257.30221),
                               np.full((2, 1), 112573022.10933933)])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_constant_sequence_learns_positive_observation_variance(X, covariance_type):
    # The residual scatter of a constant sequence at scale 1e8 is round-off; formed from
    # moment sums it came out negative (R = [[-8.0]]) and the model refused its own
    # parameters.
    model = _fit_quietly(LinearDynamicalSystem(1, max_iter=2, tol=0, random_state=0,
                                               covariance_type=covariance_type), X)
    for S in (model.observation_covariance_, model.transition_covariance_,
              model.initial_state_covariance_):
        _assert_psd_plus_reg(S, model.reg_covar)
    assert np.all(np.isfinite(model.score_samples(X)))
    model.sample(3, random_state=0)


def test_initial_state_covariance_stays_positive_semidefinite():
    X = np.full((5, 2), [3.4558419206478605e-09, 82161814.35011584])
    model = _fit_quietly(LinearDynamicalSystem(1, max_iter=2, tol=0, random_state=0), X)
    _assert_psd_plus_reg(model.initial_state_covariance_, model.reg_covar)
    _assert_psd_plus_reg(model.observation_covariance_, model.reg_covar)


@pytest.mark.parametrize("x", [1e-9, 1.257302210933933e-09, 3.0, -2e5])
def test_single_time_step_fits_without_warnings(x):
    # One time step: Cov(x) is undefined (np.cov warned "Degrees of freedom <= 0" and gave
    # NaN, and fit raised LinAlgError); it now starts at the identity.
    model = _fit_quietly(LinearDynamicalSystem(1, max_iter=1), np.array([[x]]))
    _assert_psd_plus_reg(model.observation_covariance_, model.reg_covar)
    assert np.isfinite(model.score(np.array([[x]])))


def test_single_time_step_several_features():
    X = np.array([[1.0, -2.0, 1e-3]])
    model = _fit_quietly(LinearDynamicalSystem(2, max_iter=2, tol=0, random_state=0), X)
    assert np.all(np.isfinite(model.score_samples(X)))


def test_short_mixed_scale_sequence_fits_finitely():
    # Raised numpy's LinAlgError from the Kalman filter (a negative learned variance).
    X = np.array([[1.257302210933933e-09, -1.3210486329130189e-09, 64042265.044328205],
                  [1.049001171530397e-09, -5.3566937316111095e-09, np.nan]])
    for method in ("auto", "parallel"):
        model = _fit_quietly(LinearDynamicalSystem(1, max_iter=2, tol=0, random_state=0,
                                                   method=method), X)
        _assert_psd_plus_reg(model.observation_covariance_, model.reg_covar)
        assert np.all(np.isfinite(model.score_samples(X)))


def _record_steps():
    steps, real = [], loop._announce

    def announce(info, stacklevel):
        steps.append(info)
        return real(info, stacklevel + 1)
    return steps, real, announce


@pytest.mark.parametrize("X", [
    np.array([[-9.51745590290253e-09, 6.105070879081706e-08], [-1.4814067999220867e-08, np.nan]]),
    np.array([[3.45584192064786e-05], [8.216181435011584e-05]]),
])
def test_regularized_m_step_declares_its_slack(X):
    # The M-step adds reg_covar (it maximizes Q - (r/2) N tr Σ^{-1}), so the log-likelihood
    # may fall: the step must declare that bound as StepInfo.slack, and the engine's guard
    # must not warn.
    steps, real, announce = _record_steps()
    loop._announce = announce
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warnings.filterwarnings("ignore", "EM did not converge", ConvergenceWarning)
            model = LinearDynamicalSystem(1, max_iter=3, tol=0, random_state=0).fit(X)
    finally:
        loop._announce = real
    h = model.history_
    n_rows = len(X)
    for i in range(1, len(h)):
        allowed = loop.monotone_tolerance(h[i], np.float64) + steps[i - 1].slack / n_rows
        assert h[i - 1] - h[i] <= allowed, (h, [s.slack for s in steps])
    assert all(s.slack >= 0 for s in steps)


def test_unregularized_m_step_declares_no_slack():
    X = np.array([[-9.51745590290253e-09, 6.105070879081706e-08],
                  [-1.4814067999220867e-08, np.nan]])
    steps, real, announce = _record_steps()
    loop._announce = announce
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LinearDynamicalSystem(1, max_iter=3, tol=0, random_state=0,
                                          reg_covar=0.0).fit(X)
    finally:
        loop._announce = real
    assert all(s.slack == 0 for s in steps)
    assert np.all(np.diff(model.history_) >= -1e-12 * np.abs(model.history_[1:]))


nan = np.nan
OUT_OF_RANGE = [
    # columns at 1e49..1e106 next to ones at 1e-9: overflow (RuntimeWarnings) and numpy's
    # LinAlgError before
    np.array([[2.809516179651632e-10, nan, -1.59474274159418e+100, 1.7125326055069895e-09],
              [nan, 5.922003008768388e-09, nan, 1.0520123674760293e-08]]),
    np.array([[nan, 0.0099999986, 0.0100000064, nan],
              [0.0100000013, nan, nan, 1.0000001049001171e+106],
              [0.0099999930, 0.0099999873, nan, 1.0000000413259794e+106],
              [nan, nan, 0.0100000064, nan],
              [0.0099999946, 0.0099999968, 0.0100000041, nan],
              [0.0100000090, 0.0100000009, 0.0099999926, nan],
              [nan, 0.0099999987, nan, 1.0000001049001171e+106]]),
    np.tile([[nan, 2.7527005198043214e+49, nan, -4.043954520100749e+100],
             [-0.0046831600097801, 2.7527005198043214e+49, -9.345141199804867e-09, nan],
             [nan, nan, -8.981126503467148e-08, -4.043954520100749e+100]], (4, 1)),
]


@pytest.mark.parametrize("X", OUT_OF_RANGE)
@pytest.mark.parametrize("state_dim", [1, 2])
def test_out_of_range_scales_raise_a_documented_error(X, state_dim):
    # Either a finite fit or a UserError that names the remedy; never numpy's LinAlgError,
    # a non-finite objective (FloatingPointError) or a RuntimeWarning.
    model = LinearDynamicalSystem(state_dim, max_iter=2, tol=0, random_state=0)
    try:
        _fit_quietly(model, X)
    except UserError as exc:
        assert isinstance(exc, ValueError)
        assert "Rescale" in str(exc) and "reg_covar" in str(exc)
    else:  # (at scale 1e100, reg_covar is below the round-off of the largest eigenvalue)
        assert np.all(np.isfinite(model.score_samples(X)))
        assert np.all(np.isfinite(model.observation_covariance_))
