"""Line figures: a model-selection criterion against the number of components, and the EM
objective per iteration.

Both draw on an optional `ax` (a new Agg figure when None) and return the Axes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.ticker import MaxNLocator

from ._figure import new_axes

#: candidate-count column names, in the order they are looked for
_X_NAMES = ("n_components", "candidate", "k", "K")
#: criterion column names -> (axis label, whether lower is better)
_CRITERIA = {
    "bic": ("BIC (lower is better)", True),
    "aic": ("AIC (lower is better)", True),
    "heldout": ("held-out mean log-likelihood (higher is better)", False),
    "heldout_log_likelihood": ("held-out mean log-likelihood (higher is better)", False),
    "criterion": ("criterion", True),
}


def table_columns(table) -> dict[str, list]:
    """{column name: values} of a ResultTable (`columns` + `column(name)`), a list of dict
    rows, or a mapping of column name -> values."""
    if isinstance(table, Mapping):
        return {name: list(values) for name, values in table.items()}
    if isinstance(table, list | tuple):
        names = list(dict.fromkeys(name for row in table for name in row))
        return {name: [row.get(name) for row in table] for name in names}
    names = getattr(table, "columns", None)
    if names is None:
        raise TypeError(f"expected a ResultTable, a list of dict rows or a mapping of columns; "
                        f"got {type(table).__name__}.")
    return {name: list(table.column(name)) for name in names}


def _pick(columns: dict, wanted, what: str) -> str:
    for name in wanted:
        if name in columns:
            return name
    raise ValueError(f"the table has no {what} column (looked for {', '.join(wanted)}); "
                     f"its columns are {', '.join(columns)}.")


def plot_criterion_curve(table, ax=None, *, criterion=None, lower_is_better=None, title=None,
                         x=None):
    """A model-selection criterion against the number of components, the best one marked.

    table : the `Selection.table` of `select_n_components` (or rows / columns holding a
        candidate count column and a criterion column: bic, aic or heldout).
    criterion : which column to draw (the first criterion column found when None).
    x : the candidate column, e.g. `Selection.param` (when None: n_components, candidate,
        k or K, the first found).
    lower_is_better : the direction of "best" (known for bic, aic, heldout).
    """
    columns = table_columns(table)
    x_name = _pick(columns, _X_NAMES if x is None else (x,), "number-of-components")
    y_name = criterion or _pick(columns, tuple(_CRITERIA), "criterion")
    if y_name not in columns:
        raise ValueError(f"the table has no column {y_name!r}; its columns are "
                         f"{', '.join(columns)}.")
    label, lower = _CRITERIA.get(y_name.lower(), (y_name, True))
    if lower_is_better is not None:
        lower = lower_is_better
    x = np.asarray(columns[x_name], dtype=np.float64)
    y = np.asarray(columns[y_name], dtype=np.float64)
    order = np.argsort(x)
    x, y = x[order], y[order]
    finite = np.isfinite(y)
    if not finite.any():
        raise ValueError(f"the {y_name} column holds no finite value.")
    best = int(np.flatnonzero(finite)[np.argmin(y[finite]) if lower
                                     else np.argmax(y[finite])])
    names = {"bic": "BIC", "aic": "AIC", "heldout": "held-out log-likelihood"}
    ax = new_axes(ax, figsize=(6.4, 4.4))
    ax.plot(x, y, marker="o", color="tab:blue", linewidth=1.8,
            label=names.get(y_name.lower(), y_name))
    ax.plot(x[best], y[best], marker="*", markersize=18, color="tab:red",
            markeredgecolor="black", linestyle="", zorder=3,
            label=f"best: K = {int(x[best])}")
    ax.axvline(x[best], color="tab:red", linestyle=":", linewidth=1.2, zorder=1)
    ax.set_xticks(x)
    ax.set_xlabel("number of components K" if x_name in _X_NAMES else x_name)
    ax.set_ylabel(label)
    ax.set_title(title or f"Model selection: {names.get(y_name.lower(), y_name)} vs K")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return ax


def plot_history(history, ax=None, *, title=None, ylabel="mean log-likelihood per row",
                 xlabel="EM iteration"):
    """The EM objective per iteration (a fitted model's `history_`).

    history : (n_iter,) values, or a mapping label -> (n_iter,) values to compare runs.
    The final value of each run is marked and written in the legend.
    """
    runs = dict(history) if isinstance(history, Mapping) else {None: history}
    ax = new_axes(ax, figsize=(6.4, 4.4))
    for label, values in runs.items():
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == 0:
            continue
        iterations = np.arange(1, values.size + 1)
        prefix = f"{label}: " if label is not None else ""
        line, = ax.plot(iterations, values, marker="o" if values.size <= 40 else None,
                        markersize=3.5, linewidth=1.6,
                        label=f"{prefix}{values.size} iterations, final {values[-1]:.4g}")
        ax.plot(iterations[-1], values[-1], marker="s", color=line.get_color(), markersize=7)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "EM convergence")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(loc="best", fontsize="small")
    return ax
