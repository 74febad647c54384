"""Variational-Bayes kernels of latent Dirichlet allocation (Blei, Ng & Jordan 2003;
Hoffman, Blei & Bach 2010).

Model, for documents d = 1 .. D over a vocabulary of V words and K topics:

    β_k ~ Dir(η) over the V words,   θ_d ~ Dir(α),
    z_dn ~ Cat(θ_d),   w_dn ~ Cat(β_{z_dn}).

Mean-field posterior q(θ_d) = Dir(γ_d), q(z_dn) = Cat(φ_dn), q(β_k) = Dir(λ_k), with
E[log θ_dk] = ψ(γ_dk) - ψ(Σ_j γ_dj) and likewise E[log β_kw] from λ (`dirichlet_expectation`).

E-step (`doc_topic_inference`), per document with distinct words w and counts n_w, given
exp_elog_beta[k, w] = exp(E[log β_kw]): with t_k = exp(E[log θ_dk]),

    φ_wk = t_k exp_elog_beta[k, w] / norm_w,   norm_w = Σ_k t_k exp_elog_beta[k, w],
    γ_dk = α_k + Σ_w n_w φ_wk = α_k + t_k Σ_w n_w exp_elog_beta[k, w] / norm_w,

iterated from γ_dk = α_k + N_d / K until mean_k |Δγ_dk| < tol. φ is invariant to a common
factor of t, so the loop uses t_k = exp(ψ(γ_dk) - max_j ψ(γ_dj)): the ψ(Σγ) term is never
needed there and the largest t_k is 1 (no underflow in float32). The returned statistics are
sstats[k, w] = Σ_d n_dw φ_dwk at the final γ (the M-step is λ = η + sstats), and

    doc_bound_d = Σ_w n_w log Σ_k exp(E[log θ_dk] + E[log β_kw])
                  + Σ_k (α_k - γ_dk) E[log θ_dk] + Σ_k (log Γ(γ_dk) - log Γ(α_k))
                  + log Γ(Σ_k α_k) - log Γ(Σ_k γ_dk),

which is E_q[log p(w_d, z_d, θ_d | α, β)] - E_q[log q(z_d, θ_d)] with φ at its optimum given
γ_d (then Σ_k φ (E log θ + E log β) - Σ φ log φ = log Σ_k exp(E log θ + E log β)).

The corpus evidence lower bound (ELBO) is

    ELBO = Σ_d doc_bound_d + global_bound(λ, η),
    global_bound = Σ_k E_q[log p(β_k | η)] - E_q[log q(β_k | λ_k)] = -Σ_k KL(Dir(λ_k) || Dir(η))
                 = Σ_kw (η - λ_kw) E[log β_kw] + Σ_kw (log Γ(λ_kw) - log Γ(η))
                   + Σ_k (log Γ(V η) - log Γ(Σ_w λ_kw)).

Batch coordinate ascent (E-step over all documents, then λ = η + sstats) never decreases it.

Implementation. `doc_topic_inference` = `doc_gammas` (the fixed point of each document's γ,
independent of the other documents, so any split of the documents over threads gives the same
γ) followed by `accumulate_documents` (sstats and doc_bound at the final γ, in document order,
one pass: a 1/(inner iterations) share of the work). Both release the GIL. Each document's
columns of exp_elog_beta are gathered once into a topic-major float64 buffer (K, n_d), so a γ
step is two long contiguous loops over the document's words per topic,

    norm = NORM_FLOOR + Σ_k t_k beta_doc[k, :],   ratio = n / norm,
    acc_k = Σ_w beta_doc[k, w] ratio_w,

vectorized over words (compiled with reassociation allowed, `_FAST`) with one division per
word and no per-word horizontal sum; nothing is allocated per document. t_k needs K digammas
per step: `_digamma_parts` writes ψ(x) = log(x + 8) + u(x) with u free of branches and of
transcendental calls (ψ(x) = ψ(x + 8) - Σ_{i<8} 1/(x + i), the sum as one quotient P'(x)/P(x)
of P(x) = Π_{i<8} (x + i), then the asymptotic series at x + 8, whose first omitted term is
below 2e-15), so t_k = exp(ψ(γ_k) - max_j ψ(γ_j)) = (γ_k + 8) exp(u(γ_k) - max_j ψ(γ_j))
costs one exp and is accurate to ~1e-15 absolute, which is all φ needs; the bound uses the
relative-accuracy `digamma`.
`exp_expected_topics` gives exp(E[log β]) for chosen columns by the same digamma in one pass.
Arithmetic is in float64 whatever the input dtype; float32 input gives float32 gamma and
sstats.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.special import gammaln, psi

from ..exceptions import InvalidInputError, InvalidParameterError
from ._special import digamma

#: added to norm_w = Σ_k t_k exp_elog_beta[k, w] so a word that every topic gives zero
#: probability (underflow) cannot divide by zero; the largest t_k is 1, so a norm this small
#: only arises from such underflow and the floor is negligible otherwise
NORM_FLOOR = 1e-30
#: fastmath flags of the hot loop: reassociation and fused multiply-add, but no assumption
#: that values are finite (so inf and NaN still propagate as in IEEE arithmetic)
_FAST = {"reassoc", "contract", "arcp", "nsz"}


#: ψ is shifted by this many unit steps before its asymptotic series (`_digamma_shifted`)
_SHIFT = 8


@njit(cache=True, nogil=True)
def _digamma_parts(x):
    """(y, u) with ψ(x) = log y + u for a scalar x > 0, to ~1e-15 absolute: y = x + 8 and
    u = -1/(2y) - Σ_{n=1}^{7} B_2n / (2n y^2n) - Σ_{i<8} 1/(x + i), the asymptotic series of
    ψ(y) less its log and the recurrence ψ(x) = ψ(x + 8) - Σ_{i<8} 1/(x + i), whose sum is
    one quotient P'(x) / P(x) of P(x) = Π_{i<8} (x + i) (product rule). No branch and no
    transcendental call: exp(ψ(x) - c) = y exp(u - c) costs one exp. Overflows past 1e38."""
    value, slope = 1.0, 0.0  # P and P' of the first i factors
    for i in range(_SHIFT):
        slope = slope * (x + i) + value
        value = value * (x + i)
    y = x + _SHIFT
    z = 1.0 / (y * y)
    tail = z * (1.0 / 12.0 - z * (1.0 / 120.0 - z * (1.0 / 252.0 - z * (
        1.0 / 240.0 - z * (1.0 / 132.0 - z * (691.0 / 32760.0 - z / 12.0))))))
    return y, -0.5 / y - tail - slope / value


@njit(cache=True, nogil=True)
def _exp_centered_digamma(gamma, t):
    """t_k <- exp(ψ(γ_k) - max_j ψ(γ_j)) for γ : (K,); returns max_j ψ(γ_j) (ψ increases,
    so its max is at the largest γ_j: one log per call)."""
    K = gamma.shape[0]
    largest = 0
    for k in range(1, K):
        if gamma[k] > gamma[largest]:
            largest = k
    y, u = _digamma_parts(gamma[largest])
    top = math.log(y) + u
    for k in range(K):
        y, u = _digamma_parts(gamma[k])
        t[k] = y * math.exp(u - top)
    return top


@njit(cache=True, nogil=True, fastmath=_FAST)
def _word_norms(t, beta_doc, n_words, norm):
    """norm_w <- NORM_FLOOR + Σ_k t_k beta_doc[k, w] for w < n_words; beta_doc : (K, >=
    n_words); t : (K,); norm : (>= n_words,). Four topics per sweep over the words, so
    norm is loaded and stored K/4 times, not K."""
    for j in range(n_words):
        norm[j] = NORM_FLOOR
    K = t.shape[0]
    for k in range(0, K - K % 4, 4):
        t0, t1, t2, t3 = t[k], t[k + 1], t[k + 2], t[k + 3]
        for j in range(n_words):
            norm[j] += (t0 * beta_doc[k, j] + t1 * beta_doc[k + 1, j]
                        + t2 * beta_doc[k + 2, j] + t3 * beta_doc[k + 3, j])
    for k in range(K - K % 4, K):
        for j in range(n_words):
            norm[j] += t[k] * beta_doc[k, j]


@njit(cache=True, nogil=True, fastmath=_FAST)
def _word_ratios(t, beta_doc, doc_counts, ratio):
    """ratio_w <- n_w / norm_w (`_word_norms`) for the n_d = doc_counts.shape[0] words."""
    _word_norms(t, beta_doc, doc_counts.shape[0], ratio)
    for j in range(doc_counts.shape[0]):
        ratio[j] = doc_counts[j] / ratio[j]


@njit(cache=True, nogil=True, fastmath=_FAST)
def _update_gamma(gamma, t, ratio, beta_doc, doc_counts, alpha):
    """One fixed-point step γ_k <- α_k + t_k Σ_w beta_doc[k, w] n_w / norm_w (t from the
    current γ); returns mean_k |Δγ_k|. beta_doc : (K, >= n_d) the document's gathered columns
    of exp(E[log β]); doc_counts : (n_d,) their counts; t : (K,), ratio : (>= n_d,) work."""
    K, n_words = gamma.shape[0], doc_counts.shape[0]
    _exp_centered_digamma(gamma, t)
    _word_ratios(t, beta_doc, doc_counts, ratio)
    change = 0.0
    for k in range(0, K - K % 4, 4):  # four topics per sweep over the words
        s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
        for j in range(n_words):
            s0 += beta_doc[k, j] * ratio[j]
            s1 += beta_doc[k + 1, j] * ratio[j]
            s2 += beta_doc[k + 2, j] * ratio[j]
            s3 += beta_doc[k + 3, j] * ratio[j]
        change += _set_gamma(gamma, alpha, t, k, s0) + _set_gamma(gamma, alpha, t, k + 1, s1)
        change += _set_gamma(gamma, alpha, t, k + 2, s2) + _set_gamma(gamma, alpha, t, k + 3, s3)
    for k in range(K - K % 4, K):
        total = 0.0
        for j in range(n_words):
            total += beta_doc[k, j] * ratio[j]
        change += _set_gamma(gamma, alpha, t, k, total)
    return change / K


@njit(cache=True, nogil=True)
def _set_gamma(gamma, alpha, t, k, total):
    """γ_k <- α_k + t_k total; returns |Δγ_k|."""
    updated = alpha[k] + t[k] * total
    change = abs(updated - gamma[k])
    gamma[k] = updated
    return change


@njit(cache=True, nogil=True)
def _gather_document(exp_elog_beta, words, counts, beta_doc):
    """beta_doc[k, j] <- exp_elog_beta[k, words[j]] (topic-major); returns Σ_j counts[j]."""
    n_words = 0.0
    for j in range(words.shape[0]):
        n_words += counts[j]
    for k in range(beta_doc.shape[0]):
        for j in range(words.shape[0]):
            beta_doc[k, j] = exp_elog_beta[k, words[j]]
    return n_words


@njit(cache=True, nogil=True)
def _longest_document(indptr):
    longest = 0
    for d in range(indptr.shape[0] - 1):
        longest = max(longest, indptr[d + 1] - indptr[d])
    return longest


@njit(cache=True, nogil=True)
def doc_gammas(indptr, indices, counts, exp_elog_beta, alpha, max_iter, tol, gamma, first,
               last):
    """γ_d : (K,) of documents first <= d < last to their fixed point, written to
    gamma[d] (gamma : (n_docs, K), float64); arguments as `doc_topic_inference`."""
    _documents(indptr, indices, counts, exp_elog_beta, alpha, max_iter, tol, gamma,
               np.empty((0, 0)), np.empty(0), np.empty(0), first, last)


@njit(cache=True, nogil=True)
def doc_gammas_and_weights(indptr, indices, counts, exp_elog_beta, alpha, max_iter, tol,
                           gamma, t_doc, word_ratio, doc_bound, first, last):
    """`doc_gammas` of documents first <= d < last, then each one's weights at its final γ
    (`_document_weights`): t_doc[d] : (K,), word_ratio[indptr[d]:indptr[d + 1]] and
    doc_bound[d] (0 for an empty document), all float64. Every output of document d
    depends on d alone, so ranges of documents may run on threads; `scatter_documents`
    then adds the statistics in document order."""
    _documents(indptr, indices, counts, exp_elog_beta, alpha, max_iter, tol, gamma, t_doc,
               word_ratio, doc_bound, first, last)


@njit(cache=True, nogil=True)
def _documents(indptr, indices, counts, exp_elog_beta, alpha, max_iter, tol, gamma, t_doc,
               word_ratio, doc_bound, first, last):
    """The fixed points of documents first <= d < last, and their weights when doc_bound
    has room for them (else only γ)."""
    K, longest = exp_elog_beta.shape[0], _longest_document(indptr)
    buffer, ratio, t = np.empty(K * longest), np.empty(longest), np.empty(K)
    weights = doc_bound.shape[0] > 0
    for d in range(first, last):
        start, stop = indptr[d], indptr[d + 1]
        # the document's columns, contiguous (K, n_d) (rows of a (K, longest) buffer would
        # sit a power-of-two stride apart and evict each other from the L1 cache)
        beta_doc = buffer[:K * (stop - start)].reshape((K, stop - start))
        n_words = _gather_document(exp_elog_beta, indices[start:stop], counts[start:stop],
                                   beta_doc)
        gamma_d = gamma[d]
        for k in range(K):
            gamma_d[k] = alpha[k] + n_words / K
        if n_words > 0.0:
            for _ in range(max_iter):
                if _update_gamma(gamma_d, t, ratio, beta_doc, counts[start:stop],
                                 alpha) < tol:
                    break
        if weights:
            doc_bound[d] = 0.0
            if n_words > 0.0:
                doc_bound[d] = _document_weights(gamma_d, t_doc[d], word_ratio[start:stop],
                                                 beta_doc, counts[start:stop], alpha)


@njit(cache=True, nogil=True)
def _document_weights(gamma, t, ratio, beta_doc, doc_counts, alpha):
    """At the final γ : (K,): t_k = exp(E[log θ_k] - max E[log θ]) : (K,) and ratio_w =
    n_w / norm_w : (n_d,) written in place, so that n_w φ_wk = t_k beta_doc[k, w] ratio_w;
    returns doc_bound (float64), all in float64."""
    K = gamma.shape[0]
    gamma_sum, alpha_sum = 0.0, 0.0
    for k in range(K):
        gamma_sum += gamma[k]
        alpha_sum += alpha[k]
    top = _exp_centered_digamma(gamma, t)  # t_k = exp(ψ(γ_k) - top)
    psi_sum = digamma(gamma_sum)
    _word_norms(t, beta_doc, doc_counts.shape[0], ratio)  # ratio_w = norm_w, then n_w / norm_w
    bound = 0.0
    for j in range(doc_counts.shape[0]):
        # log Σ_k exp(E log θ_k + E log β_kw) = (top - ψ(Σγ)) + log norm_w
        bound += doc_counts[j] * (top - psi_sum + math.log(ratio[j]))
        ratio[j] = doc_counts[j] / ratio[j]
    for k in range(K):
        elog_theta = digamma(gamma[k]) - psi_sum
        bound += (alpha[k] - gamma[k]) * elog_theta
        bound += math.lgamma(gamma[k]) - math.lgamma(alpha[k])
    return bound + math.lgamma(alpha_sum) - math.lgamma(gamma_sum)


@njit(cache=True, nogil=True)
def scatter_documents(indptr, indices, exp_elog_beta, t_doc, word_ratio, sstats):
    """sstats[k, w] += Σ_d n_dw φ_dwk = Σ_d t_doc[d, k] exp_elog_beta[k, w] word_ratio[dw]
    (`doc_gammas_and_weights`), documents in order, so the sum does not depend on how the
    weights were computed; sstats : (K, V) in exp_elog_beta's dtype."""
    K = exp_elog_beta.shape[0]
    for d in range(indptr.shape[0] - 1):
        for k in range(K):
            for j in range(indptr[d], indptr[d + 1]):
                w = indices[j]
                sstats[k, w] += t_doc[d, k] * np.float64(exp_elog_beta[k, w]) * word_ratio[j]


@njit(cache=True, nogil=True)
def accumulate_documents(indptr, indices, counts, exp_elog_beta, alpha, gamma, sstats,
                         doc_bound):
    """sstats[k, w] += Σ_d n_dw φ_dwk and doc_bound[d] (n_docs,) at the given γ : (n_docs,
    K) float64, documents in order (so the sum does not depend on how γ was computed);
    sstats : (K, V) in exp_elog_beta's dtype. Empty documents add nothing, bound 0."""
    K, longest = exp_elog_beta.shape[0], _longest_document(indptr)
    buffer = np.empty(K * longest)
    t_doc, word_ratio = np.zeros((indptr.shape[0] - 1, K)), np.zeros(indices.shape[0])
    for d in range(indptr.shape[0] - 1):
        start, stop = indptr[d], indptr[d + 1]
        beta_doc = buffer[:K * (stop - start)].reshape((K, stop - start))
        n_words = _gather_document(exp_elog_beta, indices[start:stop], counts[start:stop],
                                   beta_doc)
        doc_bound[d] = 0.0
        if n_words > 0.0:
            doc_bound[d] = _document_weights(gamma[d], t_doc[d], word_ratio[start:stop],
                                             beta_doc, counts[start:stop], alpha)
    scatter_documents(indptr, indices, exp_elog_beta, t_doc, word_ratio, sstats)


@njit(cache=True, nogil=True)
def doc_topic_inference(indptr, indices, counts, exp_elog_beta, alpha, max_iter=100, tol=1e-3):
    """Variational E-step of LDA for a block of documents (equations in the module docstring).

    indptr : (n_docs + 1,) int64, indices : (nnz,) int32, counts : (nnz,) float64 — the
        document-term counts in CSR form (word ids unique within a row);
    exp_elog_beta : (K, V) float32 or float64, exp(E[log β_kw]) under q(β);
    alpha : (K,) float64 doc-topic prior; max_iter, tol: the γ loop stops after max_iter
        steps or once mean_k |Δγ_dk| < tol.
    Returns gamma : (n_docs, K), sstats : (K, V) (both in exp_elog_beta's dtype) and
    doc_bound : (n_docs,) float64. An empty document gets γ = α, bound 0 and no statistics.
    """
    n_docs = indptr.shape[0] - 1
    K, V = exp_elog_beta.shape
    gamma = np.empty((n_docs, K))
    doc_gammas(indptr, indices, counts, exp_elog_beta, alpha, max_iter, tol, gamma, 0, n_docs)
    sstats = np.zeros((K, V), dtype=exp_elog_beta.dtype)
    doc_bound = np.empty(n_docs)
    accumulate_documents(indptr, indices, counts, exp_elog_beta, alpha, gamma, sstats,
                         doc_bound)
    return gamma.astype(exp_elog_beta.dtype), sstats, doc_bound


@njit(cache=True, nogil=True, fastmath=_FAST)
def _expected_topic_parts(topic_word, columns):
    """(y, v) : (K, n_columns) each with E[log β_kw] = log y + v for w = columns[j]:
    `_digamma_parts` of λ_kw less ψ(Σ_v λ_kv). topic_word : (K, V) positive."""
    K = topic_word.shape[0]
    y, v = np.empty((K, columns.shape[0])), np.empty((K, columns.shape[0]))
    for k in range(K):
        row_total = 0.0
        for w in range(topic_word.shape[1]):
            row_total += topic_word[k, w]
        psi_total = digamma(row_total)
        for j in range(columns.shape[0]):
            y[k, j], v[k, j] = _digamma_parts(topic_word[k, columns[j]])
            v[k, j] -= psi_total
    return y, v


def exp_expected_topics(topic_word: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """exp(E[log β_kw]) = exp(ψ(λ_kw) - ψ(Σ_v λ_kv)) : (K, n_columns) float64 for the words
    w = columns[j] (columns : (n_columns,) int) of λ = topic_word : (K, V) positive: the
    digamma's branch-free part compiled (vectorized over words), numpy's SIMD exp after."""
    y, v = _expected_topic_parts(np.asarray(topic_word, dtype=np.float64),
                                 np.asarray(columns, dtype=np.int64))
    np.exp(v, out=v)
    return np.multiply(y, v, out=v)


@njit(cache=True, nogil=True)
def minibatch_words(indices, n_words):
    """The distinct words of a minibatch and its entries renumbered over them: columns :
    (U,) int64 ascending, the word ids present in indices : (nnz,) (ids < n_words), and
    local : (nnz,) int32 with columns[local[i]] = indices[i]. O(nnz + n_words)."""
    position = np.full(n_words, -1, dtype=np.int64)
    for i in range(indices.shape[0]):
        position[indices[i]] = 0
    n_columns = 0
    for w in range(n_words):
        if position[w] == 0:
            position[w] = n_columns
            n_columns += 1
    columns = np.empty(n_columns, dtype=np.int64)
    for w in range(n_words):
        if position[w] >= 0:
            columns[position[w]] = w
    local = np.empty(indices.shape[0], dtype=np.int32)
    for i in range(indices.shape[0]):
        local[i] = position[indices[i]]
    return columns, local


def infer_documents(X, exp_elog_beta, alpha, max_iter: int = 100, tol: float = 1e-3):
    """`doc_topic_inference` on a document-term matrix, validated once here.

    X : (n_docs, V) scipy.sparse matrix (or dense array) of non-negative counts;
    exp_elog_beta : (K, V) float32 or float64; alpha : (K,) positive (or a scalar, broadcast).
    Returns gamma : (n_docs, K), sstats : (K, V), doc_bound : (n_docs,) float64.
    """
    exp_elog_beta = np.asarray(exp_elog_beta)
    if exp_elog_beta.dtype not in (np.float32, np.float64):
        exp_elog_beta = exp_elog_beta.astype(np.float64)
    if exp_elog_beta.ndim != 2:
        raise InvalidInputError(
            f"exp_elog_beta must be (K, V); got shape {exp_elog_beta.shape}.")
    K, V = exp_elog_beta.shape
    if not np.all(np.isfinite(exp_elog_beta)) or np.any(exp_elog_beta < 0):
        raise InvalidInputError("exp_elog_beta must be finite and non-negative.")
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (K,)).copy()
    if not np.all(np.isfinite(alpha) & (alpha > 0)):
        raise InvalidParameterError(f"alpha must be positive and finite; got {alpha}.")
    if int(max_iter) < 1 or not tol >= 0:
        raise InvalidParameterError(
            f"max_iter must be >= 1 and tol >= 0; got max_iter={max_iter}, tol={tol}.")
    X = sp.csr_matrix(X)
    if X.shape[1] != V:
        raise InvalidInputError(f"X has {X.shape[1]} columns but exp_elog_beta has V={V}.")
    X.sum_duplicates()
    counts = X.data.astype(np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise InvalidInputError("X must hold finite non-negative counts.")
    return doc_topic_inference(
        X.indptr.astype(np.int64), X.indices.astype(np.int32), counts, exp_elog_beta,
        alpha, int(max_iter), float(tol))


def global_bound(lam: np.ndarray, eta: float) -> float:
    """Σ_k E_q[log p(β_k | η)] - E_q[log q(β_k | λ_k)] = -Σ_k KL(Dir(λ_k) || Dir(η · 1_V)).

    lam : (K, V) positive variational topic-word parameters λ; eta : symmetric prior η > 0.
    Returns a float64: Σ_kw (η - λ_kw) E[log β_kw] + Σ_kw (log Γ(λ_kw) - log Γ(η))
    + Σ_k (log Γ(V η) - log Γ(Σ_w λ_kw)).
    """
    lam = np.asarray(lam, dtype=np.float64)
    K, V = lam.shape
    elog_beta = psi(lam) - psi(lam.sum(axis=1, keepdims=True))
    total = np.sum((eta - lam) * elog_beta)
    total += np.sum(gammaln(lam)) - K * V * gammaln(eta)
    total += K * gammaln(V * eta) - np.sum(gammaln(lam.sum(axis=1)))
    return float(total)


__all__ = ["NORM_FLOOR", "accumulate_documents", "doc_gammas", "doc_gammas_and_weights",
           "doc_topic_inference", "scatter_documents",
           "exp_expected_topics", "global_bound", "infer_documents", "minibatch_words"]
