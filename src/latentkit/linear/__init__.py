"""Linear-Gaussian latent models: PCA, probabilistic PCA, factor analysis, ICA."""

from .factor_analysis import FactorAnalysis
from .ica import FastICA, amari_index, fastica  # noqa: E402
from .pca import PCA
from .ppca import PPCA

__all__ = ["PCA", "PPCA", "FactorAnalysis", "FastICA", "amari_index", "fastica"]

from . import _registry  # noqa: E402,F401 -- the family's entries in latentkit.registry
