"""What a fit reports while it runs: the per-iteration record callbacks receive, the
Checkpoint callback, and the progress bar."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..exceptions import InvalidParameterError


@dataclass
class EMIteration:
    """What a callback receives after each iteration."""

    iteration: int
    log_likelihood: float  # mean objective per row, at the parameters before this M-step
    change: float
    params: Any  # after this M-step
    elapsed: float
    model: Any = None
    history: tuple[float, ...] = ()
    dtype: Any = np.float64
    state: Any = None  # the family's EM state after this M-step

    @property
    def objective(self) -> float:
        """The mean objective (log-likelihood, or a bound for variational EM)."""
        return self.log_likelihood


class Checkpoint:
    """Callback that saves the model being fitted every `every` iterations (atomically, via
    `model.save`), so a long fit can be resumed: `latentkit.load(path)` then
    `set_params(warm_start=True)` and `fit` again.

        GaussianMixture(..., callbacks=[Checkpoint("run/ckpt.npz", every=10)]).fit(X)
    """

    def __init__(self, path, every: int = 10):
        if not isinstance(every, int) or every < 1:
            raise InvalidParameterError(
                f"Checkpoint every must be a positive integer; got {every!r}.")
        self.path, self.every = path, every

    def __call__(self, info: EMIteration) -> None:
        if info.iteration % self.every:
            return
        model = info.model
        model._store_fit(info.params, info.state, info.dtype, converged=False,
                         n_iter=info.iteration, history=info.history, stop_reason="checkpoint")
        with warnings.catch_warnings():  # callbacks (this one included) are never saved
            warnings.filterwarnings("ignore", message=".*'callbacks'", category=UserWarning)
            model.save(self.path)


def progress_bar(total: int, desc: str, delay: float | None):
    """A tqdm bar on stderr that appears after `delay` seconds, or a disabled one (None)."""
    return tqdm(total=total, desc=desc, disable=delay is None, leave=False, file=sys.stderr,
                delay=delay or 0.0)


__all__ = ["Checkpoint", "EMIteration", "progress_bar"]
