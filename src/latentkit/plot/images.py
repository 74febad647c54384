"""Image grids: rows of a matrix shown as small images (component means, components,
reconstructions). Returns the Figure; save with `latentkit.plot.save_figure`."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure


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
