"""LinearDynamicalSystem inference runs on the rescaled columns x / D (D = em_state_.scale,
`latentkit.dynamics._scaling`), as EM does. Checked against independent truths: the
unscaled kernels on well-scaled data, the exact joint Gaussian density of a short sequence
(brute force), serial against parallel kernels, the batch filter against the online step."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from latentkit import LinearDynamicalSystem, load
from latentkit.dynamics import kalman
from latentkit.dynamics._params import LDSParams

#: the fuzz suite's reproducer (as test_fuzz_regressions.CONSTANT_SPREAD): constant columns
#: at 2e-8 and 2e50, some entries missing
CONSTANT_SPREAD = np.array([[2e-08, -2e-08, -2e+50], [2e-08, -2e-08, -2e+50],
                            [2e-08, -2e-08, -2e+50], [np.nan, -2e-08, -2e+50],
                            [2e-08, -2e-08, -2e+50], [2e-08, -2e-08, np.nan],
                            [2e-08, -2e-08, np.nan]])
#: columns of well-separated but ordinary scales: D is far from 1, conditioning is fine
SCALES = np.array([1e-3, 1.0, 3e4])


def _fit(X, **options):
    options = {"max_iter": 5, "tol": 0, "random_state": 0, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LinearDynamicalSystem(**options).fit(X)


def _series(seed, T=40, missing=0.15, scales=SCALES):
    """A random walk in 2 dimensions seen through 3 columns of the given scales, with some
    entries missing (one step entirely)."""
    rng = np.random.default_rng(seed)
    z = np.cumsum(rng.standard_normal((T, 2)), axis=0)
    X = (z @ rng.standard_normal((2, 3)) + 0.3 * rng.standard_normal((T, 3))) * scales
    X[rng.random(X.shape) < missing] = np.nan
    X[T // 2] = np.nan
    return X


def _params(model):
    return LDSParams(*(getattr(model, name + "_") for name in (
        "transition_matrix", "transition_offset", "observation_matrix", "observation_offset",
        "transition_covariance", "observation_covariance", "initial_state_mean",
        "initial_state_covariance")))


def _joint_log_density(params, x):
    """log p(x_{1:T}) for x : (T, p) with NaN missing, from the joint Gaussian of the
    stacked observations (brute force: no filter). Cov(z_t, z_s) = A^{t-s} Var(z_s)."""
    A, b, C, d, Q, R, mu0, V0 = params
    T, p = x.shape
    n = len(mu0)
    means, variances = [mu0], [V0]
    for _ in range(1, T):
        means.append(A @ means[-1] + b)
        variances.append(A @ variances[-1] @ A.T + Q)
    K = np.zeros((T * n, T * n))
    for s in range(T):
        block = variances[s]
        for t in range(s, T):
            K[t * n:(t + 1) * n, s * n:(s + 1) * n] = block
            K[s * n:(s + 1) * n, t * n:(t + 1) * n] = block.T
            block = A @ block
    H = np.kron(np.eye(T), C)
    mean = H @ np.concatenate(means) + np.tile(d, T)
    cov = H @ K @ H.T + np.kron(np.eye(T), R)
    observed = ~np.isnan(x.ravel())
    return multivariate_normal(mean[observed], cov[np.ix_(observed, observed)]).logpdf(
        x.ravel()[observed])


@pytest.mark.parametrize("method", ["serial", "parallel"])
def test_scores_equal_the_unscaled_computation_on_well_scaled_data(method):
    X = _series(0)
    model = _fit(X, state_dim=2, method=method)
    assert not np.all(model.em_state_.scale == 1)  # the rescaling is exercised
    plain = kalman.kalman_filter(X, _params(model), method=method)  # x's own units
    ours = model.filter(X)
    assert ours.log_likelihood == pytest.approx(plain.log_likelihood, rel=1e-10)
    np.testing.assert_allclose(ours.step_log_likelihood, plain.step_log_likelihood,
                               rtol=1e-10, atol=1e-10 * abs(plain.log_likelihood))
    np.testing.assert_allclose(ours.mean, plain.mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours.cov, plain.cov, rtol=1e-9, atol=1e-12)
    assert model.score_samples(X)[0] == pytest.approx(plain.log_likelihood, rel=1e-10)
    forecast, plain_forecast = model.forecast(X, 3), kalman.forecast(X, _params(model), 3)
    np.testing.assert_allclose(forecast.mean / SCALES, plain_forecast.mean / SCALES,
                               rtol=1e-10, atol=1e-10)
    unit = np.outer(SCALES, SCALES)
    np.testing.assert_allclose(forecast.cov / unit, plain_forecast.cov / unit, rtol=1e-9,
                               atol=1e-10)


@pytest.mark.parametrize("method", ["serial", "parallel"])
def test_scores_equal_the_joint_gaussian_density(method):
    # a short sequence, columns at scales 0.1 to 10 (D != 1, the stacked covariance still
    # well conditioned), with missing entries and an all-missing step: log p(x) from the
    # stacked Gaussian, no filter and no rescaling involved
    X = _series(1, T=6, scales=np.array([0.1, 1.0, 10.0]))
    model = _fit(X, state_dim=2, method=method)
    for x in (X, X[:4]):
        expected = _joint_log_density(_params(model), x)
        assert model.score_samples(x)[0] == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_serial_and_parallel_agree_on_ordinary_data():
    X = _series(2)
    serial = _fit(X, state_dim=2, method="serial")
    parallel = _fit(X, state_dim=2, method="serial").set_params(method="parallel")
    np.testing.assert_allclose(parallel.score_samples(X), serial.score_samples(X), rtol=1e-10)
    post_s, post_p = serial.posterior(X), parallel.posterior(X)
    np.testing.assert_allclose(post_p.mean, post_s.mean, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(post_p.cov, post_s.cov, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(parallel.impute(X) / SCALES, serial.impute(X) / SCALES,
                               rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("state_dim, covariance_type", [(2, "full"), (1, "diag")])
def test_serial_and_parallel_agree_on_constant_columns_of_very_different_scales(
        state_dim, covariance_type):
    # the parallel kernels raised LinAlgError here before inference ran on x / D
    X = CONSTANT_SPREAD
    serial = _fit(X, state_dim=state_dim, covariance_type=covariance_type, max_iter=1,
                  method="serial")
    parallel = _fit(X, state_dim=state_dim, covariance_type=covariance_type, max_iter=1,
                    method="serial").set_params(method="parallel")
    np.testing.assert_allclose(parallel.score_samples(X), serial.score_samples(X), rtol=1e-10)
    step_s, step_p = serial.filter(X).step_log_likelihood, parallel.filter(X).step_log_likelihood
    np.testing.assert_allclose(step_p, step_s, rtol=1e-10, atol=1e-10)
    post_s, post_p = serial.posterior(X), parallel.posterior(X)
    spread = np.sqrt(np.max(np.abs(post_s.cov)))  # the posterior's own scale
    np.testing.assert_allclose(post_p.mean, post_s.mean, rtol=1e-8, atol=1e-8 * spread)
    np.testing.assert_allclose(post_p.cov, post_s.cov, rtol=1e-8, atol=1e-8 * spread**2)
    imputed = parallel.impute(X)
    np.testing.assert_allclose(imputed, serial.impute(X), rtol=1e-8)
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(imputed[observed], X[observed])
    # a constant column is imputed at its constant (to the posterior's precision)
    np.testing.assert_allclose(imputed, np.broadcast_to(X[0], X.shape), rtol=1e-6)


def test_online_step_matches_the_batch_filter_at_separated_scales():
    X = _series(3)
    model = _fit(X, state_dim=2)
    batch = model.filter(X)
    for t in range(1, len(X)):
        mean, cov = model.filter_update(batch.mean[t - 1], batch.cov[t - 1], X[t])
        np.testing.assert_allclose(mean, batch.mean[t], rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(cov, batch.cov[t], rtol=1e-9, atol=1e-12)


def test_list_and_batch_layouts_rescale_per_sequence():
    X = _series(4)
    model = _fit(X, state_dim=2)
    pieces = [X[:25], X[25:]]
    single = [model.score_samples(x)[0] for x in pieces]
    np.testing.assert_allclose(model.score_samples(pieces), single, rtol=1e-12)
    imputed = model.impute(pieces)
    np.testing.assert_array_equal(np.concatenate(imputed)[~np.isnan(X)], X[~np.isnan(X)])
    batch = np.stack([X[:20], X[20:]])
    np.testing.assert_allclose(model.filter(batch).log_likelihood,
                               [model.score_samples(x)[0] for x in batch], rtol=1e-12)


def test_saved_model_keeps_its_scale_and_a_state_without_one_uses_unit_scale(tmp_path):
    X = _series(5)
    model = _fit(X, state_dim=2)
    model.save(tmp_path / "scaled.lk")
    loaded = load(tmp_path / "scaled.lk")
    np.testing.assert_array_equal(loaded.em_state_.scale, model.em_state_.scale)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.impute(X), model.impute(X))
    # a model whose file holds no EM state (None) infers in x's units (D = 1): the
    # unscaled kernels' answer, bit for bit
    model.em_state_ = None
    model.save(tmp_path / "stateless.lk")
    stateless = load(tmp_path / "stateless.lk")
    assert stateless.em_state_ is None
    plain = kalman.kalman_filter(X, _params(model))
    np.testing.assert_array_equal(stateless.score_samples(X), [plain.log_likelihood])
    np.testing.assert_allclose(stateless.score_samples(X), loaded.score_samples(X), rtol=1e-10)


def test_unfitted_model_with_given_parameters_infers_in_its_own_units():
    X = _series(6)
    params = _params(_fit(X, state_dim=2))
    given = LinearDynamicalSystem(**dict(zip(
        ("transition_matrix", "transition_offset", "observation_matrix",
         "observation_offset", "transition_covariance", "observation_covariance",
         "initial_state_mean", "initial_state_covariance"), params)))
    assert np.all(given._scale(3) == 1)
    np.testing.assert_array_equal(given.score_samples(X),
                                  [kalman.kalman_filter(X, params).log_likelihood])
