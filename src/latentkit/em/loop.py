"""The EM loop over a family's pure functions (contract.py) and a data source (sources.py).

It owns everything a family should not: one E-pass over the chunks through the source's
map-reduce seam, the objective per iteration, convergence on the change of the mean
objective (`tol`, `max_iter`), the monotonicity guard, re-seeding notices, keeping the best
complete iterate, `n_init` restarts keeping the best, warm starts, callbacks, the progress
bar, the `max_time` budget, Ctrl-C, and online EM. It knows no family by name.

Bookkeeping of a run from θ_0: iteration t runs the E-step at θ_{t-1}, which gives the mean
objective L(θ_{t-1}) (`history[t-1]`), then the M-step that gives θ_t. The run ends at θ_n
(n = `n_iter`) without evaluating L(θ_n).

The best complete iterate. EM's inequality makes θ_{t+1} at least as good as θ_t (up to
round-off and the step's declared slack) unless the M-step re-seeded a component, so an
iterate is superseded by its successor except (a) when the successor came from a
re-seeding M-step, or (b) when the successor's objective fell by more than the guard
allows (a numerical failure, warned). Such an iterate is a candidate; so is the final θ_n,
counted at L(θ_{n-1}) (the objective it improves on) when its M-step kept the guarantee.
The run returns the candidate with the highest objective (the later one when two are
equal within round-off): θ_n in an ordinary run, or an earlier θ_j when the run, after
re-seeding, ended worse than θ_j. `EMResult.best_iteration` = j and
`EMResult.lower_bound` = its objective (history[j], or history[n-1] for θ_n).
"""

from __future__ import annotations

import math
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..exceptions import InvalidInputError
from ..io import register_record
from .callbacks import EMIteration, progress_bar
from .contract import NOTHING, ConvergenceWarning, EMFamily, ReseedWarning, StepInfo
from .sources import ChunkSource, _sum_in_order, threaded_imap


@dataclass(frozen=True)
class ChunkResult:
    """One chunk's E-step: statistics, summed objective, rows. Adds across chunks."""

    stats: Any
    objective: float
    rows: int

    def __add__(self, other: ChunkResult) -> ChunkResult:
        if other.rows == 0:
            return self
        if self.rows == 0:
            return other
        return ChunkResult(self.stats + other.stats, self.objective + other.objective,
                           self.rows + other.rows)


def _rows(chunk) -> int:
    if isinstance(chunk, ChunkSource):  # a minibatch on a cluster
        return chunk.n_samples
    return chunk.shape[0] if sp.issparse(chunk) else len(chunk)


def _chunk_e_step(family: EMFamily, config, params, state, chunk) -> ChunkResult:
    rows = _rows(chunk)
    if rows == 0:
        return ChunkResult(None, 0.0, 0)
    stats, objective = family.e_step(params, state, config, chunk)
    return ChunkResult(stats, float(objective), rows)


def e_pass(family: EMFamily, config, params, state, source: ChunkSource) -> ChunkResult:
    """One E-step over all chunks, summed in chunk order (independent of the threads).

    The objective is the summed log-likelihood (or bound) plus log p(θ) for MAP-EM: MAP-EM
    is monotone in log p(X | θ) + log p(θ).
    """
    total = source.map_reduce(partial(_chunk_e_step, family, config, params, state))
    if total.rows == 0:
        raise InvalidInputError("the data has no rows.")
    if family.log_prior is not None:
        total = ChunkResult(total.stats, total.objective + family.log_prior(params, config),
                            total.rows)
    return total


def monotone_tolerance(objective: float, dtype) -> float:
    """The round-off allowed in a decrease of the mean objective."""
    rtol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-9
    return rtol * max(1.0, abs(objective))


@dataclass
class EMResult:
    """The outcome of one run: the returned parameters are those after `best_iteration`
    M-steps (see the module's docstring), `lower_bound` their recorded objective; history,
    n_iter, converged and stop_reason describe the run itself."""

    params: Any
    state: Any = None
    history: list[float] = field(default_factory=list)
    converged: bool = False
    n_iter: int = 0
    stop_reason: str = "max_iter"  # max_iter | converged | max_time | interrupted | callback
    best_iteration: int = 0
    lower_bound: float = -math.inf


@dataclass(frozen=True)
class Iterate:
    """The parameters (and EM state) after `index` M-steps of a run, and their mean
    objective."""

    index: int
    objective: float
    params: Any
    state: Any


def better_iterate(best: Iterate | None, candidate: Iterate, dtype) -> Iterate:
    """The better of two complete iterates by mean objective; `candidate` (the later one)
    unless `best` beats it by more than round-off."""
    if best is None:
        return candidate
    if candidate.objective >= best.objective - monotone_tolerance(best.objective, dtype):
        return candidate
    return best


def returned_iterate(best: Iterate | None, last: Iterate | None, params, state,
                     info: StepInfo, dtype) -> Iterate:
    """What a run returns: the best of the candidates `best`, the last evaluated iterate
    `last` (θ_{n-1}) and the final parameters (θ_n, from the M-step that reported `info`).

    θ_n counts at last.objective when its M-step kept EM's guarantee; after a re-seeding
    M-step its objective is unknown and `last` is the candidate instead. No iteration
    (max_iter=0, or Ctrl-C in the first): the starting parameters, objective -inf.
    """
    if last is None:
        return Iterate(0, -math.inf, params, state)
    if info.reseeded:
        return better_iterate(best, last, dtype)
    return better_iterate(best, Iterate(last.index + 1, last.objective, params, state), dtype)


def _announce(info: StepInfo, stacklevel: int) -> bool:
    """Warn the family's re-seeding message at the caller `stacklevel` frames up (the user's
    call to fit or partial_fit); True when components were re-seeded."""
    if info.reseeded:
        warnings.warn(info.message or f"re-seeded components {list(info.reseeded)}.",
                      ReseedWarning, stacklevel=stacklevel)
    return bool(info.reseeded)


def _check_objective(family: EMFamily, it: int, prev: float, value: float, dtype,
                     guard: bool, slack: float = 0.0) -> bool:
    """Raise on a non-finite objective; warn when it fell from `prev` by more than round-off
    plus `slack` (what the M-step between them declared it may lose, per row), and return
    whether it did (always False when not `guard`)."""
    if not math.isfinite(value):
        raise FloatingPointError(
            f"EM produced a non-finite {family.objective_name} at iteration {it}. "
            f"{family.remedy[:1].upper()}{family.remedy[1:]}.")
    fell = guard and prev - value > monotone_tolerance(value, dtype) + slack
    if fell:
        warnings.warn(
            f"EM {family.objective_name} decreased at iteration {it}: {prev:.10g} -> "
            f"{value:.10g}, but {family.never_decreases}: this signals a numerical failure "
            f"({family.remedy}).",
            ConvergenceWarning, stacklevel=5)  # < run_em < fit_em < fit < user
    return fell


def run_em(family: EMFamily, config, source: ChunkSource, params, state, *, tol: float,
           max_iter: int, max_time: float | None = None, callbacks=(),
           progress: float | None = None, desc: str = "EM", model=None,
           bound: float = -math.inf) -> EMResult:
    """Iterate E and M steps from (params, state) until the mean objective changes by < tol,
    and return the best complete iterate (see the module's docstring).

    progress : seconds before a progress bar appears on stderr, or None for none.
    bound : the mean objective the run continues from (a warm start's: that of the iterate
        before `params`, whose M-step gave them): the first iteration's change is measured
        from it, so repeated short warm fits converge. The guard starts with this run's own
        iterations (a warm start may see other data).
    """
    result = EMResult(params, state)
    start = time.perf_counter()
    deadline = None if max_time is None else start + max_time
    prev, info, last, best = bound, NOTHING, None, None
    with progress_bar(max_iter, desc, progress) as bar:
        for it in range(1, max_iter + 1):
            try:
                total = e_pass(family, config, params, state, source)
                new_params, new_state, new_info = family.m_step(total.stats, params, state,
                                                                config)
            except KeyboardInterrupt:
                warnings.warn(
                    f"EM interrupted during iteration {it}; keeping the best parameters of "
                    "the complete iterations (converged_=False).", ConvergenceWarning,
                    stacklevel=4)
                result.stop_reason = "interrupted"
                break
            value = total.objective / total.rows
            fell = _check_objective(family, it, prev, value, source.dtype,
                                    guard=last is not None and not info.reseeded,
                                    slack=info.slack / total.rows)
            if last is not None and (info.reseeded or fell):
                best = better_iterate(best, last, source.dtype)  # a candidate: see above
            last = Iterate(it - 1, value, params, state)
            _announce(new_info, stacklevel=5)  # run_em < fit_em < fit < user
            change, prev = value - prev, value
            params, state, info = new_params, new_state, new_info
            result.n_iter = it
            result.history.append(value)
            step = EMIteration(it, value, change, params, time.perf_counter() - start, model,
                               tuple(result.history), source.dtype, state)
            if _after_iteration(result, bar, step, callbacks, tol, deadline,
                                reseeded=bool(info.reseeded)):
                break
    chosen = returned_iterate(best, last, params, state, info, source.dtype)
    result.params, result.state = chosen.params, chosen.state
    result.best_iteration, result.lower_bound = chosen.index, chosen.objective
    return result


def _after_iteration(result: EMResult, bar, step: EMIteration, callbacks, tol: float,
                     deadline: float | None, *, reseeded: bool) -> bool:
    """The progress bar, the callbacks and the stopping rules after one iteration (the
    max_time `deadline` on time.perf_counter's clock, or None); True (with
    result.stop_reason and result.converged set) when the run stops here."""
    bar.update(1)
    bar.set_postfix(objective=f"{step.objective:.6g}", change=f"{step.change:.2g}")
    if any(cb(step) is True for cb in callbacks):
        result.stop_reason = "callback"
        return True
    if abs(step.change) < tol and not reseeded:
        result.converged, result.stop_reason = True, "converged"
        return True
    if deadline is not None and time.perf_counter() > deadline:  # callbacks count too
        result.stop_reason = "max_time"
        return True
    return False


def fit_em(family: EMFamily, config, source: ChunkSource, *, n_init: int,
           rng: np.random.Generator, init=None, bound: float = -math.inf,
           max_init_rows: int = 100_000, **loop) -> EMResult:
    """Run EM from `n_init` initializations (or once from `init` = (params, state), continuing
    from the mean objective `bound`; see `run_em`) and keep the run whose returned iterate
    has the highest mean objective (`EMResult.lower_bound`)."""
    runs = 1 if init is not None else n_init
    options = dict(loop, bound=bound if init is not None else -math.inf)
    starts = [init] if init is not None else _initializations(family, config, source, rng,
                                                                max_init_rows, runs)
    if source.concurrent_restarts and runs > 1:
        results = _concurrent_runs(family, config, source, list(starts), options)
    else:
        results = []
        for restart, (params, state) in enumerate(starts):
            results.append(run_em(family, config, source, params, state,
                                  desc=_run_name(restart, runs), **options))
            if results[-1].stop_reason == "interrupted":
                break
    best = max(results, key=lambda result: result.lower_bound)  # the first of equals
    if best.stop_reason == "max_iter":
        warnings.warn(  # scikit-learn's words after ours, for users who search for them
            f"EM did not converge in max_iter={loop['max_iter']} iterations (tol={loop['tol']}). "
            "Best performing initialization did not converge. Try different init parameters, "
            "or increase max_iter, tol, or check for degenerate data.",
            ConvergenceWarning, stacklevel=3)
    elif best.stop_reason == "max_time":
        warnings.warn(
            f"EM stopped at the max_time budget after {best.n_iter} iterations, before "
            "converging.", ConvergenceWarning, stacklevel=3)
    return best


def _initializations(family: EMFamily, config, source: ChunkSource, rng, max_init_rows: int,
                     runs: int):
    """The (params, state) each restart starts from, drawn in restart order from `rng`."""
    for restart in range(runs):
        yield family.init(source.init_sample(max_init_rows, rng), rng, config, restart)


def _run_name(restart: int, runs: int) -> str:
    return f"EM {restart + 1}/{runs}" if runs > 1 else "EM"


def _concurrent_runs(family: EMFamily, config, source: ChunkSource, starts: list,
                     options: dict) -> list[EMResult]:
    """Every restart's run at once, each on its own thread: for a source whose E-steps run
    elsewhere (a Dask cluster), their tasks interleave on the workers. The starts were drawn
    in restart order, so each run is the one a sequential fit would make."""
    def run(restart: int, start) -> EMResult:
        return run_em(family, config, source, *start, desc=_run_name(restart, len(starts)),
                      **options)

    with ThreadPoolExecutor(len(starts)) as pool:
        return list(pool.map(run, range(len(starts)), starts))


@register_record
@dataclass(frozen=True)
class OnlineState:
    """Running statistics of online EM (per-row averages), saved with the model."""

    stats: Any = None
    n_updates: int = 0
    n_seen: int = 0


def batch_e_step(family: EMFamily, config, params, state, X, split_rows: int | None = None):
    """The E-step of one batch X : (n_batch, D) (or a ChunkSource of its blocks on a
    cluster: its map_reduce): (stats, summed objective). With
    `split_rows`, a batch of at least twice that many rows is cut into blocks of
    `split_rows` rows whose E-steps run on the thread pool and are summed in order (the
    blocks, hence the result, do not depend on the number of threads): for families whose
    rows are costly, e.g. LDA's documents."""
    step = partial(_chunk_e_step, family, config, params, state)
    if isinstance(X, ChunkSource):  # a minibatch whose blocks live on a cluster
        total = X.map_reduce(step)
        return total.stats, total.objective
    rows = _rows(X)
    if split_rows is None or rows < 2 * split_rows:
        return family.e_step(params, state, config, X)
    blocks = (X[start:start + split_rows] for start in range(0, rows, split_rows))
    total = _sum_in_order(threaded_imap(step, blocks))
    return total.stats, total.objective


def online_em_step(family: EMFamily, config, params, state, online: OnlineState, X, *,
                   learning_decay: float, learning_offset: float,
                   total_rows: int | None = None, stacklevel: int = 4,
                   split_rows: int | None = None, in_place: bool = False):
    """One step of online (stochastic) EM on a batch X : (n_batch, D).

    s_t = (1 - ρ_t) s_{t-1} + ρ_t s̄(batch), ρ_t = (t + τ)^(-κ), with s̄ the per-row average
    of the batch statistics; the M-step sees s_t scaled to `total_rows` (the size of the
    corpus the batches are drawn from, as in Hoffman, Blei & Bach's online variational
    Bayes: λ = (1 - ρ) λ + ρ (η + D s̄)), or by default to the number of rows seen;
    split_rows : see `batch_e_step`; in_place : update s_{t-1}'s arrays in place (they must
    be the caller's own: `owned_copy`), saving four (K, V)-sized temporaries per step.
    Returns (params, state, online, mean objective of the batch under the old params).
    """
    rows = _rows(X)
    stats, total = batch_e_step(family, config, params, state, X, split_rows)
    if online.stats is None:
        running = stats.scaled(1.0 / rows)
    else:
        rho = (online.n_updates + learning_offset) ** (-learning_decay)
        blend = _blend_in_place if in_place else _blend
        running = blend(online.stats, stats, 1.0 - rho, rho / rows)
    n_seen = online.n_seen + rows
    params, state, info = family.m_step(running.scaled(total_rows or n_seen), params, state,
                                        config)
    _announce(info, stacklevel=stacklevel)  # online_em_step < partial_fit < user
    return params, state, OnlineState(running, online.n_updates + 1, n_seen), float(total) / rows


def _blend(running, batch, keep: float, weight: float):
    """keep * running + weight * batch (new statistics)."""
    return running.scaled(keep) + batch.scaled(weight)


def _blend_in_place(running, batch, keep: float, weight: float):
    """keep * running + weight * batch, the array fields of `running` (owned:
    `owned_copy`) updated in place (one temporary per field, not four)."""
    fields = {}
    for name in running.additive:
        mine, theirs = getattr(running, name), getattr(batch, name)
        if (isinstance(mine, np.ndarray) and np.shape(theirs) == mine.shape
                and np.result_type(mine, theirs) == mine.dtype):
            mine *= keep
            mine += weight * theirs
            fields[name] = mine
        else:
            fields[name] = keep * mine + weight * theirs
    return replace(running, **fields)


def owned_copy(stats):
    """stats with every additive array field copied: running statistics that
    `online_em_step(..., in_place=True)` may update without touching the caller's."""
    return replace(stats, **{name: np.array(getattr(stats, name), copy=True)
                             for name in stats.additive
                             if isinstance(getattr(stats, name), np.ndarray)})


__all__ = ["ChunkResult", "EMResult", "Iterate", "OnlineState", "batch_e_step", "better_iterate",
           "e_pass", "fit_em", "monotone_tolerance", "online_em_step", "owned_copy",
           "returned_iterate", "run_em"]
