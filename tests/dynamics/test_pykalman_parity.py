"""Drop-in parity with pykalman (issue 11): `latentkit.compat.KalmanFilter` and
`LinearDynamicalSystem` against pykalman's KalmanFilter on its robot data set (time-varying
transition offsets, a masked first step) and on random time-varying models: filter,
smoother, log-likelihood, the EM trajectory, online `filter_update`, masked arrays and
sampling. pykalman is the reference library here (tests only); the MATLAB results stored
with the robot data are a second, independent truth for the filter and smoother.
"""

import warnings

import numpy as np
import pytest
from pykalman import KalmanFilter as Reference

from helpers import assert_monotone
from latentkit import LinearDynamicalSystem
from latentkit.compat import KalmanFilter
from latentkit.dynamics import LDSParams, kalman_filter, rts_smoother
from latentkit.exceptions import InvalidParameterError
from lds_truth import PYKALMAN_NAMES, max_abs_diff, random_time_varying, robot

TOL = 1e-10  # absolute, on quantities of order 1 to 1e3
HELD = ("transition_matrix", "transition_offset", "observation_matrix", "observation_offset")


def lds_from(kwargs, **options):
    """The LinearDynamicalSystem with pykalman's constructor values."""
    names = dict(zip(PYKALMAN_NAMES, LDSParams._fields))
    public = {"A": "transition_matrix", "b": "transition_offset", "C": "observation_matrix",
              "d": "observation_offset", "Q": "transition_covariance",
              "R": "observation_covariance", "mu0": "initial_state_mean",
              "V0": "initial_state_covariance"}
    return LinearDynamicalSystem(**{public[names[k]]: v for k, v in kwargs.items()}, **options)


def parameters(kf):
    return [np.asarray(getattr(kf, name)) for name in PYKALMAN_NAMES]


def quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


# -- inference on the robot data ----------------------------------------------------------


def test_robot_filter_smoother_and_loglikelihood_match_pykalman():
    data, kwargs = robot()
    Z = data.observations
    reference = Reference(**kwargs)
    ref_filter, ref_smooth = reference.filter(Z), reference.smooth(Z)
    ref_ll = reference.loglikelihood(Z)
    ours = KalmanFilter(**kwargs)
    assert max_abs_diff(ours.filter(Z), ref_filter) < TOL
    assert max_abs_diff(ours.smooth(Z), ref_smooth) < TOL
    assert abs(ours.loglikelihood(Z) - ref_ll) < TOL
    model = lds_from(kwargs)  # unfitted, every parameter given
    for method in ("serial", "parallel"):
        model.set_params(method=method)
        filtered, smoothed = model.filter(Z), model.smooth(Z)
        assert max_abs_diff((filtered.mean, filtered.cov), ref_filter) < TOL
        assert max_abs_diff((smoothed.mean, smoothed.cov), ref_smooth) < TOL
        assert abs(model.loglikelihood(Z) - ref_ll) < TOL


def test_robot_filter_and_smoother_match_the_stored_matlab_results():
    """With the true Q and R, the filter and smoother reproduce the MATLAB results stored
    with the data set, and the log-likelihood its first stored value (same Q_0, R_0)."""
    data, kwargs = robot()
    Z = data.observations
    truth = KalmanFilter(**{**kwargs, "transition_covariance": data.transition_covariance,
                            "observation_covariance": data.observation_covariance})
    means, covs = truth.filter(Z)
    np.testing.assert_allclose(means, data.filtered_state_means, rtol=0, atol=1e-10)
    np.testing.assert_allclose(covs, data.filtered_state_covariances, rtol=0, atol=1e-10)
    means, covs = truth.smooth(Z)
    np.testing.assert_allclose(means, data.smoothed_state_means, rtol=0, atol=1e-10)
    np.testing.assert_allclose(covs, data.smoothed_state_covariances, rtol=0, atol=1e-10)
    assert abs(KalmanFilter(**kwargs).loglikelihood(Z) - data.loglikelihoods[0]) < 1e-9


# -- the EM trajectory --------------------------------------------------------------------


def test_robot_em_trajectory_matches_pykalman():
    """Parameters after each of 5 EM iterations, pykalman's default em_vars (Q, R, μ0, V0;
    A, C and the time-varying b held): the adapter and the model both."""
    data, kwargs = robot()
    Z = data.observations
    reference, ours = Reference(**kwargs), KalmanFilter(**kwargs)
    for n_iter in range(1, 6):
        reference.em(Z, n_iter=1)
        ours.em(Z, n_iter=1)
        assert max_abs_diff(parameters(ours), parameters(reference)) < TOL, n_iter
        model = quiet(lds_from(kwargs, fixed=HELD, reg_covar=0.0, tol=0.0,
                               max_iter=n_iter).fit, Z)
        fitted = [model.transition_matrix_, model.transition_offset_,
                  model.observation_matrix_, model.observation_offset_,
                  model.transition_covariance_, model.observation_covariance_,
                  model.initial_state_mean_, model.initial_state_covariance_]
        assert model.transition_offset_.shape == (500, 5)  # held time-varying
        assert max_abs_diff(fitted, parameters(reference)) < TOL, n_iter
    assert abs(ours.loglikelihood(Z) - reference.loglikelihood(Z)) < TOL


def test_robot_em_stays_on_symmetrized_pykalman_for_many_iterations():
    """pykalman's EM leaves Q slightly asymmetric, and the asymmetry grows (1e-9 after ten
    iterations here); with pykalman's covariances symmetrized after each iteration, the
    trajectories agree to round-off for 20 iterations."""
    data, kwargs = robot()
    Z = data.observations
    reference, ours = Reference(**kwargs), KalmanFilter(**kwargs)
    for n_iter in range(20):
        reference.em(Z, n_iter=1)
        for name in ("transition_covariance", "observation_covariance",
                     "initial_state_covariance"):
            S = getattr(reference, name)
            setattr(reference, name, 0.5 * (S + S.T))
        ours.em(Z, n_iter=1)
        assert max_abs_diff(parameters(ours), parameters(reference)) < TOL, n_iter


@pytest.mark.parametrize("em_vars", [
    "all",
    ["transition_offsets", "observation_covariance"],
    ["transition_matrices", "observation_matrices", "observation_offsets"],
])
def test_em_vars_follow_pykalman_update_order(em_vars):
    """Estimating the time-varying offset makes it constant (pykalman warns); matrices and
    offsets follow pykalman's order (matrix given the old offset, offset after)."""
    data, kwargs = robot()
    Z = data.observations
    reference = Reference(**kwargs, em_vars=em_vars)
    ours = KalmanFilter(**kwargs, em_vars=em_vars)
    for n_iter in range(3):
        quiet(reference.em, Z, n_iter=1)
        if em_vars == "all" or "transition_offsets" in em_vars:
            with pytest.warns(UserWarning, match="dimension") if n_iter == 0 else \
                    warnings.catch_warnings():
                ours.em(Z, n_iter=1)
        else:
            ours.em(Z, n_iter=1)
        assert max_abs_diff(parameters(ours), parameters(reference)) < TOL, n_iter


# -- online filtering ---------------------------------------------------------------------


def test_filter_update_step_by_step_equals_the_batch_filter():
    """Tracking: filter_update from step 0, with this step's time-varying offset given,
    reproduces the batch filter (and pykalman's filter_update); a masked observation (step
    0 here; step 7 masked below) is a pure prediction."""
    data, kwargs = robot()
    Z = data.observations.copy()
    Z[7] = np.ma.masked
    ours, reference, model = KalmanFilter(**kwargs), Reference(**kwargs), lds_from(kwargs)
    batch_means, batch_covs = ours.filter(Z)
    mean, cov = batch_means[0], batch_covs[0]
    lds_mean, lds_cov = mean, cov
    ref_mean, ref_cov = mean, cov
    worst = 0.0
    for t in range(1, len(Z)):
        b = data.transition_offsets[t - 1]
        mean, cov = ours.filter_update(mean, cov, Z[t], transition_offset=b)
        lds_mean, lds_cov = model.filter_update(lds_mean, lds_cov, Z[t], transition_offset=b)
        ref_mean, ref_cov = reference.filter_update(ref_mean, ref_cov, Z[t],
                                                    transition_offset=b)
        worst = max(worst, max_abs_diff((mean, cov, lds_mean, lds_cov, mean, cov),
                                        (batch_means[t], batch_covs[t], batch_means[t],
                                         batch_covs[t], ref_mean, ref_cov)))
    assert worst < TOL
    predicted = ours.filter_update(batch_means[6], batch_covs[6], None,
                                   transition_offset=data.transition_offsets[6])
    assert max_abs_diff(predicted, (batch_means[7], batch_covs[7])) < TOL


def test_filter_update_needs_this_steps_value_of_a_time_varying_parameter():
    data, kwargs = robot()
    mean, cov = data.initial_state_mean, data.initial_state_covariance
    with pytest.raises(InvalidParameterError, match="transition_offset is time-varying"):
        KalmanFilter(**kwargs).filter_update(mean, cov, data.observations[1])
    with pytest.raises(InvalidParameterError, match="transition_offset is time-varying"):
        lds_from(kwargs).filter_update(mean, cov, data.observations[1])


# -- time-varying matrices ----------------------------------------------------------------


def test_time_varying_matrices_match_pykalman():
    T = 60
    params = random_time_varying(3, 2, T, seed=5)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(T, 2)) * 3
    masked = np.ma.array(X, mask=np.zeros_like(X, dtype=bool))
    masked[[4, 30, 31]] = np.ma.masked
    kwargs = dict(zip(PYKALMAN_NAMES, params))
    reference = Reference(**kwargs)
    ref = (*reference.filter(masked), *reference.smooth(masked))
    ref_ll = reference.loglikelihood(masked)
    ours = KalmanFilter(**kwargs)
    assert max_abs_diff((*ours.filter(masked), *ours.smooth(masked)), ref) < TOL
    assert abs(ours.loglikelihood(masked) - ref_ll) < TOL
    for method in ("serial", "parallel"):
        filtered = kalman_filter(masked, params, method=method)
        smoothed = rts_smoother(masked, params, method=method)
        assert max_abs_diff((filtered.mean, filtered.cov, smoothed.mean, smoothed.cov),
                            ref) < TOL
        assert abs(filtered.log_likelihood - ref_ll) < TOL
    model = lds_from(kwargs)
    assert abs(model.loglikelihood(masked) - ref_ll) < TOL
    # EM with the time-varying matrices and offsets held (pykalman's default em_vars)
    for iteration in range(3):
        reference.em(masked, n_iter=1)
        ours.em(masked, n_iter=1)
        assert max_abs_diff(parameters(ours), parameters(reference)) < TOL, iteration


def test_time_varying_with_constant_steps_equals_time_invariant():
    """A time-varying model whose steps are all equal is the time-invariant model."""
    params = random_time_varying(2, 3, 40, seed=8)
    constant = params._replace(A=params.A[0], b=params.b[0], C=params.C[0], d=params.d[0])
    repeated = constant._replace(A=np.repeat(constant.A[None], 39, axis=0),
                                 C=np.repeat(constant.C[None], 40, axis=0))
    X = np.random.default_rng(9).normal(size=(40, 3))
    X[3, 1] = np.nan
    a, b = rts_smoother(X, constant), rts_smoother(X, repeated)
    assert max_abs_diff(a, b) < 1e-12


def test_em_with_held_time_varying_parameters_is_monotone():
    """EM learns Q, R, μ0, V0 of a time-varying model (batch of two sequences), serial
    and parallel kernels alike; a time-varying value EM would have to learn is an error."""
    params = random_time_varying(2, 3, 50, seed=13)
    given = dict(zip(("transition_matrix", "transition_offset", "observation_matrix",
                      "observation_offset", "transition_covariance", "observation_covariance",
                      "initial_state_mean", "initial_state_covariance"), params))
    X, _ = LinearDynamicalSystem(**given).sample(50, random_state=14, n_sequences=2)
    X[0, 3, 1] = X[1, 7] = np.nan
    fits = [quiet(LinearDynamicalSystem(**given, fixed=HELD, max_iter=15, tol=0.0,
                                        method=method).fit, X)
            for method in ("serial", "parallel")]
    for model in fits:
        assert_monotone(model.history_)
        assert model.observation_matrix_.shape == (50, 3, 2)
    assert max_abs_diff(fits[0].history_, fits[1].history_) < 1e-10
    with pytest.raises(InvalidParameterError, match="time-varying .* not held"):
        LinearDynamicalSystem(**given, fixed=HELD[:3]).fit(X)


def test_a_time_varying_model_too_short_for_the_data_is_a_clear_error():
    params = random_time_varying(2, 2, 10, seed=10)
    with pytest.raises(InvalidParameterError, match="needs 10"):
        kalman_filter(np.zeros((11, 2)), params)
    _, kwargs = robot()
    with pytest.raises(InvalidParameterError, match="transition_offset is time-varying"):
        lds_from(kwargs, fixed=HELD).fit(np.zeros((600, 2)))


# -- masked arrays ------------------------------------------------------------------------


def test_masked_entries_are_missing_in_the_local_level_model():
    """A masked entry counts as missing (NaN), not as its stored value: the local-level
    log-likelihood on the masked array equals the one with NaN there and pykalman's."""
    rng = np.random.default_rng(11)
    level = np.cumsum(rng.normal(scale=0.5, size=40))
    x = (level + rng.normal(size=40)).reshape(-1, 1)
    masked = np.ma.array(x, mask=np.zeros_like(x, dtype=bool))
    masked[[5, 6, 20]] = np.ma.masked
    masked.data[[5, 6, 20]] = 50.0  # stored values a masked entry must not leak
    with_nan = np.where(masked.mask, np.nan, masked.data)
    model = LinearDynamicalSystem.local_level(
        transition_covariance=0.25, observation_covariance=1.0, initial_state_mean=0.0)
    model.set_params(initial_state_covariance=10.0)
    ll_masked, ll_nan = model.loglikelihood(masked), model.loglikelihood(with_nan)
    reference = Reference(1.0, 1.0, 0.25, 1.0, initial_state_mean=0.0,
                          initial_state_covariance=10.0).loglikelihood(masked)
    assert abs(ll_masked - ll_nan) < 1e-12
    assert abs(ll_masked - reference) < 1e-10
    assert ll_masked != pytest.approx(model.loglikelihood(masked.data))
    fitted = quiet(LinearDynamicalSystem.local_level(max_iter=5).fit, masked)
    same = quiet(LinearDynamicalSystem.local_level(max_iter=5).fit, with_nan)
    assert fitted.history_ == pytest.approx(same.history_, rel=1e-12)


def test_a_partly_masked_step_is_missing_per_entry_in_the_model_and_as_a_whole_in_compat():
    """The model drops a masked entry only (NaN semantics); the adapter drops the whole
    step, as pykalman does."""
    data, kwargs = robot()
    Z = data.observations.copy()
    Z[10, 0] = np.ma.masked
    with_nan = np.where(np.ma.getmaskarray(Z), np.nan, np.ma.getdata(Z))
    model = lds_from(kwargs)
    assert abs(model.loglikelihood(Z) - model.loglikelihood(with_nan)) < 1e-12
    np.testing.assert_allclose(model.impute(Z), model.impute(with_nan), rtol=1e-12)
    assert not np.isnan(model.impute(Z)).any()
    assert abs(KalmanFilter(**kwargs).loglikelihood(Z)
               - Reference(**kwargs).loglikelihood(Z)) < TOL
    whole = with_nan.copy()
    whole[10] = np.nan
    assert abs(KalmanFilter(**kwargs).loglikelihood(Z) - model.loglikelihood(whole)) < TOL


# -- sampling -----------------------------------------------------------------------------


@pytest.mark.parametrize("initial_state", [None, np.ones(5)])
def test_sample_draws_what_pykalman_draws(initial_state):
    """Same seed, same draws: the states and observations pykalman's sample makes."""
    data, kwargs = robot()
    ours = KalmanFilter(**kwargs, random_state=0)
    reference = Reference(**kwargs, random_state=0)
    states, observations = ours.sample(300, initial_state=initial_state)
    ref_states, ref_observations = reference.sample(300, initial_state=initial_state)
    assert isinstance(observations, np.ma.MaskedArray)
    assert max_abs_diff((states, observations), (ref_states, ref_observations)) < 1e-9
    again = ours.sample(50, initial_state=initial_state, random_state=3)
    ref_again = reference.sample(50, initial_state=initial_state, random_state=3)
    assert max_abs_diff(again, ref_again) < 1e-9


def test_pykalman_defaults_and_dimensions():
    """Unset parameters take pykalman's defaults (identity matrices, zero offsets)."""
    X = np.random.default_rng(12).normal(size=(30, 2))
    ours, reference = KalmanFilter(n_dim_state=3, n_dim_obs=2), Reference(n_dim_state=3,
                                                                         n_dim_obs=2)
    assert (ours.n_dim_state, ours.n_dim_obs) == (3, 2)
    assert max_abs_diff(ours.smooth(X), reference.smooth(X)) < TOL
    ours.em(X, n_iter=3, em_vars="all")
    reference.em(X, n_iter=3, em_vars="all")
    assert max_abs_diff(parameters(ours), parameters(reference)) < TOL
