"""Figures of a linear dynamical system: series with filtered / smoothed estimates and their
95% bands, and the figures `latentkit fit lds` / `report` draw for a fitted model (taking
the `FigureJob` of `latentkit.registry`). Agg-only (no pyplot)."""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054  # the 97.5% quantile of N(0, 1)


def plot_estimates(ax, time, observed, estimates: dict, *, truth=None, title=None,
                   ylabel=None, missing=None):
    """One series with estimates and bands.

    time : (T,); observed : (T,) with NaN gaps; estimates : label -> (mean (T,), sd (T,));
    truth : (T,) or None; missing : (T,) bool shading the blanked steps.
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
    ax.legend(loc="best", fontsize="small")
    return ax


def signal_moments(model, mean, cov):
    """Moments of the noise-free signal C z_t + d from state moments (T, n), (T, n, n):
    (T, p) means and (T, p) standard deviations."""
    C, d = np.asarray(model.observation_matrix_, float), np.asarray(model.observation_offset_,
                                                                   float)
    signal = mean @ C.T + d
    var = np.einsum("pi,tij,pj->tp", C, cov, C)
    return signal, np.sqrt(np.clip(var, 0, None))


def lds_figures(job) -> list:
    """The command line's figures of a fitted LinearDynamicalSystem on one sequence: the
    first (up to 4) observed series with the filtered and smoothed signal C z_t + d and 95%
    bands, and the EM log-likelihood curve."""
    from matplotlib.figure import Figure

    from latentkit import plot

    model, data, out = job.model, job.data, job.out_dir
    X = np.asarray(data.X, dtype=np.float64)
    filtered, smoothed = model.filter(X), model.smooth(X)
    columns = min(4, X.shape[1])
    figure = Figure(figsize=(7.5, 2.4 * columns + 0.6), layout="constrained")
    axes = figure.subplots(columns, 1, sharex=True, squeeze=False)[:, 0]
    # the rows' dates (--time-col) or numbers (years) on the time axis, else the step number
    labelled = (data.index is not None and data.index.nlevels == 1
                and data.index.dtype.kind in "iufM")
    time = data.index.to_numpy() if labelled else np.arange(len(X))
    f_mean, f_sd = signal_moments(model, filtered.mean, filtered.cov)
    s_mean, s_sd = signal_moments(model, smoothed.mean, smoothed.cov)
    names = data.column_names
    for j, ax in enumerate(axes):
        plot_estimates(ax, time, X[:, j], {"filtered (95%)": (f_mean[:, j], f_sd[:, j]),
                                           "smoothed (95%)": (s_mean[:, j], s_sd[:, j])},
                       ylabel=names[j], missing=np.isnan(X[:, j]))
    axes[-1].set_xlabel(str(data.index.name or "time") if labelled else "time step")
    figure.suptitle(f"LDS (state_dim={model.state_dim_}): filtered and smoothed signal")
    figures = [(plot.save_figure(figure, out / "signal.png"),
                "observations with the filtered and smoothed signal C z_t + d, 95% bands")]
    history = getattr(model, "history_", None)
    if history is not None and len(history):
        ax = plot.plot_history(history, ylabel="mean log-likelihood per time step")
        figures.append((plot.save_figure(ax, out / "history.png"),
                        "EM log-likelihood per iteration"))
    return figures
