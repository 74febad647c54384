"""A corpus at the boundary: document-term counts checked once, in canonical CSR form.

Every topic-model entry point turns its input into a CSR matrix of word counts here:
X : (n_docs, n_words), X[d, j] = how many times word j occurs in document d. Kernels take
the CSR arrays (`csr_arrays`) and never check again (STYLE 7).
"""

from __future__ import annotations

from itertools import chain
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .._validation import unmask
from ..exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterError

#: the largest count one entry may hold: token counters in the kernels are 32-bit integers
MAX_COUNT = 2**31 - 1
#: float32 holds every integer up to 2**24 exactly; a larger count would be rounded
MAX_EXACT_FLOAT32 = 2**24
#: the largest vocabulary: a model holds (n_topics, n_words) arrays, and a size taken from
#: the data (a word id, a matrix's width) must not allocate without bound (issue 12); the
#: largest real vocabularies (all of English Wikipedia's word types) are far below it
MAX_WORDS = 2**22

_COUNT_FIX = ("Pass raw word counts (for example from latentkit.topics.vectorize or "
              "sklearn's CountVectorizer), not tf-idf weights or normalized frequencies.")


class CorpusArrays(NamedTuple):
    """The CSR arrays the kernels take.

    indptr : (n_docs + 1,) int64; indices : (nnz,) int32 word ids, sorted within a row, no
    duplicates; counts : (nnz,) float64 or float32, positive whole numbers.
    """

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray


def check_counts(X, *, n_words: int | None = None, dtype=None, name: str = "X",
                 first_row: int = 0) -> sp.csr_matrix:
    """Validate a document-term count matrix and return it in canonical CSR form.

    X : (n_docs, n_words) scipy.sparse matrix or array, or a dense 2-D array-like of counts.
    n_words : the model's vocabulary size, which X's number of columns must equal (None: any).
    dtype : None (float32 input stays float32, anything else becomes float64), np.float32
        or np.float64.
    first_row : the number of X's first document within a larger stream (error messages).

    Returns a new scipy.sparse.csr_matrix (never a view of X's arrays) with sorted indices,
    duplicates summed and explicit zeros removed. scipy keeps one index dtype for indices
    and indptr; `csr_arrays` gives the kernels' int32 / int64 pair.

    Errors (InvalidInputError, a ValueError, naming the first bad document and word column):
    NaN or inf, a negative count, a non-integer count, a count above `MAX_COUNT` (or above
    2**24 in float32, which would round it), no documents, no columns (an empty
    vocabulary), a number of columns other than `n_words`, an array that is not 2-D.
    InvalidInputTypeError (a TypeError): strings, token lists, complex or object data.
    Empty documents (all-zero rows) are allowed.
    """
    out_dtype = _out_dtype(dtype)
    X = sp.csr_matrix(X) if sp.issparse(X) else _dense_as_csr(X, name)
    _check_shape(X, n_words, name)
    data = X.data
    if data.dtype.kind not in "biuf":
        raise InvalidInputTypeError(
            f"{name} holds {data.dtype} values; word counts must be numbers.")
    out_dtype = out_dtype or (np.dtype(np.float32) if data.dtype == np.float32
                              else np.dtype(np.float64))
    if data.dtype.kind == "f" and data.size:
        _check_entries(X, name, first_row)
    elif data.dtype.kind == "i" and data.size and data.min() < 0:
        _check_entries(X, name, first_row)
    out = sp.csr_matrix((data.astype(out_dtype), X.indices.copy(), X.indptr.copy()),
                        shape=X.shape)
    out.sum_duplicates()  # sorts the indices of each row, then adds repeated ones
    out.eliminate_zeros()
    _check_magnitude(out, out_dtype, name, first_row)
    return out


def csr_arrays(X: sp.csr_matrix) -> CorpusArrays:
    """The kernels' arrays of a matrix returned by `check_counts` (no check, no copy when
    the dtypes already match)."""
    return CorpusArrays(X.indptr.astype(np.int64, copy=False),
                        X.indices.astype(np.int32, copy=False), X.data)


def _out_dtype(dtype) -> np.dtype | None:
    if dtype is None:
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InvalidParameterError(f"argument 'dtype' must be None, np.float32 or "
                                    f"np.float64; got {dtype!r}.")
    return resolved


def _dense_as_csr(X, name: str) -> sp.csr_matrix:
    """A dense array-like of counts as CSR, refusing what cannot be read as numbers."""
    if is_token_lists(X):
        raise InvalidInputTypeError(
            f"{name} is a list of token lists; count them first with "
            f"latentkit.topics.counts_from_tokens({name}).")
    X = unmask(X, allow_nan=False, name=name, model="a topic model")
    try:
        array = np.asarray(X)
    except ValueError as exc:  # ragged nested lists
        raise InvalidInputError(
            f"{name} cannot be read as a 2-D array of counts ({exc}); every document must "
            "have one count per vocabulary word.") from None
    if array.dtype.kind in "USO" and array.ndim == 1 and all(
            isinstance(doc, str) for doc in array[:1]):
        raise InvalidInputTypeError(
            f"{name} is a sequence of texts; turn them into counts first with "
            f"latentkit.topics.vectorize({name}).")
    if array.dtype.kind == "O":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInputTypeError(
                f"{name} holds objects that are not numbers; word counts must be "
                "numbers.") from None
    if array.dtype.kind not in "biuf":
        raise InvalidInputTypeError(
            f"{name} holds {array.dtype} values; word counts must be numbers.")
    if array.ndim != 2:
        raise InvalidInputError(
            f"{name} must be 2-D (n_docs, n_words); got shape {array.shape}. One document "
            f"is {name}.reshape(1, -1).")
    return sp.csr_matrix(array)


def _check_shape(X, n_words: int | None, name: str) -> None:
    if X.ndim != 2:
        raise InvalidInputError(
            f"{name} must be 2-D (n_docs, n_words); got shape {X.shape}.")
    n_docs, n_columns = X.shape
    if n_docs == 0:
        raise InvalidInputError(f"{name} has no documents (shape {X.shape}); pass at least "
                                "one document.")
    if n_columns == 0:
        raise InvalidInputError(
            f"{name} has an empty vocabulary (shape {X.shape}, no word columns); every "
            "document-term matrix needs at least one word. When vectorizing, relax min_df "
            "or max_df, or drop stop_words.")
    if n_columns > MAX_WORDS:
        raise InvalidInputError(
            f"{name} has {n_columns} word columns, more than latentkit's limit of {MAX_WORDS} "
            "words. Drop rare words (e.g. vectorize(..., min_df=5) or max_features=...) or "
            "pass the columns that hold words.")
    if n_words is not None and n_columns != n_words:
        raise InvalidInputError(
            f"{name} has {n_columns} word columns, but the model's vocabulary has {n_words} "
            f"words. Count the documents with the vocabulary the model was fitted on, e.g. "
            f"vectorize(texts, vocabulary=model_vocabulary).")


def _first_bad(X, bad: np.ndarray) -> tuple[int, int, float]:
    """(document, word column, value) of the first stored entry flagged in `bad` (nnz,)."""
    position = int(np.flatnonzero(bad)[0])
    row = int(np.searchsorted(X.indptr, position, side="right")) - 1
    return row, int(X.indices[position]), X.data[position].item()


def _check_entries(X, name: str, first_row: int) -> None:
    """NaN, inf, negative and non-integer stored entries, in that order of priority."""
    data = X.data
    checks = (
        (~np.isfinite(data) if data.dtype.kind == "f" else None,
         "{value} at document {row}, word column {col}; a count must be finite. "
         "Replace it (a missing count is 0)."),
        (data < 0,
         "a negative count ({value}) at document {row}, word column {col}; counts must be "
         "non-negative whole numbers (how many times a word occurs in a document)."),
        (np.floor(data) != data if data.dtype.kind == "f" else None,
         "a non-integer count ({value}) at document {row}, word column {col}; topic models "
         "need whole-number word counts. " + _COUNT_FIX),
    )
    for bad, message in checks:
        if bad is not None and bad.any():
            row, col, value = _first_bad(X, bad)
            raise InvalidInputError(
                f"{name} holds " + message.format(value=value, row=first_row + row, col=col))


def _check_magnitude(X, dtype: np.dtype, name: str, first_row: int) -> None:
    """Counts (after duplicates are summed) within the range the kernels count exactly."""
    if not X.data.size:
        return
    largest = X.data.max()
    limit = MAX_EXACT_FLOAT32 if dtype == np.float32 else MAX_COUNT
    if largest <= limit:
        return
    row, col, value = _first_bad(X, X.data > limit)
    fix = ("pass dtype=np.float64, which holds counts up to 2**31 - 1 exactly"
           if dtype == np.float32 and largest <= MAX_COUNT else
           "split the document into several, or check that the matrix holds counts")
    why = ("float32 holds whole numbers exactly only up to 2**24" if dtype == np.float32
           else "token counters are 32-bit integers")
    raise InvalidInputError(
        f"{name} holds a count of {value:.0f} at document {first_row + row}, word column "
        f"{col}, above {limit} ({why}); {fix}.")


def is_token_lists(X) -> bool:
    """Whether X is a list or tuple of token lists: every element a list or tuple, and at
    least one token a string. Lists of integers read as a dense count matrix (pass word-id
    lists to `counts_from_tokens` explicitly)."""
    if not isinstance(X, list | tuple) or not X:
        return False
    if not all(isinstance(doc, list | tuple) for doc in X):
        return False
    return any(isinstance(token, str) for doc in X for token in doc[:1])


def counts_from_tokens(documents, vocabulary=None):
    """Count tokens into a document-term matrix.

    documents : a sequence of n_docs token sequences. Tokens are strings, or (only when
    `vocabulary` is None, or to index into it) non-negative integers = word ids.
    vocabulary : None, or (V,) distinct strings. None learns it: the sorted distinct string
    tokens, or, for integer ids, the strings "0" .. str(max id). Given: tokens not in it
    (strings missing from it, ids >= V) are dropped and counted.

    Returns (counts : (n_docs, V) CSR float64 from `check_counts`, vocabulary : (V,) str
    ndarray, n_unknown : int, the number of tokens dropped; the caller warns about them).
    """
    documents = _check_documents(documents)
    lengths = np.fromiter(map(len, documents), dtype=np.int64, count=len(documents))
    tokens = _token_array(list(chain.from_iterable(documents)))
    vocabulary = None if vocabulary is None else _check_vocabulary(vocabulary)
    if tokens.dtype.kind in "iu":
        if tokens.size and tokens.min() < 0:
            raise InvalidInputError(
                f"word ids must be non-negative; got {int(tokens.min())}.")
        size = int(tokens.max()) + 1 if tokens.size else 0
        if vocabulary is None and size > MAX_WORDS:
            raise InvalidInputError(
                f"word id {size - 1} is beyond latentkit's limit of {MAX_WORDS} words: a list of "
                "integer word ids makes a vocabulary of every id up to the largest. Renumber the "
                "words 0..V-1, or pass the vocabulary.")
        vocabulary = (np.array([str(i) for i in range(size)]) if vocabulary is None
                      else vocabulary)
        ids = tokens.astype(np.int64)
        ids[ids >= len(vocabulary)] = -1
    elif vocabulary is None:
        vocabulary, ids = np.unique(tokens, return_inverse=True)
    else:
        ids = _lookup(tokens, vocabulary)
    known = ids >= 0
    rows = np.repeat(np.arange(len(documents)), lengths)[known]
    matrix = sp.csr_matrix((np.ones(int(known.sum())), (rows, ids[known])),
                           shape=(len(documents), len(vocabulary)))
    return (check_counts(matrix, name="documents"), vocabulary.astype(str),
            int(tokens.size - known.sum()))


def _check_documents(documents) -> list:
    if isinstance(documents, str) or not isinstance(documents, list | tuple):
        raise InvalidInputTypeError(
            "documents must be a list of token lists (one list of strings per document); "
            f"got {type(documents).__name__}.")
    if not documents:
        raise InvalidInputError("documents is empty; pass at least one document.")
    for d, doc in enumerate(documents):
        if isinstance(doc, str) or not isinstance(doc, list | tuple | np.ndarray):
            raise InvalidInputTypeError(
                f"document {d} is a {type(doc).__name__}, not a list of tokens; split texts "
                "into tokens first, or use latentkit.topics.vectorize(texts).")
    return list(documents)


def _token_array(tokens: list) -> np.ndarray:
    """All tokens as one array: strings ('U') or integer ids."""
    if not tokens:
        return np.array([], dtype=np.int64)
    if all(isinstance(t, str) for t in tokens):
        return np.array(tokens, dtype=str)
    if all(isinstance(t, int | np.integer) and not isinstance(t, bool) for t in tokens):
        return np.array(tokens, dtype=np.int64)
    odd = [type(t).__name__ for t in tokens
           if not isinstance(t, str | int | np.integer) or isinstance(t, bool)]
    found = f"found a {odd[0]}" if odd else "found strings mixed with integers"
    raise InvalidInputTypeError(
        f"tokens must all be strings, or all non-negative integer word ids; {found}.")


def _check_vocabulary(vocabulary) -> np.ndarray:
    if isinstance(vocabulary, str):
        raise InvalidInputTypeError("vocabulary must be a sequence of words, not one string.")
    words = np.asarray(list(vocabulary))
    if words.ndim != 1 or words.size == 0 or words.dtype.kind != "U":
        raise InvalidInputError(
            "vocabulary must be a non-empty sequence of distinct strings; got "
            f"{len(words)} entries of dtype {words.dtype}.")
    unique, counts = np.unique(words, return_counts=True)
    if unique.size != words.size:
        raise InvalidInputError(
            f"vocabulary holds {str(unique[counts > 1][0])!r} more than once; each word must "
            "appear once (its position is its word id).")
    return words


def _lookup(tokens: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """Word id of each token in `vocabulary`, -1 where absent (binary search in the sorted
    vocabulary)."""
    order = np.argsort(vocabulary, kind="stable")
    sorted_words = vocabulary[order]
    slot = np.minimum(np.searchsorted(sorted_words, tokens), len(sorted_words) - 1)
    found = sorted_words[slot] == tokens
    return np.where(found, order[slot], -1)


__all__ = ["CorpusArrays", "MAX_COUNT", "check_counts", "counts_from_tokens", "csr_arrays",
           "is_token_lists"]
