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

The topic lists are rebuilt in topic order at every sweep (words) and document (documents),
so a draw depends only on the counts and the stream, never on the history of the lists: a
chain resumed with `first_sweep` continues exactly.
"""

from __future__ import annotations

import numba
import numpy as np

from latentkit.topics._rng import next_double

# reassociation / contraction only reorder sums of positive terms: the sampled distribution
# is unchanged up to rounding (no NaN or infinity can arise with α, η > 0)
FAST = {"nsz", "arcp", "contract", "reassoc"}


ONE_COUNT = np.int64(1) << np.int64(32)  # a word list entry is (n_wk << 32) | k
TOPIC_BITS = np.int64(0xFFFFFFFF)


@numba.njit(cache=True, nogil=True)
def build_word_topic_lists(n_wk, word_lists, word_nnz):
    """Pack each word's non-zero counts of n_wk : (V, K) int32 into word_lists : (V, K) int64,
    entries (n_wk << 32) | k sorted in decreasing order (largest count first, so the q
    bucket's search stops early), word_nnz[w] of them."""
    n_words, n_topics = n_wk.shape
    for w in range(n_words):
        count = 0
        for k in range(n_topics):
            if n_wk[w, k] != 0:
                word_lists[w, count] = (np.int64(n_wk[w, k]) << np.int64(32)) | k
                count += 1
        row = word_lists[w, :count]
        row.sort()
        for j in range(count // 2):
            row[j], row[count - 1 - j] = row[count - 1 - j], row[j]
        word_nnz[w] = count


@numba.njit(cache=True, nogil=True)
def unpack_word_topic_lists(word_lists, word_nnz, n_wk):
    """Write the counts of the packed lists back into n_wk : (V, K) int32."""
    n_words = n_wk.shape[0]
    for w in range(n_words):
        n_wk[w, :] = 0
        for j in range(word_nnz[w]):
            n_wk[w, word_lists[w, j] & TOPIC_BITS] = word_lists[w, j] >> np.int64(32)


@numba.njit(inline="always")
def _decrement_word_topic(word_list, nnz, topic):
    """n_wk -= 1 for `topic` in a sorted packed list; returns the new length."""
    j = 0
    while (word_list[j] & TOPIC_BITS) != topic:
        j += 1
    word_list[j] -= ONE_COUNT
    while j + 1 < nnz and word_list[j + 1] > word_list[j]:  # keep the decreasing order
        word_list[j], word_list[j + 1] = word_list[j + 1], word_list[j]
        j += 1
    if word_list[j] < ONE_COUNT:  # count 0: it sank to the end
        return nnz - 1
    return nnz


@numba.njit(inline="always")
def _increment_word_topic(word_list, nnz, topic, position):
    """n_wk += 1 for `topic` at `position` of the packed list (-1: look it up, appending it
    with count 0 if absent); returns the new length."""
    if position < 0:
        position = 0
        while position < nnz and (word_list[position] & TOPIC_BITS) != topic:
            position += 1
        if position == nnz:
            word_list[nnz] = topic
            nnz += 1
    word_list[position] += ONE_COUNT
    while position > 0 and word_list[position - 1] < word_list[position]:
        word_list[position - 1], word_list[position] = (word_list[position],
                                                        word_list[position - 1])
        position -= 1
    return nnz


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


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def _doc_start(doc_row, alpha, inv_nk, eta, q_coef, doc_topics, doc_pos):
    """At a document start: its topic list, the q coefficients of its topics and the bucket
    sums s = Σ_k α_k η ι_k and r = Σ_k n_dk η ι_k (ι_k = 1 / (n_k + Vη)). Returns
    (doc_nnz, s, r)."""
    smoothing = 0.0
    doc_mass = 0.0
    doc_nnz = 0
    for k in range(alpha.shape[0]):
        smoothing += alpha[k] * eta * inv_nk[k]
        if doc_row[k] != 0:
            doc_topics[doc_nnz] = k
            doc_pos[k] = doc_nnz
            doc_nnz += 1
            doc_mass += doc_row[k] * eta * inv_nk[k]
            q_coef[k] = (alpha[k] + doc_row[k]) * inv_nk[k]
    return doc_nnz, smoothing, doc_mass


@numba.njit(inline="always")
def _move_token(topic, sign, doc_row, n_k, alpha, eta, v_eta, inv_nk, q_coef, buckets):
    """n_dk += sign, n_k += sign for `topic`, refreshing ι_k = 1 / (n_k + Vη), its q
    coefficient and the bucket sums buckets = [s, r] (two terms each change)."""
    buckets[0] -= alpha[topic] * eta * inv_nk[topic]
    buckets[1] -= doc_row[topic] * eta * inv_nk[topic]
    doc_row[topic] += sign
    n_k[topic] += sign
    inverse = 1.0 / (n_k[topic] + v_eta)
    inv_nk[topic] = inverse
    buckets[0] += alpha[topic] * eta * inverse
    buckets[1] += doc_row[topic] * eta * inverse
    q_coef[topic] = (alpha[topic] + doc_row[topic]) * inverse


@numba.njit(cache=True, nogil=True, fastmath=FAST)
def sparse_block_sweep(doc_ptr, words, z, n_dk, n_k, alpha, eta, doc_lo, doc_hi, state,
                       word_lists, word_nnz):
    """One SparseLDA sweep over documents doc_lo..doc_hi-1, in place on z : (N,) int32,
    n_dk : (D, K) int32, n_k : (K,) int64 and the packed word counts word_lists : (V, K)
    int64, word_nnz : (V,) int32 (build_word_topic_lists; n_wk itself is not touched);
    draws from `state` : (1,) uint64."""
    n_words, n_topics = word_lists.shape
    v_eta = n_words * eta
    inv_nk = 1.0 / (n_k + v_eta)
    q_coef = alpha * inv_nk  # (α_k + n_dk) ι_k, here for n_dk = 0
    q_cumulative = np.empty(n_topics)
    doc_topics = np.empty(n_topics, dtype=np.int32)
    doc_pos = np.empty(n_topics, dtype=np.int32)
    buckets = np.empty(2)
    for d in range(doc_lo, doc_hi):
        doc_row = n_dk[d]
        doc_nnz, buckets[0], buckets[1] = _doc_start(doc_row, alpha, inv_nk, eta, q_coef,
                                                     doc_topics, doc_pos)
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            w = words[i]
            word_list = word_lists[w]
            topic = z[i]
            _move_token(topic, -1, doc_row, n_k, alpha, eta, v_eta, inv_nk, q_coef, buckets)
            if doc_row[topic] == 0:  # swap-remove from the document's list
                doc_nnz -= 1
                last = doc_topics[doc_nnz]
                doc_topics[doc_pos[topic]] = last
                doc_pos[last] = doc_pos[topic]
            nnz = _decrement_word_topic(word_list, word_nnz[w], topic)
            topic, position = _draw_topic(state, word_list, nnz, q_coef, q_cumulative,
                                          buckets, doc_topics, doc_nnz, doc_row, alpha,
                                          inv_nk, eta)
            word_nnz[w] = _increment_word_topic(word_list, nnz, topic, position)
            z[i] = topic
            _move_token(topic, 1, doc_row, n_k, alpha, eta, v_eta, inv_nk, q_coef, buckets)
            if doc_row[topic] == 1:
                doc_topics[doc_nnz] = topic
                doc_pos[topic] = doc_nnz
                doc_nnz += 1
        for j in range(doc_nnz):  # back to n_dk = 0 for the next document
            topic = doc_topics[j]
            q_coef[topic] = alpha[topic] * inv_nk[topic]


@numba.njit(inline="always", fastmath=FAST)
def _draw_topic(state, word_list, word_nnz, q_coef, q_cumulative, buckets, doc_topics,
                doc_nnz, doc_row, alpha, inv_nk, eta):
    """Draw a topic from the three buckets: q = Σ over the word's topics of q_coef_k n_wk,
    then r = buckets[1], then s = buckets[0]. Returns (topic, its position in the word's
    list, or -1 when drawn from r or s)."""
    word_mass = 0.0
    for j in range(word_nnz):
        entry = word_list[j]
        word_mass += q_coef[entry & TOPIC_BITS] * np.float64(entry >> np.int64(32))
        q_cumulative[j] = word_mass
    u = next_double(state) * (word_mass + buckets[1] + buckets[0])
    if u < word_mass:
        j = 0
        while j < word_nnz - 1 and q_cumulative[j] <= u:
            j += 1
        return np.int64(word_list[j] & TOPIC_BITS), j
    u -= word_mass
    if u < buckets[1] and doc_nnz > 0:
        return np.int64(_search_doc_bucket(u, doc_topics, doc_nnz, doc_row, inv_nk, eta)), -1
    return np.int64(_search_smoothing_bucket(u - buckets[1], alpha, inv_nk, eta)), -1


__all__ = ["build_word_topic_lists", "sparse_block_sweep", "unpack_word_topic_lists"]
