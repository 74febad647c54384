"""LinearDynamicalSystem (EM on the shared engine) against independent truths: the published
maximum-likelihood fit of the Nile local-level model, pykalman's EM trajectory, expected
sufficient statistics by brute-force conditioning of the dense joint Gaussian (with missing
entries), recovery of a planted system up to the latent similarity transform, and the
model contract (layouts, persistence, bad input).
"""

import warnings

import numpy as np
import pytest

from helpers import assert_monotone
from latentkit import ConvergenceWarning, load
from latentkit.datasets import _paths, real
from latentkit.dynamics import LDSParams, LinearDynamicalSystem, _em, rts_smoother, simulate
from lds_truth import dense_joint, random_params, with_missing

LOCAL_LEVEL_FIXED = ("transition_matrix", "observation_matrix", "transition_offset",
                     "observation_offset", "initial_state_covariance")


def quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def model_from(params, **kwargs):
    A, b, C, d, Q, R, mu0, V0 = params
    return LinearDynamicalSystem(
        A.shape[0], transition_matrix=A, transition_offset=b, observation_matrix=C,
        observation_offset=d, transition_covariance=Q, observation_covariance=R,
        initial_state_mean=mu0, initial_state_covariance=V0, **kwargs)


def fitted_at(params, X, **kwargs):
    """A model whose fitted parameters are exactly `params` (0 EM iterations)."""
    return quiet_fit(model_from(params, max_iter=0, **kwargs), X)


# -- the Nile local-level model -----------------------------------------------------------


def test_nile_local_level_reaches_the_published_mle():
    """Durbin & Koopman (2012, sec. 2.10): σ²_ε = 15099, σ²_η = 1469.1 (diffuse initial
    level; here V0 is held at 1e7). EM from unit-scale variances, within 1%."""
    if not any((root / real._NILE.relpath).is_file() for root in _paths.data_dirs()):
        pytest.skip("nile/nile.csv not available (see shared/data/SOURCES.md)")
    from latentkit.datasets import load_nile

    X = load_nile().data
    model = LinearDynamicalSystem(
        1, transition_matrix=1.0, observation_matrix=1.0, initial_state_covariance=1e7,
        transition_covariance=1000.0, observation_covariance=10000.0,
        fixed=LOCAL_LEVEL_FIXED, reg_covar=0.0, tol=1e-11, max_iter=5000).fit(X)
    assert model.converged_
    assert_monotone(model.history_)
    assert abs(model.observation_covariance_[0, 0] / 15099 - 1) < 0.01
    assert abs(model.transition_covariance_[0, 0] / 1469.1 - 1) < 0.01
    assert model.transition_matrix_[0, 0] == 1.0 and model.initial_state_covariance_[0, 0] == 1e7


def test_local_level_constructor_is_the_explicit_model():
    explicit = LinearDynamicalSystem(
        1, transition_matrix=1.0, observation_matrix=1.0, initial_state_covariance=1e7,
        fixed=LOCAL_LEVEL_FIXED, tol=1e-9)
    recipe = LinearDynamicalSystem.local_level(tol=1e-9)
    params = recipe.get_params()
    assert set(params.pop("fixed")) == set(explicit.get_params().pop("fixed"))
    assert params == {k: v for k, v in explicit.get_params().items() if k != "fixed"}
    held = LinearDynamicalSystem.local_level(initial_state_mean=1000.0,
                                             fixed=("initial_state_mean",))
    assert set(held.fixed) == set(LOCAL_LEVEL_FIXED) | {"initial_state_mean"}


# -- EM against pykalman and brute force --------------------------------------------------


def test_em_follows_pykalmans_trajectory():
    """Same initial parameters, offsets held at zero (pykalman updates offsets coordinate-
    wise, not jointly): after 5 iterations every parameter and the log-likelihood agree."""
    from pykalman import KalmanFilter

    params = random_params(2, 3, seed=30, offsets=False)
    X, _ = simulate(params, 150, random_state=31)
    start = random_params(2, 3, seed=32, offsets=False)
    A, b, C, d, Q, R, mu0, V0 = start
    em_vars = ["transition_matrices", "observation_matrices", "transition_covariance",
               "observation_covariance", "initial_state_mean", "initial_state_covariance"]
    reference = KalmanFilter(A, C, Q, R, b, d, mu0, V0, em_vars=em_vars).em(X, n_iter=5)
    model = quiet_fit(model_from(start, fixed=("transition_offset", "observation_offset"),
                                 reg_covar=0.0, tol=0.0, max_iter=5), X)
    pairs = [(model.transition_matrix_, reference.transition_matrices),
             (model.observation_matrix_, reference.observation_matrices),
             (model.transition_covariance_, reference.transition_covariance),
             (model.observation_covariance_, reference.observation_covariance),
             (model.initial_state_mean_, reference.initial_state_mean),
             (model.initial_state_covariance_, reference.initial_state_covariance)]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-10)
    ll = reference.loglikelihood(X)
    assert abs(model.score_samples(X)[0] - ll) < 1e-8 * abs(ll)
    assert_monotone(model.history_)


def brute_force_stats(params, X):
    """Σ_t E[x_t], E[x_t x_t^T], E[x_t z_t^T], E[z_t z_t^T], E[z_t z_{t-1}^T] given the
    observed entries, from the dense joint Gaussian of (z_1..z_T, x_1..x_T). The x sums
    (and zz_obs) run over the steps with an observed coordinate: an all-missing step's
    x_t integrates out of the likelihood and stays out of the E-step."""
    T, p = X.shape
    n = params.A.shape[0]
    z_mean, z_cov, x_mean, x_cov, xz = dense_joint(params, T)
    mean = np.concatenate([z_mean, x_mean])
    cov = np.block([[z_cov, xz.T], [xz, x_cov]])
    obs = np.concatenate([np.zeros(T * n, bool), ~np.isnan(X.ravel())])
    gain = np.linalg.solve(cov[np.ix_(obs, obs)], cov[obs]).T
    mean = mean + gain @ (X.ravel()[obs[T * n:]] - mean[obs])
    cov = cov - gain @ cov[obs]
    second = cov + np.outer(mean, mean)
    zi = [np.arange(t * n, (t + 1) * n) for t in range(T)]
    xi = [T * n + np.arange(t * p, (t + 1) * p) for t in range(T)]
    seen = [t for t in range(T) if not np.isnan(X[t]).all()]
    return {
        "x": sum(mean[xi[t]] for t in seen),
        "xx": sum(second[np.ix_(xi[t], xi[t])] for t in seen),
        "xz": sum(second[np.ix_(xi[t], zi[t])] for t in seen),
        "zz_obs": sum(second[np.ix_(zi[t], zi[t])] for t in seen),
        "zz_all": sum(second[np.ix_(j, j)] for j in zi),
        "zz_cross": sum(second[np.ix_(zi[t], zi[t - 1])] for t in range(1, T)),
        "z1z1": second[np.ix_(zi[0], zi[0])],
    }


@pytest.mark.parametrize("missing", [False, True])
def test_expected_statistics_equal_brute_force(missing):
    """The E-step's completed statistics (missing x treated as latent) are exact."""
    params = random_params(2, 3, seed=33)
    X, _ = simulate(params, 7, random_state=34)
    if missing:
        X = with_missing(X, 35)
    stats, ll = _em.e_step(params, X[None])
    truth = brute_force_stats(params, X)
    for name, value in truth.items():
        np.testing.assert_allclose(getattr(stats, name), value, atol=1e-10, rtol=1e-10,
                                   err_msg=name)
    assert abs(ll - rts_smoother(X, params).log_likelihood) < 1e-10


def test_m_step_maximizes_the_expected_complete_log_likelihood():
    """Perturbing any updated parameter lowers Q(θ) = E[log p(x, z | θ)] (evaluated from
    the statistics), so the closed forms are the maximizers, also with missing data."""
    params = random_params(2, 3, seed=36)
    X, _ = simulate(params, 40, random_state=37)
    stats, _ = _em.e_step(params, with_missing(X, 38)[None])
    new = _em.m_step(stats, frozenset())

    def expected_loglik(theta):
        A, b, C, d, Q, R, mu0, V0 = theta
        s = stats

        def term(S, count, cov):
            return -0.5 * (count * np.linalg.slogdet(cov)[1]
                           + np.trace(np.linalg.solve(cov, S)))
        trans = _em._residual_scatter(s.zz_next, s.zz_cross, s.zz_prev, s.z_next, s.z_prev,
                                      s.n_trans, A, b)
        obs = _em._residual_scatter(s.xx, s.xz, s.zz_obs, s.x, s.z_obs, s.n_obs, C, d)
        init = _em._residual_scatter(s.z1z1, np.zeros((2, 0)), np.zeros((0, 0)), s.z1,
                                     np.zeros(0), s.n_seq, np.zeros((2, 0)), mu0)
        return term(trans, s.n_trans, Q) + term(obs, s.n_obs, R) + term(init, s.n_seq, V0)

    best = expected_loglik(new)
    rng = np.random.default_rng(0)
    for field in LDSParams._fields:
        for _ in range(3):
            value = getattr(new, field)
            step = 1e-3 * rng.normal(size=value.shape)
            if field in ("Q", "R", "V0"):
                step = step @ step.T
            assert expected_loglik(new._replace(**{field: value + step})) < best, field


def test_em_with_missing_values_is_monotone_and_close_to_complete_data_fit():
    params = random_params(2, 3, seed=39)
    X, _ = simulate(params, 400, random_state=40)
    model = quiet_fit(LinearDynamicalSystem(2, max_iter=60, tol=0.0, random_state=0),
                      with_missing(X, 41))
    assert_monotone(model.history_)
    assert model.history_[-1] > model.history_[0]


# -- recovery of a planted system ---------------------------------------------------------


def autocovariances(A, C, Q, R, lags):
    """Cov(x_{t+k}, x_t) = C A^k Π C^T (+ R at k = 0) of the stationary process, Π = A Π
    A^T + Q: invariant under z -> T z, so comparable between planted and fitted systems."""
    n = A.shape[0]
    Pi = np.linalg.solve(np.eye(n * n) - np.kron(A, A), Q.ravel()).reshape(n, n)
    return np.array([C @ np.linalg.matrix_power(A, k) @ Pi @ C.T + (R if k == 0 else 0)
                     for k in range(lags)])


def test_em_recovers_a_planted_system_up_to_similarity():
    rng = np.random.default_rng(42)
    theta = 0.3
    A = 0.9 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    C = rng.normal(size=(4, 2))
    Q, R = np.diag([0.5, 0.3]), np.diag([0.2, 0.3, 0.25, 0.4])
    planted = LDSParams(A, np.zeros(2), C, np.array([1.0, -2.0, 0.5, 0.0]), Q, R,
                        np.zeros(2), np.eye(2))
    X, _ = simulate(planted, 250, n_sequences=24, random_state=43)
    model = quiet_fit(LinearDynamicalSystem(2, max_iter=300, tol=1e-7, random_state=0), X)
    assert_monotone(model.history_)
    eig_true = np.sort_complex(np.linalg.eigvals(A))
    eig_fit = np.sort_complex(np.linalg.eigvals(model.transition_matrix_))
    np.testing.assert_allclose(eig_fit, eig_true, atol=0.03)
    np.testing.assert_allclose(model.observation_covariance_, R, atol=0.05)
    np.testing.assert_allclose(model.observation_offset_, planted.d, atol=0.15)
    true_acov = autocovariances(A, C, Q, R, 6)
    fit_acov = autocovariances(model.transition_matrix_, model.observation_matrix_,
                               model.transition_covariance_, model.observation_covariance_, 6)
    scale = np.abs(true_acov[0]).max()
    np.testing.assert_allclose(fit_acov, true_acov, atol=0.1 * scale)
    # Markov parameters C A^k B of the innovation form agree as well, via the
    # one-step predictive likelihood: the fit explains held-out data as well as the truth
    X_new, _ = simulate(planted, 500, random_state=44)
    truth = fitted_at(planted, X_new)
    assert model.score(X_new) > truth.score(X_new) - 0.02


# -- the estimator contract ---------------------------------------------------------------


@pytest.fixture(scope="module")
def planted():
    params = random_params(2, 3, seed=50)
    X, _ = simulate(params, 120, n_sequences=3, random_state=51)
    return params, X


def test_fixed_parameters_are_held_and_diag_is_diagonal(planted):
    params, X = planted
    model = quiet_fit(LinearDynamicalSystem(
        2, transition_matrix=params.A, observation_offset=np.zeros(3),
        fixed=("transition_matrix", "transition_offset"), covariance_type="diag",
        max_iter=20, random_state=0), X)
    np.testing.assert_array_equal(model.transition_matrix_, params.A)
    np.testing.assert_array_equal(model.transition_offset_, np.zeros(2))
    assert not np.array_equal(model.observation_offset_, np.zeros(3))  # initial value only
    for S in (model.transition_covariance_, model.observation_covariance_):
        np.testing.assert_array_equal(S, np.diag(np.diag(S)))
    assert_monotone(model.history_)


def test_layouts_scores_and_inference_methods(planted):
    params, X = planted
    model = fitted_at(params, X)
    ll = model.score_samples(X)
    assert ll.shape == (3,)
    for i in range(3):
        assert abs(model.score_samples(X[i])[0] - ll[i]) < 1e-9 * abs(ll[i])
    np.testing.assert_allclose(model.score_samples([X[0], X[1, :50]]),
                               [ll[0], model.filter(X[1, :50]).log_likelihood], rtol=1e-12)
    assert abs(model.score(X) - ll.sum() / X[:, :, 0].size) < 1e-12
    post = model.posterior(X[0])
    smooth = model.smooth(X[0])
    np.testing.assert_array_equal(post.mean, smooth.mean)
    np.testing.assert_array_equal(model.transform(X[0]), smooth.mean)
    assert post.cov.shape == (120, 2, 2) and len(model.posterior(X)) == 3
    filt = model.filter(X[0])
    assert filt.mean.shape == (120, 2) and filt.cov.shape == (120, 2, 2)
    assert abs(filt.log_likelihood - ll[0]) < 1e-9 * abs(ll[0])
    fc = model.forecast(X[0], n_steps=4)
    assert fc.mean.shape == (4, 3) and fc.cov.shape == (4, 3, 3)
    Xs, Zs = model.sample(50, random_state=0)
    assert Xs.shape == (50, 3) and Zs.shape == (50, 2)
    Xb, Zb = model.sample(20, random_state=0, n_sequences=4)
    assert Xb.shape == (4, 20, 3) and Zb.shape == (4, 20, 2)
    assert model.sample_posterior(X[0], 5, random_state=0).shape == (5, 120, 2)
    assert model.transform(X[0].astype(np.float32)).dtype == np.float32


def test_impute_is_the_conditional_mean(planted):
    """E[x_missing | x_observed] by brute-force conditioning of the dense joint Gaussian."""
    params, X = planted
    model = fitted_at(params, X)
    x = with_missing(X[0][:9], 52)
    filled = model.impute(x)
    _, _, x_mean, x_cov, _ = dense_joint(params, len(x))
    obs = ~np.isnan(x.ravel())
    cond = x_mean[~obs] + x_cov[np.ix_(~obs, obs)] @ np.linalg.solve(
        x_cov[np.ix_(obs, obs)], x.ravel()[obs] - x_mean[obs])
    np.testing.assert_allclose(filled.ravel()[~obs], cond, atol=1e-10)
    np.testing.assert_array_equal(filled.ravel()[obs], x.ravel()[obs])


def test_fit_on_a_list_of_unequal_sequences_and_engine_features(planted, tmp_path):
    params, X = planted
    seqs = [X[0], X[1, :70], X[2, :30]]
    calls = []
    model = quiet_fit(LinearDynamicalSystem(2, max_iter=8, n_init=2, random_state=0, tol=0.0,
                                            callbacks=[calls.append]), seqs)
    assert len(calls) == 16 and model.n_iter_ == 8
    assert_monotone(model.history_)
    assert model.history_[-1] == pytest.approx(model.score(seqs), rel=1e-3)
    path = tmp_path / "lds.npz"
    model.set_params(callbacks=None)
    model.save(path)
    loaded = load(path)
    np.testing.assert_array_equal(loaded.score_samples(seqs), model.score_samples(seqs))
    np.testing.assert_array_equal(loaded.transition_matrix_, model.transition_matrix_)
    loaded.set_params(warm_start=True, max_iter=3)
    quiet_fit(loaded, seqs)
    assert loaded.history_[0] >= model.history_[-1] - 1e-9


def test_n_parameters_and_bic(planted):
    params, X = planted
    model = fitted_at(params, X)
    n, p = 2, 3
    expected = n * n + n + p * n + p + 3 + 6 + n + 3 - n * n
    assert model.n_parameters_ == expected
    steps = X[:, :, 0].size
    assert model.bic(X) == pytest.approx(-2 * model.score_samples(X).sum()
                                         + expected * np.log(steps))


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"transition_covariance": [[1.0, 2.0], [2.0, 1.0]]},
     "transition_covariance must be positive semi-definite"),
    ({"observation_covariance": -np.eye(3)}, "observation_covariance must be positive"),
    ({"initial_state_covariance": [[1.0, 0.0], [0.0, -1.0]]},
     "initial_state_covariance must be positive"),
    ({"observation_matrix": np.ones((2, 2))}, r"observation_matrix must have shape \(3, 2\)"),
    ({"transition_matrix": np.ones((3, 3))}, r"transition_matrix must have shape \(2, 2\)"),
    ({"transition_matrix": [[np.inf, 0], [0, 1]]}, "transition_matrix contains NaN or inf"),
    ({"fixed": ("transition_matrix",)}, "fixed names 'transition_matrix' but"),
    ({"fixed": ("A",)}, "unknown parameter names"),
    ({"covariance_type": "spherical"}, "covariance_type"),
])
def test_bad_parameters_are_clear_errors(planted, kwargs, message):
    _, X = planted
    with pytest.raises(ValueError, match=message):
        LinearDynamicalSystem(2, **kwargs).fit(X)


def test_bad_data_are_clear_errors(planted):
    params, X = planted
    X_inf = X[0].copy()
    X_inf[4, 2] = -np.inf
    with pytest.raises(ValueError, match="inf at row 4, column 2"):
        LinearDynamicalSystem(2).fit(X_inf)
    with pytest.raises(ValueError, match="state_dim is required"):
        LinearDynamicalSystem().fit(X)
    model = fitted_at(params, X)
    with pytest.raises(ValueError, match="has 2 features but 3 are expected"):
        model.filter(X[0][:, :2])
    with pytest.raises(ValueError, match="sequence 1 has 2 features"):
        LinearDynamicalSystem(2).fit([X[0], X[1][:, :2]])
