"""Text corpora as document-term counts (provenance in shared/data/SOURCES.md).

A corpus loader returns a ``sklearn.utils.Bunch`` with ``counts`` : (n_docs, n_words) CSR
float64 word counts and ``vocabulary`` : (n_words,) str, column j's word, plus the usual
loader fields: ``data`` (the same matrix as ``counts``), ``feature_names`` (the same array
as ``vocabulary``), ``target`` None, ``name`` and ``DESCR``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch

from latentkit.datasets._paths import find_data_file
from latentkit.datasets.real import _DataFile, _read_gzip
from latentkit.exceptions import InvalidInputError

# The shipped files were re-compressed locally (gzip -9 -n) from blei-lab/lda-c's ap.tgz,
# so no download address reproduces these exact bytes.
_AP_COUNTS = _DataFile(
    "ap/ap.dat.gz", "5e243525b91b827aea767014e0b385b136686c308af04fe3632ae50dee384b76", None)
_AP_VOCABULARY = _DataFile(
    "ap/vocab.txt.gz", "20deb4ad52d5aa5d1e6c70654dc5eed4c6fececa9c60742ab062053d7eed011c", None)
_AP_DESCR = (
    "Associated Press newswire, 2,246 articles from 1988 and 1990 (TREC AP), as prepared by "
    "David M. Blei for LDA-C (blei-lab/lda-c example/ap.tgz) and used by R "
    "topicmodels::AssociatedPress: bag-of-words counts over a 10,473-word vocabulary. The "
    "articles are copyrighted by the Associated Press; only the derived counts are shipped. "
    "Source and checks: shared/data/SOURCES.md."
)
_NEWLINE, _COLON = ord("\n"), ord(":")


def load_ap() -> Bunch:
    """The AP corpus: counts (2246, 10473) CSR float64, vocabulary (10473,) str.

    Files ap/ap.dat.gz and ap/vocab.txt.gz, found and sha256-checked by
    `find_data_file` (FileNotFoundError listing the places looked when absent).
    """
    vocabulary = parse_vocabulary(_read_gzip(find_data_file(*_AP_VOCABULARY)))
    counts = parse_lda_c(_read_gzip(find_data_file(*_AP_COUNTS)), len(vocabulary),
                         _AP_COUNTS.relpath)
    return Bunch(counts=counts, vocabulary=vocabulary, data=counts, feature_names=vocabulary,
                 target=None, name="ap", DESCR=_AP_DESCR)


def parse_vocabulary(raw: bytes) -> np.ndarray:
    """One word per line (UTF-8), line i = word id i : (V,) str."""
    words = raw.decode("utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    return np.array([word.removesuffix("\r") for word in words], dtype=str)


def parse_lda_c(raw: bytes, n_words: int, name: str = "LDA-C data") -> sp.csr_matrix:
    """Decode the LDA-C sparse format: one document per line, ``M id:count ... id:count``
    with M the number of pairs and ids 0-based word ids < `n_words`.

    Returns (n_docs, n_words) CSR float64 (through `check_counts`: sorted ids, repeated ids
    summed). Every line's M must equal its number of pairs; a malformed line is an
    InvalidInputError naming it. Parsed without a Python loop over tokens: the colons
    locate the pairs of each line, and all numbers are read in one pass.
    """
    from latentkit.topics._corpus import check_counts

    pairs_per_line = _pairs_per_line(raw)
    numbers = _read_integers(raw.replace(b":", b" "))
    # each line holds 1 + 2 M numbers: its header M, then M (id, count) pairs
    line_sizes = 1 + 2 * pairs_per_line
    if numbers is None or numbers.size != line_sizes.sum():
        raise InvalidInputError(f"{name}: {_first_malformed_line(raw)}")
    header_at = np.concatenate(([0], np.cumsum(line_sizes)[:-1]))
    declared = numbers[header_at]
    wrong = np.flatnonzero(declared != pairs_per_line)
    if wrong.size:
        line = int(wrong[0])
        raise InvalidInputError(
            f"{name}: line {line + 1} declares {declared[line]} pairs but holds "
            f"{pairs_per_line[line]}; the file is damaged, fetch it again.")
    body = np.delete(numbers, header_at)
    ids, counts = body[0::2], body[1::2]
    rows = np.repeat(np.arange(pairs_per_line.size), pairs_per_line)
    if ids.size and (ids.min() < 0 or ids.max() >= n_words):
        bad = int(np.flatnonzero((ids < 0) | (ids >= n_words))[0])
        raise InvalidInputError(
            f"{name}: line {rows[bad] + 1} holds word id {ids[bad]}, outside the "
            f"vocabulary's 0..{n_words - 1}; the counts and vocabulary files do not match.")
    matrix = sp.coo_matrix((counts, (rows, ids)), shape=(pairs_per_line.size, n_words))
    return check_counts(matrix, n_words=n_words, name=name)


def _pairs_per_line(raw: bytes) -> np.ndarray:
    """(n_lines,) the number of ':' on each line; a final line without '\\n' counts."""
    codes = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(codes == _NEWLINE)
    n_lines = newlines.size + (1 if codes.size and codes[-1] != _NEWLINE else 0)
    colons = np.flatnonzero(codes == _COLON)
    line_of_colon = np.searchsorted(newlines, colons)
    return np.bincount(line_of_colon, minlength=n_lines).astype(np.int64)


def _read_integers(text: bytes) -> np.ndarray | None:
    """Every whitespace-separated integer of `text` (numpy's C parser), or None when a
    token is not an integer (the caller then finds the line to name)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # "could not be read to its end"
        try:
            return np.fromstring(text, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None


def _first_malformed_line(raw: bytes) -> str:
    """The first line that is not ``M id:count ...`` (only on the error path)."""
    for number, line in enumerate(raw.split(b"\n"), start=1):
        fields = line.split()
        if not fields and number == raw.count(b"\n") + 1:
            continue  # the empty remainder after a final newline
        try:
            int(fields[0])
            for field in fields[1:]:
                word, count = field.split(b":")
                int(word), int(count)
        except (IndexError, ValueError):
            return (f"line {number} is not 'M id:count id:count ...': "
                    f"{line[:60].decode('utf-8', 'replace')!r}.")
    return "the number of values does not match the lines; the file is damaged."


__all__ = ["load_ap", "parse_lda_c", "parse_vocabulary"]
