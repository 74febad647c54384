"""Topic coherence (latentkit.topics._coherence) against gensim, brute force and hand values.

gensim's `CoherenceModel(coherence="u_mass")` scores the same pairs as Mimno et al. (a later
word w_m given an earlier w_l, l < m: its `s_one_pre` segmentation and
`log_conditional_probability`), but
- smooths with ε = 1e-12 on the probability scale: log((D(w_m, w_l)/D + ε) / (D(w_l)/D)),
  i.e. D(w_m, w_l) + ε D in our count form (ours: + 1, Mimno et al.'s choice), and
- reports the arithmetic MEAN over the N(N-1)/2 pairs, where Mimno et al. (and we) sum.
So the gensim check is umass_coherence(..., smoothing=1e-12 * n_docs) / (N(N-1)/2), on topics
that include pairs which never co-occur (where the smoothing matters most).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from latentkit.exceptions import InvalidInputError
from latentkit.topics._coherence import document_cooccurrence, npmi_coherence, umass_coherence

TEXTS = [
    "apple banana cherry apple".split(),
    "banana cherry date".split(),
    "apple date egg fig".split(),
    "cherry egg fig grape".split(),
    "apple banana grape".split(),
    "fig grape date banana".split(),
    "egg egg apple cherry".split(),
    "date fig".split(),
]


def gensim_corpus():
    """gensim Dictionary, BoW corpus and the same corpus as a (n_docs, V) CSR matrix."""
    from gensim.corpora import Dictionary

    dictionary = Dictionary(TEXTS)
    bows = [dictionary.doc2bow(text) for text in TEXTS]
    rows = [d for d, bow in enumerate(bows) for _ in bow]
    cols = [w for bow in bows for w, _ in bow]
    vals = [c for bow in bows for _, c in bow]
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(len(bows), len(dictionary)))
    return dictionary, bows, matrix


TOPICS = [["apple", "banana", "cherry", "egg"],
          ["fig", "grape", "date", "banana"],
          ["egg", "date", "grape", "cherry"]]


def test_umass_matches_gensim_with_its_conventions():
    from gensim.models.coherencemodel import CoherenceModel

    dictionary, bows, matrix = gensim_corpus()
    expected = CoherenceModel(topics=TOPICS, corpus=bows, dictionary=dictionary,
                              coherence="u_mass").get_coherence_per_topic()
    top_words = np.array([[dictionary.token2id[w] for w in topic] for topic in TOPICS])
    n_words = top_words.shape[1]
    ours = umass_coherence(top_words, matrix, smoothing=1e-12 * len(TEXTS))
    np.testing.assert_allclose(ours / (n_words * (n_words - 1) / 2), expected,
                               rtol=1e-10, atol=1e-10)


def brute_force_umass(top_words, texts_as_sets, smoothing=1.0):
    """Σ_{m > l} log((D(w_m, w_l) + smoothing) / D(w_l)) by loops over documents."""
    scores = []
    for topic in top_words:
        total = 0.0
        for m in range(1, len(topic)):
            for l in range(m):
                both = sum(topic[m] in doc and topic[l] in doc for doc in texts_as_sets)
                single = sum(topic[l] in doc for doc in texts_as_sets)
                total += math.log((both + smoothing) / single)
        scores.append(total)
    return np.array(scores)


def brute_force_npmi(top_words, texts_as_sets):
    """Mean over pairs i < j of log(p_ij / (p_i p_j)) / -log p_ij; -1 if p_ij = 0, 0 if
    p_ij = 1 (the documented conventions), by loops over documents."""
    n_docs = len(texts_as_sets)
    scores = []
    for topic in top_words:
        values = []
        for i, j in itertools.combinations(range(len(topic)), 2):
            p_i = sum(topic[i] in doc for doc in texts_as_sets) / n_docs
            p_j = sum(topic[j] in doc for doc in texts_as_sets) / n_docs
            p_ij = sum(topic[i] in doc and topic[j] in doc for doc in texts_as_sets) / n_docs
            if p_ij == 0:
                values.append(-1.0)
            elif p_ij == 1:
                values.append(0.0)
            else:
                values.append(math.log(p_ij / (p_i * p_j)) / -math.log(p_ij))
        scores.append(np.mean(values))
    return np.array(scores)


def random_corpus(seed, n_docs=40, n_words=25):
    """(n_docs, n_words) sparse-ish counts (some word pairs never co-occur, some words
    never occur), their documents as word-id sets, and the generator."""
    rng = np.random.default_rng(seed)
    dense = rng.poisson(0.15, size=(n_docs, n_words)) * (rng.random(n_words) < 0.9)
    dense[:, :2] = np.maximum(dense[:, :2], 1)  # words 0 and 1 in every document: p_01 = 1
    sets = [set(np.flatnonzero(row)) for row in dense]
    return dense, sets, rng


def test_document_cooccurrence_counts():
    dense, sets, _ = random_corpus(2)
    top_words = np.array([[0, 5, 9], [3, 5, 24]])
    doc_freq, pair_freq, n_docs = document_cooccurrence(top_words, dense)
    assert n_docs == len(sets)
    for k, topic in enumerate(top_words):
        for i, j in itertools.product(range(3), repeat=2):
            both = sum(topic[i] in doc and topic[j] in doc for doc in sets)
            assert pair_freq[k, i, j] == both
        assert list(doc_freq[k]) == [sum(w in doc for doc in sets) for w in topic]


def test_umass_and_npmi_match_brute_force():
    dense, sets, rng = random_corpus(1)
    present = np.flatnonzero(dense.sum(axis=0) > 0)
    top_words = np.array([rng.choice(present, size=6, replace=False) for _ in range(8)])
    top_words[0, :2] = [0, 1]
    never_together = [not any(a in doc and b in doc for doc in sets)
                      for topic in top_words for a, b in itertools.combinations(topic, 2)]
    assert any(never_together)  # the -1 convention is exercised
    for reference in (sp.csr_matrix(dense), dense):
        np.testing.assert_allclose(umass_coherence(top_words, reference),
                                   brute_force_umass(top_words, sets), rtol=1e-12)
        np.testing.assert_allclose(npmi_coherence(top_words, reference),
                                   brute_force_npmi(top_words, sets), rtol=1e-12, atol=1e-15)


def test_npmi_by_hand():
    """Documents {a, b, d, e}, {a, c, e}, {a, b, c, e} (ids a..e = 0..4), D = 3.
    (b, c): p = 1/3, p_b = p_c = 2/3: log((1/3)/(4/9)) / log 3 = log(3/4) / log 3;
    (a, b), (a, c): p_ab = p_b, p_a = 1: PMI = 0;
    (b, d): p = 1/3, p_b = 2/3, p_d = 1/3: log(3/2) / log 3;  (c, d): never together, -1;
    (a, e): both in every document, 0 by convention."""
    reference = sp.csr_matrix(np.array([[1, 1, 0, 1, 1], [1, 0, 1, 0, 1], [1, 1, 1, 0, 1]]))
    top_words = np.array([[0, 1, 2], [1, 3, 2], [0, 4, 4]])
    expected = [
        (0 + 0 + math.log(3 / 4) / math.log(3)) / 3,
        (math.log(3 / 2) / math.log(3) + math.log(3 / 4) / math.log(3) - 1) / 3,
        0.0,
    ]
    np.testing.assert_allclose(npmi_coherence(top_words, reference), expected, rtol=1e-12)


def test_umass_by_hand():
    """Same documents, topic (a, b, d): log((2+1)/3) + log((1+1)/3) + log((1+1)/2)."""
    reference = sp.csr_matrix(np.array([[1, 1, 0, 1, 1], [1, 0, 1, 0, 1], [1, 1, 1, 0, 1]]))
    expected = math.log(3 / 3) + math.log(2 / 3) + math.log(2 / 2)
    assert umass_coherence(np.array([[0, 1, 3]]), reference)[0] == pytest.approx(expected)


def test_umass_order_matters_and_absent_words():
    reference = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]]))
    forward = umass_coherence(np.array([[0, 1]]), reference)[0]  # log((2+1)/3)
    backward = umass_coherence(np.array([[1, 0]]), reference)[0]  # log((2+1)/2)
    assert forward == pytest.approx(0.0) and backward == pytest.approx(math.log(1.5))
    assert umass_coherence(np.array([[0, 3]]), reference)[0] == pytest.approx(math.log(1 / 3))
    with pytest.raises(InvalidInputError, match="never occurs"):
        umass_coherence(np.array([[3, 0]]), reference)
    assert npmi_coherence(np.array([[3, 0]]), reference)[0] == -1.0
    with pytest.raises(InvalidInputError, match="columns"):
        npmi_coherence(np.array([[0, 7]]), reference)
    with pytest.raises(InvalidInputError, match="N >= 2"):
        npmi_coherence(np.array([[0]]), reference)
