"""Where EM's data comes from: re-iterable chunks of rows behind one interface.

A source yields validated chunks, one pass per EM iteration, and owns the map-reduce seam
of the E-step: `source.map_reduce(step)` maps `step` over its chunks and sums what it
returns. The in-memory, memory-mapped, iterator and sparse sources below run it on a local
thread pool; a distributed source (Dask) implements the same method by running `step`
where each chunk lives and tree-summing the results, without any family knowing.
"""

from __future__ import annotations

import mmap
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import chain

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .._validation import check_finite, check_observed_columns
from ..exceptions import InvalidInputError, InvalidInputTypeError

#: how to hand EM a stream it can read once per iteration
_FRESH_ITERATOR = ("EM makes one pass over the data per iteration. Pass a list of arrays, "
                   "or a function that returns a fresh iterator of 2-D arrays on each call "
                   "(e.g. `lambda: read_chunks(path)`).")


def num_threads() -> int:
    """Worker threads for the E-step: $LATENTKIT_NUM_THREADS, else the number of cores."""
    value = os.environ.get("LATENTKIT_NUM_THREADS", "")
    if value.strip():
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"LATENTKIT_NUM_THREADS must be a positive integer; got "
                             f"{value!r}.") from None
    return os.cpu_count() or 1


def auto_chunk_rows(floats_per_row: int, budget_floats: int = 2**20) -> int:
    """Rows per chunk so that the E-step temporaries stay near `budget_floats` (cache-sized)."""
    return int(min(65536, max(256, budget_floats // max(1, floats_per_row))))


def _bounded_map(pool: ThreadPoolExecutor, fn, items: Iterable, window: int):
    """fn over items on the pool, in order, with at most `window` chunks in flight (so a
    stream is never read ahead further than that)."""
    pending = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def threaded_imap(fn: Callable, chunks: Iterable) -> Iterator:
    """fn over every chunk, yielded in chunk order, on `num_threads()` threads with BLAS
    pinned to one thread each (numpy releases the GIL in its kernels, so the cores share the
    elementwise work, not only the GEMMs); at most 2 x threads chunks are in flight, so a
    stream is never read further ahead and a consumer that reduces as it goes holds only
    those results. One chunk runs inline."""
    threads = num_threads()
    chunks = iter(chunks)
    present = [c for c in (next(chunks, None), next(chunks, None)) if c is not None]
    several = len(present) == 2
    chunks = chain(_handed_over(present), chunks)  # no reference kept to the first two
    if threads > 1 and several:
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
            yield from _bounded_map(pool, fn, chunks, window=2 * threads)
        return
    for chunk in chunks:
        yield fn(chunk)


def _handed_over(items: list):
    """The items of a list, each dropped from it as it is yielded (so a long pass does not
    keep the first chunks alive)."""
    while items:
        yield items.pop(0)


def threaded_map(fn: Callable, chunks: Iterable) -> list:
    """`threaded_imap` as a list."""
    return list(threaded_imap(fn, chunks))


class ChunkSource:
    """Re-iterable chunks of rows; each pass yields validated chunks.

    n_features : int; dtype : the float dtype the model computes in; n_samples : int, or
    None when unknown before a pass (an iterator of chunks).
    """

    n_features: int
    dtype: np.dtype
    n_samples: int | None = None
    #: whether `n_init` restarts run at once (a source whose E-steps run elsewhere)
    concurrent_restarts: bool = False

    def __iter__(self) -> Iterator:
        raise NotImplementedError

    def init_sample(self, max_rows: int, rng: np.random.Generator):
        """All rows when there are at most `max_rows`, else a random subset, in order."""
        raise NotImplementedError

    def minibatches(self) -> Iterator:
        """Online EM's minibatches: the chunks (a distributed source yields sub-sources
        whose E-step runs where their blocks live)."""
        return iter(self)

    def map_reduce(self, step: Callable, reduce: Callable = None):
        """reduce(step(chunk) for each chunk), summing in chunk order by default, so that
        results never depend on the number of threads. The seam a distributed source
        overrides."""
        if reduce is not None:
            return reduce(threaded_map(step, self))
        return _sum_in_order(threaded_imap(step, self))


def _sum_in_order(results: Iterable):
    """The left-to-right sum of `results` as they come: memory of one running total (a
    pass over a large stream must not hold every chunk's statistics)."""
    results = iter(results)
    total = next(results)
    for item in results:
        total = total + item
    return total


class MappedPages:
    """Hands the pages of a memory-mapped array back to the kernel once they are used.

    File-backed pages that a process has touched count in its resident memory until the
    kernel reclaims them, so streaming a large `.npy` would grow RSS up to the file size.
    `release(chunk)` (madvise MADV_DONTNEED; the data stay in the page cache, so the next
    pass still reads from memory) keeps peak RSS bounded by the chunks in flight.
    """

    def __init__(self, X: np.ndarray):
        mm = getattr(X, "_mmap", None)
        self.mm = mm if mm is not None and hasattr(mm, "madvise") else None
        if self.mm is not None:
            self.base = np.frombuffer(self.mm, dtype=np.uint8, count=1).ctypes.data

    def release(self, chunk: np.ndarray | None = None) -> None:
        """Release the pages under `chunk` (a view into the map), or the whole map."""
        if self.mm is None:
            return
        if chunk is None:
            start, stop = 0, len(self.mm)
        else:
            start = chunk.ctypes.data - self.base
            stop = start + chunk.nbytes
        start -= start % mmap.PAGESIZE
        if stop > start:
            self.mm.madvise(mmap.MADV_DONTNEED, start, stop - start)


def _float_dtype(dtype, given=None) -> np.dtype:
    """`given`, else the data's own float32/float64, else float64."""
    if given is not None:
        return np.dtype(given)
    return np.dtype(dtype) if dtype in (np.float32, np.float64) else np.dtype(np.float64)


class ObservedColumns:
    """Whether each column of a stream has an observed (non-NaN) value, learned over one
    full pass: a column missing in every row of a stream that is read chunk by chunk is as
    much an error as in an array (nothing can be learned about it), but can only be seen
    once the pass has ended."""

    def __init__(self, n_features: int):
        self.n_features, self.checked = n_features, False
        self.start_pass()

    def start_pass(self) -> None:
        """Forget a pass that was left before its end (init_sample reads only a prefix)."""
        self.column_max = np.full((1, self.n_features), np.nan)  # NaN until a value is seen
        self.rows = 0

    def update(self, chunk: np.ndarray) -> None:
        """Record a chunk : (n_rows, n_features) of the pass under way."""
        if not self.checked and len(chunk):
            np.fmax(self.column_max, np.fmax.reduce(chunk, axis=0), out=self.column_max)
            self.rows += len(chunk)

    def finish_pass(self) -> None:
        """After a complete pass: InvalidInputError naming any column with no observed
        value (checked once; later passes read the same data)."""
        if not self.checked:
            self.checked = True
            check_observed_columns(self.column_max, name="data", model=None,
                                   rows=f"all {self.rows} rows of the stream")


def observed_pass(observed: ObservedColumns | None, chunks: Iterable) -> Iterator:
    """The chunks of one pass, as they come, each recorded by `observed` (when it is not
    None), whose column check runs once the pass has ended."""
    if observed is None:
        yield from chunks
        return
    observed.start_pass()
    for chunk in chunks:
        observed.update(chunk)
        yield chunk
    observed.finish_pass()


class ArraySource(ChunkSource):
    """An in-memory or memory-mapped array sliced into row chunks.

    A memory-mapped array is read chunk by chunk and its pages are handed back after use
    (`MappedPages`), so peak memory is bounded by the chunk size, not the file size; each
    chunk is converted to `dtype` and validated as it is read.
    """

    #: chunks a memory-mapped page is kept after it is read (more than are ever in flight)
    release_lag = 16

    def __init__(self, X: np.ndarray, chunk_rows: int, *, validated: bool, allow_nan: bool,
                 dtype=None):
        if X.ndim != 2:
            raise InvalidInputError(f"data must be 2-D (n_samples, n_features); got shape "
                                    f"{X.shape}.")
        self.X, self.chunk_rows = X, max(1, int(chunk_rows))
        self.validated, self.allow_nan = validated, allow_nan
        self.n_samples, self.n_features = X.shape
        self.dtype = _float_dtype(X.dtype, dtype)
        self.pages = MappedPages(X) if isinstance(X, np.memmap) else None
        # validated arrays had their columns checked whole (check_X)
        self.observed = None if validated or not allow_nan else ObservedColumns(self.n_features)

    def _prepare(self, chunk: np.ndarray, first_row: int = 0) -> np.ndarray:
        if self.validated:
            return chunk
        chunk = np.asarray(chunk, dtype=self.dtype)
        check_finite(chunk, allow_nan=self.allow_nan, name="data", first_row=first_row)
        return chunk

    def __iter__(self):
        read = deque()
        if self.observed is not None:
            self.observed.start_pass()
        for start in range(0, self.n_samples, self.chunk_rows):
            raw = self.X[start:start + self.chunk_rows]
            chunk = self._prepare(raw, start)
            if self.observed is not None:
                self.observed.update(chunk)
            yield chunk
            if self.pages is not None:
                read.append(raw)
                if len(read) > self.release_lag:
                    self.pages.release(read.popleft())
        if self.pages is not None:
            self.pages.release()
        if self.observed is not None:
            self.observed.finish_pass()

    def init_sample(self, max_rows, rng):
        rows = _sample_rows(self.n_samples, max_rows, rng)
        if self.pages is None:
            return self._prepare(self.X[rows])
        # a memory map is read in order, chunk by chunk, handing pages back as it goes:
        # random access would fault in (and keep resident) most of the file
        bounds = np.searchsorted(rows, np.arange(0, self.n_samples + self.chunk_rows,
                                                 self.chunk_rows))
        parts = []
        for c, start in enumerate(range(0, self.n_samples, self.chunk_rows)):
            raw = self.X[start:start + self.chunk_rows]
            parts.append(np.array(raw[rows[bounds[c]:bounds[c + 1]] - start]))
            self.pages.release(raw)
        return self._prepare(np.concatenate(parts))


def _sample_rows(n_samples: int, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """All row indices when there are at most `max_rows`, else a sorted random subset."""
    if n_samples <= max_rows:
        return np.arange(n_samples)
    return np.sort(rng.choice(n_samples, size=max_rows, replace=False))


class SparseSource(ChunkSource):
    """A scipy.sparse matrix served as CSR row blocks (n_chunk, D): bag-of-words counts and
    other data that is mostly zeros. An implicit zero is a zero, never a missing value, so
    NaN and inf among the stored entries are errors."""

    def __init__(self, X, chunk_rows: int, dtype=None):
        X = sp.csr_matrix(X)
        if X.ndim != 2:
            raise InvalidInputError(f"data must be 2-D; got shape {X.shape}.")
        self.dtype = _float_dtype(X.dtype, dtype)
        self.X = X.astype(self.dtype, copy=False)
        self.X.sum_duplicates()
        check_finite(self.X.data[None], allow_nan=False, name="sparse data",
                     model="a sparse source")
        self.n_samples, self.n_features = X.shape
        self.chunk_rows = max(1, int(chunk_rows))

    def __iter__(self):
        for start in range(0, self.n_samples, self.chunk_rows):
            yield self.X[start:start + self.chunk_rows]

    def init_sample(self, max_rows, rng):
        return self.X[_sample_rows(self.n_samples, max_rows, rng)]


class IterableSource(ChunkSource):
    """Chunks from a list/tuple of arrays, or from a zero-argument function that returns a
    fresh iterator of arrays on each call (EM needs one pass per iteration)."""

    def __init__(self, make_iter: Callable[[], Iterable], *, allow_nan: bool, dtype=None):
        self.make_iter, self.allow_nan = make_iter, allow_nan
        self._previous = make_iter()  # the last pass's iterator, to spot one handed back
        first = next(iter(self._previous), None)
        if first is None:
            raise InvalidInputError("the iterator of chunks yielded no data.")
        first = np.asarray(first)
        if first.ndim != 2:
            raise InvalidInputError(f"each chunk must be 2-D (n_rows, n_features); the first "
                                    f"has shape {first.shape}.")
        self.n_features = first.shape[1]
        self.dtype = _float_dtype(first.dtype, dtype)
        self.observed = ObservedColumns(self.n_features) if allow_nan else None

    def _fresh(self) -> Iterable:
        """This pass's chunks: a new iterator from the function (the same one-shot iterator
        as the last pass, already read, is refused)."""
        chunks = self.make_iter()
        if isinstance(chunks, Iterator) and chunks is self._previous:
            raise InvalidInputTypeError(
                "the data function returned the same one-shot iterator again, already read "
                f"by the previous pass. {_FRESH_ITERATOR}")
        self._previous = chunks
        return chunks

    def __iter__(self):
        return observed_pass(self.observed, self._checked(self._fresh()))

    def _checked(self, chunks: Iterable) -> Iterator:
        first_row = 0
        for i, chunk in enumerate(chunks):
            chunk = np.asarray(chunk, dtype=self.dtype)
            if chunk.ndim != 2 or chunk.shape[1] != self.n_features:
                raise InvalidInputError(
                    f"chunk {i} has shape {chunk.shape}; every chunk must be 2-D with "
                    f"{self.n_features} columns like the first.")
            check_finite(chunk, allow_nan=self.allow_nan, name=f"data (chunk {i})",
                         first_row=first_row)
            first_row += len(chunk)
            yield chunk

    def init_sample(self, max_rows, rng):
        taken, rows = [], 0
        for chunk in self:
            taken.append(chunk[: max_rows - rows])
            rows += len(taken[-1])
            if rows >= max_rows:
                break
        return np.concatenate(taken)


def as_source(data, *, chunk_rows: int, allow_nan: bool) -> ChunkSource:
    """Wrap out-of-core or sparse input as a ChunkSource.

    data : a path to a `.npy` file (memory-mapped), a Zarr array or store (`.zarr`), a
    Parquet file (read in row groups), an np.memmap, a scipy.sparse matrix, a list/tuple of
    2-D arrays, a zero-argument callable returning a fresh iterator of 2-D arrays, a Dask
    array or DataFrame (its E-steps run where its chunks live: `latentkit.distributed`), or
    a ChunkSource as it is.
    """
    if isinstance(data, ChunkSource):
        return data
    if is_dask(data):
        from ..distributed.source import DaskSource  # optional dependency: dask
        return DaskSource(data, allow_nan=allow_nan)
    from .stores import store_source  # zarr and pyarrow are imported for a store only

    store = store_source(data, chunk_rows=chunk_rows, allow_nan=allow_nan)
    if store is not None:
        return store
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        if not path.endswith(".npy"):
            raise InvalidInputError(f"a data path for streaming must be a .npy file; got "
                                    f"{path!r}.")
        try:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"cannot memory-map {path!r} as a .npy array: "
                                    f"{exc}") from None
        return ArraySource(X, chunk_rows, validated=False, allow_nan=allow_nan)
    if isinstance(data, np.memmap):
        return ArraySource(data, chunk_rows, validated=False, allow_nan=allow_nan)
    if sp.issparse(data):
        return SparseSource(data, chunk_rows)
    if isinstance(data, list | tuple):
        chunks = list(data)
        return IterableSource(lambda: iter(chunks), allow_nan=allow_nan)
    if callable(data):
        return IterableSource(data, allow_nan=allow_nan)
    if isinstance(data, Iterator):
        raise InvalidInputTypeError(
            f"a one-shot iterator ({type(data).__name__}) cannot be used: {_FRESH_ITERATOR}")
    raise InvalidInputTypeError(
        f"cannot read data of type {type(data).__name__} as chunks: pass a 2-D array, a .npy "
        "path, an np.memmap, a scipy.sparse matrix, a list of 2-D arrays, or a function that "
        "returns a fresh iterator of 2-D arrays.")


def is_dask(data) -> bool:
    """A Dask collection (array, DataFrame), recognized without importing dask."""
    return type(data).__module__.partition(".")[0] in ("dask", "dask_expr")


def is_streaming(data) -> bool:
    """True for inputs that `as_source` wraps (out of core, iterators, sparse); False for an
    in-memory array-like."""
    if isinstance(data, str | os.PathLike | np.memmap | Iterator | ChunkSource):
        return True
    from .stores import is_zarr_array

    if sp.issparse(data) or is_dask(data) or is_zarr_array(data):
        return True
    if isinstance(data, list | tuple):
        return len(data) > 0 and np.ndim(data[0]) == 2
    return callable(data)


__all__ = ["ArraySource", "ChunkSource", "IterableSource", "MappedPages", "ObservedColumns",
           "SparseSource", "observed_pass", "threaded_imap",
           "as_source", "auto_chunk_rows", "is_dask", "is_streaming", "num_threads", "threaded_map"]
