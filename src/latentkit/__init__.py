"""latentkit: latent variable models — learning θ by maximum marginal likelihood and
inference of p(z | x), with one contract for every family (see `latentkit.base`).

    from latentkit import GaussianMixture
    gm = GaussianMixture(n_components=3, n_init=5, random_state=0).fit(X)
    gm.posterior(X).probs, gm.score_samples(X), gm.bic(X), gm.impute(X_nan), gm.sample(100)
"""

__version__ = "0.1.0"

from . import compat, datasets, metrics  # noqa: E402, F401 -- latentkit.compat: peer adapters
from .bayesnet import DiscreteBayesNet, LatentClassModel  # noqa: E402
from .distributions import Categorical, Dirichlet, Gaussian  # noqa: E402
from .dynamics import LinearDynamicalSystem  # noqa: E402
from .em import Checkpoint, ConvergenceWarning, ReseedWarning  # noqa: E402
from .io import ModelFileError, load  # noqa: E402
from .linear import PCA, PPCA, FactorAnalysis, FastICA  # noqa: E402
from .metrics import ResultTable, select_n_components  # noqa: E402
from .mixture import (  # noqa: E402
    BernoulliMixture,
    CategoricalMixture,
    GaussianMixture,
    MixtureOfPPCA,
)
from .registry import ModelSpec, get_spec, register, registered_specs, spec_for  # noqa: E402
from .topics import LDA  # noqa: E402

__all__ = [
    "BernoulliMixture", "Categorical", "CategoricalMixture", "Checkpoint", "ConvergenceWarning",
    "Dirichlet", "HierarchicalVAE", "IWAE", "VAE",
    "FactorAnalysis", "FastICA", "Gaussian", "LDA", "MixtureOfPPCA", "PCA", "PPCA",
    "GaussianMixture", "LinearDynamicalSystem", "ModelFileError", "ReseedWarning", "ResultTable",
    "DiscreteBayesNet", "LatentClassModel", "datasets", "load",
    "metrics", "select_n_components",
    "ModelSpec", "get_spec", "register", "registered_specs", "spec_for",
]


#: families imported on first use, for what importing them costs (latentkit.deep: PyTorch,
#: about 1.6 s and 400 MB): `latentkit.VAE` imports it, as do the registry and `load`
_ON_FIRST_USE = {"VAE": "deep", "IWAE": "deep", "HierarchicalVAE": "deep"}


def __getattr__(name):
    if name in _ON_FIRST_USE:
        import importlib

        return getattr(importlib.import_module(f".{_ON_FIRST_USE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def import_families() -> None:
    """Import every model family (those imported on first use included), so that each has
    registered its models (`latentkit.registry`)."""
    import importlib

    for family in sorted(set(_ON_FIRST_USE.values())):
        importlib.import_module(f".{family}", __name__)
