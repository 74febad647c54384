"""Figures of the linear-Gaussian family: explained variance, labelled 2-D scatters, signal
panels and PCA reconstructions (used by its demo section), and the figures `latentkit fit` /
`report` draw for PCA, PPCA, factor analysis and FastICA: each `*_figures(job)` takes the
`FigureJob` of `latentkit.registry` and returns [(png path, caption)]. Agg only."""

from __future__ import annotations

import numpy as np


def plot_explained_variance(ratios, ax=None, *, title=None):
    """Bars of each component's explained-variance ratio and the cumulative curve."""
    from latentkit.plot._figure import new_axes

    ratios = np.asarray(ratios, dtype=np.float64)
    ax = new_axes(ax, figsize=(6.4, 4.4))
    index = np.arange(1, ratios.size + 1)
    ax.bar(index, ratios, color="tab:blue", alpha=0.6, label="per component")
    ax.plot(index, np.cumsum(ratios), color="tab:red", marker="o", markersize=2.5,
            label="cumulative")
    for m in (2, 10, 50):
        if m <= ratios.size:
            ax.annotate(f"M={m}: {100 * ratios[:m].sum():.0f}%", (m, ratios[:m].sum()),
                        textcoords="offset points", xytext=(6, -14), fontsize="small")
    ax.set_xlabel("principal component")
    ax.set_ylabel("fraction of the variance explained")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "PCA explained variance")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right")
    return ax


def plot_labelled_scatter(points, labels, ax=None, *, title=None, axis_labels=("z1", "z2")):
    """2-D points coloured by their (digit) label."""
    from latentkit.plot._figure import cluster_colors, new_axes

    ax = new_axes(ax, figsize=(6.8, 5.4))
    classes = np.unique(labels)
    for color, label in zip(cluster_colors(len(classes)), classes):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=color, alpha=0.7,
                   edgecolors="none", label=str(label))
    ax.legend(title="digit", fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5),
              markerscale=2)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title or "2-D projection")
    ax.grid(alpha=0.25)
    return ax


def plot_signals(panels: dict, t, *, title=None):
    """One Axes per panel name, each with its signals (n_samples, n_signals) stacked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 2.2 * len(panels) + 0.4), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, signals) in zip(axes, panels.items()):
        signals = np.asarray(signals)
        spread = 3.0 * np.max(np.std(signals, axis=0))
        for j in range(signals.shape[1]):
            ax.plot(t, signals[:, j] - j * spread, linewidth=0.9)
        ax.set_yticks([])
        ax.set_ylabel(name)
    axes[-1].set_xlabel("time")
    if title:
        fig.suptitle(title)
    return fig


def reconstruction_grid(X, labels, mean, components, image_shape, n_show=8):
    """Originals and their PCA reconstructions x̂ = x̄ + U_m U_m^T (x - x̄) for m = 2, 10,
    50 (rows), one image per digit class first."""
    from latentkit import plot

    picks = [int(np.flatnonzero(labels == d)[0]) for d in np.unique(labels)][:n_show]
    originals = X[picks]
    rows, titles = [originals], ["original"] + [""] * (len(picks) - 1)
    for m in (2, 10, 50):
        U = components[:m].T
        rows.append(mean + (originals - mean) @ U @ U.T)
        titles += [f"M={m}"] + [""] * (len(picks) - 1)
    return plot.plot_image_grid(np.concatenate(rows), image_shape, ncols=len(picks),
                                titles=titles, vmin=0.0, vmax=1.0,
                                suptitle="PCA reconstructions (rows: original, M = 2, 10, 50)")


def imputation_grid(X, mask, filled: dict, image_shape, n_show: int = 8):
    """The first n_show images: originals, with the missing pixels (mask True) in mid-grey,
    then each method's imputation (filled : name -> (n_samples, n_pixels)), one row each."""
    from latentkit import plot

    show = np.arange(n_show)
    rows = [X[show], np.where(mask[show], 0.5, X[show])]
    names = ["original", "30% missing"]
    for name, values in filled.items():
        rows.append(values[show])
        names.append(name)
    titles = [title for name in names for title in [name] + [""] * (n_show - 1)]
    return plot.plot_image_grid(np.concatenate(rows), image_shape, ncols=n_show,
                                titles=titles, vmin=0.0, vmax=1.0,
                                suptitle="imputation (missing pixels shown mid-grey)")


# -- the command line's figures -----------------------------------------------------------


def _latent_figures(job, X: np.ndarray) -> list:
    """The rows X (without NaN) in the first two latent coordinates, coloured by label when
    the data has labels, and the components as images for image data."""
    from latentkit import plot

    model, data, out = job.model, job.data, job.out_dir
    figures = []
    Z = np.asarray(model.transform(X), dtype=np.float64)
    if Z.shape[1] >= 2:
        labels = (np.zeros(len(Z), dtype=int) if data.target is None
                  else np.unique(data.target, return_inverse=True)[1])
        ax = plot.plot_projection_2d(Z[:, :2], labels, title="latent coordinates 1 and 2")
        figures.append((plot.save_figure(ax, out / "latent.png"),
                        "rows in the first two latent coordinates (colour: label if known)"))
    shape = data.image_shape
    components = np.asarray(model.components_)
    if shape is not None and components.shape[1] == shape[0] * shape[1]:
        fig = plot.plot_image_grid(components[:16], tuple(shape), cmap="RdBu_r",
                                   suptitle="components")
        figures.append((plot.save_figure(fig, out / "components.png"),
                        "components (rows of components_) as images"))
    return figures


def pca_figures(job) -> list:
    """PCA: the principal axes as a heatmap (features x components), the complete rows in
    the first two principal coordinates, the components as images for image data, the
    criterion curve when M was chosen."""
    from latentkit.plot.common import complete_rows, criterion_figure

    X = complete_rows(np.asarray(job.data.X, dtype=np.float64))
    return criterion_figure(job) + loadings_figure(job) + _latent_figures(job, X)


def gaussian_figures(job) -> list:
    """PPCA and factor analysis: the loadings heatmap (features x factors), every row
    (missing entries imputed by the model) in the first two latent coordinates, the
    components as images for image data, the criterion curve when M was chosen, the EM
    objective per iteration."""
    from latentkit.plot.common import criterion_figure, history_figure

    X = np.asarray(job.model.impute(np.asarray(job.data.X, dtype=np.float64)))
    return (criterion_figure(job) + loadings_figure(job) + _latent_figures(job, X)
            + history_figure(job, caption="EM objective per iteration", min_length=2))


def ica_figures(job):
    """FastICA: the mixing columns as images for image data, and the first two sources as a
    scatter (coloured by label if known)."""
    from latentkit import plot

    model, data, out = job.model, job.data, job.out_dir
    figures = []
    shape = data.image_shape
    if shape is not None and model.mixing_.shape[0] == shape[0] * shape[1]:
        fig = plot.plot_image_grid(model.mixing_.T, tuple(shape), cmap="RdBu_r",
                                   suptitle="independent components: columns of mixing_")
        figures.append((plot.save_figure(fig, out / "mixing.png"),
                        "each source's pattern in data space (a column of mixing_)"))
    X = np.asarray(data.X, dtype=np.float64)
    S = model.transform(X[~np.isnan(X).any(axis=1)])
    if S.shape[1] >= 2:
        labels = (np.zeros(len(S), int) if data.target is None
                  else np.asarray(data.target)[~np.isnan(X).any(axis=1)])
        ax = plot_labelled_scatter(S[:, :2], labels, title="sources 1 and 2",
                                   axis_labels=("s1", "s2"))
        figures.append((plot.save_figure(ax, out / "sources.png"),
                        "the first two recovered sources of each row"))
    return figures


# -- loadings: the figure and the table of PCA, PPCA and factor analysis ------------------

#: the most features the loadings heatmap draws, and the most rows of the loadings table
MAX_LOADING_FEATURES = 30
#: the most factors (columns) the heatmap and the table show
MAX_LOADING_FACTORS = 20


def _feature_names(job, n_features: int) -> list[str]:
    """`feature_names_in_` when the model was fitted on named columns, else the data's
    column names (x1..xD when it has none)."""
    from latentkit.registry import fitted_feature_names

    names = fitted_feature_names(job.model) or job.data.column_names
    if len(names) != n_features:
        return [f"x{j + 1}" for j in range(n_features)]
    return [str(name) for name in names]


def plot_loadings(loadings, feature_names, ax=None, *, title=None, factor_label="factor"):
    """A heatmap of loadings: one row per feature (named on the y-axis), one column per
    factor (numbered 1..M on the x-axis), a diverging colormap centred at 0 with a colorbar,
    and the values written in the cells when there are at most 150 of them.

    loadings : (D, M) the loading of feature d on factor m (components_.T);
    feature_names : (D,) the features' names.
    """
    from latentkit.plot._figure import new_axes

    loadings = np.asarray(loadings, dtype=np.float64)
    n_features, n_factors = loadings.shape
    if len(feature_names) != n_features:
        raise ValueError(f"plot_loadings needs one name per feature: {n_features} rows of "
                         f"loadings, {len(feature_names)} names.")
    ax = new_axes(ax, figsize=(1.6 + 0.55 * n_factors + 0.08 * max(map(len, feature_names)),
                               1.4 + 0.28 * n_features))
    limit = float(np.max(np.abs(loadings))) or 1.0
    image = ax.imshow(loadings, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label="loading", shrink=0.9)
    ax.set_yticks(np.arange(n_features), [str(name) for name in feature_names],
                  fontsize="small" if n_features > 15 else "medium")
    ax.set_xticks(np.arange(n_factors), [str(m + 1) for m in range(n_factors)])
    ax.set_xlabel(factor_label)
    if loadings.size <= 150:
        for (d, m), value in np.ndenumerate(loadings):
            text = f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
            ax.text(m, d, text, ha="center", va="center", fontsize="x-small",
                    color="white" if abs(value) > 0.6 * limit else "black")
    ax.set_title(title or "loadings")
    return ax


def _loadings(job) -> tuple[np.ndarray, list[str]]:
    """(D, M) loadings (components_.T, at most MAX_LOADING_FACTORS factors) and the D
    feature names."""
    loadings = np.asarray(job.model.components_, dtype=np.float64)[:MAX_LOADING_FACTORS].T
    return loadings, _feature_names(job, loadings.shape[0])


def _what(model) -> tuple[str, str]:
    """(what the loadings are, the factor axis label) for the model's kind."""
    if hasattr(model, "explained_variance_ratio_"):
        return "principal axes (components_, unit length)", "component"
    return "loadings W (components_ = W^T)", "factor"


def loadings_figure(job) -> list:
    """The loadings heatmap of a fitted PCA, PPCA or FactorAnalysis: every feature when
    there are at most MAX_LOADING_FEATURES; else the MAX_LOADING_FEATURES with the largest
    loadings (none for image data, whose components are drawn as images)."""
    from latentkit import plot

    loadings, names = _loadings(job)
    what, axis = _what(job.model)
    caption = f"{what} per feature and {axis}, blue < 0 < red"
    rows = np.arange(len(names))
    if len(names) > MAX_LOADING_FEATURES:
        if job.data.image_shape is not None:
            return []
        norms = np.linalg.norm(loadings, axis=1)
        rows = np.sort(np.argsort(-norms, kind="stable")[:MAX_LOADING_FEATURES])
        caption += (f"; the {MAX_LOADING_FEATURES} of {len(names)} features with the "
                    "largest loadings")
    if loadings.shape[1] < len(job.model.components_):
        caption += f"; the first {loadings.shape[1]} of {len(job.model.components_)} {axis}s"
    ax = plot_loadings(loadings[rows], [names[j] for j in rows],
                       title=f"{type(job.model).__name__} {what.split(' (')[0]}",
                       factor_label=axis)
    return [(plot.save_figure(ax, job.out_dir / "loadings.png"), caption)]


def loadings_tables(job) -> list:
    """The loadings as a table, one row per feature (its name, its loading on each factor;
    for factor analysis its noise variance ψ_d too), when there are at most
    MAX_LOADING_FEATURES features; else none."""
    loadings, names = _loadings(job)
    if len(names) > MAX_LOADING_FEATURES:
        return []
    what, axis = _what(job.model)
    noise = np.asarray(getattr(job.model, "noise_variance_", 0.0), dtype=np.float64)
    rows = []
    for d, name in enumerate(names):
        row = {"feature": name}
        row.update({f"{axis} {m + 1}": float(v) for m, v in enumerate(loadings[d])})
        if noise.ndim == 1 and noise.shape[0] == len(names):
            row["noise variance ψ"] = float(noise[d])
        rows.append(row)
    return [(f"{what} per feature", rows)]
