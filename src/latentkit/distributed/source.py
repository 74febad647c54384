"""A Dask array (or DataFrame) as a source of the EM engine: the E-step runs where each chunk
lives and the statistics are tree-summed.

One EM iteration on a `DaskSource` (`map_reduce`, the engine's seam in `em.sources`):

    step = E-step at θ_t                       one graph node: one copy per worker
    r_b  = step(prepare(block_b))              on the worker that holds block b
    S    = Σ_b r_b                             a tree of fan-in `split_every`, in block order
    θ_t+1 = M-step(S)                          on the client

Statistics are additive (`SufficientStats`), so the sum is the in-memory E-step's sum over
the same rows; only the association of the floating-point sum differs (a tree here,
left to right in memory), so results agree to round-off whatever the chunking and the
number of workers. The tree's shape depends on the blocks only, never on which worker
computed what, so a fit is reproducible run to run. A worker lost mid-iteration costs a
recomputation of its tasks (Dask reschedules them; a persisted block is recomputed from its
lineage), never a wrong sum.

Where the blocks come from each iteration: with a `distributed.Client` and an array that
fits in half the cluster's memory, the source persists it once (the blocks then live on the
workers); otherwise every iteration reads them again from where the graph says (a Zarr store,
a Parquet dataset, a memory map), which bounds each worker's memory by the blocks in flight.
Without a client the threaded scheduler runs the same graph in this process.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from .._validation import check_finite, check_observed_columns
from ..em.sources import ChunkSource, _float_dtype, _sample_rows, _sum_in_order
from ..exceptions import InvalidInputError, InvalidInputTypeError
from .cluster import active_client, worker_count

# -- what runs on the workers -------------------------------------------------------------


def prepare_dense(block, *, dtype, allow_nan: bool, first_row: int):
    """A dense block : (n_rows, D) as `dtype`, checked: inf always, NaN unless allowed
    (named by its row in the whole array)."""
    block = np.asarray(block, dtype=dtype)
    check_finite(block, allow_nan=allow_nan, name="data", first_row=first_row)
    return block


def _column_max(block, prepare, as_rows):
    """(1, D) NaN-ignoring column maxima of one prepared block (NaN where no value);
    as_rows : chunk -> its (n_rows, D) values."""
    block = as_rows(prepare(block))
    if block.shape[0] == 0:
        return np.full((1, block.shape[1]), np.nan)
    return np.fmax.reduce(np.asarray(block, dtype=np.float64), axis=0, keepdims=True)


def _apply(step, prepare, block):
    """The E-step of one block, where the block lives."""
    return step(prepare(block))


def _sum(*results):
    """Left-to-right sum of a node's children (the tree's order is the blocks' order)."""
    return _sum_in_order(results)


def _fmax(*arrays):
    return np.fmax.reduce(np.stack(arrays), axis=0)


def tree_reduce(parts: list, combine, split_every: int) -> tuple[object, int]:
    """Reduce delayed `parts` by a tree of fan-in `split_every` (order kept); returns the
    root and the tree's depth, ceil(log_split_every(len(parts)))."""
    from dask import delayed

    depth = 0
    while len(parts) > 1:
        parts = [delayed(combine, pure=False)(*parts[i:i + split_every])
                 for i in range(0, len(parts), split_every)]
        depth += 1
    return parts[0], depth


# -- the source ---------------------------------------------------------------------------


@dataclass
class Traffic:
    """What one `map_reduce` sent: the step (θ and the family's config) each worker gets, and the
    statistics each block returned (bytes, pickled), over `blocks` blocks and a tree of
    `depth` levels. `per_iteration_bytes` models the wire: θ to every worker, every block's
    statistics one hop up the tree (an upper bound: a child summed on its parent's worker
    travels nowhere), and the root's to the client."""

    step_bytes: int = 0
    stats_bytes: int = 0
    blocks: int = 0
    depth: int = 0
    workers: int = 1
    iterations: int = 0

    @property
    def per_iteration_bytes(self) -> int:
        return self.workers * self.step_bytes + self.blocks * self.stats_bytes


class DaskSource(ChunkSource):
    """A 2-D Dask array : (n_samples, n_features), chunked along its rows, as EM's data.

    X : a dask.array.Array (any number of column blocks: they are joined) or a
        dask.dataframe.DataFrame of numeric columns (its partitions become the blocks);
    allow_nan : NaN means missing (models that marginalize it), else it is an error;
    prepare : block -> chunk, run on the worker (default: `prepare_dense`; LDA turns count
        blocks into CSR) as partial(prepare, first_row=...) is called for each block;
    split_every : the fan-in of the tree sum; persist : "auto" (persist on a cluster when
        the array takes at most half the workers' memory), True or False; ndim : 2, or 3
        for a family whose rows are sequences (n_sequences, T, D), chunked by sequences.
    """

    concurrent_restarts = True  # n_init runs interleave their tasks on the cluster
    #: rows of an online EM minibatch (`minibatches`); None: one block each
    batch_rows: int | None = None

    def __init__(self, X, *, allow_nan: bool, dtype=None, prepare=prepare_dense,
                 split_every: int = 4, persist="auto", check_columns: bool = True,
                 ndim: int = 2):
        X = as_dask_array(X, ndim)
        self.n_samples, self.n_features = int(X.shape[0]), int(X.shape[-1])
        self.dtype = _float_dtype(X.dtype, dtype)
        self.allow_nan, self.split_every = allow_nan, max(2, int(split_every))
        self.client = active_client()
        if _should_persist(persist, X, self.client):
            X = self.client.persist(X)
        self.X, self.traffic = X, Traffic(workers=worker_count(self.client))
        self.prepare = partial(prepare, dtype=self.dtype, allow_nan=allow_nan)
        first_rows = np.concatenate([[0], np.cumsum(X.chunks[0])])[:-1]
        self.prepares = [partial(self.prepare, first_row=int(r)) for r in first_rows]
        self.blocks = list(X.to_delayed().ravel())
        if check_columns:
            self._check_blocks()

    # -- running graphs -----------------------------------------------------------------

    def _compute(self, *graphs):
        """Compute delayed graphs on the client's cluster, or on local threads (BLAS pinned
        to one thread each, as the engine's own thread pool does)."""
        import dask

        if self.client is not None:
            return dask.compute(*graphs, scheduler=self.client)
        with threadpool_limits(limits=1, user_api="blas"):
            return dask.compute(*graphs, scheduler="threads")

    def _check_blocks(self) -> None:
        """One pass before EM: every block converts and passes the finiteness check on its
        worker (the first bad row raises, named in the whole array), and a column with no
        observed value anywhere is an error, as for an in-memory array."""
        from dask import delayed

        parts = [delayed(_column_max, pure=False)(b, p, self.as_rows)
                 for b, p in zip(self.blocks, self.prepares)]
        root, _ = tree_reduce(parts, _fmax, self.split_every)
        column_max, = self._compute(root)
        if self.allow_nan:
            check_observed_columns(column_max, name="data", model=None,
                                   rows=f"all {self.n_samples} rows of the Dask array")

    @staticmethod
    def as_rows(chunk):
        """A prepared chunk's values as (n_rows, D), for the column check."""
        return chunk

    def map_reduce(self, step, reduce=None, *, record: bool = True):
        """Σ_b step(block_b), tree-summed in block order on the cluster; `reduce` (a function
        of the list of results) instead of the sum gathers every result to the client;
        record : count the pass in `traffic` (False for a pass that is not an E-step)."""
        from dask import delayed

        # θ (inside `step`) is one node of the graph: it travels once to each worker that
        # runs a block, not once per block, and, unlike scattered data, a worker that dies
        # holding it loses nothing (the scheduler still has it in the graph)
        step_ref = delayed(step, pure=False)
        parts = [delayed(_apply, pure=False)(step_ref, p, b)
                 for b, p in zip(self.blocks, self.prepares)]
        if reduce is not None:
            return reduce(list(self._compute(*parts)))
        if len(parts) <= self.split_every:  # the root alone: summed here, one hop saved
            total, depth = _sum(*self._compute(*parts)), 1 if len(parts) > 1 else 0
        else:
            root, depth = tree_reduce(parts, _sum, self.split_every)
            total, = self._compute(root)
        if record:
            self._record(step, total, depth)
        return total

    def _record(self, step, total, depth: int) -> None:
        import cloudpickle  # what dask ships tasks and data with

        t = self.traffic
        if t.iterations == 0:  # sizes do not change between iterations
            t.step_bytes = len(cloudpickle.dumps(step, protocol=5))
            t.stats_bytes = len(cloudpickle.dumps(total, protocol=5))
            t.blocks, t.depth = len(self.blocks), depth
        t.iterations += 1

    def keep_prepared(self, nbytes: int) -> bool:
        """Compute the prepared blocks once and keep them on the workers, when a cluster is
        there and `nbytes` (their size) takes at most half its memory; every later pass then
        reads them where they are (an online fit's many small passes, a corpus whose blocks
        are rebuilt from a larger source). Lost ones are recomputed from their lineage.
        Returns whether it did."""
        from dask import delayed

        if self.client is None or not _fits(self.client, nbytes):
            return False
        prepared = [delayed(p, pure=False)(b) for b, p in zip(self.blocks, self.prepares)]
        # block i on worker i mod W, so that W consecutive blocks (an online minibatch) are
        # one per worker; a loose placement, so that a lost block is recomputed elsewhere
        workers = list(self.client.scheduler_info(n_workers=-1)["workers"])
        self.blocks = [self.client.compute(block, workers=[workers[i % len(workers)]],
                                           allow_other_workers=True)
                       for i, block in enumerate(prepared)]  # futures: kept on the workers
        self.prepares = [_as_is] * len(self.blocks)
        return True

    # -- minibatches (online EM) ---------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_samples, self.n_features

    def minibatches(self):
        """Consecutive blocks grouped into minibatches of at least `batch_rows` rows (one
        block each when None), each a DaskSource over its blocks: online EM's E-step of a
        minibatch then runs on the workers that hold its blocks (`em.loop.batch_e_step`)."""
        sizes = [int(n) for n in self.X.chunks[0]]
        start = 0
        while start < len(self.blocks):
            stop, rows = start, 0
            while stop < len(self.blocks) and (rows == 0 or rows < (self.batch_rows or 1)):
                rows, stop = rows + sizes[stop], stop + 1
            yield self._view(start, stop, rows)
            start = stop

    def _view(self, start: int, stop: int, rows: int) -> DaskSource:
        view = copy.copy(self)
        view.blocks, view.prepares = self.blocks[start:stop], self.prepares[start:stop]
        view.n_samples, view.traffic = rows, self.traffic
        return view

    # -- the rest of the ChunkSource interface ------------------------------------------

    def __iter__(self):
        """The prepared blocks, computed one after another on the client (for a family's
        one checking pass; EM itself goes through map_reduce)."""
        from dask import delayed

        for block, prepare in zip(self.blocks, self.prepares):  # a block or a kept future
            yield self._compute(delayed(prepare, pure=False)(block))[0]

    def init_sample(self, max_rows, rng):
        """The rows an in-memory fit's initialization would see (`_sample_rows`: all rows up
        to max_rows, else the same random subset), gathered to the client."""
        rows = _sample_rows(self.n_samples, max_rows, rng)
        if len(rows) == self.n_samples:
            taken = self.X
        else:
            taken = self.X[rows]
        sample, = self._compute(taken)
        return self.prepare(sample, first_row=0)


def as_dask_array(X, ndim: int = 2):
    """An `ndim`-D dask array with one block along every axis but the first, from a dask
    array or DataFrame."""
    import dask.array as da

    if hasattr(X, "to_dask_array"):  # a dask DataFrame
        kinds = {c: str(t) for c, t in X.dtypes.items() if not np.issubdtype(t, np.number)}
        if kinds:
            name, kind = next(iter(kinds.items()))
            raise InvalidInputError(
                f"column {name!r} of the Dask DataFrame is {kind}, not numeric; encode it "
                "(e.g. .cat.codes) or drop it before fitting.")
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise InvalidInputTypeError(f"cannot read a {type(X).__name__} as a Dask array; pass "
                                    "a dask.array.Array or a dask.dataframe.DataFrame.")
    if X.ndim != ndim:
        layout = "(n_samples, n_features)" if ndim == 2 else "(n_sequences, T, n_features)"
        raise InvalidInputError(f"data must be {ndim}-D {layout}; the Dask array has shape "
                                f"{X.shape}.")
    if any(math.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if any(n > 1 for n in X.numblocks[1:]):  # a row belongs together: blocks of whole rows
        X = X.rechunk({axis: -1 for axis in range(1, ndim)})
    return X


def _should_persist(persist, X, client) -> bool:
    if client is None or persist is False:
        return False
    return persist is True or _fits(client, X.nbytes)


def _fits(client, nbytes: int) -> bool:
    """Whether `nbytes` take at most half of the workers' memory limits."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    memory = sum(w.get("memory_limit") or 0 for w in workers)
    return memory > 0 and nbytes <= memory / 2


def _as_is(chunk):
    """The prepare of a block that was prepared when it was kept (`keep_prepared`)."""
    return chunk


__all__ = ["DaskSource", "Traffic", "as_dask_array", "prepare_dense", "tree_reduce"]
