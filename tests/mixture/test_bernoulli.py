"""BernoulliMixture against independent truths: brute-force likelihoods, a hand-written EM
step, planted parameters, Monte Carlo frequencies, and scikit-learn's estimator checks."""

import itertools
import re
import warnings
from dataclasses import replace

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from helpers import (
    assert_monotone,
    assert_online_resumes_after_save,
    assert_recovers,
    assert_resumes_after_save,
)
from latentkit import load
from latentkit.base import LatentModel
from latentkit.em import NOTHING, ConvergenceWarning, ReseedWarning
from latentkit.mixture._discrete import DiscreteStats, reseed_empty
from latentkit.mixture._worst import WorstPoints
from latentkit.mixture.bernoulli import BernoulliMixture

TRUE_WEIGHTS = np.array([0.3, 0.3, 0.4])
# three well-separated binary prototypes over 20 columns, leaning 0.1 / 0.9 / 0.5
TRUE_MEANS = np.array([[0.9] * 10 + [0.1] * 10,
                       [0.1] * 10 + [0.9] * 10,
                       [0.9, 0.1] * 10])


def planted(n=3000, missing=0.0, seed=0):
    """(X, z) from the planted mixture; a `missing` share of entries set to NaN (MCAR)."""
    rng = np.random.default_rng(seed)
    z = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    X = (rng.random((n, TRUE_MEANS.shape[1])) < TRUE_MEANS[z]).astype(np.float64)
    X[rng.random(X.shape) < missing] = np.nan
    return X, z


def fitted_tiny(seed=0):
    """A small fitted model (K=2, D=4) to compare with brute force."""
    rng = np.random.default_rng(seed)
    X = (rng.random((40, 4)) < 0.5).astype(float)
    return BernoulliMixture(2, random_state=0).fit(X)


def brute_force_log_likelihood(weights, means, x):
    """log p(x_obs): enumerate every completion of the missing entries of x and sum the
    complete-data probabilities Σ_k π_k Π_d μ^x (1 - μ)^(1 - x), one product at a time."""
    missing = np.flatnonzero(np.isnan(x))
    total = 0.0
    for fill in itertools.product([0.0, 1.0], repeat=len(missing)):
        full = x.copy()
        full[missing] = fill
        for k in range(len(weights)):
            p = weights[k]
            for d, value in enumerate(full):
                p *= means[k, d] if value == 1 else 1 - means[k, d]
            total += p
    return np.log(total)


def test_log_likelihood_matches_brute_force_with_and_without_nan():
    model = fitted_tiny()
    X = np.array([[0, 1, 1, 0], [1, 1, 1, 1], [np.nan, 1, 0, np.nan],
                  [np.nan] * 4, [0, np.nan, np.nan, np.nan]], dtype=float)
    expected = [brute_force_log_likelihood(model.weights_, model.means_, x) for x in X]
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-12, atol=1e-12)
    assert model.score_samples(X)[3] == pytest.approx(0.0, abs=1e-12)  # nothing observed
    # a chunk without NaN takes the complete-data path of the kernel
    np.testing.assert_allclose(model.score_samples(X[:2]), expected[:2], rtol=1e-12)


def hand_em_step(X, weights, means, alpha, beta):
    """One MAP-EM update written row by row, independently of the library's GEMMs."""
    N, D = X.shape
    K = len(weights)
    resp = np.zeros((N, K))
    for n in range(N):
        for k in range(K):
            p = weights[k]
            for d in range(D):
                if not np.isnan(X[n, d]):
                    p *= means[k, d] if X[n, d] == 1 else 1 - means[k, d]
            resp[n, k] = p
        resp[n] /= resp[n].sum()
    new_means = np.zeros((K, D))
    for k in range(K):
        for d in range(D):
            ones = sum(resp[n, k] for n in range(N) if X[n, d] == 1)
            seen = sum(resp[n, k] for n in range(N) if not np.isnan(X[n, d]))
            new_means[k, d] = (ones + alpha) / (seen + 2 * alpha)
    new_weights = (resp.sum(axis=0) + beta) / (N + K * beta)
    return new_weights, new_means


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_one_em_step_matches_hand_written_update(missing):
    X, _ = planted(60, missing=missing, seed=3)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.random.default_rng(4).uniform(0.2, 0.8, size=(3, X.shape[1]))
    model = BernoulliMixture(3, weights_init=weights, means_init=means, max_iter=1,
                             alpha=0.5, weight_alpha=2.0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    expected_weights, expected_means = hand_em_step(X, weights, means, 0.5, 2.0)
    np.testing.assert_allclose(model.weights_, expected_weights, rtol=1e-12)
    np.testing.assert_allclose(model.means_, expected_means, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_history_is_monotone(dtype):
    X, _ = planted(800, missing=0.2, seed=1)
    model = BernoulliMixture(4, init_params="random", tol=1e-6, max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the engine's guard stays silent
        model.fit(X.astype(dtype))
    assert len(model.history_) > 20
    assert_monotone(model.history_, dtype=dtype)


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_recovers_planted_parameters(missing):
    X, _ = planted(3000, missing=missing)
    model = BernoulliMixture(3, n_init=2, tol=1e-6, random_state=0).fit(X)
    assert model.converged_
    assert_monotone(model.history_)
    # tolerance: ~800-1000 observed rows per component and column give a standard error of
    # μ of at most 0.018; 0.07 is about 4 standard errors over the 60 entries
    order = assert_recovers(TRUE_MEANS, model.means_, atol=0.07)
    np.testing.assert_allclose(model.weights_[order], TRUE_WEIGHTS, atol=0.03)


def test_float32_and_float64_agree():
    X, _ = planted(1000, missing=0.1, seed=2)
    X32 = X.astype(np.float32)
    # the same 30 iterations from the same start: float32 round-off must not accumulate
    # (comparing converged fits would compare where each precision's stopping rule fires)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m64 = BernoulliMixture(3, tol=0.0, max_iter=30, random_state=0).fit(X)
        m32 = BernoulliMixture(3, tol=0.0, max_iter=30, random_state=0).fit(X32)
    assert m32.means_.dtype == np.float32 and m32.weights_.dtype == np.float32
    for out in (m32.score_samples(X32), m32.predict_proba(X32), m32.impute(X32),
                m32.sample(3, random_state=0)[0]):
        assert out.dtype == np.float32
    np.testing.assert_allclose(m32.history_, m64.history_, rtol=1e-5)  # float32 round-off
    np.testing.assert_allclose(m32.means_, m64.means_, atol=1e-5)
    np.testing.assert_allclose(m32.weights_, m64.weights_, atol=1e-5)
    np.testing.assert_allclose(m32.score_samples(X32), m64.score_samples(X), rtol=1e-5)


def test_posterior_rows_sum_to_one_and_agree():
    X, _ = planted(300, missing=0.3, seed=5)
    model = BernoulliMixture(3, random_state=0).fit(X)
    resp = model.predict_proba(X)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    posterior = model.posterior(X)
    np.testing.assert_allclose(posterior.probs, resp, rtol=1e-12)
    np.testing.assert_allclose(model.transform(X), resp)
    np.testing.assert_array_equal(model.predict(X), posterior.mode)


def test_sample_frequencies_match_parameters():
    model = BernoulliMixture(3, weights_init=TRUE_WEIGHTS, means_init=TRUE_MEANS, max_iter=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(planted(50)[0])  # max_iter=0 keeps the given parameters
    np.testing.assert_allclose(model.means_, TRUE_MEANS)
    X, z = model.sample(30_000, random_state=0)
    assert set(np.unique(X)) == {0.0, 1.0}
    # Monte Carlo: standard errors are <= 0.003 for the weights and <= 0.005 for μ
    np.testing.assert_allclose(np.bincount(z) / len(z), TRUE_WEIGHTS, atol=0.015)
    for k in range(3):
        np.testing.assert_allclose(X[z == k].mean(axis=0), TRUE_MEANS[k], atol=0.025)
    X2, z2 = model.sample(5, random_state=0)
    np.testing.assert_array_equal(X2, model.sample(5, random_state=0)[0])


def test_no_probability_is_exactly_zero_or_one():
    X, _ = planted(200, seed=6)
    X[:, 0], X[:, 1] = 0.0, 1.0
    model = BernoulliMixture(3, random_state=0).fit(X)
    assert np.all(model.means_ > 0) and np.all(model.means_ < 1)
    assert np.all(model.weights_ > 0)
    flipped = X[:3].copy()
    flipped[:, 0], flipped[:, 1] = 1.0, 0.0  # never seen: still a finite log-likelihood
    assert np.all(np.isfinite(model.score_samples(flipped)))


def test_degenerate_inputs():
    same = np.tile([[1.0, 0.0, 1.0, 1.0]], (30, 1))  # duplicate rows, constant columns
    with warnings.catch_warnings():  # k-means finds 1 distinct point for 3 clusters
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        model = BernoulliMixture(3, random_state=0).fit(same)
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.weights_))
    assert np.all(np.isfinite(model.score_samples(same)))

    X, _ = planted(20, seed=7)
    with pytest.raises(ValueError, match="n_components=21 must be <= n_samples=20"):
        BernoulliMixture(21).fit(X)
    X[4] = np.nan  # an all-missing row is fine: it carries no information
    model = BernoulliMixture(2, random_state=0).fit(X)
    assert model.score_samples(X)[4] == pytest.approx(0.0)
    np.testing.assert_allclose(model.predict_proba(X[4:5])[0], model.weights_)
    bad = X.copy()
    bad[2, 3] = np.inf
    with pytest.raises(ValueError, match="inf at row 2, column 3"):
        BernoulliMixture(2).fit(bad)
    bad[2, 3] = 0.5
    with pytest.raises(ValueError, match=r"X\[2, 3\] = 0.5.*0, 1 or NaN"):
        BernoulliMixture(2).fit(bad)
    with pytest.raises(ValueError, match=r"Negative values in data: X\[2, 3\] = -1.0"):
        BernoulliMixture(2).fit(np.where(bad == 0.5, -1.0, bad))
    with pytest.raises(ValueError, match=r"X\[0, 3\] = 2.0"):  # at predict time too
        model.score_samples(np.where(bad == 0.5, 2.0, bad)[2:])


def test_hyper_parameter_errors_name_the_argument():
    X, _ = planted(50)
    with pytest.raises(ValueError, match="'alpha' must be a number in \\(0, inf\\)"):
        BernoulliMixture(2, alpha=0.0).fit(X)
    with pytest.raises(ValueError, match="'init_params'"):
        BernoulliMixture(2, init_params="kmeans--").fit(X)
    with pytest.raises(ValueError, match=r"means_init must have shape \(2, 20\)"):
        BernoulliMixture(2, means_init=np.full((2, 3), 0.5)).fit(X)
    with pytest.raises(ValueError, match="means_init must hold probabilities strictly"):
        BernoulliMixture(2, means_init=np.ones((2, 20))).fit(X)
    with pytest.raises(ValueError, match="weights_init must sum to 1"):
        BernoulliMixture(2, weights_init=[0.5, 0.6]).fit(X)


def test_empty_component_is_reseeded_at_the_worst_row():
    rng = np.random.default_rng(8)
    A = (rng.random((100, 10)) < 0.05).astype(float)  # mostly zeros
    B = (rng.random((100, 10)) < 0.95).astype(float)  # mostly ones
    C = np.tile([1.0, 0.0], (6, 5))  # a rare alternating pattern
    X = np.vstack([A, B, C])
    means = np.array([[0.05] * 10, [0.95] * 10, [0.05] * 5 + [0.95] * 5])
    model = BernoulliMixture(3, weights_init=[0.495, 0.495, 0.01], means_init=means,
                             tol=1e-8, max_iter=200)
    with pytest.warns(ReseedWarning, match=r"component\(s\) \[2\] had fewer than 1"):
        model.fit(X)
    assert np.all(np.isfinite(model.means_))
    labels = model.predict(X)
    assert len(set(labels[-6:])) == 1 and labels[-1] not in (labels[0], labels[100])
    np.testing.assert_allclose(model.means_[labels[-1]], C[0], atol=0.01)


def test_reseed_kernel_uses_distinct_badly_explained_rows():
    x1, x2 = np.array([1.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0])
    worst = WorstPoints(np.array([-30.0, -30.0, -25.0, -1.0]), np.vstack([x1, x1, x2, x2]), 4)
    stats = DiscreteStats(100.0, np.array([60.0, 0.2, 39.5, 0.3]), np.ones((4, 3)),
                          np.full((4, 3), 50.0), worst)
    levels = np.full(3, 2)
    # the kernel no longer warns: it reports the re-seeding, and the engine warns its message
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReseedWarning)
        out, info = reseed_empty(stats, lambda x: x, levels, 0.01, 1.0, "test")
    assert info.reseeded == (1, 3)
    assert re.search(r"component\(s\) \[1, 3\]", info.message)
    np.testing.assert_array_equal(out.counts[[1, 3]], [x1, x2])  # the duplicate is skipped
    np.testing.assert_array_equal(out.nk, [60.0, 1.0, 39.5, 1.0])
    np.testing.assert_array_equal(out.observed[[1, 3]], 1.0)
    # rows the mixture already explains well (log p(x) = -1 > log(2/104) - 0.03) are not used
    explained = replace(stats, worst=WorstPoints(np.array([-1.0]), x1[None], 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReseedWarning)
        out, info = reseed_empty(explained, lambda x: x, levels, 0.01, 1.0, "test")
    assert out is explained and info == NOTHING


def test_impute_beats_column_means():
    X_full, _ = planted(2000, seed=9)
    mask = np.random.default_rng(10).random(X_full.shape) < 0.2
    X = np.where(mask, np.nan, X_full)
    model = BernoulliMixture(3, random_state=0).fit(X)
    imputed = model.impute(X)
    np.testing.assert_array_equal(imputed[~mask], X_full[~mask])
    assert np.all((imputed[mask] > 0) & (imputed[mask] < 1))
    column_means = np.where(mask, np.nanmean(X, axis=0), X)
    model_brier = np.mean((imputed[mask] - X_full[mask]) ** 2)
    mean_brier = np.mean((column_means[mask] - X_full[mask]) ** 2)
    assert model_brier < 0.8 * mean_brier  # ~0.12 vs ~0.24 here


def test_partial_fit_improves_likelihood():
    X, _ = planted(3000, missing=0.1, seed=11)
    model = BernoulliMixture(3, random_state=0)
    model.partial_fit(X[:100])
    first = model.score(X)
    for start in range(100, 3000, 100):
        model.partial_fit(X[start:start + 100])
    assert model.score(X) > first + 0.05
    assert model.n_iter_ == 30 and len(model.history_) == 30
    batch_fit = BernoulliMixture(3, random_state=0, n_init=2).fit(X)
    assert model.score(X) > batch_fit.score(X) - 0.05


def test_warm_start_continues_from_the_fitted_parameters():
    X, _ = planted(600, missing=0.1, seed=14)
    model = BernoulliMixture(3, tol=1e-3, random_state=0).fit(X)
    first = model.lower_bound_
    model.set_params(warm_start=True, tol=1e-8, max_iter=500)
    model.fit(X)
    # no re-initialization: the first objective is at the last fit's final parameters, one
    # M-step past its lower bound, so it sits within that fit's tol above it
    assert first <= model.history_[0] <= first + 1e-3
    assert model.converged_ and model.lower_bound_ >= model.history_[0]


def test_streaming_chunks_equal_in_memory_fit():
    X, _ = planted(1000, missing=0.1, seed=12)
    in_memory = BernoulliMixture(3, tol=1e-8, random_state=0).fit(X)
    chunked = BernoulliMixture(3, tol=1e-8, random_state=0).fit([X[:300], X[300:701], X[701:]])
    small = BernoulliMixture(3, tol=1e-8, random_state=0, chunk_size=64).fit(X)
    for other in (chunked, small):
        assert other.n_iter_ == in_memory.n_iter_
        np.testing.assert_allclose(other.means_, in_memory.means_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(other.history_, in_memory.history_, rtol=1e-12)
    bad = X.copy()
    bad[450, 7] = 3.0
    with pytest.raises(ValueError, match=r"X\[450, 7\] = 3.0"):  # global row in the stream
        BernoulliMixture(3).fit([bad[:300], bad[300:]])


def test_parameter_count_bic_and_persistence(tmp_path):
    X, _ = planted(500, missing=0.1)
    model = BernoulliMixture(3, random_state=0).fit(X)
    assert model.n_parameters_ == 3 * 20 + 2
    loglik = model.score(X) * len(X)
    assert model.bic(X) == pytest.approx(-2 * loglik + 62 * np.log(len(X)))
    model.save(tmp_path / "bmm.npz")
    loaded = load(tmp_path / "bmm.npz")
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_saved_model_warm_starts_and_continues_online_em_exactly(tmp_path):
    """em_state_ and online_state_ are saved: a loaded model continues a fit, and online
    EM, exactly as the original (here with this family's own data)."""
    X = planted(600, missing=0.1, seed=15)[0]
    def model():
        return BernoulliMixture(3, random_state=0)

    assert_resumes_after_save(model(), X, tmp_path)
    assert_online_resumes_after_save(model(), [X[i:i + 100] for i in range(0, 400, 100)],
                                     tmp_path)


# -- scikit-learn's estimator checks -------------------------------------------------------

# These checks fit on arbitrary floats (or rounded non-negative numbers), which
# BernoulliMixture rejects by design with a ValueError naming the first non-binary entry
# (scikit-learn has no tag for "binary input"). They are asserted to fail for exactly that
# reason; the same checks run in full on _ParityBernoulli below, so the code they reach is
# still exercised.
NON_BINARY_CHECKS = {
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
    "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes", "check_transformer_n_iter",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in",
    "check_fit2d_predict1d",
}


def _check_name(check):
    return getattr(check, "func", check).__name__


class _ParityBernoulli(BernoulliMixture):
    """Test-only: fits BernoulliMixture to the parity of round(x), so that scikit-learn's
    checks, which draw arbitrary floats, reach the fitting and inference code."""

    def _validate_X(self, X, *, reset):
        X = LatentModel._validate_X(self, X, reset=reset)
        return np.where(np.isnan(X), X, np.round(X) % 2).astype(X.dtype)

    def _source(self, X, *, reset):
        return super()._source(np.asarray(X) if isinstance(X, np.memmap) else X, reset=reset)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = False  # parity accepts negative numbers
        return tags


@parametrize_with_checks([BernoulliMixture(), _ParityBernoulli()])
def test_sklearn_estimator_checks(estimator, check):
    if type(estimator) is BernoulliMixture and _check_name(check) in NON_BINARY_CHECKS:
        with pytest.raises((ValueError, AssertionError), match="models binary data"):
            check(estimator)
    else:
        check(estimator)
