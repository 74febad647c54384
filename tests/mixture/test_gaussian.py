"""GaussianMixture against independent truths: scikit-learn's EM trajectory, numerical
integration over missing coordinates, planted parameters, Monte Carlo moments."""

import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky
from sklearn.utils.estimator_checks import parametrize_with_checks

from helpers import assert_monotone, assert_recovers
from latentkit import GaussianMixture, ModelFileError, load
from latentkit.datasets import make_mixture
from latentkit.em import ConvergenceWarning, ReseedWarning
from latentkit.mixture import _gaussian_em as gem
from latentkit.mixture import _gaussian_kernels as gk
from latentkit.mixture._gaussian_kernels import full_covariances

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(scope="module")
def three_blobs():
    rng = np.random.default_rng(0)
    return np.concatenate([
        rng.normal(0, 1, (200, 3)),
        rng.normal(4, 0.5, (150, 3)),
        rng.normal([0, 5, 0], 1, (150, 3)),
    ])


def mixture_density(model, x):
    """p(x) of a fitted mixture by scipy, component by component: (n,)."""
    covs = full_covariances(model._current_params())
    return sum(w * multivariate_normal(m, c).pdf(x)
               for w, m, c in zip(model.weights_, model.means_, covs))


@pytest.fixture(scope="module")
def wide_blobs():
    """Two clusters in 14 dimensions: (D + 1)/4 > K, so full and tied covariances take the
    direct path (stacked factors, per-component scatter), not the expansion."""
    rng = np.random.default_rng(5)
    return np.concatenate([rng.normal(0, 1, (300, 14)), rng.normal(2, 1.5, (200, 14))])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("data", ["three_blobs", "wide_blobs"])
def test_follows_sklearn_trajectory(request, data, covariance_type):
    """From identical initial parameters, every EM iteration matches scikit-learn to 1e-8,
    on the expansion path (three_blobs) and on the direct path (wide_blobs, full/tied)."""
    X = request.getfixturevalue(data)
    K = 3 if data == "three_blobs" else 2
    start = SklearnGaussianMixture(K, covariance_type=covariance_type, max_iter=2,
                                   random_state=0, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(X)
    init = dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)
    reference = SklearnGaussianMixture(K, covariance_type=covariance_type, max_iter=1,
                                       warm_start=True, tol=0, **init)
    trajectory = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(20):
            trajectory.append(reference.fit(X).lower_bound_)
        ours = GaussianMixture(K, covariance_type=covariance_type, max_iter=20, tol=0,
                               **init).fit(X)
    np.testing.assert_allclose(ours.history_, trajectory, rtol=1e-8)
    np.testing.assert_allclose(ours.means_, reference.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.covariances_, reference.covariances_, rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), reference.score_samples(X), rtol=1e-8)
    np.testing.assert_allclose(ours.bic(X), reference.bic(X), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(X), reference.aic(X), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "kmeans++", "random", "random_from_data"])
def test_em_is_monotone(three_blobs, covariance_type, init_params):
    model = GaussianMixture(3, covariance_type=covariance_type, init_params=init_params,
                            random_state=1, tol=1e-8, max_iter=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter may stop it first
        model.fit(three_blobs)
    assert len(model.history_) > 3
    assert_monotone(model.history_)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_missing_values_equal_numerical_integration(covariance_type):
    """log p(x_o) of rows with one missing coordinate equals the log of the joint density
    integrated over that coordinate by adaptive quadrature; monotone EM with NaN."""
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(0, 1, (40, 2)), rng.normal(3, 0.7, (30, 2))])
    X[rng.random(X.shape) < 0.2] = np.nan
    X[5] = np.nan  # an all-missing row: log p = log 1 = 0
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0, tol=1e-10,
                            max_iter=300).fit(X)
    assert_monotone(model.history_)
    scores = model.score_samples(X)
    checked = 0
    for row, score in zip(X, scores):
        missing = np.isnan(row)
        if missing.all():
            assert abs(score) < 1e-12
        elif missing.any():
            def density(t, row=row, missing=missing):
                return mixture_density(model, np.where(missing, t, row))

            value, _ = integrate.quad(density, -40, 40, epsabs=1e-15, epsrel=1e-12,
                                      points=sorted(model.means_[:, missing.argmax()]))
            np.testing.assert_allclose(score, np.log(value), rtol=1e-10)
            checked += 1
        else:
            np.testing.assert_allclose(score, np.log(mixture_density(model, row)), rtol=1e-10)
    assert checked > 10


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_recovers_means_with_20_percent_missing(covariance_type):
    data = make_mixture(n_samples=3000, n_components=3, n_features=4,
                        covariance_type=covariance_type, separation=6.0, missing_rate=0.2,
                        random_state=3)
    assert 0.17 < np.isnan(data.X).mean() < 0.23
    model = GaussianMixture(3, covariance_type=covariance_type, n_init=3,
                            random_state=0).fit(data.X)
    assert_monotone(model.history_)
    # tolerance: 0.15 in units of the data (component spread ~1, ~1000 rows per component)
    assert_recovers(data.means, model.means_, atol=0.15)
    assert_recovers(data.weights[:, None], model.weights_[:, None], atol=0.03)

    imputed = model.impute(data.X)
    missing = np.isnan(data.X)
    assert not np.isnan(imputed).any()
    np.testing.assert_array_equal(imputed[~missing], data.X[~missing])
    column_means = np.where(missing, np.nanmean(data.X, axis=0), data.X)
    rmse_model = np.sqrt(np.mean((imputed - data.X_complete)[missing] ** 2))
    rmse_mean = np.sqrt(np.mean((column_means - data.X_complete)[missing] ** 2))
    assert rmse_model < 0.75 * rmse_mean  # within-cluster noise bounds what any method can do


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_recovers_planted_parameters(covariance_type):
    data = make_mixture(n_samples=6000, n_components=3, n_features=3,
                        covariance_type=covariance_type, separation=6.0, random_state=7)
    model = GaussianMixture(3, covariance_type=covariance_type, n_init=2,
                            random_state=0).fit(data.X)
    order = assert_recovers(data.means, model.means_, atol=0.1)
    fitted = full_covariances(model._current_params())[order]
    np.testing.assert_allclose(fitted, data.covariances, atol=0.15)


def test_float32_and_float64_agree(three_blobs):
    a = GaussianMixture(3, random_state=0).fit(three_blobs)
    b = GaussianMixture(3, random_state=0).fit(three_blobs.astype(np.float32))
    assert b.means_.dtype == np.float32 and b.covariances_.dtype == np.float32
    assert b.score_samples(three_blobs.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(a.means_, b.means_, atol=1e-4)
    np.testing.assert_allclose(a.score(three_blobs), b.score(three_blobs.astype(np.float32)),
                               rtol=1e-5)


def test_posterior_rows_sum_to_one(three_blobs):
    model = GaussianMixture(3, random_state=0).fit(three_blobs)
    post = model.posterior(three_blobs)
    np.testing.assert_allclose(post.probs.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(three_blobs), post.probs)
    np.testing.assert_array_equal(model.predict(three_blobs), post.mode)
    np.testing.assert_allclose(model.transform(three_blobs), post.mean)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_moments_match_parameters(three_blobs, covariance_type):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(
        three_blobs)
    X, z = model.sample(200_000, random_state=0)
    freq = np.bincount(z, minlength=3) / len(z)
    # Monte Carlo: std of a frequency <= 0.5/sqrt(n) ~ 1.1e-3; allow 5 sigma
    np.testing.assert_allclose(freq, model.weights_, atol=6e-3)
    covs = full_covariances(model._current_params())
    for k in range(3):
        Xk = X[z == k]
        np.testing.assert_allclose(Xk.mean(axis=0), model.means_[k],
                                   atol=5 * np.sqrt(covs[k].diagonal().max() / len(Xk)))
        np.testing.assert_allclose(np.cov(Xk.T), covs[k], atol=0.05 * covs[k].max())


def test_streaming_memmap_equals_in_memory(tmp_path, three_blobs):
    path = tmp_path / "X.npy"
    np.save(path, three_blobs)
    kwargs = dict(n_components=3, random_state=0, tol=1e-8, chunk_size=64)
    in_memory = GaussianMixture(**kwargs).fit(three_blobs)
    streamed = GaussianMixture(**kwargs).fit(str(path))
    memmapped = GaussianMixture(**kwargs).fit(np.load(path, mmap_mode="r"))
    chunks = GaussianMixture(**kwargs).fit([three_blobs[i:i + 100] for i in range(0, 500, 100)])
    for other in (streamed, memmapped, chunks):
        np.testing.assert_allclose(other.history_, in_memory.history_, rtol=1e-10)
        np.testing.assert_allclose(other.means_, in_memory.means_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(other.covariances_, in_memory.covariances_, rtol=1e-10,
                                   atol=1e-12)


def test_degenerate_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    # K > N
    with pytest.raises(ValueError, match="n_components=60 must be <= n_samples=50"):
        GaussianMixture(60).fit(X)
    # inf names row and column
    bad = X.copy()
    bad[7, 2] = np.inf
    with pytest.raises(ValueError, match="inf at row 7, column 2"):
        GaussianMixture(2).fit(bad)
    # a constant column: reg_covar keeps the fit finite
    const = X.copy()
    const[:, 1] = 3.0
    model = GaussianMixture(2, random_state=0).fit(const)
    assert np.isfinite(model.score(const))
    np.testing.assert_allclose(model.means_[:, 1], 3.0)
    # duplicated points: every point twice, and a block of identical rows
    dup = np.concatenate([X, X, np.zeros((20, 3))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReseedWarning)
        model = GaussianMixture(3, random_state=0).fit(dup)
    assert np.all(np.isfinite(model.covariances_)) and np.isfinite(model.score(dup))
    # an all-NaN row is allowed: it contributes log 1 = 0 and is imputed by the mixture mean
    nan_row = X.copy()
    nan_row[0] = np.nan
    model = GaussianMixture(2, random_state=0).fit(nan_row)
    assert abs(model.score_samples(nan_row)[0]) < 1e-12
    np.testing.assert_allclose(model.impute(nan_row)[0], model.weights_ @ model.means_)
    # wrong shapes and unknown options name the problem
    with pytest.raises(ValueError, match="2D array"):
        GaussianMixture(2).fit(X[:, 0])
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="banana").fit(X)
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(0).fit(X)
    with pytest.raises(ValueError, match="expecting 3 features"):
        GaussianMixture(2, random_state=0).fit(X).score_samples(X[:, :2])


def test_empty_component_is_reseeded_not_nan():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
    far = np.array([[1e3, 1e3], [2e3, 2e3], [3e3, 3e3]])  # no data near these means
    model = GaussianMixture(3, means_init=far, weights_init=np.ones(3) / 3,
                            precisions_init=np.stack([np.eye(2)] * 3), random_state=0)
    with pytest.warns(ReseedWarning, match="re-seeded"):
        model.fit(X)
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.covariances_))
    assert np.isfinite(model.score(X))


def test_singular_covariance_error_says_what_to_change():
    X = np.ones((10, 2))  # identical rows: the covariance is exactly 0 without reg_covar
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(1, reg_covar=0.0).fit(X)
    assert np.isfinite(GaussianMixture(1).fit(X).score(X))  # the default reg_covar copes


def test_warm_start_continues_from_fitted_parameters(three_blobs):
    model = GaussianMixture(3, random_state=0, max_iter=2, tol=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(three_blobs)
        first = model.history_[-1]
        model.fit(three_blobs)
    assert model.history_[0] >= first - 1e-12
    cold = GaussianMixture(3, random_state=0, max_iter=4, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(three_blobs)
    np.testing.assert_allclose(model.means_, cold.means_, rtol=1e-10)


def test_partial_fit_online_em_improves_likelihood(three_blobs):
    rng = np.random.default_rng(0)
    X = three_blobs[rng.permutation(len(three_blobs))]
    model = GaussianMixture(3, random_state=0)
    for _epoch in range(3):
        for start in range(0, len(X), 50):
            model.partial_fit(X[start:start + 50])
    batch = GaussianMixture(3, random_state=0, n_init=3).fit(X)
    assert model.score(X) > batch.score(X) - 0.05


def test_n_init_keeps_the_best(three_blobs):
    """Each restart's final log-likelihood is recorded by a callback; the kept one is the max."""
    seen = []
    model = GaussianMixture(3, init_params="random", random_state=0, n_init=4, max_iter=8,
                            callbacks=[lambda info: seen.append((info.iteration,
                                                                 info.log_likelihood))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(three_blobs)
    finals = [ll for (it, ll), nxt in zip(seen, seen[1:] + [(1, None)]) if nxt[0] == 1]
    assert len(finals) == 4
    assert model.lower_bound_ == max(finals)


@parametrize_with_checks([GaussianMixture(), GaussianMixture(covariance_type="diag")])
def test_sklearn_estimator_checks(estimator, check):
    """scikit-learn's full estimator suite; no check is skipped."""
    check(estimator)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_save_load_round_trip_is_exact(tmp_path, three_blobs, covariance_type, dtype):
    X = three_blobs.astype(dtype)
    X_missing = X.copy()
    X_missing[::7, 1] = np.nan
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X_missing)
    model.save(tmp_path / "gmm.npz")
    loaded = load(tmp_path / "gmm.npz")
    assert type(loaded) is GaussianMixture and loaded.get_params() == model.get_params()
    for data in (X, X_missing):
        np.testing.assert_array_equal(loaded.score_samples(data), model.score_samples(data))
        np.testing.assert_array_equal(loaded.predict_proba(data), model.predict_proba(data))
    np.testing.assert_array_equal(loaded.impute(X_missing), model.impute(X_missing))
    np.testing.assert_array_equal(loaded.history_, model.history_)
    assert loaded.means_.dtype == dtype
    np.testing.assert_array_equal(loaded.sample(5, random_state=1)[0],
                                  model.sample(5, random_state=1)[0])


def test_training_resumes_from_a_saved_model(tmp_path, three_blobs):
    """Fit a few iterations, save, load, continue with warm_start: EM picks up where it
    stopped (the first continued log-likelihood is not below the last saved one)."""
    model = GaussianMixture(3, init_params="random", random_state=0, max_iter=3, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(three_blobs)
    model.save(tmp_path / "checkpoint.npz")
    resumed = load(tmp_path / "checkpoint.npz").set_params(warm_start=True, max_iter=100,
                                                           tol=1e-6)
    resumed.fit(three_blobs)
    assert resumed.history_[0] >= model.history_[-1] - 1e-12
    assert_monotone(resumed.history_)
    assert resumed.converged_


def test_tampered_model_file_is_rejected(tmp_path, three_blobs):
    import zipfile

    GaussianMixture(2, random_state=0).fit(three_blobs).save(tmp_path / "gmm.npz")
    with zipfile.ZipFile(tmp_path / "gmm.npz") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    name = next(n for n in members if "means_" in n)
    data = bytearray(members[name])
    data[-1] ^= 0xFF
    members[name] = bytes(data)
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as zf:
        for member, payload in members.items():
            zf.writestr(member, payload)
    with pytest.raises(ModelFileError, match="tampered"):
        load(tmp_path / "bad.npz")


def test_collapsed_component_is_reseeded():
    """A component that captures a single outlier has a singular covariance (only reg_covar
    props it up, and its density spikes): it is re-seeded with a warning, and the fit ends
    with every covariance supported by the data."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(6, 1, (150, 2)),
                        [[40.0, -40.0]]])
    means = np.array([[0.0, 0.0], [6.0, 6.0], [40.0, -40.0]])
    model = GaussianMixture(3, weights_init=np.array([0.45, 0.45, 0.1]), means_init=means,
                            precisions_init=np.stack([np.eye(2), np.eye(2), 1e4 * np.eye(2)]),
                            random_state=0, max_iter=200)
    with pytest.warns(ReseedWarning, match="collapsed"):
        model.fit(X)
    smallest = np.linalg.eigvalsh(model.covariances_).min()
    assert smallest > 0.01, f"a covariance collapsed to {smallest:.2g}"
    assert np.isfinite(model.score(X))


def test_no_reseeding_when_the_data_cannot_support_every_component():
    """With fewer samples than K (D + 1), some component must be singular: re-seeding could
    only loop, so the fit proceeds on reg_covar alone."""
    X = np.random.default_rng(0).normal(size=(8, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReseedWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, random_state=0).fit(X)
    assert np.all(np.isfinite(model.covariances_))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_degenerate_data_without_reg_covar_raises_for_every_covariance_type(covariance_type):
    """Two clusters of identical rows: without reg_covar every covariance type raises one
    clear error (diag and spherical returned variances of ~1e-16 and a score of ~50)."""
    X = np.vstack([np.ones((5, 3)), np.zeros((5, 3))])
    with pytest.raises(ValueError, match="ill-defined empirical covariance .* increase "
                                         f"reg_covar.* covariance_type='{covariance_type}'"):
        GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0).fit(X)


def test_a_resolved_small_variance_is_not_called_degenerate():
    """The round-off test is relative: a tight, real cluster far from the centre (std 1e-3 at
    distance 1e3) fits without reg_covar, its variances right to the 1e-3 round-off leaves."""
    rng = np.random.default_rng(0)
    tight = rng.normal(1e3, 1e-3, (100, 2))
    X = np.concatenate([rng.normal(0, 1, (200, 2)), tight])
    for kind, expected in (("diag", tight.var(0)), ("spherical", tight.var(0).mean())):
        model = GaussianMixture(2, covariance_type=kind, reg_covar=0.0, random_state=0).fit(X)
        k = np.argmax(model.means_[:, 0])
        np.testing.assert_allclose(model.covariances_[k], expected, rtol=1e-3)


def test_warm_start_converges_once_the_bound_changes_less_than_tol(tmp_path, three_blobs):
    """A warm fit measures its first change from the stored lower_bound_ (saved with the
    model): with max_iter=1 the 2nd call converges when one EM step changes it by < tol."""
    cold = GaussianMixture(3, random_state=0, max_iter=2, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        step = np.diff(cold.fit(three_blobs).history_)[0]
        for tol, converges in ((2 * step, True), (step / 2, False)):
            model = GaussianMixture(3, random_state=0, max_iter=1, tol=tol, warm_start=True)
            assert not model.fit(three_blobs).converged_
            model.save(tmp_path / "warm.npz")
            model = load(tmp_path / "warm.npz").fit(three_blobs)
            assert model.converged_ is converges and model.n_iter_ == 1
            np.testing.assert_allclose(model.lower_bounds_, cold.history_[1:], rtol=1e-12)


def test_a_large_reg_covar_is_not_called_a_numerical_failure():
    """reg_covar may lower the likelihood by at most the penalty saved (StepInfo.slack): here
    it dips, without a warning (was: numerical failure), and every step obeys the bound."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(3, 0.3, (60, 2)),
                        rng.normal([0, 4], 0.1, (40, 2))])
    for covariance_type in ("full", "tied"):
        model = GaussianMixture(3, covariance_type=covariance_type, reg_covar=1.0,
                                random_state=0, tol=1e-8, max_iter=300)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            assert np.diff(model.fit(X).history_).min() < -1e-3  # it did dip
        config = model._em_config(*X.shape)
        params, state = gem.init(X, np.random.default_rng(0), config)
        stats, before = gem.e_step(params, state, config, X)
        for _ in range(20):
            params, state, info = gem.m_step(stats, params, state, config)
            stats, after = gem.e_step(params, state, config, X)
            assert after - before >= -info.slack - 1e-9 * abs(before)
            before = after


def _initial(X, covariance_type, **init):
    """A fit of no iterations: the parameters the initialization produces."""
    return GaussianMixture(3, covariance_type=covariance_type, random_state=0, max_iter=0,
                           **init).fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precisions_init_is_used_as_given(three_blobs, covariance_type):
    """precisions_init Λ becomes scikit-learn's factor of Λ^{-1} (its issue 26415), and the
    initialization's own precisions, given back, change nothing (its issue 16944)."""
    reference = SklearnGaussianMixture(3, covariance_type=covariance_type,
                                       random_state=1).fit(three_blobs)
    model = _initial(three_blobs, covariance_type, precisions_init=reference.precisions_)
    expected = _compute_precision_cholesky(reference.covariances_, covariance_type)
    np.testing.assert_allclose(model.precisions_cholesky_, expected, rtol=1e-9)
    given = _initial(three_blobs, covariance_type).precisions_
    fits = [GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                            precisions_init=init).fit(three_blobs) for init in (None, given)]
    assert fits[0].n_iter_ == fits[1].n_iter_
    np.testing.assert_allclose(fits[1].precisions_cholesky_, fits[0].precisions_cholesky_,
                               rtol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_full_user_initialization_estimates_nothing(monkeypatch, three_blobs):
    """weights, means and precisions all given: the M-step runs once per EM iteration and
    never for the initialization (scikit-learn's issue 26015)."""
    start = _initial(three_blobs, "full")
    calls, estimate = [], gk.estimate
    monkeypatch.setattr(gk, "estimate", lambda *a: calls.append(1) or estimate(*a))
    model = GaussianMixture(3, weights_init=start.weights_, means_init=start.means_,
                            precisions_init=start.precisions_, random_state=0).fit(three_blobs)
    assert len(calls) == model.n_iter_ > 0


def test_scikit_learns_spellings(three_blobs):
    """init_params="k-means++" ("kmeans++" too), lower_bounds_; the range of weights_init
    reported with min and max in their places (scikit-learn's message swaps them)."""
    a, b = (GaussianMixture(3, init_params=init, random_state=0).fit(three_blobs)
            for init in ("k-means++", "kmeans++"))
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bounds_ is a.history_ and not hasattr(GaussianMixture(), "lower_bounds_")
    with pytest.raises(ValueError, match=r"range \[0, 1\], but got min value -0.50000, max "
                                         "value 1.50000"):
        GaussianMixture(2, weights_init=[1.5, -0.5]).fit(three_blobs)
