"""The deep family's entries in `latentkit.registry`: `latentkit fit vae`, `iwae`, `hvae`,
`betavae`, `betatcvae`, `vqvae` and `dvae`, on binarized MNIST by default, with the size
parameter `latent_dim` (so `-k 20` and `--latent-dim 20` are the same; a VQ-VAE's is its
codebook size, a discrete VAE's its number of categorical latents), images handed to the
model as images, the summary rows of a variational fit (bounds on log p(x), named), its
figures and its demo section."""

from __future__ import annotations

import numpy as np

from ..registry import ModelSpec, register
from .demo import mnist_vae
from .demo_disentangle import sprites_and_discrete
from .discrete import DiscreteVAE
from .figures import deep_figures
from .tcvae import BetaTCVAE, BetaVAE
from .vae import IWAE, VAE, HierarchicalVAE
from .vqvae import VQVAE

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


def codebook_metrics(model, data, X) -> list:
    """A VQ-VAE's summary rows: rows, the mean ELBO with q the point mass at the nearest
    codes (log p(x | z_q) + log p_prior(codes), a lower bound on log p(x)) and the
    perplexity of the codes X uses, exp(H(code frequencies)) over all positions (at most
    n_codes: how much of the codebook is in use)."""
    import torch

    from .codebook import perplexity

    counts = np.bincount(model.codes(X).ravel(), minlength=model.n_codes)
    return [("rows", "rows", int(np.shape(X)[0])),
            ("mean_elbo", "mean ELBO (point-mass q: a lower bound on log p(x), nats)",
             float(np.mean(model.score_samples(X)))),
            ("codebook_perplexity", f"codebook perplexity (of {model.n_codes} codes)",
             float(perplexity(torch.as_tensor(counts, dtype=torch.float64))))]


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


def betavae_example(rng: np.random.Generator):
    """`binary_example` for a β-VAE with β = 4."""
    return binary_example(rng, beta=4.0)


def betatcvae_example(rng: np.random.Generator):
    """`binary_example` for a β-TC-VAE with β = 6 on its total correlation."""
    return binary_example(rng, beta=6.0)


def vqvae_example(rng: np.random.Generator):
    """`binary_example` for a VQ-VAE: 2 code vectors of 2 dimensions from 8 codes."""
    kwargs, X = binary_example(rng, n_latents=2, code_dim=2, n_codes=8, n_prior_components=2)
    kwargs.pop("latent_dim")
    return kwargs, X


def dvae_example(rng: np.random.Generator):
    """`binary_example` for a discrete VAE: 2 categorical latents of 4 classes."""
    kwargs, X = binary_example(rng, n_latents=2, n_classes=4)
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
register(ModelSpec(
    "betavae", BetaVAE, "β-VAE: a VAE with the KL term weighted by --beta (default 4); logs "
    "its reconstruction and KL terms per epoch; NaN = missing",
    summary_params=("beta", "likelihood", "epochs"), example=betavae_example,
    demo=sprites_and_discrete, **{**_COMMON, "default_size": 10}))
register(ModelSpec(
    "betatcvae", BetaTCVAE, "β-TC-VAE: the KL split into index-code mutual information, "
    "total correlation and dimension-wise KL, weighted --alpha 1 --beta 6 --gamma 1 "
    "(--sampling mss|mws); each term logged per epoch; NaN = missing",
    summary_params=("alpha", "beta", "gamma", "sampling", "epochs"),
    example=betatcvae_example, **{**_COMMON, "default_size": 10}))
register(ModelSpec(
    "vqvae", VQVAE, "vector-quantized VAE: --n-latents code vectors from a codebook of -k "
    "codes (EMA updates, dead-code restarts), a CategoricalMixture prior over the codes for "
    "sampling; --epochs N, --likelihood",
    summary_params=("n_latents", "code_dim", "codebook_update", "epochs"),
    example=vqvae_example,
    **{**_COMMON, "size_param": "n_codes", "size_label": "codebook size",
       "default_size": 64, "metrics": codebook_metrics}))
register(ModelSpec(
    "dvae", DiscreteVAE, "discrete VAE: -k categorical latents of --n-classes classes "
    "(2 = Bernoulli), --estimator gumbel|straight_through|reinforce (--temperature, "
    "--anneal-rate, --min-temperature; --baseline learned|moving_average); NaN = missing",
    summary_params=("n_classes", "estimator", "epochs"), example=dvae_example,
    **{**_COMMON, "size_param": "n_latents", "size_label": "categorical latents",
       "default_size": 20}))
