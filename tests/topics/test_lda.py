"""LDA end to end (issue 13): every method recovers a planted corpus; the batch ELBO is
monotone; one held-out evaluator for all methods; parity with scikit-learn; inputs and
errors; persistence; reproducible Gibbs chains."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from helpers import assert_monotone
from latentkit import load
from latentkit.datasets import make_lda_corpus
from latentkit.em import ConvergenceWarning
from latentkit.exceptions import InvalidInputError
from latentkit.topics import LDA, UnknownWordsWarning


@pytest.fixture(scope="module")
def planted():
    """5 well separated topics over 60 words, 600 documents of ~80 tokens."""
    return make_lda_corpus(600, 60, 5, doc_length=80, alpha=0.2, eta=0.05, random_state=1)


def hellinger(P, Q) -> np.ndarray:
    """(K, K) Hellinger distances between the rows of P and of Q (distributions)."""
    return np.sqrt(0.5 * ((np.sqrt(P)[:, None] - np.sqrt(Q)[None]) ** 2).sum(axis=-1))


def matched(true_topics, fitted_topics):
    """The Hungarian matching of fitted to true topics and the matched distances (K,)."""
    cost = hellinger(true_topics, fitted_topics)
    rows, cols = linear_sum_assignment(cost)
    return cols, cost[rows, cols]


def fit_quietly(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


METHODS = {"batch": dict(max_iter=100, tol=1e-4), "online": dict(max_iter=30, batch_size=50, tol=0),
           "gibbs": dict(max_iter=300, burn_in=150, thin=5)}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_recovers_the_planted_topics_and_proportions(planted, method):
    model = fit_quietly(LDA(5, method=method, doc_topic_prior=0.2, topic_word_prior=0.05,
                            random_state=0, **METHODS[method]), planted.counts)
    order, distances = matched(planted.topic_word, model.topic_word_)
    # Hellinger distance of each recovered topic to its planted one (0 = equal, 1 = disjoint);
    # 80 tokens x 600 documents pin a topic down to ~0.1, unrelated topics are ~0.9 apart
    assert distances.max() < 0.15, distances
    theta = model.transform(planted.counts)[:, order]
    # per-document proportions: mean absolute error over the K entries of a document
    assert np.abs(theta - planted.doc_topic).mean() < 0.05


def test_the_batch_elbo_never_decreases(planted):
    model = fit_quietly(LDA(5, max_iter=40, tol=0, doc_tol=1e-8, max_doc_iter=1000,
                            random_state=0), planted.counts)
    assert len(model.history_) == 40
    assert_monotone(model.history_)


def test_optimized_priors_keep_the_bound_monotone_and_find_alpha(planted):
    model = fit_quietly(LDA(5, max_iter=60, tol=0, doc_tol=1e-8, max_doc_iter=1000,
                            optimize_alpha=True, optimize_eta=True, random_state=0),
                        planted.counts)
    assert_monotone(model.history_)
    # the planted α = 0.2 per topic: the estimate is within a factor of 1.5
    assert np.all((model.doc_topic_prior_ > 0.2 / 1.5) & (model.doc_topic_prior_ < 0.3))


def test_held_out_numbers_are_the_same_code_for_every_method(planted):
    """Two models with the same φ and α give the same perplexity and left-to-right
    estimate, whichever method trained them."""
    X = planted.counts
    vb = fit_quietly(LDA(5, max_iter=10, random_state=0), X[:500])
    gibbs = fit_quietly(LDA(5, method="gibbs", max_iter=20, random_state=0), X[:500])
    gibbs.components_ = vb.components_.copy()
    gibbs.doc_topic_prior_ = vb.doc_topic_prior_.copy()
    assert gibbs.perplexity(X[500:]) == vb.perplexity(X[500:])
    np.testing.assert_array_equal(gibbs.heldout_log_likelihood(X[500:], n_particles=3),
                                  vb.heldout_log_likelihood(X[500:], n_particles=3))


def test_batch_perplexity_is_within_two_percent_of_scikit_learn(planted):
    """Matched settings (K, α, η, batch VB, 50 iterations, the same per-document
    tolerance); held-out perplexity by our one evaluator, and scikit-learn's own
    bound-based perplexity against the same quantity of ours."""
    from sklearn.decomposition import LatentDirichletAllocation

    from latentkit.topics._vb_kernels import global_bound

    train, test = planted.counts[:500], planted.counts[500:]
    theirs = LatentDirichletAllocation(5, doc_topic_prior=0.2, topic_word_prior=0.05,
                                       learning_method="batch", max_iter=50,
                                       random_state=0).fit(train)
    # the same start: scikit-learn's λ = Gamma(100, 1/100) draws from RandomState(0)
    start = np.random.RandomState(0).gamma(100.0, 0.01, (5, train.shape[1]))
    ours = fit_quietly(LDA(5, doc_topic_prior=0.2, topic_word_prior=0.05, max_iter=0),
                       train)
    ours.components_ = start
    ours = fit_quietly(ours.set_params(warm_start=True, max_iter=50, tol=0), train)
    twin = LDA(5).fit(train[:20])  # their topics under our evaluator
    twin.components_ = theirs.components_.copy()
    twin.doc_topic_prior_ = np.full(5, 0.2)
    assert abs(ours.perplexity(test) / twin.perplexity(test) - 1) < 0.02
    # scikit-learn's perplexity(X): exp(-(Σ doc bounds + topics' term scaled) / tokens)
    bound = ours.score_samples(train).sum() + global_bound(ours.components_, 0.05)
    our_bound_perplexity = np.exp(-bound / train.sum())
    assert abs(our_bound_perplexity / theirs.perplexity(train) - 1) < 0.02


def test_inputs_texts_tokens_and_unknown_words(tmp_path):
    texts = ["apple banana apple cherry", "banana cherry date", "apple date date",
             "cherry banana apple", "elder apple banana"] * 4
    model = LDA(2, max_iter=5, random_state=0).fit([t.split() for t in texts])
    assert list(model.vocabulary_) == ["apple", "banana", "cherry", "date", "elder"]
    with pytest.warns(UnknownWordsWarning, match="2 token"):
        theta = model.transform([["apple", "fig"], ["grape", "date"]])
    np.testing.assert_allclose(theta.sum(axis=1), 1.0)
    empty = model.transform(sp.csr_matrix((1, 5)))  # an empty document: the prior's mean
    np.testing.assert_allclose(empty, model.doc_topic_prior_[None] / model.doc_topic_prior_.sum())
    model.save(tmp_path / "lda.npz")
    again = load(tmp_path / "lda.npz")
    assert list(again.vocabulary_) == list(model.vocabulary_)
    assert again.top_words(2) == model.top_words(2)


@pytest.mark.parametrize("bad, fragment", [
    (np.array([[1.0, -1.0], [2.0, 0.0]]), "negative"),
    (np.array([[1.5, 1.0], [2.0, 0.0]]), "integer"),
    (np.array([[np.nan, 1.0], [2.0, 0.0]]), "(?i)nan"),
    (np.zeros((3, 0)), "vocabulary"),
])
def test_bad_counts_are_clear_errors(bad, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        LDA(2).fit(bad)


def test_gibbs_is_reproducible_per_seed_and_threads_and_resumes_exactly(planted, tmp_path):
    X = planted.counts[:200]
    kwargs = dict(method="gibbs", random_state=3, burn_in=0, thin=1)
    one = fit_quietly(LDA(5, max_iter=20, **kwargs), X)
    same = fit_quietly(LDA(5, max_iter=20, **kwargs), X)
    np.testing.assert_array_equal(one.components_, same.components_)
    two_threads = fit_quietly(LDA(5, max_iter=20, n_threads=2, **kwargs), X)
    again = fit_quietly(LDA(5, max_iter=20, n_threads=2, **kwargs), X)
    np.testing.assert_array_equal(two_threads.components_, again.components_)
    # 10 sweeps, save, load, 10 more: the same chain as 20 at once
    half = fit_quietly(LDA(5, max_iter=10, **kwargs), X)
    half.save(tmp_path / "chain.npz")
    resumed = fit_quietly(load(tmp_path / "chain.npz").set_params(warm_start=True), X)
    np.testing.assert_array_equal(resumed.em_state_.z, one.em_state_.z)
    np.testing.assert_allclose(resumed.history_, one.history_[10:], rtol=1e-12)


def test_online_fits_from_a_corpus_on_disk_as_from_memory(planted, tmp_path):
    path = tmp_path / "corpus.npz"
    sp.save_npz(path, planted.counts, compressed=False)
    kwargs = dict(method="online", max_iter=3, batch_size=100, random_state=0)
    in_memory = fit_quietly(LDA(5, **kwargs), planted.counts)
    from_disk = fit_quietly(LDA(5, **kwargs), str(path))
    np.testing.assert_allclose(from_disk.history_, in_memory.history_, rtol=1e-10)
    np.testing.assert_allclose(from_disk.components_, in_memory.components_, rtol=1e-10)
    batch_from_disk = fit_quietly(LDA(5, max_iter=3, tol=0, random_state=0), str(path))
    batch_in_memory = fit_quietly(LDA(5, max_iter=3, tol=0, random_state=0), planted.counts)
    np.testing.assert_allclose(batch_from_disk.history_, batch_in_memory.history_, rtol=1e-10)
    assert in_memory.n_iter_ == 3


def test_partial_fit_learns_from_a_stream_of_minibatches(planted):
    model = LDA(5, total_samples=600, random_state=0)
    for start in range(0, 600, 100):
        model.partial_fit(planted.counts[start:start + 100])
    _, distances = matched(planted.topic_word, model.topic_word_)
    assert np.median(distances) < 0.3
    with pytest.raises(ValueError, match="partial_fit"):
        LDA(5, method="gibbs").partial_fit(planted.counts[:10])


def test_a_text_file_of_documents_streams_as_its_vectorized_texts(tmp_path):
    from latentkit.topics import vectorize

    rng = np.random.default_rng(0)
    words = np.array("game team season coach market stock price trade court judge jury law"
                     .split())
    texts = [" ".join(rng.choice(words[4 * (d % 3):4 * (d % 3) + 4], size=20))
             for d in range(90)]
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(texts) + "\n")
    kwargs = dict(method="online", max_iter=2, batch_size=16, random_state=0)
    streamed = fit_quietly(LDA(3, **kwargs), str(path))
    in_memory = fit_quietly(LDA(3, **kwargs), vectorize(texts))
    assert list(streamed.vocabulary_) == list(in_memory.vocabulary_)
    np.testing.assert_allclose(streamed.components_, in_memory.components_, rtol=1e-10)


def test_sizes_taken_from_the_data_are_bounded_before_allocating():
    """Issue 12 for topics: a huge word id or matrix width, or topics x words beyond the
    limit, is a clear error, not a MemoryError or a killed process."""
    from latentkit.exceptions import InvalidParameterError
    from latentkit.topics._corpus import counts_from_tokens

    with pytest.raises(InvalidInputError, match="word id 1000000000 is beyond"):
        counts_from_tokens([[0, 1], [10**9]])
    with pytest.raises(InvalidInputError, match="more than latentkit's limit"):
        LDA(2).fit(sp.csr_matrix((3, 10**8)))
    wide = sp.csr_matrix(np.ones((2, 2**21)))
    with pytest.raises(InvalidParameterError, match="n_topics=1000 topics over 2097152 words"):
        LDA(1000).fit(wide)


def test_online_first_step_keeps_the_initial_topics_as_hoffman_et_al(planted):
    """λ_1 = (1 - ρ_1) λ_0 + ρ_1 (η + D s̄(batch)), ρ_1 = τ0^-κ: the start is blended with
    the first minibatch's estimate, not replaced by it."""
    from latentkit.topics._vb import e_step

    X = planted.counts
    model = LDA(5, method="online", max_iter=1, batch_size=600, tol=0, random_state=0,
                learning_offset=4.0, learning_decay=0.6)
    zero = fit_quietly(model.set_params(max_iter=0), X)  # the initial λ_0, no step
    config = zero._em_config(600, 60)
    stats, _ = e_step(zero._current_params(), None, config, X)
    rho = 4.0 ** -0.6
    expected = (1 - rho) * zero.components_ + rho * (zero.topic_word_prior_ + stats.topic_word)
    one = fit_quietly(LDA(**{**model.get_params(), "max_iter": 1}), X)
    np.testing.assert_allclose(one.components_, expected, rtol=1e-10)


def test_a_corpus_without_any_word_and_degenerate_priors_are_handled():
    """Found by the fuzz suite: a corpus of empty documents is a clear error; one topic
    with optimize_alpha (θ = 1 whatever α) and optimize_eta in online VB fit finitely."""
    with pytest.raises(InvalidInputError, match="no words at all"):
        LDA(2).fit(np.zeros((3, 4)))
    X = np.array([[0.0, 0.0, 104.0, 0.0], [0.0, 0.0, 75.0, 0.0], [0.0, 3.0, 103.0, 0.0]])
    one = fit_quietly(LDA(1, optimize_alpha=True, max_iter=3), X)
    assert np.all(np.isfinite(one.components_))
    online = fit_quietly(LDA(2, method="online", optimize_eta=True, batch_size=1, max_iter=2,
                             random_state=1), X)
    assert np.all(np.isfinite(online.components_)) and online.topic_word_prior_ > 0
