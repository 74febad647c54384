"""Kalman filter, RTS smoother, posterior sampling and forecasting (latentkit.dynamics.kalman)
against independent truths: brute-force conditioning of the dense joint Gaussian over all
states, pykalman and filterpy on the same model, the associative-scan kernels against the
serial ones, and Monte Carlo moments of posterior draws.
"""


import numpy as np
import pytest

from latentkit.dynamics import (
    forecast,
    kalman_filter,
    rts_smoother,
    sample_posterior,
    simulate,
)
from lds_truth import block, brute_force, pykalman_reference, random_params, with_missing


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("method", ["serial", "parallel"])
def test_filter_and_smoother_equal_brute_force_conditioning(missing, method):
    params = random_params(3, 2, seed=1)
    X, _ = simulate(params, 8, random_state=2)
    if missing:
        X = with_missing(X, 3)
    n, T = 3, len(X)
    filt = kalman_filter(X, params, method=method)
    smooth = rts_smoother(X, params, method=method)
    mean, cov, ll = brute_force(params, X)
    np.testing.assert_allclose(smooth.mean, mean, atol=1e-10, rtol=0)
    for t in range(T):
        np.testing.assert_allclose(smooth.cov[t], block(cov, n, t, t), atol=1e-10, rtol=0)
        if t:
            np.testing.assert_allclose(smooth.cross_cov[t], block(cov, n, t, t - 1),
                                       atol=1e-10, rtol=0)
    assert abs(filt.log_likelihood - ll) < 1e-10 * max(1.0, abs(ll))
    assert abs(smooth.log_likelihood - ll) < 1e-10 * max(1.0, abs(ll))
    for t in range(T):  # filtered: condition on x_1..x_t; predicted: on x_1..x_{t-1}
        mean_t, cov_t, ll_t = brute_force(params, X, upto=t + 1)
        np.testing.assert_allclose(filt.mean[t], mean_t[t], atol=1e-10, rtol=0)
        np.testing.assert_allclose(filt.cov[t], block(cov_t, n, t, t), atol=1e-10, rtol=0)
        mean_p, cov_p, ll_p = brute_force(params, X, upto=t)
        np.testing.assert_allclose(filt.predicted_mean[t], mean_p[t], atol=1e-10, rtol=0)
        np.testing.assert_allclose(filt.predicted_cov[t], block(cov_p, n, t, t), atol=1e-10,
                                   rtol=0)
        assert abs(filt.step_log_likelihood[t] - (ll_t - ll_p)) < 1e-10 * max(1, abs(ll_t))


def test_forecast_equals_brute_force_conditioning():
    params = random_params(2, 3, seed=4)
    X, _ = simulate(params, 9, random_state=5)
    X = with_missing(X, 6)
    T, k = 6, 3
    X_future = X.copy()
    X_future[T:] = np.nan
    fc = forecast(X[:T], params, k)
    z_mean, z_cov, _ = brute_force(params, X_future)
    n = 2
    for j in range(k):
        t = T + j
        np.testing.assert_allclose(fc.state_mean[j], z_mean[t], atol=1e-10, rtol=0)
        np.testing.assert_allclose(fc.state_cov[j], block(z_cov, n, t, t), atol=1e-10, rtol=0)
        np.testing.assert_allclose(fc.mean[j], params.C @ z_mean[t] + params.d, atol=1e-10)
        np.testing.assert_allclose(fc.cov[j], params.C @ block(z_cov, n, t, t) @ params.C.T
                                   + params.R, atol=1e-10, rtol=0)


def test_parallel_scan_equals_serial_on_long_batched_and_missing_data():
    params = random_params(4, 3, seed=7)
    X, _ = simulate(params, 301, n_sequences=3, random_state=8)
    X = np.stack([with_missing(x, i) for i, x in enumerate(X)])
    X[1, 100:140] = np.nan
    serial = rts_smoother(X, params, method="serial")
    parallel = rts_smoother(X, params, method="parallel")
    for a, b in zip(serial, parallel):
        np.testing.assert_allclose(a, b, atol=1e-9, rtol=1e-9)
    fs, fp = kalman_filter(X, params, method="serial"), kalman_filter(X, params,
                                                                       method="parallel")
    for a, b in zip(fs, fp):
        np.testing.assert_allclose(a, b, atol=1e-9, rtol=1e-9)


def test_layouts_single_batch_and_list_agree():
    params = random_params(2, 2, seed=9)
    long, _ = simulate(params, 30, random_state=1)
    short, _ = simulate(params, 12, random_state=2)
    results = rts_smoother([long, short, long], params)
    assert isinstance(results, list) and len(results) == 3
    one = rts_smoother(long, params)
    assert one.mean.shape == (30, 2) and isinstance(one.log_likelihood, float)
    np.testing.assert_allclose(results[0].mean, one.mean, atol=1e-12)
    np.testing.assert_allclose(results[1].cov, rts_smoother(short, params).cov, atol=1e-12)
    batch = kalman_filter(np.stack([long, long]), params)
    assert batch.mean.shape == (2, 30, 2) and batch.log_likelihood.shape == (2,)
    np.testing.assert_allclose(batch.log_likelihood, kalman_filter(long, params)
                               .log_likelihood, rtol=1e-12)


# -- reference libraries ------------------------------------------------------------------


def test_agrees_with_pykalman():
    params = random_params(3, 2, seed=11)
    X, _ = simulate(params, 60, random_state=12)
    X[[5, 17, 18]] = np.nan  # pykalman drops whole rows only
    ref_fm, ref_fc, ref_sm, ref_sc, ref_ll = pykalman_reference(params, X)
    filt, smooth = kalman_filter(X, params), rts_smoother(X, params)
    np.testing.assert_allclose(filt.mean, ref_fm, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(filt.cov, ref_fc, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(smooth.mean, ref_sm, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(smooth.cov, ref_sc, rtol=1e-8, atol=1e-8)
    assert abs(filt.log_likelihood - ref_ll) < 1e-8 * abs(ref_ll)


def test_agrees_with_filterpy():
    from filterpy.kalman import KalmanFilter

    params = random_params(3, 2, seed=13, offsets=False)  # filterpy's RTS has no offsets
    X, _ = simulate(params, 60, random_state=14)
    X[[7, 30]] = np.nan
    A, _, C, _, Q, R, mu0, V0 = params
    kf = KalmanFilter(dim_x=3, dim_z=2)
    kf.x, kf.P, kf.F, kf.H, kf.Q, kf.R = mu0.copy(), V0.copy(), A, C, Q, R
    means, covs, ll = [], [], 0.0
    for x in X:  # x_t updates the prediction for z_t, then predict z_{t+1}
        if not np.isnan(x).any():
            kf.update(x)
            ll += kf.log_likelihood
        means.append(kf.x.copy())
        covs.append(kf.P.copy())
        kf.predict()
    means, covs = np.array(means), np.array(covs)
    smoothed_means, smoothed_covs, _, _ = kf.rts_smoother(means, covs, Fs=[A] * len(X),
                                                           Qs=[Q] * len(X))
    filt, smooth = kalman_filter(X, params), rts_smoother(X, params)
    np.testing.assert_allclose(filt.mean, means, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(filt.cov, covs, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(smooth.mean, smoothed_means, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(smooth.cov, smoothed_covs, rtol=1e-8, atol=1e-8)
    assert abs(filt.log_likelihood - ll) < 1e-8 * abs(ll)


# -- posterior sampling -------------------------------------------------------------------


def test_posterior_samples_have_the_smoothers_moments():
    """20,000 FFBS draws: every mean, variance and lag-one covariance of z_t | x_{1:T}
    within 5 Monte Carlo standard errors of the smoother's (fixed seed)."""
    params = random_params(2, 2, seed=15)
    X, _ = simulate(params, 25, random_state=16)
    X = with_missing(X, 17)
    n_draws = 20_000
    draws = sample_posterior(X, params, n_draws, random_state=18)
    assert draws.shape == (n_draws, 25, 2)
    smooth = rts_smoother(X, params)
    var = np.diagonal(smooth.cov, axis1=1, axis2=2)
    se_mean = np.sqrt(var / n_draws)
    assert np.all(np.abs(draws.mean(axis=0) - smooth.mean) < 5 * se_mean)
    centred = draws - smooth.mean
    emp_var = (centred**2).mean(axis=0)
    se_var = var * np.sqrt(2 / n_draws)  # sd of a Gaussian sample variance
    assert np.all(np.abs(emp_var - var) < 5 * se_var)
    emp_cross = np.einsum("sti,stj->tij", centred[:, 1:], centred[:, :-1]) / n_draws
    cross = smooth.cross_cov[1:]
    v1, v0 = var[1:, :, None], var[:-1, None, :]
    se_cross = np.sqrt((v1 * v0 + cross**2) / n_draws)  # sd of a sample covariance
    assert np.all(np.abs(emp_cross - cross) < 5 * se_cross)


def test_posterior_samples_for_a_batch_and_a_list():
    params = random_params(2, 2, seed=19)
    X, _ = simulate(params, 10, n_sequences=2, random_state=20)
    assert sample_posterior(X, params, 3, random_state=0).shape == (2, 3, 10, 2)
    draws = sample_posterior([X[0], X[1][:4]], params, 3, random_state=0)
    assert [d.shape for d in draws] == [(3, 10, 2), (3, 4, 2)]


# -- bad input ----------------------------------------------------------------------------


def test_bad_parameters_and_data_are_clear_errors():
    params = random_params(2, 2, seed=21)
    X, _ = simulate(params, 10, random_state=22)
    bad_Q = params._replace(Q=np.array([[1.0, 0.0], [0.0, -0.5]]))
    with pytest.raises(ValueError, match="transition_covariance must be positive semi-def"):
        kalman_filter(X, bad_Q)
    with pytest.raises(ValueError, match="observation_covariance must be symmetric"):
        kalman_filter(X, params._replace(R=np.array([[1.0, 0.5], [0.0, 1.0]])))
    with pytest.raises(ValueError, match="initial_state_covariance must be positive"):
        kalman_filter(X, params._replace(V0=-np.eye(2)))
    with pytest.raises(ValueError, match=r"observation_matrix must have shape \(2, 2\)"):
        kalman_filter(X, params._replace(C=np.ones((2, 3))))
    with pytest.raises(ValueError, match="transition_matrix must be square"):
        kalman_filter(X, params._replace(A=np.ones((2, 3))))
    with pytest.raises(ValueError, match="transition_offset contains NaN or inf"):
        kalman_filter(X, params._replace(b=np.array([np.inf, 0.0])))
    X_inf = X.copy()
    X_inf[3, 1] = np.inf
    with pytest.raises(ValueError, match="inf at row 3, column 1"):
        rts_smoother(X_inf, params)
    with pytest.raises(ValueError, match="3 features but 2 are expected"):
        kalman_filter(np.ones((5, 3)), params)
    with pytest.raises(ValueError, match="reshape"):
        kalman_filter(np.ones(5), params)
    with pytest.raises(ValueError, match="method must be one of"):
        kalman_filter(X, params, method="fast")
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        forecast(X, params, 0)
