"""Figures of mixture models: log-density contours with component ellipses (2-D Gaussian
mixtures), and the figures `latentkit fit` / `report` draw for each mixture of this family
(GaussianMixture, BernoulliMixture, CategoricalMixture, MixtureOfPPCA).

Every plotting function draws on an optional `ax` (a new Agg figure when None) and returns
the Axes. Each `*_figures(job)` takes the `FigureJob` of `latentkit.registry` and returns
[(png path, caption)].
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.patches import Ellipse

_GRID_POINTS = 160


def component_covariances(model) -> np.ndarray:
    """The (K, D, D) covariance matrices of a fitted Gaussian mixture, whatever its
    `covariance_type` ("full" (K, D, D), "tied" (D, D), "diag" (K, D), "spherical" (K,))."""
    covariances = np.asarray(model.covariances_, dtype=np.float64)
    means = np.asarray(model.means_)
    n_components, n_features = means.shape
    kind = getattr(model, "covariance_type", "full")
    if kind == "full":
        return covariances
    if kind == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features)).copy()
    if kind == "diag":
        return covariances[:, :, None] * np.eye(n_features)
    if kind == "spherical":
        return covariances[:, None, None] * np.eye(n_features)
    raise ValueError(f"covariance_type must be one of 'full', 'tied', 'diag', 'spherical'; "
                     f"got {kind!r}.")


def _ellipse(mean, covariance, n_std: float, color, linestyle) -> Ellipse:
    """The n_std standard-deviation contour of a 2-D Gaussian (axes from the eigenvectors)."""
    from matplotlib.patches import Ellipse

    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    angle = math.degrees(math.atan2(eigenvectors[1, 1], eigenvectors[0, 1]))
    width, height = 2 * n_std * np.sqrt(eigenvalues[::-1])
    return Ellipse(mean, width, height, angle=angle, fill=False, edgecolor=color,
                   linewidth=2.0 if n_std == 1 else 1.4, linestyle=linestyle)


def _grid(X: np.ndarray, margin: float = 0.12):
    lows, highs = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    span = np.where(highs > lows, highs - lows, 1.0)
    lows, highs = lows - margin * span, highs + margin * span
    xs = np.linspace(lows[0], highs[0], _GRID_POINTS)
    ys = np.linspace(lows[1], highs[1], _GRID_POINTS)
    return np.meshgrid(xs, ys)


def plot_density_2d(model, X, ax=None, *, feature_names=None, title=None):
    """Log-density contours of a fitted 2-D Gaussian mixture over the data points.

    model : fitted mixture with `score_samples`, `predict`, `weights_`, `means_`,
        `covariances_` and `covariance_type` (latentkit or scikit-learn GaussianMixture).
    X : (n_samples, 2) data; rows holding NaN are not drawn.
    Draws filled contours of log p(x), the points coloured by predicted component, and each
    component's 1 and 2 standard-deviation ellipses (solid, dashed) with its mean marked.
    """
    from matplotlib.lines import Line2D

    from latentkit.plot._figure import cluster_colors, new_axes

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_density_2d needs data with 2 columns; got shape {X.shape}.")
    ax = new_axes(ax, figsize=(7.2, 5.6))
    gx, gy = _grid(X)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    log_density = np.asarray(model.score_samples(grid), dtype=np.float64).reshape(gx.shape)
    complete = X[~np.isnan(X).any(axis=1)]
    labels = np.asarray(model.predict(complete))
    floor = np.percentile(np.asarray(model.score_samples(complete)), 1) - 3.0
    top = np.max(log_density)
    levels = np.linspace(min(floor, top - 1.0), top, 14)
    filled = ax.contourf(gx, gy, np.maximum(log_density, levels[0]), levels=levels,
                         cmap="Greys", alpha=0.55)
    ax.contour(gx, gy, log_density, levels=levels[1::2], colors="dimgray", linewidths=0.5,
               alpha=0.8)
    ax.figure.colorbar(filled, ax=ax, label="log density  log p(x)", format="%.1f")

    means = np.asarray(model.means_, dtype=np.float64)
    weights = np.asarray(model.weights_, dtype=np.float64)
    colors = cluster_colors(len(means))
    ax.scatter(complete[:, 0], complete[:, 1], c=colors[labels], s=14, alpha=0.85,
               edgecolors="white", linewidths=0.3, zorder=2)
    handles = []
    for k, (mean, covariance) in enumerate(zip(means, component_covariances(model))):
        for n_std, style in ((1, "-"), (2, "--")):
            ax.add_patch(_ellipse(mean, covariance, n_std, colors[k], style))
        ax.plot(*mean, marker="X", markersize=10, color=colors[k], markeredgecolor="black",
                zorder=4)
        handles.append(Line2D([], [], color=colors[k], marker="o", linestyle="",
                              label=f"component {k + 1} (weight {weights[k]:.2f})"))
    handles.append(Line2D([], [], color="dimgray", linestyle="-", label="1 s.d. ellipse"))
    handles.append(Line2D([], [], color="dimgray", linestyle="--", label="2 s.d. ellipse"))
    handles.append(Line2D([], [], color="dimgray", marker="X", linestyle="",
                          markeredgecolor="black", label="component mean"))
    ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.85)
    names = list(feature_names) if feature_names is not None else ["x1", "x2"]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_xlim(gx[0, 0], gx[0, -1])
    ax.set_ylim(gy[0, 0], gy[-1, 0])
    kind = getattr(model, "covariance_type", "full")
    ax.set_title(title or f"{type(model).__name__}: K={len(means)}, {kind} covariance")
    return ax


# -- the command line's figures -----------------------------------------------------------


def _projection(job, filename: str = "projection.png") -> list:
    """A 2-D PCA projection of the rows (missing entries imputed by the mixture) coloured by
    the predicted component."""
    from latentkit import plot

    X = np.asarray(job.model.impute(np.asarray(job.data.X, dtype=np.float64)))
    ax = plot.plot_projection_2d(X, job.model.predict(X))
    return [(plot.save_figure(ax, job.out_dir / filename),
             "2-D PCA projection coloured by predicted cluster")]


def _mean_images(job) -> list:
    """The component means (K, D) as images, when the data are images of D pixels."""
    from latentkit import plot

    shape, means = job.data.image_shape, np.asarray(job.model.means_)
    if shape is None or means.shape[1] != shape[0] * shape[1]:
        return []
    titles = [f"w={w:.3f}" for w in job.model.weights_]
    fig = plot.plot_image_grid(means, tuple(shape), titles=titles, suptitle="component means")
    return [(plot.save_figure(fig, job.out_dir / "means.png"), "component means as images")]


def gmm_figures(job) -> list:
    """GaussianMixture: density contours with 1 and 2 s.d. ellipses for 2-D data, else the
    2-D projection; the means as images for image data; the criterion curve when K was
    chosen; the EM log-likelihood curve."""
    from latentkit import plot
    from latentkit.plot.common import criterion_figure, history_figure

    figures = criterion_figure(job)
    X = np.asarray(job.data.X, dtype=np.float64)
    if X.shape[1] == 2:
        ax = plot_density_2d(job.model, X, feature_names=job.data.column_names)
        figures.append((plot.save_figure(ax, job.out_dir / "density.png"),
                        "log-density contours, 1 and 2 s.d. component ellipses"))
    else:
        figures += _projection(job)
    return figures + _mean_images(job) + history_figure(job)


def bmm_figures(job) -> list:
    """BernoulliMixture (and MixtureOfPPCA): the 2-D projection coloured by cluster, the
    component means as images for image data, the criterion curve, the EM curve."""
    from latentkit.plot.common import criterion_figure, history_figure

    return criterion_figure(job) + _projection(job) + _mean_images(job) + history_figure(job)


def cmm_figures(job) -> list:
    """CategoricalMixture: the 2-D projection of the codes coloured by cluster, the
    criterion curve, the EM curve."""
    from latentkit.plot.common import criterion_figure, history_figure

    return criterion_figure(job) + _projection(job) + history_figure(job)


mppca_figures = bmm_figures
