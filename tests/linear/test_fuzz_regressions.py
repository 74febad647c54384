"""Regressions for defects found by the property-based fuzz suite (tests/fuzz)."""

import warnings

import numpy as np
import pytest

import latentkit
from helpers import assert_monotone
from latentkit.em.contract import ConvergenceWarning
from latentkit.exceptions import InvalidInputError
from latentkit.io import save

NAN = np.nan


def _quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


@pytest.mark.parametrize("max_iter", [1, 5])
def test_em_pca_rank_deficient_subspace_is_finite(max_iter):
    # 3 rows, 2 distinct: S has rank 1 < n_components = 2, so A S A^T is singular
    a = [1.257302210933933e-09, -1.3210486329130189e-09, 6.40422650443282e-09,
         1.049001171530397e-09]
    b = [-5.3566937316111095e-09, 3.6159505490948476e-09, 1.3040000451301372e-08,
         9.470809631292423e-09]
    X = np.array([a, b, b])
    model = _quiet_fit(latentkit.PPCA(n_components=2, n_init=2, max_iter=max_iter, tol=0,
                                      random_state=0, solver="em_pca"), X)
    assert np.all(np.isfinite(model.components_))
    assert np.isfinite(model.noise_variance_) and model.noise_variance_ > 0
    assert np.all(np.isfinite(model.score_samples(X)))


@pytest.mark.parametrize("solver", ["auto", "em"])
def test_ppca_constant_data_with_nan_is_zero_variance_error(solver):
    row = [-9.517455902902531e-05, 0.0006105070879081706]
    X = np.array([row] * 14 + [[NAN, row[1]], [row[0], NAN]])
    with pytest.raises(InvalidInputError, match="zero variance"):
        latentkit.PPCA(n_components=1, solver=solver, max_iter=2, tol=0).fit(X)
    # the complete constant data gets the same error
    with pytest.raises(InvalidInputError, match="zero variance"):
        latentkit.PPCA(n_components=1, solver=solver, max_iter=2, tol=0).fit(np.array([row] * 5))


@pytest.mark.parametrize("rotation", ["varimax", "quartimax"])
@pytest.mark.parametrize("X", [
    [[1e-9, -1.3e99], [6e-9, 1e99], [-5e-9, 3.6e99]],
    [[1.3e99, -1.3e99], [6.4e99, 1e99], [-5.4e99, 3.6e99]],
])
def test_rotation_of_huge_loadings_does_not_overflow(rotation, X):
    X = np.array(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", RuntimeWarning)
        model = latentkit.FactorAnalysis(rotation=rotation, max_iter=1, tol=0,
                                         random_state=0).fit(X)
    assert np.all(np.isfinite(model.components_))
    # the rotation leaves W W^T unchanged
    unrotated = _quiet_fit(latentkit.FactorAnalysis(max_iter=1, tol=0, random_state=0), X)
    np.testing.assert_allclose(model.get_covariance(), unrotated.get_covariance(), rtol=1e-8)


def test_ortho_rotation_is_scale_invariant():
    from latentkit.linear.factor_analysis import ortho_rotation

    W = np.random.default_rng(0).standard_normal((8, 3))
    np.testing.assert_allclose(ortho_rotation(W * 1e120) / 1e120, ortho_rotation(W),
                               rtol=1e-10, atol=1e-12)


# 18 x 6, mixed 1e-9 / 1e50 columns with NaN (fuzz reproducer)
MIXED = np.array([
    [-5.022408400597862e-09, -3.385977414787731e-09, NAN,
     NAN, 9.631635545034135e-10, 6.135496367393944e-09],
    [NAN, -1.112406770368798e-08, -2.5512847575065012e+50, NAN, NAN, NAN],
    [NAN, NAN, NAN, NAN, -4.968454290221836e-09, 2.238301865829754e-09],
    [-2.5370784342562023e-09, 9.051855682495885e-09, -6.908569319328503e+48,
     NAN, -1.4223957632147955e-08, -7.93269788257165e-09],
    [4.286680041991702e-09, NAN, NAN, -1.7720000050550757e-08, NAN, 3.552455768861453e-09],
    [2.016312100892435e-08, -1.4164316805479051e-08, NAN,
     1.5239072376446318e-08, 1.6008856924306461e-09, NAN],
    [-1.3861828650695995e-09, 6.0490182900788075e-09, NAN,
     1.571798737325714e-08, 5.768736062861321e-09, -1.6787809535604324e-08],
    [NAN, -1.4451687005530253e-09, 3.111543559158392e+49,
     1.6398647772926826e-08, 6.863234394636496e-10, 5.806280430198252e-09],
    [NAN, -3.385977414787731e-09, NAN, -5.300073427545708e-10, 9.631635545034135e-10, NAN],
    [-5.022408400597862e-09, -3.385977414787731e-09, 8.631537504896424e+48,
     -5.300073427545708e-10, 9.631635545034135e-10, NAN],
    [3.2107031622986705e-09, -5.9639432284349785e-09, -9.276387198450813e+49,
     -1.756883721011772e-08, NAN, NAN],
    [NAN, -2.492445552792064e-08, 5.571330254023034e+49, -5.625688214760138e-09, NAN, NAN],
    [1.520643697844041e-09, NAN, -4.3452001579742823e+49,
     1.197946742779812e-09, -1.92655223230877e-09, -4.9066808177593185e-09],
    [-6.596216560879689e-10, NAN, NAN,
     8.279172293412494e-09, -3.0253800636729996e-09, 6.6216967238133815e-09],
    [4.383089274682098e-09, 3.3565065819522506e-09, NAN,
     -1.30222909796826e-08, -1.3714379517283171e-09, NAN],
    [NAN, NAN, NAN, NAN, -1.66175519790107e-08, 5.719730897002029e-09],
    [-5.022408400597862e-09, -3.385977414787731e-09, 8.631537504896424e+48,
     -5.300073427545708e-10, NAN, 6.135496367393944e-09],
    [-5.417786310160461e-09, 1.1346868132575443e-08, 6.859383257798567e+49,
     NAN, NAN, 4.419128263066721e-09],
])


@pytest.mark.parametrize("rotation", [None, "varimax"])
def test_fa_scores_its_own_training_data_at_mixed_scales(rotation):
    model = _quiet_fit(latentkit.FactorAnalysis(rotation=rotation, max_iter=1, tol=0,
                                                random_state=0), MIXED)
    scores = model.score_samples(MIXED)
    assert np.all(np.isfinite(scores))
    # no loading is far beyond its feature's scale
    std = np.nanstd(MIXED, axis=0)
    assert np.all(np.linalg.norm(model.loadings_, axis=1) <= 10 * std)


# 15 x 5, last column ~1e100 (fuzz reproducer)
HUGE = np.array([
    [1.257302210933933e-09, -1.3210486329130189e-09, 6.40422650443282e-09,
     1.049001171530397e-09, -5.35669373161111e+99],
    [3.6159505490948476e-09, 1.3040000451301372e-08, 9.470809631292423e-09,
     -7.037352358069926e-09, -1.2654214710460525e+100],
    [-6.232744625373522e-09, 4.13259793472436e-10, -2.3250307746388345e-08,
     -2.1879166393254573e-09, -1.2459109472530652e+100],
    [-7.322673547034516e-09, -5.442589828573099e-09, -3.1630015636915456e-09,
     4.116305363741329e-09, 1.0425133694426776e+100],
    [-1.2853466294403426e-09, 1.366463470549686e-08, -6.651946734866135e-09,
     3.515100700930197e-09, 9.034701816518086e+99],
    [9.401229776087456e-10, -7.434992493538084e-09, -9.217253762584195e-09,
     -4.577258256673392e-09, 2.201951234700494e+99],
    [-1.0096181835387359e-08, -2.0917557487171307e-09, -1.5922500991447771e-09,
     5.408455846858077e-09, 2.146591225063409e+99],
    [3.5537270903992143e-09, -6.538286094183395e-09, -1.2961363369276945e-09,
     7.839754700613295e-09, 1.4934311452207607e+100],
    [-1.2590655321041203e-08, 1.5139237747390625e-08, 1.3458754237823045e-08,
     7.813114007004274e-09, 2.644556303293035e+99],
    [-3.139228145364278e-09, 1.4580206835369586e-08, 1.9602583164499648e-08,
     1.8016348698661252e-08, 1.31510376473437e+100],
    [3.57380410658956e-09, -1.2083186322821716e-08, -4.454133120083229e-11,
     6.5647493507633586e-09, -1.2883614637495545e+100],
    [3.951220601820083e-09, 4.2986369482223006e-09, 6.960427239628685e-09,
     -1.184117966757189e-08, -6.6170257203903495e+99],
    [-4.3643524714322125e-09, -1.1698019077728641e-08, 1.739367877130134e-08,
     -4.959107284421519e-09, 3.289696294602021e+99],
    [-2.58572545473924e-09, 1.5834728788021222e-08, 1.3203609870818392e-08,
     6.333526228249152e-09, -2.203509880646651e+100],
    [5.20289742598865e-10, 6.836861907765345e-09, 1.0039615758421696e-08,
     -6.179070447076009e-09, 1.822011363328323e+100],
])


@pytest.mark.parametrize("solver", ["em", "svd"])
def test_fa_em_huge_column_parameters_stay_in_scale(solver, tmp_path):
    X = HUGE
    model = _quiet_fit(latentkit.FactorAnalysis(n_components=1, max_iter=1, tol=0,
                                                random_state=0, solver=solver), X)
    std = X.std(axis=0)
    assert np.all(np.isfinite(model.components_))
    assert np.all(np.abs(model.loadings_[:, 0]) <= 10 * std)
    assert np.all(model.noise_variance_ <= 10 * std**2)
    sample = model.sample(50, random_state=0)[0]
    assert np.all(np.abs(sample) <= 100 * std)
    path = tmp_path / "fa.lk"
    save(model, path)
    loaded = latentkit.load(path)
    np.testing.assert_allclose(loaded.components_, model.components_)


@pytest.mark.parametrize("X", [
    [[1.257302210933933e-09, -1.3210486329130189e-09], [6.40422650443282e-09, NAN],
     [-5.3566937316111095e-09, NAN], [1.3040000451301372e-08, 9.470809631292423e-09]],
    [[NAN, 8.216181435011585e-09, 3.3043707618338713e-09, NAN, 9.053558666731177e-09],
     [4.463745723640113e-09, -5.3695323536028514e-09, 5.8111810419635314e-09,
      3.6457239618607572e-09, 2.94132496655526e-09],
     [2.842224131579679e-10, 5.467129866124469e-09, -7.364540870016669e-09,
      -1.6290994799305278e-09, -4.821193126799783e-09],
     [5.988462126346275e-09, 3.972210748165899e-10, -2.924567509650886e-09,
      -7.819084623568421e-09, NAN],
     [8.142180518343507e-11, -2.7560290529937045e-09, 1.2940638143982074e-08,
      1.0067243153057943e-08, -2.7111624789659684e-08],
     [NAN, -1.7477209205516195e-09, -4.221904115763536e-09, 2.136429974986111e-09,
      2.173219310225636e-09],
     [2.1178387550510483e-08, -1.1120207626922813e-08, -3.7760500712699804e-09,
      2.0427716074923305e-08, 6.467029962018469e-09]],
])
def test_fa_heywood_with_nan_history_is_monotone(X):
    # every ψ at its floor (M = D): Woodbury's Mahalanobis term cancelled to ~1e-7 relative
    X = np.array(X)
    model = _quiet_fit(latentkit.FactorAnalysis(max_iter=6, tol=0, random_state=0), X)
    h = np.asarray(model.history_)
    allowed = 1e-9 * np.maximum(1.0, np.abs(h[1:]))
    assert np.all(h[:-1] - h[1:] <= allowed), h
    # the fitted model scores as its history says (same evaluation)
    assert model.score_samples(X).mean() >= h.max() - 1e-9 * abs(h.max())


# FactorAnalysis with as many factors as columns (n_components=None) on columns at 1e4 and
# 1e-4: the M-step's normal equations Σ E[z̃ z̃^T] are singular to working precision (their
# condition reaches 3e16) and the Cholesky solve raised numpy's LinAlgError
FA_SINGULAR_NORMAL_EQUATIONS = np.array([
    [7177.82647575983, 9.392976338190134e-05, 0.00010477622515353931, 2569.011181135427],
    [9929.627117050237, 0.00023969928348707966, 3.65841580416635e-05, -6424.993248658515],
    [9094.20729948893, -8.327419518024227e-06, 5.044823173071013e-05, -1701.4124695464484],
    [536.5971031654226, 9.675974487563699e-05, 3.236435618180699e-05, 9481.922589611297],
    [24002.828511688615, 0.00016308533840856692, 0.00019987495767065955, 17337.36797586364],
    [6779.2261771939475, 2.9952542096919454e-05, 0.00033352230270155246, -1457.5101814226255],
    [7994.441537809987, 0.00015067790104468818, 0.00022667875571840847, 15187.351107924933],
    [9855.544559655382, 7.775614964712555e-05, 0.00022903701423454212, 21497.571445032016],
    [20150.489048019794, 0.00017269822078350058, 4.017291728529331e-05, 18549.67839707164],
    [-13175.824506900939, 0.00017749833443713575, 7.519296723989888e-06, -4921.534810339168],
    [12497.364373292941, 0.00020575783181924756, 0.00014202023823781153, -6788.069518942454],
    [-1641.422005697284, 0.0001654010708589929, 7.166180364650248e-05, 19398.474318970562],
    [9688.137948433789, 0.00014104479687880827, -0.00014074571672946387, 3781.806096015259],
    [11808.828029019469, 0.0001505477508424612, 0.00015994794438156537, -2879.25423676445],
    [4367.7633735499585, 0.00013046827273007473, -1.8374164588552413e-05, -4408.316432234598],
    [11972.336888048558, 0.00011638248255937531, 0.00019781481539611287, 23240.890175889806],
    [25677.957594931457, 4.3977503727894184e-05, 7.247766782218514e-05, 14807.786830073088],
    [7678.163166393366, 0.0002945764308775118, -0.00010982683261167199, 23392.197727516315],
    [-3013.318406575818, 0.00019939360905792038, 0.00019525153362417373, 6232.096387229676],
    [4469.669472191689, 8.421054223237128e-05, 0.00015745863723468242, -7445.663236629136],
    [-13656.925582754042, -1.5550824252825059e-06, 0.000278083712491561, 13033.900151308546],
    [15283.521210386501, 9.082091918477086e-05, 0.00022911220141301467, 18282.105584070985],
    [4014.3433900985383, 0.00014648109076139868, 0.00015517446728849796, 6640.222072029283],
    [28130.44085735362, 0.00015195825885318707, 0.0002336830792159328, 4794.898108586399],
    [14980.505610257438, 0.00015097143255035327, 0.00014054246467420258, 17112.88975789216],
    [-6247.924246732122, 2.140120703185815e-05, 6.814250153415465e-05, 17575.185212785032],
    [8409.08519511213, 0.00013722140377660192, 3.765269715044697e-05, 14816.412375784745],
    [17709.039162833968, 0.00013862752403967342, -2.747574791292593e-05, 2346.201844639317],
    [11356.132961948928, 0.00016806537988389234, 0.0002865007729129602, 26293.32070857996],
    [19851.58496317614, 3.0043431222912088e-06, 7.821109116779816e-05, 9646.788918233511]])


def test_fa_singular_normal_equations_fall_back_to_least_squares():
    X = FA_SINGULAR_NORMAL_EQUATIONS
    model = _quiet_fit(latentkit.FactorAnalysis(None, random_state=2, max_iter=13, tol=0,
                                                solver="em", init_params="random"), X)
    assert np.all(np.isfinite(model.components_))
    assert np.all(np.isfinite(model.score_samples(X)))
    assert np.all(np.isfinite(model.transform(X)))


def test_fa_normal_equations_least_squares_solves_them():
    from latentkit.linear._lg_em import _normal_equations

    rng = np.random.default_rng(0)
    Z = rng.standard_normal((3, 1)) @ [[1.0, 2.0, 3.0]]  # rank 1: szz singular
    szz, sxz = Z.T @ Z, rng.standard_normal((4, 1)) @ [[1.0, 2.0, 3.0]]
    B = _normal_equations(szz, sxz)
    np.testing.assert_allclose(B @ szz, sxz @ np.linalg.pinv(szz) @ szz, atol=1e-10)


@pytest.mark.parametrize("fun", ["cube", "logcosh", "exp"])
@pytest.mark.parametrize("scale", [1e49, 1e100, 1e149])
def test_ica_unwhitened_huge_values_never_raise_numpy_errors(fun, scale):
    # whiten=False, fun="cube" on one row at 1e49: the fixed-point step is ~1e196 and
    # sym_decorrelation's W W^T overflowed, so eigh raised "Eigenvalues did not converge";
    # W is now rescaled first (the result is invariant to it), and what still overflows is
    # the documented "FastICA diverged ... whiten=False" error
    X = scale * np.array([[1.257302210933933, -1.321048632913019, 6.404226504432821]])
    model = latentkit.FastICA(None, random_state=0, algorithm="parallel", fun=fun,
                              whiten=False, max_iter=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)
    except InvalidInputError as exc:
        assert "whiten=False" in str(exc)
    else:
        assert np.all(np.isfinite(model.transform(X)))


def test_sym_decorrelation_is_scale_invariant():
    from latentkit.linear._ica_kernels import sym_decorrelation

    W = np.random.default_rng(0).standard_normal((3, 3))
    np.testing.assert_array_equal(sym_decorrelation(W), sym_decorrelation(2.0 ** 600 * W))
    Q = sym_decorrelation(1e200 * W)
    np.testing.assert_allclose(Q @ Q.T, np.eye(3), atol=1e-12)


def test_em_pca_objective_is_not_a_difference_of_large_traces():
    # 3 points of scale 1e5 in 2 components: the reconstruction error is 0 and was computed
    # as tr S - tr(P S) ~ 1e10 - 1e10, round-off that rose and fell between iterations
    # (-4.8e-07 -> -5.7e-06: "exact EM objective fell")
    X = np.array([[-9517.455902902531, 61050.70879081706, -14814.067999220866],
                  [13768.62270382462, 5561.271496565128, -150819.0422543305],
                  [106266.88114386523, 17014.427029286664, 17207.04122011575]])
    model = _quiet_fit(latentkit.PPCA(2, random_state=2, max_iter=10, tol=0,
                                      solver="em_pca"), X)
    h = np.asarray(model.history_)
    assert np.all(np.diff(h) >= -1e-9 * np.maximum(np.abs(h[1:]), 1.0)), h
    assert -1e-6 < h[-1] <= 0


def test_em_pca_objective_matches_the_reconstruction_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4)) @ rng.standard_normal((4, 4))
    model = _quiet_fit(latentkit.PPCA(2, random_state=0, max_iter=50, tol=0,
                                      solver="em_pca"), X)
    Xc = X - X.mean(axis=0)
    U = np.linalg.qr(model.components_.T)[0]
    error = np.sum((Xc - Xc @ U @ U.T) ** 2) / len(X)
    assert model.history_[-1] == pytest.approx(-0.5 * error, rel=1e-9)


FA_SPREAD = [
    # columns at 1e-9 next to one at 1e99: random W rows at the mean variance (1e99 on the
    # tiny columns), EM's first step went to loadings of 1e205 and the model's own samples
    # (8e204) were beyond the scale limit, so its file failed the load-time smoke test
    np.array([[1.257302210933933e-09, NAN, 6.40422650443282e-09, 1.0490011715303971e+99],
              [-5.3566937316111095e-09, 3.6159505490948476e-09, 1.3040000451301372e-08,
               9.470809631292422e+99],
              [NAN, -1.2654214710460525e-08, -6.232744625373522e-09, 4.13259793472436e+98]]),
    # columns at 1e-8 next to one at 1e3: EM fell from -9.7 to -255822 at its first step
    np.array([[NAN, -1321.048632913019, 6.40422650443282e-09],
              [NAN, -5356.69373161111, NAN],
              [NAN, 9470.80963129242, -7.037352358069926e-09],
              [-1.2654214710460525e-08, -6232.744625373522, 4.13259793472436e-10],
              [-2.3250307746388345e-08, -2187.9166393254573, -1.2459109472530651e-08]]),
]


@pytest.mark.parametrize("X", FA_SPREAD)
@pytest.mark.parametrize("max_iter", [1, 2, 10])
def test_fa_random_init_respects_each_columns_scale(X, max_iter, tmp_path):
    model = _quiet_fit(latentkit.FactorAnalysis(1, random_state=0, max_iter=max_iter, tol=0,
                                                init_params="random"), X)
    h = np.asarray(model.history_)
    assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:])), h
    assert model.score(X) >= h.max() - 1e-9 * abs(h.max())
    # loadings on each column of the column's own order (its observed range)
    spread = np.nanmax(np.abs(X), axis=0)
    assert np.all(np.abs(model.components_) <= 10 * spread)
    save(model, tmp_path / "fa.npz")
    assert np.all(np.isfinite(latentkit.load(tmp_path / "fa.npz").score_samples(X)))


def _spread(n=40, offset=0.0):
    """Columns at 1e-150, 1e100 and 1 (plus `offset`): within the scale limit, far apart."""
    X = np.random.default_rng(0).standard_normal((n, 4)) + offset
    X[:, 0] *= 1e-150
    X[:, 1] *= 1e100
    return X


@pytest.mark.parametrize("offset", [0.0, 5.0])
@pytest.mark.parametrize("make", [
    lambda: latentkit.PCA(2), lambda: latentkit.PCA(2, whiten=True), lambda: latentkit.PPCA(2),
    lambda: latentkit.FactorAnalysis(2), lambda: latentkit.FactorAnalysis(2, solver="em"),
])
def test_linear_models_on_columns_of_very_different_scales_stay_finite(make, offset):
    X = _spread(offset=offset)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make().fit(X)
        assert np.all(np.isfinite(model.score_samples(X)))
        assert np.all(np.isfinite(model.transform(X)))


def test_ica_names_columns_too_faint_to_whiten():
    # whitening (PCA of the raw columns) cannot resolve a column at 1e-150 next to one at
    # 1e100: the error said "constant or linearly dependent columns"; it now names the
    # faint columns and the fix
    with pytest.raises(InvalidInputError, match=r"Columns \[0, 2, 3\] of X vary.*"
                                                r"standardize the columns"):
        latentkit.FastICA(2, random_state=0).fit(_spread())


def test_sym_decorrelation_of_a_singular_matrix_is_orthogonal():
    from latentkit.linear._ica_kernels import sym_decorrelation

    W = np.array([[4.67e28, 6.37e136], [4.67e28, 6.37e136]])  # parallel rows
    Q = sym_decorrelation(W)
    np.testing.assert_allclose(Q @ Q.T, np.eye(2), atol=1e-12)


def test_ppca_missing_entries_on_columns_of_very_different_scales_stays_monotone():
    """Fuzz (long profile): a column at ~1e-8 beside a constant one at 1.37e49, two entries
    missing. The column mean of the constant missed it by an ulp (1e33), so EM fitted a
    spread of 1e33 with a mean whose own rounding undid each M-step, and the log-likelihood
    fell by 1.8e-7 per step (-127.62120419 -> -127.62120437), above the engine's round-off
    allowance. Fixed by an exact centre (`_lg_em.column_mean`) and an M-step that solves W at
    the rounded mean (`_lg_em.m_step`); tests/linear/test_ppca_missing_precision.py has
    the rest."""
    from linear.test_ppca_missing_precision import ISSUE_DATA

    model = _quiet_fit(latentkit.PPCA(1, random_state=0, max_iter=5, tol=0), ISSUE_DATA)
    h = model.history_
    assert h[1] - h[0] >= -1.28e-7, h
    assert_monotone(h)


def test_em_pca_at_its_round_off_floor_is_not_a_failure():
    """Fuzz (ci profile): a constant column at 4e50 beside one of spread 1e50; one component
    holds all the variance, the reconstruction error falls from 7e99 to round-off (3e70)
    and then moves up and down at that level. The M-step declares that round-off as its
    slack, so EM's guard does not call it a failure; the history stays within it."""
    import warnings

    from latentkit import PPCA
    from latentkit.em import ConvergenceWarning

    second = np.array([
        3.959659228211643e+49, -1.4069408772141501e+49, 2.7114454561992325e+50,
        1.0644760251936154e+50, 6.677476009785938e+48, -4.851175977735374e+49,
        3.652755758507208e+49, 2.0226343970537646e+50, -1.3143529258748489e+50,
        2.591950744608753e+50, 5.489097424433037e+49, 6.853511073257952e+49,
        7.889562160945022e+49, 3.265995958084383e+50, 2.3261354556313237e+50,
        -3.0314390579755346e+49, 1.8035211414273407e+50, 5.196138107978694e+49,
        2.237838969369654e+50, -1.8446422832136986e+50, -1.0969595635997308e+50,
        3.547343151677558e+50, -3.315546869963074e+49, 2.107973464567321e+50,
        -2.717169363159422e+48, -6.08495342196623e+49])
    X = np.column_stack([np.full(len(second), 4.244626621659088e+50), second])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="EM did not converge")
        model = PPCA(1, solver="em_pca", max_iter=5, tol=0, random_state=10,
                     init_params="pca").fit(X)
    scale = np.trace(np.cov(X.T, bias=True))
    assert np.all(np.abs(np.diff(model.history_[1:])) < 16 * np.finfo(float).eps * scale)
