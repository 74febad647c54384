"""`latentkit fit` on data larger than memory and on a Dask cluster.

Out of core: a `.zarr` store, a `.parquet`/`.pq` file or a `.npy` file given as DATA to a
model that streams (an EM model of a plain table, `streams`) is handed to `fit` as its
path, and never read whole. The summary's log-likelihood, BIC and AIC are then summed chunk
by chunk, and -k auto / -k A:B fit every candidate on the stream (`select_streamed`). The
figures and parameter tables, which draw rows, see at most `FIGURE_ROWS` of them: all the
rows of a smaller file, in order (the same figures as the in-memory fit), else a seeded
random subset, which the page says.

On Dask (`--dask SPEC`): DATA becomes a Dask array (a Zarr store through
`dask.array.from_zarr`, a Parquet file through `dask.dataframe.read_parquet`, a `.npy`
file read block by block from its memory map on the workers, any other table read here
and wrapped), the fit runs inside `latentkit.distributed.connect(SPEC)` and the E-steps
and the scoring run where the blocks live. The log-likelihood of each block is
summed as

    log p(X) = Σ_b Σ_{n in block b} log p(x_n)      mean = log p(X) / N

so the summary equals the in-memory one to round-off. The table options (--columns,
--drop, --index-col, --time-col, --no-header, --key, --max-rows) read DATA in memory, as
before.
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from latentkit.em.sources import _sample_rows
from latentkit.em.stores import PARQUET_SUFFIXES, ZARR_SUFFIXES
from latentkit.exceptions import InvalidInputError, InvalidParameterError

from .data import Data

#: DATA file endings read out of core (a Zarr store is a directory)
STORE_SUFFIXES = ZARR_SUFFIXES + PARQUET_SUFFIXES + (".npy",)
#: the most rows the figures and parameter tables of a streamed fit draw
FIGURE_ROWS = 10_000
#: Dask blocks per worker when --dask-chunk-rows is not given
BLOCKS_PER_WORKER = 4
#: the largest Dask block by default, in bytes of float64 values
MAX_BLOCK_BYTES = 2**27
_INSTALL = 'pip install "latentkit[scale]"'
_TABLE_OPTIONS = ("key", "max_rows", "columns", "index_col", "time_col")


def store_suffix(source: str | None) -> str | None:
    """The out-of-core ending of DATA (".zarr", ".parquet", ".pq", ".npy"), or None."""
    if source is None:
        return None
    suffix = Path(os.fspath(source).rstrip("/\\")).suffix.lower()
    return suffix if suffix in STORE_SUFFIXES else None


def streams(spec, model) -> bool:
    """Whether `fit` streams the model's data chunk by chunk (and runs its E-steps on
    Dask): an EM model with the engine's own `fit`, of independent rows (not the time
    steps of one series, which are never split), given a plain table (no family reader of
    its own)."""
    from latentkit.base import EMModel

    own_fit = type(model).fit is EMModel.fit
    independent_rows = not getattr(model, "_rows_are_time_steps", False)
    return isinstance(model, EMModel) and own_fit and independent_rows and \
        spec.model_input is None and spec.read_data is None


def _table_options_given(args) -> list[str]:
    given = ["--" + name.replace("_", "-") for name in _TABLE_OPTIONS
             if getattr(args, name, None) is not None]
    return given + (["--drop"] if args.drop else []) + (["--no-header"] if args.no_header
                                                        else [])


def streamed_models(registered) -> list[str]:
    """The names of the registered specs whose models fit on Dask."""
    return [spec.name for spec in registered.values() if streams(spec, spec.cls())]


def check_dask_request(spec, model, args) -> None:
    """--dask SPEC: dask installed, SPEC valid, the model one that fits on Dask; else a
    one-line error naming the fix."""
    try:
        import dask.array  # noqa: F401

        import distributed  # noqa: F401
    except ImportError:
        raise InvalidParameterError(f"--dask needs dask and distributed: {_INSTALL}, or drop "
                                    "--dask to fit in this process.") from None
    from latentkit.distributed import parse_spec
    from latentkit.registry import registered_specs

    try:
        parse_spec(args.dask)
    except InvalidParameterError as error:
        raise InvalidParameterError(
            f"--dask {args.dask!r}: {error} On the command line: --dask local:N (N worker "
            "processes here) or --dask tcp://HOST:PORT (a running scheduler).") from None
    if not streams(spec, model):
        raise InvalidParameterError(
            f"{spec.name} ({spec.class_name}) does not fit on Dask: --dask runs the E-steps "
            f"of EM models of a table ({', '.join(streamed_models(registered_specs()))}). "
            "Drop --dask to fit it here (deep models scale out with PyTorch DDP: "
            "Trainer(strategy='ddp')).")


@dataclass
class StreamedInput:
    """DATA left where it is: X is what `fit` is given (a path, or a Dask array : (N, D));
    sample : the rows the figures draw (at most FIGURE_ROWS), as a `Data` named after DATA;
    n_rows, n_columns : DATA's size; on_dask : whether X is a Dask array; in_memory : the
    whole table when it was read here (a CSV, or table options) and wrapped for Dask."""

    X: Any
    sample: Data
    n_rows: int
    n_columns: int
    on_dask: bool
    in_memory: Data | None = None

    def describe(self) -> str:
        text = f"{self.sample.name}: {self.n_rows} rows x {self.n_columns} columns"
        if len(self.sample.X) < self.n_rows:
            text += f" (figures from a random sample of {len(self.sample.X)} rows)"
        return text


def wants_stream(spec, model, args) -> bool:
    """Whether `fit` leaves DATA where it is: always with --dask (a table read here is
    wrapped as a Dask array), else for an out-of-core file of a model that streams, unless
    a table option needs the table read in memory."""
    if args.dask is not None:
        return True
    return (store_suffix(args.data) is not None and streams(spec, model)
            and not _table_options_given(args))


@contextmanager
def cluster(args):
    """connect(args.dask) around the fit, or nothing without --dask. Distributed's notes
    about its own sockets and dashboard port are not the user's business: silenced."""
    if args.dask is None:
        with nullcontext():
            yield None
        return
    import warnings

    from latentkit.distributed import connect

    with warnings.catch_warnings(), ExitStack() as stack:
        warnings.filterwarnings("ignore", category=ResourceWarning)
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        try:
            client = stack.enter_context(connect(args.dask))
        except OSError as error:  # no scheduler there (distributed raises OSError/timeouts)
            raise InvalidParameterError(
                f"--dask {args.dask}: cannot reach the scheduler ({error}). Check the address "
                "and that `dask scheduler` runs there, or use --dask local:N.") from None
        yield client


# -- reading ------------------------------------------------------------------------------


def read_npy_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a `.npy` file : (stop - start, D), read from its memory map
    (on the worker that runs it)."""
    return np.array(np.load(path, mmap_mode="r", allow_pickle=False)[start:stop])


def _row_chunks(n_rows: int, n_columns: int, args, client) -> int:
    """Rows per Dask block: --dask-chunk-rows, else a few blocks per worker
    (BLOCKS_PER_WORKER), none over MAX_BLOCK_BYTES."""
    if args.dask_chunk_rows is not None:
        return args.dask_chunk_rows
    from latentkit.distributed.cluster import worker_count

    workers = worker_count(client)
    largest = max(1, MAX_BLOCK_BYTES // (8 * max(1, n_columns)))
    return max(1, min(math.ceil(n_rows / (BLOCKS_PER_WORKER * workers)), largest))


def _dask_npy(path: str, args, client):
    import dask.array as da
    from dask import delayed

    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    if mapped.ndim != 2:
        raise InvalidInputError(f"{path}: expected a 2-D array (rows x columns); got shape "
                                f"{mapped.shape}.")
    n, d = mapped.shape
    rows = _row_chunks(n, d, args, client)
    blocks = [da.from_delayed(delayed(read_npy_rows)(path, start, min(start + rows, n)),
                              shape=(min(start + rows, n) - start, d), dtype=mapped.dtype)
              for start in range(0, n, rows)]
    return da.concatenate(blocks, axis=0), None


def _dask_store(path: str, suffix: str, args, client):
    """(a Dask array : (N, D) chunked by rows, the column names or None) of a store."""
    import dask.array as da

    if suffix == ".npy":
        return _dask_npy(path, args, client)
    if suffix == ".zarr":
        from latentkit.em.stores import open_zarr_array

        X = da.from_zarr(open_zarr_array(path))
        columns = None
    else:
        import dask.dataframe as dd

        from latentkit.distributed.source import as_dask_array

        frame = dd.read_parquet(path)
        columns = [str(name) for name in frame.columns]
        X = as_dask_array(frame)
    if X.ndim != 2:
        raise InvalidInputError(f"{path}: expected a 2-D array (rows x columns); got shape "
                                f"{X.shape}.")
    return X.rechunk((_row_chunks(X.shape[0], X.shape[1], args, client), -1)), columns


def _store_sample(path: str, rng) -> tuple[np.ndarray, list[str] | None, int, int]:
    """(at most FIGURE_ROWS rows : (n, D) as float64, column names or None, N, D) of a
    store, read chunk by chunk (`em.as_source`)."""
    from latentkit import em

    source = em.as_source(path, chunk_rows=em.auto_chunk_rows(8), allow_nan=True)
    sample = np.asarray(source.init_sample(FIGURE_ROWS, rng), dtype=np.float64)
    names = getattr(source, "feature_names", None)
    columns = None if names is None else [str(name) for name in names]
    return sample, columns, source.n_samples, source.n_features


def _dask_sample(X, rng) -> np.ndarray:
    """At most FIGURE_ROWS rows of a Dask array, in order: all, else a seeded subset."""
    rows = _sample_rows(X.shape[0], FIGURE_ROWS, rng)
    taken = X if len(rows) == X.shape[0] else X[rows]
    return np.asarray(taken.compute(), dtype=np.float64)


def streamed_input(spec, args, client, read_in_memory) -> StreamedInput:
    """DATA for a streamed fit: the path (out of core) or a Dask array (--dask), and the
    rows the figures draw. `read_in_memory` () -> Data reads a file that is no store."""
    source = args.data
    suffix = store_suffix(source)
    rng = np.random.default_rng(0)
    if suffix is None or _table_options_given(args):  # --dask on a table read here
        import dask.array as da

        data = read_in_memory()
        rows = _row_chunks(len(data.X), data.X.shape[1], args, client)
        X = da.from_array(np.asarray(data.X), chunks=(rows, -1))
        return StreamedInput(X, data, *data.X.shape, on_dask=True, in_memory=data)
    path = os.path.expanduser(source)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {source}")
    if args.dask is None:
        sample, columns, n, d = _store_sample(path, rng)
        X = path
    else:
        X, columns = _dask_store(path, suffix, args, client)
        (n, d), sample = X.shape, _dask_sample(X, rng)
    if n == 0 or d == 0:
        raise InvalidInputError(f"{Path(path).name} has no data: shape {(n, d)}.")
    return StreamedInput(X, Data(X=sample, name=Path(path.rstrip("/\\")).name,
                                 columns=columns), n, d, on_dask=args.dask is not None)


# -- scoring and choosing K on the stream ---------------------------------------------------


def block_log_likelihood(model, block) -> np.ndarray:
    """[[Σ_n log p(x_n), n]] : (1, 2) over the rows of one block : (n, D), where it lives."""
    values = model.score_samples(np.asarray(block))
    return np.array([[np.sum(values, dtype=np.float64), len(values)]], dtype=np.float64)


def log_likelihood_sum(model, X) -> tuple[float, int]:
    """(Σ_n log p(x_n), N) over DATA left where it is: a Dask array, block by block on
    the cluster, or a store's path, chunk by chunk in this process."""
    if not isinstance(X, str | os.PathLike):
        from latentkit.distributed.source import as_dask_array

        X = as_dask_array(X)
        per_block = X.map_blocks(partial(block_log_likelihood, model), dtype=np.float64,
                                 chunks=((1,) * X.numblocks[0], (2,)))
        total, n = per_block.sum(axis=0).compute()
        return float(total), int(n)
    from latentkit import em

    rows = getattr(model, "chunk_size", None) or em.auto_chunk_rows(8 * model.n_features_in_)
    total, n = 0.0, 0
    for chunk in em.as_source(X, chunk_rows=rows, allow_nan=True):
        part = block_log_likelihood(model, chunk)[0]
        total, n = total + part[0], n + int(part[1])
    return total, n


def criteria(model, X) -> dict:
    """rows, mean log-likelihood, BIC = -2 log p(X) + P log N and AIC = -2 log p(X) + 2 P
    (P = model.n_parameters_) of DATA left where it is."""
    total, n = log_likelihood_sum(model, X)
    free = model.n_parameters_
    return {"rows": n, "mean_log_likelihood": total / n,
            "bic": -2 * total + free * math.log(n), "aic": -2 * total + 2 * free}


def streamed_metrics(model, X) -> list[tuple[str, str, object]]:
    """The summary rows of `options.metrics` (the rows, mean log-likelihood, BIC, AIC),
    summed over X (a store's path or a Dask array) block by block."""
    from .options import _check_finite_metrics

    values = criteria(model, X)
    labels = {"rows": "rows", "mean_log_likelihood": "mean log-likelihood", "bic": "BIC",
              "aic": "AIC"}
    rows = [(key, labels[key], values[key]) for key in labels]
    _check_finite_metrics(model, rows[1:])
    return rows


def evaluates_in_chunks(spec, model, args) -> bool:
    """Whether `evaluate` scores DATA chunk by chunk: a store, a model that streams and
    takes its columns by position (no names to match), no table option, --iwae or
    --disentanglement."""
    return (store_suffix(args.data) is not None and streams(spec, model)
            and spec.feature_names(model) is None and not _table_options_given(args)
            and args.iwae is None and not args.disentanglement)


def stored_metrics(model, source: str) -> list[tuple[str, str, object]]:
    """The `data` row and the metrics rows of a store scored chunk by chunk."""
    from latentkit import em

    path = os.path.expanduser(source)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {source}")
    opened = em.as_source(path, chunk_rows=1, allow_nan=True)
    if opened.n_features != model.n_features_in_:
        raise InvalidInputError(f"{source} has {opened.n_features} columns but the model was "
                                f"fitted on {model.n_features_in_} columns.")
    name = Path(path.rstrip("/\\")).name
    described = f"{name}: {opened.n_samples} rows x {opened.n_features} columns"
    return [("data", "data", described)] + streamed_metrics(model, path)


def select_streamed(model, X, candidates, criterion: str, random_state, param: str):
    """`select_n_components` (bic or aic) for DATA left where it is: every candidate is
    fitted on the stream and scored block by block (`criteria`)."""
    from latentkit.metrics.selection import select_n_components

    if criterion == "heldout":
        raise InvalidParameterError(
            "--criterion heldout splits the rows in memory; on a store or with --dask use "
            "--criterion bic or aic (or read DATA in memory with a table option such as "
            "--max-rows).")
    return select_n_components(model, X, candidates, criterion, random_state=random_state,
                               param=param, scorer=criteria)


__all__ = ["FIGURE_ROWS", "STORE_SUFFIXES", "StreamedInput", "block_log_likelihood",
           "check_dask_request", "cluster", "criteria", "evaluates_in_chunks",
           "log_likelihood_sum", "read_npy_rows", "select_streamed", "store_suffix",
           "stored_metrics", "streamed_input", "streamed_metrics", "streams", "wants_stream"]
