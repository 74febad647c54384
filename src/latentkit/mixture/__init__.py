"""Mixture models: z ~ Categorical(π), x | z = k ~ p_k(x)."""

from .gaussian import GaussianMixture

__all__ = ["GaussianMixture"]
