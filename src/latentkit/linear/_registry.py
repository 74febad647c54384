"""The linear-Gaussian family's entries in `latentkit.registry`: pca, ppca, fa and ica, with
a small example problem each."""

from __future__ import annotations

import numpy as np

from ..registry import ModelSpec, register
from .demo import mnist_linear
from .factor_analysis import FactorAnalysis
from .figures import gaussian_figures, ica_figures, loadings_tables, pca_figures
from .ica import FastICA
from .pca import PCA
from .ppca import PPCA


def low_rank_example(rng: np.random.Generator):
    """200 rows of 6-D data on a 2-D linear subspace plus independent noise of unequal
    variance per column (x = W z + mu + e)."""
    W = rng.normal(size=(2, 6))
    X = rng.normal(size=(200, 2)) @ W + rng.normal(size=6)
    X += rng.normal(size=X.shape) * rng.uniform(0.1, 0.4, size=6)
    return {"n_components": 2, "random_state": 0}, X


def ica_example(rng: np.random.Generator):
    """Three independent non-Gaussian sources (uniform, Laplace, a sign wave) mixed by a
    random 3x3 matrix (300 rows)."""
    S = np.column_stack([rng.uniform(-1, 1, 300), rng.laplace(size=300),
                         np.sign(np.sin(np.linspace(0, 40, 300)))])
    return {"n_components": 3, "random_state": 0}, S @ rng.normal(size=(3, 3)).T


DIGITS = "scikit-learn digits, 8 x 8 grey levels 0-16 (1797 x 64)"

register(ModelSpec(
    "pca", PCA, "principal component analysis", "digits", DIGITS, figures=pca_figures,
    tables=loadings_tables, summary_params=("svd_solver",), default_size=10, demo=mnist_linear,
    example=low_rank_example))
register(ModelSpec(
    "ppca", PPCA, "probabilistic PCA (closed form or EM; missing values)", "digits", DIGITS,
    figures=gaussian_figures, tables=loadings_tables, summary_params=("solver",),
    example=low_rank_example))
register(ModelSpec(
    "fa", FactorAnalysis, "factor analysis (diagonal noise; missing values; varimax)",
    "wine", "wine, 13 chemical measurements (178 x 13)", figures=gaussian_figures,
    tables=loadings_tables, summary_params=("rotation",), example=low_rank_example))
register(ModelSpec(
    "ica", FastICA, "independent component analysis by FastICA (--fun logcosh|exp|cube, "
    "--algorithm parallel|deflation)", "digits", DIGITS, figures=ica_figures,
    summary_params=("fun", "algorithm"), default_size=10, example=ica_example))
