"""Deep latent variable models on PyTorch: VAE, IWAE, hierarchical VAE (issue 14); β-VAE,
β-TC-VAE, VQ-VAE and discrete-latent VAEs (issue 15); their building blocks, objectives and
log-likelihood estimators, and the Trainer."""

from .discrete import DiscreteVAE
from .tcvae import BetaTCVAE, BetaVAE
from .trainer import Trainer
from .vae import IWAE, VAE, HierarchicalVAE
from .vqvae import VQVAE

__all__ = ["BetaTCVAE", "BetaVAE", "DiscreteVAE", "IWAE", "HierarchicalVAE", "VAE", "VQVAE",
           "Trainer"]

from . import _registry  # noqa: E402,F401 -- the family's entries in latentkit.registry
