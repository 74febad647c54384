"""PCA keeping every direction (noise_variance_ = 0) on columns of very different scales
(issue 12, fuzz long profile): the density is the Gaussian on its support, the directions
whose variance exceeds 1e6 eps times the largest (scipy's allow_singular rule). A direction
of real variance below that cutoff counts as 0, but the training rows, which lie off the
kept span by exactly that variance, were then put off the support themselves: log-density
-inf on the data the model was fitted to (scikit-learn and scipy give -inf too).

The checks are independent of our kernels: scipy's normal density on the support found by
numpy's eigh of np.cov, the change of variables under a rescaling of the data, and points
certainly off the support.
"""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from latentkit.linear import PCA

#: the fuzz reproducer: 3 rows, a column near 6 beside two near 1e-8 (variance ratio 1e-14)
FUZZ = np.array([[6.031874650844294, 1.4620186322251815e-08, -5.245833299075937e-08],
                 [6.078101355040951, 5.445917481533891e-08, -4.0649137722504773e-08],
                 [5.709048856412805, 3.366465983972569e-08, -3.706586826466623e-08]])


def _spread_columns(n, seed=0):
    """n rows of 4 columns at scales 1, 1e-8, 1e-9 and 3e-10 (a few near-constant
    columns beside one of ordinary spread, as the fuzz strategies draw)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)) * [1.0, 1e-8, 1e-9, 3e-10] + [5.0, 0.0, 1e-8, -2e-9]


def _density_on_support(X, points):
    """log-density of `points` under N(x̄, S) restricted to the span of S's eigenvectors
    whose eigenvalue exceeds 1e6 eps times the largest (S = np.cov, numpy's eigh): scipy's
    normal on the coordinates u_+^T (x - x̄), the points first projected onto the support."""
    S = np.atleast_2d(np.cov(X.T))
    values, vectors = np.linalg.eigh(S)
    keep = values > 1e6 * np.finfo(float).eps * values.max()
    coords = (points - X.mean(axis=0)) @ vectors[:, keep]
    return multivariate_normal(np.zeros(keep.sum()), np.diag(values[keep])).logpdf(coords)


@pytest.mark.parametrize("solver", ["auto", "full", "covariance_eigh"])
def test_fuzz_reproducer_scores_its_training_rows(solver):
    model = PCA(None, svd_solver=solver).fit(FUZZ)
    assert model.noise_variance_ == 0
    scores = model.score_samples(FUZZ)
    assert np.all(np.isfinite(scores)), scores  # was [-inf, -inf, 0.027]
    np.testing.assert_allclose(scores, _density_on_support(FUZZ, FUZZ), rtol=1e-9)


@pytest.mark.parametrize("n", [3, 4, 30])
def test_training_rows_are_on_the_support_at_any_unit(n):
    """log p(a x) = log p(x) - r log a on an r-dimensional support, for every training row:
    the answer cannot depend on the data's units (it did: scaled by 2^30 the rows were on
    the support, scaled by 2^-30 off it)."""
    X = _spread_columns(n)
    base = PCA(None).fit(X)
    r = int(np.sum(base.explained_variance_ > 1e6 * np.finfo(float).eps
                   * base.explained_variance_.max()))
    reference = base.score_samples(X)
    assert np.all(np.isfinite(reference))
    np.testing.assert_allclose(reference, _density_on_support(X, X), rtol=1e-8)
    for a in (2.0**-30, 2.0**30):
        scaled = PCA(None).fit(a * X).score_samples(a * X)
        np.testing.assert_allclose(scaled, reference - r * np.log(a), rtol=1e-9)


def test_points_off_the_support_stay_impossible():
    model = PCA(None).fit(FUZZ)
    on_line = FUZZ.mean(axis=0) + 0.1 * model.components_[0]
    assert np.isfinite(model.score_samples(on_line[None])[0])
    for step in ([0.0, 1e-6, 0.0], [0.0, 0.0, -1e-6], [0.0, 1e-3, 1e-3]):
        # 1e-6 is 30 times the training rows' largest distance from the line
        assert model.score_samples((FUZZ[0] + step)[None])[0] == -np.inf


@pytest.mark.parametrize("X", [
    np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]),  # rank 1: rows exactly on a line
    np.random.default_rng(5).standard_normal((5, 8)),  # wide: rank N - 1
])
def test_exact_rank_deficiency_keeps_its_tight_support(X):
    """Where the dropped variances are round-off, the support's tolerance stays round-off:
    scipy's density on the training rows and -inf a little off the support."""
    model = PCA(None).fit(X)
    truth = multivariate_normal(X.mean(axis=0), np.cov(X.T), allow_singular=True)
    np.testing.assert_allclose(model.score_samples(X), truth.logpdf(X), rtol=1e-8)
    normal = np.linalg.svd(X - X.mean(axis=0))[2][-1]  # orthogonal to the support
    assert np.all(model.score_samples(X + 1e-6 * normal) == -np.inf)
