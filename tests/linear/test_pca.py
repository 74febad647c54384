"""PCA against scikit-learn's PCA (every solver, N < D via the Gram trick), whitening,
reconstruction, deterministic signs and bad input."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import multivariate_normal
from sklearn.datasets import load_iris, make_low_rank_matrix
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.decomposition._pca import _assess_dimension, _infer_dimension

from latentkit import PCA, load
from latentkit.linear._pca_select import infer_dimension, minka_log_evidence


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
    X = low_rank_data(30, 600, 5, seed=1)  # max(N, D) > 500: "auto" is not "full"
    # randomized: 7 power iterations reach 1e-10 here (scikit-learn's 4 leave 7e-10 too)
    ours = PCA(5, svd_solver=solver, random_state=0, iterated_power=7).fit(X)
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
    (dict(n_components=7), r"must be between 0 and min\(n_samples, n_features\)=6"),
    (dict(n_components=6, svd_solver="arpack"), "must be strictly less than min"),
    (dict(n_components=0, svd_solver="randomized"), "must be between 1 and min"),
    (dict(svd_solver="lapack"), "svd_solver"),
    (dict(n_components=-1), "n_components"),
    (dict(n_components="mle", svd_solver="arpack"), "cannot be a string"),
    (dict(iterated_power=-1), "iterated_power"),
    (dict(power_iteration_normalizer="qr"), "power_iteration_normalizer"),
    (dict(tol=-1.0), "tol"),
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
        full.posterior(X)


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
    cumulative = np.cumsum(ours.explained_variance_ratio_)
    assert cumulative[-1] > fraction  # the fewest whose ratio exceeds it (scikit-learn)
    assert ours.n_components_ == 1 or cumulative[-2] <= fraction


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


# -- issue 11: a drop-in for scikit-learn users -------------------------------------------


def rank_deficient_data(n, d, rank, n_constant=0, seed=0):
    """Rank `rank` data in d columns, plus n_constant constant columns."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + 2.0
    return np.hstack([X, np.full((n, n_constant), 5.0)])


def test_whitening_rank_deficient_data_stays_finite():
    """Defect 4: with the covariance solver ("auto" on tall data) a zero eigenvalue of
    rank-deficient data made whitened outputs inf/NaN. √λ is floored at eps, as scikit-learn
    does; the well-determined directions equal scikit-learn's."""
    X = rank_deficient_data(400, 12, 4, n_constant=3)
    ours = PCA(12, whiten=True).fit(X)
    assert ours.svd_solver_ == "covariance_eigh"
    assert np.any(ours.explained_variance_ == 0)  # the case this test is about
    Z = ours.transform(X)
    assert np.isfinite(Z).all()
    assert np.isfinite(ours.fit_transform(X)).all()
    ref = SklearnPCA(8, whiten=True, svd_solver="covariance_eigh").fit(X)
    np.testing.assert_allclose(Z[:, :4], ref.transform(X)[:, :4], atol=1e-8)
    np.testing.assert_allclose(np.cov(Z[:, :4].T), np.eye(4), atol=1e-8)
    np.testing.assert_allclose(ours.inverse_transform(Z), X, atol=1e-8)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_fraction_at_an_exact_cumulative_ratio(k):
    """Defect 5: a threshold equal to a cumulative ratio the model itself reports keeps one
    more component (scikit-learn's rule: the fewest whose cumulative ratio exceeds it), on
    iris: 2, 3, 4 for k = 0, 1, 2 (we kept 2, 2, 3)."""
    X = load_iris().data
    threshold = PCA().fit(X).explained_variance_ratio_.cumsum()[k]
    ours = PCA(threshold).fit(X)
    theirs = SklearnPCA().fit(X).explained_variance_ratio_.cumsum()[k]
    assert ours.n_components_ == SklearnPCA(theirs).fit(X).n_components_ == k + 2
    cumulative = np.cumsum(ours.explained_variance_ratio_)
    assert cumulative[-1] > threshold >= cumulative[-2]


def randomized_errors(model_class, X, exact, M, n_iter, seeds):
    """Mean over seeds of (max relative error of the variances, norm of the components'
    part outside the exact principal subspace) of randomized PCA at n_iter."""
    value_errors, subspace_errors = [], []
    for seed in seeds:
        model = model_class(M, svd_solver="randomized", iterated_power=n_iter,
                            random_state=seed).fit(X)
        value_errors.append(np.max(np.abs(model.explained_variance_ / exact.explained_variance_
                                          - 1)))
        C = model.components_
        subspace_errors.append(np.linalg.norm(C - C @ exact.components_.T @ exact.components_))
    return np.mean(value_errors), np.mean(subspace_errors)


@pytest.mark.parametrize("n_iter", [1, 2])
def test_randomized_is_as_accurate_as_sklearn(n_iter):
    """Defect 8: randomized PCA did half a power iteration less than scikit-learn's
    randomized_range_finder (variance errors 1.5-2.5x, subspace errors 1.4x theirs). Truth:
    the exact SVD; slowly decaying spectrum, 20 seeds each."""
    X = make_low_rank_matrix(1000, 200, effective_rank=15, tail_strength=0.8, random_state=0)
    exact = SklearnPCA(10, svd_solver="full").fit(X)
    ours = randomized_errors(PCA, X, exact, 10, n_iter, range(20))
    theirs = randomized_errors(SklearnPCA, X, exact, 10, n_iter, range(20))
    assert ours[0] <= 1.1 * theirs[0]
    assert ours[1] <= 1.15 * theirs[1]


@pytest.mark.parametrize("normalizer", ["auto", "QR", "LU", "none"])
@pytest.mark.parametrize("shape", [(300, 40), (40, 300)])
def test_power_iteration_normalizers(normalizer, shape):
    X = low_rank_data(*shape, 4, noise=0.01)
    ours = PCA(4, svd_solver="randomized", iterated_power=5, n_oversamples=4,
               power_iteration_normalizer=normalizer, random_state=0).fit(X)
    assert ours.n_iter_ == 5
    assert_matches_sklearn(ours, SklearnPCA(4, svd_solver="full").fit(X), X, rtol=1e-9)


def test_randomized_variances_are_those_of_the_projections():
    """explained_variance_ is the variance of transform's columns, as scikit-learn's
    fit_transform output has."""
    X = np.random.default_rng(0).normal(size=(100, 80))
    model = PCA(2, svd_solver="randomized", random_state=0).fit(X)
    np.testing.assert_allclose(model.explained_variance_,
                               np.var(model.transform(X), ddof=1, axis=0), rtol=1e-12)


def test_arpack_matches_sklearn():
    X = low_rank_data(200, 30, 5)
    ours = PCA(5, svd_solver="arpack", random_state=0).fit(X)
    assert_matches_sklearn(ours, SklearnPCA(5, svd_solver="arpack", random_state=0).fit(X),
                           X, rtol=1e-9)
    assert PCA(svd_solver="arpack").fit(X).n_components_ == 29  # None: min(N, D) - 1


def sparse_data(container, n=400, d=60, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, random_state=seed, format="csr")
    return container(X.multiply(rng.uniform(1, 10, d)).tocsr())


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix, sp.csr_array,
                                       sp.csc_array])
@pytest.mark.parametrize("solver", ["arpack", "covariance_eigh", "randomized", "auto"])
def test_sparse_equals_dense(solver, container):
    """Sparse input, centred implicitly, gives the dense fit (and scikit-learn's where it
    takes sparse input); transform of sparse rows equals that of the dense rows."""
    X = sparse_data(container)
    Xd = X.toarray()
    options = dict(svd_solver=solver, random_state=0, iterated_power=30)
    ours, dense = PCA(5, **options).fit(X), PCA(5, **options).fit(Xd)
    assert ours.svd_solver_ == ("arpack" if solver == "auto" else solver)
    assert_matches_sklearn(ours, dense, Xd, rtol=1e-8)
    np.testing.assert_allclose(ours.transform(X), dense.transform(Xd), atol=1e-9)
    np.testing.assert_allclose(ours.fit_transform(X), dense.transform(Xd), atol=1e-9)
    if solver != "randomized":
        ref = SklearnPCA(5, svd_solver=solver, random_state=0).fit(X)
        assert_matches_sklearn(ours, ref, Xd, rtol=1e-8)


@pytest.mark.parametrize("solver", ["arpack", "randomized"])
def test_sparse_is_never_densified(solver):
    """A 5000 x 4000 sparse matrix (160 MB dense) fits in a few MB."""
    X = sp.random(5000, 4000, density=5e-4, random_state=0, format="csr")
    tracemalloc.start()
    PCA(3, svd_solver=solver, random_state=0).fit(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8e6


@pytest.mark.parametrize("solver", ["full", "gram"])
def test_sparse_with_a_dense_solver_is_a_type_error(solver):
    with pytest.raises(TypeError, match="'arpack', 'covariance_eigh' and 'randomized'"):
        PCA(3, svd_solver=solver).fit(sparse_data(sp.csr_matrix))


def test_minka_evidence_matches_sklearn():
    """The O(D²) evidence of every rank against scikit-learn's term-by-term loop."""
    rng = np.random.default_rng(0)
    for spectrum, n in [(np.sort(rng.gamma(1.0, size=12))[::-1], 40),
                        (np.array([5.0, 3.0, 1.0, 0.2, 0.19, 0.18]), 1000),
                        (np.array([1, 1e-30, 1e-30, 1e-30]), 10)]:
        ll = minka_log_evidence(spectrum, n)
        ref = [_assess_dimension(spectrum, k, n) for k in range(1, len(spectrum))]
        np.testing.assert_allclose(ll[1:], ref, rtol=1e-12)
        assert ll[0] == -np.inf
        assert infer_dimension(spectrum, n) == _infer_dimension(spectrum, n)


@pytest.mark.parametrize("solver", ["auto", "full", "covariance_eigh"])
def test_mle_matches_sklearn(solver):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 10)) + 0.1 * rng.normal(size=(500, 10))
    ours = PCA("mle", svd_solver=solver).fit(X)
    ref = SklearnPCA("mle", svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_ == 3
    assert_matches_sklearn(ours, ref, X, rtol=1e-9)
    with pytest.raises(ValueError, match="only supported if n_samples >= n_features"):
        PCA("mle").fit(X[:8])


def test_zero_components_is_isotropic_noise():
    """n_components=0 (as scikit-learn): no components, σ² the mean eigenvalue, the
    density N(x̄, σ² I)."""
    X = low_rank_data(100, 5, 2)
    ours, ref = PCA(0).fit(X), SklearnPCA(0).fit(X)
    assert ours.components_.shape == (0, 5) and ours.transform(X).shape == (100, 0)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(ours.get_precision(), ref.get_precision(), rtol=1e-12)


@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("M", [0, 2, 5])
def test_precision_matches_sklearn(M, whiten):
    X = low_rank_data(100, 6, 2, noise=0.3)
    ours = PCA(M, whiten=whiten).fit(X)
    ref = SklearnPCA(M).fit(X)  # unwhitened: the density does not depend on whitening
    np.testing.assert_allclose(ours.get_precision(), ref.get_precision(), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(ours.get_covariance() @ ours.get_precision(), np.eye(6),
                               atol=1e-12)


def test_score_with_every_component_kept():
    """noise_variance_ = 0. Tall data (M = D): the full Gaussian N(x̄, S), as scikit-learn
    and scipy. Wide data (M = N): S is singular; the density on its support, as scipy's
    multivariate_normal(allow_singular=True), -inf off it."""
    X = low_rank_data(100, 4, 2, noise=0.3)
    tall = PCA(4).fit(X)
    assert tall.noise_variance_ == 0
    truth = multivariate_normal(X.mean(axis=0), np.cov(X.T)).logpdf(X)
    np.testing.assert_allclose(tall.score_samples(X), truth, rtol=1e-10)
    np.testing.assert_allclose(tall.score(X), SklearnPCA(4).fit(X).score(X), rtol=1e-10)
    np.testing.assert_allclose(tall.get_precision(), np.linalg.inv(np.cov(X.T)), rtol=1e-8)
    W = low_rank_data(5, 8, 2, noise=0.3)
    wide = PCA(5).fit(W)
    assert wide.noise_variance_ == 0
    singular = multivariate_normal(W.mean(axis=0), np.cov(W.T), allow_singular=True)
    np.testing.assert_allclose(wide.score_samples(W), singular.logpdf(W), rtol=1e-8)
    assert np.all(wide.score_samples(W + 1.0) == -np.inf)


def test_copy_false_may_centre_in_place():
    X = low_rank_data(60, 8, 3)
    ref = PCA(3, svd_solver="full").fit(X)
    X_work = X.copy()
    Z = PCA(3, svd_solver="full", copy=False).fit_transform(X_work)
    np.testing.assert_allclose(Z, ref.transform(X), atol=1e-10)
    np.testing.assert_allclose(X_work, X - X.mean(axis=0), atol=1e-12)  # overwritten
    X_keep = X.copy()
    PCA(3, svd_solver="full").fit(X_keep)
    np.testing.assert_array_equal(X_keep, X)  # copy=True leaves X alone
