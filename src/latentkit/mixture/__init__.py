"""Mixture models: z ~ Categorical(π), x | z = k ~ p_k(x)."""

from .bernoulli import BernoulliMixture
from .categorical import CategoricalMixture
from .gaussian import GaussianMixture
from .ppca_mixture import MixtureOfPPCA

__all__ = ["BernoulliMixture", "CategoricalMixture", "GaussianMixture", "MixtureOfPPCA"]

from . import _registry  # noqa: E402,F401 -- the family's entries in latentkit.registry
