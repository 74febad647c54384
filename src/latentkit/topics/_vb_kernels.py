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

Implementation: the kernel is sequential inside and releases the GIL, so an EM engine can run
several chunks of documents on threads at once and sum their sstats. Each document's columns
of exp_elog_beta are gathered once into a small word-major float64 buffer (n_d, K), so the K
values of a word are contiguous and stay in L1 across the γ iterations (this measured ~1.25x
faster than reading the rows of a (V, K) word-major copy of the whole matrix, scattered over
V K doubles); nothing is allocated per document, and each γ iteration costs K digammas, K exps
and 2 n_d K multiply-adds, the latter compiled with reassociation allowed (`_FAST`) so the
length-K reductions vectorize. Arithmetic is in float64 whatever the input dtype; float32
input gives float32 gamma and sstats.
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


@njit(cache=True, nogil=True)
def _exp_centered_digamma(gamma, t):
    """t_k <- exp(ψ(γ_k) - max_j ψ(γ_j)) for γ : (K,); returns max_j ψ(γ_j)."""
    K = gamma.shape[0]
    top = -math.inf
    for k in range(K):
        t[k] = digamma(gamma[k])
        top = max(top, t[k])
    for k in range(K):
        t[k] = math.exp(t[k] - top)
    return top


@njit(cache=True, nogil=True, fastmath=_FAST)
def _update_gamma(gamma, t, acc, beta_doc, doc_counts, n_words, alpha):
    """One fixed-point step γ_k <- α_k + t_k Σ_w n_w β[w, k] / norm_w (t from the current γ);
    returns mean_k |Δγ_k|. beta_doc : (>= n_words, K) the document's gathered columns of
    exp(E[log β]); doc_counts : (n_words,) their counts; t, acc : (K,) work."""
    K = gamma.shape[0]
    _exp_centered_digamma(gamma, t)
    acc[:] = 0.0
    for j in range(n_words):
        norm = NORM_FLOOR
        for k in range(K):
            norm += t[k] * beta_doc[j, k]
        scale = doc_counts[j] / norm
        for k in range(K):
            acc[k] += beta_doc[j, k] * scale
    change = 0.0
    for k in range(K):
        updated = alpha[k] + t[k] * acc[k]
        change += abs(updated - gamma[k])
        gamma[k] = updated
    return change / K


@njit(cache=True, nogil=True)
def _finish_document(gamma, t, beta_doc, words, doc_counts, alpha, sstats):
    """Add n_w φ_wk at the final γ : (K,) to sstats : (K, V) and return doc_bound (float64),
    recomputing t = exp(E[log θ] - max E[log θ]) from γ in float64."""
    K = gamma.shape[0]
    gamma_sum = 0.0
    alpha_sum = 0.0
    for k in range(K):
        gamma_sum += gamma[k]
        alpha_sum += alpha[k]
    top = _exp_centered_digamma(gamma, t)  # t_k = exp(ψ(γ_k) - top)
    psi_sum = digamma(gamma_sum)
    bound = 0.0
    for j in range(words.shape[0]):
        norm = NORM_FLOOR
        for k in range(K):
            norm += t[k] * beta_doc[j, k]
        # log Σ_k exp(E log θ_k + E log β_kw) = (top - ψ(Σγ)) + log norm_w
        bound += doc_counts[j] * (top - psi_sum + math.log(norm))
        scale = doc_counts[j] / norm
        for k in range(K):
            sstats[k, words[j]] += t[k] * beta_doc[j, k] * scale
    for k in range(K):
        elog_theta = digamma(gamma[k]) - psi_sum
        bound += (alpha[k] - gamma[k]) * elog_theta
        bound += math.lgamma(gamma[k]) - math.lgamma(alpha[k])
    return bound + math.lgamma(alpha_sum) - math.lgamma(gamma_sum)


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
    longest = 0
    for d in range(n_docs):
        longest = max(longest, indptr[d + 1] - indptr[d])
    beta_doc = np.empty((longest, K))  # the current document's columns, word-major
    gamma = np.empty((n_docs, K), dtype=exp_elog_beta.dtype)
    sstats = np.zeros((K, V), dtype=exp_elog_beta.dtype)
    doc_bound = np.zeros(n_docs)
    gamma_d, t, acc = np.empty(K), np.empty(K), np.empty(K)
    for d in range(n_docs):
        start, stop = indptr[d], indptr[d + 1]
        n_words = 0.0
        for j in range(start, stop):
            n_words += counts[j]
            for k in range(K):
                beta_doc[j - start, k] = exp_elog_beta[k, indices[j]]
        for k in range(K):
            gamma_d[k] = alpha[k] + n_words / K
        if n_words > 0.0:
            doc_counts = counts[start:stop]
            for _ in range(max_iter):
                change = _update_gamma(
                    gamma_d, t, acc, beta_doc, doc_counts, stop - start, alpha)
                if change < tol:
                    break
            doc_bound[d] = _finish_document(
                gamma_d, t, beta_doc, indices[start:stop], doc_counts, alpha, sstats)
        for k in range(K):
            gamma[d, k] = gamma_d[k]
    return gamma, sstats, doc_bound


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


__all__ = ["NORM_FLOOR", "doc_topic_inference", "global_bound", "infer_documents"]
