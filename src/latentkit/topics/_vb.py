"""LDA's variational EM as an `em.EMFamily`: the pure functions the engine iterates.

Mean-field variational Bayes (Blei, Ng & Jordan 2003, with the smoothed topics of their
section 5.4 and Hoffman, Blei & Bach 2010's notation):

    q(θ_d) = Dir(γ_d),   q(z_dn) = Cat(φ_dn),   q(β_k) = Dir(λ_k)

E-step (per document, `_vb_kernels.doc_topic_inference`): with E[log β_kw] = ψ(λ_kw) -
ψ(Σ_w λ_kw) fixed, iterate φ_dwk ∝ exp(E[log θ_dk] + E[log β_kw]) and
γ_dk = α_k + Σ_w n_dw φ_dwk to a fixed point. Its statistics add across chunks of
documents: s_kw = Σ_d n_dw φ_dwk, and Σ_d E[log θ_dk] for α's update.

M-step: λ_kw = η + s_kw (for online VB the engine blends s with step size ρ_t and scales
it to the corpus size first); optionally α by Newton's method on
D (log Γ(Σα) - Σ log Γ(α_k)) + Σ_k (α_k - 1) Σ_d E[log θ_dk], and η on
K (log Γ(Vη) - V log Γ(η)) + (η - 1) Σ_kw E[log β_kw] (`_dirichlet`).

Objective (a bound: the ELBO): Σ_d doc_bound_d (the E-step's, at the λ it ran at) plus the
topics' term E_q[log p(β | η)] - E_q[log q(β | λ)] (`global_bound`, in the `log_prior`
slot, which the engine adds once per pass). Exact coordinate updates never decrease it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import njit

from .. import em
from ..io import register_record
from ._corpus import csr_arrays
from ._dirichlet import newton_dirichlet, newton_symmetric
from ._special import dirichlet_expectation
from ._vb_kernels import (
    doc_gammas_and_weights,
    doc_topic_inference,
    exp_expected_topics,
    global_bound,
    minibatch_words,
    scatter_documents,
)


class TopicParams(NamedTuple):
    """topic_word : (K, V) λ, the Dirichlet parameters of q(β_k) (scikit-learn's
    components_); alpha : (K,) the document-topic prior; eta : float, the topic-word
    prior."""

    topic_word: np.ndarray
    alpha: np.ndarray
    eta: float


class TopicConfig(NamedTuple):
    """n_topics K; n_words V; alpha : (K,) and eta : the starting priors; optimize_alpha,
    optimize_eta : whether the M-step estimates them; max_doc_iter, doc_tol : the
    per-document fixed point's iterations and tolerance (mean |Δγ|); init : "kmeans" or
    "random", how λ starts (`init`)."""

    n_topics: int
    n_words: int
    alpha: np.ndarray
    eta: float
    optimize_alpha: bool
    optimize_eta: bool
    max_doc_iter: int
    doc_tol: float
    init: str = "kmeans"
    minibatch: bool = False


@register_record
@dataclass(frozen=True)
class TopicStats(em.SufficientStats):
    """n_docs : documents seen; topic_word : (K, V) Σ_d n_dw φ_dwk; elog_theta : (K,)
    Σ_d E[log θ_dk]."""

    additive: ClassVar[tuple[str, ...]] = ("n_docs", "topic_word", "elog_theta")
    n_docs: float
    topic_word: np.ndarray
    elog_theta: np.ndarray


def expected_topics(topic_word: np.ndarray, dtype=np.float64) -> np.ndarray:
    """exp(E[log β]) : (K, V) under q(β_k) = Dir(λ_k), in `dtype` (the E-step's)."""
    columns = np.arange(np.shape(topic_word)[1])
    return exp_expected_topics(topic_word, columns).astype(dtype, copy=False)


class _LastTopics:
    """exp(E[log β]) of the last λ the E-step saw: every chunk of one E-pass (and every
    block of a minibatch) runs at the same λ, and its K x V digammas cost as much as the
    documents' fixed points of a small chunk. Keyed by the λ array itself (its identity,
    held here so it cannot be recycled), one entry, thread-safe."""

    def __init__(self):
        self.lock, self.key, self.value = threading.Lock(), None, None

    def __call__(self, topic_word: np.ndarray, dtype) -> np.ndarray:
        with self.lock:
            if self.key is not None and self.key[0] is topic_word and self.key[1] == dtype:
                return self.value
            value = expected_topics(topic_word, dtype)
            self.key, self.value = (topic_word, np.dtype(dtype)), value
            return value


_last_topics = _LastTopics()


def infer_documents(X, exp_elog_beta: np.ndarray, alpha: np.ndarray, config: TopicConfig):
    """The per-document fixed point on a validated CSR chunk X : (n_docs, V) (from
    `check_counts`): (gamma (n_docs, K), sstats (K, V), doc_bound (n_docs,))."""
    indptr, indices, counts = csr_arrays(X)
    return doc_topic_inference(indptr, indices, counts,
                               exp_elog_beta, alpha.astype(np.float64),
                               config.max_doc_iter, config.doc_tol)


def seed_documents(X, n_topics: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (n_topics,) of documents of X : (n_docs, V) chosen by k-means++'s D²
    sampling (Arthur & Vassilvitskii 2007) in the Hellinger geometry: after a first
    document drawn at random, each next one with probability ∝ its squared distance to the
    nearest chosen, ||√p_d - √p_c||² = 2 - 2 Σ_w √(p_dw p_cw) (rows of √p have unit
    norm), one sparse product per pick. Empty documents are never chosen."""
    X = sp.csr_matrix(X, dtype=np.float64)
    lengths = np.asarray(X.sum(axis=1)).ravel()
    roots = sp.diags(1.0 / np.sqrt(np.maximum(lengths, 1.0))) @ X.sqrt()
    nearest = np.where(lengths > 0, 2.0, 0.0)  # squared distance to the nearest chosen
    chosen = []
    for _ in range(n_topics):
        weights = np.maximum(nearest, 0.0)
        total = weights.sum()
        pick = (rng.choice(len(weights), p=weights / total) if total > 0
                else int(rng.integers(len(weights))))
        chosen.append(pick)
        similarity = np.asarray(roots @ roots[pick].T.toarray()).ravel()
        nearest = np.minimum(nearest, 2.0 - 2.0 * similarity)
    return np.asarray(chosen)


def kmeans_topics(X, n_topics: int, rng: np.random.Generator, n_iter: int = 20) -> np.ndarray:
    """Starting topics (n_topics, V), rows summing to 1 (or 0 for an empty cluster): the
    mean word distribution of each cluster of k-means on the documents' √p (the Hellinger
    geometry), seeded by `seed_documents`, at most `n_iter` Lloyd iterations
    (`lloyd_labels`, compiled, one thread: scikit-learn's KMeans gives the same clusters
    several times slower on this small sparse problem). With a small α most documents are
    about one topic, so the clusters are close to the topics. X : (n_docs, V) counts."""
    X = sp.csr_matrix(X, dtype=np.float64)
    lengths = np.maximum(np.asarray(X.sum(axis=1)).ravel(), 1.0)
    words = (sp.diags(1.0 / lengths) @ X).tocsr()  # p_d : each document's word distribution
    roots = words.sqrt()
    seeds = roots[seed_documents(X, n_topics, rng)].toarray()
    labels = lloyd_labels(*csr_arrays(roots), seeds, n_iter)
    members = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))),
                            shape=(n_topics, len(labels)))
    sizes = np.maximum(np.asarray(members.sum(axis=1)).ravel(), 1.0)
    return np.asarray((sp.diags(1.0 / sizes) @ members @ words).todense())


@njit(cache=True, nogil=True)
def lloyd_labels(indptr, indices, values, seeds, n_iter):
    """Lloyd's k-means of the CSR rows x_d (n, V) from the centers seeds : (K, V): each
    iteration assigns every row to argmax_k 2 x_d·c_k - ||c_k||² (= argmin ||x_d - c_k||²,
    ties to the lowest k) and moves each non-empty cluster's center to its members' mean;
    stops when no label changes, or after n_iter assignments. Returns labels (n,) int64."""
    n_docs, (K, V) = indptr.shape[0] - 1, seeds.shape
    centers = np.ascontiguousarray(seeds.T)  # (V, K): a word's K coordinates together
    labels, scores, norms = np.full(n_docs, -1, dtype=np.int64), np.empty(K), np.empty(K)
    for _ in range(n_iter):
        for k in range(K):
            norms[k] = np.sum(centers[:, k] ** 2)
        changed = False
        for d in range(n_docs):
            scores[:] = 0.0
            for j in range(indptr[d], indptr[d + 1]):
                for k in range(K):
                    scores[k] += values[j] * centers[indices[j], k]
            best = 0
            for k in range(K):
                scores[k] = 2.0 * scores[k] - norms[k]
                if scores[k] > scores[best]:
                    best = k
            changed |= best != labels[d]
            labels[d] = best
        if not changed:
            break
        sums, sizes = np.zeros((V, K)), np.zeros(K)
        for d in range(n_docs):
            sizes[labels[d]] += 1.0
            for j in range(indptr[d], indptr[d + 1]):
                sums[indices[j], labels[d]] += values[j]
        for k in range(K):
            if sizes[k] > 0:
                centers[:, k] = sums[:, k] / sizes[k]
    return labels


def init(X_sample, rng: np.random.Generator, config: TopicConfig, restart: int):
    """λ_k ~ Gamma(100, 1/100) entrywise (Hoffman et al.'s and scikit-learn's start:
    topics near uniform, random tilts to break the symmetry), plus, for init="kmeans", V
    times the word distribution of k-means cluster k (`kmeans_topics`: a tilt with the mass
    of the noise). Measured on three planted corpora (5 seeds each; held-out perplexity
    over the true model's): k-means 1.004-1.161, the random start 1.007-1.208, k-means++
    seeds alone 1.004-1.228; the random start fell into a merged-and-split optimum most
    often."""
    K, V = config.n_topics, config.n_words
    topic_word = rng.gamma(100.0, 0.01, size=(K, V))
    if config.init == "kmeans" and X_sample is not None and X_sample.shape[0] >= K:
        topic_word += V * kmeans_topics(X_sample, K, rng)
    return TopicParams(topic_word, config.alpha.copy(), float(config.eta)), None


def e_step(params: TopicParams, state, config: TopicConfig, X):
    """Statistics of a chunk X : (n_docs, V) and its summed document bounds. A minibatch
    (config.minibatch) needs exp(E[log β]) only at its U distinct words, and the documents'
    fixed points run on the thread pool (`_minibatch_inference`)."""
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    if not config.minibatch:
        gamma, sstats, doc_bound = infer_documents(
            X, _last_topics(params.topic_word, dtype), params.alpha, config)
    else:
        gamma, sstats, doc_bound = _minibatch_inference(X, params, config, dtype)
    elog_theta = dirichlet_expectation(gamma.astype(np.float64)).sum(axis=0)
    stats = TopicStats(float(X.shape[0]), sstats.astype(np.float64, copy=False), elog_theta)
    return stats, float(doc_bound.sum(dtype=np.float64))


def _minibatch_inference(X, params: TopicParams, config: TopicConfig, dtype):
    """`infer_documents` of a CSR minibatch X : (n_docs, V) on its U distinct words only:
    exp(E[log β]) : (K, U) (`exp_expected_topics`), the fixed points and each document's
    weights and bound on threads (`_threaded_documents`), the statistics (K, U) added in
    document order (`scatter_documents`), scattered into (K, V)."""
    indptr, indices, counts = csr_arrays(X)
    columns, local = minibatch_words(indices, X.shape[1])
    exp_elog_beta = exp_expected_topics(params.topic_word, columns).astype(dtype, copy=False)
    alpha = np.asarray(params.alpha, dtype=np.float64)
    gamma, t_doc, word_ratio, doc_bound = _threaded_documents(indptr, local, counts,
                                                              exp_elog_beta, alpha, config)
    compact = np.zeros((config.n_topics, len(columns)), dtype=dtype)
    scatter_documents(indptr, local, exp_elog_beta, t_doc, word_ratio, compact)
    sstats = np.zeros((config.n_topics, X.shape[1]))
    sstats[:, columns] = compact
    return gamma, sstats, doc_bound


#: a thread of `_threaded_documents` gets at least this many documents
MIN_THREAD_DOCS = 16


def _threaded_documents(indptr, indices, counts, exp_elog_beta, alpha, config):
    """(γ : (n_docs, K), t : (n_docs, K), word ratios : (nnz,), doc_bound : (n_docs,)), all
    float64, of the CSR documents (`doc_gammas_and_weights`), in contiguous ranges of about
    equal token entries on up to `em.num_threads()` threads (this one and a pool kept
    between calls). Each document's outputs depend on it alone: the same result for any
    thread count."""
    n_docs, workers = indptr.shape[0] - 1, em.num_threads()
    gamma, t_doc = np.empty((n_docs, config.n_topics)), np.empty((n_docs, config.n_topics))
    word_ratio, doc_bound = np.empty(indices.shape[0]), np.empty(n_docs)
    threads = max(1, min(workers, n_docs // MIN_THREAD_DOCS))
    cuts = np.searchsorted(indptr, indptr[-1] * np.arange(1, threads) / threads)
    edges = [0, *np.unique(np.clip(cuts, 1, n_docs - 1)).tolist(), n_docs]
    ranges = [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]

    def run(bounds):
        doc_gammas_and_weights(indptr, indices, counts, exp_elog_beta, alpha,
                               config.max_doc_iter, config.doc_tol, gamma, t_doc, word_ratio,
                               doc_bound, *bounds)

    # the first range on this thread, the others on the pool: handed every range, the pool
    # ran them one after another on a single worker (measured in `fit`: no speed-up)
    others = [_thread_pool(workers).submit(run, bounds) for bounds in ranges[1:]]
    run(ranges[0])
    for future in others:
        future.result()
    return gamma, t_doc, word_ratio, doc_bound


_pool_lock, _pool = threading.Lock(), [None, 0]


def _thread_pool(threads: int) -> ThreadPoolExecutor:
    """A ThreadPoolExecutor of `threads` workers, kept between minibatches (a pool per call
    costs more than a small minibatch's E-step)."""
    with _pool_lock:
        if _pool[1] != threads:
            if _pool[0] is not None:
                _pool[0].shutdown(wait=False)
            _pool[:] = [ThreadPoolExecutor(threads, thread_name_prefix="latentkit-vb"),
                        threads]
        return _pool[0]


def m_step(stats: TopicStats, params: TopicParams, state, config: TopicConfig):
    """λ = η + s, then α and η by Newton's method where asked (module docstring)."""
    eta = params.eta
    topic_word = eta + stats.topic_word
    alpha = params.alpha
    # with one topic θ = 1 whatever α (and with one word β = 1 whatever η): nothing to fit
    if config.optimize_alpha and stats.n_docs > 0 and config.n_topics > 1:
        alpha = newton_dirichlet(stats.elog_theta, stats.n_docs, alpha)
    if config.optimize_eta and config.n_words > 1:
        s_total = float(dirichlet_expectation(topic_word).sum())
        eta = float(newton_symmetric(s_total, config.n_topics, config.n_words, eta))
        topic_word = eta + stats.topic_word
    return TopicParams(topic_word, alpha, eta), state, em.NOTHING


def initial_online_state(params: TopicParams, total_rows: int) -> em.OnlineState:
    """Online VB's running statistics that reproduce the initial λ, so that its first step
    keeps it with weight 1 - ρ_1, as Hoffman, Blei & Bach's λ_t = (1 - ρ_t) λ_{t-1} + ρ_t λ̂:
    per document, s_0 = max(λ_0 - η, 0) / D (statistics are counts: never negative, so λ
    stays above η even when η is re-estimated), and E[log θ] under the prior Dir(α) (whose
    Newton estimate is α itself)."""
    alpha = np.asarray(params.alpha, dtype=np.float64)
    topic_word = np.maximum(np.asarray(params.topic_word) - params.eta, 0.0) / float(total_rows)
    elog_theta = dirichlet_expectation(alpha[None])[0]
    return em.OnlineState(TopicStats(1.0, topic_word, elog_theta), 0, 0)


def log_prior(params: TopicParams, config: TopicConfig) -> float:
    """The topics' share of the ELBO: Σ_k E_q[log p(β_k | η)] - E_q[log q(β_k | λ_k)]."""
    return float(global_bound(params.topic_word, params.eta))


VB_FAMILY = em.EMFamily(
    init, e_step, m_step, log_prior=log_prior, objective=em.BOUND,
    remedy="tighten doc_tol (the per-document tolerance), or fit in float64")


__all__ = ["VB_FAMILY", "TopicConfig", "TopicParams", "TopicStats", "expected_topics",
           "infer_documents", "initial_online_state"]
