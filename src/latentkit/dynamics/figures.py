"""Figures of a linear dynamical system: series with filtered / smoothed estimates and their
95% bands, and the figures `latentkit fit lds` / `report` draw for a fitted model (taking
the `FigureJob` of `latentkit.registry`). Agg-only (no pyplot)."""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054  # the 97.5% quantile of N(0, 1)


def plot_estimates(ax, time, observed, estimates: dict, *, truth=None, title=None,
                   ylabel=None, missing=None, legend=True):
    """One series with estimates and bands.

    time : (T,) numbers or dates (datetime64); observed : (T,) with NaN gaps; estimates :
    label -> (mean (T,), sd (T,)); truth : (T,) or None; missing : (T,) bool shading the
    blanked steps; legend : draw the Axes' legend (False when the figure gets one legend for
    all its Axes, see `figure_legend`).
    """
    colors = {"filtered": "tab:orange", "smoothed": "tab:blue"}
    if missing is not None and missing.any():
        edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(int), [0]])))
        for start, stop in zip(edges[::2], edges[1::2]):
            ax.axvspan(time[start], time[stop - 1], color="0.9", label="missing"
                       if start == edges[0] else None)
    ax.plot(time, observed, "o", color="0.35", markersize=2.5, label="observed")
    if truth is not None:
        ax.plot(time, truth, color="black", linewidth=1.2, label="truth")
    for label, (mean, sd) in estimates.items():
        color = colors.get(label.split()[0])
        line, = ax.plot(time, mean, color=color, linewidth=1.5, label=label)
        ax.fill_between(time, mean - Z95 * sd, mean + Z95 * sd, color=line.get_color(),
                        alpha=0.18, linewidth=0)
    ax.set_title(title or "")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(loc="best", fontsize="small")
    return ax


def figure_legend(figure, axes) -> None:
    """One legend for the whole figure, below its Axes: each label drawn on any of `axes`
    once (the first handle that has it)."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), loc="outside lower center",
                      ncols=min(4, len(entries)), fontsize="small")


def time_axis(index, n_steps: int) -> tuple[np.ndarray, str | None]:
    """(time (T,), axis label) of a sequence's rows: the dates of a DatetimeIndex (or a
    PeriodIndex, as its start dates) as datetime64, the numbers of a numeric index (years),
    else the step numbers 0..T-1 (label None: "time step")."""
    import pandas as pd

    if index is None or index.nlevels != 1 or len(index) != n_steps:
        return np.arange(n_steps), None
    name = str(index.name) if index.name is not None else "time"
    if isinstance(index, pd.PeriodIndex):
        index = index.to_timestamp()
    if isinstance(index, pd.DatetimeIndex):
        return index.tz_localize(None).to_numpy(dtype="datetime64[ns]"), name
    if index.dtype.kind in "iuf":
        return index.to_numpy(dtype=np.float64), name
    return np.arange(n_steps), None


def _date_axis(ax) -> None:
    """Concise date tick labels (years, then months, days... as the span needs)."""
    from matplotlib import dates

    locator = dates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))


def signal_moments(model, mean, cov):
    """Moments of the noise-free signal C z_t + d from state moments (T, n), (T, n, n):
    (T, p) means and (T, p) standard deviations."""
    C, d = np.asarray(model.observation_matrix_, float), np.asarray(model.observation_offset_,
                                                                   float)
    signal = mean @ C.T + d
    var = np.einsum("pi,tij,pj->tp", C, cov, C)
    return signal, np.sqrt(np.clip(var, 0, None))


def signal_figure(model, X, time, names, *, time_label=None):
    """The first (up to 4) observed series of X (T, p) against `time` (T,) (numbers or
    datetime64), each with the filtered and smoothed signal C z_t + d and 95% bands, and one
    legend for the figure. Returns the Figure."""
    from matplotlib.figure import Figure

    filtered, smoothed = model.filter(X), model.smooth(X)
    columns = min(4, X.shape[1])
    figure = Figure(figsize=(7.5, 2.4 * columns + 1.0), layout="constrained")
    axes = figure.subplots(columns, 1, sharex=True, squeeze=False)[:, 0]
    f_mean, f_sd = signal_moments(model, filtered.mean, filtered.cov)
    s_mean, s_sd = signal_moments(model, smoothed.mean, smoothed.cov)
    for j, ax in enumerate(axes):
        plot_estimates(ax, time, X[:, j], {"filtered (95%)": (f_mean[:, j], f_sd[:, j]),
                                           "smoothed (95%)": (s_mean[:, j], s_sd[:, j])},
                       ylabel=names[j], missing=np.isnan(X[:, j]), legend=False)
    if np.issubdtype(np.asarray(time).dtype, np.datetime64):
        _date_axis(axes[-1])
    axes[-1].set_xlabel(time_label or "time step")
    figure_legend(figure, axes)
    figure.suptitle(f"LDS (state_dim={model.state_dim_}): filtered and smoothed signal")
    return figure


def lds_figures(job) -> list:
    """The command line's figures of a fitted LinearDynamicalSystem on one sequence: the
    first (up to 4) observed series with the filtered and smoothed signal C z_t + d and 95%
    bands against the rows' dates (--time-col) or numbers (years), else the step number,
    and the EM log-likelihood curve."""
    from latentkit import plot

    model, data, out = job.model, job.data, job.out_dir
    X = np.asarray(data.X, dtype=np.float64)
    time, time_label = time_axis(data.index, len(X))
    figure = signal_figure(model, X, time, data.column_names, time_label=time_label)
    figures = [(plot.save_figure(figure, out / "signal.png"),
                "observations with the filtered and smoothed signal C z_t + d, 95% bands")]
    history = getattr(model, "history_", None)
    if history is not None and len(history):
        ax = plot.plot_history(history, ylabel="mean log-likelihood per time step")
        figures.append((plot.save_figure(ax, out / "history.png"),
                        "EM log-likelihood per iteration"))
    return figures


# -- the command line's tables ------------------------------------------------------------

#: the largest state dimension whose matrices A, Q and C are shown entry by entry
MAX_STATE_COLUMNS = 4
#: the most observed series the observation table lists
MAX_SERIES_ROWS = 30


def _matrix_columns(prefix: str, row, state_names) -> dict:
    """{prefix: value} for one state, else {f"{prefix} {z_j}": row[j]} per state j."""
    row = np.asarray(row, dtype=np.float64).ravel()
    if row.size == 1:
        return {prefix: float(row[0])}
    return {f"{prefix} {z}": float(v) for z, v in zip(state_names, row)}


def state_rows(A, b, Q) -> list[dict]:
    """One row per state z_i of z_t = A z_{t-1} + b + w_t, w_t ~ N(0, Q): its row of A and
    of Q (for at most MAX_STATE_COLUMNS states; else the diagonal of A), its offset b_i.

    A : (n, n); b : (n,); Q : (n, n).
    """
    n = len(b)
    state_names = [f"z{i + 1}" for i in range(n)]
    full = n <= MAX_STATE_COLUMNS
    rows = []
    for i, state in enumerate(state_names):
        row = {"state": state}
        row.update(_matrix_columns("A", A[i], state_names) if full
                   else {"A (diagonal)": float(A[i, i])})
        row["b"] = float(b[i])
        row.update(_matrix_columns("Q", Q[i], state_names) if full
                   else {"Q (variance)": float(Q[i, i])})
        rows.append(row)
    return rows


def observation_rows(C, d, R, names) -> list[dict]:
    """One row per observed series x_j of x_t = C z_t + d + v_t, v_t ~ N(0, R): its row of C
    (for at most MAX_STATE_COLUMNS states; else its norm), d_j and the noise variance R_jj;
    at most MAX_SERIES_ROWS rows.

    C : (p, n); d : (p,); R : (p, p); names : (p,) the series' names.
    """
    n = C.shape[1]
    state_names = [f"z{i + 1}" for i in range(n)]
    rows = []
    for j, name in enumerate(names[:MAX_SERIES_ROWS]):
        row = {"series": str(name)}
        row.update(_matrix_columns("C", C[j], state_names) if n <= MAX_STATE_COLUMNS
                   else {"|C row| (norm)": float(np.linalg.norm(C[j]))})
        row["d"] = float(d[j])
        row["R (noise variance)"] = float(R[j, j])
        rows.append(row)
    return rows


def lds_tables(job) -> list:
    """LinearDynamicalSystem: the state equation's A, b, Q (one row per state) with A's
    largest |eigenvalue| (how persistent the state is) in the caption, and the observation
    equation's C, d and noise variances (one row per series)."""
    model = job.model
    A, b, C, d, Q, R = (np.asarray(getattr(model, name + "_"), dtype=np.float64) for name in
                        ("transition_matrix", "transition_offset", "observation_matrix",
                         "observation_offset", "transition_covariance",
                         "observation_covariance"))
    radius = float(np.max(np.abs(np.linalg.eigvals(A))))
    from latentkit.registry import fitted_feature_names

    names = fitted_feature_names(model) or job.data.column_names
    if len(names) != len(d):
        names = [f"x{j + 1}" for j in range(len(d))]
    note = "" if len(d) <= MAX_SERIES_ROWS else f" (the first {MAX_SERIES_ROWS} of {len(d)})"
    return [(f"state equation z_t = A z_(t-1) + b + w_t, w_t ~ N(0, Q); largest |eigenvalue| "
             f"of A: {radius:.4g}", state_rows(A, b, Q)),
            (f"observation equation x_t = C z_t + d + v_t, v_t ~ N(0, R){note}",
             observation_rows(C, d, R, names))]
