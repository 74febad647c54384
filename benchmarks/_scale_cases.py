"""One fit of benchmarks/scale.py, run in a process of its own so that its peak RSS is its
own: a model (gmm, ppca, lda) fitted in one mode (incore, stream, dask), timed per
iteration by a callback, with the peak RSS of this process and of every Dask worker.

Time per iteration is the median gap between consecutive callback calls (iteration i ends
to iteration i+1 ends): start-up (opening the store, the Dask check pass, the
initialization) and the first iteration are excluded. In Dask mode the callback also reads
the workers' transfer counters (`transfer_outgoing_bytes_total`: bytes one worker sent
another); the time that read takes is subtracted from the gap it falls in.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
from lda_stream import peak_rss_mb  # VmHWM: this process's own high-water mark


def _worker_counters(dask_worker) -> tuple[int, float]:
    """(bytes this worker sent other workers, CPU seconds of its process so far)."""
    return int(dask_worker.transfer_outgoing_bytes_total), time.process_time()


class IterationTimer:
    """A fit callback: the time each iteration ends, and (with a client) the workers'
    outgoing transfer bytes at that time."""

    def __init__(self, client=None):
        self.client, self.ends, self.pauses, self.sent, self.cpu = client, [], [], [], []

    def __call__(self, info) -> None:
        self.ends.append(time.perf_counter())
        if self.client is None:
            self.pauses.append(0.0)
            return
        start = time.perf_counter()
        counters = self.client.run(_worker_counters)
        self.sent.append(sum(sent for sent, _ in counters.values()))
        self.cpu.append({address: cpu for address, (_, cpu) in counters.items()})
        self.pauses.append(time.perf_counter() - start)

    def seconds_per_iteration(self) -> float:
        """Median of the gaps between iteration ends, less the counter reads (NaN when
        fewer than two iterations ran)."""
        gaps = np.diff(self.ends) - np.asarray(self.pauses[:-1])
        return float(np.median(gaps)) if len(gaps) else float("nan")

    def worker_cpu_per_iteration(self) -> list[float]:
        """Each worker process's CPU seconds per iteration (first to last callback): against
        the wall time per iteration it shows the share of a core a worker got."""
        if len(self.cpu) < 2 or set(self.cpu[0]) != set(self.cpu[-1]):
            return []
        return sorted((self.cpu[-1][w] - self.cpu[0][w]) / (len(self.cpu) - 1)
                      for w in self.cpu[0])

    def transfer_per_iteration(self) -> float:
        """Worker-to-worker bytes per iteration, from the counters' first and last read."""
        if len(self.sent) < 2:
            return float("nan")
        return (self.sent[-1] - self.sent[0]) / (len(self.sent) - 1)


def make_model(name: str, iterations: int, timer):
    """The fitted model: GaussianMixture(8, full), PPCA(8, solver="em"), LDA(20, online);
    tol=0 and a fixed seed so every mode runs the same `iterations` iterations."""
    if name == "gmm":
        from latentkit import GaussianMixture
        return GaussianMixture(8, covariance_type="full", tol=0.0, max_iter=iterations,
                               n_init=1, random_state=0, callbacks=[timer])
    if name == "ppca":
        from latentkit.linear import PPCA
        return PPCA(8, solver="em", tol=0.0, max_iter=iterations, random_state=0,
                    callbacks=[timer])
    from latentkit.topics import LDA
    batch = int(os.environ.get("SCALE_LDA_BATCH", "4096"))  # scale.py --lda-batch
    return LDA(20, method="online", tol=0.0, max_iter=iterations, batch_size=batch,
               doc_topic_prior=0.1, topic_word_prior=0.05, random_state=0, callbacks=[timer])


def _in_memory(name: str, path: str):
    if name == "lda":
        import scipy.sparse as sp
        return sp.load_npz(f"{path}/corpus.npz").tocsr()
    import zarr
    return zarr.open(path, mode="r")[:]


def _streamed(name: str, path: str):
    return f"{path}/corpus.npz" if name == "lda" else path


def fit_timed(model, data, timer) -> dict:
    """Fit, with the wall time of the whole fit and the iterations' times."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0 never "converges"
        model.fit(data)
    seconds = time.perf_counter() - start
    per_iteration = timer.seconds_per_iteration()
    if not np.isfinite(per_iteration):  # no callbacks (a method that does not call them)
        per_iteration = seconds / max(1, getattr(model, "n_iter_", 1))
    return dict(fit_s=seconds, s_per_iter=per_iteration, n_iter=int(model.n_iter_),
                callbacks=len(timer.ends), objective=float(np.asarray(model.history_)[-1]),
                load_1min=os.getloadavg()[0])  # the machine is shared: how busy it was


def run_local(name: str, mode: str, path: str, iterations: int) -> dict:
    """An in-core (the array read whole into memory) or streamed (the store's path) fit."""
    timer = IterationTimer()
    data = _in_memory(name, path) if mode == "incore" else _streamed(name, path)
    result = fit_timed(make_model(name, iterations, timer), data, timer)
    return dict(result, peak_rss_mb=peak_rss_mb(), worker_peak_rss_mb=[])


def _worker_peak_rss_mb() -> float:
    return peak_rss_mb()


def _record_lda_corpus() -> list:
    """Keep the DaskCorpus that LDA builds in fit (to read its traffic afterwards): a
    wrapper around latentkit.topics._dask.dask_corpus, which lda.py imports at each fit;
    one map_reduce per minibatch, whose blocks are the minibatch's (`minibatches`)."""
    import latentkit.topics._dask as lda_dask

    made, original = [], lda_dask.dask_corpus

    def recording(*args, **kwargs):
        source = original(*args, **kwargs)
        made.append(source)
        return source

    lda_dask.dask_corpus = recording
    return made


def block_seconds(source, repeats: int = 2) -> float:
    """Seconds of one block's E-step, as a worker runs it (read the block from the store,
    prepare it, run the last iteration's step on it), measured in this process with BLAS on
    one thread: the median over the first `repeats` blocks."""
    from threadpoolctl import threadpool_limits

    times = []
    with threadpool_limits(limits=1, user_api="blas"):
        for block, prepare in list(zip(source.blocks, source.prepares))[:repeats]:
            start = time.perf_counter()
            source.last_step(prepare(block.compute(scheduler="sync")))
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_dask(name: str, path: str, iterations: int, workers: int, memory_limit: str,
             persist: bool, block_rows: int) -> dict:
    """A fit on a LocalCluster of `workers` single-threaded processes: a DaskSource built
    here (to read its traffic record) over da.from_zarr(path) in blocks of `block_rows`
    rows, or for LDA the Dask array of sparse blocks (one per .npz) passed to fit as is."""
    import dask.array as da

    from latentkit.distributed import DaskSource, connect

    class RecordingSource(DaskSource):
        """A DaskSource that keeps the last E-step it ran (to time one block of it)."""

        def map_reduce(self, step, reduce=None):
            self.last_step = step
            return super().map_reduce(step, reduce)

    # one core per worker: zarr's codec thread pool, numba's threads and latentkit's E-step
    # threads would let one worker use every core (the 1-worker time then is not one
    # core's, and the efficiency reads low); the worker processes inherit these
    os.environ.update(ZARR_THREADING__MAX_WORKERS="1", NUMBA_NUM_THREADS="1",
                      LATENTKIT_NUM_THREADS="1")
    with connect(f"local:{workers}", memory_limit=memory_limit) as client:
        timer = IterationTimer(client)
        model = make_model(name, iterations, timer)
        if name == "lda":
            from _scale_data import lda_dask_array
            source, data = _record_lda_corpus(), lda_dask_array(path)
        else:
            X = da.from_zarr(path, chunks=(block_rows, -1))
            source = data = RecordingSource(X, allow_nan=False, persist=persist)
        result = fit_timed(model, data, timer)
        worker_rss = sorted(client.run(_worker_peak_rss_mb).values())
        result.update(peak_rss_mb=peak_rss_mb(), worker_peak_rss_mb=worker_rss,
                      dask_transfer_bytes=timer.transfer_per_iteration(),
                      worker_cpu_s_per_iter=timer.worker_cpu_per_iteration())
    if name == "lda":  # online VB: one map_reduce per minibatch, not per pass
        traffic = source[0].traffic if source else None
        if traffic is not None and traffic.iterations:
            calls = traffic.iterations / max(1, result["n_iter"])
            result.update(minibatches_per_pass=calls, step_bytes=traffic.step_bytes,
                          stats_bytes=traffic.stats_bytes, lda_blocks=traffic.blocks,
                          model_bytes=int(traffic.per_iteration_bytes * calls))
        return result
    if source is not None:
        traffic = source.traffic
        result.update(blocks=traffic.blocks, depth=traffic.depth, step_bytes=traffic.step_bytes,
                      stats_bytes=traffic.stats_bytes,
                      model_bytes=traffic.per_iteration_bytes,
                      block_s=block_seconds(source))
    return result
