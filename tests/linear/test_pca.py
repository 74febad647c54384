"""PCA against scikit-learn's PCA (every solver, N < D via the Gram trick), whitening,
reconstruction, deterministic signs and bad input."""

import numpy as np
import pytest
from sklearn.decomposition import PCA as SklearnPCA

from latentkit import PCA, load


def low_rank_data(n, d, m, seed=0, noise=0.05):
    """Rows with a clear spectral gap after component m (randomized converges exactly)."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(5, 2, m)
    basis = np.linalg.qr(rng.normal(size=(d, m)))[0]
    return 3 + (rng.normal(size=(n, m)) * scales) @ basis.T + noise * rng.normal(size=(n, d))


def assert_matches_sklearn(ours, ref, X, rtol=1e-10):
    np.testing.assert_allclose(ours.components_, ref.components_, atol=rtol)  # same signs
    np.testing.assert_allclose(np.abs(ours.components_), np.abs(ref.components_), atol=rtol)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=rtol)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_,
                               rtol=rtol)
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=rtol)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-8)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=rtol * 10)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=rtol)


@pytest.mark.parametrize("solver", ["covariance_eigh", "full", "randomized"])
@pytest.mark.parametrize("whiten", [False, True])
def test_matches_sklearn(solver, whiten):
    X = low_rank_data(400, 15, 4)
    ours = PCA(4, svd_solver=solver, whiten=whiten, random_state=0).fit(X)
    ref = SklearnPCA(4, svd_solver=solver, whiten=whiten, random_state=0).fit(X)
    assert_matches_sklearn(ours, ref, X)
    # the density does not depend on how projections are scaled; scikit-learn's whitened
    # PCA rescales its components inside get_covariance, so compare with the unwhitened one
    unwhitened = SklearnPCA(4, svd_solver=solver, random_state=0).fit(X)
    np.testing.assert_allclose(ours.score_samples(X), unwhitened.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)),
                               ref.inverse_transform(ref.transform(X)), atol=1e-9)


@pytest.mark.parametrize("solver", ["gram", "full", "randomized", "auto"])
def test_fewer_samples_than_features(solver):
    """N < D: the Gram-matrix trick (and the others) against scikit-learn's full SVD."""
    X = low_rank_data(30, 200, 5, seed=1)
    ours = PCA(5, svd_solver=solver, random_state=0).fit(X)
    ref = SklearnPCA(5, svd_solver="full").fit(X)
    assert_matches_sklearn(ours, ref, X)
    if solver == "auto":
        assert ours.svd_solver_ == "gram"


def test_auto_chooses_covariance_for_tall_data():
    X = low_rank_data(300, 10, 3)
    model = PCA(3).fit(X)
    assert model.svd_solver_ == "covariance_eigh"
    assert_matches_sklearn(model, SklearnPCA(3, svd_solver="full").fit(X), X)


def test_all_components_and_none():
    X = low_rank_data(50, 6, 3)
    ours, ref = PCA().fit(X), SklearnPCA().fit(X)
    assert ours.n_components_ == 6
    assert_matches_sklearn(ours, ref, X)
    # M = min(N, D): reconstruction is exact
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)), X, atol=1e-10)


def test_whitened_output_has_identity_covariance():
    X = low_rank_data(500, 12, 4)
    Z = PCA(4, whiten=True).fit(X).transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(np.cov(Z.T), np.eye(4), atol=1e-10)


def test_deterministic_signs():
    X = low_rank_data(200, 8, 3)
    runs = [PCA(3, svd_solver=s, random_state=r).fit(X).components_
            for s, r in [("full", 0), ("covariance_eigh", 0), ("randomized", 1),
                         ("randomized", 2)]]
    for components in runs:
        np.testing.assert_allclose(components, runs[0], atol=1e-9)
        biggest = np.argmax(np.abs(components), axis=1)
        assert np.all(components[np.arange(3), biggest] > 0)
    np.testing.assert_array_equal(np.sign(-X[:1]), np.sign(-X[:1]))


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-3)])
@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_covariance_eigh_survives_a_large_mean(offset, dtype, rtol):
    """The one-GEMM covariance X^T X - N x̄ x̄^T would cancel when the mean dwarfs the
    spread; there the solver must switch to centred blocks. Truth: the float64 SVD of the
    exactly centred data."""
    X = (low_rank_data(2000, 12, 3) + offset).astype(dtype)
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    truth = np.linalg.svd(Xc, compute_uv=False)[:3] ** 2 / (len(X) - 1)
    ours = PCA(3, svd_solver="covariance_eigh").fit(X)
    np.testing.assert_allclose(ours.explained_variance_, truth, rtol=rtol)


def test_float32():
    X = low_rank_data(300, 10, 3)
    for solver in ["covariance_eigh", "full", "randomized"]:
        ours = PCA(3, svd_solver=solver, random_state=0).fit(X.astype(np.float32))
        assert ours.components_.dtype == np.float32
        assert ours.transform(X.astype(np.float32)).dtype == np.float32
        ref = SklearnPCA(3, svd_solver="full").fit(X)
        np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-4)
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_,
                                   rtol=1e-4)


def test_posterior_and_sample_follow_the_ppca_density():
    X = low_rank_data(300, 8, 2, noise=0.3)
    model = PCA(2).fit(X)
    C = model.get_covariance()
    np.testing.assert_allclose(C, SklearnPCA(2).fit(X).get_covariance(), rtol=1e-10)
    Xs, Z = model.sample(20000, random_state=0)
    # Monte Carlo: sample covariance within 5% (relative Frobenius) of the model's
    assert np.linalg.norm(np.cov(Xs.T) - C) / np.linalg.norm(C) < 0.05
    post = model.posterior(X[:3])
    assert post.mean.shape == (3, 2)


def test_save_load(tmp_path):
    X = low_rank_data(100, 6, 2)
    model = PCA(2, whiten=True).fit(X)
    model.save(tmp_path / "pca.npz")
    loaded = load(tmp_path / "pca.npz")
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


@pytest.mark.parametrize("bad, match", [
    (dict(n_components=7), "must be <= min"),
    (dict(svd_solver="arpack"), "svd_solver"),
    (dict(n_components=0), "n_components"),
    (dict(iterated_power=-1), "iterated_power"),
])
def test_bad_parameters(bad, match):
    X = low_rank_data(20, 6, 2)
    with pytest.raises(ValueError, match=match):
        PCA(**bad).fit(X)


def test_bad_input():
    X = low_rank_data(20, 6, 2)
    with pytest.raises(ValueError, match="n_samples < n_features"):
        PCA(2, svd_solver="gram").fit(X)
    X_inf = X.copy()
    X_inf[3, 2] = np.inf
    with pytest.raises(ValueError, match="inf at row 3, column 2"):
        PCA(2).fit(X_inf)
    X_nan = X.copy()
    X_nan[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN at row 1, column 0"):
        PCA(2).fit(X_nan)
    with pytest.raises(ValueError, match="2D"):
        PCA(2).fit(X[:, 0])
    model = PCA(2).fit(X)
    with pytest.raises(ValueError, match="features"):
        model.transform(X[:, :5])
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        model.inverse_transform(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        PCA(1).fit(X[:1])
    full = PCA().fit(X)
    with pytest.raises(ValueError, match="positive noise variance"):
        full.score_samples(X)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.999])
@pytest.mark.parametrize("solver", ["auto", "covariance_eigh", "full"])
def test_fractional_n_components_matches_sklearn(fraction, solver):
    """n_components in (0, 1): the fewest components explaining that fraction of the
    variance, as scikit-learn chooses them."""
    X = low_rank_data(400, 20, 6)
    ours = PCA(fraction, svd_solver=solver).fit(X)
    ref = SklearnPCA(fraction, svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_
    assert_matches_sklearn(ours, ref, X)
    assert ours.explained_variance_ratio_.sum() >= fraction
    assert ours.explained_variance_ratio_[:-1].sum() < fraction


def test_fractional_n_components_with_gram_solver():
    X = low_rank_data(15, 40, 3)
    ours = PCA(0.95, svd_solver="gram").fit(X)
    ref = SklearnPCA(0.95, svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_
    assert_matches_sklearn(ours, ref, X, rtol=1e-8)


def test_fractional_n_components_needs_the_whole_spectrum():
    with pytest.raises(ValueError, match="whole spectrum"):
        PCA(0.9, svd_solver="randomized").fit(low_rank_data(50, 8, 2))
    with pytest.raises(ValueError, match="n_components"):
        PCA(1.5).fit(low_rank_data(50, 8, 2))
