"""check_counts, counts_from_tokens and is_token_lists (topics/_corpus.py).

Truths: dense arithmetic on small matrices (canonical form), collections.Counter (token
counting), and the exact wording promised for each input error.
"""

from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

from latentkit.exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterError
from latentkit.topics._corpus import (
    MAX_COUNT,
    check_counts,
    counts_from_tokens,
    csr_arrays,
    is_token_lists,
)


def _messy_csr() -> sp.csr_matrix:
    """(3, 4) CSR with unsorted indices, a duplicate (row 0, word 2) and an explicit zero."""
    data = np.array([1, 2, 3, 0, 5], dtype=np.int64)
    indices = np.array([2, 0, 2, 1, 3])
    indptr = np.array([0, 3, 3, 5])
    return sp.csr_matrix((data, indices, indptr), shape=(3, 4))


def test_canonical_form_sums_sorts_and_drops_zeros():
    X = _messy_csr()
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    out = check_counts(X)
    expected = np.array([[2, 0, 4, 0], [0, 0, 0, 0], [0, 0, 0, 5]], dtype=float)
    np.testing.assert_array_equal(out.toarray(), expected)
    assert isinstance(out, sp.csr_matrix) and out.dtype == np.float64
    np.testing.assert_array_equal(out.indices, [0, 2, 3])  # sorted, no duplicate, no zero
    np.testing.assert_array_equal(out.indptr, [0, 2, 2, 3])
    assert out.has_canonical_format
    for given, kept in zip(before, (X.data, X.indices, X.indptr)):
        np.testing.assert_array_equal(given, kept)  # the caller's matrix is untouched
    assert not np.shares_memory(out.data, X.data)


def test_csr_arrays_have_the_kernels_dtypes():
    arrays = csr_arrays(check_counts(_messy_csr()))
    assert arrays.indptr.dtype == np.int64 and arrays.indices.dtype == np.int32
    assert arrays.counts.dtype == np.float64
    np.testing.assert_array_equal(arrays.counts, [2, 4, 5])


@pytest.mark.parametrize("make", [
    np.array, lambda a: a.tolist(), sp.csr_matrix, sp.csc_matrix, sp.coo_array, sp.csr_array,
    lambda a: a.astype(bool), lambda a: a.astype(np.uint8),
])
def test_accepts_dense_and_sparse_kinds(make):
    dense = np.array([[0, 1, 1], [0, 0, 0], [1, 0, 1]])
    out = check_counts(make(dense))
    np.testing.assert_array_equal(out.toarray(), dense)
    assert out.dtype == np.float64


def test_float32_is_kept_or_asked_for():
    dense = np.array([[0, 3], [2, 0]], dtype=np.float32)
    assert check_counts(dense).dtype == np.float32
    assert check_counts(dense.astype(int), dtype=np.float32).dtype == np.float32
    assert check_counts(dense, dtype=np.float64).dtype == np.float64
    with pytest.raises(InvalidParameterError, match="'dtype' must be None, np.float32"):
        check_counts(dense, dtype=np.int32)


def test_empty_documents_are_allowed():
    out = check_counts(np.zeros((3, 5)))
    assert out.shape == (3, 5) and out.nnz == 0


@pytest.mark.parametrize("value, fragment", [
    (np.nan, "nan at document 2, word column 3; a count must be finite"),
    (np.inf, "inf at document 2, word column 3; a count must be finite"),
    (-1.0, "negative count (-1.0) at document 2, word column 3"),
    (0.5, "non-integer count (0.5) at document 2, word column 3"),
    (2.0**31, "count of 2147483648 at document 2, word column 3, above 2147483647"),
])
def test_bad_entries_name_the_first_document_and_column(value, fragment):
    X = np.ones((4, 5))
    X[2, 3] = value
    X[3, 0] = value  # a later bad entry is not the one named
    with pytest.raises(InvalidInputError) as info:
        check_counts(X)
    assert fragment in str(info.value)


def test_non_integer_message_says_what_to_pass():
    with pytest.raises(ValueError, match="not tf-idf weights"):
        check_counts(sp.csr_matrix(np.array([[0.25, 0]])))


def test_negative_integer_counts_are_refused():
    with pytest.raises(InvalidInputError, match=r"negative count \(-4\) at document 1, word "
                                                r"column 0"):
        check_counts(np.array([[1, 2], [-4, 0]]))


def test_first_row_numbers_documents_within_a_stream():
    with pytest.raises(InvalidInputError, match="document 1002, word column 1"):
        check_counts(np.array([[1, 0], [0, 0], [0, -1]]), first_row=1000, name="corpus.npz")


def test_the_limit_applies_after_duplicates_are_summed():
    half = MAX_COUNT // 2 + 1
    X = sp.csr_matrix((np.array([half, half]), np.array([1, 1]), np.array([0, 2])),
                      shape=(1, 2))
    with pytest.raises(InvalidInputError, match="word column 1, above 2147483647"):
        check_counts(X)
    check_counts(sp.csr_matrix(np.array([[MAX_COUNT]])))  # the limit itself is fine


def test_float32_counts_beyond_exact_integers():
    with pytest.raises(InvalidInputError, match="pass dtype=np.float64"):
        check_counts(np.array([[2**24 + 2]]), dtype=np.float32)


@pytest.mark.parametrize("X, fragment", [
    (np.zeros((3, 0)), "empty vocabulary"),
    (sp.csr_matrix((2, 0)), "relax min_df or max_df"),
    (np.zeros((0, 4)), "no documents"),
    (np.ones(4), "must be 2-D (n_docs, n_words); got shape (4,)"),
    (np.ones((2, 2, 2)), "got shape (2, 2, 2)"),
    ([[1, 2], [3]], "one count per vocabulary word"),
])
def test_shape_errors(X, fragment):
    with pytest.raises(InvalidInputError) as info:
        check_counts(X)
    assert fragment in str(info.value)


def test_vocabulary_size_must_match_the_model():
    with pytest.raises(InvalidInputError) as info:
        check_counts(np.ones((2, 4)), n_words=5)
    message = str(info.value)
    assert "4 word columns" in message and "vocabulary has 5 words" in message
    assert "vocabulary=model_vocabulary" in message


@pytest.mark.parametrize("X, fragment", [
    (["a text", "another"], "vectorize(X)"),
    ([["a", "b"], ["c"]], "counts_from_tokens(X)"),
    (np.array([[1 + 1j, 0]]), "complex128"),
    (np.array([[{}, 1]], dtype=object), "not numbers"),
    (sp.csr_matrix(np.array([[1 + 2j]])), "complex128"),
])
def test_type_errors(X, fragment):
    with pytest.raises(InvalidInputTypeError) as info:
        check_counts(X)
    assert fragment in str(info.value)


def test_masked_entries_are_refused():
    X = np.ma.masked_array([[1.0, 2.0]], mask=[[False, True]])
    with pytest.raises(InvalidInputError, match="masked array with 1 masked entries"):
        check_counts(X)


# -- counts_from_tokens ----------------------------------------------------------------------


def _brute_counts(documents, vocabulary):
    index = {word: j for j, word in enumerate(vocabulary)}
    dense = np.zeros((len(documents), len(vocabulary)))
    for d, doc in enumerate(documents):
        for word, n in Counter(doc).items():
            if word in index:
                dense[d, index[word]] = n
    return dense


DOCS = [["apple", "pear", "apple", "fig"], [], ["fig", "kiwi", "kiwi", "kiwi"], ["pear"]]


def test_learned_vocabulary_is_sorted_and_counts_match_counter():
    counts, vocabulary, n_unknown = counts_from_tokens(DOCS)
    assert vocabulary.tolist() == ["apple", "fig", "kiwi", "pear"]
    np.testing.assert_array_equal(counts.toarray(), _brute_counts(DOCS, vocabulary))
    assert n_unknown == 0 and counts.has_canonical_format


def test_given_vocabulary_keeps_its_order_and_counts_the_unknown():
    vocabulary = ["pear", "kiwi", "banana"]
    counts, words, n_unknown = counts_from_tokens(DOCS, vocabulary=vocabulary)
    assert words.tolist() == vocabulary
    np.testing.assert_array_equal(counts.toarray(), _brute_counts(DOCS, vocabulary))
    assert n_unknown == 4  # apple x2, fig x2
    assert counts.shape == (4, 3)


def test_integer_tokens_are_word_ids():
    counts, vocabulary, n_unknown = counts_from_tokens([[0, 4, 4], [2], []])
    np.testing.assert_array_equal(counts.toarray(), [[1, 0, 0, 0, 2], [0, 0, 1, 0, 0],
                                                     [0, 0, 0, 0, 0]])
    assert vocabulary.tolist() == ["0", "1", "2", "3", "4"] and n_unknown == 0
    counts, _, n_unknown = counts_from_tokens([[0, 4, 4], [2]], vocabulary=["a", "b", "c"])
    np.testing.assert_array_equal(counts.toarray(), [[1, 0, 0], [0, 0, 1]])
    assert n_unknown == 2


@pytest.mark.parametrize("documents, error, fragment", [
    ("just a text", InvalidInputTypeError, "list of token lists"),
    (["a text", "b"], InvalidInputTypeError, "document 0 is a str"),
    ([], InvalidInputError, "documents is empty"),
    ([["a", 1]], InvalidInputTypeError, "found strings mixed with integers"),
    ([["a", None]], InvalidInputTypeError, "found a NoneType"),
    ([[0.5]], InvalidInputTypeError, "found a float"),
    ([[1, -2]], InvalidInputError, "word ids must be non-negative; got -2"),
    ([[], []], InvalidInputError, "empty vocabulary"),
])
def test_token_errors(documents, error, fragment):
    with pytest.raises(error) as info:
        counts_from_tokens(documents)
    assert fragment in str(info.value)


def test_vocabulary_errors():
    with pytest.raises(InvalidInputError, match="holds 'a' more than once"):
        counts_from_tokens([["a"]], vocabulary=["a", "b", "a"])
    with pytest.raises(InvalidInputError, match="non-empty sequence of distinct strings"):
        counts_from_tokens([["a"]], vocabulary=[])
    with pytest.raises(InvalidInputTypeError, match="not one string"):
        counts_from_tokens([["a"]], vocabulary="ab")


def test_is_token_lists():
    assert is_token_lists([["a", "b"], []])
    assert is_token_lists((["a"],))
    assert not is_token_lists([[0, 1], [1, 0]])  # a dense count matrix
    assert not is_token_lists(["a text"])
    assert not is_token_lists(np.array([["a"]]))
    assert not is_token_lists([])
    assert not is_token_lists([[], []])
