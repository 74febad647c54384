"""Collapsed Gibbs kernels of LDA against independent truths.

The distribution tests enumerate every assignment of a tiny corpus: the exact posterior
p(z | w) ∝ p(w, z) from a log joint written here with math.lgamma, and the exact law of the
chain after B sweeps from its uniform start (the product of the per-token Gibbs kernels, each
resampling z_i from p(w, z) normalised over z_i). Independent chains (one seed each) give R
independent draws of the state after B sweeps, so the empirical law p̂ has

    E TV(p̂, p) <= ½ Σ_s sqrt(p_s (1 − p_s) / R)          (Jensen, per state)
    P(TV − E TV > t) <= exp(−2 R t²)                      (McDiarmid: one draw moves TV <= 1/R)

and the tolerance is that bound plus t at δ = 1e-6; the exact B-sweep law is itself checked to
be within 1e-3 of the posterior, so the test is about the sampler's stationary law too.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import minimize

from latentkit.topics._gibbs_fit import collapsed_log_joint, log_joint_tables
from latentkit.topics._gibbs_kernels import (
    SPARSE_MIN_TOPICS,
    balanced_blocks,
    count_matrices,
    fixed_topics_inference,
    gibbs_sweeps,
    initial_assignments,
    optimize_alpha,
    sweep_workspace,
    tokens_from_counts,
)

DELTA = 1e-6  # failure probability of a correct sampler in one distribution test


def brute_log_joint(doc_words, z, n_topics, n_words, alpha, eta):
    """log p(w, z) by loops: Π_d DirMult(z_d | α) Π_k DirMult(w_k | η) with math.lgamma."""
    total = 0.0
    for d, doc in enumerate(doc_words):
        topics = [z[d][i] for i in range(len(doc))]
        total += math.lgamma(sum(alpha)) - math.lgamma(len(doc) + sum(alpha))
        for k in range(n_topics):
            total += math.lgamma(topics.count(k) + alpha[k]) - math.lgamma(alpha[k])
    for k in range(n_topics):
        words_k = [w for d, doc in enumerate(doc_words) for i, w in enumerate(doc)
                   if z[d][i] == k]
        total += math.lgamma(n_words * eta) - math.lgamma(len(words_k) + n_words * eta)
        for v in range(n_words):
            total += math.lgamma(words_k.count(v) + eta) - math.lgamma(eta)
    return total


def split(flat, doc_words):
    out, start = [], 0
    for doc in doc_words:
        out.append(list(flat[start:start + len(doc)]))
        start += len(doc)
    return out


def sweep_law(log_weight, n_tokens, n_topics, n_sweeps):
    """Exact law of a systematic-scan Gibbs chain after n_sweeps from the uniform start.
    log_weight : (K^N,) unnormalised log target over states (token 0 most significant)."""
    states = np.array(list(itertools.product(range(n_topics), repeat=n_tokens)))
    law = np.full(len(states), 1.0 / len(states))
    place = n_topics ** np.arange(n_tokens - 1, -1, -1)
    for _ in range(n_sweeps):
        for i in range(n_tokens):
            new_law = np.zeros_like(law)
            for s, state in enumerate(states):
                base = s - state[i] * place[i]
                options = base + np.arange(n_topics) * place[i]
                weights = np.exp(log_weight[options] - log_weight[options].max())
                new_law[options] += law[s] * weights / weights.sum()
            law = new_law
    return law


def tv_tolerance(law, n_draws):
    expected = 0.5 * np.sum(np.sqrt(law * (1 - law) / n_draws))
    return expected + math.sqrt(math.log(1 / DELTA) / (2 * n_draws))


TINY_DOCS = [[0, 1, 0], [2, 1, 2]]
TINY_ALPHA = np.array([0.3, 0.8])
TINY_ETA = 0.4


def tiny_arrays():
    doc_ptr = np.array([0, 3, 6], dtype=np.int64)
    words = np.array(sum(TINY_DOCS, []), dtype=np.int32)
    return doc_ptr, words


@pytest.mark.parametrize("sparse", [False, True])
def test_chain_law_matches_enumerated_posterior(sparse):
    n_topics, n_words, n_sweeps, n_chains = 2, 3, 20, 20000
    doc_ptr, words = tiny_arrays()
    states = list(itertools.product(range(n_topics), repeat=6))
    log_joint = np.array([brute_log_joint(TINY_DOCS, split(s, TINY_DOCS), n_topics, n_words,
                                          TINY_ALPHA, TINY_ETA) for s in states])
    posterior = np.exp(log_joint - log_joint.max())
    posterior /= posterior.sum()
    law = sweep_law(log_joint, 6, n_topics, n_sweeps)
    assert 0.5 * np.abs(law - posterior).sum() < 1e-3  # B sweeps have forgotten the start
    place = n_topics ** np.arange(5, -1, -1)
    visits = np.zeros(len(states))
    for chain in range(n_chains):
        z = initial_assignments(doc_ptr, words, n_topics, seed=chain)
        n_dk, n_wk, n_k = count_matrices(doc_ptr, words, z, n_topics, n_words)
        gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, TINY_ALPHA, TINY_ETA, n_sweeps,
                     seed=chain, sparse=sparse)
        visits[z @ place] += 1
    tolerance = tv_tolerance(law, n_chains)
    assert tolerance < 0.25 * np.abs(posterior - 1 / len(states)).sum()  # the test has power
    assert 0.5 * np.abs(visits / n_chains - law).sum() < tolerance


def test_sparse_chain_law_with_three_topics_matches_enumeration():
    """Three topics and a word that fills the word lists: drawn topics that change, entries
    that drop to zero and swap places in the sparse kernel's lists, against the exact law."""
    docs, n_topics, n_words, n_sweeps, n_chains = [[0, 1, 0], [1, 1]], 3, 2, 15, 20000
    alpha, eta = np.array([0.2, 0.5, 0.3]), 0.15
    doc_ptr = np.array([0, 3, 5], dtype=np.int64)
    words = np.array(sum(docs, []), dtype=np.int32)
    states = list(itertools.product(range(n_topics), repeat=5))
    log_joint = np.array([brute_log_joint(docs, split(s, docs), n_topics, n_words, alpha, eta)
                          for s in states])
    posterior = np.exp(log_joint - log_joint.max())
    posterior /= posterior.sum()
    law = sweep_law(log_joint, 5, n_topics, n_sweeps)
    assert 0.5 * np.abs(law - posterior).sum() < 1e-3
    place = n_topics ** np.arange(4, -1, -1)
    visits = np.zeros(len(states))
    for chain in range(n_chains):
        z = initial_assignments(doc_ptr, words, n_topics, seed=chain)
        n_dk, n_wk, n_k = count_matrices(doc_ptr, words, z, n_topics, n_words)
        gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, n_sweeps, seed=chain,
                     sparse=True)
        visits[z @ place] += 1
    tolerance = tv_tolerance(law, n_chains)
    assert tolerance < 0.25 * np.abs(posterior - 1 / len(states)).sum()
    assert 0.5 * np.abs(visits / n_chains - law).sum() < tolerance


def test_fixed_topics_law_matches_enumeration():
    phi = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3]])
    alpha = np.array([0.5, 0.2, 1.0])
    doc = [0, 2, 1, 2, 0]
    n_topics, n_tokens, n_burn, n_copies = 3, len(doc), 10, 20000
    states = np.array(list(itertools.product(range(n_topics), repeat=n_tokens)))
    log_weight = np.array([  # log Π_i φ_{z_i w_i} + log DirMult(n_d | α) (sequence form)
        sum(math.log(phi[k, w]) for k, w in zip(s, doc))
        + sum(math.lgamma(list(s).count(k) + alpha[k]) for k in range(n_topics))
        for s in states])
    law = sweep_law(log_weight, n_tokens, n_topics, n_burn + 1)
    stationary = np.exp(log_weight - log_weight.max())
    stationary /= stationary.sum()
    assert 0.5 * np.abs(law - stationary).sum() < 1e-3
    counts_of = [tuple(np.bincount(s, minlength=n_topics)) for s in states]
    compositions = sorted(set(counts_of))
    count_law = np.zeros(len(compositions))
    for c, p in zip(counts_of, law):
        count_law[compositions.index(c)] += p
    doc_ptr = np.arange(n_copies + 1, dtype=np.int64) * n_tokens
    words = np.tile(np.array(doc, dtype=np.int32), n_copies)
    theta = fixed_topics_inference(doc_ptr, words, phi, alpha, n_burn, 1, seed=3)
    counts = np.rint(theta * (n_tokens + alpha.sum()) - alpha).astype(int)
    assert np.allclose(theta * (n_tokens + alpha.sum()) - alpha, counts, atol=1e-9)
    found = np.zeros(len(compositions))
    for row in counts:
        found[compositions.index(tuple(row))] += 1
    assert 0.5 * np.abs(found / n_copies - count_law).sum() < tv_tolerance(count_law, n_copies)


def test_fixed_topics_mean_empty_docs_and_seeds():
    phi = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    alpha = np.array([0.4, 0.9])
    doc_ptr = np.array([0, 0, 4, 4], dtype=np.int64)
    words = np.array([0, 2, 2, 1], dtype=np.int32)
    theta = fixed_topics_inference(doc_ptr, words, phi, alpha, 5, 50, seed=1)
    assert np.allclose(theta[[0, 2]], alpha / alpha.sum())
    assert np.allclose(theta.sum(axis=1), 1.0)
    again = fixed_topics_inference(doc_ptr, words, phi, alpha, 5, 50, seed=1)
    other = fixed_topics_inference(doc_ptr, words, phi, alpha, 5, 50, seed=2)
    assert np.array_equal(theta, again) and not np.array_equal(theta, other)


def random_corpus(n_docs=40, n_words=25, seed=0):
    counts = sp.random(n_docs, n_words, density=0.3, format="csr", random_state=seed)
    counts.data = np.ceil(counts.data * 4)
    return tokens_from_counts(counts.indptr, counts.indices, counts.data)


def fresh_state(doc_ptr, words, n_topics, n_words, seed=0):
    z = initial_assignments(doc_ptr, words, n_topics, seed)
    return (z, *count_matrices(doc_ptr, words, z, n_topics, n_words))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_counts_match_assignments_after_every_sweep(sparse, n_threads):
    n_topics, n_words = 9, 25
    doc_ptr, words = random_corpus()
    state = fresh_state(doc_ptr, words, n_topics, n_words)
    alpha = np.linspace(0.05, 0.5, n_topics)
    for sweep in range(6):
        gibbs_sweeps(doc_ptr, words, *state, alpha, 0.1, 1, seed=4, first_sweep=sweep,
                     n_threads=n_threads, sparse=sparse)
        recomputed = count_matrices(doc_ptr, words, state[0], n_topics, n_words)
        for kept, truth in zip(state[1:], recomputed):
            assert np.array_equal(kept, truth)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_same_seed_same_chain_and_resume(sparse, n_threads):
    n_topics, n_words = 6, 25
    doc_ptr, words = random_corpus()
    alpha = np.full(n_topics, 0.2)
    runs = {}
    for name, seed, pieces in [("a", 7, [4]), ("b", 7, [4]), ("resumed", 7, [1, 3]),
                               ("other", 8, [4])]:
        state = fresh_state(doc_ptr, words, n_topics, n_words)
        done = 0
        for n in pieces:
            gibbs_sweeps(doc_ptr, words, *state, alpha, 0.1, n, seed, first_sweep=done,
                         n_threads=n_threads, sparse=sparse)
            done += n
        runs[name] = state[0]
    assert np.array_equal(runs["a"], runs["b"])
    assert np.array_equal(runs["a"], runs["resumed"])
    assert not np.array_equal(runs["a"], runs["other"])


def test_sparse_is_chosen_for_many_topics():
    n_topics, n_words = SPARSE_MIN_TOPICS, 25
    doc_ptr, words = random_corpus()
    alpha = np.full(n_topics, 0.1)
    runs = []
    for sparse in [None, True, False]:
        state = fresh_state(doc_ptr, words, n_topics, n_words)
        gibbs_sweeps(doc_ptr, words, *state, alpha, 0.1, 2, seed=1, sparse=sparse)
        runs.append(state[0])
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_tokens_from_counts_and_blocks():
    counts = sp.csr_matrix(np.array([[2.0, 0, 1], [0, 0, 0], [0, 3, 1]]))
    doc_ptr, words = tokens_from_counts(counts.indptr, counts.indices, counts.data)
    assert doc_ptr.tolist() == [0, 3, 3, 7] and words.tolist() == [0, 0, 2, 1, 1, 1, 2]
    with pytest.raises(ValueError, match="integers"):
        tokens_from_counts(counts.indptr, counts.indices, counts.data + 0.5)
    doc_ptr, _ = random_corpus(n_docs=60)
    blocks = balanced_blocks(doc_ptr, 3)
    tokens = doc_ptr[blocks[1:]] - doc_ptr[blocks[:-1]]
    assert blocks[0] == 0 and blocks[-1] == 60 and np.all(np.diff(blocks) >= 0)
    assert tokens.max() - tokens.min() <= 2 * np.diff(doc_ptr).max()


def test_bad_state_is_rejected():
    doc_ptr, words = tiny_arrays()
    z, n_dk, n_wk, n_k = fresh_state(doc_ptr, words, 2, 3)
    with pytest.raises(ValueError, match="n_wk"):
        gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk.astype(np.int64), n_k, TINY_ALPHA, 0.1, 1, 0)
    with pytest.raises(ValueError, match="positive"):
        gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, -TINY_ALPHA, 0.1, 1, 0)


def test_collapsed_log_joint_equals_brute_force():
    n_topics, n_words = 4, 6
    alpha, eta = np.array([0.1, 0.5, 1.5, 0.3]), 0.07
    doc_ptr, words = random_corpus(n_docs=5, n_words=n_words, seed=2)
    z = initial_assignments(doc_ptr, words, n_topics, seed=5)
    doc_words = [list(words[doc_ptr[d]:doc_ptr[d + 1]]) for d in range(5)]
    expected = brute_log_joint(doc_words, split(z, doc_words), n_topics, n_words, alpha, eta)
    counts = count_matrices(doc_ptr, words, z, n_topics, n_words)
    assert collapsed_log_joint(*counts, alpha, eta) == pytest.approx(expected, rel=1e-12)


def test_collapsed_log_joint_past_its_tables_equals_brute_force():
    """Counts beyond the tables' width are evaluated by lgamma, with the same result."""
    n_topics, n_words = 3, 5
    alpha, eta = np.array([0.2, 0.9, 1.7]), 0.3
    doc_ptr, words = random_corpus(n_docs=6, n_words=n_words, seed=4)
    z = initial_assignments(doc_ptr, words, n_topics, seed=2)
    doc_words = [list(words[doc_ptr[d]:doc_ptr[d + 1]]) for d in range(6)]
    expected = brute_log_joint(doc_words, split(z, doc_words), n_topics, n_words, alpha, eta)
    counts = count_matrices(doc_ptr, words, z, n_topics, n_words)
    assert counts[0].max() > 2 and counts[1].max() > 2  # both tables are exceeded
    for widths in [(1, 1), (2, 2), (100, 100)]:
        tables = log_joint_tables(alpha, eta, *widths)
        assert collapsed_log_joint(*counts, alpha, eta, tables) == pytest.approx(expected,
                                                                                  rel=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_reused_workspace_gives_the_chain_of_a_fresh_one(sparse, n_threads):
    """The sparse kernel keeps its word lists between calls; when the counts changed in
    between (here: one token moved by hand), the stale lists must not leak into the chain."""
    n_topics, n_words = 40, 25
    doc_ptr, words = random_corpus()
    alpha = np.full(n_topics, 0.1)
    chains = []
    for reuse in [True, False]:
        z, n_dk, n_wk, n_k = fresh_state(doc_ptr, words, n_topics, n_words)
        workspace = sweep_workspace(doc_ptr, n_wk, n_threads, sparse)
        for sweep in range(4):
            if sweep == 2:  # move token 0 to another topic, counts rebuilt
                z[0] = (z[0] + 1) % n_topics
                n_dk[:], n_wk[:], n_k[:] = count_matrices(doc_ptr, words, z, n_topics, n_words)
            gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, 0.1, 1, seed=3,
                         first_sweep=sweep, n_threads=n_threads, sparse=sparse,
                         workspace=workspace if reuse else None)
        chains.append(z)
    assert np.array_equal(chains[0], chains[1])


def test_collapsed_joint_sums_to_one_over_words_and_topics():
    """p(w, z) is a distribution over token sequences and topics for fixed lengths."""
    n_topics, n_words, lengths = 2, 2, [2, 2]
    alpha, eta = np.array([0.4, 1.3]), 0.6
    doc_ptr = np.array([0, 2, 4], dtype=np.int64)
    total = 0.0
    for flat_words in itertools.product(range(n_words), repeat=sum(lengths)):
        words = np.array(flat_words, dtype=np.int32)
        for flat_z in itertools.product(range(n_topics), repeat=sum(lengths)):
            counts = count_matrices(doc_ptr, words, np.array(flat_z), n_topics, n_words)
            total += math.exp(collapsed_log_joint(*counts, alpha, eta))
    assert total == pytest.approx(1.0, rel=1e-12)


def dirichlet_multinomial_nll(log_alpha, n_dk):
    alpha = np.exp(log_alpha)
    lengths = n_dk.sum(axis=1)
    return -np.sum(math.lgamma(alpha.sum()) - np.vectorize(math.lgamma)(lengths + alpha.sum())
                   + np.sum(np.vectorize(math.lgamma)(n_dk + alpha)
                            - np.vectorize(math.lgamma)(alpha), axis=1))


def test_optimize_alpha_matches_scipy_maximum_likelihood():
    rng = np.random.default_rng(0)
    true_alpha = np.array([0.2, 0.5, 1.0, 2.0])
    n_dk = np.array([rng.multinomial(rng.integers(0, 60), rng.dirichlet(true_alpha))
                     for _ in range(300)])
    start = np.ones(4)
    fitted = optimize_alpha(n_dk, n_dk.sum(axis=1), start, n_iter=3000)
    reference = minimize(dirichlet_multinomial_nll, np.zeros(4), args=(n_dk,),
                         method="Nelder-Mead",
                         options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    assert np.allclose(fitted, np.exp(reference.x), rtol=1e-4)
    short = optimize_alpha(n_dk, n_dk.sum(axis=1), start, n_iter=20)
    assert (dirichlet_multinomial_nll(np.log(short), n_dk)
            < dirichlet_multinomial_nll(np.log(start), n_dk))


def test_sparse_list_width_does_not_change_the_chain():
    """The packed word lists are int32 for realistic counts; the int64 layout (for counts
    past 2^(31 - shift)) must give the same chain."""
    from latentkit.topics._gibbs_kernels import _sequential_sweeps
    from latentkit.topics._gibbs_sparse import list_layout

    n_topics, n_words = 40, 25
    doc_ptr, words = random_corpus()
    alpha = np.full(n_topics, 0.1)
    shift, dtype = list_layout(n_topics, len(words))
    assert dtype == np.int32 and list_layout(n_topics, 2**30)[1] == np.int64
    chains = []
    for width in [np.int32, np.int64]:
        state = fresh_state(doc_ptr, words, n_topics, n_words)
        _sequential_sweeps(doc_ptr, words, *state, alpha, 0.1, 3, 5, 0,
                           np.empty((n_words, n_topics), width),
                           np.full(n_words, -1, np.int32), shift,
                           state[2].sum(axis=1, dtype=np.int64),
                           log_joint_tables(alpha, 0.1, 100, 0)[0])
        chains.append(state[0])
    state = fresh_state(doc_ptr, words, n_topics, n_words)
    gibbs_sweeps(doc_ptr, words, *state, alpha, 0.1, 3, seed=5, sparse=True)
    assert np.array_equal(chains[0], chains[1]) and np.array_equal(chains[0], state[0])


def test_inconsistent_counts_are_rejected():
    doc_ptr, words = tiny_arrays()
    z, n_dk, n_wk, n_k = fresh_state(doc_ptr, words, 2, 3)
    n_wk[0, 0] += 1
    with pytest.raises(ValueError, match="count_matrices"):
        gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, TINY_ALPHA, 0.1, 1, 0)


def brute_doc_part(doc_ptr, z, n_topics, alpha):
    """Σ_d [log Γ(Σα) − log Γ(N_d + Σα) + Σ_k (log Γ(n_dk + α_k) − log Γ(α_k))] by loops."""
    total = 0.0
    for d in range(len(doc_ptr) - 1):
        topics = z[doc_ptr[d]:doc_ptr[d + 1]].tolist()
        total += math.lgamma(sum(alpha)) - math.lgamma(len(topics) + sum(alpha))
        for k in range(n_topics):
            total += math.lgamma(topics.count(k) + alpha[k]) - math.lgamma(alpha[k])
    return total


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("table_width", [None, 2])
def test_sweeps_return_the_documents_part_of_the_log_joint(sparse, n_threads, table_width):
    """The kernels sum the documents' part of log p(w, z) as each document ends (the fit's
    trace skips its dense pass over n_dk with it): it must equal the part of the final z,
    also for counts past the log-gamma table (table_width 2: every count >= 2 evaluated)."""
    from latentkit.topics._gibbs_kernels import run_sweeps

    n_topics, n_words = 34, 25  # SparseLDA by default, forced either way here
    doc_ptr, words = random_corpus()
    alpha = np.linspace(0.05, 0.6, n_topics)
    state = fresh_state(doc_ptr, words, n_topics, n_words)
    workspace = sweep_workspace(doc_ptr, state[2], n_threads, sparse)
    doc_table = log_joint_tables(alpha, 0.1, np.diff(doc_ptr).max(), 0)[0]
    if table_width is not None:
        doc_table = doc_table[:, :table_width]
        assert np.diff(doc_ptr).max() > n_topics  # some n_dk >= 2 (pigeonhole)
    for sweep in range(3):
        doc_part = run_sweeps(doc_ptr, words, *state, alpha, 0.1, 1, 9, sweep, workspace,
                              doc_table)
        expected = brute_doc_part(doc_ptr, state[0], n_topics, alpha)
        assert doc_part == pytest.approx(expected, rel=1e-12)
    assert np.isnan(run_sweeps(doc_ptr, words, *state, alpha, 0.1, 0, 9, 3, workspace,
                               doc_table))
    returned = gibbs_sweeps(doc_ptr, words, *state, alpha, 0.1, 2, seed=9, first_sweep=3,
                            n_threads=n_threads, sparse=sparse)
    assert returned == pytest.approx(brute_doc_part(doc_ptr, state[0], n_topics, alpha),
                                     rel=1e-12)


@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("n_topics, n_threads", [(40, 1), (40, 2), (10, 1)])
def test_fit_trace_is_the_log_joint_of_the_final_state(optimize, n_topics, n_threads):
    """history_[-1] is log p(w, z) / D of the chain's last state, with the α in force after
    the sweep (α re-estimated after the last sweep when optimize: the kernel's documents'
    part, computed with the sweep's α, must then not be used); the words' part comes from
    the sparse kernel's lists (40 topics, one thread) or from n_wk (the other cases)."""
    from latentkit.datasets import make_lda_corpus
    from latentkit.topics import LDA

    planted = make_lda_corpus(60, 40, 3, doc_length=30, alpha=0.2, eta=0.1, random_state=3)
    counts = planted.counts
    model = LDA(n_topics, method="gibbs", doc_topic_prior=0.2, topic_word_prior=0.1,
                max_iter=20, burn_in=4, optimize_alpha=optimize, n_threads=n_threads,
                random_state=0).fit(counts)
    doc_ptr, words = tokens_from_counts(counts.indptr, counts.indices, counts.data)
    z = model.em_state_.z
    doc_words = [words[a:b].tolist() for a, b in zip(doc_ptr[:-1], doc_ptr[1:])]
    alpha = model.doc_topic_prior_
    assert optimize == (not np.allclose(alpha, 0.2))
    expected = brute_log_joint(doc_words, split(z, doc_words), n_topics, counts.shape[1],
                               alpha.tolist(), 0.1)
    assert model.history_[-1] * counts.shape[0] == pytest.approx(expected, rel=1e-10)


def test_a_workspace_of_other_word_frequencies_is_rejected():
    """The workspace keeps the words' frequencies (its lists are checked against them): a
    corpus with the same documents and topics but other words must not reuse it."""
    n_topics, n_words = 40, 25
    doc_ptr, words = random_corpus()
    z, n_dk, n_wk, n_k = fresh_state(doc_ptr, words, n_topics, n_words)
    workspace = sweep_workspace(doc_ptr, n_wk, 1, True)
    other = (words + 1) % n_words
    z, n_dk, n_wk, n_k = fresh_state(doc_ptr, other, n_topics, n_words)
    with pytest.raises(ValueError, match="workspace"):
        gibbs_sweeps(doc_ptr, other, z, n_dk, n_wk, n_k, np.full(n_topics, 0.1), 0.1, 1, 0,
                     workspace=workspace)
