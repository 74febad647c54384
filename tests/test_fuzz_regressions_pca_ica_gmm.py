"""Regressions found by the property-based fuzz suite (tests/fuzz) in PCA, FastICA and
GaussianMixture: each reproducer, reduced, with the behaviour now required."""

import warnings

import numpy as np
import pytest

from latentkit._linalg import SingularCovarianceError
from latentkit.linear import PCA, FastICA
from latentkit.mixture import GaussianMixture

nan = np.nan


@pytest.mark.parametrize("X", [
    [[1.0], [1.0]],
    [[6.105070879081706e-08], [6.105070879081706e-08]],
    [[1.257302210933933e-09], [1.257302210933933e-09]],
    [[3.0, -2.0], [3.0, -2.0], [3.0, -2.0]],
])
def test_pca_identical_rows_lie_on_the_point_support(X):
    """Every variance 0: the support is the point μ, where the density is the point mass
    (log-density 0), never -inf on the training rows; -inf off it."""
    X = np.array(X)
    model = PCA(random_state=0).fit(X)
    scores = model.score_samples(X)
    assert np.all(np.isfinite(scores)), scores
    if np.all(model.explained_variance_ == 0):
        assert np.all(scores == 0)
    assert np.all(model.score_samples(X + 1e-3) == -np.inf)


def test_pca_singular_support_keeps_minus_inf_off_support():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    model = PCA(n_components=None, random_state=0).fit(X)
    assert np.all(np.isfinite(model.score_samples(X)))
    assert model.score_samples(np.array([[0.0, 1.0]]))[0] == -np.inf


def test_pca_mle_chooses_zero_components_as_scikit_learn():
    """Minka's MLE on a 1-feature spectrum has no candidate rank: scikit-learn keeps 0."""
    sklearn = pytest.importorskip("sklearn.decomposition")
    for X in ([[1.0], [-1.0]], [[1.257302210933933e-09], [-1.3210486329130189e-09]]):
        X = np.array(X)
        ours = PCA(n_components="mle", random_state=0).fit(X)
        theirs = sklearn.PCA(n_components="mle").fit(X)
        assert ours.n_components_ == theirs.n_components_ == 0
        assert np.all(np.isfinite(ours.score_samples(X)))


def test_ica_exp_contrast_underflow_keeps_a_finite_density():
    """exp(-u²/2) underflows for |u| ~ 1257: the Newton step vanishes; the unmixing must not
    collapse to 0 (log |det| = -inf)."""
    X = np.array([[1257.3022109339329]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FastICA(fun="exp", whiten=False, max_iter=1, random_state=0).fit(X)
    assert np.all(np.isfinite(model.score_samples(X)))
    assert np.all(model.components_ != 0)


@pytest.mark.parametrize("X", [[[1e-9, -1e99]], [[1.257302210933933e-09, -1.321048632913019e+99]]])
def test_ica_whiten_false_far_from_white_has_no_overflow_warning(X):
    X = np.array(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            model = FastICA(whiten=False, max_iter=1, random_state=0).fit(X)
        except ValueError as exc:  # a clear refusal is fine too
            assert "whiten" in str(exc)
            return
    assert np.all(np.isfinite(model.score_samples(X)))


def _fit_gmm(X, max_iter):
    return GaussianMixture(1, reg_covar=0.0, max_iter=max_iter, tol=0, random_state=0).fit(
        np.array(X))


@pytest.mark.parametrize("X", [
    [[1.4, 0.85], [1.9, 0.6], [0.9, 1.1]],  # complete rows on a line
    [[nan, nan], [1.9, 0.6], [0.9, 1.1]],  # the NaN row filled onto that line
])
def test_gmm_singular_full_covariance_raises_without_reg_covar(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SingularCovarianceError):
            _fit_gmm(X, 5)


def test_gmm_constant_column_with_missing_values_raises_without_reg_covar():
    """A column constant where observed (scale 1e-8), with NaNs: its variance shrinks below
    the resolution of the values; raise, never a non-monotone EM history."""
    c = -1.3210486329130189e-09
    X = [[1.257302210933933e-09, nan], [nan, nan], [-7.037352358069926e-09, nan],
         [-6.232744625373522e-09, nan], [nan, c], [-1.2459109472530651e-08, nan],
         [-1.2853466294403426e-09, c], [-7.434992493538084e-09, nan],
         [-4.577258256673392e-09, c], [-1.0096181835387359e-08, nan],
         [-1.5922500991447771e-09, c], [2.146591225063409e-09, nan],
         [-6.538286094183395e-09, c], [7.839754700613295e-09, nan],
         [-1.2590655321041203e-08, c], [1.3458754237823045e-08, nan], [nan, c],
         [1.4580206835369586e-08, nan], [3.57380410658956e-09, nan],
         [-4.454133120083229e-11, c], [nan, c]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SingularCovarianceError):
            _fit_gmm(X, 6)


def test_gmm_regularized_singular_data_still_fits():
    X = np.array([[nan, nan], [1.9, 0.6], [0.9, 1.1]])
    model = GaussianMixture(1, reg_covar=1e-6, max_iter=5, random_state=0).fit(X)
    assert np.all(np.isfinite(model.score_samples(X)))
