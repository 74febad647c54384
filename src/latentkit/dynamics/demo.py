"""The dynamics family's section of `latentkit demo`: the Nile local-level model (with a gap
of 20 missing years), a constant-velocity tracking example, and EM on US macroeconomic
series. The section is `(out_dir, progress, *, quick=False) -> latentkit.cli.report.Section`.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

#: Durbin & Koopman's maximum-likelihood estimates for the Nile local-level model
NILE_PUBLISHED = {"observation variance": 15099.0, "level variance": 1469.1}
NILE_GAP = (1941, 1960)  # the years blanked out as missing (inclusive)


def _nile(note_for):
    """(years, flow (100, 1), note): the Nile series, or a simulated local-level series
    with the published variances when the file is absent."""
    from latentkit.datasets import load_nile

    try:
        bunch = load_nile()
        return bunch.years, bunch.data, ""
    except FileNotFoundError as error:
        rng = np.random.default_rng(0)
        level = 1120 + np.cumsum(rng.normal(0, np.sqrt(1469.1), 100))
        flow = level + rng.normal(0, np.sqrt(15099.0), 100)
        return np.arange(1871, 1971), flow[:, None], note_for(
            error, "a simulated local-level series with the published variances")


def _nile_part(folder: Path, progress, quick: bool, note_for):
    from matplotlib.figure import Figure

    from latentkit import plot

    from .figures import figure_legend, plot_estimates
    from .lds import LinearDynamicalSystem

    years, flow, note = _nile(note_for)
    model = LinearDynamicalSystem.local_level(
        transition_covariance=1000.0, observation_covariance=10000.0, reg_covar=0.0,
        tol=1e-11, max_iter=5000, verbose=progress.verbose).fit(flow)
    gap = (years >= NILE_GAP[0]) & (years <= NILE_GAP[1])
    blanked = flow.copy()
    blanked[gap] = np.nan
    figure = Figure(figsize=(7.5, 6.4), layout="constrained")
    axes = figure.subplots(2, 1, sharex=True)
    for ax, series, title in ((axes[0], flow, "Nile flow: local-level model"),
                              (axes[1], blanked, f"the same with {NILE_GAP[0]}-"
                               f"{NILE_GAP[1]} blanked out as missing")):
        filtered, smoothed = model.filter(series), model.smooth(series)
        estimates = {"filtered level (95%)": (filtered.mean[:, 0],
                                              np.sqrt(filtered.cov[:, 0, 0])),
                     "smoothed level (95%)": (smoothed.mean[:, 0],
                                              np.sqrt(smoothed.cov[:, 0, 0]))}
        plot_estimates(ax, years, series[:, 0], estimates, title=title,
                       ylabel="flow (10^8 m^3)", missing=np.isnan(series[:, 0]), legend=False)
    axes[1].set_xlabel("year")
    figure_legend(figure, axes)  # one legend for both panels
    figures = [(plot.save_figure(figure, folder / "nile.png"),
                "Nile flow with the filtered and smoothed level and 95% bands; below, the "
                f"years {NILE_GAP[0]}-{NILE_GAP[1]} are missing: the filter predicts "
                "through the gap and the smoother interpolates it")]
    fitted = {"observation variance": float(model.observation_covariance_[0, 0]),
              "level variance": float(model.transition_covariance_[0, 0])}
    rows = [{"parameter": key, "EM estimate": fitted[key], "Durbin & Koopman": value,
             "relative difference": fitted[key] / value - 1}
            for key, value in NILE_PUBLISHED.items()]
    rows.append({"parameter": "EM iterations", "EM estimate": int(model.n_iter_),
                 "Durbin & Koopman": "", "relative difference": ""})
    return figures, rows, note


def constant_velocity_params(dt: float = 1.0, accel_sd: float = 0.3, obs_sd: float = 6.0):
    """A 2-D constant-velocity model: state (x, y, vx, vy), position observed with noise,
    white-noise acceleration (Q of the discretized continuous model)."""
    from ._params import LDSParams

    F1 = np.array([[1.0, dt], [0.0, 1.0]])
    Q1 = accel_sd**2 * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    order = [0, 2, 1, 3]  # (x, vx, y, vy) blocks -> (x, y, vx, vy)
    A = np.kron(np.eye(2), F1)[np.ix_(order, order)]
    Q = np.kron(np.eye(2), Q1)[np.ix_(order, order)]
    C = np.hstack([np.eye(2), np.zeros((2, 2))])
    return LDSParams(A, np.zeros(4), C, np.zeros(2), Q, obs_sd**2 * np.eye(2),
                     np.array([0.0, 0.0, 1.0, 0.5]), np.diag([1.0, 1.0, 0.25, 0.25]))


def _tracking_part(folder: Path, quick: bool):
    from matplotlib.figure import Figure

    from latentkit import plot

    from .kalman import kalman_filter, rts_smoother, simulate

    params = constant_velocity_params()
    X, Z = simulate(params, 50 if quick else 80, random_state=3)
    filtered, smoothed = kalman_filter(X, params), rts_smoother(X, params)
    figure = Figure(figsize=(6.8, 5.6), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(Z[:, 0], Z[:, 1], color="black", linewidth=1.4, label="truth")
    ax.plot(X[:, 0], X[:, 1], "o", color="0.45", markersize=3, label="noisy observations")
    ax.plot(filtered.mean[:, 0], filtered.mean[:, 1], color="tab:orange", label="filter")
    ax.plot(smoothed.mean[:, 0], smoothed.mean[:, 1], color="tab:blue", label="smoother")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("constant-velocity tracking")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")

    def rmse(estimate):
        return float(np.sqrt(np.mean(np.sum((estimate - Z[:, :2]) ** 2, axis=1))))

    rows = [{"position estimate": "observations", "RMSE": rmse(X)},
            {"position estimate": "filter", "RMSE": rmse(filtered.mean[:, :2])},
            {"position estimate": "smoother", "RMSE": rmse(smoothed.mean[:, :2])}]
    return [(plot.save_figure(figure, folder / "tracking.png"),
             "a target moving with nearly constant velocity: truth, noisy position "
             "measurements, filtered and smoothed positions")], rows


MACRO_COLUMNS = ("realgdp", "realcons", "realinv", "unemp", "infl", "tbilrate")


def _macro(note_for):
    """(X standardized (T, 6), names, note): quarterly growth of real GDP, consumption and
    investment (400 Δlog), unemployment, inflation and the T-bill rate, or a simulated
    system when the file is absent."""
    from latentkit.datasets import load_macrodata

    try:
        bunch = load_macrodata()
    except FileNotFoundError as error:
        from .kalman import simulate

        X, _ = simulate(constant_velocity_params(), 200, random_state=0)
        return ((X - X.mean(0)) / X.std(0), ["x", "y"],
                note_for(error, "a simulated 2-D tracking series"))
    cols = [bunch.feature_names.index(name) for name in MACRO_COLUMNS]
    raw = bunch.data[:, cols]
    growth = 400 * np.diff(np.log(raw[:, :3]), axis=0)
    X = np.column_stack([growth, raw[1:, 3:]])
    return (X - X.mean(0)) / X.std(0), ["GDP growth", "consumption growth",
                                        "investment growth", "unemployment", "inflation",
                                        "T-bill rate"], ""


def _macro_part(folder: Path, progress, quick: bool, note_for):
    from latentkit import ConvergenceWarning, plot

    from .lds import LinearDynamicalSystem

    X, names, note = _macro(note_for)
    curves, rows = {}, []
    for K in ((2,) if quick else (1, 2, 3)):
        start = time.perf_counter()
        model = LinearDynamicalSystem(K, max_iter=40 if quick else 3000, tol=1e-5,
                                      random_state=0, verbose=progress.verbose)
        with warnings.catch_warnings():
            if quick:  # a few iterations only: not converging is expected
                warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X)
        curves[f"state_dim={K}"] = model.history_
        rows.append({"state_dim": K, "mean log-likelihood per quarter": float(model.score(X)),
                     "BIC": float(model.bic(X)), "iterations": int(model.n_iter_),
                     "converged": bool(model.converged_),
                     "time (s)": round(time.perf_counter() - start, 2)})
    ax = plot.plot_history(curves, title="EM on US macro series",
                           ylabel="mean log-likelihood per quarter")
    return [(plot.save_figure(ax, folder / "macro_history.png"),
             "EM log-likelihood per iteration on six standardized quarterly US series: "
             + ", ".join(names))], rows, note


def dynamics_lds(out_dir, progress, *, quick: bool = False):
    """Linear dynamical systems: Nile local level, tracking, EM on US macro data."""
    from latentkit.cli.demo import missing_note as _missing_note
    from latentkit.cli.report import Section

    folder = Path(out_dir) / "dynamics"
    nile_figures, nile_rows, nile_note = _nile_part(folder, progress, quick, _missing_note)
    track_figures, track_rows = _tracking_part(folder, quick)
    macro_figures, macro_rows, macro_note = _macro_part(folder, progress, quick, _missing_note)
    text = ("`LinearDynamicalSystem` (Kalman filter, RTS smoother, EM). The Nile flow "
            "1871-1970 is fitted with the local-level model (A = C = 1, initial level "
            "variance held at 1e7, an approximately diffuse start); EM reaches Durbin & "
            "Koopman's maximum-likelihood variances. Blanking 20 years shows exact "
            "handling of missing observations: the filter predicts through the gap, the "
            "smoother interpolates it, and the bands widen. The tracking example filters a "
            "constant-velocity model with its true parameters. The macro panel fits EM from "
            "PCA and instrumental-variable least squares for several state dimensions.")
    notes = [n for n in (nile_note, macro_note) if n]
    return Section("Linear dynamical systems: Kalman filter, smoother and EM",
                   "\n\n".join([*notes, text]), nile_figures + track_figures + macro_figures,
                   [("Nile local-level model", nile_rows),
                    ("tracking error", track_rows), ("US macro series", macro_rows)])
