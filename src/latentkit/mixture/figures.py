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


# -- the command line's tables ------------------------------------------------------------

#: the most features a table of per-feature values shows
MAX_TABLE_FEATURES = 20


def feature_names(job, n_features: int) -> list[str]:
    """The names of the model's `n_features` columns: `feature_names_in_` when the model was
    fitted on named columns, else the data's column names (x1..xD when it has none)."""
    from latentkit.registry import fitted_feature_names

    names = fitted_feature_names(job.model) or job.data.column_names
    if len(names) != n_features:
        return [f"x{j + 1}" for j in range(n_features)]
    return [str(name) for name in names]


def _shown_features(contrast, what: str) -> tuple[list[int], str]:
    """The indices of the features a table shows and the caption's note when some are left
    out: all of them up to MAX_TABLE_FEATURES, else the MAX_TABLE_FEATURES with the largest
    `contrast` (D,) (how much the components differ on the feature), in column order."""
    contrast = np.nan_to_num(np.asarray(contrast, dtype=np.float64), nan=0.0)
    if contrast.size <= MAX_TABLE_FEATURES:
        return list(range(contrast.size)), ""
    chosen = np.sort(np.argsort(-contrast, kind="stable")[:MAX_TABLE_FEATURES])
    return ([int(j) for j in chosen],
            f" (the {MAX_TABLE_FEATURES} of {contrast.size} features whose {what} differ "
            "most between components)")


def mean_contrast(means, X) -> np.ndarray:
    """(D,) the range of the component means (K, D) per feature over the data's standard
    deviation of that feature (X : (n_samples, D), NaN = missing); 0 for a constant one."""
    spread = np.nanstd(np.asarray(X, dtype=np.float64), axis=0)
    span = np.ptp(np.asarray(means, dtype=np.float64), axis=0)
    return np.divide(span, spread, out=np.zeros_like(span), where=spread > 0)


def _column(name: str, taken: tuple[str, ...]) -> str:
    """A feature's column name, renamed when it would clash with a fixed column."""
    return f"{name} (feature)" if name in taken else name


def component_rows(weights, values, names, columns, *, extra=None) -> list[dict]:
    """One row per component: {"component": k + 1, "weight": w_k, name_j: values[k, j] for
    the chosen columns j, then the `extra` {column: (K,) values}}.

    weights : (K,); values : (K, D) per-feature values (means, probabilities, strings);
    names : (D,) feature names; columns : indices of the features shown.
    """
    extra = extra or {}
    taken = ("component", "weight", *extra)
    rows = []
    for k, weight in enumerate(np.asarray(weights, dtype=np.float64)):
        row = {"component": k + 1, "weight": float(weight)}
        for j in columns:
            value = values[k][j]
            row[_column(names[j], taken)] = value if isinstance(value, str) else float(value)
        for column, per_component in extra.items():
            row[column] = float(per_component[k])
        rows.append(row)
    return rows


def _weights_and_means(job, caption: str, *, extra=None) -> tuple[list, list[int]]:
    """([(caption, rows)] of the component weights and means per named feature, the indices
    of the features shown)."""
    means = np.asarray(job.model.means_, dtype=np.float64)
    names = feature_names(job, means.shape[1])
    columns, note = _shown_features(mean_contrast(means, job.data.X), "means")
    return [(caption + note, component_rows(job.model.weights_, means, names, columns,
                                            extra=extra))], columns


def gmm_tables(job) -> list:
    """GaussianMixture: the component weights and means per feature, and each component's
    standard deviation per feature (the square root of its covariance's diagonal)."""
    model = job.model
    tables, columns = _weights_and_means(job, "component weights and means")
    sd = np.sqrt(np.clip(np.diagonal(component_covariances(model), axis1=1, axis2=2), 0, None))
    names = feature_names(job, sd.shape[1])
    note = "" if len(columns) == len(names) else " (the features of the means' table)"
    tables.append((f"component standard deviations per feature ({model.covariance_type} "
                   f"covariance){note}",
                   component_rows(model.weights_, sd, names, columns)))
    return tables


def mppca_tables(job) -> list:
    """MixtureOfPPCA: the component weights, means per feature and noise variances σ_k²."""
    noise = np.asarray(job.model.noise_variance_, dtype=np.float64)
    return _weights_and_means(job, "component weights, means and noise variance σ²",
                              extra={"noise variance σ²": noise})[0]


def bmm_tables(job) -> list:
    """BernoulliMixture: the component weights and p(x_j = 1 | component) per feature."""
    return _weights_and_means(job, "component weights and p(feature = 1) per component")[0]


def level_summary(probs, states, max_levels: int = 3, floor: float = 0.05) -> str:
    """A categorical column's distribution in one cell: its levels by decreasing
    probability, "high 0.71, mid 0.22" (the most probable first; at most `max_levels`,
    those below `floor` left out after the first).

    probs : (L,) p(x_j = l | component); states : (L,) the level names.
    """
    order = np.argsort(-np.asarray(probs, dtype=np.float64), kind="stable")
    shown = [level for i, level in enumerate(order[:max_levels])
             if i == 0 or probs[level] >= floor]
    return ", ".join(f"{states[level]} {probs[level]:.2f}" for level in shown)


def cmm_tables(job) -> list:
    """CategoricalMixture: the component weights and, per column, its most probable levels
    with their probabilities p(x_j = l | component) (state names when DATA had text)."""
    model = job.model
    n_categories = [int(n) for n in model.n_categories_]
    names = feature_names(job, len(n_categories))
    categories = job.data.categories or {}
    cells = [[None] * len(names) for _ in range(len(model.weights_))]
    contrast = np.zeros(len(names))
    for j, (name, n_levels) in enumerate(zip(names, n_categories)):
        states = categories.get(name)
        if states is None or len(states) != n_levels:
            states = [str(level) for level in range(n_levels)]
        probs = np.asarray(model.category_probs(j), dtype=np.float64)
        contrast[j] = np.ptp(probs, axis=0).sum()
        for k, component_probs in enumerate(probs):
            cells[k][j] = level_summary(component_probs, states)
    columns, note = _shown_features(contrast, "level probabilities")
    return [("component weights and, per column, the most probable levels with "
             "p(level | component)" + note,
             component_rows(model.weights_, cells, names, columns))]
