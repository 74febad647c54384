"""The mixture family's entries in `latentkit.registry`: gmm, bmm, cmm and mppca, with the
preparation of bundled data for the discrete mixtures and a small example problem each."""

from __future__ import annotations

import numpy as np

from ..registry import ModelSpec, register
from .bernoulli import BernoulliMixture
from .categorical import CategoricalMixture
from .demo import faithful_gmm, mnist_bmm
from .figures import (
    bmm_figures,
    bmm_tables,
    cmm_figures,
    cmm_tables,
    gmm_figures,
    gmm_tables,
    mppca_figures,
    mppca_tables,
)
from .gaussian import GaussianMixture
from .ppca_mixture import MixtureOfPPCA

# -- preparing bundled datasets -----------------------------------------------------------


def _is_binary(X: np.ndarray) -> bool:
    return bool(np.isin(X[~np.isnan(X)], (0.0, 1.0)).all())


def binarize(data):
    """Binary data for a Bernoulli model: bundled image data (digits, mnist) is thresholded
    at half its grey-level range (x > (low + high) / 2); already-binary data is kept."""
    from ..exceptions import InvalidInputError

    X = data.X
    if _is_binary(X):
        return data
    if data.value_range is None:
        raise InvalidInputError(
            f"{data.name} is not binary and has no natural threshold; a Bernoulli mixture "
            f"needs 0/1 data: use digits, mnist or binarized_mnist, or a file of 0/1 values.")
    low, high = data.value_range
    return data.replace(X=np.where(np.isnan(X), np.nan, (X > (low + high) / 2).astype(float)),
                        name=f"{data.name} (binarized at {(low + high) / 2:g})")


def discretize(data, n_levels: int = 3):
    """Integer-coded categories for a categorical model: image data (digits, mnist) becomes
    4 equal-width grey levels of its range; other continuous data becomes `n_levels`
    quantile bins per column (tertiles: low / medium / high); 0/1 data is kept."""
    X = data.X
    if _is_binary(X):
        return data
    if data.value_range is not None:
        low, high = data.value_range
        codes = np.minimum(np.floor((X - low) / (high - low) * 4), 3)
        name = f"{data.name} (4 grey levels)"
    else:
        codes = np.empty_like(X, dtype=np.float64)
        for j in range(X.shape[1]):
            column = X[:, j]
            edges = np.nanquantile(column, np.arange(1, n_levels) / n_levels)
            codes[:, j] = np.searchsorted(edges, column, side="right")
        name = f"{data.name} ({n_levels} quantile bins per column)"
    return data.replace(X=np.where(np.isnan(X), np.nan, codes), name=name)


# -- example problems ---------------------------------------------------------------------


def gmm_example(rng: np.random.Generator):
    """Three well separated 2-D Gaussian clusters (240 rows)."""
    from ..datasets import make_mixture

    X = make_mixture(240, n_components=3, n_features=2, random_state=rng).X
    return {"n_components": 3, "random_state": 0}, X


def bmm_example(rng: np.random.Generator):
    """Binary rows from two Bernoulli prototypes over 12 columns (200 rows)."""
    from ..datasets import make_bernoulli_mixture

    X = make_bernoulli_mixture(200, n_components=2, n_features=12, random_state=rng).X
    return {"n_components": 2, "random_state": 0}, X


def cmm_example(rng: np.random.Generator):
    """Integer codes in 4 columns of 3, 4, 2 and 3 categories, two classes (200 rows)."""
    from ..datasets import make_categorical_mixture

    X = make_categorical_mixture(200, n_components=2, n_categories=(3, 4, 2, 3),
                                 random_state=rng).X
    return {"n_components": 2, "random_state": 0}, X


def mppca_example(rng: np.random.Generator):
    """Two clusters in 5-D, each spread along its own line plus small noise (200 rows)."""
    directions = rng.normal(size=(2, 5))
    centres = np.array([[4.0] * 5, [-4.0] * 5])
    labels = np.repeat([0, 1], 100)
    X = centres[labels] + rng.normal(size=(200, 1)) * directions[labels]
    X += 0.1 * rng.normal(size=X.shape)
    return {"n_components": 2, "n_latent": 1, "random_state": 0}, X


DIGITS = "scikit-learn digits, 8 x 8 grey levels 0-16 (1797 x 64)"

register(ModelSpec(
    "gmm", GaussianMixture, "Gaussian mixture (full, diag, spherical or tied covariance)",
    "faithful", "Old Faithful eruptions (272 x 2)", figures=gmm_figures, tables=gmm_tables,
    summary_params=("covariance_type",), demo=faithful_gmm, example=gmm_example))
register(ModelSpec(
    "bmm", BernoulliMixture, "Bernoulli mixture for binary data",
    "digits", "scikit-learn digits binarized at half range, grey level > 8 (1797 x 64)",
    prepare=binarize, figures=bmm_figures, tables=bmm_tables, demo=mnist_bmm,
    example=bmm_example))
register(ModelSpec(
    "cmm", CategoricalMixture, "categorical mixture for categorical columns (integer codes "
    "or text states)",
    "wine", "wine, each of 13 columns cut into tertiles: levels 0/1/2 (178 x 13)",
    prepare=discretize, figures=cmm_figures, tables=cmm_tables, example=cmm_example,
    categorical=True))
register(ModelSpec(
    "mppca", MixtureOfPPCA,
    "mixture of probabilistic PCA models: clusters with a local M-dimensional linear "
    "subspace each (--n-latent M, default 2); missing values", "digits", DIGITS,
    figures=mppca_figures, tables=mppca_tables, summary_params=("n_latent",),
    default_size=10, example=mppca_example))
