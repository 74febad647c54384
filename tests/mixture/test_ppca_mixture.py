"""MixtureOfPPCA against independent truths: dense Gaussian mixture densities (scipy), the
closed-form PPCA likelihood (scikit-learn's PCA), planted local subspaces (principal angles),
dense conditional Gaussians for missing values, Monte Carlo moments."""

import warnings
from dataclasses import replace

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.utils.estimator_checks import parametrize_with_checks

from helpers import (
    assert_monotone,
    assert_online_resumes_after_save,
    assert_recovers,
    assert_resumes_after_save,
)
from latentkit import MixtureOfPPCA, load
from latentkit.em import NOTHING, ConvergenceWarning, ReseedWarning
from latentkit.mixture import _ppca_mixture_kernels as mk


def planted(n_per=600, D=10, M=2, K=3, noise=0.1, seed=0, missing_rate=0.0):
    """(X, X_complete, means (K, D), loadings [(D, M)], labels): K local M-dimensional
    subspaces, well separated, isotropic noise `noise` (standard deviation)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(K, D)) * 6
    loadings = [rng.normal(size=(D, M)) * 2 for _ in range(K)]
    X = np.concatenate([rng.normal(size=(n_per, M)) @ W.T + mu + noise * rng.normal(
        size=(n_per, D)) for W, mu in zip(loadings, means)])
    labels = np.repeat(np.arange(K), n_per)
    X_missing = X.copy()
    X_missing[rng.random(X.shape) < missing_rate] = np.nan
    return X_missing, X, means, loadings, labels


def dense_covariances(model):
    W = np.swapaxes(model.components_, 1, 2).astype(np.float64)  # (K, D, M)
    D = W.shape[1]
    return W @ np.swapaxes(W, 1, 2) + model.noise_variance_[:, None, None] * np.eye(D)


def brute_force_log_density(model, X):
    """log Σ_k π_k N(x_o; μ_k,o, (W_k W_k^T + σ_k² I)_oo) row by row with scipy (dense)."""
    covs = dense_covariances(model)
    if not np.isnan(X).any():
        return logsumexp([np.log(w) + multivariate_normal(mu, C).logpdf(X)
                          for w, mu, C in zip(model.weights_, model.means_, covs)], axis=0)
    out = np.empty(len(X))
    for i, x in enumerate(X):
        o = ~np.isnan(x)
        if not o.any():
            out[i] = 0.0
            continue
        out[i] = logsumexp([np.log(w) + multivariate_normal(mu[o], C[np.ix_(o, o)]).logpdf(x[o])
                            for w, mu, C in zip(model.weights_, model.means_, covs)])
    return out


@pytest.fixture(scope="module")
def fitted():
    X, *_ = planted()
    return X, MixtureOfPPCA(3, 2, random_state=0).fit(X)


@pytest.fixture(scope="module")
def fitted_missing():
    X, *_ = planted(missing_rate=0.3, seed=1)
    return X, MixtureOfPPCA(3, 2, random_state=0, tol=1e-8, max_iter=300).fit(X)


def test_log_likelihood_equals_dense_gaussian_mixture(fitted):
    X, model = fitted
    np.testing.assert_allclose(model.score_samples(X), brute_force_log_density(model, X),
                               rtol=1e-10, atol=1e-10)
    log_resp = model.posterior(X[:50]).log_probs
    covs = dense_covariances(model)
    joint = np.column_stack([np.log(w) + multivariate_normal(mu, C).logpdf(X[:50])
                             for w, mu, C in zip(model.weights_, model.means_, covs)])
    np.testing.assert_allclose(log_resp, joint - logsumexp(joint, axis=1, keepdims=True),
                               atol=1e-9)


def test_missing_log_likelihood_equals_brute_force_marginal(fitted_missing):
    X, model = fitted_missing
    assert 0.25 < np.isnan(X).mean() < 0.35
    X = X[:400].copy()  # scipy row by row is slow
    X[7] = np.nan  # an all-missing row: log p = log 1 = 0
    np.testing.assert_allclose(model.score_samples(X), brute_force_log_density(model, X),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("init_params", ["kmeans", "kmeans++", "random", "random_from_data"])
@pytest.mark.parametrize("missing_rate", [0.0, 0.3])
def test_em_is_monotone(init_params, missing_rate):
    X, *_ = planted(n_per=150, missing_rate=missing_rate, seed=2)
    model = MixtureOfPPCA(3, 2, init_params=init_params, random_state=1, tol=1e-10,
                          max_iter=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    assert len(model.history_) > 3
    assert_monotone(model.history_)


def match_subspaces(model, loadings):
    """(order, largest principal angle per true subspace) matching fitted components to
    the planted subspaces by the smallest largest principal angle (Hungarian)."""
    angles = np.array([[subspace_angles(W, C.T).max() for C in model.components_]
                       for W in loadings])
    rows, order = linear_sum_assignment(angles)
    return order, angles[rows, order]


@pytest.mark.parametrize("missing_rate, bound", [(0.0, 0.02), (0.3, 0.03)])
def test_recovers_planted_local_subspaces(missing_rate, bound):
    """Three 2-D subspaces in 10-D with noise s.d. 0.1 and 600 rows each: every planted
    subspace is matched by a fitted one with largest principal angle < 0.02 rad (0.03 with
    30% of entries missing; the sampling error is ~ noise / (signal √n) ≈ 0.003); means to
    0.05 of each planted cluster's sample mean, noise variances to 15%, weights to 0.02."""
    X, X_complete, _, loadings, _ = planted(missing_rate=missing_rate, seed=3)
    model = MixtureOfPPCA(3, 2, n_init=2, random_state=0).fit(X)
    assert_monotone(model.history_)
    order, angles = match_subspaces(model, loadings)
    assert np.all(angles < bound), angles
    cluster_means = X_complete.reshape(3, -1, X.shape[1]).mean(axis=1)  # ML means of the
    assert_recovers(cluster_means, model.means_[order], atol=0.05,  # planted clusters
                    permutation_invariant=False)
    np.testing.assert_allclose(model.noise_variance_, 0.01, rtol=0.15)
    np.testing.assert_allclose(model.weights_, 1 / 3, atol=0.02)


def test_one_component_reaches_the_closed_form_ppca_likelihood():
    """K = 1 is PPCA, whose maximum likelihood is closed-form (Tipping & Bishop): with λ_i the
    eigenvalues of the biased sample covariance, σ² = mean of the D - M smallest and
    log L / N = -½ (D log 2π + Σ_{i<=M} log λ_i + (D - M) log σ² + D). EM started away from
    it (perturbed loadings and noise, warm start) climbs back to it to 1e-8 relative."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 3.0
    lam = np.linalg.eigvalsh(np.cov(X.T, bias=True))[::-1]
    sigma2 = lam[2:].mean()
    optimum = -0.5 * (6 * np.log(2 * np.pi) + np.log(lam[:2]).sum() + 4 * np.log(sigma2) + 6)
    model = MixtureOfPPCA(1, 2, tol=1e-13, max_iter=3000, random_state=0).fit(X)
    assert model.score(X) == pytest.approx(optimum, rel=1e-10)  # the initialization is exact
    model.components_ = model.components_ * 0.5 + rng.normal(size=model.components_.shape)
    model.noise_variance_ = model.noise_variance_ * 3
    model.means_ = model.means_ + 0.5
    model.set_params(warm_start=True).fit(X)
    assert model.history_[0] < optimum - 0.1 and model.converged_
    assert_monotone(model.history_)
    assert model.score(X) == pytest.approx(optimum, rel=1e-8)
    np.testing.assert_allclose(model.noise_variance_[0], sigma2, rtol=1e-5)
    reference = SklearnPCA(2).fit(X)
    assert subspace_angles(model.components_[0].T, reference.components_.T).max() < 1e-4
    assert model.n_parameters_ == 6 + 6 * 2 - 1 + 1  # D + D M - M(M-1)/2 + 1


def test_fit_is_scale_equivariant(fitted):
    """The noise floor is relative to the data's variance: data scaled by 1e-4 (variances
    ~1e-10, far below an absolute floor of 1e-6) gives the same fit, scaled."""
    X, model = fitted
    small = MixtureOfPPCA(3, 2, random_state=0).fit(X * 1e-4)
    np.testing.assert_allclose(small.noise_variance_, model.noise_variance_ * 1e-8, rtol=1e-6)
    np.testing.assert_allclose(small.means_, model.means_ * 1e-4, rtol=1e-6, atol=1e-12)
    D = X.shape[1]  # log p(c x) = log p(x) - D log c
    np.testing.assert_allclose(small.score(X * 1e-4), model.score(X) - D * np.log(1e-4),
                               rtol=1e-8)


def test_bic_uses_the_parameter_count(fitted):
    X, model = fitted
    K, D, M = 3, 10, 2
    n_params = K - 1 + K * (D + D * M - M * (M - 1) // 2 + 1)
    assert model.n_parameters_ == n_params
    expected = -2 * brute_force_log_density(model, X).sum() + n_params * np.log(len(X))
    assert model.bic(X) == pytest.approx(expected, rel=1e-10)


def test_clustering_and_local_coordinates(fitted):
    """predict recovers the planted clusters; transform_local equals the dense PPCA
    posterior mean M_k^{-1} W_k^T (x - μ_k) in the predicted component; the round trip
    through inverse_transform_local is the projection W_k E[z] + μ_k."""
    X, model = fitted
    labels = planted()[4]
    predicted = model.predict(X)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(labels, predicted) == 1.0
    Z = model.transform_local(X)
    for k in range(3):
        rows = predicted == k
        W = model.components_[k].T
        M_k = W.T @ W + model.noise_variance_[k] * np.eye(2)
        expected = np.linalg.solve(M_k, W.T @ (X[rows] - model.means_[k]).T).T
        np.testing.assert_allclose(Z[rows], expected, atol=1e-10)
        np.testing.assert_allclose(model.transform_local(X[:5], component=k),
                                   np.linalg.solve(M_k, W.T @ (X[:5] - model.means_[k]).T).T,
                                   atol=1e-10)
    back = model.inverse_transform_local(Z, predicted)
    relative = np.linalg.norm(back - X) / np.linalg.norm(X - X.mean(axis=0))
    assert relative < 0.05  # the residual is the isotropic noise, s.d. 0.1 of ~6
    np.testing.assert_allclose(model.transform(X[:5]).sum(axis=1), 1.0)


def test_impute_equals_dense_conditional_expectation(fitted_missing):
    """E[x_m | x_o] = Σ_k p(k | x_o) (μ_k,m + C_k,mo C_k,oo^{-1} (x_o - μ_k,o)), dense."""
    X, model = fitted_missing
    X = X[:80]
    imputed = model.impute(X)
    covs = dense_covariances(model)
    resp = model.predict_proba(X)
    for i, x in enumerate(X):
        m = np.isnan(x)
        o = ~m
        if not m.any():
            np.testing.assert_array_equal(imputed[i], x)
            continue
        expected = sum(r * (mu[m] + C[np.ix_(m, o)] @ np.linalg.solve(C[np.ix_(o, o)],
                                                                      x[o] - mu[o]))
                       for r, mu, C in zip(resp[i], model.means_, covs))
        np.testing.assert_allclose(imputed[i, m], expected, rtol=1e-8, atol=1e-8)
        np.testing.assert_array_equal(imputed[i, o], x[o])


def test_imputation_beats_column_means():
    X, X_complete, *_ = planted(missing_rate=0.3, seed=5)
    model = MixtureOfPPCA(3, 2, random_state=0).fit(X)
    missing = np.isnan(X)
    rmse = np.sqrt(np.mean((model.impute(X) - X_complete)[missing] ** 2))
    column_means = np.where(missing, np.nanmean(X, axis=0), X)
    rmse_mean = np.sqrt(np.mean((column_means - X_complete)[missing] ** 2))
    assert rmse < 0.1 * rmse_mean  # local subspaces predict the missing entries well


def test_sample_moments_match_the_model(fitted):
    """Monte Carlo (50,000 draws): the mean Σ π_k μ_k and covariance Σ π_k (C_k + μ_k μ_k^T)
    - m m^T, to 3% of the largest entry; component frequencies to 0.01."""
    _, model = fitted
    X, labels = model.sample(50_000, random_state=0)
    mean = model.weights_ @ model.means_
    second = sum(w * (C + np.outer(mu, mu)) for w, mu, C in
                 zip(model.weights_, model.means_, dense_covariances(model)))
    cov = second - np.outer(mean, mean)
    np.testing.assert_allclose(X.mean(axis=0), mean, atol=0.03 * np.abs(mean).max() + 0.05)
    np.testing.assert_allclose(np.cov(X.T), cov, atol=0.03 * np.abs(cov).max())
    np.testing.assert_allclose(np.bincount(labels) / len(labels), model.weights_, atol=0.01)


def test_chunked_fit_equals_in_memory(fitted_missing):
    """Statistics add across chunks: a fit in chunks of 97 rows equals the one-chunk fit."""
    X, _ = fitted_missing
    kwargs = dict(random_state=0, tol=0.0, max_iter=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = MixtureOfPPCA(3, 2, chunk_size=100_000, **kwargs).fit(X)
        chunked = MixtureOfPPCA(3, 2, chunk_size=97, **kwargs).fit(X)
    np.testing.assert_allclose(chunked.history_, whole.history_, rtol=1e-11)
    np.testing.assert_allclose(chunked.components_, whole.components_, atol=1e-9)


def test_float32_agrees_with_float64(fitted):
    X, model = fitted
    m32 = MixtureOfPPCA(3, 2, random_state=0).fit(X.astype(np.float32))
    assert m32.means_.dtype == np.float32
    assert m32.score_samples(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(m32.score(X.astype(np.float32)), model.score(X), rtol=1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip_is_exact(tmp_path, fitted_missing, dtype):
    X = fitted_missing[0].astype(dtype)
    model = MixtureOfPPCA(3, 2, random_state=0).fit(X)
    model.save(tmp_path / "mppca.npz")
    loaded = load(tmp_path / "mppca.npz")
    assert type(loaded) is MixtureOfPPCA and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.impute(X), model.impute(X))
    np.testing.assert_array_equal(loaded.transform_local(X), model.transform_local(X))


def test_bad_input_raises_clear_errors(fitted):
    X, model = fitted
    with pytest.raises(ValueError, match="n_latent=10 must be < n_features=10"):
        MixtureOfPPCA(2, 10).fit(X)
    with pytest.raises(ValueError, match="n_components=5 must be <= n_samples=4"):
        MixtureOfPPCA(5, 2).fit(X[:4])
    with pytest.raises(ValueError, match="n_latent=4 must be < n_samples=3"):
        MixtureOfPPCA(2, 4).fit(X[:3])
    bad = X[:50].copy()
    bad[:, 3] = np.nan
    with pytest.raises(ValueError, match="column 3 is missing"):
        MixtureOfPPCA(2, 2).fit(bad)
    bad[:, 3] = 1.0
    bad[4, 2] = np.inf
    with pytest.raises(ValueError, match="inf at row 4, column 2"):
        MixtureOfPPCA(2, 2).fit(bad)
    with pytest.raises(ValueError, match="Expected 2D array"):
        MixtureOfPPCA(2, 2).fit(X[:, 0])
    with pytest.raises(ValueError, match="'min_noise_variance' must be"):
        MixtureOfPPCA(2, 2, min_noise_variance=0.0).fit(X)
    with pytest.raises(ValueError, match="'n_latent' must be"):
        MixtureOfPPCA(2, 0).fit(X)
    with pytest.raises(ValueError, match="10 features"):
        model.score_samples(X[:, :4])
    with pytest.raises(ValueError, match="component must be None or an int"):
        model.transform_local(X, component=3)
    with pytest.raises(ValueError, match=r"Z must be \(n_samples, 2\)"):
        model.inverse_transform_local(np.ones((3, 3)), np.zeros(3, int))


def test_saved_model_warm_starts_and_continues_online_em_exactly(tmp_path):
    """em_state_ and online_state_ are saved: a loaded model continues a fit, and online
    EM, exactly as the original (here with this family's own data)."""
    X = planted(n_per=200, missing_rate=0.1, seed=15)[0]
    def model():
        return MixtureOfPPCA(3, 2, random_state=0)

    assert_resumes_after_save(model(), X, tmp_path)
    assert_online_resumes_after_save(model(), [X[i:i + 100] for i in range(0, 400, 100)],
                                     tmp_path)


def test_m_step_reports_a_reseeded_component_instead_of_warning(fitted):
    """An empty component is split off the heaviest one; the kernel returns a StepInfo
    naming it (the engine warns its message), and the state passes through unchanged."""
    X, model = fitted
    params, state = model._current_params(), model.em_state_
    config = model._em_config(len(X), X.shape[1])
    stats, _ = mk.e_step(params, state, config, X)
    keep = np.array([1.0, 0.0, 1.0])  # component 1 receives no rows
    empty = replace(stats, nk=stats.nk * keep,
                    szz=stats.szz * keep[:, None, None] + (1 - keep)[:, None, None] * np.eye(3),
                    sxz=stats.sxz * keep[:, None, None], sxx=stats.sxx * keep)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReseedWarning)
        new, new_state, info = mk.m_step(empty, params, state, config)
    assert info.reseeded == (1,)
    assert "component 1 of the mixture of PPCA was empty" in info.message
    assert new_state is state
    assert np.all(np.isfinite(new.means)) and new.weights[1] > 0.1
    assert mk.m_step(stats, params, state, config)[2] == NOTHING


@parametrize_with_checks([MixtureOfPPCA(2, 1, random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
