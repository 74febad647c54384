"""Collapsed Gibbs sampling for latent Dirichlet allocation (Griffiths & Steyvers 2004).

With θ_d ~ Dir(α) and φ_k ~ Dir(η) integrated out, the state is the topic z_i of every token
and the counts n_dk (document d, topic k), n_wk (word w, topic k), n_k = Σ_w n_wk. Token i of
document d with word w is resampled from

    p(z_i = k | z_-i, w) ∝ (n_dk^-i + α_k) (n_wk^-i + η) / (n_k^-i + Vη)

(counts without token i). The dense kernel evaluates all K terms; the sparse kernel
(`_gibbs_sparse`, SparseLDA) draws from the same distribution at a cost of the non-zero counts.

Parallel sweeps follow AD-LDA (Newman, Asuncion, Smyth & Welling 2009): documents are split
into contiguous blocks with balanced token counts, each block sweeps against private copies of
n_wk and n_k, and after the sweep n_wk += Σ_b (n_wk^(b) − n_wk^before) (likewise n_k). Block b
of sweep s draws from `stream(seed, s * n_blocks + b)`, so the output depends on the seed and
the number of blocks only, never on thread scheduling. With one block the kernel is the exact
sequential sampler.

Arrays: doc_ptr : (D + 1,) int64 token offsets of the documents, words : (N,) int32,
z : (N,) int32, n_dk : (D, K) int32, n_wk : (V, K) int32 (word-major rows, the sampler reads
one word's K counts at a time), n_k : (K,) int64, alpha : (K,) float64, eta > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy.special import psi

from latentkit.topics._gibbs_sparse import (
    FAST,
    build_word_topic_lists,
    doc_count_term,
    list_layout,
    log_joint_tables,
    sparse_block_sweep,
    unpack_word_topic_lists,
)
from latentkit.topics._rng import next_double, stream

# stream number of the initial assignments: far from the sweep streams s * n_blocks + b
INIT_STREAM = 2**62
# from this many topics on SparseLDA is faster than the dense kernel (measured crossover at
# K ≈ 24-28 on a synthetic corpus with V = 5000, α = 0.1, η = 0.05; see the issue 13 report)
SPARSE_MIN_TOPICS = 32


@numba.njit(cache=True, nogil=True)
def _tokens_from_counts(indptr, indices, counts):
    n_docs = indptr.shape[0] - 1
    doc_ptr = np.zeros(n_docs + 1, dtype=np.int64)
    for d in range(n_docs):
        total = 0
        for j in range(indptr[d], indptr[d + 1]):
            total += np.int64(counts[j])
        doc_ptr[d + 1] = doc_ptr[d] + total
    words = np.empty(doc_ptr[n_docs], dtype=np.int32)
    position = 0
    for j in range(indptr[n_docs]):
        for _ in range(np.int64(counts[j])):
            words[position] = indices[j]
            position += 1
    return doc_ptr, words


def tokens_from_counts(indptr, indices, counts):
    """Expand a CSR count matrix into a token list.

    indptr : (D + 1,) int64, indices : (nnz,) int32 word ids, counts : (nnz,) positive
    integer-valued float64. Returns doc_ptr : (D + 1,) int64 (document d owns tokens
    doc_ptr[d]..doc_ptr[d+1]-1) and words : (N,) int32, N = Σ counts.
    """
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    counts = np.ascontiguousarray(counts, dtype=np.float64)
    if indptr.ndim != 1 or indptr.shape[0] < 1 or indptr[-1] != indices.shape[0]:
        raise ValueError(f"indptr must be (n_docs + 1,) ending at nnz={indices.shape[0]}")
    if counts.shape != indices.shape:
        raise ValueError(f"counts must have shape {indices.shape}, got {counts.shape}")
    if counts.size and (counts.min() <= 0 or not np.all(counts == np.round(counts))):
        raise ValueError("counts must be positive integers (a document-term count matrix)")
    return _tokens_from_counts(indptr, indices, counts)


@numba.njit(cache=True, nogil=True)
def _initial_assignments(n_tokens, n_topics, seed):
    state = stream(seed, INIT_STREAM)
    z = np.empty(n_tokens, dtype=np.int32)
    for i in range(n_tokens):
        z[i] = min(np.int32(next_double(state) * n_topics), n_topics - 1)
    return z


def initial_assignments(doc_ptr, words, n_topics, seed):
    """Uniform random topics z : (N,) int32 for the tokens words : (N,) (doc_ptr : (D + 1,)
    only fixes N's layout); drawn from stream(seed, INIT_STREAM)."""
    if n_topics < 1:
        raise ValueError(f"n_topics must be >= 1, got {n_topics}")
    return _initial_assignments(np.int64(words.shape[0]), np.int64(n_topics), np.int64(seed))


@numba.njit(cache=True, nogil=True)
def _count_matrices(doc_ptr, words, z, n_topics, n_words):
    n_docs = doc_ptr.shape[0] - 1
    n_dk = np.zeros((n_docs, n_topics), dtype=np.int32)
    n_wk = np.zeros((n_words, n_topics), dtype=np.int32)
    n_k = np.zeros(n_topics, dtype=np.int64)
    for d in range(n_docs):
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            n_dk[d, z[i]] += 1
            n_wk[words[i], z[i]] += 1
            n_k[z[i]] += 1
    return n_dk, n_wk, n_k


def count_matrices(doc_ptr, words, z, n_topics, n_words):
    """The counts of the assignments z : (N,) int32: n_dk : (D, K) int32, n_wk : (V, K) int32,
    n_k : (K,) int64, with K = n_topics and V = n_words."""
    z = np.ascontiguousarray(z, dtype=np.int32)
    if z.shape != words.shape:
        raise ValueError(f"z must have shape {words.shape}, got {z.shape}")
    if z.size and (z.min() < 0 or z.max() >= n_topics):
        raise ValueError(f"z must lie in [0, {n_topics}), got [{z.min()}, {z.max()}]")
    if words.size and words.max() >= n_words:
        raise ValueError(f"word ids must lie in [0, {n_words}), got max {words.max()}")
    return _count_matrices(doc_ptr, words, z, np.int64(n_topics), np.int64(n_words))


@numba.njit(inline="always")
def _inverse_cdf_draw(state, cumulative, n_topics):
    """The topic k of a draw u ~ U(0, c_{K-1}) with c_{k-1} <= u < c_k, from the running
    sums cumulative : (>= K,) of K unnormalized probabilities (first k with c_k > u)."""
    u = next_double(state) * cumulative[n_topics - 1]
    topic = 0
    while topic < n_topics - 1 and cumulative[topic] <= u:
        topic += 1
    return topic


@numba.njit(inline="always", fastmath=FAST)
def fixed_topics_draw(state, counts, alpha, word_row, cumulative, n_topics):
    """One token's topic with the topics fixed: k ~ (counts_k + α_k) φ_kw, word_row : (K,)
    the word's φ_·w, counts : (K,) its document's other tokens' topics; cumulative : (K,)
    work space (`_inverse_cdf_draw`)."""
    total = 0.0
    for k in range(n_topics):
        total += (counts[k] + alpha[k]) * word_row[k]
        cumulative[k] = total
    return _inverse_cdf_draw(state, cumulative, n_topics)


@numba.njit(cache=True, nogil=True, fastmath=FAST, _nrt=False)
def dense_block_sweep(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, doc_lo, doc_hi, state,
                      scratch, doc_table):
    """One dense collapsed Gibbs sweep over documents doc_lo..doc_hi-1, in place on z, n_dk,
    n_wk, n_k; ι_k = 1 / (n_k + Vη) is cached and refreshed for the two topics a token
    changes. Draws one uniform per token from `state` : (1,) uint64 (inverse-CDF search).
    scratch : (2, K) float64 work space (compiled without reference counting, _nrt=False:
    a row view per token costs no atomic increment). Returns the documents' part of the
    collapsed log joint after the sweep (see sparse_block_sweep; doc_table : (K, A))."""
    n_words, n_topics = n_wk.shape
    v_eta = n_words * eta
    inv_nk = scratch[0]
    cumulative = scratch[1]
    alpha_sum = alpha.sum()
    doc_part = (doc_hi - doc_lo) * math.lgamma(alpha_sum)
    for k in range(n_topics):
        inv_nk[k] = 1.0 / (n_k[k] + v_eta)
    for d in range(doc_lo, doc_hi):
        doc_row = n_dk[d]
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            word_row = n_wk[words[i]]
            topic = z[i]
            doc_row[topic] -= 1
            word_row[topic] -= 1
            n_k[topic] -= 1
            inv_nk[topic] = 1.0 / (n_k[topic] + v_eta)
            total = 0.0
            for k in range(n_topics):
                total += (doc_row[k] + alpha[k]) * (word_row[k] + eta) * inv_nk[k]
                cumulative[k] = total
            topic = _inverse_cdf_draw(state, cumulative, n_topics)
            z[i] = topic
            doc_row[topic] += 1
            word_row[topic] += 1
            n_k[topic] += 1
            inv_nk[topic] = 1.0 / (n_k[topic] + v_eta)
        doc_part -= math.lgamma(doc_ptr[d + 1] - doc_ptr[d] + alpha_sum)
        for k in range(n_topics):
            if doc_row[k] != 0:
                doc_part += doc_count_term(doc_table, alpha, k, doc_row[k])
    return doc_part


@numba.njit(cache=True, nogil=True)
def _block_sweep(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, doc_lo, doc_hi, state,
                 word_lists, word_nnz, shift, word_totals, doc_table):
    """One sweep of a block by the sparse kernel when word_lists : (V, K) has rows (packed
    word lists with `shift` and lengths word_nnz : (V,) int32, brought up to date with n_wk
    and written back to it after the sweep; word_totals : (V,) int64 the rows' sums), by
    the dense kernel when it has none. Returns
    the block's documents' part of the collapsed log joint (doc_table : (K, A))."""
    n_topics = alpha.shape[0]
    if word_lists.shape[0] > 0:
        build_word_topic_lists(n_wk, word_lists, word_nnz, shift, word_totals)
        doc_part, _ = sparse_block_sweep(
            doc_ptr, words, z, n_dk, n_k, alpha, eta, doc_lo, doc_hi, state, word_lists,
            word_nnz, shift, np.empty((3, n_topics)), np.empty((2, n_topics), dtype=np.int32),
            doc_table)
        unpack_word_topic_lists(word_lists, word_nnz, n_wk, shift)
        return doc_part
    return dense_block_sweep(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, doc_lo, doc_hi,
                             state, np.empty((2, alpha.shape[0])), doc_table)


@numba.njit(cache=True, nogil=True)
def _sequential_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, n_sweeps, seed,
                       first_sweep, word_lists, word_nnz, shift, word_totals, doc_table):
    """n_sweeps exact sequential sweeps (one block: sweep s draws from stream(seed, s));
    word_lists : (V, K) or (0, K), word_nnz : (V,) and word_totals : (V,), the sparse
    kernel's work space (see build_word_topic_lists) or none (dense). Returns the last
    sweep's documents' part of the log joint (NaN when n_sweeps = 0)."""
    n_docs = doc_ptr.shape[0] - 1
    doc_part = np.nan
    for sweep in range(first_sweep, first_sweep + n_sweeps):
        state = stream(seed, sweep)
        doc_part = _block_sweep(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, 0, n_docs,
                                state, word_lists, word_nnz, shift, word_totals, doc_table)
    return doc_part


@numba.njit(cache=True, nogil=True, parallel=True)
def _parallel_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, n_sweeps, seed,
                     first_sweep, word_lists, word_nnz, shift, word_totals, block_ptr, local_wk,
                     local_k, doc_table):
    """n_sweeps AD-LDA sweeps: the blocks (documents block_ptr[b]..block_ptr[b+1]-1) run in
    parallel against private copies local_wk : (n_blocks, V, K) int32, local_k :
    (n_blocks, K) int64 of n_wk and n_k, merged in block order afterwards; word_lists :
    (n_blocks, V, K) or (n_blocks, 0, K) and word_nnz : (n_blocks, V) as in
    _sequential_sweeps, whose return value this shares (the blocks' parts summed in order)."""
    n_blocks = block_ptr.shape[0] - 1
    n_words, n_topics = n_wk.shape
    block_parts = np.full(n_blocks, np.nan)
    for sweep in range(first_sweep, first_sweep + n_sweeps):
        for b in numba.prange(n_blocks):
            local_wk[b] = n_wk
            local_k[b] = n_k
            state = stream(seed, sweep * n_blocks + b)
            block_parts[b] = _block_sweep(doc_ptr, words, z, n_dk, local_wk[b], local_k[b],
                                          alpha, eta, block_ptr[b], block_ptr[b + 1], state,
                                          word_lists[b], word_nnz[b], shift, word_totals,
                                          doc_table)
        for w in numba.prange(n_words):  # n_wk += Σ_b (n_wk^(b) − n_wk^before)
            for k in range(n_topics):
                merged = n_wk[w, k]
                for b in range(n_blocks):
                    merged += local_wk[b, w, k] - n_wk[w, k]
                n_wk[w, k] = merged
        for k in range(n_topics):
            merged_k = n_k[k]
            for b in range(n_blocks):
                merged_k += local_k[b, k] - n_k[k]
            n_k[k] = merged_k
    doc_part = 0.0
    for b in range(n_blocks):
        doc_part += block_parts[b]
    return doc_part


def balanced_blocks(doc_ptr, n_blocks):
    """Document boundaries block_ptr : (n_blocks + 1,) int64 of n_blocks contiguous blocks
    whose token counts are as equal as whole documents allow (block b ends at the first
    document boundary at or past b N / n_blocks tokens)."""
    n_tokens = doc_ptr[-1]
    targets = (np.arange(1, n_blocks) * n_tokens) // n_blocks
    inner = np.searchsorted(doc_ptr, targets, side="left")
    block_ptr = np.concatenate([[0], inner, [doc_ptr.shape[0] - 1]]).astype(np.int64)
    return np.maximum.accumulate(block_ptr)


def _check_state(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta):
    """Shapes and dtypes of the in-place sampler state (validated once, at the boundary)."""
    n_docs, n_topics = n_dk.shape
    expected = {
        "doc_ptr": (doc_ptr, np.int64, (n_docs + 1,)),
        "words": (words, np.int32, (z.shape[0],)),
        "z": (z, np.int32, z.shape),
        "n_dk": (n_dk, np.int32, (n_docs, n_topics)),
        "n_wk": (n_wk, np.int32, (n_wk.shape[0], n_topics)),
        "n_k": (n_k, np.int64, (n_topics,)),
        "alpha": (alpha, np.float64, (n_topics,)),
    }
    for name, (array, dtype, shape) in expected.items():
        if array.dtype != dtype or array.shape != shape or not array.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous {np.dtype(dtype).name} array of "
                             f"shape {shape}, got {array.dtype} {array.shape}")
    if doc_ptr[-1] != words.shape[0]:
        raise ValueError(f"doc_ptr[-1] = {doc_ptr[-1]} must equal the number of tokens")
    if not np.all(alpha > 0) or not eta > 0:
        raise ValueError(f"alpha and eta must be positive, got alpha={alpha}, eta={eta}")
    if z.size and (z.min() < 0 or z.max() >= n_topics):
        raise ValueError(f"z must lie in [0, {n_topics}), got [{z.min()}, {z.max()}]")
    # cheap necessary conditions for counts of z (count_matrices recomputes them exactly)
    if (n_wk.size and n_wk.min() < 0) or not np.array_equal(n_wk.sum(axis=0), n_k) or (
            not np.array_equal(n_dk.sum(axis=1), np.diff(doc_ptr))):
        raise ValueError("n_dk, n_wk and n_k are not the counts of z: rebuild them with "
                         "count_matrices(doc_ptr, words, z, n_topics, n_words)")


def gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, n_sweeps, seed,
                 first_sweep=0, n_threads=1, sparse=None, workspace=None):
    """Run n_sweeps collapsed Gibbs sweeps, updating z and the counts in place.

    doc_ptr : (D + 1,) int64, words : (N,) int32, z : (N,) int32, n_dk : (D, K) int32,
    n_wk : (V, K) int32, n_k : (K,) int64 (the counts of z), alpha : (K,) float64, eta > 0.
    Sweep s (counted from first_sweep) of document block b draws from
    stream(seed, s * n_threads + b). n_threads == 1 is the exact sequential sampler;
    n_threads > 1 runs AD-LDA over n_threads token-balanced blocks in parallel (output fixed
    by seed and n_threads). sparse: True for SparseLDA, False for the dense kernel, None for
    SparseLDA when K >= SPARSE_MIN_TOPICS (both sample the same conditional exactly).
    workspace: a `sweep_workspace` for this corpus, to reuse across calls (it then fixes
    n_threads and sparse); None allocates one. Returns the documents' part of the collapsed
    log joint of the final state (see run_sweeps; NaN when n_sweeps = 0).
    """
    _check_state(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta)
    if n_sweeps < 0 or first_sweep < 0 or n_threads < 1:
        raise ValueError(f"need n_sweeps >= 0, first_sweep >= 0, n_threads >= 1, got "
                         f"{n_sweeps}, {first_sweep}, {n_threads}")
    if workspace is None:
        workspace = sweep_workspace(doc_ptr, n_wk, n_threads, sparse)
    elif (workspace.local_k.shape[1] != n_wk.shape[1] or workspace.block_ptr[-1] != n_dk.shape[0]
          or not np.array_equal(workspace.word_totals, n_wk.sum(axis=1))):
        raise ValueError("workspace was made for another corpus or number of topics: make "
                         "it with sweep_workspace(doc_ptr, n_wk, n_threads, sparse)")
    doc_table, _ = log_joint_tables(alpha, eta, np.diff(doc_ptr).max(initial=0), 0)
    return run_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, n_sweeps, seed,
                      first_sweep, workspace, doc_table)


@dataclass(frozen=True)
class SweepWorkspace:
    """Buffers of the sweep kernels, reused from sweep to sweep: word_lists : (B, V, K)
    packed lists (B = 1 sequential, else n_threads; (B, 0, K) for the dense kernel) and
    word_nnz : (B, V) int32 their lengths (-1: none yet), shift : their topic bits,
    word_totals : (V,) int64 the words' frequencies, block_ptr : (B + 1,) document blocks,
    local_wk : (B, V, K) int32 and local_k : (B, K) int64 the blocks' private counts
    (B = 0 when sequential)."""

    word_lists: np.ndarray
    word_nnz: np.ndarray
    shift: int
    word_totals: np.ndarray
    block_ptr: np.ndarray
    local_wk: np.ndarray
    local_k: np.ndarray


def sweep_workspace(doc_ptr, n_wk, n_threads=1, sparse=None):
    """The SweepWorkspace of a corpus (doc_ptr : (D + 1,)) with counts n_wk : (V, K): the
    word frequencies (row sums of n_wk, which sweeps never change) and a list layout that
    holds any count up to the largest of them."""
    n_words, n_topics = n_wk.shape
    if sparse is None:
        sparse = n_topics >= SPARSE_MIN_TOPICS
    word_totals = n_wk.sum(axis=1, dtype=np.int64)
    shift, list_dtype = list_layout(n_topics, int(word_totals.max(initial=0)))
    n_local = n_threads if n_threads > 1 else 0
    return SweepWorkspace(
        np.empty((n_threads, n_words if sparse else 0, n_topics), list_dtype),
        np.full((n_threads, n_words), -1, np.int32), shift, word_totals,
        balanced_blocks(doc_ptr, n_threads), np.empty((n_local, n_words, n_topics), np.int32),
        np.empty((n_local, n_topics), np.int64))


def run_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, eta, n_sweeps, seed, first_sweep,
               workspace, doc_table):
    """gibbs_sweeps without its checks, for callers that validated the state once (a fit
    loop): the number of threads is the workspace's number of blocks. Returns the last
    sweep's (NaN if none) documents' part of the log joint, summed by the kernels as each
    document ends (no pass over the dense n_dk; doc_table : (K, A) of log_joint_tables),

        Σ_d [log Γ(Σα) − log Γ(N_d + Σα) + Σ_k (log Γ(n_dk + α_k) − log Γ(α_k))]."""
    args = (doc_ptr, words, z, n_dk, n_wk, n_k, alpha, np.float64(eta), np.int64(n_sweeps),
            np.int64(seed), np.int64(first_sweep))
    doc_table = np.ascontiguousarray(doc_table, dtype=np.float64)
    if workspace.block_ptr.shape[0] == 2:
        return float(_sequential_sweeps(*args, workspace.word_lists[0], workspace.word_nnz[0],
                                        np.int64(workspace.shift), workspace.word_totals,
                                        doc_table))
    return float(_parallel_sweeps(*args, workspace.word_lists, workspace.word_nnz,
                                  np.int64(workspace.shift), workspace.word_totals,
                                  workspace.block_ptr,
                                  workspace.local_wk, workspace.local_k, doc_table))


@numba.njit(cache=True, nogil=True, fastmath=FAST, _nrt=False)
def _fixed_topics_doc(words, phi_wk, alpha, n_burn, n_samples, state, theta_row, counts, z,
                      cumulative):
    """Gibbs chain of one document's topics with the topics fixed (φ_kw = phi_wk[w, k]),
    p(z_i = k) ∝ (n_dk^-i + α_k) φ_kw; θ averaged over the n_samples sweeps after n_burn.
    Work space: counts : (K,) int64 zeros, z : (N_d,) int32, cumulative : (K,) float64."""
    n_topics = alpha.shape[0]
    n_tokens = words.shape[0]
    for i in range(n_tokens):
        z[i] = min(np.int32(next_double(state) * n_topics), n_topics - 1)
        counts[z[i]] += 1
    scale = 1.0 / ((n_tokens + alpha.sum()) * n_samples)
    for sweep in range(n_burn + n_samples):
        for i in range(n_tokens):
            counts[z[i]] -= 1
            topic = fixed_topics_draw(state, counts, alpha, phi_wk[words[i]], cumulative,
                                      n_topics)
            z[i] = topic
            counts[topic] += 1
        if sweep >= n_burn:
            for k in range(n_topics):
                theta_row[k] += (counts[k] + alpha[k]) * scale


@numba.njit(cache=True, nogil=True, parallel=True)
def _fixed_topics_inference(doc_ptr, words, phi_wk, alpha, n_burn, n_samples, seed):
    n_docs = doc_ptr.shape[0] - 1
    theta = np.zeros((n_docs, alpha.shape[0]))
    for d in numba.prange(n_docs):
        state = stream(seed, d)
        n_tokens = doc_ptr[d + 1] - doc_ptr[d]
        _fixed_topics_doc(words[doc_ptr[d]:doc_ptr[d + 1]], phi_wk, alpha, n_burn, n_samples,
                          state, theta[d], np.zeros(alpha.shape[0], dtype=np.int64),
                          np.empty(n_tokens, dtype=np.int32), np.empty(alpha.shape[0]))
    return theta


def fixed_topics_inference(doc_ptr, words, phi, alpha, n_burn, n_samples, seed):
    """Document-topic proportions of new documents under fixed topics, by Gibbs sampling.

    doc_ptr : (D + 1,) int64, words : (N,) int32, phi : (K, V) topic-word distributions,
    alpha : (K,). Each document's chain (stream(seed, d), so documents run in parallel)
    resamples p(z_i = k | z_-i) ∝ (n_dk^-i + α_k) φ_kw and returns theta : (D, K), the mean
    over the n_samples sweeps after n_burn of (n_dk + α_k) / (N_d + Σα) (α / Σα for an
    empty document).
    """
    phi = np.asarray(phi, dtype=np.float64)
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    if phi.ndim != 2 or alpha.shape != (phi.shape[0],):
        raise ValueError(f"phi must be (K, V) and alpha (K,), got {phi.shape}, {alpha.shape}")
    if words.size and words.max() >= phi.shape[1]:
        raise ValueError(f"word ids must lie in [0, {phi.shape[1]}), got max {words.max()}")
    if n_burn < 0 or n_samples < 1 or not np.all(alpha > 0) or np.any(phi < 0):
        raise ValueError("need n_burn >= 0, n_samples >= 1, alpha > 0 and phi >= 0")
    phi_wk = np.ascontiguousarray(phi.T)  # word-major: one word's K values are contiguous
    return _fixed_topics_inference(np.ascontiguousarray(doc_ptr, dtype=np.int64),
                                   np.ascontiguousarray(words, dtype=np.int32), phi_wk, alpha,
                                   np.int64(n_burn), np.int64(n_samples), np.int64(seed))


def optimize_alpha(n_dk, doc_lengths, alpha, n_iter=20):
    """Maximum-likelihood asymmetric α of the Dirichlet-multinomial p(n_d | α) by Minka's
    (2000) fixed point,

        α_k ← α_k Σ_d [ψ(n_dk + α_k) − ψ(α_k)] / Σ_d [ψ(N_d + Σα) − ψ(Σα)],

    n_iter times. n_dk : (D, K) counts, doc_lengths : (D,) N_d = Σ_k n_dk, alpha : (K,) > 0
    the start. A topic no document uses has the boundary optimum α_k → 0; α is kept at
    least ALPHA_FLOOR so the sampler's conditional stays defined. Returns alpha : (K,).
    """
    n_dk = np.asarray(n_dk, dtype=np.float64)
    doc_lengths = np.asarray(doc_lengths, dtype=np.float64)
    alpha = np.array(alpha, dtype=np.float64)
    if n_dk.ndim != 2 or alpha.shape != (n_dk.shape[1],) or doc_lengths.shape != n_dk.shape[:1]:
        raise ValueError(f"need n_dk (D, K), doc_lengths (D,), alpha (K,), got {n_dk.shape}, "
                         f"{doc_lengths.shape}, {alpha.shape}")
    if not np.all(alpha > 0):
        raise ValueError(f"alpha must be positive, got {alpha}")
    used = doc_lengths > 0  # an empty document adds 0 to both sums
    n_dk, doc_lengths = n_dk[used], doc_lengths[used]
    if not n_dk.size:
        return alpha
    for _ in range(n_iter):
        numerator = (psi(n_dk + alpha) - psi(alpha)).sum(axis=0)
        denominator = (psi(doc_lengths + alpha.sum()) - psi(alpha.sum())).sum()
        alpha = np.maximum(alpha * numerator / denominator, ALPHA_FLOOR)
    return alpha


ALPHA_FLOOR = 1e-10


__all__ = [
    "SPARSE_MIN_TOPICS", "SweepWorkspace", "balanced_blocks", "count_matrices",
    "dense_block_sweep", "fixed_topics_inference", "gibbs_sweeps", "initial_assignments",
    "log_joint_tables", "optimize_alpha", "run_sweeps", "sweep_workspace",
    "tokens_from_counts",
]
