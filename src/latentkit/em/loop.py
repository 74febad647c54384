"""The EM loop over a family's pure functions (contract.py) and a data source (sources.py).

It owns everything a family should not: one E-pass over the chunks through the source's
map-reduce seam, the objective per iteration, convergence on the change of the mean
objective (`tol`, `max_iter`), the monotonicity guard, re-seeding notices, `n_init`
restarts keeping the best, warm starts, callbacks, the progress bar, the `max_time` budget,
Ctrl-C, and online EM. It knows no family by name.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..exceptions import InvalidInputError
from ..io import register_record
from .callbacks import EMIteration, progress_bar
from .contract import ConvergenceWarning, EMFamily, ReseedWarning, StepInfo
from .sources import ChunkSource


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
    params: Any
    state: Any = None
    history: list[float] = field(default_factory=list)
    converged: bool = False
    n_iter: int = 0
    stop_reason: str = "max_iter"  # max_iter | converged | max_time | interrupted | callback

    @property
    def lower_bound(self) -> float:
        return self.history[-1] if self.history else -math.inf


def _announce(info: StepInfo, stacklevel: int) -> bool:
    """Warn the family's re-seeding message at the caller `stacklevel` frames up (the user's
    call to fit or partial_fit); True when components were re-seeded."""
    if info.reseeded:
        warnings.warn(info.message or f"re-seeded components {list(info.reseeded)}.",
                      ReseedWarning, stacklevel=stacklevel)
    return bool(info.reseeded)


def _check_objective(family: EMFamily, it: int, prev: float, value: float, dtype,
                     guard: bool, slack: float = 0.0) -> None:
    """Raise on a non-finite objective; warn when it fell from `prev` by more than round-off
    plus `slack` (what the M-step between them declared it may lose, per row)."""
    if not math.isfinite(value):
        raise FloatingPointError(
            f"EM produced a non-finite {family.objective_name} at iteration {it}. "
            f"{family.remedy[:1].upper()}{family.remedy[1:]}.")
    if guard and prev - value > monotone_tolerance(value, dtype) + slack:
        warnings.warn(
            f"EM {family.objective_name} decreased at iteration {it}: {prev:.10g} -> "
            f"{value:.10g}, but {family.never_decreases}: this signals a numerical failure "
            f"({family.remedy}).",
            ConvergenceWarning, stacklevel=5)  # < run_em < fit_em < fit < user


def run_em(family: EMFamily, config, source: ChunkSource, params, state, *, tol: float,
           max_iter: int, max_time: float | None = None, callbacks=(),
           progress: float | None = None, desc: str = "EM", model=None,
           bound: float = -math.inf) -> EMResult:
    """Iterate E and M steps from (params, state) until the mean objective changes by < tol.

    progress : seconds before a progress bar appears on stderr, or None for none.
    bound : the mean objective the run continues from (a warm start's stored lower bound,
        reached at the E-step before the M-step that gave `params`): the first iteration's
        change is measured from it, so repeated short warm fits converge. The guard starts
        with this run's own iterations (a warm start may see other data).
    """
    result = EMResult(params, state)
    start = time.perf_counter()
    prev, reseeded, slack = bound, False, 0.0
    with progress_bar(max_iter, desc, progress) as bar:
        for it in range(1, max_iter + 1):
            try:
                total = e_pass(family, config, params, state, source)
                new_params, new_state, info = family.m_step(total.stats, params, state, config)
            except KeyboardInterrupt:
                warnings.warn(
                    f"EM interrupted during iteration {it}; keeping the parameters of the last "
                    "complete iteration (converged_=False).", ConvergenceWarning, stacklevel=4)
                result.stop_reason = "interrupted"
                break
            value = total.objective / total.rows
            _check_objective(family, it, prev, value, source.dtype,
                             guard=it > 1 and not reseeded, slack=slack)
            reseeded = _announce(info, stacklevel=5)  # run_em < fit_em < fit < user
            slack = info.slack / total.rows
            change, prev = value - prev, value
            params, state = new_params, new_state
            result.params, result.state, result.n_iter = params, state, it
            result.history.append(value)
            bar.update(1)
            bar.set_postfix(objective=f"{value:.6g}", change=f"{change:.2g}")
            step = EMIteration(it, value, change, params, time.perf_counter() - start, model,
                               tuple(result.history), source.dtype, state)
            if any(cb(step) is True for cb in callbacks):
                result.stop_reason = "callback"
                break
            if abs(change) < tol and not reseeded:
                result.converged, result.stop_reason = True, "converged"
                break
            if max_time is not None and time.perf_counter() - start > max_time:
                result.stop_reason = "max_time"
                break
    return result


def fit_em(family: EMFamily, config, source: ChunkSource, *, n_init: int,
           rng: np.random.Generator, init=None, bound: float = -math.inf,
           max_init_rows: int = 100_000, **loop) -> EMResult:
    """Run EM from `n_init` initializations (or once from `init` = (params, state), continuing
    from its mean objective `bound`; see `run_em`) and keep the run with the highest final
    mean objective."""
    best = None
    runs = 1 if init is not None else n_init
    for restart in range(runs):
        if init is not None:
            params, state = init
        else:
            params, state = family.init(source.init_sample(max_init_rows, rng), rng, config,
                                        restart)
        desc = f"EM {restart + 1}/{runs}" if runs > 1 else "EM"
        result = run_em(family, config, source, params, state, desc=desc,
                        bound=bound if init is not None else -math.inf, **loop)
        if best is None or result.lower_bound > best.lower_bound:
            best = result
        if result.stop_reason == "interrupted":
            break
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


@register_record
@dataclass(frozen=True)
class OnlineState:
    """Running statistics of online EM (per-row averages), saved with the model."""

    stats: Any = None
    n_updates: int = 0
    n_seen: int = 0


def online_em_step(family: EMFamily, config, params, state, online: OnlineState, X, *,
                   learning_decay: float, learning_offset: float):
    """One step of online (stochastic) EM on a batch X : (n_batch, D).

    s_t = (1 - ρ_t) s_{t-1} + ρ_t s̄(batch), ρ_t = (t + τ)^(-κ), with s̄ the per-row average
    of the batch statistics; the M-step sees s_t scaled back to the number of rows seen.
    Returns (params, state, online, mean objective of the batch under the old params).
    """
    rows = _rows(X)
    stats, total = family.e_step(params, state, config, X)
    batch = stats.scaled(1.0 / rows)
    if online.stats is None:
        running = batch
    else:
        rho = (online.n_updates + learning_offset) ** (-learning_decay)
        running = online.stats.scaled(1.0 - rho) + batch.scaled(rho)
    n_seen = online.n_seen + rows
    params, state, info = family.m_step(running.scaled(n_seen), params, state, config)
    _announce(info, stacklevel=4)  # online_em_step < partial_fit < user
    return params, state, OnlineState(running, online.n_updates + 1, n_seen), float(total) / rows


__all__ = ["ChunkResult", "EMResult", "OnlineState", "e_pass", "fit_em", "monotone_tolerance",
           "online_em_step", "run_em"]
