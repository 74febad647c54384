"""The deep family's entries in `latentkit.registry`: `latentkit fit vae` and `latentkit fit
iwae`, on binarized MNIST by default, with the size parameter `latent_dim` (so `-k 20` and
`--latent-dim 20` are the same), images handed to the model as images, the summary rows of
a variational fit (bounds on log p(x), named), its figures and its demo section."""

from __future__ import annotations

import numpy as np

from ..registry import ModelSpec, register
from .demo import mnist_vae
from .figures import deep_figures
from .vae import IWAE, VAE, HierarchicalVAE

BINARIZED_MNIST = ("binarized MNIST (Larochelle & Murray 2011, the IWAE paper's static "
                   "binarization): 10,000 random training images of 28 x 28 = 784 pixels")


def binary_images(data):
    """The `prepare` of bundled data: 0/1 data kept; grey-level images (mnist, digits)
    thresholded at half their range, x > (low + high) / 2, as for a Bernoulli mixture."""
    from ..mixture._registry import binarize

    return binarize(data)


def images_or_rows(data, named: bool):
    """What a deep model is given: DATA as images (n, height, width) when DATA knows its
    image shape (the model then records it, and `latentkit sample` draws a picture), else
    its rows (n, D) as a float array. Column names are not used (pixels have no names a
    model must match)."""
    X = np.asarray(data.X, dtype=np.float64)
    shape = data.image_shape
    if shape is not None and int(np.prod(shape)) == X.shape[1]:
        return X.reshape(len(X), *shape)
    return X


def variational_metrics(model, data, X) -> list:
    """The rows `fit`, `evaluate` and `report` print: rows, the mean ELBO (a lower bound on
    the mean log p(x), one draw of z per row), and for a model trained on the k-sample
    bound the mean IWAE_k. `latentkit evaluate --iwae K` adds importance sampling."""
    n_rows = int(np.shape(X)[0])
    rows = [("rows", "rows", n_rows),
            ("mean_elbo", "mean ELBO (lower bound on log p(x), nats)",
             float(np.mean(model.score_samples(X, method="elbo", n_samples=1))))]
    k = getattr(model, "k", None)
    if k is not None:
        rows.append(("mean_iwae", f"mean IWAE bound (k={k}, nats)",
                     float(np.mean(model.score_samples(X, method="iwae", n_samples=k)))))
    return rows


def binary_example(rng: np.random.Generator, **extra):
    """Binary rows from two Bernoulli prototypes over 12 columns (200 rows); a small VAE
    that fits them in about a second on one CPU core."""
    from ..datasets import make_bernoulli_mixture

    X = make_bernoulli_mixture(200, n_components=2, n_features=12, random_state=rng).X
    kwargs = {"latent_dim": 2, "hidden": (16,), "epochs": 5, "batch_size": 50,
              "device": "cpu", "random_state": 0, "verbose": False, **extra}
    return kwargs, X


def hvae_example(rng: np.random.Generator):
    """`binary_example` for a two-layer hierarchical VAE (latent_dims (4, 2))."""
    kwargs, X = binary_example(rng, latent_dims=(4, 2))
    kwargs.pop("latent_dim")
    return kwargs, X


def iwae_example(rng: np.random.Generator):
    """`binary_example` for an IWAE trained on the 5-sample bound."""
    return binary_example(rng, k=5)


_COMMON = {"default_data": "binarized_mnist", "default_data_note": BINARIZED_MNIST,
           "prepare": binary_images, "figures": deep_figures, "size_param": "latent_dim",
           "size_label": "latent dimension", "default_size": 20,
           # hidden and image_shape take tuples, which a --option VALUE cannot spell
           "hidden_params": ("callbacks", "hidden", "image_shape"),
           "defaults": (("epochs", 10),),
           "model_input": images_or_rows, "metrics": variational_metrics}

register(ModelSpec(
    "vae", VAE, "variational autoencoder (Bernoulli, Gaussian or categorical decoder; "
    "--latent-dim L, --epochs N, --likelihood); NaN = missing",
    summary_params=("likelihood", "epochs"), demo=mnist_vae, example=binary_example,
    **_COMMON))
register(ModelSpec(
    "iwae", IWAE, "importance-weighted autoencoder: a VAE trained on the k-sample bound "
    "(--k 5); NaN = missing",
    summary_params=("k", "likelihood", "epochs"), example=iwae_example, **_COMMON))
register(ModelSpec(
    "hvae", HierarchicalVAE, "hierarchical VAE: L stochastic layers with a top-down "
    "generative path (--k for IWAE training, --ladder true); NaN = missing",
    summary_params=("latent_dims", "k", "epochs"), example=hvae_example,
    **{**_COMMON, "size_param": None, "size_label": "latent layers",
       "hidden_params": ("callbacks", "hidden", "latent_dims")}))
