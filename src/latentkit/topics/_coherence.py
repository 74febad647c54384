"""Topic coherence from document co-occurrence in a reference corpus.

For a topic's top words w_1 .. w_N (ordered by decreasing probability under the topic), with
D(w) the number of reference documents that contain w, D(w, w') the number that contain both,
and D_total the number of documents:

- UMass (Mimno, Wallach, Talley, Leenders & McCallum 2011, "Optimizing semantic coherence in
  topic models"):

      C = Σ_{m=2..N} Σ_{l<m} log((D(w_m, w_l) + 1) / D(w_l)),

  a sum of log conditional probabilities of a later word given an earlier, more probable one
  (always <= log 2-ish per pair; closer to 0 is more coherent). The +1 (`smoothing`) keeps a
  pair that never co-occurs finite. gensim's `CoherenceModel(coherence="u_mass")` uses the
  same pairs (w_m, w_l), l < m, but smooths with ε D_total (ε = 1e-12) instead of 1 and
  reports the MEAN over the N(N-1)/2 pairs instead of the sum.

- NPMI (Bouma 2009; Lau, Newman & Baldwin 2014), with document probabilities
  p(w) = D(w) / D_total and p(w, w') = D(w, w') / D_total, averaged over the N(N-1)/2 pairs:

      NPMI(w, w') = log(p(w, w') / (p(w) p(w'))) / -log p(w, w')   in [-1, 1].

  A pair that never co-occurs gets -1, the limit of NPMI as p(w, w') -> 0 with the marginals
  fixed (Bouma's value for "never together"; this also covers a word absent from the
  reference corpus). The denominator is max(-log p(w, w'), eps): a pair present in every
  document has p(w, w') = p(w) = p(w') = 1 and PMI exactly 0, so it gets 0 (independence),
  not 0/0.

Co-occurrence is computed once: the reference corpus is binarized, restricted to the union U
of all top words, and D(u, u') for u, u' in U is the (U, U) sparse product B_U^T B_U.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..exceptions import InvalidInputError, InvalidParameterError


def _check_top_words(top_words) -> np.ndarray:
    """top_words : (K, N) non-negative integer word ids, N >= 2."""
    top_words = np.asarray(top_words)
    if top_words.ndim != 2 or top_words.shape[1] < 2:
        raise InvalidInputError(
            f"top_words must be (K, N) word ids with N >= 2; got shape {top_words.shape}.")
    if not np.issubdtype(top_words.dtype, np.integer) or top_words.min() < 0:
        raise InvalidInputError("top_words must hold non-negative integer word ids.")
    return top_words.astype(np.int64)


def _binary_reference(reference, n_required_words: int) -> sp.csr_matrix:
    """reference : (n_docs, V) counts -> (n_docs, V) CSR of 0/1 int64 (word present)."""
    reference = sp.csr_matrix(reference)
    if reference.ndim != 2 or reference.shape[0] < 1:
        raise InvalidInputError(
            f"reference must be (n_docs, V) with n_docs >= 1; got shape {reference.shape}.")
    if reference.shape[1] < n_required_words:
        raise InvalidInputError(
            f"top_words use word id {n_required_words - 1} but reference has only "
            f"{reference.shape[1]} columns.")
    if not np.all(np.isfinite(reference.data)) or np.any(reference.data < 0):
        raise InvalidInputError("reference must hold finite non-negative counts.")
    binary = sp.csr_matrix(reference > 0, dtype=np.int64)
    binary.eliminate_zeros()
    return binary


def document_cooccurrence(top_words, reference):
    """Document frequencies of the top words and of their pairs.

    top_words : (K, N) word ids; reference : (n_docs, V) counts (sparse or dense).
    Returns doc_freq : (K, N) D(w_kn), pair_freq : (K, N, N) D(w_km, w_kl) (the diagonal is
    D(w_kn)), and n_docs.
    """
    top_words = _check_top_words(top_words)
    binary = _binary_reference(reference, int(top_words.max()) + 1)
    vocabulary = np.unique(top_words)  # the union U of the top words, sorted
    position = np.searchsorted(vocabulary, top_words)  # (K, N) index into U
    restricted = binary[:, vocabulary]  # (n_docs, U)
    cooccurrence = (restricted.T @ restricted).toarray()  # (U, U): D(u, u')
    pair_freq = cooccurrence[position[:, :, None], position[:, None, :]]
    doc_freq = np.diagonal(cooccurrence)[position]
    return doc_freq.astype(np.float64), pair_freq.astype(np.float64), binary.shape[0]


def umass_coherence(top_words, reference, smoothing: float = 1.0) -> np.ndarray:
    """UMass coherence (Mimno et al. 2011) of each topic.

    top_words : (K, N) word ids, each row ordered by decreasing probability in its topic;
    reference : (n_docs, V) counts (sparse or dense; only presence matters);
    smoothing : added to D(w_m, w_l) (> 0; Mimno et al. use 1).
    Returns (K,) Σ_{m > l} log((D(w_m, w_l) + smoothing) / D(w_l)). Raises if a word that
    is conditioned on (w_1 .. w_{N-1}) never occurs in the reference corpus (its
    conditional probabilities are undefined; score on the training corpus, or use NPMI).
    """
    if not smoothing > 0:
        raise InvalidParameterError(f"smoothing must be > 0; got {smoothing}.")
    doc_freq, pair_freq, _ = document_cooccurrence(top_words, reference)
    absent = np.argwhere(doc_freq[:, :-1] == 0)
    if absent.size:
        topic, rank = absent[0]
        raise InvalidInputError(
            f"topic {topic}'s word {int(np.asarray(top_words)[topic, rank])} (rank {rank}) "
            f"never occurs in the reference corpus, so UMass is undefined; use the "
            f"training corpus as reference, or npmi_coherence.")
    n_words = doc_freq.shape[1]
    later = np.tril(np.ones((n_words, n_words), dtype=bool), k=-1)  # [m, l] with m > l
    conditioning = np.where(doc_freq > 0, doc_freq, 1.0)[:, None, :]  # D(w_l) on axis l
    ratio = np.where(later, (pair_freq + smoothing) / conditioning, 1.0)
    return np.log(ratio).sum(axis=(1, 2))


def npmi_coherence(top_words, reference, eps: float = 1e-12) -> np.ndarray:
    """Mean normalized pointwise mutual information (Bouma 2009) over the word pairs of
    each topic, with document probabilities (module docstring).

    top_words : (K, N) word ids; reference : (n_docs, V) counts (sparse or dense);
    eps : floor of the denominator -log p(w, w') (> 0).
    Returns (K,) in [-1, 1]: a pair that never co-occurs counts -1, a pair present in every
    reference document counts 0.
    """
    if not eps > 0:
        raise InvalidParameterError(f"eps must be > 0; got {eps}.")
    doc_freq, pair_freq, n_docs = document_cooccurrence(top_words, reference)
    n_words = doc_freq.shape[1]
    pairs = np.triu(np.ones((n_words, n_words), dtype=bool), k=1)  # each unordered pair once
    together = pair_freq > 0  # then both marginals are > 0 too
    safe_pair = np.where(together, pair_freq, 1.0)
    safe_word = np.where(doc_freq > 0, doc_freq, 1.0)
    # PMI = log(p(w,w') / (p(w) p(w'))) = log(D(w,w') D_total / (D(w) D(w')))
    pmi = np.log(safe_pair * n_docs / (safe_word[:, :, None] * safe_word[:, None, :]))
    denominator = np.maximum(-np.log(safe_pair / n_docs), eps)
    npmi = np.where(together, pmi / denominator, -1.0)
    return npmi[:, pairs].mean(axis=1)


__all__ = ["document_cooccurrence", "npmi_coherence", "umass_coherence"]
