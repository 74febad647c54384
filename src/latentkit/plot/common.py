"""Figures every model family shares in `latentkit fit` and `report`: the model-selection
criterion curve and the EM objective per iteration. Each takes the `FigureJob` of
`latentkit.registry` and returns [(png path, caption)]."""

from __future__ import annotations

import numpy as np

from ._figure import save_figure
from .curves import plot_criterion_curve, plot_history


def criterion_figure(job) -> list:
    """The criterion curve when the model's size was chosen automatically, else []."""
    if job.selection is None:
        return []
    path = save_figure(plot_criterion_curve(job.selection.table, x=job.selection.param),
                       job.out_dir / "criterion.png")
    return [(path, f"model-selection criterion against {job.selection.param}")]


def history_figure(job, *, caption: str = "EM log-likelihood per iteration",
                   ylabel: str = "mean log-likelihood per row", min_length: int = 1,
                   xlabel: str = "EM iteration", title: str | None = None) -> list:
    """The fitted model's `history_` (the EM objective per iteration) when it has at least
    `min_length` entries, else []."""
    history = getattr(job.model, "history_", None)
    if history is None or len(history) < min_length:
        return []
    ax = plot_history(history, ylabel=ylabel, xlabel=xlabel, title=title)
    return [(save_figure(ax, job.out_dir / "history.png"), caption)]


def complete_rows(X: np.ndarray) -> np.ndarray:
    """The rows of X without NaN."""
    return X[~np.isnan(X).any(axis=1)]
