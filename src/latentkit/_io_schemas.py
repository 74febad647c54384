"""What the fitted attributes of a model must look like, as data (STYLE 7), checked on load.

A schema maps a fitted attribute's name to a `Fitted` constraint: the dtype kinds allowed
and the shape, whose entries are ints, names of int hyper-parameters or int fitted
attributes (`"n_components"`, `"n_features_in_"`), or free symbols, bound by their first
use and then required to agree (by convention one capital letter, `"C"` below: any name
that is not an int hyper-parameter or fitted attribute is free).

`COMMON` holds the conventions every model shares and `EM_ENGINE` those of every
`EMModel` (checked where the attribute exists).
An entry "attribute.field" constrains a field of a record held by a fitted attribute
(checked where the record is present), e.g. "em_state_.shift".

A model class states its own schema through the method `_fitted_schema(self) -> dict`
(evaluated after its hyper-parameters are validated, so it may branch on them); for the
classes that ship with latentkit, which do not define the method yet, `DEFAULT_SCHEMAS`
below holds the same functions, keyed by "module.qualname".
"""

from __future__ import annotations

from typing import NamedTuple


class Fitted(NamedTuple):
    """A fitted attribute: a value whose dtype kind is in `kinds` ("f" floats, "iu"
    integers, "b" bool, "U" str, "O" an object array of str) and whose shape is `shape`
    (() for a scalar: a python or numpy number or string); None allowed when `optional`;
    every float finite when `finite`; every entry >= `low` when given."""

    kinds: str
    shape: tuple = ()
    optional: bool = False
    finite: bool = True
    low: float | None = None


#: scikit-learn's conventions, checked in every model
COMMON = {
    "n_features_in_": Fitted("iu", low=1),
    "feature_names_in_": Fitted("O", ("n_features_in_",)),
}

#: the bookkeeping the EM engine records (`base.EMModel._store_fit`)
EM_ENGINE = {
    "converged_": Fitted("b"),
    "n_iter_": Fitted("iu", low=0),
    "best_iteration_": Fitted("iu", low=0),
    "history_": Fitted("f", ("H",), finite=False),
    "lower_bound_": Fitted("f", finite=False),
    "stop_reason_": Fitted("U"),
}

_K, _D = "n_components", "n_features_in_"
_COVARIANCE_SHAPES = {"full": (_K, _D, _D), "tied": (_D, _D), "diag": (_K, _D),
                      "spherical": (_K,)}


def gaussian_mixture(model) -> dict:
    covariance = _COVARIANCE_SHAPES[model.covariance_type]
    return {"weights_": Fitted("f", (_K,), low=0), "means_": Fitted("f", (_K, _D)),
            "covariances_": Fitted("f", covariance),
            "precisions_cholesky_": Fitted("f", covariance),
            "precisions_": Fitted("f", covariance), "em_state_.shift": Fitted("f", (_D,))}


def bernoulli_mixture(model) -> dict:
    return {"weights_": Fitted("f", (_K,), low=0), "means_": Fitted("f", (_K, _D), low=0)}


def categorical_mixture(model, size: str = _K) -> dict:
    """Mixtures of categoricals: probs_ holds every feature's categories side by side (M)."""
    return {"n_categories_": Fitted("iu", (_D,), low=1), "weights_": Fitted("f", (size,), low=0),
            "probs_": Fitted("f", (size, "M"), low=0)}


def latent_class(model) -> dict:
    return categorical_mixture(model, "n_classes")


def ppca_mixture(model) -> dict:
    return {"weights_": Fitted("f", (_K,), low=0), "means_": Fitted("f", (_K, _D)),
            "components_": Fitted("f", (_K, "n_latent", _D)),
            "noise_variance_": Fitted("f", (_K,), low=0), "em_state_.shift": Fitted("f", (_D,))}


def pca(model) -> dict:
    C = "n_components_"
    return {"n_samples_": Fitted("iu", low=0), "svd_solver_": Fitted("U"),
            "converged_": Fitted("b"), "n_iter_": Fitted("iu", low=0),
            "components_": Fitted("f", (C, _D)), "explained_variance_": Fitted("f", (C,)),
            "explained_variance_ratio_": Fitted("f", (C,), finite=False),
            "singular_values_": Fitted("f", (C,)), "mean_": Fitted("f", (_D,)),
            "noise_variance_": Fitted("f", finite=False), "n_components_": Fitted("iu", low=0)}


def linear_gaussian(model, noise: tuple) -> dict:
    return {"mean_": Fitted("f", (_D,)), "components_": Fitted("f", ("n_components_", _D)),
            "noise_variance_": Fitted("f", noise, low=0), "n_components_": Fitted("iu", low=0),
            "em_state_.shift": Fitted("f", (_D,)), "em_state_.psi_floor": Fitted("f", (_D,))}


def ppca(model) -> dict:
    return linear_gaussian(model, ())


def factor_analysis(model) -> dict:
    return linear_gaussian(model, (_D,))


def fast_ica(model) -> dict:
    return {"mean_": Fitted("f", (_D,)), "unmixing_": Fitted("f", ("C", "C")),
            "whitening_": Fitted("f", ("C", _D), optional=True),
            "components_": Fitted("f", ("C", _D)), "mixing_": Fitted("f", (_D, "C")),
            "explained_variance_": Fitted("f", ("C",), optional=True),
            "noise_variance_": Fitted("f", low=0), "converged_": Fitted("b"),
            "n_iter_": Fitted("iu", low=0), "history_": Fitted("f", ("H",), finite=False),
            "log_likelihood_": Fitted("f", finite=False)}


def linear_dynamical_system(model) -> dict:
    S = "state_dim_"
    return {"state_dim_": Fitted("iu", low=1),
            "transition_matrix_": Fitted("f", (S, S)), "transition_offset_": Fitted("f", (S,)),
            "observation_matrix_": Fitted("f", (_D, S)),
            "observation_offset_": Fitted("f", (_D,)),
            "transition_covariance_": Fitted("f", (S, S)),
            "observation_covariance_": Fitted("f", (_D, _D)),
            "initial_state_mean_": Fitted("f", (S,)),
            "initial_state_covariance_": Fitted("f", (S, S))}


def discrete_bayes_net(model) -> dict:
    return {"cpt_values_": Fitted("f", ("P",), low=0)}


DEFAULT_SCHEMAS = {
    "latentkit.mixture.gaussian.GaussianMixture": gaussian_mixture,
    "latentkit.mixture.bernoulli.BernoulliMixture": bernoulli_mixture,
    "latentkit.mixture.categorical.CategoricalMixture": categorical_mixture,
    "latentkit.mixture.ppca_mixture.MixtureOfPPCA": ppca_mixture,
    "latentkit.bayesnet.latent_class.LatentClassModel": latent_class,
    "latentkit.bayesnet.network.DiscreteBayesNet": discrete_bayes_net,
    "latentkit.linear.pca.PCA": pca,
    "latentkit.linear.ppca.PPCA": ppca,
    "latentkit.linear.factor_analysis.FactorAnalysis": factor_analysis,
    "latentkit.linear.ica.FastICA": fast_ica,
    "latentkit.dynamics.lds.LinearDynamicalSystem": linear_dynamical_system,
}


def schema_of(model) -> dict:
    """COMMON, EM_ENGINE for an EMModel, and the model's own `_fitted_schema()` or else its
    class's entry in DEFAULT_SCHEMAS (later entries win)."""
    from .base import EMModel

    schema = {**COMMON, **(EM_ENGINE if isinstance(model, EMModel) else {})}
    if callable(getattr(model, "_fitted_schema", None)):
        return {**schema, **model._fitted_schema()}
    cls = type(model)
    function = DEFAULT_SCHEMAS.get(f"{cls.__module__}.{cls.__qualname__}")
    return schema if function is None else {**schema, **function(model)}
