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
    # S - reg_covar I is positive semi-definite: a Cholesky factorization (whose accuracy
    # does not depend on the columns' scales, unlike eigvalsh's eps ||S||) of S less a
    # hair under reg_covar I
    np.linalg.cholesky(S - reg_covar * (1 - 1e-9) * np.eye(len(S)))


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


# 2 steps of 1e7-scale values: the likelihood is unbounded as R -> 0 (R's eigenvalues went
# to 1e-2 and 2e13), the filter's log-likelihood became round-off and EM "fell" by 1.5
# nats (and returned parameters worse than its best iterate)
ILL_CONDITIONED = np.array([[12573022.10933933, -13210486.32913019],
                            [64042265.044328205, 10490011.71530397]])


# a column at 1e6 ± 1 next to columns at 0.01 ± 1e-8: the floor is active on the first;
# floor(S / N) + r I (not the maximizer of the penalized objective over the floored set)
# lowered the likelihood by more than reg_covar's declared slack
OFFSET_COLUMNS = np.array(
    [[0.010000000093783866, 999999.5445998008, 0.00999999826936314, 0.009999991238210363,
      0.010000015740295463],
     [0.009999989153647155, 1000001.8393493423, 0.009999999163292242, 0.01000001387891622,
      0.010000009569189842],
     [0.010000015278648645, 999998.7811223991, 0.010000012748612324, 0.009999997041501982,
      0.01000000923896786],
     [0.010000005988116102, 999998.5372239153, 0.009999989184564472, 0.009999987891307235,
      0.009999993761003039],
     [0.010000005908568524, 999999.0867339711, 0.010000004315771855, 0.009999998131394261,
      0.009999997155492558]])


def _assert_fit_monotone(X, max_iter=8, **options):
    steps, real, announce = _record_steps()
    loop._announce = announce
    try:
        model = _fit_quietly(LinearDynamicalSystem(max_iter=max_iter, tol=0, **options), X)
    finally:
        loop._announce = real
    h = model.history_
    slack = [s.slack / len(X) for s in steps[-len(h):]]
    for i in range(1, len(h)):
        allowed = loop.monotone_tolerance(h[i], np.float64) + slack[i - 1]
        assert h[i - 1] - h[i] <= allowed, h
    # the returned parameters reach the best iterate (up to round-off and slack)
    assert model.score(X) >= max(h) - 1e-8 - sum(slack)
    return model


@pytest.mark.parametrize("max_iter", [2, 8])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_floored_regularized_step_stays_within_its_slack(max_iter, covariance_type):
    _assert_fit_monotone(OFFSET_COLUMNS, max_iter, state_dim=1, random_state=0,
                         covariance_type=covariance_type)


@pytest.mark.parametrize("state_dim, n_init, random_state", [(1, 2, 1), (2, 1, 0), (1, 1, 0)])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_ill_conditioned_fit_stays_monotone(state_dim, n_init, random_state, covariance_type):
    model = _assert_fit_monotone(ILL_CONDITIONED, state_dim=state_dim, n_init=n_init,
                                 random_state=random_state, covariance_type=covariance_type)
    # R is floored relative to each column's scale (mean square), far above round-off
    floor = model.em_state_.obs_floor
    np.testing.assert_allclose(floor, 1e-12 * np.mean(ILL_CONDITIONED ** 2, axis=0))
    R = model.observation_covariance_
    scaled = R / np.sqrt(np.outer(floor, floor))
    assert np.linalg.eigvalsh(scaled)[0] >= 1 - 1e-6  # eigvalsh: cond(scaled) eps


def test_floor_is_inactive_on_well_posed_data():
    # a well-posed fit is unchanged to the last bit by the floor (the pykalman parity tests
    # check the same against the reference library)
    from latentkit.dynamics import _covariance

    rng = np.random.default_rng(0)
    z = np.cumsum(rng.standard_normal((200, 1)), axis=0)
    X = z @ [[1.0, -0.5, 2.0]] + 0.3 * rng.standard_normal((200, 3))
    floored = _fit_quietly(LinearDynamicalSystem(1, max_iter=5, tol=0, random_state=0), X)
    saved = _covariance.OBS_FLOOR
    _covariance.OBS_FLOOR = 0.0
    try:
        unfloored = _fit_quietly(LinearDynamicalSystem(1, max_iter=5, tol=0, random_state=0),
                                 X)
    finally:
        _covariance.OBS_FLOOR = saved
    np.testing.assert_array_equal(floored.observation_covariance_,
                                  unfloored.observation_covariance_)
    np.testing.assert_array_equal(floored.history_, unfloored.history_)


def _spread_columns(low_exp, high_exp, offset=0.0, T=60, seed=0):
    """A random-walk state seen by a column at 10^low_exp, one at 10^high_exp and one at
    scale 1 (plus `offset`)."""
    rng = np.random.default_rng(seed)
    z = np.cumsum(rng.standard_normal((T, 1)), axis=0)
    X = np.hstack([z + 0.3 * rng.standard_normal((T, 1)),
                   0.5 * z + 0.3 * rng.standard_normal((T, 1)),
                   rng.standard_normal((T, 1))]) + offset
    X[:, 0] *= 10.0 ** low_exp
    X[:, 1] *= 10.0 ** high_exp
    return X


@pytest.mark.parametrize("low_exp, high_exp", [(0, 10), (0, 50), (-50, 50), (-150, 100)])
@pytest.mark.parametrize("offset", [0.0, 10.0])
@pytest.mark.parametrize("state_dim", [1, 2])
def test_columns_of_very_different_scales_fit_monotonically(low_exp, high_exp, offset,
                                                            state_dim):
    # Columns 1e10 apart made EM fall from -65 to -361007 (warned as a numerical failure),
    # 1e100 apart gave non-finite initial values; the kernels now run on x / D (D the
    # columns' power-of-two scales) and map the parameters back
    X = _spread_columns(low_exp, high_exp, offset)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "EM did not converge", ConvergenceWarning)
        model = LinearDynamicalSystem(state_dim, max_iter=15, random_state=0).fit(X)
    assert np.all(np.diff(model.history_) >= -1e-9 * np.abs(model.history_[1:]))
    for output in (model.score_samples(X), model.transform(X), model.posterior(X).mean,
                   model.impute(np.where(np.eye(len(X), 3, dtype=bool), np.nan, X))):
        assert np.all(np.isfinite(output))
    np.testing.assert_array_equal(model.em_state_.scale,
                                  2.0 ** np.ceil(np.log2(np.sqrt(np.mean(X ** 2, axis=0))
                                                         * (1 + 1e-15))))


@pytest.mark.parametrize("X", [
    # columns at 1e-9 next to one at 1e49..1e50: R learned 1e95 on the small columns and
    # was singular, so impute raised numpy's LinAlgError and posterior another
    np.array([[1.257302210933933e-09, -1.3210486329130189e-09, 6.40422650443282e-09,
               1.0490011715303971e+49],
              [-5.3566937316111095e-09, 3.6159505490948476e-09, 1.3040000451301372e-08,
               9.470809631292422e+49],
              [-7.037352358069926e-09, -1.2654214710460525e-08, -6.232744625373522e-09,
               4.132597934724361e+48],
              [nan, -2.1879166393254573e-09, -1.2459109472530651e-08,
               -7.322673547034517e+49],
              [-5.442589828573099e-09, nan, 4.116305363741329e-09, 1.0425133694426776e+50],
              [-1.2853466294403426e-09, 1.366463470549686e-08, -6.651946734866135e-09, nan],
              [9.034701816518086e-09, 9.401229776087456e-10, nan, -9.217253762584195e+49],
              [-4.577258256673392e-09, 2.201951234700494e-09, -1.0096181835387359e-08,
               -2.0917557487171307e+49],
              [-1.5922500991447771e-09, 5.408455846858077e-09, 2.146591225063409e-09,
               3.553727090399214e+49]]),
])
def test_wide_column_spread_inference_is_finite(X):
    model = _fit_quietly(LinearDynamicalSystem(1, max_iter=1, tol=0, random_state=0), X)
    R = model.observation_covariance_
    d = np.sqrt(np.diag(R))
    assert np.linalg.eigvalsh(R / np.outer(d, d))[0] > 0.5  # well-conditioned correlation
    assert np.all(np.diag(R)[:3] < 1e-5)  # noise on the 1e-9 columns: reg_covar's order
    model.posterior(X)
    assert np.all(np.isfinite(model.impute(X)))
    assert np.all(np.isfinite(model.score_samples(X)))


def test_rescaling_is_exact_on_ordinary_data():
    # D is a power of two: the rescaled kernels' results equal the unscaled ones up to the
    # rounding of log D (the pykalman parity tests check the fit against the reference)
    from latentkit.dynamics import _family
    from latentkit.dynamics._em import LDSConfig, SequenceBatch, e_step

    X = _spread_columns(0, 3)
    config = LDSConfig(1, "full", 0.0, "auto", frozenset(), {})
    params, state = _family.em_init([X], np.random.default_rng(0), config, 0)
    stats, ll = _family.em_e_step(params, state, config, SequenceBatch(X[None]))
    _, ll_plain = e_step(params, X[None])
    assert abs(ll - ll_plain) <= 1e-12 * abs(ll_plain)
    assert stats.xx[1, 1] == pytest.approx(np.sum(X[:, 1] ** 2) / state.scale[1] ** 2,
                                           rel=1e-12)


CONSTANT_SPREAD = np.array([[2e-08, -2e-08, -2e+50], [2e-08, -2e-08, -2e+50],
                            [2e-08, -2e-08, -2e+50], [nan, -2e-08, -2e+50],
                            [2e-08, -2e-08, -2e+50], [2e-08, -2e-08, nan],
                            [2e-08, -2e-08, nan]])


@pytest.mark.parametrize("state_dim, covariance_type", [(2, "full"), (1, "diag")])
def test_parallel_inference_on_constant_columns_of_very_different_scales(state_dim,
                                                                         covariance_type):
    # EM ran on the rescaled columns, inference on x's units: the parallel smoother's
    # solve with Pp was singular (LinAlgError) on constant columns at 2e-8 and 2e50. It now
    # runs on x / em_state_.scale too (`dynamics._scaling`).
    model = _fit_quietly(LinearDynamicalSystem(state_dim, max_iter=1, tol=0, random_state=0,
                                               covariance_type=covariance_type,
                                               method="parallel"), CONSTANT_SPREAD)
    assert np.all(np.isfinite(model.posterior(CONSTANT_SPREAD).mean))
    assert np.all(np.isfinite(model.impute(CONSTANT_SPREAD)))
