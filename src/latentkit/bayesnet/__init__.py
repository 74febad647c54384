"""Discrete Bayesian networks: exact inference and EM learning with missing values."""

from .bif import BIFError, read_bif
from .latent_class import LatentClassModel
from .network import DiscreteBayesNet, MAPResult

__all__ = ["BIFError", "DiscreteBayesNet", "LatentClassModel", "MAPResult", "read_bif"]

from . import _registry  # noqa: E402,F401 -- the family's entry in latentkit.registry
