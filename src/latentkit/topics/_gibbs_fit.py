"""Fitting LDA by collapsed Gibbs sampling (Griffiths & Steyvers 2004), and inferring the
topic proportions of new documents with the topics fixed.

The chain's state is the topic of every token (`GibbsChain.z`, in the order
`tokens_from_counts` lists a corpus's tokens) and the count matrices that follow from it.
A run makes `max_iter` sweeps (`_gibbs_kernels.gibbs_sweeps`: sweep s of block b draws from
stream(seed, s * n_threads + b), so a chain continued by a warm start is the same chain);
after `burn_in` sweeps, every `thin`-th sweep's word-topic counts are kept, and the topics'
Dirichlet parameters are η + their mean (components_), φ their normalization:

    φ_kw = (n̄_kw + η) / (n̄_k + V η)

A fresh chain starts (`initial_topics`, LDA's gibbs_init) from the variational methods'
k-means topics φ0 by default, each document's tokens drawn left to right given them,
z_i ∝ (n_dk^<i + α_k) φ0_kw (`kmeans_assignments`). From a uniform start (Griffiths &
Steyvers'; "uniform") a chain must break the symmetry of K interchangeable topics, and it
often breaks it into merged and split topics that it keeps for hundreds of sweeps; from
the k-means start it does less often (issue 13's synthetic corpus, K = 20, 200 sweeps, 20
seeds: held-out perplexity 1321 ± 20, 14 seeds at the best mode's 1308-1311, against
1339 ± 31 and 7 seeds from a uniform start; on AP, K = 20, 5 seeds: 2847 ± 16 against
2890 ± 22; no change at K = 200). The o-LDA start (each token from the collapsed
conditional given the tokens before it, Canini, Shi & Griffiths 2009) was tried too: no
better than uniform (12 seeds, 1341 ± 25). The k-means start costs about as much as the
variational methods' (measured: 1.2-1.6 s of CPU on AP at K = 200, some 40 sweeps; 0.3 s,
some 10 sweeps, on the synthetic corpus at K = 20); it does not change a sweep's cost.

With optimize_alpha, α is re-estimated every `ALPHA_EVERY` sweeps once the burn-in is half
done (Minka's fixed point on the document-topic counts; Wallach et al. 2009's asymmetric
prior). history_ records log p(w, z | α, η) per document after each sweep (the collapsed
joint, Griffiths & Steyvers' trace of convergence): it is not a bound and need not rise.
It costs about 2% of a sweep (the documents' part summed by the sweep kernel as each
document ends, the topics' part in one compiled pass over n_wk with tabulated log-gamma
terms, `collapsed_log_joint`), so every sweep keeps its value.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numba
import numpy as np
from scipy.special import gammaln

from .. import em
from .._validation import as_generator
from ..exceptions import InvalidInputError
from ..io import register_record
from ._corpus import csr_arrays
from ._gibbs_kernels import (
    FAST,
    INIT_STREAM,
    count_matrices,
    fixed_topics_draw,
    fixed_topics_inference,
    initial_assignments,
    log_joint_tables,
    optimize_alpha,
    run_sweeps,
    sweep_workspace,
    tokens_from_counts,
)
from ._gibbs_sparse import list_count_terms
from ._rng import seed_from, stream
from ._vb import TopicParams
from ._vb import init as variational_start

#: sweeps between two re-estimations of α (Mallet's default interval)
ALPHA_EVERY = 10
#: how a fresh chain starts (LDA(gibbs_init=...)): see `initial_topics`
STARTS = ("kmeans", "uniform")


@numba.njit(cache=True, nogil=True)
def _doc_part(n_dk, alpha, doc_table):
    """Σ_d [log Γ(Σα) − log Γ(N_d + Σα) + Σ_k (log Γ(n_dk + α_k) − log Γ(α_k))], one dense
    pass over n_dk : (D, K)."""
    n_docs, n_topics = n_dk.shape
    alpha_sum = alpha.sum()
    total = n_docs * math.lgamma(alpha_sum)
    for d in range(n_docs):
        length = 0
        for k in range(n_topics):
            count = n_dk[d, k]
            length += count
            if count < doc_table.shape[1]:
                total += doc_table[k, count]
            else:
                total += math.lgamma(count + alpha[k]) - math.lgamma(alpha[k])
        total -= math.lgamma(length + alpha_sum)
    return total


@numba.njit(cache=True, nogil=True)
def _word_count_terms(n_wk, eta, word_table):
    """Σ_w Σ_k [log Γ(n_wk + η) − log Γ(η)], one dense pass over n_wk : (V, K)."""
    total = 0.0
    word_lgamma_eta = math.lgamma(eta)
    for w in range(n_wk.shape[0]):
        for k in range(n_wk.shape[1]):
            count = n_wk[w, k]
            if count < word_table.shape[0]:
                total += word_table[count]
            else:
                total += math.lgamma(count + eta) - word_lgamma_eta
    return total


def collapsed_log_joint(n_dk, n_wk, n_k, alpha, eta, tables=None, doc_part=None,
                        word_part=None):
    """log p(w, z) of the token sequence and its topics, θ and φ integrated out:

        Σ_d [log Γ(Σα) − log Γ(N_d + Σα) + Σ_k (log Γ(n_dk + α_k) − log Γ(α_k))]
      + Σ_k [log Γ(Vη) − log Γ(n_k + Vη) + Σ_w (log Γ(n_wk + η) − log Γ(η))]

    (the Dirichlet-multinomial closed form per document and per topic), in compiled passes
    whose count terms are read from `log_joint_tables` (a zero count adds 0): about a
    millisecond at D = 4500, V = 5000, K = 200. n_dk : (D, K) int32, n_wk : (V, K) int32,
    n_k : (K,) int64, alpha : (K,), eta > 0; tables: log_joint_tables(alpha, eta, ...) of
    these α and η, to reuse across calls (None: built for the largest counts here).
    doc_part (the first line) and word_part (Σ_w Σ_k [log Γ(n_wk + η) − log Γ(η)]) when
    known skip their passes over n_dk and n_wk: run_sweeps returns the first for the state
    it leaves, list_count_terms gives the second from the sparse kernel's word lists.
    """
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    if tables is None:
        tables = log_joint_tables(alpha, eta, n_dk.max(initial=0), n_wk.max(initial=0))
    doc_table, word_table = tables
    if doc_part is None:
        doc_part = _doc_part(n_dk, alpha, doc_table)
    if word_part is None:
        word_part = _word_count_terms(n_wk, np.float64(eta), word_table)
    v_eta = n_wk.shape[0] * eta
    topic_norms = n_k.shape[0] * gammaln(v_eta) - gammaln(n_k + v_eta).sum()
    return float(doc_part + word_part + topic_norms)


@register_record
@dataclass(frozen=True)
class GibbsChain:
    """A collapsed Gibbs chain, saved with the model so that a warm start continues it.

    z : (N,) int32 topic of each token; seed : the chain's stream seed; sweeps : sweeps
    done; kept : (K, V) float64 sum of the kept sweeps' word-topic counts; n_kept : how
    many sweeps were kept.
    """

    z: np.ndarray
    seed: int
    sweeps: int
    kept: np.ndarray
    n_kept: int


class _Chain:
    """The working state of a run: tokens, assignments and counts (updated in place)."""

    def __init__(self, counts, config, chain: GibbsChain, n_threads: int):
        self.doc_ptr, self.words = tokens_from_counts(*csr_arrays(counts))
        if len(chain.z) != len(self.words):
            raise InvalidInputError(
                f"warm_start continues the Gibbs chain of the corpus it was fitted on "
                f"({len(chain.z)} tokens); this corpus has {len(self.words)}. Fit it afresh "
                "(warm_start=False).")
        self.z = chain.z.copy()
        self.n_dk, self.n_wk, self.n_k = count_matrices(
            self.doc_ptr, self.words, self.z, config.n_topics, config.n_words)
        self.lengths = np.diff(self.doc_ptr)
        # counts built from z by count_matrices are valid by construction: the sweeps run
        # unchecked (run_sweeps) on buffers reused from sweep to sweep
        self.workspace = sweep_workspace(self.doc_ptr, self.n_wk, n_threads)
        self.max_word_count = int(self.n_wk.sum(axis=1).max(initial=0))

    def word_part(self, eta, word_table):
        """Σ_w Σ_k [log Γ(n_wk + η) − log Γ(η)] from the sparse kernel's word lists when one
        block (sequential) keeps them after its sweep; None otherwise (dense pass)."""
        ws = self.workspace
        if ws.block_ptr.shape[0] != 2 or ws.word_lists.shape[1] == 0:
            return None
        return list_count_terms(ws.word_lists[0], ws.word_nnz[0], np.int64(ws.shift),
                                word_table, np.float64(eta))

    def log_joint_tables(self, alpha, eta):
        """The log-gamma tables of collapsed_log_joint for α and η (rebuilt when α moves)."""
        return log_joint_tables(alpha, eta, self.lengths.max(initial=0), self.max_word_count)


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _fixed_topics_sequential(doc_ptr, words, phi_wk, alpha, seed, z, doc_counts, cumulative):
    """Fill z : (N,) int32 token by token, z_i ∝ (n_dk^<i + α_k) φ_kw with phi_wk : (V, K)
    word-major φ; doc_counts : (K,) int64 and cumulative : (K,) float64 work space."""
    state = stream(seed, INIT_STREAM)
    n_topics = alpha.shape[0]
    for d in range(doc_ptr.shape[0] - 1):
        doc_counts[:] = 0
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            topic = fixed_topics_draw(state, doc_counts, alpha, phi_wk[words[i]], cumulative,
                                      n_topics)
            z[i] = topic
            doc_counts[topic] += 1


def fixed_topics_sequential(doc_ptr, words, phi, alpha, seed):
    """Topics z : (N,) int32 of the tokens words : (N,) int32 (documents doc_ptr : (D + 1,)
    int64) drawn one token at a time with the topics fixed, phi : (K, V) (non-negative,
    Σ_k φ_kw > 0 for every word present), alpha : (K,) > 0:

        z_i ~ p(z_i = k | z_<i in its document, φ) ∝ (n_dk^<i + α_k) φ_kw,

    θ_d integrated out (the left-to-right draw of Wallach et al. 2009 given φ, one
    particle). One dense pass, from stream(seed, INIT_STREAM)."""
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    phi_wk = np.ascontiguousarray(np.asarray(phi, dtype=np.float64).T)
    if phi_wk.ndim != 2 or alpha.shape != (phi_wk.shape[1],) or np.any(phi_wk < 0) or (
            not np.all(alpha > 0)):
        raise ValueError(f"phi must be (K, V) non-negative and alpha (K,) positive, got "
                         f"{phi_wk.shape[::-1]} and {alpha.shape}")
    if words.size and words.max() >= phi_wk.shape[0]:
        raise ValueError(f"word ids must lie in [0, {phi_wk.shape[0]}), got max {words.max()}")
    z = np.empty(words.shape[0], dtype=np.int32)
    _fixed_topics_sequential(np.ascontiguousarray(doc_ptr, dtype=np.int64),
                             np.ascontiguousarray(words, dtype=np.int32), phi_wk, alpha,
                             np.int64(seed), z, np.zeros(alpha.shape[0], np.int64),
                             np.empty(alpha.shape[0]))
    return z


def kmeans_assignments(counts, doc_ptr, words, config, seed):
    """Topics z : (N,) int32 seeded by the variational methods' start (`_vb.init`,
    init="kmeans"): φ0 : (K, V) the normalized λ0, near-uniform topics each tilted towards
    the mean word distribution of one cluster of Hellinger k-means on the documents
    (k-means++ seeds; on at most INIT_DOCS documents drawn at random), then each document's
    tokens drawn left to right with the topics fixed at φ0 (`fixed_topics_sequential`):

        z_i ~ (n_dk^<i + α_k) φ0_kw / Σ_j (n_dj^<i + α_j) φ0_jw.

    With a small α most documents are about one or a few topics, so the clusters are close
    to the topics, and the chain starts in the basin of the topics rather than breaking a
    uniform start's symmetry into merged and split topics, which it then keeps for hundreds
    of sweeps (measured: see the issue 13 report). Costs k-means plus one dense pass
    (fewer documents than topics: no k-means, φ0 the near-uniform noise alone).
    Reproducible per seed and the same for every number of threads (both on one thread).
    counts : (D, V) sparse; doc_ptr, words : its tokens; config : TopicConfig (K, V, α)."""
    from .lda import INIT_DOCS

    rng = np.random.default_rng(seed)
    sample = counts
    if counts.shape[0] > INIT_DOCS:
        sample = counts[np.sort(rng.choice(counts.shape[0], INIT_DOCS, replace=False))]
    start, _ = variational_start(sample, rng, config._replace(init="kmeans"), 0)
    phi = start.topic_word / start.topic_word.sum(axis=1, keepdims=True)
    return fixed_topics_sequential(doc_ptr, words, phi, config.alpha, seed)


def initial_topics(counts, doc_ptr, words, config, seed, start="kmeans"):
    """The topics z : (N,) int32 a fresh chain starts from, for the corpus counts : (D, V)
    with tokens doc_ptr, words: "kmeans" (`kmeans_assignments`, the default) or "uniform"
    (`initial_assignments`: each token's topic uniform on 0..K-1, Griffiths & Steyvers'
    start). config: the model's TopicConfig (K, V, α, η)."""
    if start == "kmeans":
        return kmeans_assignments(counts, doc_ptr, words, config, seed)
    if start == "uniform":
        return initial_assignments(doc_ptr, words, config.n_topics, seed)
    raise ValueError(f"start must be one of {STARTS}, got {start!r}")


def _start(model, counts, config, warm: bool) -> tuple[GibbsChain, np.ndarray, float]:
    """(chain record, α, η) a run starts from: the saved chain, or fresh assignments
    (`initial_topics` with the model's gibbs_init)."""
    if warm:
        return model.em_state_, model.doc_topic_prior_.copy(), float(model.topic_word_prior_)
    seed = seed_from(as_generator(model.random_state))
    doc_ptr, words = tokens_from_counts(*csr_arrays(counts))
    z = initial_topics(counts, doc_ptr, words, config, seed, model.gibbs_init)
    kept = np.zeros((config.n_topics, config.n_words))
    return GibbsChain(z, seed, 0, kept, 0), config.alpha.copy(), float(config.eta)


def _burn_in(model, max_iter: int) -> int:
    return max_iter // 2 if model.burn_in is None else model.burn_in


def fit(model, counts, config, warm: bool):
    """Run the chain for max_iter sweeps and store the model (see the module docstring)."""
    record, alpha, eta = _start(model, counts, config, warm)
    chain = _Chain(counts, config, record, model.n_threads)
    max_iter, burn_in = model._max_iter, _burn_in(model, model._max_iter)
    # the kept sum in n_wk's word-major layout (V, K): a contiguous add per kept sweep
    # (a transposed one costs twice as much), transposed back once at the end
    kept_wk, n_kept, history = np.ascontiguousarray(record.kept.T), record.n_kept, []
    stop, start = "max_iter", time.perf_counter()
    tables = chain.log_joint_tables(alpha, eta)
    with em.progress_bar(max_iter, "Gibbs", model._progress_delay()) as bar:
        for sweep in range(record.sweeps, record.sweeps + max_iter):
            try:
                doc_part = run_sweeps(chain.doc_ptr, chain.words, chain.z, chain.n_dk,
                                      chain.n_wk, chain.n_k, alpha, eta, 1, record.seed, sweep,
                                      chain.workspace, tables[0])
            except KeyboardInterrupt:
                warnings.warn(f"Gibbs sampling interrupted during sweep {sweep + 1}; keeping "
                              "the chain's state before it.", em.ConvergenceWarning,
                              stacklevel=3)
                stop = "interrupted"
                break
            done = sweep + 1
            if (model.optimize_alpha and config.n_topics > 1 and done >= burn_in // 2
                    and done % ALPHA_EVERY == 0):
                alpha = optimize_alpha(chain.n_dk, chain.lengths, alpha)
                tables = chain.log_joint_tables(alpha, eta)
                doc_part = None  # the kernel's value is for the α of the sweep
            if done > burn_in and (done - burn_in) % model.thin == 0:
                kept_wk += chain.n_wk
                n_kept += 1
            history.append(collapsed_log_joint(
                chain.n_dk, chain.n_wk, chain.n_k, alpha, eta, tables, doc_part,
                chain.word_part(eta, tables[1])) / max(len(chain.lengths), 1))
            bar.update(1)
            reason = _stop_reason(model, done, history, alpha, eta, chain, start)
            if reason:
                stop = reason
                break
    kept = np.ascontiguousarray(kept_wk.T)
    mean = kept / n_kept if n_kept else chain.n_wk.T.astype(np.float64)
    state = GibbsChain(chain.z, record.seed, record.sweeps + len(history), kept, n_kept)
    model._store_fit(TopicParams(eta + mean, alpha, eta), state, counts.dtype,
                     converged=stop == "max_iter", n_iter=len(history), history=history,
                     stop_reason="sweeps" if stop == "max_iter" else stop)
    model.__dict__.pop("online_state_", None)
    return model


def _stop_reason(model, done: int, history, alpha, eta, chain, start: float) -> str | None:
    """The callbacks and the max_time budget after a sweep: "callback" or "max_time" to
    stop, None to go on. A callback sees the current sweep's topics (η + n_wk)."""
    elapsed = time.perf_counter() - start
    if model.callbacks:
        params = TopicParams(eta + chain.n_wk.T.astype(np.float64), alpha.copy(), eta)
        change = history[-1] - history[-2] if len(history) > 1 else np.inf
        step = em.EMIteration(done, history[-1], change, params, elapsed, model,
                              tuple(history))
        if any(cb(step) is True for cb in model.callbacks):
            return "callback"
    if model.max_time is not None and elapsed > model.max_time:
        return "max_time"
    return None


def infer_gamma(model, counts) -> np.ndarray:
    """γ : (n_docs, K) = α + the expected topic counts of each document under the
    fixed-topics sampler (`TRANSFORM_BURN_IN` sweeps, then the mean over
    `TRANSFORM_SAMPLES`), seeded by the model's chain: the same documents always get the
    same proportions."""
    from .lda import TRANSFORM_BURN_IN, TRANSFORM_SAMPLES

    doc_ptr, words = tokens_from_counts(*csr_arrays(counts))
    alpha = model.doc_topic_prior_
    theta = fixed_topics_inference(doc_ptr, words, model.topic_word_.astype(np.float64), alpha,
                                   TRANSFORM_BURN_IN, TRANSFORM_SAMPLES, model.em_state_.seed)
    lengths = np.diff(doc_ptr).astype(np.float64)
    return theta * (lengths + alpha.sum())[:, None]


__all__ = [
    "STARTS", "GibbsChain", "collapsed_log_joint", "fit", "infer_gamma", "initial_topics",
    "log_joint_tables", "fixed_topics_sequential", "kmeans_assignments",
]
