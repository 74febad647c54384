"""Figures for mixture models: density contours with component ellipses, 2-D projections
coloured by cluster, and image grids (e.g. Bernoulli component means).

Every function draws on an optional `ax` (a new Agg figure when None) and returns the Axes;
`plot_image_grid` returns its Figure. Save with `latentkit.plot.save_figure`.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse

from ._figure import cluster_colors, new_axes

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


def plot_projection_2d(X, labels, ax=None, *, title=None, random_state=0):
    """The data projected on its first two principal components, coloured by cluster.

    X : (n_samples, n_features) without NaN (impute first); labels : (n_samples,) integers.
    Data with exactly 2 features is drawn as is.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or len(X) != len(labels):
        raise ValueError(f"plot_projection_2d needs X (n_samples, n_features) and labels "
                         f"(n_samples,); got {X.shape} and {labels.shape}.")
    ax = new_axes(ax, figsize=(6.8, 5.4))
    if X.shape[1] == 2:
        points, axis_labels = X, ("x1", "x2")
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(2, X.shape[1]), random_state=random_state).fit(X)
        points = pca.transform(X)
        if points.shape[1] == 1:
            points = np.column_stack([points[:, 0], np.zeros(len(points))])
        ratios = list(pca.explained_variance_ratio_) + [0.0]
        axis_labels = (f"PC 1 ({100 * ratios[0]:.0f}% of variance)",
                       f"PC 2 ({100 * ratios[1]:.0f}% of variance)")
    clusters = np.unique(labels)
    colors = cluster_colors(len(clusters))
    for color, cluster in zip(colors, clusters):
        chosen = labels == cluster
        ax.scatter(points[chosen, 0], points[chosen, 1], s=10, color=color, alpha=0.7,
                   edgecolors="none", label=f"{cluster + 1} ({chosen.sum()})")
    if len(clusters) <= 20:
        ax.legend(title="cluster (size)", fontsize="small", title_fontsize="small",
                  loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=1.8)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title or f"{len(X)} rows in 2-D, coloured by cluster")
    ax.grid(alpha=0.25)
    return ax


def plot_image_grid(images, image_shape=(28, 28), ncols=None, titles=None, *, fig=None,
                    cmap="gray_r", vmin=None, vmax=None, suptitle=None):
    """Images in a grid, e.g. the component means of a BernoulliMixture on digits.

    images : (n_images, height * width) or (n_images, height, width).
    image_shape : (height, width) of one image; ncols : images per row (about square when
    None); titles : one per image or None; vmin/vmax : the grey scale (the data range when
    None). Returns the Figure.
    """
    images = np.asarray(images, dtype=np.float64)
    height, width = image_shape
    if images.ndim == 2 and images.shape[1] != height * width:
        raise ValueError(f"images of {images.shape[1]} values cannot be shown as "
                         f"{height}x{width}; pass the right image_shape.")
    images = images.reshape(len(images), height, width)
    n_images = len(images)
    ncols = ncols or max(1, math.ceil(math.sqrt(n_images)))
    nrows = max(1, math.ceil(n_images / ncols))
    if titles is not None and len(titles) != n_images:
        raise ValueError(f"titles has {len(titles)} entries for {n_images} images.")
    fig = fig or Figure(figsize=(1.35 * ncols + 0.4, 1.45 * nrows + 0.6), layout="constrained")
    vmin = np.min(images) if vmin is None else vmin
    vmax = np.max(images) if vmax is None else vmax
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, ax in enumerate(axes.ravel()):
        if index >= n_images:
            ax.set_axis_off()
            continue
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color("lightgray")
        ax.imshow(images[index], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[index]), fontsize="small")
    if suptitle:
        fig.suptitle(suptitle)
    return fig
