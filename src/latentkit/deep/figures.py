"""Figures of the deep models (`latentkit fit vae`, `report`, the demo): the training curve,
reconstructions, samples, the latent space coloured by label, for a 2-D latent space the
decoded manifold, and imputations of hidden pixels beside the originals. Image figures only
when the data are images (an image shape is known: DATA's, or the shape of the rows the
model was fitted on).

Each `plot_*` function returns a matplotlib Figure or Axes (Agg, never shown);
`deep_figures(job)` writes the PNGs of a `latentkit.registry.FigureJob`.
"""

from __future__ import annotations

import numpy as np

from .. import plot
from ..plot._figure import new_axes
from ..plot.scatter import scatter_by_label

#: rows encoded for the latent-space scatter (a random subset of larger data)
LATENT_POINTS = 2000


def image_shape_of(model, data=None) -> tuple[int, int] | None:
    """(height, width) of one image: DATA's image_shape, else the shape of the rows the
    model was fitted on when it has 2 or more axes with one channel; None otherwise."""
    shape = getattr(data, "image_shape", None) if data is not None else None
    if shape is None:
        fitted = tuple(getattr(model, "input_shape_", ()) or ())
        if len(fitted) >= 2 and int(np.prod(fitted[:-2])) == 1:
            shape = fitted[-2:]
    if shape is None:
        return None
    height, width = (int(s) for s in shape)
    n_features = getattr(model, "n_features_in_", height * width)
    return (height, width) if height * width == n_features else None


def decoded_means(model, z: np.ndarray) -> np.ndarray:
    """E[x | z] : (n, D) for latent points z : (n, latent_dim) (float), or for a discrete
    code, its indices (n, n_latents) (integers, e.g. a VQ-VAE's codes)."""
    import torch

    z = np.asarray(z)
    with torch.no_grad():
        z = torch.as_tensor(z, dtype=torch.float32 if z.dtype.kind == "f" else torch.int64)
        return model.module_.decode_mean(z).numpy()


def plot_training_curve(model, ax=None, *, title=None):
    """The mean training objective per epoch (`history_`) and, when the model held out
    validation rows, the validation objective (`valid_history_`)."""
    runs = {"training": model.history_}
    valid = np.asarray(getattr(model, "valid_history_", ()), dtype=np.float64)
    if valid.size:
        runs["validation"] = valid
    bound = f"IWAE bound (k={model.k})" if getattr(model, "k", None) else getattr(
        model, "objective_name", "ELBO")
    return plot.plot_history(runs, ax, xlabel="epoch", ylabel=f"mean {bound} per row (nats)",
                             title=title or f"{type(model).__name__} training")


def plot_reconstructions(model, X, image_shape, n_show: int = 10, *, title=None):
    """First row: n_show input images (missing pixels blank); second: E[x | z = E_q[z | x]].

    X : (n, height * width) rows (NaN = missing)."""
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)[:n_show]
    recon = model.reconstruct(X.reshape(len(X), *_model_shape(model)))
    images = np.concatenate([X, recon.reshape(len(X), -1)])
    titles = ["input"] + [""] * (len(X) - 1) + ["reconstruction"] + [""] * (len(X) - 1)
    return plot.plot_image_grid(images, image_shape, ncols=len(X), titles=titles,
                                vmin=0.0 if _unit(images) else None,
                                vmax=1.0 if _unit(images) else None,
                                suptitle=title or "inputs and their reconstructions")


def plot_samples(model, image_shape, n: int = 64, *, random_state=0, title=None):
    """E[x | z] for n draws z ~ p(z): what the model generates, without pixel noise."""
    _, z = model.sample(n, random_state=random_state)
    means = decoded_means(model, z)
    return plot.plot_image_grid(means, image_shape, ncols=int(np.ceil(np.sqrt(n))),
                                vmin=0.0 if _unit(means) else None,
                                vmax=1.0 if _unit(means) else None,
                                suptitle=title or f"{n} samples: E[x | z], z ~ p(z)")


def plot_manifold(model, image_shape, n_side: int = 12, *, title=None):
    """For a 2-D latent space: E[x | z] on an n_side x n_side grid of z at the standard
    normal quantiles 1/(2 n_side) .. 1 - 1/(2 n_side) of each axis (the prior's mass)."""
    from scipy.stats import norm

    levels = norm.ppf((np.arange(n_side) + 0.5) / n_side)
    grid = np.array([[a, b] for b in levels[::-1] for a in levels])
    means = decoded_means(model, grid)
    return plot.plot_image_grid(means, image_shape, ncols=n_side, vmin=None, vmax=None,
                                suptitle=title or "the decoded latent space: E[x | z] on a "
                                                  "grid of z")


def plot_traversals(model, x, image_shape, *, n_steps: int = 9, limit: float = 2.5,
                    dims=None, title=None):
    """Latent traversals: one row per latent dimension j, n_steps columns; the image in
    column i is E[x | z] with z = E_q[z | x] except z_j = -limit .. limit (evenly spaced,
    in the prior's units). A disentangled code moves one factor of variation per row.

    x : (D,) one image as a row (or (1, *input shape)); dims : the latent dimensions to
    show (default all, ordered by their posterior KL to the prior on x, largest first:
    the dimensions the model uses come first)."""
    x = np.asarray(x, dtype=np.float64).reshape(1, *_model_shape(model))
    posterior = model.posterior(x)
    mean = posterior.mean[0]
    if dims is None:
        variance = np.diagonal(posterior.cov[0])
        kl = 0.5 * (variance + mean ** 2 - 1 - np.log(variance))
        dims = np.argsort(-kl)
    dims = [int(j) for j in dims]
    steps = np.linspace(-limit, limit, n_steps)
    z = np.repeat(mean[None, None, :], len(dims), axis=0).repeat(n_steps, axis=1)
    for row, j in enumerate(dims):
        z[row, :, j] = steps
    means = decoded_means(model, z.reshape(-1, len(mean)))
    titles = [f"z{j}" if i == 0 else "" for j in dims for i in range(n_steps)]
    return plot.plot_image_grid(means, image_shape, ncols=n_steps, titles=titles,
                                vmin=0.0, vmax=1.0,
                                suptitle=title or f"latent traversals: z_j from -{limit:g} to "
                                                  f"{limit:g}, one row per dimension")


def plot_imputations(original, masked, imputations: dict, image_shape, n_show: int = 10,
                     *, title=None):
    """One row per image set, n_show columns: the originals, the masked inputs (missing
    pixels, NaN, in light blue), then each imputation in the order of `imputations`.

    original, masked : (n, height * width) rows (masked: NaN = missing);
    imputations : row label -> (n, height * width) filled rows (probabilities in [0, 1]).
    """
    from matplotlib import colormaps

    rows = {"original": original, "masked input": masked, **imputations}
    images = np.concatenate([np.asarray(v, dtype=np.float64).reshape(len(v), -1)[:n_show]
                             for v in rows.values()])
    n_cols = len(images) // len(rows)
    titles = [label if i == 0 else "" for label in rows for i in range(n_cols)]
    cmap = colormaps["gray_r"].with_extremes(bad="lightskyblue")
    return plot.plot_image_grid(images, image_shape, ncols=n_cols, titles=titles, cmap=cmap,
                                vmin=0.0, vmax=1.0,
                                suptitle=title or "originals, masked inputs and imputations")


def plot_latent_space(Z, labels=None, ax=None, *, title=None, label_name="label"):
    """Latent means Z : (n, latent_dim) in 2-D (a PCA when latent_dim > 2), coloured by
    labels : (n,) integers when given (e.g. the digit)."""
    Z = np.asarray(Z, dtype=np.float64)
    if Z.shape[1] == 1:
        Z = np.column_stack([Z[:, 0], np.zeros(len(Z))])
    axis_names = ("z1", "z2")
    if Z.shape[1] > 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0).fit(Z)
        Z, ratio = pca.transform(Z), pca.explained_variance_ratio_
        axis_names = (f"PC 1 of E[z | x] ({100 * ratio[0]:.0f}%)",
                      f"PC 2 of E[z | x] ({100 * ratio[1]:.0f}%)")
    ax = new_axes(ax, figsize=(6.8, 5.4))
    if labels is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=6, alpha=0.5, color="tab:blue", edgecolors="none")
    else:
        scatter_by_label(ax, Z, np.asarray(labels), legend_title=label_name, size=6,
                         alpha=0.6, markerscale=2.5)
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title(title or f"{len(Z)} rows: posterior means E[z | x]")
    ax.grid(alpha=0.25)
    return ax


def _unit(values: np.ndarray) -> bool:
    seen = values[~np.isnan(values)]
    return bool(seen.size) and seen.min() >= 0 and seen.max() <= 1


def _model_shape(model) -> tuple[int, ...]:
    return tuple(getattr(model, "input_shape_", None) or (model.n_features_in_,))


def _subset(n: int, size: int) -> np.ndarray:
    """Row indices: all of them, or `size` at random (seed 0), in order."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size, replace=False))


def deep_figures(job) -> list:
    """The figures of a fitted deep model on job.data: training curve, latent space, and for
    image data reconstructions, samples and (latent_dim 2) the decoded manifold."""
    model, data, out = job.model, job.data, job.out_dir
    figures = []
    if len(getattr(model, "history_", ())):
        figures.append((plot.save_figure(plot_training_curve(model), out / "training.png"),
                        "the training objective per epoch (a bound on the mean log p(x))"))
    X = np.asarray(data.X, dtype=np.float64)
    rows = _subset(len(X), LATENT_POINTS)
    Z = model.transform(X[rows].reshape(len(rows), *_model_shape(model)))
    labels = None if data.target is None else np.asarray(data.target)[rows]
    what = "coloured by label" if labels is not None else "(DATA has no labels)"
    view = "z" if Z.shape[1] <= 2 else "a 2-D PCA of z"
    figures.append((plot.save_figure(plot_latent_space(Z, labels), out / "latent.png"),
                    f"posterior means E[z | x] of {len(rows)} rows in {view}, {what}"))
    shape = image_shape_of(model, data)
    if shape is None:
        return figures
    figures.append((plot.save_figure(plot_reconstructions(model, X, shape),
                                     out / "reconstructions.png"),
                    "inputs (top) and their reconstructions E[x | z = E_q[z | x]] (bottom)"))
    figures.append((plot.save_figure(plot_samples(model, shape), out / "generated.png"),
                    "E[x | z] for 64 draws z ~ p(z)"))
    if getattr(model, "latent_dim", None) == 2 and Z.shape[1] == 2:
        figures.append((plot.save_figure(plot_manifold(model, shape), out / "manifold.png"),
                        "E[x | z] over a grid of z at the prior's quantiles"))
    return figures


__all__ = ["deep_figures", "image_shape_of", "plot_imputations", "plot_latent_space",
           "plot_manifold", "plot_reconstructions", "plot_samples", "plot_training_curve"]
