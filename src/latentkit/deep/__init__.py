"""Deep latent variable models on PyTorch (issue 14): VAE, IWAE, hierarchical VAE, their
building blocks, objectives and log-likelihood estimators, and the Trainer."""

from .trainer import Trainer
from .vae import IWAE, VAE, HierarchicalVAE

__all__ = ["IWAE", "HierarchicalVAE", "VAE", "Trainer"]

from . import _registry  # noqa: E402,F401 -- the family's entries in latentkit.registry
