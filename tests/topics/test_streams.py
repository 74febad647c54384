"""Corpora streamed from disk (topics/_streams.py).

Truths: scipy.sparse.load_npz of the same file, vectorize over the whole file in memory,
and tracemalloc's peak for the memory bound.
"""

import gc
import os
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from latentkit.datasets.synthetic import make_lda_corpus, write_lda_corpus
from latentkit.em.sources import ChunkSource
from latentkit.exceptions import InvalidInputError, InvalidParameterError
from latentkit.topics._streams import (
    NpzCountsSource,
    TextLinesSource,
    vocabulary_from_file,
    write_csr_npz,
)
from latentkit.topics.vectorize import read_documents, vectorize


@pytest.fixture(scope="module")
def corpus():
    return make_lda_corpus(1003, 300, 5, doc_length=40, random_state=1).counts


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("chunk_rows", [1, 64, 1003, 5000])
def test_chunks_concatenated_equal_load_npz(tmp_path, corpus, compressed, chunk_rows):
    path = tmp_path / "corpus.npz"
    sp.save_npz(path, corpus, compressed=compressed)
    source = NpzCountsSource(path, chunk_rows)
    assert isinstance(source, ChunkSource)
    assert (source.n_samples, source.n_features, source.dtype) == (1003, 300, np.float64)
    for _ in range(2):  # every pass reads the file again
        chunks = list(source)
        assert all(c.shape[0] <= chunk_rows for c in chunks)
        assert len(chunks) == -(-1003 // chunk_rows)
        stacked = sp.vstack(chunks, format="csr")
        assert (stacked != sp.load_npz(path)).nnz == 0


def test_dtype_and_integer_data(tmp_path, corpus):
    path = tmp_path / "int.npz"
    sp.save_npz(path, corpus.astype(np.int32))
    assert next(iter(NpzCountsSource(path, 10))).dtype == np.float64
    assert next(iter(NpzCountsSource(path, 10, dtype=np.float32))).dtype == np.float32
    sp.save_npz(path, corpus.astype(np.float32))
    assert NpzCountsSource(path, 10).dtype == np.float32
    with pytest.raises(InvalidParameterError, match="'dtype'"):
        NpzCountsSource(path, 10, dtype=np.int64)


def test_init_sample_is_a_uniform_subset_in_order(tmp_path, corpus):
    path = tmp_path / "corpus.npz"
    sp.save_npz(path, corpus)
    source = NpzCountsSource(path, 100)
    sample = source.init_sample(50, np.random.default_rng(7))
    rows = np.sort(np.random.default_rng(7).choice(1003, size=50, replace=False))
    assert (sample != corpus[rows]).nnz == 0
    assert (source.init_sample(2000, np.random.default_rng(0)) != corpus).nnz == 0


def test_map_reduce_sums_over_blocks(tmp_path, corpus):
    path = tmp_path / "corpus.npz"
    sp.save_npz(path, corpus)
    totals = NpzCountsSource(path, 97).map_reduce(lambda block: np.asarray(block.sum(0)))
    np.testing.assert_array_equal(totals.ravel(), np.asarray(corpus.sum(0)).ravel())


def _raw_npz(path, data, indices, indptr, shape, fmt=b"csr"):
    np.savez(path, data=np.asarray(data), indices=np.asarray(indices),
             indptr=np.asarray(indptr), shape=np.asarray(shape), format=np.array(fmt))


def test_bad_counts_are_named_by_their_document_in_the_file(tmp_path):
    path = tmp_path / "bad.npz"
    n_docs = 10
    indptr = np.arange(n_docs + 1)
    data = np.ones(n_docs)
    data[7] = -2
    _raw_npz(path, data, np.zeros(n_docs, dtype=np.int32), indptr, (n_docs, 3))
    with pytest.raises(InvalidInputError) as info:
        list(NpzCountsSource(path, 3))
    message = str(info.value)
    assert str(path) in message and "negative count (-2.0) at document 7, word column 0" \
        in message


def test_damaged_files(tmp_path, corpus):
    path = tmp_path / "bad.npz"
    _raw_npz(path, [1.0, 1.0], [0, 5], [0, 1, 2], (2, 3))
    with pytest.raises(InvalidInputError, match="document 1 holds word id 5, outside 0..2"):
        list(NpzCountsSource(path, 1))
    _raw_npz(path, [1.0, 1.0], [0, 1], [0, 1, 3], (2, 3))
    with pytest.raises(InvalidInputError, match="do not describe a CSR matrix"):
        NpzCountsSource(path, 1)
    sp.save_npz(path, sp.csr_matrix((0, 3)))
    with pytest.raises(InvalidInputError, match=r"shape \(0, 3\); a corpus needs"):
        NpzCountsSource(path, 1)
    sp.save_npz(path, corpus.tocsc())
    with pytest.raises(InvalidInputError, match="format 'csc'"):
        NpzCountsSource(path, 1)
    np.savez(path, X=np.ones(3))
    with pytest.raises(InvalidInputError, match="not a scipy CSR .npz file"):
        NpzCountsSource(path, 1)
    path.write_bytes(b"not a zip")
    with pytest.raises(InvalidInputError, match="not a readable .npz file"):
        NpzCountsSource(path, 1)


def test_write_csr_npz_round_trip(tmp_path, corpus):
    path = tmp_path / "written.npz"
    blocks = (corpus[i:i + 100] for i in range(0, 1003, 100))
    assert write_csr_npz(path, 300, blocks) == (1003, 300)
    loaded = sp.load_npz(path)
    assert isinstance(loaded, sp.csr_matrix) and loaded.dtype == np.float64
    assert (loaded != corpus).nnz == 0
    assert sorted(os.listdir(tmp_path)) == ["written.npz"]  # no temporary left behind
    with pytest.raises(InvalidInputError, match="a block has 4 columns"):
        write_csr_npz(tmp_path / "x.npz", 3, [sp.csr_matrix(np.ones((1, 4)))])


def _peak_bytes(function) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_block(tmp_path):
    """A 40,000-document file (~3.4 million entries, ~40 MB) written and read with blocks of
    1,000 documents (~85,000 entries, ~1 MB): both peaks stay within a few blocks."""
    path = tmp_path / "big.npz"
    result = {}

    def write():
        result["truth"] = write_lda_corpus(path, 40_000, 2000, 10, doc_length=100,
                                           random_state=0, block_docs=1000)

    written = _peak_bytes(write)
    assert path.stat().st_size > 35e6
    source = NpzCountsSource(path, 1000)
    totals = []

    def one_pass():
        totals.extend(np.asarray(block.sum(axis=1)).ravel() for block in source)

    read = _peak_bytes(one_pass)
    # one block is ~1 MB of counts and indices; a handful of copies, the 320 kB indptr and
    # topic_word (160 kB) fit in 8 MB, a fifth of the file
    assert written < 8e6, written
    assert read < 8e6, read
    np.testing.assert_array_equal(np.concatenate(totals), result["truth"].doc_lengths)


# -- text files ---------------------------------------------------------------------------------


LINES = [
    "Stocks rallied as the dollar rose against the yen",
    "The central bank held interest rates steady",
    "",
    "Rain is expected tomorrow across the north",
    "Stocks fell and the dollar slipped; bank shares led losses",
    "Interest rates and the dollar moved together",
    "Rain and snow across the north; roads closed",
]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "news.txt"
    path.write_text("\n".join(LINES))  # no final newline: the last line still counts
    return path


@pytest.mark.parametrize("options", [
    {}, {"min_df": 1, "max_df": 1.0}, {"min_df": 0.25, "max_df": 3},
    {"stop_words": None, "min_df": 1, "max_features": 1}, {"lowercase": False, "min_df": 1},
])
def test_vocabulary_from_file_equals_vectorize(text_file, options):
    expected = vectorize(read_documents(text_file), **options).vocabulary
    for block_lines in (1, 2, 100):
        got = vocabulary_from_file(text_file, block_lines=block_lines, **options)
        assert got.tolist() == expected.tolist()


def test_max_features_ties_are_broken_alphabetically(text_file):
    # term frequencies without stop words: the 7, and 3, dollar 3, then several at 2
    got = vocabulary_from_file(text_file, stop_words=None, min_df=1, max_features=2)
    assert got.tolist() == ["and", "the"]


def test_vocabulary_from_file_with_nothing_left(text_file):
    with pytest.raises(InvalidInputError, match="no word is left .* lower min_df"):
        vocabulary_from_file(text_file, min_df=50)


def test_text_lines_source_equals_vectorize(text_file):
    vocabulary = vocabulary_from_file(text_file)
    source = TextLinesSource(text_file, vocabulary, chunk_rows=3)
    assert (source.n_samples, source.n_features) == (7, len(vocabulary))
    assert source.n_unknown is None
    reference = vectorize(read_documents(text_file), vocabulary=vocabulary)
    stacked = sp.vstack(list(source), format="csr")
    assert (stacked != reference.counts).nnz == 0
    assert source.n_unknown == reference.n_unknown > 0
    sample = source.init_sample(3, np.random.default_rng(2))
    rows = np.sort(np.random.default_rng(2).choice(7, size=3, replace=False))
    assert (sample != reference.counts[rows]).nnz == 0


def test_text_lines_source_errors(tmp_path, text_file):
    with pytest.raises(InvalidParameterError, match="vocabulary_from_file"):
        TextLinesSource(text_file, ["dollar"], 2, min_df=1)
    path = tmp_path / "bad.txt"
    path.write_bytes(b"one\ntwo\nthree\nfour \xff\n")
    with pytest.raises(InvalidInputError, match="line 4 is not valid UTF-8"):
        list(TextLinesSource(path, ["one"], chunk_rows=2))
