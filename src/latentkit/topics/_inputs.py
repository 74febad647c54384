"""What LDA's methods accept as documents, turned into one validated count matrix.

A corpus can come as
- a scipy.sparse or dense document-term count matrix (n_docs, n_words);
- a `TextCorpus` (counts + vocabulary: `vectorize`, `latentkit.datasets.load_ap`);
- a list of token lists (strings, or int word ids);
- a list of raw texts (strings), vectorized by `latentkit.topics.vectorize`.
After a fit, documents given as words are counted with the model's vocabulary: unknown
words are ignored, and their number is reported in a warning.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..exceptions import InvalidInputError
from ._corpus import check_counts, counts_from_tokens, is_token_lists
from .vectorize import vectorize


class UnknownWordsWarning(UserWarning):
    """Documents held words outside the model's vocabulary; they were ignored."""


class Documents(NamedTuple):
    """counts : (n_docs, V) validated CSR (check_counts); vocabulary : (V,) str or None."""

    counts: sp.csr_matrix
    vocabulary: np.ndarray | None


def _is_texts(X) -> bool:
    return isinstance(X, list | tuple) and len(X) > 0 and all(isinstance(x, str) for x in X)


def _warn_unknown(n_unknown: int, n_docs: int, stacklevel: int) -> None:
    if n_unknown:
        warnings.warn(f"{n_unknown} token(s) in {n_docs} document(s) are not in the model's "
                      "vocabulary and were ignored.", UnknownWordsWarning,
                      stacklevel=stacklevel)


def remap_columns(counts: sp.csr_matrix, words: np.ndarray, vocabulary: np.ndarray,
                  stacklevel: int) -> sp.csr_matrix:
    """counts (n_docs, len(words)) over `words` re-indexed to the columns of `vocabulary`
    (V,): the same word, the same column; words the vocabulary lacks are dropped, their
    tokens counted in a warning."""
    if len(words) == len(vocabulary) and np.array_equal(words, vocabulary):
        return counts
    order = np.argsort(vocabulary)
    where = np.searchsorted(vocabulary, words, sorter=order).clip(0, len(vocabulary) - 1)
    target = order[where]
    known = vocabulary[target] == words
    target = np.where(known, target, -1)
    coo = counts.tocoo()
    keep = known[coo.col]
    _warn_unknown(int(coo.data[~keep].sum()), counts.shape[0], stacklevel + 1)
    return check_counts(sp.csr_matrix((coo.data[keep], (coo.row[keep], target[coo.col[keep]])),
                                      shape=(counts.shape[0], len(vocabulary))),
                        dtype=counts.dtype)


def _named_counts(counts, words, vocabulary, n_words, dtype, stacklevel) -> Documents:
    """Counts whose columns are named by `words`: over the model's vocabulary when it has
    one (matched by word), else as they come."""
    words = np.asarray(words, dtype=str)
    counts = check_counts(counts, dtype=dtype)
    if vocabulary is not None:
        return Documents(remap_columns(counts, words, vocabulary, stacklevel + 1), vocabulary)
    if n_words is not None:
        counts = check_counts(counts, n_words=n_words)
    return Documents(counts, words)


def as_documents(X, *, vocabulary=None, n_words: int | None = None, dtype=None,
                 stacklevel: int = 4) -> Documents:
    """X (any form above) as counts over `vocabulary` (the fitted model's, or None when
    fitting: the corpus's own) with `n_words` columns (the fitted model's, or None)."""
    if hasattr(X, "counts") and hasattr(X, "vocabulary"):  # a TextCorpus, load_ap()
        return _named_counts(X.counts, X.vocabulary, vocabulary, n_words, dtype,
                             stacklevel + 1)
    if isinstance(X, pd.DataFrame):
        return _named_counts(X.to_numpy(), X.columns, vocabulary, n_words, dtype,
                             stacklevel + 1)
    if _is_texts(X):
        corpus = vectorize(list(X), vocabulary=vocabulary)
        _warn_unknown(corpus.n_unknown, len(X), stacklevel + 1)
        return Documents(check_counts(corpus.counts, dtype=dtype), corpus.vocabulary)
    if is_token_lists(X):
        counts, words, n_unknown = counts_from_tokens(X, vocabulary)
        _warn_unknown(n_unknown, len(X), stacklevel + 1)
        return Documents(check_counts(counts, n_words=n_words, dtype=dtype), words)
    return Documents(check_counts(X, n_words=n_words, dtype=dtype), None)


def corpus_source(path, model, *, reset: bool, chunk_docs: int):
    """A corpus on disk read in blocks of `chunk_docs` documents, as an EM source: a
    scipy `.npz` count matrix, or a text file of one document per line (vectorized with
    `vectorize`'s defaults: at reset a first pass learns the vocabulary; then the model's
    is used). At reset records the model's vocabulary_, n_features_in_ and
    mean_doc_length_ (one more pass)."""
    from ._streams import NpzCountsSource, TextLinesSource, vocabulary_from_file

    path = str(path)
    if path.endswith(".npz"):
        source, vocabulary = NpzCountsSource(path, chunk_docs), None
        if not reset and source.n_features != model.n_features_in_:
            raise InvalidInputError(f"{path} has {source.n_features} word columns; the model "
                                    f"was fitted on {model.n_features_in_}.")
    elif path.endswith((".txt", ".txt.gz")):
        vocabulary = vocabulary_from_file(path) if reset else model.vocabulary_
        if vocabulary is None:
            raise InvalidInputError("the model was fitted on bare counts and has no "
                                    "vocabulary to count the words of a text file with.")
        source = TextLinesSource(path, vocabulary, chunk_docs)
    else:
        raise InvalidInputError(f"a corpus on disk must be a .npz count matrix (scipy."
                                f"sparse.save_npz) or a .txt file of one document per line; "
                                f"got {path!r}.")
    if reset:
        model.vocabulary_, model.n_features_in_ = vocabulary, source.n_features
        tokens = sum(float(block.sum()) for block in source)
        model.mean_doc_length_ = tokens / max(source.n_samples, 1)
    return source


__all__ = ["Documents", "UnknownWordsWarning", "as_documents", "corpus_source",
           "remap_columns"]
