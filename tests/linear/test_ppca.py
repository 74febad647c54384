"""PPCA against independent truths: the closed form (EM converges to it), dense
multivariate normal densities (complete and observed blocks), scikit-learn's PCA density,
the notes' posterior formula, planted parameters under 30% missing values."""

import warnings

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA as SklearnPCA

from helpers import assert_imputes_conditional_mean, assert_monotone
from latentkit import PPCA, load, select_n_components
from latentkit.em import ConvergenceWarning
from latentkit.exceptions import InvalidParameterError
from latentkit.linear import _lg_em as lg
from latentkit.linear._lg_base import init as lg_init


def planted(n=2000, d=10, m=3, sigma=0.5, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, m)) * 2
    mu = rng.normal(size=d)
    X = mu + rng.normal(size=(n, m)) @ W.T + sigma * rng.normal(size=(n, d))
    return X, W, mu, sigma**2


def with_missing(X, rate, seed=1):
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < rate] = np.nan
    return X


def dense_log_prob(model, X):
    """log N(x_o; μ_o, C_oo) row by row with scipy, C = W W^T + σ² I."""
    C = model.get_covariance()
    out = []
    for x in X:
        o = ~np.isnan(x)
        out.append(multivariate_normal(model.mean_[o], C[np.ix_(o, o)]).logpdf(x[o]))
    return np.array(out)


@pytest.fixture(scope="module")
def data():
    return planted()


def test_closed_form_is_the_ml_solution(data):
    X, *_ = data
    model = PPCA(3).fit(X)
    S = np.cov(X.T, bias=True)
    lam = np.linalg.eigvalsh(S)[::-1]
    np.testing.assert_allclose(model.noise_variance_, lam[3:].mean(), rtol=1e-12)
    np.testing.assert_allclose(np.sum(model.components_**2, axis=1), lam[:3] - lam[3:].mean(),
                               rtol=1e-10)
    np.testing.assert_allclose(model.mean_, X.mean(axis=0), rtol=1e-12)


def test_em_converges_to_the_closed_form(data):
    X, *_ = data
    closed = PPCA(3).fit(X)
    em = PPCA(3, solver="em", init_params="random", tol=1e-12, max_iter=5000,
              random_state=0).fit(X)
    assert em.converged_ and em.n_iter_ > 10
    assert_monotone(em.history_)
    np.testing.assert_allclose(em.score(X), closed.score(X), rtol=1e-8)
    assert np.max(subspace_angles(em.components_.T, closed.components_.T)) < 1e-4
    np.testing.assert_allclose(em.noise_variance_, closed.noise_variance_, rtol=1e-6)


def test_streamed_em_equals_in_memory_em(data):
    """The per-row E-step (streamed chunks) and the moment E-step give the same fit."""
    X, *_ = data
    kw = dict(solver="em", init_params="random", random_state=3, max_iter=30, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = PPCA(3, **kw).fit(X)
        streamed = PPCA(3, **kw).fit([X[:700], X[700:1500], X[1500:]])
    np.testing.assert_allclose(streamed.history_, memory.history_, rtol=1e-11)
    np.testing.assert_allclose(streamed.components_, memory.components_, rtol=1e-8, atol=1e-10)


def test_score_samples_equals_dense_density(data):
    X, *_ = data
    model = PPCA(3).fit(X)
    dense = multivariate_normal(model.mean_, model.get_covariance()).logpdf(X[:200])
    np.testing.assert_allclose(model.score_samples(X[:200]), dense, rtol=1e-12)


def test_equals_sklearn_pca_density(data):
    """scikit-learn's PCA.score_samples is the PPCA density of its (N-1)-normalized
    covariance; fitted on data scaled about the mean by √((N-1)/N) its covariance is our
    ML one, so the two densities must agree everywhere."""
    X, *_ = data
    N = len(X)
    scaled = X.mean(axis=0) + (X - X.mean(axis=0)) * np.sqrt((N - 1) / N)
    ref = SklearnPCA(3).fit(scaled)
    model = PPCA(3).fit(X)
    np.testing.assert_allclose(model.score_samples(X), ref.score_samples(X), rtol=1e-10)


def test_sigma_to_zero_em_spans_the_pca_subspace(data):
    X, *_ = data
    model = PPCA(3, solver="em_pca", tol=1e-14, random_state=0).fit(X)
    assert model.converged_
    assert_monotone(model.history_)
    pca = SklearnPCA(3).fit(X)
    assert np.max(subspace_angles(model.components_.T, pca.components_.T)) < 1e-6
    np.testing.assert_allclose(model.score(X), PPCA(3).fit(X).score(X), rtol=1e-10)


def test_posterior_is_the_notes_formula(data):
    """p(z | x) = N(M^{-1} W^T (x - μ), σ² M^{-1}), M = W^T W + σ² I."""
    X, *_ = data
    model = PPCA(3).fit(X)
    W, s2 = model.components_.T, model.noise_variance_
    Mmat = W.T @ W + s2 * np.eye(3)
    post = model.posterior(X[:10])
    np.testing.assert_allclose(post.mean, np.linalg.solve(Mmat, W.T @ (X[:10] - model.mean_).T).T,
                               atol=1e-12)
    np.testing.assert_allclose(post.cov, s2 * np.linalg.inv(Mmat), atol=1e-12)
    np.testing.assert_allclose(model.transform(X[:10]), post.mean)


def test_sample_moments(data):
    X, *_ = data
    model = PPCA(3).fit(X)
    Xs, Z = model.sample(40000, random_state=0)
    assert Xs.shape == (40000, 10) and Z.shape == (40000, 3)
    C = model.get_covariance()
    assert np.linalg.norm(np.cov(Xs.T) - C) / np.linalg.norm(C) < 0.03
    np.testing.assert_allclose(Xs.mean(axis=0), model.mean_, atol=0.1)


# -- missing values -----------------------------------------------------------------------


def test_missing_log_likelihood_equals_dense_marginal(data):
    X, *_ = data
    Xm = with_missing(X[:300], 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PPCA(3, max_iter=20).fit(Xm)  # auto -> EM on the NaNs
    dense = dense_log_prob(model, Xm)
    np.testing.assert_allclose(model.score_samples(Xm), dense, rtol=1e-10)
    # the engine's objective (the E-step's log-likelihood) is the same marginal
    params = model._current_params()
    _, total = lg.e_step_missing(params, Xm)
    np.testing.assert_allclose(total, dense.sum(), rtol=1e-10)


def test_missing_e_step_equals_complete_e_step(data):
    """With nothing missing, the missing-value statistics reduce to the complete ones."""
    X, *_ = data
    params, _ = lg_init(X[:200], None, lg.LGConfig(3, isotropic=True), 0)
    s_miss, ll_miss = lg.e_step_missing(params, X[:200])
    s_full, ll_full = lg.e_step_complete(params, X[:200])
    np.testing.assert_allclose(ll_miss, ll_full, rtol=1e-12)
    for name in ("szz", "sxz", "sxx"):
        np.testing.assert_allclose(getattr(s_miss, name), getattr(s_full, name), rtol=1e-10,
                                   atol=1e-8)


def test_recovers_parameters_with_30_percent_missing():
    X, W, mu, s2 = planted(n=4000, d=10, m=3, sigma=0.5, seed=4)
    Xm = with_missing(X, 0.3, seed=5)
    model = PPCA(3, tol=1e-7).fit(Xm)
    assert model.converged_
    assert_monotone(model.history_)
    C_true = W @ W.T + s2 * np.eye(10)
    assert np.max(subspace_angles(model.components_.T, W)) < 0.05
    np.testing.assert_allclose(model.noise_variance_, s2, rtol=0.05)
    # sd(x_d) <= 4.5 here, ~2800 observed rows per feature: standard error <= 0.085
    np.testing.assert_allclose(model.mean_, mu, atol=4 * 0.085)
    assert np.linalg.norm(model.get_covariance() - C_true) / np.linalg.norm(C_true) < 0.05


def test_impute_is_the_conditional_mean(data):
    X, *_ = data
    model = PPCA(3).fit(X)
    Xm = with_missing(X[:50], 0.3, seed=7)
    filled = model.impute(Xm)
    C = model.get_covariance()
    assert_imputes_conditional_mean(Xm, filled, model.mean_, C)


def test_posterior_with_missing_values_conditions_on_observed(data):
    X, *_ = data
    model = PPCA(3).fit(X)
    Xm = with_missing(X[:20], 0.4, seed=8)
    post = model.posterior(Xm)
    W, s2, mu = model.components_.T, model.noise_variance_, model.mean_
    for x, mean, cov in zip(Xm, post.mean, post.cov):
        o = ~np.isnan(x)
        Mo = W[o].T @ W[o] + s2 * np.eye(3)
        np.testing.assert_allclose(mean, np.linalg.solve(Mo, W[o].T @ (x[o] - mu[o])),
                                   atol=1e-12)
        np.testing.assert_allclose(cov, s2 * np.linalg.inv(Mo), atol=1e-12)


@pytest.mark.parametrize("criterion", ["bic", "heldout"])
def test_select_n_components(criterion):
    X, *_ = planted(n=1500, d=8, m=3, seed=9)
    selection = select_n_components(PPCA(), X, [1, 2, 3, 4, 5], criterion=criterion,
                                    random_state=0)
    assert selection.best_n_components == 3


def test_float32(data):
    X, *_ = data
    m64 = PPCA(3).fit(X)
    m32 = PPCA(3).fit(X.astype(np.float32))
    assert m32.components_.dtype == np.float32
    assert m32.score_samples(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(m32.score_samples(X.astype(np.float32)), m64.score_samples(X),
                               rtol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em32 = PPCA(3, solver="em", max_iter=50).fit(with_missing(X, 0.2).astype(np.float32))
    assert_monotone(em32.history_, np.float32)


def test_save_load(tmp_path, data):
    X, *_ = data
    model = PPCA(3).fit(X)
    model.save(tmp_path / "ppca.npz")
    loaded = load(tmp_path / "ppca.npz")
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    Xm = with_missing(X[:20], 0.3)
    np.testing.assert_array_equal(loaded.impute(Xm), model.impute(Xm))


def test_constant_column_is_tolerated():
    """σ² is shared across features, so a constant column keeps the density proper."""
    X, *_ = planted(n=300, d=6, m=2)
    X[:, 2] = 1.5
    model = PPCA(2).fit(X)
    assert model.noise_variance_ > 0
    dense = multivariate_normal(model.mean_, model.get_covariance()).logpdf(X)
    np.testing.assert_allclose(model.score_samples(X), dense, rtol=1e-10)


def test_bad_input():
    X, *_ = planted(n=50, d=5, m=2)
    with pytest.raises(ValueError, match="n_components=5 must be < n_features=5"):
        PPCA(5).fit(X)
    with pytest.raises(ValueError, match="n_components=4 must be < n_samples=4"):
        PPCA(4).fit(X[:4])
    Xe = X.copy()
    Xe[:, 1] = np.nan
    with pytest.raises(ValueError, match="column 1 of X is entirely missing"):
        PPCA(2).fit(Xe)
    Xi = X.copy()
    Xi[2, 3] = -np.inf
    with pytest.raises(ValueError, match="inf at row 2, column 3"):
        PPCA(2).fit(Xi)
    with pytest.raises(ValueError, match="2D"):
        PPCA(2).fit(X[0])
    with pytest.raises(ValueError, match="solver"):
        PPCA(2, solver="svd").fit(X)
    with pytest.raises(ValueError, match="needs complete data"):
        PPCA(2, solver="closed_form").fit(with_missing(X, 0.1))
    model = PPCA(2).fit(X)
    with pytest.raises(ValueError, match="features"):
        model.score_samples(X[:, :4])
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)


# -- every solver on the engine's bookkeeping -----------------------------------------------

SOLVERS = ["auto", "closed_form", "em", "em_pca"]


def solver_model(solver, **kw):
    return PPCA(3, solver=solver, random_state=0, tol=1e-10, max_iter=500, **kw)


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_reports_each_iteration_to_callbacks(data, solver):
    X, *_ = data
    seen = []
    model = solver_model(solver, callbacks=[lambda info: seen.append(
        (info.iteration, info.objective))]).fit(X)
    assert model.converged_ and model.stop_reason_ == "converged"
    assert [it for it, _ in seen] == list(range(1, model.n_iter_ + 1))
    np.testing.assert_array_equal([value for _, value in seen], model.history_)
    assert len(model.history_) == model.n_iter_ >= 2
    assert_monotone(model.history_)
    assert isinstance(model.em_state_, lg.LGState)


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_stops_when_a_callback_says_so(data, solver):
    X, *_ = data
    seen = []

    def stop_at_first(info):
        seen.append(info.iteration)
        return True

    model = solver_model(solver, callbacks=[stop_at_first]).fit(X)
    assert seen == [1] and model.n_iter_ == 1 and model.stop_reason_ == "callback"
    assert not model.converged_ and len(model.history_) == 1


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_honours_the_time_budget(data, solver):
    X, *_ = data
    with pytest.warns(ConvergenceWarning, match="max_time"):
        model = solver_model(solver, max_time=1e-9).fit(X)
    assert model.n_iter_ == 1 and model.stop_reason_ == "max_time" and not model.converged_


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_shows_the_progress_bar(data, solver, capsys):
    X, *_ = data
    solver_model(solver, verbose=1).fit(X)
    assert "EM" in capsys.readouterr().err


def test_closed_form_converges_at_iteration_two_with_its_log_likelihood(data):
    """From init_params="pca" (already the ML solution) the closed-form M-step returns the
    same parameters: two equal history entries, the log-likelihood of the solution."""
    X, *_ = data
    model = PPCA(3, solver="closed_form").fit(X)
    assert model.n_iter_ == 2 and model.converged_
    assert model.history_[0] == model.history_[1]
    np.testing.assert_allclose(model.history_[-1], model.score(X), rtol=1e-12)
    # from a random start the first M-step reaches the same solution
    start = PPCA(3, solver="closed_form", init_params="random", random_state=0).fit(X)
    assert start.n_iter_ == 3 and start.history_[0] < start.history_[1]
    np.testing.assert_allclose(start.components_, model.components_, rtol=1e-12)


def test_closed_form_and_em_pca_refuse_partial_fit(data):
    X, *_ = data
    for solver in ("closed_form", "em_pca"):
        with pytest.raises(InvalidParameterError, match=f"solver='{solver}' cannot fit online"):
            PPCA(3, solver=solver).partial_fit(X[:100])
    PPCA(3).partial_fit(X[:100])  # "auto" runs online EM


@pytest.mark.parametrize("solver", ["em", "em_pca"])
def test_saved_model_warm_starts_exactly_as_the_original(tmp_path, data, solver):
    """The EM state (centre, noise floor, σ² -> 0 EM's subspace) is saved: a loaded model
    continues with the very same objective values as the model it was saved from."""
    X, *_ = data
    kw = dict(solver=solver, init_params="random", random_state=0, max_iter=4, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        original = PPCA(3, **kw).fit(X)
        original.save(tmp_path / "ppca.npz")
        loaded = load(tmp_path / "ppca.npz")
        for name in lg.LGState._fields:
            np.testing.assert_array_equal(getattr(loaded.em_state_, name),
                                          getattr(original.em_state_, name))
        original.set_params(warm_start=True).fit(X)
        loaded.set_params(warm_start=True).fit(X)
    assert len(loaded.history_) == 4
    np.testing.assert_array_equal(loaded.history_, original.history_)
    np.testing.assert_array_equal(loaded.components_, original.components_)


def test_saved_model_continues_online_em_exactly(tmp_path, data):
    """online_state_ (LGStats) and em_state_ are saved: partial_fit continues identically."""
    X, *_ = data
    original = PPCA(3).partial_fit(X[:500]).partial_fit(X[500:1000])
    original.save(tmp_path / "online.npz")
    loaded = load(tmp_path / "online.npz")
    assert isinstance(loaded.online_state_.stats, lg.LGStats)
    original.partial_fit(X[1000:1500])
    loaded.partial_fit(X[1000:1500])
    np.testing.assert_array_equal(loaded.history_, original.history_)
    np.testing.assert_array_equal(loaded.components_, original.components_)
