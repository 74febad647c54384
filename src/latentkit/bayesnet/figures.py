"""Figures of discrete Bayesian networks: the CPT error per EM iteration (the demo) and the
figures `latentkit fit bayesnet` / `report` draw (taking the `FigureJob` of
`latentkit.registry`). Agg only."""

from __future__ import annotations

import numpy as np


def plot_cpt_error(largest, mean, ax=None, *, title=None):
    """The largest and the mean absolute CPT error (n_iter,) each per EM iteration, on a
    log scale."""
    from latentkit.plot._figure import new_axes

    ax = new_axes(ax)
    steps = np.arange(1, len(largest) + 1)
    ax.plot(steps, largest, marker="o", markersize=3, label="largest")
    ax.plot(steps, mean, marker="o", markersize=3, label="mean")
    ax.legend()
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("|CPT entry - truth|")
    ax.set_yscale("log")
    ax.set_title(title or "CPT error per EM iteration")
    return ax


def network_figures(job) -> list:
    """DiscreteBayesNet: the EM log-likelihood per iteration."""
    from latentkit.plot.common import history_figure

    return history_figure(job)
