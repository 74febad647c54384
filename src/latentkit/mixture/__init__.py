"""Mixture models: z ~ Categorical(π), x | z = k ~ p_k(x)."""

from .bernoulli import BernoulliMixture
from .categorical import CategoricalMixture
from .gaussian import GaussianMixture
from .ppca_mixture import MixtureOfPPCA

__all__ = ["BernoulliMixture", "CategoricalMixture", "GaussianMixture", "MixtureOfPPCA"]
