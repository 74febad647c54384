"""SparseLDA: an exact collapsed Gibbs step whose cost follows the non-zero counts (Yao, Mimno
& McCallum 2009, "Efficient methods for topic model inference on streaming document
collections").

The collapsed conditional of token i (document d, word w) splits into three buckets,

    p(z_i = k | z_-i, w) ∝ (n_dk + α_k)(n_wk + η) / (n_k + Vη)
                         = α_k η / (n_k + Vη)                 s_k: every topic, smoothing
                         + n_dk η / (n_k + Vη)                r_k: the document's topics
                         + (α_k + n_dk) n_wk / (n_k + Vη)     q_k: the word's topics

(counts without token i). s = Σ_k s_k and r = Σ_k r_k change in two terms per token and are
updated incrementally (and recomputed at each document start, so rounding cannot drift); the
coefficient (α_k + n_dk) / (n_k + Vη) of q is cached per topic. A draw u ~ U(0, s + r + q)
falls in q (a walk over the word's non-zero topics), in r (the document's non-zero topics) or
in s (all K topics, rarely): the same distribution as the dense sampler, at a cost of the
number of non-zero counts instead of K.

A word's list packs each non-zero count with its topic, (n_wk << shift) | k, in one int32
(int64 for huge counts): the q walk reads one short contiguous run instead of K-wide rows of
n_wk. The lists are brought to their canonical order (decreasing count) at every sweep (kept
from the previous sweep and re-sorted when they still match n_wk, rebuilt otherwise; the
document lists are rebuilt at every document), so a draw depends only on the counts and the
stream, never on the history of the lists: a chain resumed with `first_sweep` continues
exactly.
Within a sweep an entry moves at most one place per update (nearly sorted at O(1) cost).

The sweep kernel is compiled with _nrt=False: without reference counting, the inlined
helpers' array arguments cost no atomic increments (they took 60% of the time otherwise).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.special import gammaln

from latentkit.topics._rng import next_double

# reassociation / contraction only reorder sums of positive terms: the sampled distribution
# is unchanged up to rounding (no NaN or infinity can arise with α, η > 0)
FAST = {"nsz", "arcp", "contract", "reassoc"}


def list_layout(n_topics, max_count):
    """(shift, dtype) of packed word list entries (n_wk << shift) | k: shift bits hold a
    topic id, and int32 entries (half the cache lines of int64) are used whenever the
    largest possible count, max_count, fits in the remaining 31 - shift bits."""
    shift = max(1, int(n_topics - 1).bit_length())
    dtype = np.int32 if max_count < 2 ** (31 - shift) else np.int64
    return shift, dtype


@numba.njit(inline="always")
def _build_word_list(counts, word_list, shift):
    """Pack the non-zero counts of one word, counts : (K,), into word_list as entries
    (n_wk << shift) | k in decreasing order (largest count first, so the q bucket's walk
    stops early); returns how many."""
    nnz = 0
    for k in range(counts.shape[0]):
        if counts[k] != 0:
            word_list[nnz] = (np.int64(counts[k]) << shift) | k
            nnz += 1
    row = word_list[:nnz]
    row.sort()
    for j in range(nnz // 2):
        row[j], row[nnz - 1 - j] = row[nnz - 1 - j], row[j]
    return nnz


@numba.njit(inline="always")
def _list_holds(counts, word_list, nnz, shift, topic_bits, total):
    """Whether a list of nnz >= 0 entries, written by the sampler (distinct topics), holds
    exactly the non-zero counts of one word, counts : (K,) >= 0 summing to `total`: its
    entries match counts and add up to total (so no other count can be non-zero)."""
    if nnz < 0:
        return False
    listed = 0
    for j in range(nnz):
        count = word_list[j] >> shift
        if counts[word_list[j] & topic_bits] != count:
            return False
        listed += count
    return listed == total


@numba.njit(inline="always")
def _insertion_sort_decreasing(word_list, nnz):
    """Sort a nearly sorted list in decreasing order in place (O(nnz + inversions))."""
    for j in range(1, nnz):
        entry = word_list[j]
        i = j - 1
        while i >= 0 and word_list[i] < entry:
            word_list[i + 1] = word_list[i]
            i -= 1
        word_list[i + 1] = entry


@numba.njit(cache=True, nogil=True)
def build_word_topic_lists(n_wk, word_lists, word_nnz, shift, word_totals):
    """Move each word's non-zero counts of n_wk : (V, K) int32 (rows summing to word_totals
    : (V,) int64, the words' frequencies) into word_lists : (V, K) (int32 or int64, see
    list_layout), entries (n_wk << shift) | k sorted in decreasing order, word_nnz : (V,)
    int32 of them; the moved counts are set to 0 in n_wk (all of it is then 0, and
    unpack_word_topic_lists writes the lists back at the cost of their entries, not V K).
    A word whose list from the previous sweep (word_nnz[w] >= 0; -1 marks none) still
    holds its counts is only re-sorted, by insertion (a sweep leaves it nearly sorted),
    instead of rebuilt: the result is the same canonical list either way (distinct
    entries, decreasing), so a draw depends only on the counts, never on the lists'
    history."""
    n_words = n_wk.shape[0]
    topic_bits = (np.int64(1) << shift) - 1
    for w in range(n_words):
        word_list = word_lists[w]
        if _list_holds(n_wk[w], word_list, word_nnz[w], shift, topic_bits, word_totals[w]):
            _insertion_sort_decreasing(word_list, word_nnz[w])
        else:
            word_nnz[w] = _build_word_list(n_wk[w], word_list, shift)
        for j in range(word_nnz[w]):
            n_wk[w, word_list[j] & topic_bits] = 0


@numba.njit(cache=True, nogil=True)
def unpack_word_topic_lists(word_lists, word_nnz, n_wk, shift):
    """Write the counts of the packed lists back into n_wk : (V, K) int32, which
    build_word_topic_lists left all 0."""
    n_words = n_wk.shape[0]
    topic_bits = (np.int64(1) << shift) - 1
    for w in range(n_words):
        for j in range(word_nnz[w]):
            n_wk[w, word_lists[w, j] & topic_bits] = word_lists[w, j] >> shift


@numba.njit(inline="always")
def _decrement_at(word_list, nnz, position, one_count):
    """n_wk -= 1 for the entry at `position` of a packed list; returns (new length, the
    position before the update of the entry now at `position` + its old place's shift:
    moved_from, moved_to). An entry that drops to 0 is replaced by the last one (moved
    from nnz - 1 to position); otherwise it moves at most one place back (swapped with
    position + 1): the lists stay nearly sorted at O(1) cost, and the order never changes
    the sampled distribution."""
    word_list[position] -= one_count
    if word_list[position] < one_count:
        word_list[position] = word_list[nnz - 1]
        return nnz - 1, nnz - 1, position
    if position + 1 < nnz and word_list[position + 1] > word_list[position]:
        word_list[position], word_list[position + 1] = (word_list[position + 1],
                                                        word_list[position])
        return nnz, position + 1, position
    return nnz, -1, -1


@numba.njit(inline="always")
def _increment_word_topic(word_list, nnz, topic, position, one_count, topic_bits):
    """n_wk += 1 for `topic` at `position` of the packed list (-1: look it up, appending it
    with count 0 if absent); it moves at most one place forward. Returns the new length."""
    if position < 0:
        position = 0
        while position < nnz and (word_list[position] & topic_bits) != topic:
            position += 1
        if position == nnz:
            word_list[nnz] = topic
            nnz += 1
    word_list[position] += one_count
    if position > 0 and word_list[position - 1] < word_list[position]:
        word_list[position - 1], word_list[position] = (word_list[position],
                                                        word_list[position - 1])
    return nnz


# entries of the log-gamma tables of the collapsed log joint (larger counts call lgamma)
TABLE_ENTRIES = 2**20


def log_joint_tables(alpha, eta, max_doc_count, max_word_count):
    """Tables of the collapsed log joint's count terms for counts up to a cap:
    doc_table : (K, A) with [k, n] = log Γ(n + α_k) − log Γ(α_k) and word_table : (B,) with
    [n] = log Γ(n + η) − log Γ(η), A = max_doc_count + 1 and B = max_word_count + 1 capped
    so that each table holds at most TABLE_ENTRIES (larger counts are evaluated directly)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    width = max(1, min(int(max_doc_count) + 1, TABLE_ENTRIES // max(alpha.shape[0], 1)))
    doc_counts = np.arange(width, dtype=np.float64)
    doc_table = gammaln(doc_counts[None, :] + alpha[:, None]) - gammaln(alpha)[:, None]
    word_counts = np.arange(max(1, min(int(max_word_count) + 1, TABLE_ENTRIES)), dtype=float)
    return doc_table, gammaln(word_counts + eta) - gammaln(eta)


@numba.njit(cache=True, nogil=True)
def list_count_terms(word_lists, word_nnz, shift, word_table, eta):
    """Σ_w Σ_k [log Γ(n_wk + η) − log Γ(η)] over the non-zero counts held by the packed
    lists word_lists : (V, K), word_nnz : (V,) (a zero count adds 0), read from
    word_table : (B,) of log_joint_tables when the count is below B: a pass over the lists'
    entries instead of the dense (V, K) counts."""
    total = 0.0
    lgamma_eta = math.lgamma(eta)
    for w in range(word_lists.shape[0]):
        for j in range(word_nnz[w]):
            count = word_lists[w, j] >> shift
            if count < word_table.shape[0]:
                total += word_table[count]
            else:
                total += math.lgamma(count + eta) - lgamma_eta
    return total


@numba.njit(inline="always")
def doc_count_term(doc_table, alpha, topic, count):
    """log Γ(count + α_k) − log Γ(α_k) for topic k: from doc_table : (K, A) (log_joint_tables)
    when count < A, else evaluated."""
    if count < doc_table.shape[1]:
        return doc_table[topic, count]
    return math.lgamma(count + alpha[topic]) - math.lgamma(alpha[topic])


@numba.njit(inline="always")
def _search_doc_bucket(u, doc_topics, doc_nnz, doc_row, inv_nk, eta):
    """The topic where u falls in the r bucket, Σ over the document's topics of n_dk η ι_k."""
    for j in range(doc_nnz):
        topic = doc_topics[j]
        u -= doc_row[topic] * eta * inv_nk[topic]
        if u < 0.0:
            return topic
    return doc_topics[doc_nnz - 1]


@numba.njit(inline="always")
def _search_smoothing_bucket(u, alpha, inv_nk, eta):
    """The topic where u falls in the s bucket, Σ_k α_k η ι_k over all topics."""
    n_topics = alpha.shape[0]
    for k in range(n_topics):
        u -= alpha[k] * eta * inv_nk[k]
        if u < 0.0:
            return k
    return n_topics - 1


@numba.njit(inline="always", fastmath=FAST)
def _doc_start(doc_row, alpha, inv_nk, eta, q_coef, doc_topics, doc_pos):
    """At a document start: its topic list, the q coefficients of its topics and the bucket
    sums s = Σ_k α_k η ι_k and r = Σ_k n_dk η ι_k (ι_k = 1 / (n_k + Vη)). Returns
    (doc_nnz, s, r). The list is compacted without a branch (every k is written at the
    list's end, which advances when n_dk != 0: a document's few topics among K would
    otherwise mispredict a branch each), then its topics are visited in the same increasing
    order, so every sum adds the same terms in the same order."""
    smoothing = 0.0
    doc_nnz = 0
    for k in range(alpha.shape[0]):
        smoothing += alpha[k] * eta * inv_nk[k]
        doc_topics[doc_nnz] = k
        doc_nnz += doc_row[k] != 0
    doc_mass = 0.0
    for j in range(doc_nnz):
        k = doc_topics[j]
        doc_pos[k] = j
        doc_mass += doc_row[k] * eta * inv_nk[k]
        q_coef[k] = (alpha[k] + doc_row[k]) * inv_nk[k]
    return doc_nnz, smoothing, doc_mass


@numba.njit(inline="always")
def _doc_end(doc_row, doc_topics, doc_nnz, alpha, alpha_sum, inv_nk, q_coef, doc_table,
             length):
    """At the end of a document of `length` tokens: its topics' q coefficients back to
    α_k ι_k (n_dk = 0 for the next document); returns its part of the log joint,
    log Γ(Σα) − log Γ(N_d + Σα) + Σ over its topics of log Γ(n_dk + α_k) − log Γ(α_k)."""
    count_terms = math.lgamma(alpha_sum) - math.lgamma(length + alpha_sum)
    for j in range(doc_nnz):
        topic = doc_topics[j]
        q_coef[topic] = alpha[topic] * inv_nk[topic]
        count_terms += doc_count_term(doc_table, alpha, topic, doc_row[topic])
    return count_terms


@numba.njit(inline="always")
def _move_token(topic, sign, doc_row, n_k, alpha, eta, v_eta, inv_nk, q_coef, smoothing,
                doc_mass):
    """n_dk += sign, n_k += sign for `topic`, refreshing ι_k = 1 / (n_k + Vη), its q
    coefficient and the bucket sums s and r (one term of each changes); returns (s, r)."""
    old_inverse = inv_nk[topic]
    old_count = doc_row[topic]
    doc_row[topic] = old_count + sign
    n_k[topic] += sign
    inverse = 1.0 / (n_k[topic] + v_eta)
    inv_nk[topic] = inverse
    q_coef[topic] = (alpha[topic] + doc_row[topic]) * inverse
    smoothing += alpha[topic] * eta * (inverse - old_inverse)
    doc_mass += eta * (doc_row[topic] * inverse - old_count * old_inverse)
    return smoothing, doc_mass


@numba.njit(cache=True, nogil=True, fastmath=FAST, _nrt=False)
def sparse_block_sweep(doc_ptr, words, z, n_dk, n_k, alpha, eta, doc_lo, doc_hi, state,
                       word_lists, word_nnz, shift, real_scratch, int_scratch, doc_table):
    """One SparseLDA sweep over documents doc_lo..doc_hi-1, in place on z : (N,) int32,
    n_dk : (D, K) int32, n_k : (K,) int64 and the packed word counts word_lists : (V, K),
    word_nnz : (V,) int32 (build_word_topic_lists with `shift`; n_wk itself is untouched);
    draws from `state` : (1,) uint64. real_scratch : (3, K) float64 and int_scratch : (2, K)
    int32 are work space; compiled without reference counting (_nrt=False: no allocation
    here), so the per-token helpers cost no atomic increments of their array arguments.
    Returns (the documents' part of the log joint as in run_sweeps, summed over each
    document's topics as it ends, doc_table : (K, A); a number keeping the read-ahead)."""
    n_words, n_topics = word_lists.shape
    v_eta = n_words * eta
    one_count = np.int64(1) << shift
    topic_bits = one_count - 1
    inv_nk = real_scratch[0]
    q_coef = real_scratch[1]  # (α_k + n_dk) ι_k; α_k ι_k between documents
    q_terms = real_scratch[2]
    doc_topics = int_scratch[0]
    doc_pos = int_scratch[1]
    for k in range(n_topics):
        inv_nk[k] = 1.0 / (n_k[k] + v_eta)
        q_coef[k] = alpha[k] * inv_nk[k]
    touched = np.int64(0)  # the lists read ahead (returned, so the loads are kept)
    alpha_sum, doc_part = alpha.sum(), 0.0
    for d in range(doc_lo, doc_hi):
        doc_row = n_dk[d]
        doc_nnz, smoothing, doc_mass = _doc_start(doc_row, alpha, inv_nk, eta, q_coef,
                                                   doc_topics, doc_pos)
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            w = words[i]
            word_list = word_lists[w]
            touched += word_lists[words[min(i + 2, words.shape[0] - 1)], 0]  # prefetch a later list
            old_topic = z[i]
            smoothing, doc_mass = _move_token(old_topic, -1, doc_row, n_k, alpha, eta, v_eta,
                                              inv_nk, q_coef, smoothing, doc_mass)
            if doc_row[old_topic] == 0:  # swap-remove from the document's list
                doc_nnz -= 1
                last = doc_topics[doc_nnz]
                doc_topics[doc_pos[old_topic]] = last
                doc_pos[last] = doc_pos[old_topic]
            topic, position, old_position = _draw_topic(
                state, word_list, word_nnz[w], old_topic, q_coef, q_terms, smoothing,
                doc_mass, doc_topics, doc_nnz, doc_row, alpha, inv_nk, eta, shift, topic_bits)
            if topic != old_topic:  # else the word's list is unchanged: nothing to update
                nnz, moved_from, moved_to = _decrement_at(word_list, word_nnz[w],
                                                          old_position, one_count)
                if position == moved_from:
                    position = moved_to
                word_nnz[w] = _increment_word_topic(word_list, nnz, topic, position,
                                                    one_count, topic_bits)
            z[i] = topic
            smoothing, doc_mass = _move_token(topic, 1, doc_row, n_k, alpha, eta, v_eta,
                                              inv_nk, q_coef, smoothing, doc_mass)
            if doc_row[topic] == 1:
                doc_topics[doc_nnz] = topic
                doc_pos[topic] = doc_nnz
                doc_nnz += 1
        doc_part += _doc_end(doc_row, doc_topics, doc_nnz, alpha, alpha_sum, inv_nk, q_coef,
                             doc_table, doc_ptr[d + 1] - doc_ptr[d])
    return doc_part, touched


@numba.njit(inline="always", fastmath=FAST)
def _draw_topic(state, word_list, word_nnz, old_topic, q_coef, q_terms, smoothing, doc_mass,
                doc_topics, doc_nnz, doc_row, alpha, inv_nk, eta, shift, topic_bits):
    """Draw a topic from the three buckets: q = Σ over the word's topics of q_coef_k n_wk
    (the word's list still counts the token itself under old_topic: one is taken off that
    entry here, so the list is updated only when the topic changes), then r = doc_mass,
    then s = smoothing. Returns (topic, its position in the word's list or -1 when drawn
    from r or s, the position of old_topic in the list)."""
    word_mass = 0.0
    old_position = 0
    for j in range(word_nnz):  # independent terms, summed in any order (reassoc)
        entry = word_list[j]
        topic = entry & topic_bits
        is_old = topic == old_topic
        old_position = j if is_old else old_position
        q_terms[j] = q_coef[topic] * np.float64((entry >> shift) - is_old)
        word_mass += q_terms[j]
    u = next_double(state) * (word_mass + doc_mass + smoothing)
    if u < word_mass:
        j = 0
        u -= q_terms[0]
        while j < word_nnz - 1 and u >= 0.0:  # lists put large counts first: a short walk
            j += 1
            u -= q_terms[j]
        return np.int64(word_list[j] & topic_bits), j, old_position
    u -= word_mass
    if u < doc_mass and doc_nnz > 0:
        return (np.int64(_search_doc_bucket(u, doc_topics, doc_nnz, doc_row, inv_nk, eta)), -1,
                old_position)
    return np.int64(_search_smoothing_bucket(u - doc_mass, alpha, inv_nk, eta)), -1, old_position


__all__ = [
    "build_word_topic_lists", "doc_count_term", "list_count_terms", "list_layout",
    "log_joint_tables",
    "sparse_block_sweep", "unpack_word_topic_lists",
]
