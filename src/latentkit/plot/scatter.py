"""A 2-D view of any data coloured by integer labels (clusters, classes): the first two
principal components, or the data itself when it has two columns."""

from __future__ import annotations

import numpy as np

from ._figure import cluster_colors, new_axes


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
    scatter_by_label(ax, points, labels, legend_title="cluster (size)", size=10, alpha=0.7,
                     markerscale=1.8,
                     name=lambda cluster, chosen: f"{cluster + 1} ({chosen.sum()})")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title or f"{len(X)} rows in 2-D, coloured by cluster")
    ax.grid(alpha=0.25)
    return ax


def scatter_by_label(ax, points, labels, *, legend_title: str, size: float, alpha: float,
                     markerscale: float, name=lambda value, chosen: str(value)) -> None:
    """points : (n, 2) drawn on ax in one colour per distinct value of labels : (n,), each
    named name(value, boolean mask of its rows) in a legend beside the axes (up to 20)."""
    values = np.unique(labels)
    for color, value in zip(cluster_colors(len(values)), values):
        chosen = labels == value
        ax.scatter(points[chosen, 0], points[chosen, 1], s=size, color=color, alpha=alpha,
                   edgecolors="none", label=name(value, chosen))
    if len(values) <= 20:
        ax.legend(title=legend_title, fontsize="small", title_fontsize="small",
                  loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=markerscale)
