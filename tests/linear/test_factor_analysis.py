"""FactorAnalysis against scikit-learn's FactorAnalysis, dense Gaussian marginals, planted
parameters under 30% missing values, scikit-learn's varimax, and bad input."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.decomposition import FactorAnalysis as SklearnFA
from sklearn.decomposition._factor_analysis import _ortho_rotation
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

from helpers import assert_imputes_conditional_mean, assert_monotone
from latentkit import FactorAnalysis, load
from latentkit.em import ConvergenceWarning
from latentkit.linear import _lg_em as lg
from latentkit.linear._lg_base import init as lg_init
from latentkit.linear.factor_analysis import ortho_rotation, varimax


def planted(n=3000, d=8, m=2, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, m)) * 1.5
    psi = rng.uniform(0.2, 1.0, d)
    mu = rng.normal(size=d)
    X = mu + rng.normal(size=(n, m)) @ W.T + rng.normal(size=(n, d)) * np.sqrt(psi)
    return X, W, psi, mu


def with_missing(X, rate, seed=1):
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return X


@pytest.fixture(scope="module")
def data():
    return planted()


def test_log_likelihood_agrees_with_sklearn(data):
    X = data[0][:1000]
    ours = FactorAnalysis(2, tol=1e-12, max_iter=10000).fit(X)
    ref = SklearnFA(2, tol=1e-10, max_iter=10000).fit(X)
    np.testing.assert_allclose(ours.score(X), ref.score(X), rtol=1e-6)
    np.testing.assert_allclose(ours.get_covariance(), ref.get_covariance(), rtol=1e-3,
                               atol=1e-4)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-3)


def test_em_is_monotone_from_a_random_start(data):
    X, *_ = data
    model = FactorAnalysis(2, init_params="random", random_state=0, tol=1e-10).fit(X)
    assert model.n_iter_ > 10
    assert_monotone(model.history_)


def test_moment_e_step_equals_per_row_e_step(data):
    """The O(D² M) E-step on the covariance and the per-row E-step agree exactly."""
    X, *_ = data
    params, _ = lg_init(X, None, lg.LGConfig(2, isotropic=False), 0)
    params = params._replace(mean=params.mean + 0.1)  # off the data mean
    s_mom, ll_mom = lg.e_step_moments(params, lg.Moments(X))
    s_row, ll_row = lg.e_step_complete(params, X)
    np.testing.assert_allclose(ll_mom, ll_row, rtol=1e-12)
    for name in ("szz", "sxz", "sxx"):
        np.testing.assert_allclose(getattr(s_mom, name), getattr(s_row, name), rtol=1e-9,
                                   atol=1e-7)


def test_score_samples_and_posterior_equal_dense(data):
    X, *_ = data
    model = FactorAnalysis(2).fit(X)
    C = model.get_covariance()
    np.testing.assert_allclose(model.score_samples(X[:100]),
                               multivariate_normal(model.mean_, C).logpdf(X[:100]), rtol=1e-12)
    W, mu = model.components_.T, model.mean_
    K = np.linalg.solve(C, W).T  # W^T C^{-1}
    post = model.posterior(X[:5])
    np.testing.assert_allclose(post.mean, (K @ (X[:5] - mu).T).T, atol=1e-12)
    np.testing.assert_allclose(post.cov, np.eye(2) - K @ W, atol=1e-12)


def test_missing_log_likelihood_equals_dense_marginal(data):
    X, *_ = data
    Xm = with_missing(X[:300], 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FactorAnalysis(2, max_iter=20).fit(Xm)
    C = model.get_covariance()
    dense = np.array([multivariate_normal(model.mean_[o], C[np.ix_(o, o)]).logpdf(x[o])
                      for x, o in zip(Xm, ~np.isnan(Xm))])
    np.testing.assert_allclose(model.score_samples(Xm), dense, rtol=1e-10)
    _, total = lg.e_step_missing(model._current_params(), Xm)
    np.testing.assert_allclose(total, dense.sum(), rtol=1e-10)


def test_recovers_parameters_with_30_percent_missing():
    X, W, psi, mu = planted(n=6000, d=8, m=2, seed=3)
    model = FactorAnalysis(2, tol=1e-7).fit(with_missing(X, 0.3, seed=4))
    assert model.converged_
    assert_monotone(model.history_)
    C_true = W @ W.T + np.diag(psi)
    assert np.linalg.norm(model.get_covariance() - C_true) / np.linalg.norm(C_true) < 0.05
    np.testing.assert_allclose(model.noise_variance_, psi, atol=0.1)  # ψ in [0.2, 1]
    # complete-data fit as the reference for how well this sample pins the parameters
    full = FactorAnalysis(2).fit(X)
    assert (np.linalg.norm(model.get_covariance() - full.get_covariance())
            / np.linalg.norm(C_true) < 0.05)


def test_varimax_equals_sklearn(data):
    X, *_ = data
    W = FactorAnalysis(2).fit(X).components_.T
    # scikit-learn's _ortho_rotation takes (n_features, n_components) and returns its
    # transpose
    np.testing.assert_allclose(varimax(W), _ortho_rotation(W).T, atol=1e-10)
    rotated = FactorAnalysis(2, rotation="varimax").fit(X)
    np.testing.assert_allclose(rotated.components_.T, varimax(W), atol=1e-10)
    # a rotation leaves the density unchanged
    np.testing.assert_allclose(rotated.score_samples(X), FactorAnalysis(2).fit(X)
                               .score_samples(X), rtol=1e-12)


def test_noise_floor_stops_a_heywood_case():
    """A feature that is an exact combination of the factors drives ψ_d to 0; EM stops at
    the documented floor NOISE_FLOOR · var(x_d)."""
    X, *_ = planted(n=500, d=6, m=1, seed=5)
    X[:, 0] = 2 * X[:, 1] - X[:, 2]  # no noise of its own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FactorAnalysis(2, max_iter=300).fit(X)
    floor = lg.NOISE_FLOOR * X.var(axis=0)
    assert np.all(model.noise_variance_ >= floor * (1 - 1e-12))
    assert np.isfinite(model.score(X))


def test_impute_and_sample(data):
    X, *_ = data
    model = FactorAnalysis(2).fit(X)
    Xm = with_missing(X[:30], 0.3, seed=6)
    filled = model.impute(Xm)
    C = model.get_covariance()
    assert_imputes_conditional_mean(Xm, filled, model.mean_, C)
    Xs, Z = model.sample(40000, random_state=0)
    assert np.linalg.norm(np.cov(Xs.T) - C) / np.linalg.norm(C) < 0.03


def test_float32_and_save_load(tmp_path, data):
    X, *_ = data
    m32 = FactorAnalysis(2).fit(X.astype(np.float32))
    m64 = FactorAnalysis(2).fit(X)
    assert m32.noise_variance_.dtype == np.float32
    np.testing.assert_allclose(m32.score(X.astype(np.float32)), m64.score(X), rtol=1e-5)
    m64.save(tmp_path / "fa.npz")
    loaded = load(tmp_path / "fa.npz")
    np.testing.assert_array_equal(loaded.score_samples(X), m64.score_samples(X))


def test_bad_input(data):
    X, *_ = data
    X = X[:50]
    with pytest.raises(ValueError, match="n_components=9 must be <= n_features=8"):
        FactorAnalysis(9).fit(X)
    with pytest.raises(ValueError, match=r"noise_variance_init has shape \(3,\), but X has "
                       "n_features=8"):
        FactorAnalysis(2, noise_variance_init=np.ones(3)).fit(X)
    with pytest.raises(ValueError, match="noise_variance_init must be finite and positive"):
        FactorAnalysis(2, noise_variance_init=-np.ones(8)).fit(X)
    with pytest.raises(ValueError, match="init_params must be 'pca'"):
        FactorAnalysis(2, noise_variance_init=np.ones(8), init_params="random").fit(X)
    with pytest.raises(ValueError, match="'svd_method' must be one of"):
        FactorAnalysis(2, svd_method="arpack").fit(X)
    with pytest.raises(ValueError, match="solver='svd' needs complete data"):
        FactorAnalysis(2, solver="svd").fit(with_missing(X, 0.1))
    with pytest.raises(ValueError, match="n_components=3 must be < n_samples=3"):
        FactorAnalysis(3).fit(X[:3])
    Xc = X.copy()
    Xc[:, 4] = 2.0
    with pytest.raises(ValueError, match="column 4 of X is constant"):
        FactorAnalysis(2).fit(Xc)
    Xe = X.copy()
    Xe[:, 0] = np.nan
    with pytest.raises(ValueError, match="column 0 of X is entirely missing"):
        FactorAnalysis(2).fit(Xe)
    Xi = X.copy()
    Xi[7, 1] = np.inf
    with pytest.raises(ValueError, match="inf at row 7, column 1"):
        FactorAnalysis(2).fit(Xi)
    with pytest.raises(ValueError, match="rotation"):
        FactorAnalysis(2, rotation="promax").fit(X)
    with pytest.raises(ValueError, match="2D"):
        FactorAnalysis(2).fit(X.ravel())


def test_saved_model_warm_starts_exactly_as_the_original(tmp_path):
    """The EM state is saved: on a Heywood case (ψ_0..2 held at the floor) a loaded model
    continues with the very same objective values as the model it was saved from; without
    the saved floor ψ would leave it."""
    X, *_ = planted(n=500, d=6, m=1, seed=5)
    X[:, 0] = 2 * X[:, 1] - X[:, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        original = FactorAnalysis(2, max_iter=300, tol=0.0).fit(X)
        floor = lg.NOISE_FLOOR * X.var(axis=0)
        np.testing.assert_allclose(original.em_state_.psi_floor, floor, rtol=1e-12)
        np.testing.assert_array_equal(original.noise_variance_[:3],
                                      original.em_state_.psi_floor[:3])
        original.save(tmp_path / "fa.npz")
        loaded = load(tmp_path / "fa.npz")
        original.set_params(warm_start=True, max_iter=5).fit(X)
        loaded.set_params(warm_start=True, max_iter=5).fit(X)
    assert len(loaded.history_) == 5
    np.testing.assert_array_equal(loaded.history_, original.history_)
    np.testing.assert_array_equal(loaded.noise_variance_, original.noise_variance_)


# -- scikit-learn's surface: the SVD iteration, loglike_, precision, quartimax ------------


@pytest.mark.parametrize("svd_method", ["lapack", "randomized"])
def test_loglike_trajectory_equals_sklearn(data, svd_method):
    """From scikit-learn's start (ψ = 1) the SVD iteration retraces scikit-learn's loglike_
    step for step (its sqrt(ψ) + 1e-12 aside); loglike_ ends with the log-likelihood of the
    fitted parameters."""
    X = data[0][:500]
    kwargs = dict(noise_variance_init=np.ones(X.shape[1]), svd_method=svd_method,
                  max_iter=25)
    with warnings.catch_warnings():  # both stop at max_iter on purpose
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        ours = FactorAnalysis(2, tol=0.0, random_state=0, **kwargs).fit(X)
        ref = SklearnFA(2, tol=0.0, random_state=0, **kwargs).fit(X)
    assert len(ours.loglike_) == ours.n_iter_ + 1 == 26
    np.testing.assert_allclose(ours.loglike_[:25], ref.loglike_[:25], rtol=1e-9)
    np.testing.assert_allclose(ours.loglike_[-1], ours.score_samples(X).sum(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ours.loglike_[:-1]) / len(X), ours.history_,
                               rtol=1e-12)
    assert_monotone(ours.loglike_)


def test_randomized_svd_method_agrees_with_lapack():
    """D = 30 >> M + 10: the randomized eigensolver (warm-started subspace iteration) reaches
    the same fit as LAPACK's, with a monotone trajectory (scikit-learn's log-likelihood is
    the truth for both in the other tests)."""
    X, *_ = planted(n=600, d=30, m=3, seed=7)
    fits = {m: FactorAnalysis(3, svd_method=m, random_state=0, tol=1e-10).fit(X)
            for m in ("lapack", "randomized")}
    np.testing.assert_allclose(fits["randomized"].get_covariance(),
                               fits["lapack"].get_covariance(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fits["randomized"].score(X), fits["lapack"].score(X),
                               rtol=1e-12)
    for fit in fits.values():
        assert fit.converged_
        assert_monotone(fit.history_)
    assert fits["randomized"].em_state_.basis.shape == (30, 13)  # M + 10 columns
    no_powers = FactorAnalysis(3, svd_method="randomized", iterated_power=0, random_state=1,
                               tol=1e-10).fit(X)  # the warm-started basis still converges
    np.testing.assert_allclose(no_powers.score(X), fits["lapack"].score(X), rtol=1e-10)


@pytest.mark.parametrize("solver", ["svd", "em"])
def test_noise_variance_init_starts_both_solvers_where_sklearn_starts(data, solver):
    """W starts at its best given ψ = noise_variance_init: the first objective is
    scikit-learn's first loglike_ entry, for EM as for the SVD iteration."""
    X = data[0][:400]
    psi0 = np.linspace(0.5, 2.0, X.shape[1])
    with warnings.catch_warnings():  # both stop at max_iter on purpose
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        ours = FactorAnalysis(2, solver=solver, noise_variance_init=psi0, max_iter=2).fit(X)
        ref = SklearnFA(2, noise_variance_init=psi0, svd_method="lapack", max_iter=1).fit(X)
    np.testing.assert_allclose(ours.loglike_[0], ref.loglike_[0], rtol=1e-9)


@pytest.mark.parametrize("n_components", [0, 2, 8])
def test_get_precision_is_the_inverse_covariance(data, n_components):
    X = data[0][:300]
    model = FactorAnalysis(n_components, tol=1e-12, max_iter=10000).fit(X)
    C, P = model.get_covariance(), model.get_precision()
    np.testing.assert_allclose(C @ P, np.eye(8), atol=1e-12)
    np.testing.assert_allclose(P, np.linalg.inv(C), rtol=1e-9, atol=1e-12)
    ref = SklearnFA(n_components, tol=1e-10, max_iter=10000, svd_method="lapack").fit(X)
    assert model.score(X) >= ref.score(X) - 1e-6  # scikit-learn's optimum, or better


def test_n_components_none_and_zero():
    """None: all features (scikit-learn's default); 0: Ψ alone, the independent Gaussian
    with ψ = the feature variances (closed form)."""
    X, *_ = planted(n=400, d=5, m=2, seed=8)
    assert FactorAnalysis().fit(X).n_components_ == 5
    zero = FactorAnalysis(0).fit(X)
    assert zero.components_.shape == (0, 5) and zero.transform(X).shape == (400, 0)
    np.testing.assert_allclose(zero.noise_variance_, X.var(axis=0), rtol=1e-12)
    independent = multivariate_normal(X.mean(axis=0), np.diag(X.var(axis=0))).logpdf(X)
    np.testing.assert_allclose(zero.score_samples(X), independent, rtol=1e-12)


@pytest.mark.parametrize("rotation", ["varimax", "quartimax"])
def test_rotations_equal_sklearn(data, rotation):
    """The rotation kernel equals scikit-learn's _ortho_rotation, and the fitted rotated
    loadings equal scikit-learn's up to each factor's sign; the density is unchanged."""
    X = data[0][:1000]
    W = FactorAnalysis(2).fit(X).components_.T
    np.testing.assert_allclose(ortho_rotation(W, rotation),
                               _ortho_rotation(W, method=rotation).T, atol=1e-10)
    ours = FactorAnalysis(2, rotation=rotation, tol=1e-12, max_iter=10000).fit(X)
    ref = SklearnFA(2, rotation=rotation, tol=1e-10, max_iter=10000,
                    svd_method="lapack").fit(X)
    signs = np.sign(np.sum(ours.components_ * ref.components_, axis=1))
    np.testing.assert_allclose(ours.components_ * signs[:, None], ref.components_,
                               atol=1e-4)
    unrotated = FactorAnalysis(2, tol=1e-12, max_iter=10000).fit(X)
    np.testing.assert_allclose(ours.score_samples(X), unrotated.score_samples(X), rtol=1e-12)


@pytest.mark.parametrize("solver", ["svd", "em"])
def test_both_solvers_reach_the_same_fit(data, solver):
    X = data[0][:1000]
    model = FactorAnalysis(2, solver=solver, tol=1e-12, max_iter=10000).fit(X)
    ref = SklearnFA(2, tol=1e-10, max_iter=10000, svd_method="lapack").fit(X)
    np.testing.assert_allclose(model.score(X), ref.score(X), rtol=1e-9)
    np.testing.assert_allclose(model.get_covariance(), ref.get_covariance(), atol=1e-4)
