"""Online EM over a whole data source: passes of minibatch steps (`online_em_step`).

A fit by online EM reads the source's chunks in order as minibatches; after each one the
running statistics move towards the batch's by ρ_t = (t + τ)^(-κ) and the M-step follows
(Cappé & Moulines 2009; for LDA, Hoffman, Blei & Bach 2010's online variational Bayes). A
pass's objective is the mean over its batches of each batch's objective under the
parameters it met, plus log p(θ) / total_rows where the family has a log-prior term: a noisy
estimate, so there is no monotonicity guard and no rollback; the fit stops when a pass
changes it by less than `tol`, after `max_passes`, at `max_time`, on a callback's True, or
on Ctrl-C (keeping the parameters of the last complete batch).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace

from .callbacks import EMIteration, progress_bar
from .contract import ConvergenceWarning, EMFamily
from .loop import EMResult, OnlineState, online_em_step, owned_copy
from .sources import ChunkSource


def _one_pass(family: EMFamily, config, source: ChunkSource, params, state,
              online: OnlineState, step_options: dict):
    """One pass of minibatch steps; returns (params, state, online, objective sum, rows,
    interrupted). online.stats, when present, must be owned (`owned_copy`; the first
    step's, from `online_em_step`, is a fresh array)."""
    total, rows = 0.0, 0
    try:
        for batch in source.minibatches():
            n = batch.shape[0]
            if n == 0:
                continue
            params, state, online, objective = online_em_step(
                family, config, params, state, online, batch, stacklevel=6, in_place=True,
                **step_options)
            total, rows = total + objective * n, rows + n
    except KeyboardInterrupt:
        return params, state, online, total, rows, True
    return params, state, online, total, rows, False


def fit_online(family: EMFamily, config, source: ChunkSource, params, state, *,
               online: OnlineState | None = None, max_passes: int, tol: float,
               learning_decay: float, learning_offset: float, total_rows: int | None = None,
               max_time: float | None = None, callbacks=(), progress: float | None = None,
               model=None, split_rows: int | None = None) -> tuple[EMResult, OnlineState]:
    """Online EM from (params, state): up to `max_passes` passes over `source`'s chunks (the
    minibatches), continuing the running statistics `online` (None: a fresh start).

    total_rows : the rows the statistics are scaled to (the corpus size; see
    `online_em_step`), by default the source's n_samples; split_rows : a minibatch's
    E-step in blocks on the thread pool (`loop.batch_e_step`). Returns the EMResult (history =
    one mean objective per pass) and the final OnlineState.
    """
    online = online or OnlineState()
    if online.stats is not None:  # the caller's running statistics are never written to
        online = replace(online, stats=owned_copy(online.stats))
    total_rows = total_rows or source.n_samples
    options = dict(learning_decay=learning_decay, learning_offset=learning_offset,
                   total_rows=total_rows, split_rows=split_rows)
    result, start, prev = EMResult(params, state), time.perf_counter(), None
    with progress_bar(max_passes, "online EM", progress) as bar:
        for it in range(1, max_passes + 1):
            params, state, online, total, rows, interrupted = _one_pass(
                family, config, source, params, state, online, options)
            result.params, result.state = params, state
            if interrupted:
                warnings.warn(f"online EM interrupted during pass {it}; keeping the parameters "
                              "of the last complete minibatch (converged_=False).",
                              ConvergenceWarning, stacklevel=3)
                result.stop_reason = "interrupted"
                break
            value = total / rows
            if family.log_prior is not None:
                value += family.log_prior(params, config) / (total_rows or rows)
            change, prev = (value - prev if prev is not None else float("inf")), value
            result.n_iter, result.best_iteration, result.lower_bound = it, it, value
            result.history.append(value)
            bar.update(1)
            step = EMIteration(it, value, change, params, time.perf_counter() - start, model,
                               tuple(result.history), source.dtype, state)
            if any(cb(step) is True for cb in callbacks):
                result.stop_reason = "callback"
                break
            if abs(change) < tol:
                result.converged, result.stop_reason = True, "converged"
                break
            if max_time is not None and time.perf_counter() - start > max_time:
                result.stop_reason = "max_time"
                break
    return result, online


__all__ = ["fit_online"]
