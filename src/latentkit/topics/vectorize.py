"""From texts to word counts: a thin, checked layer over scikit-learn's CountVectorizer.

Defaults suit news-like English text (the AP corpus, newsgroups):
- `stop_words="english"`: scikit-learn's list of 318 function words ("the", "of", ...),
  which would otherwise fill every topic;
- `min_df=2`: a word must occur in at least 2 documents; words seen once (typos, rare
  names) cannot be shared by a topic and only slow the sampler;
- `max_df=0.95`: a word in more than 95% of documents says nothing about topics;
- `token_pattern=r"(?u)\\b[^\\W\\d_]{2,}\\b"`: words of two or more letters, no digits
  or underscores (numbers and dates rarely make topics);
- `lowercase=True`, `max_features=None` (keep every word that passes the filters).
"""

from __future__ import annotations

import gzip
import os
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import sklearn.utils._param_validation as sk_validation
from sklearn.feature_extraction.text import CountVectorizer

from ..exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterError
from ._corpus import check_counts, counts_from_tokens

TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"


class TextCorpus(NamedTuple):
    """counts : (n_docs, n_words) CSR float64; vocabulary : (n_words,) str, column j's word;
    n_unknown : tokens dropped because they were not in a given vocabulary (0 when the
    vocabulary was learned)."""

    counts: sp.csr_matrix
    vocabulary: np.ndarray
    n_unknown: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """(n_docs, n_words), the counts' shape: a corpus is a document-term matrix."""
        return self.counts.shape


def vectorize(texts, *, vocabulary=None, stop_words="english", min_df=2, max_df=0.95,
              max_features=None, lowercase=True, token_pattern=TOKEN_PATTERN) -> TextCorpus:
    """Count the words of `texts` (n_docs strings) into a TextCorpus.

    With `vocabulary` None, the vocabulary is learned (sorted alphabetically) from the words
    that pass `stop_words`, `min_df`, `max_df` and `max_features` (scikit-learn's meanings:
    an int is a number of documents, a float in (0, 1] a fraction of them; `max_features`
    keeps the most frequent words). With a given `vocabulary` (V distinct strings), the
    columns follow its order and `min_df`, `max_df` and `max_features` do not apply (there
    is nothing to learn); tokens that survive `stop_words` but are not in it are dropped and
    counted in `n_unknown`.

    Errors: a filter that leaves no word is an InvalidInputError naming the option to
    relax; texts that are not strings are an InvalidInputTypeError.
    """
    texts = _check_texts(texts)
    options = dict(stop_words=stop_words, lowercase=lowercase, token_pattern=token_pattern)
    if vocabulary is not None:
        analyzer = count_vectorizer(**options).build_analyzer()
        counts, words, n_unknown = counts_from_tokens(
            [analyzer(text) for text in texts], vocabulary)
        return TextCorpus(counts, words, n_unknown)
    vectorizer = count_vectorizer(min_df=min_df, max_df=max_df, max_features=max_features,
                                  **options)
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError as exc:
        raise InvalidInputError(_no_words_message(exc, len(texts), min_df, max_df)) from None
    words = vectorizer.get_feature_names_out().astype(str)
    return TextCorpus(check_counts(counts, name="texts"), words, 0)


def count_vectorizer(**options) -> CountVectorizer:
    """A CountVectorizer with the defaults above, its options checked now (scikit-learn
    checks them only at fit); a bad option is an InvalidParameterError."""
    defaults = dict(stop_words="english", min_df=2, max_df=0.95, max_features=None,
                    lowercase=True, token_pattern=TOKEN_PATTERN)
    vectorizer = CountVectorizer(**{**defaults, **options})
    try:
        vectorizer._validate_params()
    except sk_validation.InvalidParameterError as exc:
        raise InvalidParameterError(str(exc)) from None
    return vectorizer


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str | bytes):
        raise InvalidInputTypeError(
            "texts must be a sequence of documents (strings), not one string; wrap a single "
            "document in a list, or read a file with read_documents(path).")
    try:
        texts = list(texts)
    except TypeError:
        raise InvalidInputTypeError(
            f"texts must be a sequence of strings; got {type(texts).__name__}.") from None
    if not texts:
        raise InvalidInputError("texts is empty; pass at least one document.")
    for d, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputTypeError(
                f"text {d} is a {type(text).__name__}, not a string; every document must be "
                "a str (decode bytes first, e.g. with read_documents).")
    return texts


def _no_words_message(exc: ValueError, n_docs: int, min_df, max_df) -> str:
    """scikit-learn's 'no terms remain' errors, told in terms of this function's options."""
    return (
        f"vectorize: no word is left in the vocabulary of these {n_docs} documents "
        f"(scikit-learn: {exc}). Relax the filters: lower min_df (now {min_df!r}; it counts "
        f"documents when an int), raise max_df (now {max_df!r}), pass stop_words=None, or "
        "widen token_pattern.")


def read_documents(path: str | os.PathLike) -> list[str]:
    """The documents of a text file, one per line, decoded as UTF-8 (a leading byte-order
    mark is dropped; a `.gz` file is decompressed). An empty line is an empty document, so
    line i (0-based) is document i. An undecodable file is an InvalidInputError naming the
    file and the line."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    return decode_lines(raw, path)


def decode_lines(raw: bytes, source: str, first_line: int = 1) -> list[str]:
    """Split UTF-8 bytes into lines ("\\n" or "\\r\\n"); a final newline ends the last line
    rather than starting an empty one. `first_line` numbers the first line in messages."""
    try:
        text = raw.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + raw.count(b"\n", 0, exc.start)
        raise InvalidInputError(
            f"{source}: line {line} is not valid UTF-8 ({exc.reason} at byte "
            f"{exc.start}); re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8.") \
            from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


__all__ = ["TOKEN_PATTERN", "TextCorpus", "count_vectorizer", "decode_lines",
           "read_documents", "vectorize"]
