"""The Gaussian mixture's kernels checked against each other and against scipy: the
exponential-family expansion, the direct product, and the accurate fallback."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from latentkit import GaussianMixture
from latentkit.mixture import _gaussian_expfam as ef
from latentkit.mixture import _gaussian_kernels as gk
from latentkit.mixture._covariance import covariance_type as lookup

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def random_params(rng, K, D, covariance_type, spread=3.0):
    means = rng.normal(0, spread, (K, D))
    A = rng.normal(size=(K, D, D))
    full = A @ np.swapaxes(A, 1, 2) / D + 0.5 * np.eye(D)
    cov = {"full": full, "tied": full[0], "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
           "spherical": full[:, 0, 0].copy()}[covariance_type]
    weights = rng.dirichlet(np.ones(K))
    return gk.make_params(weights, means, cov, lookup(covariance_type),
                          shift=rng.normal(size=D))


def scipy_log_prob(params, X):
    covs = gk.full_covariances(params)
    return np.stack([multivariate_normal(m, c).logpdf(X)
                     for m, c in zip(params.means, covs)], axis=1)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_expansion_direct_and_scipy_agree(covariance_type):
    rng = np.random.default_rng(0)
    params = random_params(rng, 4, 5, covariance_type)
    X = rng.normal(0, 3, (300, 5))
    T = ef.sufficient_statistics_t(X, params.shift, params.covariance)
    expanded = ef.log_joint_expanded(T, params.natural, np.zeros(4)).T
    direct = gk.log_gaussian_prob(X - params.shift, params.means - params.shift,
                                  params.precisions_cholesky, params.covariance)
    reference = scipy_log_prob(params, X)
    np.testing.assert_allclose(expanded, reference, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(direct, reference, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("D", [4, 20])
def test_statistics_equal_weighted_sums(covariance_type, D):
    """Σ r [1, x, x x^T] by either path (one GEMM over T for D=4; for D=20 with K=3 full
    and tied take the per-component products) equals the sums written out."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, D))
    shift = rng.normal(size=D)
    resp = rng.dirichlet(np.ones(3), size=50).T  # (K, n)
    assert lookup(covariance_type).uses_expansion(D, 3) == (D == 4 or covariance_type in (
        "diag", "spherical"))
    nk, sx, sxx = gk.complete_stats(X, shift, resp, lookup(covariance_type))
    Xs = X - shift
    outer = np.einsum("kn,ni,nj->kij", resp, Xs, Xs)
    np.testing.assert_allclose(nk, resp.sum(axis=1))
    np.testing.assert_allclose(sx, resp @ Xs)
    expected = {"full": outer, "tied": outer.sum(axis=0),
                "diag": np.diagonal(outer, axis1=1, axis2=2),
                "spherical": np.trace(outer, axis1=1, axis2=2)}[covariance_type]
    np.testing.assert_allclose(sxx, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_far_component_uses_the_accurate_fallback(dtype):
    """A tight component far from the data's centre makes μ^T Λ μ huge: the expansion would
    cancel catastrophically (in float32 entirely), so the direct product takes over."""
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(500, 1e-2, (300, 2))])
    X = X.astype(dtype)  # the reference sees the same rounded inputs
    model = GaussianMixture(2, random_state=0).fit(X)
    params = model._current_params()
    assert not ef.expansion_is_accurate(params.max_const, dtype)
    reference = scipy_log_prob(params, X.astype(np.float64)) + np.log(params.weights)
    reference = np.logaddexp.reduce(reference, axis=1)
    rtol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(model.score_samples(X), reference, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(np.sort(model.means_[:, 0]), [0, 500], atol=0.2)


def test_results_do_not_depend_on_the_number_of_threads(monkeypatch):
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 1, (3000, 4)), rng.normal(3, 1, (3000, 4))])
    fits = []
    for threads in ("1", "2"):
        monkeypatch.setenv("LATENTKIT_NUM_THREADS", threads)
        fits.append(GaussianMixture(2, random_state=0, chunk_size=500, tol=1e-8).fit(X))
    np.testing.assert_allclose(fits[0].history_, fits[1].history_, rtol=1e-13)
    np.testing.assert_allclose(fits[0].means_, fits[1].means_, rtol=1e-12)


def test_bad_thread_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LATENTKIT_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="LATENTKIT_NUM_THREADS"):
        GaussianMixture(1, chunk_size=5).fit(np.zeros((20, 2)) + np.arange(20)[:, None])
