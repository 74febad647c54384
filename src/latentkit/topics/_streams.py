"""Corpora streamed from disk, with memory bounded by a block of documents.

- `NpzCountsSource`: a scipy `.npz` CSR file (what scipy.sparse.save_npz writes) read in
  row blocks; `write_csr_npz` writes one block by block.
- `TextLinesSource`: a text file with one document per line, vectorized block by block with
  a fixed vocabulary; `vocabulary_from_file` learns that vocabulary in one streaming pass.

Both sources are `latentkit.em.ChunkSource`s: each pass yields (n_block, n_words) CSR
blocks checked by `check_counts`, numbered within the whole file in error messages.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from itertools import islice

import numpy as np
import scipy.sparse as sp

from ..em.sources import ChunkSource
from ..exceptions import InvalidInputError, InvalidParameterError
from ._corpus import _check_vocabulary, check_counts, counts_from_tokens
from .vectorize import count_vectorizer, decode_lines

_NPZ_MEMBERS = ("data", "indices", "indptr", "shape", "format")
_COPY_BYTES = 1 << 20


# -- .npz CSR files --------------------------------------------------------------------------


def _member_header(stream) -> tuple[np.dtype, int]:
    """Read the .npy header at the start of `stream`: (dtype, length) of a 1-D array."""
    version = np.lib.format.read_magic(stream)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise InvalidInputError(f".npy format version {version} is not supported.")
    shape, _, dtype = read_header(stream)
    if len(shape) != 1:
        raise InvalidInputError(f"expected a 1-D array, got shape {shape}.")
    return dtype, shape[0]


def _read_items(stream, dtype: np.dtype, count: int, what: str) -> np.ndarray:
    """The next `count` items of a .npy body."""
    raw = stream.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise InvalidInputError(f"{what} ends early: the file is truncated.")
    return np.frombuffer(raw, dtype=dtype)


def _float_dtype(data_dtype: np.dtype, given) -> np.dtype:
    """`given` (float32 / float64), else float32 for float32 data, else float64."""
    if given is not None:
        resolved = np.dtype(given)
        if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise InvalidParameterError(f"argument 'dtype' must be None, np.float32 or "
                                        f"np.float64; got {given!r}.")
        return resolved
    return np.dtype(np.float32) if data_dtype == np.float32 else np.dtype(np.float64)


def _sample_rows(n_rows: int, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """All row indices when there are at most `max_rows`, else a sorted random subset."""
    if n_rows <= max_rows:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, size=max_rows, replace=False))


def _sample_from_blocks(source: ChunkSource, max_rows: int, rng) -> sp.csr_matrix:
    """`max_rows` uniformly chosen rows of a streamed source, in order, reading blocks in
    order only up to the last chosen row (memory: the chosen rows plus one block)."""
    rows = _sample_rows(source.n_samples, max_rows, rng)
    picked, start = [], 0
    for block in source:
        stop = start + block.shape[0]
        inside = rows[(rows >= start) & (rows < stop)] - start
        if inside.size:
            picked.append(block[inside])
        start = stop
        if start > rows[-1]:
            break
    return sp.vstack(picked, format="csr")


class NpzCountsSource(ChunkSource):
    """Document-term counts in a scipy `.npz` CSR file, served in blocks of `chunk_rows`
    documents: (n_block, n_words) CSR in `dtype` (None: float32 for float32 data, else
    float64).

    Memory: `indptr` is read whole (8 bytes per document); `data` and `indices` are read
    sequentially from the zip members on each pass (stored or deflated alike), one block
    at a time, so a pass holds one block, whatever the file size. Each block is checked by
    `check_counts` (plus word ids within 0..n_words - 1); errors name the file and the
    document's number in the whole file.
    """

    def __init__(self, path, chunk_rows: int, dtype=None):
        self.path = os.fspath(path)
        self.chunk_rows = max(1, int(chunk_rows))
        shape, self.indptr = self._read_layout()
        self.n_samples, self.n_features = shape
        with zipfile.ZipFile(self.path) as archive, archive.open("data.npy") as stream:
            data_dtype, _ = _member_header(stream)
        self.dtype = _float_dtype(data_dtype, dtype)

    def _read_layout(self) -> tuple[tuple[int, int], np.ndarray]:
        """(shape, indptr : (n_docs + 1,) int64), with the members and indptr checked."""
        try:
            npz = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"{self.path} is not a readable .npz file ({exc}).") \
                from None
        with npz:
            missing = [m for m in _NPZ_MEMBERS if m not in npz.files]
            fmt = "" if "format" in missing else npz["format"].item()
            fmt = fmt.decode("ascii") if isinstance(fmt, bytes) else str(fmt)
            if missing or fmt != "csr":
                raise InvalidInputError(
                    f"{self.path} is not a scipy CSR .npz file (format {fmt!r}, missing "
                    f"{missing}); save one with scipy.sparse.save_npz(path, X.tocsr()).")
            shape = tuple(int(n) for n in npz["shape"])
            indptr = npz["indptr"].astype(np.int64)
        if len(shape) != 2 or min(shape) == 0:
            raise InvalidInputError(
                f"{self.path} holds a matrix of shape {shape}; a corpus needs at least one "
                "document and one word.")
        nnz = self._member_length("indices.npy")
        if (indptr.shape != (shape[0] + 1,) or indptr[0] != 0 or indptr[-1] != nnz
                or np.any(np.diff(indptr) < 0) or self._member_length("data.npy") != nnz):
            raise InvalidInputError(
                f"{self.path}: indptr, indices and data do not describe a CSR matrix of "
                f"shape {shape}; the file is damaged.")
        return shape, indptr

    def _member_length(self, member: str) -> int:
        with zipfile.ZipFile(self.path) as archive, archive.open(member) as stream:
            return _member_header(stream)[1]

    def __iter__(self) -> Iterator[sp.csr_matrix]:
        with zipfile.ZipFile(self.path) as archive, archive.open("data.npy") as data, \
                archive.open("indices.npy") as indices:
            data_dtype, _ = _member_header(data)
            index_dtype, _ = _member_header(indices)
            for start in range(0, self.n_samples, self.chunk_rows):
                stop = min(start + self.chunk_rows, self.n_samples)
                nnz = int(self.indptr[stop] - self.indptr[start])
                yield self._block(start, stop, _read_items(data, data_dtype, nnz, self.path),
                                  _read_items(indices, index_dtype, nnz, self.path))

    def _block(self, start: int, stop: int, data: np.ndarray, indices: np.ndarray):
        if indices.size and (indices.min() < 0 or indices.max() >= self.n_features):
            bad = int(np.flatnonzero((indices < 0) | (indices >= self.n_features))[0])
            row = int(np.searchsorted(self.indptr, self.indptr[start] + bad, "right")) - 1
            raise InvalidInputError(
                f"{self.path}: document {row} holds word id {indices[bad]}, outside "
                f"0..{self.n_features - 1}; the file is damaged.")
        indptr = self.indptr[start:stop + 1] - self.indptr[start]
        block = sp.csr_matrix((data, indices, indptr), shape=(stop - start, self.n_features))
        return check_counts(block, n_words=self.n_features, dtype=self.dtype, name=self.path,
                            first_row=start)

    def init_sample(self, max_rows, rng):
        """`max_rows` documents chosen uniformly at random (all when there are fewer), in
        file order, read in one sequential pass that stops after the last one chosen."""
        return _sample_from_blocks(self, max_rows, rng)


def write_csr_npz(path, n_columns: int, blocks: Iterable[sp.csr_matrix],
                  dtype=np.float64) -> tuple[int, int]:
    """Write the row blocks of a CSR matrix to `path` in scipy's uncompressed `.npz` format
    (scipy.sparse.load_npz reads it as a csr_matrix), holding one block at a time.

    blocks : (n_rows_b, n_columns) CSR matrices, stacked in order; data are stored as
    `dtype`, indices as int32, indptr as int64. Each block's arrays go to temporary raw
    files beside `path`; the zip (ZIP_STORED members, zip64) is then assembled by copying
    them 1 MiB at a time, and renamed into place. Returns the shape (n_rows, n_columns).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder, prefix=".csr-npz-") as scratch:
        names = {member: os.path.join(scratch, member) for member in
                 ("data", "indices", "indptr")}
        n_rows, nnz = _spill_blocks(names, blocks, n_columns, np.dtype(dtype))
        lengths = {"data": nnz, "indices": nnz, "indptr": n_rows + 1}
        dtypes = {"data": np.dtype(dtype), "indices": np.dtype(np.int32),
                  "indptr": np.dtype(np.int64)}
        partial = path + ".part"
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as archive:
            for member in ("indices", "indptr"):
                _copy_member(archive, member, names[member], dtypes[member], lengths[member])
            archive.writestr("format.npy", _npy_bytes(np.array(b"csr")))
            archive.writestr("shape.npy", _npy_bytes(np.array([n_rows, n_columns])))
            _copy_member(archive, "data", names["data"], dtypes["data"], lengths["data"])
        os.replace(partial, path)
    return n_rows, n_columns


def _spill_blocks(names: dict, blocks, n_columns: int, dtype: np.dtype) -> tuple[int, int]:
    """Append each block's data, indices and (shifted) row ends to the raw files."""
    n_rows, nnz = 0, 0
    with open(names["data"], "wb") as data, open(names["indices"], "wb") as indices, \
            open(names["indptr"], "wb") as indptr:
        indptr.write(np.zeros(1, dtype=np.int64).tobytes())
        for block in blocks:
            block = sp.csr_matrix(block)
            if block.shape[1] != n_columns:
                raise InvalidInputError(f"a block has {block.shape[1]} columns; expected "
                                        f"{n_columns}.")
            data.write(block.data.astype(dtype, copy=False).tobytes())
            indices.write(block.indices.astype(np.int32, copy=False).tobytes())
            indptr.write((block.indptr[1:].astype(np.int64) + nnz).tobytes())
            n_rows += block.shape[0]
            nnz += block.nnz
    return n_rows, nnz


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _copy_member(archive: zipfile.ZipFile, member: str, raw_path: str, dtype: np.dtype,
                 length: int) -> None:
    """Member `member`.npy: a .npy header for (length,) `dtype`, then the raw file."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (length,)}
    with archive.open(member + ".npy", "w", force_zip64=True) as out, \
            open(raw_path, "rb") as raw:
        np.lib.format.write_array_header_1_0(out, header)
        shutil.copyfileobj(raw, out, _COPY_BYTES)


# -- text files, one document per line -------------------------------------------------------


def _open_text(path: str):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _line_blocks(path: str, block_lines: int) -> Iterator[tuple[int, list[str]]]:
    """(first line number, 1-based; the next `block_lines` decoded lines) of a file."""
    with _open_text(path) as handle:
        first = 1
        while True:
            raw = list(islice(handle, block_lines))
            if not raw:
                return
            yield first, decode_lines(b"".join(raw), path, first_line=first)
            first += len(raw)


def _count_lines(path: str) -> int:
    """The number of lines (documents), reading 1 MiB at a time."""
    n_lines, last = 0, b"\n"
    with _open_text(path) as handle:
        for raw in iter(lambda: handle.read(_COPY_BYTES), b""):
            n_lines += raw.count(b"\n")
            last = raw[-1:]
    return n_lines + (last != b"\n")


class TextLinesSource(ChunkSource):
    """A text file (UTF-8, `.gz` allowed) with one document per line, served as
    (n_block, V) CSR count blocks of `chunk_rows` lines over the fixed `vocabulary` (V,).

    `stop_words`, `lowercase` and `token_pattern` tokenize as `vectorize` does; tokens not
    in the vocabulary are dropped, and `n_unknown` holds how many the last full pass
    dropped (None before one). Memory: one block of lines and its counts.
    """

    def __init__(self, path, vocabulary, chunk_rows: int, dtype=None, **options):
        unknown = set(options) - {"stop_words", "lowercase", "token_pattern"}
        if unknown:
            raise InvalidParameterError(
                f"TextLinesSource takes stop_words, lowercase and token_pattern; got "
                f"{sorted(unknown)} (min_df, max_df and max_features apply when learning a "
                "vocabulary: see vocabulary_from_file).")
        self.path = os.fspath(path)
        self.vocabulary = _check_vocabulary(vocabulary)
        self.chunk_rows = max(1, int(chunk_rows))
        self.analyzer = count_vectorizer(**options).build_analyzer()
        self.dtype = _float_dtype(np.dtype(np.float64), dtype)
        self.n_features = len(self.vocabulary)
        self.n_samples = _count_lines(self.path)
        self.n_unknown = None

    def __iter__(self) -> Iterator[sp.csr_matrix]:
        dropped = 0
        for _, lines in _line_blocks(self.path, self.chunk_rows):
            counts, _, n_unknown = counts_from_tokens(
                [self.analyzer(line) for line in lines], self.vocabulary)
            dropped += n_unknown
            yield counts.astype(self.dtype, copy=False)
        self.n_unknown = dropped

    def init_sample(self, max_rows, rng):
        """`max_rows` documents chosen uniformly at random (all when there are fewer), in
        file order, read in one pass that stops after the last one chosen."""
        return _sample_from_blocks(self, max_rows, rng)


def vocabulary_from_file(path, *, stop_words="english", min_df=2, max_df=0.95,
                         max_features=None, lowercase=True, token_pattern=None,
                         block_lines: int = 10_000) -> np.ndarray:
    """The vocabulary `vectorize(read_documents(path), ...)` would learn, in one streaming
    pass: (V,) str, sorted. Memory is bounded by the number of distinct tokens, not the
    file: each block of `block_lines` lines is tokenized, and its document and term
    frequencies are merged into running totals; min_df / max_df (int: documents; float:
    fraction of all lines) and max_features (the most frequent words, ties broken
    alphabetically) are applied at the end. token_pattern None means vectorize's default.
    """
    options = dict(stop_words=stop_words, min_df=min_df, max_df=max_df,
                   max_features=max_features, lowercase=lowercase)
    if token_pattern is not None:
        options["token_pattern"] = token_pattern
    analyzer = count_vectorizer(**options).build_analyzer()
    words, doc_freq, term_freq, n_docs = np.array([], dtype=str), np.zeros(0), np.zeros(0), 0
    for _, lines in _line_blocks(os.fspath(path), max(1, int(block_lines))):
        n_docs += len(lines)
        tokens = [analyzer(line) for line in lines]
        if not any(tokens):
            continue
        counts, block_words, _ = counts_from_tokens(tokens)
        words, doc_freq, term_freq = _merge_frequencies(
            (words, doc_freq, term_freq),
            (block_words, np.bincount(counts.indices, minlength=len(block_words)),
             np.bincount(counts.indices, weights=counts.data, minlength=len(block_words))))
    return _filter_vocabulary(words, doc_freq, term_freq, n_docs, min_df, max_df,
                              max_features, os.fspath(path))


def _merge_frequencies(total, block):
    """Sum two (sorted words, document frequencies, term frequencies) tables."""
    merged, where = np.unique(np.concatenate((total[0], block[0])), return_inverse=True)
    doc_freq = np.bincount(where, weights=np.concatenate((total[1], block[1])),
                           minlength=len(merged))
    term_freq = np.bincount(where, weights=np.concatenate((total[2], block[2])),
                            minlength=len(merged))
    return merged, doc_freq, term_freq


def _filter_vocabulary(words, doc_freq, term_freq, n_docs, min_df, max_df, max_features,
                       path):
    """scikit-learn's pruning: min_df <= df <= max_df, then the max_features most frequent."""
    low = min_df if isinstance(min_df, int | np.integer) else min_df * n_docs
    high = max_df if isinstance(max_df, int | np.integer) else max_df * n_docs
    keep = (doc_freq >= low) & (doc_freq <= high)
    if max_features is not None and keep.sum() > max_features:
        kept = np.flatnonzero(keep)
        top = kept[np.argsort(-term_freq[kept], kind="stable")[:max_features]]
        keep = np.zeros_like(keep)
        keep[top] = True
    if not keep.any():
        raise InvalidInputError(
            f"{path}: no word is left in the vocabulary of its {n_docs} lines "
            f"({len(words)} distinct tokens). Relax the filters: lower min_df (now "
            f"{min_df!r}; it counts documents when an int), raise max_df (now {max_df!r}), "
            "pass stop_words=None, or widen token_pattern.")
    return words[keep].astype(str)


__all__ = ["NpzCountsSource", "TextLinesSource", "vocabulary_from_file", "write_csr_npz"]
