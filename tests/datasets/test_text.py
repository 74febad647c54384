"""Text corpora (datasets/text.py) and the planted LDA corpus (datasets/synthetic.py).

Truths: the facts in shared/data/SOURCES.md, a plain Python parser of the LDA-C lines,
and Monte Carlo moments of the generative model with a tolerance of 5 standard errors.
"""

import gzip

import numpy as np
import pytest
import scipy.sparse as sp

from helpers import load_or_skip
from latentkit import datasets
from latentkit.datasets import _paths, text
from latentkit.datasets.synthetic import make_lda_corpus, write_lda_corpus
from latentkit.datasets.text import parse_lda_c
from latentkit.exceptions import InvalidInputError, InvalidParameterError

MC_SIGMAS = 5.0  # Monte Carlo tolerance, in standard errors


# -- AP -------------------------------------------------------------------------------------


def _plain_parse(raw: bytes, n_words: int) -> sp.csr_matrix:
    """LDA-C lines read one field at a time: (n_docs, n_words) counts."""
    lines = raw.decode().strip("\n").split("\n")
    entries = {}
    for d, line in enumerate(lines):
        fields = line.split()
        assert int(fields[0]) == len(fields) - 1
        for pair in fields[1:]:
            word, count = pair.split(":")
            entries[d, int(word)] = entries.get((d, int(word)), 0) + int(count)
    rows, columns = np.array(list(entries)).T
    return sp.csr_matrix((list(entries.values()), (rows, columns)),
                         shape=(len(lines), n_words))


def test_ap_matches_sources():
    ap = load_or_skip("load_ap")
    assert ap.counts.shape == (2246, 10473)  # SOURCES.md: documents, vocabulary terms
    assert ap.counts.nnz == 302_031 and ap.counts.sum() == 435_838  # entries, tokens
    assert isinstance(ap.counts, sp.csr_matrix) and ap.counts.dtype == np.float64
    assert ap.counts.has_canonical_format
    assert ap.vocabulary.shape == (10473,) and ap.vocabulary.dtype.kind == "U"
    assert ap.vocabulary[:5].tolist() == ["i", "new", "percent", "people", "year"]
    assert ap.data is ap.counts and ap.feature_names is ap.vocabulary
    assert ap.target is None and ap.name == "ap" and "Associated Press" in ap.DESCR


def test_ap_equals_a_plain_parse():
    ap = load_or_skip("load_ap")
    path = _paths.find_data_file(*text._AP_COUNTS)
    plain = _plain_parse(gzip.decompress(path.read_bytes()), len(ap.vocabulary))
    assert plain.shape == ap.counts.shape and (plain != ap.counts).nnz == 0
    # the first line reads "186 0:1 6144:1 3586:2 3:1 4:1 1541:1 8:1 10:1 3927:1 12:7 ..."
    assert ap.counts[0].nnz == 186
    assert ap.counts[0, 12] == 7 and ap.counts[0, 3586] == 2 and ap.counts[0, 6144] == 1


def test_missing_ap_files_are_file_not_found(tmp_path, monkeypatch):
    monkeypatch.setattr(_paths, "data_dirs", lambda: [tmp_path])
    with pytest.raises(FileNotFoundError) as info:
        datasets.load_ap()
    assert "ap/vocab.txt.gz" in str(info.value) and str(tmp_path) in str(info.value)


def test_corrupt_ap_file_is_a_sha256_error(tmp_path, monkeypatch):
    load_or_skip("load_ap")
    (tmp_path / "ap").mkdir()
    for data_file in (text._AP_COUNTS, text._AP_VOCABULARY):
        raw = _paths.find_data_file(*data_file).read_bytes()
        if data_file is text._AP_COUNTS:
            raw = raw[:-10]  # truncated
        (tmp_path / data_file.relpath).write_bytes(raw)
    monkeypatch.setattr(_paths, "data_dirs", lambda: [tmp_path])
    _paths.clear_digest_cache()
    with pytest.raises(ValueError, match="sha256"):
        datasets.load_ap()


def test_parse_lda_c_by_hand():
    raw = b"2 3:1 0:2\n0\n3 1:1 1:4 2:1"  # repeated id 1 summed; no final newline
    np.testing.assert_array_equal(parse_lda_c(raw, 4).toarray(),
                                  [[2, 0, 0, 1], [0, 0, 0, 0], [0, 5, 1, 0]])


@pytest.mark.parametrize("raw, fragment", [
    (b"2 0:1 1:1\n2 0:1\n", "line 2 declares 2 pairs but holds 1"),
    (b"1 0:1\n1 0:x\n", "line 2 is not 'M id:count"),
    (b"1 0:1\n\n1 0:1\n", "line 2 is not 'M id:count"),
    (b"1 0:1\n1 7:1\n", "line 2 holds word id 7, outside the vocabulary's 0..3"),
    (b"1 0:-1\n", "negative count"),
])
def test_parse_lda_c_errors(raw, fragment):
    with pytest.raises(InvalidInputError) as info:
        parse_lda_c(raw, 4, "ap.dat")
    assert fragment in str(info.value) and "ap.dat" in str(info.value)


# -- make_lda_corpus --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted():
    return make_lda_corpus(4000, 200, 4, doc_length=80, alpha=[0.2, 0.5, 1.0, 2.0], eta=0.1,
                           random_state=3)


def test_lda_corpus_shapes_and_simplexes(planted):
    assert planted.counts.shape == (4000, 200) and isinstance(planted.counts, sp.csr_matrix)
    assert planted.topic_word.shape == (4, 200) and planted.doc_topic.shape == (4000, 4)
    np.testing.assert_allclose(planted.topic_word.sum(axis=1), 1)
    np.testing.assert_allclose(planted.doc_topic.sum(axis=1), 1)
    np.testing.assert_array_equal(np.asarray(planted.counts.sum(axis=1)).ravel(),
                                  planted.doc_lengths)
    assert planted.doc_lengths.min() >= 1 and planted.counts.has_canonical_format


def test_document_lengths_are_poisson(planted):
    lengths = planted.doc_lengths
    standard_error = np.sqrt(80 / len(lengths))  # Poisson: variance = mean = 80
    assert abs(lengths.mean() - 80) < MC_SIGMAS * standard_error
    assert abs(lengths.var() / 80 - 1) < MC_SIGMAS * np.sqrt(2 / len(lengths))


def test_doc_topic_mean_is_the_dirichlet_mean(planted):
    alpha = np.array([0.2, 0.5, 1.0, 2.0])
    mean = alpha / alpha.sum()
    variance = mean * (1 - mean) / (alpha.sum() + 1)  # Dirichlet marginal Beta variance
    error = np.abs(planted.doc_topic.mean(axis=0) - mean)
    assert np.all(error < MC_SIGMAS * np.sqrt(variance / 4000)), error


def test_word_counts_follow_theta_phi(planted):
    """Given θ and N, Σ_d counts_dw is a sum of independent Binomial(N_d, (θ_d φ)_w): its
    mean and variance are exact, so each word's z-score is checked."""
    probabilities = planted.doc_topic @ planted.topic_word  # (D, V)
    lengths = planted.doc_lengths[:, None]
    expected = (lengths * probabilities).sum(axis=0)
    variance = (lengths * probabilities * (1 - probabilities)).sum(axis=0)
    observed = np.asarray(planted.counts.sum(axis=0)).ravel()
    z = (observed - expected) / np.sqrt(variance)
    assert np.max(np.abs(z)) < MC_SIGMAS, np.max(np.abs(z))
    # and per document: one long document's frequencies approach θ_d φ
    one = make_lda_corpus(1, 50, 3, doc_length=200_000, random_state=5)
    p = (one.doc_topic @ one.topic_word).ravel()
    frequencies = one.counts.toarray().ravel() / one.doc_lengths[0]
    np.testing.assert_array_less(np.abs(frequencies - p),
                                 MC_SIGMAS * np.sqrt(p * (1 - p) / one.doc_lengths[0]) + 1e-12)


def test_same_seed_same_corpus_and_the_file_holds_it(tmp_path):
    a = make_lda_corpus(300, 40, 3, doc_length=20, random_state=11)
    b = make_lda_corpus(300, 40, 3, doc_length=20, random_state=np.random.default_rng(11))
    c = make_lda_corpus(300, 40, 3, doc_length=20, random_state=12)
    assert (a.counts != b.counts).nnz == 0 and (a.counts != c.counts).nnz > 0
    written = write_lda_corpus(tmp_path / "lda.npz", 300, 40, 3, doc_length=20,
                               random_state=11)
    loaded = sp.load_npz(tmp_path / "lda.npz")
    assert written.shape == (300, 40) and (loaded != a.counts).nnz == 0
    np.testing.assert_array_equal(written.topic_word, a.topic_word)
    np.testing.assert_array_equal(written.doc_lengths, a.doc_lengths)


@pytest.mark.parametrize("arguments, fragment", [
    ({"n_docs": 0}, "'n_docs'"),
    ({"n_topics": 1.5}, "'n_topics'"),
    ({"alpha": [0.1, 0.2]}, "3 positive numbers"),
    ({"alpha": -1.0}, "'alpha'"),
    ({"eta": 0}, "'eta'"),
    ({"doc_length": 0}, "'doc_length'"),
])
def test_lda_corpus_argument_errors(arguments, fragment):
    kwargs = dict(n_docs=10, n_words=5, n_topics=3) | arguments
    with pytest.raises(InvalidParameterError) as info:
        make_lda_corpus(**kwargs)
    assert fragment in str(info.value)
