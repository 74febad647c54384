"""CategoricalMixture against independent truths: brute-force likelihoods, a hand-written EM
step, BernoulliMixture on binary data, planted parameters, Monte Carlo frequencies, and
scikit-learn's estimator checks."""

import itertools
import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from helpers import (
    assert_monotone,
    assert_online_resumes_after_save,
    assert_recovers,
    assert_resumes_after_save,
)
from latentkit import load
from latentkit.em import ConvergenceWarning
from latentkit.mixture._discrete import DiscreteConfig, init
from latentkit.mixture.bernoulli import BernoulliMixture
from latentkit.mixture.categorical import (
    CATEGORICAL_KERNELS,
    CategoricalMixture,
    categorical_encode,
    inverse_cdf,
)

LEVELS = [3, 4, 2, 5]
TRUE_WEIGHTS = np.array([0.35, 0.4, 0.25])
# per column: (K, L_j) probabilities, each component favouring a different level
TRUE_PROBS = [
    np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]),
    np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7]]),
    np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]),
    np.array([[0.6, 0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.6, 0.1, 0.1],
              [0.1, 0.1, 0.1, 0.1, 0.6]]),
]


def planted(n=3000, missing=0.0, seed=0):
    """(X, z) from the planted mixture; a `missing` share of entries set to NaN (MCAR)."""
    rng = np.random.default_rng(seed)
    z = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    X = np.column_stack([[rng.choice(len(p[k]), p=p[k]) for k in z] for p in TRUE_PROBS])
    X = X.astype(np.float64)
    X[rng.random(X.shape) < missing] = np.nan
    return X, z


def brute_force_log_likelihood(model, x):
    """log p(x_obs): enumerate every completion of the missing entries over their levels and
    sum π_k Π_j θ_kj,x_j, one product at a time."""
    missing = np.flatnonzero(np.isnan(x))
    total = 0.0
    for fill in itertools.product(*[range(model.n_categories_[j]) for j in missing]):
        full = x.copy()
        full[missing] = fill
        for k in range(model.n_components):
            p = model.weights_[k]
            for j, code in enumerate(full.astype(int)):
                p *= model.category_probs(j)[k, code]
            total += p
    return np.log(total)


def test_log_likelihood_matches_brute_force_with_and_without_nan():
    X, _ = planted(100, seed=1)
    model = CategoricalMixture(2, random_state=0).fit(X)
    rows = np.array([[0, 3, 1, 4], [2, 0, 0, 0], [np.nan, 1, np.nan, 2],
                     [np.nan] * 4, [1, np.nan, np.nan, np.nan]], dtype=float)
    expected = [brute_force_log_likelihood(model, x) for x in rows]
    np.testing.assert_allclose(model.score_samples(rows), expected, rtol=1e-12, atol=1e-12)
    # a chunk without NaN takes the complete-data path of the kernel
    np.testing.assert_allclose(model.score_samples(rows[:2]), expected[:2], rtol=1e-12)


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_one_em_step_matches_hand_written_update(missing):
    X, _ = planted(50, missing=missing, seed=2)
    rng = np.random.default_rng(3)
    weights = np.array([0.5, 0.3, 0.2])
    blocks = [rng.dirichlet(np.ones(L), size=3) for L in LEVELS]
    model = CategoricalMixture(3, n_categories=LEVELS, weights_init=weights,
                               probs_init=np.hstack(blocks), max_iter=1, alpha=0.3,
                               weight_alpha=1.5)
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    N, J, K = len(X), len(LEVELS), 3
    resp = np.zeros((N, K))
    for n in range(N):
        for k in range(K):
            resp[n, k] = weights[k] * np.prod([blocks[j][k, int(X[n, j])] for j in range(J)
                                               if not np.isnan(X[n, j])])
        resp[n] /= resp[n].sum()
    np.testing.assert_allclose(model.weights_, (resp.sum(0) + 1.5) / (N + K * 1.5), rtol=1e-12)
    for j, L in enumerate(LEVELS):
        seen = ~np.isnan(X[:, j])
        for k in range(K):
            counts = np.array([resp[seen & (X[:, j] == l), k].sum() for l in range(L)])
            expected = (counts + 0.3) / (resp[seen, k].sum() + L * 0.3)
            np.testing.assert_allclose(model.category_probs(j)[k], expected, rtol=1e-12)


def test_agrees_with_bernoulli_mixture_on_binary_data():
    rng = np.random.default_rng(4)
    X = (rng.random((300, 6)) < rng.uniform(0.1, 0.9, size=6)).astype(float)
    X[rng.random(X.shape) < 0.1] = np.nan
    means = rng.uniform(0.2, 0.8, size=(2, 6))
    probs = np.stack([1 - means, means], axis=2).reshape(2, 12)  # levels (0, 1) per column
    bmm = BernoulliMixture(2, means_init=means, weights_init=[0.5, 0.5], tol=1e-7,
                           max_iter=500).fit(X)
    cmm = CategoricalMixture(2, n_categories=[2] * 6, probs_init=probs,
                             weights_init=[0.5, 0.5], tol=1e-7, max_iter=500).fit(X)
    assert bmm.converged_ and cmm.n_iter_ == bmm.n_iter_
    np.testing.assert_allclose(cmm.probs_[:, 1::2], bmm.means_, rtol=1e-9)
    np.testing.assert_allclose(cmm.history_, bmm.history_, rtol=1e-12)
    np.testing.assert_allclose(cmm.score_samples(X), bmm.score_samples(X), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_history_is_monotone(dtype):
    X, _ = planted(800, missing=0.2, seed=5)
    model = CategoricalMixture(4, init_params="random", tol=1e-6, max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the engine's guard stays silent
        model.fit(X.astype(dtype))
    assert len(model.history_) > 10
    assert_monotone(model.history_, dtype=dtype)


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_recovers_planted_parameters(missing):
    X, _ = planted(3000, missing=missing)
    model = CategoricalMixture(3, n_init=2, tol=1e-6, random_state=0).fit(X)
    np.testing.assert_array_equal(model.n_categories_, LEVELS)
    assert_monotone(model.history_)
    # tolerance: >= 600 observed rows per component and column give a standard error of
    # at most 0.02 per probability; 0.08 is 4 standard errors
    order = assert_recovers(np.hstack(TRUE_PROBS), model.probs_, atol=0.08)
    np.testing.assert_allclose(model.weights_[order], TRUE_WEIGHTS, atol=0.03)


def test_float32_and_float64_agree():
    X, _ = planted(800, missing=0.1, seed=6)
    X32 = X.astype(np.float32)
    # the same 30 iterations from the same start: float32 round-off must not accumulate
    # (comparing converged fits would compare where each precision's stopping rule fires)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m64 = CategoricalMixture(3, tol=0.0, max_iter=30, random_state=0).fit(X)
        m32 = CategoricalMixture(3, tol=0.0, max_iter=30, random_state=0).fit(X32)
    assert m32.probs_.dtype == np.float32 and m32.weights_.dtype == np.float32
    for out in (m32.score_samples(X32), m32.predict_proba(X32), m32.impute(X32),
                m32.sample(2, random_state=0)[0]):
        assert out.dtype == np.float32
    np.testing.assert_allclose(m32.history_, m64.history_, rtol=1e-5)  # float32 round-off
    np.testing.assert_allclose(m32.probs_, m64.probs_, atol=1e-5)
    np.testing.assert_allclose(m32.weights_, m64.weights_, atol=1e-5)
    np.testing.assert_allclose(m32.score_samples(X32), m64.score_samples(X), rtol=1e-5)


def test_posterior_rows_sum_to_one():
    X, _ = planted(200, missing=0.3, seed=7)
    model = CategoricalMixture(3, random_state=0).fit(X)
    resp = model.predict_proba(X)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(model.posterior(X).probs, resp, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), resp.argmax(axis=1))


def test_sample_frequencies_match_parameters():
    model = CategoricalMixture(3, weights_init=TRUE_WEIGHTS, probs_init=np.hstack(TRUE_PROBS),
                               n_categories=LEVELS, max_iter=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(planted(50)[0])  # max_iter=0 keeps the given parameters
    X, z = model.sample(30_000, random_state=0)
    # Monte Carlo: standard errors are <= 0.003 for the weights, <= 0.009 per probability
    np.testing.assert_allclose(np.bincount(z) / len(z), TRUE_WEIGHTS, atol=0.015)
    for j, L in enumerate(LEVELS):
        for k in range(3):
            freq = np.bincount(X[z == k, j].astype(int), minlength=L) / np.sum(z == k)
            np.testing.assert_allclose(freq, TRUE_PROBS[j][k], atol=0.04)


def test_n_categories_inferred_or_given_and_checked():
    X, _ = planted(300, seed=8)
    X[:, 2] = 0.0  # column 2 only ever shows level 0
    X[:, 3] = np.nan
    with pytest.raises(ValueError, match="column 3 of X is entirely missing"):
        CategoricalMixture(2, random_state=0).fit(X)  # nothing can be learned about it
    X[:5, 3] = 0.0  # column 3 is observed in 5 rows, at level 0
    inferred = CategoricalMixture(2, random_state=0).fit(X)
    np.testing.assert_array_equal(inferred.n_categories_, [3, 4, 1, 1])
    assert inferred.category_probs(2).shape == (2, 1)
    given = CategoricalMixture(2, n_categories=[3, 4, 2, 5], random_state=0).fit(X)
    assert given.probs_.shape == (2, 14)
    assert np.all(given.probs_ > 0) and np.all(given.probs_ < 1)  # no exact 0 or 1
    unseen = given.category_probs(3)[:, 1:]  # levels 1..4 never observed: equal, and small
    np.testing.assert_allclose(unseen, unseen[:, :1] * np.ones((1, 4)), rtol=1e-12)
    assert np.all(unseen < given.category_probs(3)[:, :1])
    assert given.n_parameters_ == 2 * (2 + 3 + 1 + 4) + 1
    row = X[:1].copy()
    row[0, 2] = 1.0  # allowed by n_categories, unseen at fit
    assert np.isfinite(given.score_samples(row)).all()
    with pytest.raises(ValueError, match=r"X\[0, 2\] = 1.0.*codes 0..0"):
        inferred.score_samples(row)  # the inferred model knows only level 0
    with pytest.raises(ValueError, match="'n_categories' must be None or one integer"):
        CategoricalMixture(2, n_categories=[3, 4]).fit(X)
    with pytest.raises(ValueError, match=r"X\[\d+, 1\] = 3.0.*codes 0..2"):
        CategoricalMixture(2, n_categories=[3, 3, 2, 5]).fit(X)
    with pytest.raises(ValueError, match=r"column index j must be an integer in \[0, 4\)"):
        given.category_probs(4)


def test_degenerate_inputs():
    X, _ = planted(20, seed=9)
    with pytest.raises(ValueError, match="n_components=21 must be <= n_samples=20"):
        CategoricalMixture(21).fit(X)
    same = np.tile([[1.0, 0.0, 2.0]], (15, 1))  # duplicate rows, constant columns
    with warnings.catch_warnings():  # k-means sees one distinct point
        warnings.simplefilter("ignore")
        model = CategoricalMixture(2, random_state=0).fit(same)
    assert np.all(np.isfinite(model.probs_)) and np.isfinite(model.score(same))
    X[3] = np.nan
    model = CategoricalMixture(2, random_state=0).fit(X)
    assert model.score_samples(X)[3] == pytest.approx(0.0)
    bad = X.copy()
    bad[5, 1] = np.inf
    with pytest.raises(ValueError, match="inf at row 5, column 1"):
        CategoricalMixture(2).fit(bad)
    bad[5, 1] = 1.5
    with pytest.raises(ValueError, match=r"X\[5, 1\] = 1.5 is not a valid category code"):
        CategoricalMixture(2).fit(bad)
    bad[5, 1] = -2.0
    with pytest.raises(ValueError, match=r"Negative values in data: X\[5, 1\] = -2.0"):
        CategoricalMixture(2).fit(bad)


def test_impute_beats_column_mode():
    X_full, _ = planted(2000, seed=10)
    mask = np.random.default_rng(11).random(X_full.shape) < 0.2
    X = np.where(mask, np.nan, X_full)
    model = CategoricalMixture(3, random_state=0).fit(X)
    imputed = model.impute(X)
    np.testing.assert_array_equal(imputed[~mask], X_full[~mask])
    modes = [np.bincount(col[~np.isnan(col)].astype(int)).argmax() for col in X.T]
    by_mode = np.where(mask, modes, X)
    model_accuracy = np.mean(imputed[mask] == X_full[mask])
    mode_accuracy = np.mean(by_mode[mask] == X_full[mask])
    assert model_accuracy > mode_accuracy + 0.1  # ~0.60 vs ~0.40 here


def test_partial_fit_improves_likelihood():
    X, _ = planted(3000, missing=0.1, seed=12)
    model = CategoricalMixture(3, n_categories=LEVELS, random_state=0)
    model.partial_fit(X[:100])
    first = model.score(X)
    for start in range(100, 3000, 100):
        model.partial_fit(X[start:start + 100])
    assert model.score(X) > first + 0.05
    batch_fit = CategoricalMixture(3, n_init=2, random_state=0).fit(X)
    assert model.score(X) > batch_fit.score(X) - 0.05


def test_streaming_chunks_equal_in_memory_fit():
    X, _ = planted(900, missing=0.1, seed=13)
    in_memory = CategoricalMixture(3, tol=1e-8, random_state=0).fit(X)
    chunked = CategoricalMixture(3, tol=1e-8, random_state=0).fit([X[:250], X[250:]])
    small = CategoricalMixture(3, tol=1e-8, random_state=0, chunk_size=50).fit(X)
    for other in (chunked, small):
        np.testing.assert_array_equal(other.n_categories_, in_memory.n_categories_)
        assert other.n_iter_ == in_memory.n_iter_
        np.testing.assert_allclose(other.probs_, in_memory.probs_, rtol=1e-9, atol=1e-12)
    top = X.copy()
    top[800, 0] = 7.0  # the top level of column 0 appears only in the last chunk
    streamed = CategoricalMixture(2, random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        streamed.fit([top[:250], top[250:]])
    assert streamed.n_categories_[0] == 8


def test_persistence_round_trip(tmp_path):
    X, _ = planted(300, missing=0.1)
    model = CategoricalMixture(3, random_state=0).fit(X)
    model.save(tmp_path / "cmm.npz")
    loaded = load(tmp_path / "cmm.npz")
    np.testing.assert_array_equal(loaded.n_categories_, model.n_categories_)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_saved_model_warm_starts_and_continues_online_em_exactly(tmp_path):
    """em_state_ and online_state_ are saved: a loaded model continues a fit, and online
    EM, exactly as the original (here with this family's own data)."""
    X = planted(600, missing=0.1, seed=15)[0]
    def model():
        return CategoricalMixture(3, n_categories=LEVELS, random_state=0)

    assert_resumes_after_save(model(), X, tmp_path)
    assert_online_resumes_after_save(model(), [X[i:i + 100] for i in range(0, 400, 100)],
                                     tmp_path)


def test_inverse_cdf_equals_the_dense_count():
    """Per-component searchsorted (memory O(n + K L)) draws exactly the codes of the dense
    rule: the number of cumulative sums <= u Σ, capped at L - 1."""
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(6), size=4)
    z, u = rng.integers(0, 4, 500), rng.random(500)
    cumulative = np.cumsum(probs[z], axis=1)
    dense = np.minimum((u[:, None] * cumulative[:, -1:] >= cumulative).sum(axis=1), 5)
    np.testing.assert_array_equal(inverse_cdf(probs, z, u), dense)


def test_init_encodes_at_most_init_rows():
    """The initialization's one-hot encoding is bounded: a random subset of init_rows rows
    of the init sample (never all 5000 here), and every row when it has fewer."""
    seen = []

    def encode(X, n_levels):
        seen.append(len(X))
        return categorical_encode(X, n_levels)

    kernels = CATEGORICAL_KERNELS._replace(encode=encode)
    X = planted(5000)[0]
    level_column = np.repeat(np.arange(len(LEVELS)), LEVELS)
    config = DiscreteConfig(3, 0.01, 1.0, "random", level_column, np.array(LEVELS), None,
                            None, "CategoricalMixture", init_rows=700)
    params, _ = init(X, np.random.default_rng(0), config, 0, kernels=kernels)
    assert seen == [700] and params.probs.shape == (3, sum(LEVELS))
    init(X[:500], np.random.default_rng(0), config, 0, kernels=kernels)
    assert seen == [700, 500]


# scikit-learn's checks draw floats; the `categorical` input tag makes them round the data to
# non-negative integer codes, which is what this model accepts, so no check is skipped.
@parametrize_with_checks([CategoricalMixture()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
