"""latentkit: latent variable models — learning θ by maximum marginal likelihood and
inference of p(z | x), with one contract for every family."""

__version__ = "0.1.0"

from .distributions import Categorical, Gaussian  # noqa: E402
from .em import ConvergenceWarning, ReseedWarning  # noqa: E402
from .io import load  # noqa: E402
from .mixture import GaussianMixture  # noqa: E402

__all__ = [
    "Categorical", "ConvergenceWarning", "Gaussian", "GaussianMixture", "ReseedWarning",
    "load",
]
