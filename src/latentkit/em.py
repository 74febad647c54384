"""The EM engine over additive sufficient statistics (DESIGN section 3).

A model supplies three pure pieces:

    _em_init(X_sample, rng)   -> params
    _e_step(params, X_chunk)  -> (stats, loglik_sum)    # stats add across chunks
    _m_step(stats)            -> params

and the engine owns everything else, once: iterating over chunks (in-memory arrays, memory-
mapped `.npy` files, lists of arrays or a function returning a fresh iterator of arrays),
summing the statistics, convergence on the change of the mean log-likelihood, the
monotonicity guard, restarts, warm starts, callbacks, the progress bar, the time budget,
Ctrl-C, and online EM.

EM never decreases log p(X | θ) (each iteration maximizes a lower bound that touches the
log-likelihood at the current θ), so a decrease beyond round-off signals a bug or a numerical
failure and raises a `ConvergenceWarning` naming the iteration.
"""

from __future__ import annotations

import math
import mmap
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ._validation import check_finite


class ConvergenceWarning(_SklearnConvergenceWarning):
    """EM stopped before converging, or its log-likelihood decreased (a numerical failure)."""


class ReseedWarning(UserWarning):
    """An empty or collapsed component was re-seeded; the next log-likelihood may drop."""


# -- sufficient statistics ----------------------------------------------------------------


@dataclass(frozen=True)
class SufficientStats:
    """Base for a model's statistics record.

    Fields named in `additive` add across chunks and scale in online EM; any other field is
    carried unchanged from the left operand (e.g. the data shift the chunk was centred by).
    """

    additive: ClassVar[tuple[str, ...]] = ()

    def __add__(self, other):
        return replace(self, **{f: getattr(self, f) + getattr(other, f) for f in self.additive})

    def scaled(self, a: float):
        return replace(self, **{f: a * getattr(self, f) for f in self.additive})


@dataclass(frozen=True)
class WorstPoints:
    """The complete rows with the lowest log-likelihood (at most `capacity` of them): where
    empty components are re-seeded, one distinct row each.

    Merges by keeping the lowest, so it travels with additive statistics across chunks.
    log_likelihood : (m,) ascending; X : (m, D).
    """

    log_likelihood: np.ndarray = field(default_factory=lambda: np.empty(0))
    X: np.ndarray | None = None
    capacity: int = 0

    def __add__(self, other: WorstPoints) -> WorstPoints:
        if other.X is None:
            return self
        if self.X is None:
            return other
        ll = np.concatenate([self.log_likelihood, other.log_likelihood])
        X = np.concatenate([self.X, other.X])
        keep = np.argsort(ll, kind="stable")[: max(self.capacity, other.capacity)]
        return WorstPoints(ll[keep], X[keep], max(self.capacity, other.capacity))

    @staticmethod
    def of(X: np.ndarray, log_likelihood: np.ndarray, capacity: int, *,
           all_complete: bool = False) -> WorstPoints:
        """X : (n, D); log_likelihood : (n,). Rows with NaN are skipped (`all_complete`
        says the caller already knows there are none)."""
        complete = (np.arange(len(X)) if all_complete
                    else np.flatnonzero(~np.isnan(X).any(axis=1)))
        if complete.size == 0 or capacity < 1:
            return WorstPoints(capacity=capacity)
        ll = log_likelihood[complete]
        m = min(capacity, complete.size)
        keep = np.argpartition(ll, m - 1)[:m] if m < complete.size else np.arange(m)
        keep = keep[np.argsort(ll[keep], kind="stable")]
        return WorstPoints(ll[keep].astype(np.float64), np.array(X[complete[keep]],
                                                                  dtype=np.float64), capacity)


# -- data sources -------------------------------------------------------------------------


class ChunkSource:
    """Re-iterable chunks of rows; each pass yields validated float arrays (n_chunk, D)."""

    n_features: int
    dtype: np.dtype

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def init_sample(self, max_rows: int, rng: np.random.Generator) -> np.ndarray:
        """All rows when there are at most `max_rows`, else a random subset, in order."""
        raise NotImplementedError


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
            raise ValueError(f"data must be 2-D (n_samples, n_features); got shape {X.shape}.")
        self.X, self.chunk_rows = X, max(1, int(chunk_rows))
        self.validated, self.allow_nan = validated, allow_nan
        self.n_samples, self.n_features = X.shape
        self.dtype = np.dtype(dtype or (X.dtype if X.dtype in (np.float32, np.float64)
                                        else np.float64))

        self.pages = MappedPages(X) if isinstance(X, np.memmap) else None

    def _prepare(self, chunk: np.ndarray, first_row: int = 0) -> np.ndarray:
        if self.validated:
            return chunk
        chunk = np.asarray(chunk, dtype=self.dtype)
        check_finite(chunk, allow_nan=self.allow_nan, name="data", first_row=first_row)
        return chunk

    def __iter__(self):
        read = deque()
        for start in range(0, self.n_samples, self.chunk_rows):
            raw = self.X[start:start + self.chunk_rows]
            yield self._prepare(raw, start)
            if self.pages is not None:
                read.append(raw)
                if len(read) > self.release_lag:
                    self.pages.release(read.popleft())
        if self.pages is not None:
            self.pages.release()

    def init_sample(self, max_rows, rng):
        if self.n_samples <= max_rows:
            rows = np.arange(self.n_samples)
        else:
            rows = np.sort(rng.choice(self.n_samples, size=max_rows, replace=False))
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


class IterableSource(ChunkSource):
    """Chunks from a list/tuple of arrays, or from a zero-argument function that returns a
    fresh iterator of arrays on each call (EM needs one pass per iteration)."""

    def __init__(self, make_iter: Callable[[], Iterable], *, allow_nan: bool, dtype=None):
        self.make_iter, self.allow_nan = make_iter, allow_nan
        first = next(iter(make_iter()), None)
        if first is None:
            raise ValueError("the iterator of chunks yielded no data.")
        first = np.asarray(first)
        if first.ndim != 2:
            raise ValueError(
                f"each chunk must be 2-D (n_rows, n_features); the first has shape {first.shape}."
            )
        self.n_features = first.shape[1]
        self.dtype = np.dtype(dtype or (first.dtype if first.dtype in (np.float32, np.float64)
                                        else np.float64))

    def __iter__(self):
        first_row = 0
        for i, chunk in enumerate(self.make_iter()):
            chunk = np.asarray(chunk, dtype=self.dtype)
            if chunk.ndim != 2 or chunk.shape[1] != self.n_features:
                raise ValueError(
                    f"chunk {i} has shape {chunk.shape}; every chunk must be 2-D with "
                    f"{self.n_features} columns like the first."
                )
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
    """Wrap what `fit` was given as a ChunkSource.

    data : a path to a `.npy` file (memory-mapped), an np.memmap, a list/tuple of 2-D arrays,
    or a zero-argument callable returning a fresh iterator of 2-D arrays.
    """
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        if not path.endswith(".npy"):
            raise ValueError(f"a data path for streaming must be a .npy file; got {path!r}.")
        try:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot memory-map {path!r} as a .npy array: {exc}") from None
        return ArraySource(X, chunk_rows, validated=False, allow_nan=allow_nan)
    if isinstance(data, np.memmap):
        return ArraySource(data, chunk_rows, validated=False, allow_nan=allow_nan)
    if isinstance(data, list | tuple):
        chunks = list(data)
        return IterableSource(lambda: iter(chunks), allow_nan=allow_nan)
    if callable(data):
        return IterableSource(data, allow_nan=allow_nan)
    if isinstance(data, Iterator):
        raise TypeError(
            "a one-shot iterator cannot be used: EM makes one pass over the data per iteration. "
            "Pass a list of arrays or a function that returns a fresh iterator."
        )
    raise TypeError(f"cannot read data of type {type(data).__name__} as chunks.")


def is_streaming(data) -> bool:
    """True for inputs that `as_source` streams; False for an in-memory array-like."""
    if isinstance(data, str | os.PathLike | np.memmap | Iterator):
        return True
    if isinstance(data, list | tuple):
        return len(data) > 0 and np.ndim(data[0]) == 2
    return callable(data)


def auto_chunk_rows(floats_per_row: int, budget_floats: int = 2**20) -> int:
    """Rows per chunk so that the E-step temporaries stay near `budget_floats` (cache-sized)."""
    return int(min(65536, max(256, budget_floats // max(1, floats_per_row))))


# -- the EM loop --------------------------------------------------------------------------


@dataclass
class EMIteration:
    """What a callback receives after each iteration."""

    iteration: int
    log_likelihood: float  # mean per row, at the parameters before this M-step
    change: float
    params: Any  # after this M-step
    elapsed: float
    model: Any = None
    history: tuple[float, ...] = ()
    dtype: Any = np.float64


class Checkpoint:
    """Callback that saves the model being fitted every `every` iterations (atomically, via
    `model.save`), so a long fit can be resumed: `latentkit.load(path)` then
    `set_params(warm_start=True)` and `fit` again.

        GaussianMixture(..., callbacks=[Checkpoint("run/ckpt.npz", every=10)]).fit(X)
    """

    def __init__(self, path, every: int = 10):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"Checkpoint every must be a positive integer; got {every!r}.")
        self.path, self.every = path, every

    def __call__(self, info: EMIteration) -> None:
        if info.iteration % self.every:
            return
        model = info.model
        model._store_params(info.params, info.dtype)
        model.converged_, model.n_iter_ = False, info.iteration
        model.history_ = np.asarray(info.history)
        model.lower_bound_, model.stop_reason_ = info.log_likelihood, "checkpoint"
        with warnings.catch_warnings():  # callbacks (this one included) are never saved
            warnings.filterwarnings("ignore", message=".*'callbacks'", category=UserWarning)
            model.save(self.path)


@dataclass
class EMResult:
    params: Any
    history: list[float] = field(default_factory=list)
    converged: bool = False
    n_iter: int = 0
    stop_reason: str = "max_iter"  # max_iter | converged | max_time | interrupted | callback

    @property
    def lower_bound(self) -> float:
        return self.history[-1] if self.history else -math.inf


def monotone_tolerance(log_likelihood: float, dtype) -> float:
    """The round-off allowed in a decrease of the mean log-likelihood."""
    rtol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-9
    return rtol * max(1.0, abs(log_likelihood))


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


def e_pass(model, params, source: Iterable[np.ndarray]):
    """One E-step over all chunks: (summed stats, objective, number of rows).

    The objective is the total log-likelihood plus `model._log_prior(params)` (0 for ML).
    Chunks run on `num_threads()` threads with BLAS pinned to one thread each (numpy
    releases the GIL in its kernels, so the cores share the elementwise work, not only the
    GEMMs). Statistics are summed in chunk order, so results do not depend on the threads.
    """
    stats, total, n = None, 0.0, 0
    step = partial(_chunk_e_step, model, params)
    threads = num_threads()
    chunks = iter(source)
    first = next(chunks, None)
    second = next(chunks, None)
    if threads > 1 and second is not None:  # at least two chunks: worth a pool
        with threadpool_limits(limits=1, user_api="blas"), \
                ThreadPoolExecutor(threads) as pool:
            results = list(_bounded_map(pool, step, chain([first, second], chunks),
                                        window=2 * threads))
    else:
        results = [step(chunk) for chunk in chain([first, second], chunks)
                   if chunk is not None]
    for s, ll, rows in results:
        if rows == 0:
            continue
        stats = s if stats is None else stats + s
        total += ll
        n += rows
    if stats is None:
        raise ValueError("the data has no rows.")
    # MAP-EM (a prior on θ) is monotone in log p(X | θ) + log p(θ): that is the objective.
    total += model._log_prior(params)
    return stats, total, n


def _chunk_e_step(model, params, chunk):
    if len(chunk) == 0:
        return None, 0.0, 0
    s, ll = model._e_step(params, chunk)
    return s, float(ll), len(chunk)


def run_em(model, source: ChunkSource, params, *, tol: float, max_iter: int,
           max_time: float | None = None, callbacks=(), progress: float | None = None,
           desc: str = "EM") -> EMResult:
    """Iterate E and M steps from `params` until the mean log-likelihood changes by < tol.

    progress : seconds before a progress bar appears on stderr, or None for none.
    """
    result = EMResult(params)
    start = time.perf_counter()
    prev, reseeded = -math.inf, False
    bar = tqdm(total=max_iter, desc=desc, disable=progress is None, leave=False,
               file=sys.stderr, delay=progress or 0.0)
    try:
        for it in range(1, max_iter + 1):
            try:
                stats, total, n = e_pass(model, params, source)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    new_params = model._m_step(stats)
            except KeyboardInterrupt:
                warnings.warn(
                    f"EM interrupted during iteration {it}; keeping the parameters of the last "
                    "complete iteration (converged_=False).", ConvergenceWarning, stacklevel=3)
                result.stop_reason = "interrupted"
                break
            ll = total / n
            if not math.isfinite(ll):
                raise FloatingPointError(
                    f"EM produced a non-finite log-likelihood at iteration {it}. Increase "
                    "the regularization (reg_covar), use fewer components, or float64.")
            if not reseeded and prev - ll > monotone_tolerance(ll, source.dtype):
                warnings.warn(
                    f"EM log-likelihood decreased at iteration {it}: {prev:.10g} -> {ll:.10g}. "
                    "Exact EM never decreases it; this signals a numerical failure (try float64 "
                    "or a larger regularization).", ConvergenceWarning, stacklevel=3)
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            reseeded = any(issubclass(w.category, ReseedWarning) for w in caught)
            change, prev = ll - prev, ll
            result.params, result.n_iter = new_params, it
            result.history.append(ll)
            params = new_params
            bar.update(1)
            bar.set_postfix(loglik=f"{ll:.6g}", change=f"{change:.2g}")
            info = EMIteration(it, ll, change, params, time.perf_counter() - start, model,
                               tuple(result.history), source.dtype)
            if any(cb(info) is True for cb in callbacks):
                result.stop_reason = "callback"
                break
            if abs(change) < tol and not reseeded:
                result.converged, result.stop_reason = True, "converged"
                break
            if max_time is not None and time.perf_counter() - start > max_time:
                result.stop_reason = "max_time"
                break
    finally:
        bar.close()
    return result


def fit_em(model, source: ChunkSource, *, n_init: int, rng: np.random.Generator,
           init_params=None, max_init_rows: int = 100_000, **loop) -> EMResult:
    """Run EM from `n_init` initializations (or once from `init_params`) and keep the best.

    The best run is the one with the highest final mean log-likelihood.
    """
    best = None
    runs = 1 if init_params is not None else n_init
    for run in range(runs):
        if init_params is not None:
            params = init_params
        else:
            params = model._em_init(source.init_sample(max_init_rows, rng), rng)
        desc = f"EM {run + 1}/{runs}" if runs > 1 else "EM"
        result = run_em(model, source, params, desc=desc, **loop)
        if best is None or result.lower_bound > best.lower_bound:
            best = result
        if result.stop_reason == "interrupted":
            break
    if best.stop_reason == "max_iter":
        warnings.warn(
            f"EM did not converge in max_iter={loop['max_iter']} iterations (tol={loop['tol']}). "
            "Increase max_iter or tol, or check the data for degeneracies.",
            ConvergenceWarning, stacklevel=3)
    elif best.stop_reason == "max_time":
        warnings.warn(
            f"EM stopped at the max_time budget after {best.n_iter} iterations, before "
            "converging.", ConvergenceWarning, stacklevel=3)
    return best


@dataclass
class OnlineState:
    """Running statistics of online EM (stats are per-row averages)."""

    stats: Any = None
    n_updates: int = 0
    n_seen: int = 0


def online_em_step(model, params, state: OnlineState, X: np.ndarray, *,
                   learning_decay: float, learning_offset: float):
    """One step of online (stochastic) EM on a batch.

    s_t = (1 - ρ_t) s_{t-1} + ρ_t s̄(batch), ρ_t = (t + τ)^(-κ), with s̄ the per-row average
    of the batch statistics; the M-step sees s_t scaled back to the number of rows seen.
    Returns (params, state, mean log-likelihood of the batch under the old params).
    """
    stats, total = model._e_step(params, X)
    batch = stats.scaled(1.0 / len(X))
    if state.stats is None:
        running = batch
    else:
        rho = (state.n_updates + learning_offset) ** (-learning_decay)
        running = state.stats.scaled(1.0 - rho) + batch.scaled(rho)
    n_seen = state.n_seen + len(X)
    params = model._m_step(running.scaled(n_seen))
    state = OnlineState(running, state.n_updates + 1, n_seen)
    return params, state, float(total) / len(X)


__all__ = [
    "ArraySource", "Checkpoint", "ChunkSource", "ConvergenceWarning", "EMIteration",
    "EMResult", "IterableSource", "MappedPages", "OnlineState", "ReseedWarning",
    "SufficientStats", "WorstPoints", "as_source", "auto_chunk_rows", "e_pass", "fit_em",
    "monotone_tolerance", "num_threads", "online_em_step", "run_em",
]
