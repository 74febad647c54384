"""Held-out likelihood of a fitted LDA model, the same code for every training method.

Whatever trained the model (batch VB, online VB, collapsed Gibbs), it is evaluated from two
point estimates: phi : (K, V) the expected topic-word distributions (rows sum to 1) and
alpha : (K,) the doc-topic prior. The model is

    θ_d ~ Dir(α),   z_dn ~ Cat(θ_d),   w_dn ~ Cat(φ_{z_dn}).

Two estimators of how well (φ, α) predicts unseen documents:

1. Document completion (Wallach et al. 2009, "Evaluation methods for topic models", §4.3;
   the number Hoffman, Blei & Bach 2010 report). Each held-out document's tokens are split
   at random in two halves (`split_halves`); θ_d is estimated from the observed half by
   variational inference with φ fixed, the fixed point

       γ_d = α + Σ_w n_w t ⊙ φ[:, w] / (t · φ[:, w]),   t_k = exp(E[log θ_dk]),

   (`_vb_kernels.doc_topic_inference` with exp_elog_beta = φ), θ_d = γ_d / Σ_k γ_dk, and the
   held-out half is scored with the plug-in predictive

       log_lik_d = Σ_w n^held_dw log Σ_k θ_dk φ_kw.

2. The left-to-right estimator with resampling (Wallach et al. 2009, Algorithm 3) of
   log p(w_d | Φ, α), the marginal over θ_d and z_d, from the chain rule
   p(w) = Π_n p(w_n | w_<n); for each position n and particle r, the earlier assignments
   z_<n are refreshed by one Gibbs sweep of the collapsed conditional

       p(z_m = k | w_m, z_<n \\ m) ∝ φ_{k, w_m} (N_k^{<n \\ m} + α_k),

   then p_n = (1/R) Σ_r Σ_k φ_{k, w_n} (N_k^{<n, r} + α_k) / (n + Σα) (n earlier tokens),
   z_n is drawn from its conditional, and log p(w) ≈ Σ_n log p_n.

The left-to-right value is log p of the token SEQUENCE (w_1 .. w_N), not of the bag of
words: the bag's probability adds log(N! / Π_w n_w!) (the multinomial coefficient). Each
document's tokens are taken in a random (seeded) order; the exact p(w) of a sequence is
exchangeable, so the order changes only the variance.

Bias of Algorithm 3, and the particle-filter option. Each particle's z_<n is NOT an exact
draw from p(z_<n | w_<n): z_<n-1 came from the posterior given w_<n-1, and one Gibbs sweep
from there does not reach the posterior given w_<n. So E[p_n] differs from p(w_n | w_<n)
from the third token on, by an amount that more particles do not remove (the particles are
independent; only the Jensen term of the log shrinks). On the tests' 5-6 token documents the
limit misses the exact log p(w) by 0.01-0.1 nats, of either sign depending on the token
order (+0.09 nats averaged over random orders on one document: 6 standard errors at
R = 2000); it is exact in expectation for N <= 2, for K = 1 and when all topics are equal.

With `resample_particles=True` the particles are resampled ∝ their predictive p(w_n | z_<n)
before z_n is drawn, which makes the method a sequential Monte Carlo sampler (the Gibbs sweep
is then an MCMC move that leaves p(z_<n | w_<n) invariant): the product Π_n p_n is an
unbiased estimate of p(w) (Del Moral 2004), at the same cost.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import scipy.sparse as sp
from numba import prange

from ..exceptions import InvalidInputError, InvalidParameterError
from ._rng import next_double, stream
from ._vb_kernels import doc_topic_inference

#: rows of phi must sum to 1 within this (they are probability distributions)
ROW_SUM_TOLERANCE = 1e-6


# --------------------------------------------------------------------------- validation


def _count_matrix(X, name: str) -> sp.csr_matrix:
    """X as a CSR matrix of non-negative integer counts (sorted indices, no duplicates);
    never modifies the caller's matrix."""
    X = sp.csr_matrix(X, copy=True)  # also accepts a dense array
    if X.ndim != 2:
        raise InvalidInputError(f"{name} must be (n_docs, n_words); got shape {X.shape}.")
    X.sum_duplicates()
    data = X.data
    if not np.all(np.isfinite(data)) or np.any(data < 0) or np.any(data != np.round(data)):
        raise InvalidInputError(f"{name} must hold non-negative integer counts (a bag of words).")
    X.eliminate_zeros()
    return X


def _kernel_arrays(X: sp.csr_matrix):
    """The CSR arrays the kernels take: indptr (n_docs + 1,) int64, indices (nnz,) int32,
    counts (nnz,) float64."""
    return (X.indptr.astype(np.int64), X.indices.astype(np.int32),
            X.data.astype(np.float64))


def _check_topics(phi, alpha):
    """phi : (K, V) non-negative rows summing to 1, alpha : (K,) positive, as float64."""
    phi = np.ascontiguousarray(phi, dtype=np.float64)
    if phi.ndim != 2:
        raise InvalidInputError(f"phi must be (K, V); got shape {phi.shape}.")
    if not np.all(np.isfinite(phi)) or np.any(phi < 0):
        raise InvalidInputError("phi must be finite and non-negative.")
    row_error = np.max(np.abs(phi.sum(axis=1) - 1.0))
    if row_error > ROW_SUM_TOLERANCE:
        raise InvalidInputError(
            f"the rows of phi must sum to 1 (topic-word distributions); the largest "
            f"deviation is {row_error:.3g}.")
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    if alpha.shape != (phi.shape[0],):
        raise InvalidInputError(f"alpha must be (K,) = ({phi.shape[0]},); got {alpha.shape}.")
    if not np.all(np.isfinite(alpha) & (alpha > 0)):
        raise InvalidParameterError(f"alpha must be positive and finite; got {alpha}.")
    return phi, alpha


def _check_corpus_against(X: sp.csr_matrix, phi: np.ndarray, name: str) -> None:
    """X has phi's V columns and every word it uses has positive probability under some
    topic (else its log-likelihood is -inf and the Gibbs weights vanish)."""
    if X.shape[1] != phi.shape[1]:
        raise InvalidInputError(f"{name} has {X.shape[1]} columns but phi has V={phi.shape[1]}.")
    used = np.unique(X.indices)
    unreachable = used[phi[:, used].sum(axis=0) <= 0]
    if unreachable.size:
        raise InvalidInputError(
            f"{name} uses word {int(unreachable[0])}, which every topic of phi gives "
            f"probability 0; smooth phi (e.g. the posterior mean with eta > 0).")


def _check_seed(seed) -> int:
    if not isinstance(seed, int | np.integer) or not 0 <= int(seed) < 2**63:
        raise InvalidParameterError(f"seed must be an integer in [0, 2**63); got {seed!r}.")
    return int(seed)


# --------------------------------------------------------------------- document completion


def split_halves(X, seed: int):
    """Split each document's tokens at random into an observed and a held-out half.

    X : (n_docs, V) sparse (or dense) non-negative integer counts. Each document's N_d tokens
    (its counts expanded into single tokens) get random keys; sorted by key within the
    document, the first floor(N_d / 2) go to the observed half and the rest are held out.
    Returns X_observed, X_heldout : (n_docs, V) CSR in X's dtype, with
    X_observed + X_heldout == X; the same seed gives the same split.
    """
    X = _count_matrix(X, "X")
    rng = np.random.default_rng(_check_seed(seed))
    n_docs, nnz = X.shape[0], X.nnz
    entry_doc = np.repeat(np.arange(n_docs), np.diff(X.indptr))
    token_entry = np.repeat(np.arange(nnz), X.data.astype(np.int64))  # (n_tokens,)
    token_doc = entry_doc[token_entry]
    order = np.lexsort((rng.random(token_entry.size), token_doc))  # by doc, random within
    doc_length = np.bincount(token_doc, minlength=n_docs)
    doc_start = np.concatenate(([0], np.cumsum(doc_length)[:-1]))
    rank = np.empty(token_entry.size, dtype=np.int64)
    rank[order] = np.arange(token_entry.size) - doc_start[token_doc[order]]
    observed = rank < doc_length[token_doc] // 2
    observed_counts = np.bincount(token_entry[observed], minlength=nnz).astype(X.dtype)
    halves = []
    for half_counts in (observed_counts, X.data - observed_counts):
        half = sp.csr_matrix((half_counts, X.indices.copy(), X.indptr.copy()), shape=X.shape)
        half.eliminate_zeros()
        halves.append(half)
    return halves[0], halves[1]


@numba.njit(cache=True, nogil=True, parallel=True)
def heldout_log_likelihood(indptr, indices, counts, theta, phi):
    """log_lik_d = Σ_w n_dw log Σ_k θ_dk φ_kw for each document.

    indptr : (n_docs + 1,) int64, indices : (nnz,) int32, counts : (nnz,) float64 (CSR);
    theta : (n_docs, K) doc-topic proportions; phi : (K, V). Returns (n_docs,) float64.
    """
    n_docs = indptr.shape[0] - 1
    K = phi.shape[0]
    log_lik = np.zeros(n_docs)
    for d in prange(n_docs):
        total = 0.0
        for j in range(indptr[d], indptr[d + 1]):
            w = indices[j]
            word_prob = 0.0
            for k in range(K):
                word_prob += theta[d, k] * phi[k, w]
            total += counts[j] * math.log(word_prob)
        log_lik[d] = total
    return log_lik


def completion_log_likelihood(X_observed, X_heldout, phi, alpha, max_iter: int = 200,
                              tol: float = 1e-6):
    """Document-completion log-likelihood of each document's held-out half.

    X_observed, X_heldout : (n_docs, V) counts (e.g. from `split_halves`); phi : (K, V)
    topic-word distributions; alpha : (K,) doc-topic prior; max_iter, tol: the γ fixed point
    (module docstring) stops after max_iter steps or once mean_k |Δγ_dk| < tol.
    Returns log_lik : (n_docs,) Σ_w n^held_dw log Σ_k θ_dk φ_kw with θ_d = γ_d / Σγ_d, and
    n_heldout : (n_docs,) the number of held-out tokens (a document with none scores 0).
    """
    phi, alpha = _check_topics(phi, alpha)
    observed = _count_matrix(X_observed, "X_observed")
    heldout = _count_matrix(X_heldout, "X_heldout")
    if observed.shape != heldout.shape:
        raise InvalidInputError(
            f"X_observed {observed.shape} and X_heldout {heldout.shape} differ in shape.")
    _check_corpus_against(observed, phi, "X_observed")
    _check_corpus_against(heldout, phi, "X_heldout")
    if int(max_iter) < 1 or not tol >= 0:
        raise InvalidParameterError(
            f"max_iter must be >= 1 and tol >= 0; got max_iter={max_iter}, tol={tol}.")
    gamma, _, _ = doc_topic_inference(
        *_kernel_arrays(observed), phi, alpha, int(max_iter), float(tol))
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    log_lik = heldout_log_likelihood(*_kernel_arrays(heldout), theta, phi)
    n_heldout = np.asarray(heldout.sum(axis=1), dtype=np.float64).ravel()
    return log_lik, n_heldout


def completion_perplexity(X_observed, X_heldout, phi, alpha, max_iter: int = 200,
                          tol: float = 1e-6) -> float:
    """exp(-Σ_d log_lik_d / Σ_d n_heldout_d) of `completion_log_likelihood` (same args)."""
    log_lik, n_heldout = completion_log_likelihood(
        X_observed, X_heldout, phi, alpha, max_iter, tol)
    return _perplexity(log_lik, n_heldout)


def _perplexity(log_lik: np.ndarray, n_tokens: np.ndarray) -> float:
    total = float(n_tokens.sum())
    if total <= 0:
        raise InvalidInputError("perplexity needs at least one held-out token.")
    return float(np.exp(-float(log_lik.sum()) / total))


# ------------------------------------------------------------------ left-to-right (Alg. 3)


@numba.njit(cache=True, nogil=True)
def _shuffled_tokens(indices, counts, start, stop, state):
    """The word ids of document tokens indices[start:stop] repeated by their counts,
    in a uniformly random order (Fisher-Yates on `state`) : (N_d,) int64."""
    n_tokens = 0
    for j in range(start, stop):
        n_tokens += int(counts[j])
    tokens = np.empty(n_tokens, dtype=np.int64)
    position = 0
    for j in range(start, stop):
        for _ in range(int(counts[j])):
            tokens[position] = indices[j]
            position += 1
    for i in range(n_tokens - 1, 0, -1):
        other = min(int(next_double(state) * (i + 1)), i)
        tokens[i], tokens[other] = tokens[other], tokens[i]
    return tokens


@numba.njit(cache=True, nogil=True)
def _draw_topic(word_phi, topic_counts, alpha, weights, state):
    """Draw k with probability ∝ φ_{k,w} (N_k + α_k): word_phi, topic_counts, alpha,
    weights (work) : (K,)."""
    K = word_phi.shape[0]
    total = 0.0
    for k in range(K):
        total += word_phi[k] * (topic_counts[k] + alpha[k])
        weights[k] = total  # running (cumulative) sum
    target = next_double(state) * total
    for k in range(K):
        if target < weights[k]:
            return k
    return K - 1


@numba.njit(cache=True, nogil=True)
def _gibbs_sweep(topics, topic_counts, token_phi, alpha, n, weights, state):
    """One Gibbs sweep over z_<n of one particle: topics (N,) int64, topic_counts (K,)
    N_k of z_<n, token_phi (N, K); z_m ~ p(z_m | w_m, z_<n \\ m) for m = 0 .. n-1."""
    for m in range(n):
        topic_counts[topics[m]] -= 1.0
        topics[m] = _draw_topic(token_phi[m], topic_counts, alpha, weights, state)
        topic_counts[topics[m]] += 1.0


@numba.njit(cache=True, nogil=True)
def _resample(topics, topic_counts, predictive, n, state):
    """Multinomial resampling of the particles ∝ predictive : (R,), copying rows of
    topics (R, N) (positions < n) and topic_counts (R, K) in place."""
    n_particles = predictive.shape[0]
    cumulative = np.cumsum(predictive)
    parents = np.empty(n_particles, dtype=np.int64)
    for r in range(n_particles):
        target = next_double(state) * cumulative[-1]
        parent = 0
        while parent < n_particles - 1 and target >= cumulative[parent]:
            parent += 1
        parents[r] = parent
    old_topics = topics[:, :n].copy()
    old_counts = topic_counts.copy()
    for r in range(n_particles):
        topics[r, :n] = old_topics[parents[r]]
        topic_counts[r] = old_counts[parents[r]]


@numba.njit(cache=True, nogil=True)
def _left_to_right_document(tokens, phi, alpha, n_particles, resample_particles, state):
    """Wallach et al.'s (2009) Algorithm 3 on one token sequence tokens : (N,) int64;
    phi : (K, V), alpha : (K,); with resample_particles, the particles are also resampled
    ∝ their predictive p(w_n | z_<n) before z_n is drawn (a particle filter).
    Returns the estimate of log p(w_1 .. w_N | Φ, α)."""
    n_tokens = tokens.shape[0]
    K = phi.shape[0]
    alpha_sum = alpha.sum()
    token_phi = np.empty((n_tokens, K))  # token_phi[n, k] = φ_{k, w_n}, contiguous in k
    for n in range(n_tokens):
        for k in range(K):
            token_phi[n, k] = phi[k, tokens[n]]
    topics = np.zeros((n_particles, n_tokens), dtype=np.int64)
    topic_counts = np.zeros((n_particles, K))
    predictive = np.empty(n_particles)
    weights = np.empty(K)
    log_prob = 0.0
    for n in range(n_tokens):
        for r in range(n_particles):
            _gibbs_sweep(topics[r], topic_counts[r], token_phi, alpha, n, weights, state)
            total = 0.0  # p(w_n | z_<n) = Σ_k φ_{k,w_n} (N_k + α_k) / (n + Σα)
            for k in range(K):
                total += token_phi[n, k] * (topic_counts[r, k] + alpha[k])
            predictive[r] = total / (n + alpha_sum)
        log_prob += math.log(predictive.sum() / n_particles)
        if resample_particles:
            _resample(topics, topic_counts, predictive, n, state)
        for r in range(n_particles):
            topics[r, n] = _draw_topic(token_phi[n], topic_counts[r], alpha, weights, state)
            topic_counts[r, topics[r, n]] += 1.0
    return log_prob


@numba.njit(cache=True, nogil=True, parallel=True)
def left_to_right_kernel(indptr, indices, counts, phi, alpha, n_particles,
                         resample_particles, seed):
    """`_left_to_right_document` for every document, in parallel; document d draws from
    stream(seed, d) only, so the result does not depend on the number of threads.

    indptr : (n_docs + 1,) int64, indices : (nnz,) int32, counts : (nnz,) float64 (CSR);
    phi : (K, V); alpha : (K,); n_particles >= 1; resample_particles : bool; seed >= 0.
    Returns (n_docs,) float64.
    """
    n_docs = indptr.shape[0] - 1
    log_prob = np.zeros(n_docs)
    for d in prange(n_docs):
        state = stream(seed, d)
        tokens = _shuffled_tokens(indices, counts, indptr[d], indptr[d + 1], state)
        log_prob[d] = _left_to_right_document(
            tokens, phi, alpha, n_particles, resample_particles, state)
    return log_prob


def left_to_right_log_likelihood(X, phi, alpha, n_particles: int = 10, seed: int = 0,
                                 resample_particles: bool = False):
    """Left-to-right estimate (Wallach et al. 2009, Algorithm 3) of log p(w_d | Φ, α).

    X : (n_docs, V) non-negative integer counts (each document a bag of words, taken as a
    token sequence in a seeded random order); phi : (K, V) topic-word distributions;
    alpha : (K,) doc-topic prior; n_particles : R >= 1; seed : int >= 0.
    Returns (n_docs,) the estimate of log p of each document's token sequence (add
    log(N_d! / Π_w n_dw!) for the bag of words); an empty document gives 0. Cost
    O(N_d^2 R K) per document. The same seed gives the same output for any thread count.
    """
    phi, alpha = _check_topics(phi, alpha)
    X = _count_matrix(X, "X")
    _check_corpus_against(X, phi, "X")
    if not isinstance(n_particles, int | np.integer) or n_particles < 1:
        raise InvalidParameterError(f"n_particles must be an integer >= 1; got {n_particles!r}.")
    return left_to_right_kernel(
        *_kernel_arrays(X), phi, alpha, int(n_particles), bool(resample_particles),
        _check_seed(seed))


def left_to_right_perplexity(X, phi, alpha, n_particles: int = 10, seed: int = 0,
                             resample_particles: bool = False) -> float:
    """exp(-Σ_d log p(w_d) / Σ_d N_d) of `left_to_right_log_likelihood` (same args)."""
    log_prob = left_to_right_log_likelihood(
        X, phi, alpha, n_particles, seed, resample_particles)
    n_tokens = np.asarray(_count_matrix(X, "X").sum(axis=1), dtype=np.float64).ravel()
    return _perplexity(log_prob, n_tokens)


__all__ = [
    "completion_log_likelihood",
    "completion_perplexity",
    "heldout_log_likelihood",
    "left_to_right_kernel",
    "left_to_right_log_likelihood",
    "left_to_right_perplexity",
    "split_halves",
]
