"""Regressions for defects found by the property-based fuzz suite (tests/fuzz)."""

import warnings

import numpy as np
import pytest

import latentkit
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
