"""Out-of-core data on one machine: a Zarr array or a Parquet file read block by block.

Both sources serve exactly the chunks an in-memory `ArraySource` of the same data would:
rows [0, chunk_rows), [chunk_rows, 2 chunk_rows), ..., each converted to the model dtype
and validated as it is read (inf is an error naming its row; NaN is missing only when the
model allows it, and a column missing in every row is an error once a pass has seen all
rows, `ObservedColumns`). The store is read in its own blocks (Zarr chunks, Parquet record
batches), which `_exact_chunks` cuts and joins into those row chunks, so a fit from a store
sums its statistics over the same chunks in the same order as a fit from memory. Peak
memory is one store block plus one chunk, never the whole array.

`init_sample` draws the same rows as `ArraySource.init_sample` (`_sample_rows`), reading
the store once in order, so a fit from a store starts where the in-memory fit starts.

zarr and pyarrow are optional: they are imported here, and this module is imported only
when a store is used (`store_source`).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator

import numpy as np

from .._validation import check_finite
from ..exceptions import InvalidInputError
from .sources import ChunkSource, ObservedColumns, _float_dtype, _sample_rows, observed_pass

__all__ = ["ParquetSource", "StoredRows", "ZarrSource", "is_zarr_array", "store_source"]

#: file endings read as stores: a Zarr directory, a Parquet file
ZARR_SUFFIXES = (".zarr",)
PARQUET_SUFFIXES = (".parquet", ".pq")


def _exact_chunks(blocks: Iterator[np.ndarray], chunk_rows: int) -> Iterator[tuple]:
    """(first_row, chunk) : chunk (chunk_rows, n_features) (the last may be shorter), cut
    from consecutive `blocks` : (n_block_rows, n_features) of any sizes; rows carried from
    one block to the next are joined (one chunk's worth at most is held back)."""
    pending, held, first_row = [], 0, 0
    for block in blocks:
        pending.append(block)
        held += len(block)
        while held >= chunk_rows:
            joined = pending[0] if len(pending) == 1 else np.concatenate(pending)
            yield first_row, joined[:chunk_rows]
            first_row += chunk_rows
            rest = joined[chunk_rows:]
            pending, held = ([rest] if len(rest) else []), len(rest)
    if held:
        yield first_row, pending[0] if len(pending) == 1 else np.concatenate(pending)


class StoredRows(ChunkSource):
    """Rows of a 2-D store read block by block: the chunking, validation and init sample
    shared by `ZarrSource` and `ParquetSource`, which supply `_blocks()`: the raw blocks
    (n_block_rows, n_features) in row order, of the sizes the store reads best.

    n_samples, n_features : ints; dtype : the model's float dtype; chunk_rows : rows per
    chunk (the model sets it after construction); allow_nan : NaN marks a missing value.
    """

    def __init__(self, n_samples: int, n_features: int, dtype, *, chunk_rows: int,
                 allow_nan: bool):
        self.n_samples, self.n_features = int(n_samples), int(n_features)
        self.dtype, self.allow_nan = np.dtype(dtype), allow_nan
        self.chunk_rows = max(1, int(chunk_rows))
        self.observed = ObservedColumns(self.n_features) if allow_nan else None

    def _blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _prepare(self, raw: np.ndarray, first_row: int) -> np.ndarray:
        """raw : (n_rows, n_features) as the model dtype, checked (rows numbered from
        `first_row`)."""
        chunk = np.asarray(raw, dtype=self.dtype)
        check_finite(chunk, allow_nan=self.allow_nan, name="data", first_row=first_row)
        return chunk

    def __iter__(self):
        chunks = (self._prepare(raw, first_row)
                  for first_row, raw in _exact_chunks(self._blocks(), self.chunk_rows))
        return observed_pass(self.observed, chunks)

    def init_sample(self, max_rows, rng):
        """The rows `ArraySource.init_sample` draws (`_sample_rows`): (n_sample, n_features),
        read in one ordered pass; each block is checked whole, so an inf is reported at its
        row of the store even when the sample skips it."""
        rows = _sample_rows(self.n_samples, max_rows, rng)
        parts, first_row = [], 0
        for raw in self._blocks():
            block = self._prepare(raw, first_row)
            low, high = np.searchsorted(rows, [first_row, first_row + len(block)])
            parts.append(block[rows[low:high] - first_row])
            first_row += len(block)
        return np.concatenate(parts) if parts else np.empty((0, self.n_features), self.dtype)


# -- Zarr ---------------------------------------------------------------------------------


def open_zarr_array(data, *, name: str = "data"):
    """A zarr.Array from an array or from a path to a store holding it (a store whose root
    is a group must hold exactly one array); InvalidInputError naming the fix otherwise."""
    import zarr

    if isinstance(data, zarr.Array):
        return data
    path = os.fspath(data)
    if not os.path.exists(path):
        raise InvalidInputError(f"{name}: no Zarr store at {path!r}; check the path (a .zarr "
                                "directory written by zarr).")
    try:
        opened = zarr.open(path, mode="r")
    except Exception as exc:  # zarr raises several types for a store it cannot read
        raise InvalidInputError(f"{name}: cannot open {path!r} as a Zarr store: "
                                f"{exc}") from None
    if isinstance(opened, zarr.Array):
        return opened
    arrays = [key for key, _ in opened.arrays()]
    if len(arrays) != 1:
        raise InvalidInputError(
            f"{name}: the Zarr group at {path!r} holds {len(arrays)} arrays ({arrays}); pass "
            f"the one to fit, e.g. zarr.open({path!r})[{(arrays or ['name'])[0]!r}].")
    return opened[arrays[0]]


def _check_numeric(dtype: np.dtype, what: str) -> None:
    if dtype.kind not in "fiub":
        raise InvalidInputError(f"{what} has dtype {dtype}; the data must be numeric (float, "
                                "int or bool). Convert it to numbers before storing it.")


class ZarrSource(StoredRows):
    """A 2-D Zarr array (n_samples, n_features) (a zarr.Array, or a path to a store holding
    one), read in blocks aligned to its chunking: whole Zarr chunks, as many as make up
    chunk_rows rows. A Zarr chunk taller than chunk_rows is still read whole (Zarr decodes
    whole chunks: reading it a slice at a time would decode it once per slice) and cut into
    row chunks, so peak memory is one decoded Zarr chunk plus the chunks in flight. float32
    data stays float32; other numbers are read as float64 (or as `dtype` when given)."""

    def __init__(self, data, *, chunk_rows: int, allow_nan: bool, dtype=None):
        array = open_zarr_array(data)
        if array.ndim != 2:
            raise InvalidInputError(
                f"data must be 2-D (n_samples, n_features); got a Zarr array of shape "
                f"{array.shape}. Reshape it when writing the store (rows are samples).")
        _check_numeric(np.dtype(array.dtype), "the Zarr array")
        self.array = array
        super().__init__(array.shape[0], array.shape[1], _float_dtype(array.dtype, dtype),
                         chunk_rows=chunk_rows, allow_nan=allow_nan)

    def block_rows(self) -> int:
        """Rows per read: the whole Zarr chunks that cover chunk_rows rows (one Zarr chunk
        when it is taller)."""
        zarr_rows = max(1, int(self.array.chunks[0]))
        return zarr_rows * math.ceil(self.chunk_rows / zarr_rows)

    def _blocks(self):
        step = self.block_rows()
        for start in range(0, self.n_samples, step):
            yield read_rows(self.array, start, min(start + step, self.n_samples))


def read_rows(array, start: int, stop: int) -> np.ndarray:
    """array[start:stop] : (stop - start, ...) decoded straight into a new numpy array (no
    intermediate copy: a Zarr read otherwise holds the compressed, the decoded and the
    returned block at once)."""
    out = np.empty((stop - start,) + tuple(array.shape[1:]), dtype=array.dtype)
    try:
        from zarr.core.buffer import default_buffer_prototype

        target = default_buffer_prototype().nd_buffer.from_numpy_array(out)
    except (ImportError, AttributeError):  # another zarr layout: the plain read
        return array[start:stop]
    array.get_basic_selection(slice(start, stop), out=target)
    return out


# -- Parquet ------------------------------------------------------------------------------


def _numeric_type(field) -> bool:
    import pyarrow as pa

    return (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
            or pa.types.is_boolean(field.type))


class ParquetSource(StoredRows):
    """The numeric columns of a Parquet file, in file order, read in record batches.

    Every column must be numeric (int, float, bool); a null is a missing value (NaN).
    feature_names : (n_features,) object array of the column names; float32 when every
    column is float32 (or half), else float64 (or `dtype` when given). n_samples comes from
    the file's metadata."""

    def __init__(self, path, *, chunk_rows: int, allow_nan: bool, dtype=None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise InvalidInputError(f"data: no Parquet file at {self.path!r}; check the path.")
        try:
            parquet = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(f"data: cannot read {self.path!r} as a Parquet file: "
                                    f"{exc}") from None
        schema = parquet.schema_arrow
        for field in schema:
            if not _numeric_type(field):
                raise InvalidInputError(
                    f"data: Parquet column {field.name!r} has type {field.type}, and only "
                    "numeric columns (int, float, bool) can be fitted. Drop the column, or "
                    "encode it as numbers (e.g. category codes) before writing the file.")
        if len(schema) == 0:
            raise InvalidInputError(f"data: the Parquet file {self.path!r} has no columns.")
        self.feature_names = np.asarray(schema.names, dtype=object)
        single = all(pa.types.is_floating(f.type) and f.type.bit_width <= 32 for f in schema)
        super().__init__(parquet.metadata.num_rows, len(schema),
                         _float_dtype(np.float32 if single else np.float64, dtype),
                         chunk_rows=chunk_rows, allow_nan=allow_nan)

    def _blocks(self):
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        target = pa.float32() if self.dtype == np.float32 else pa.float64()
        with pq.ParquetFile(self.path) as parquet:
            for batch in parquet.iter_batches(batch_size=self.chunk_rows):
                columns = [c if c.type == target else pc.cast(c, target)
                           for c in batch.columns]
                floats = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
                # (n_rows, n_features) in row order, a null as NaN
                yield np.asarray(floats.to_tensor(null_to_nan=True, row_major=True))


# -- dispatch -----------------------------------------------------------------------------


def is_zarr_array(data) -> bool:
    """Whether `data` is a zarr.Array (without importing zarr: one exists only once zarr
    is imported)."""
    zarr = sys.modules.get("zarr")
    return zarr is not None and isinstance(data, zarr.Array)


def store_source(data, *, chunk_rows: int, allow_nan: bool) -> ChunkSource | None:
    """The source for a store: a zarr.Array, a path ending in .zarr (a Zarr directory), or
    a path ending in .parquet / .pq; None for anything else."""
    if is_zarr_array(data):
        return ZarrSource(data, chunk_rows=chunk_rows, allow_nan=allow_nan)
    if not isinstance(data, str | os.PathLike):
        return None
    path = os.fspath(data).rstrip("/\\").lower()
    if path.endswith(ZARR_SUFFIXES):
        return ZarrSource(data, chunk_rows=chunk_rows, allow_nan=allow_nan)
    if path.endswith(PARQUET_SUFFIXES):
        return ParquetSource(data, chunk_rows=chunk_rows, allow_nan=allow_nan)
    return None
