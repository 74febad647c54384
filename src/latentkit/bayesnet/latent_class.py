"""Latent class analysis: the naive-Bayes network with a hidden root,

    C ~ Categorical(π),   X_j | C = c ~ Categorical(θ_cj) independently over columns j,

which is exactly the categorical mixture. `LatentClassModel` is therefore CategoricalMixture
under the vocabulary of latent class analysis (classes, not components): one implementation
of the EM, the priors, missing values and re-seeding. `to_bayesnet()` returns the equivalent
DiscreteBayesNet, whose general inference gives the same log-likelihood and posteriors.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._validation import Interval, check_params
from ..exceptions import InvalidParameterError
from ..io import register_model
from ..mixture._discrete import discrete_family
from ..mixture.categorical import CATEGORICAL_KERNELS, CategoricalMixture
from .network import DiscreteBayesNet


@register_model
class LatentClassModel(CategoricalMixture):
    """Latent class model over categorical columns: integer codes (NaN = missing) or state
    names (a DataFrame or object array of strings; see CategoricalMixture, which learns
    `categories_` and maps names in and out).

    Parameters
    ----------
    n_classes : int, number of latent classes K. Every other parameter is
        CategoricalMixture's (n_categories, alpha, weight_alpha, tol, max_iter, n_init,
        init_params, weights_init, probs_init and the EM engine's options); see there.

    Attributes
    ----------
    weights_ (K,) class proportions π, probs_ (K, M) the concatenated p(x_j = l | class),
    `category_probs(j)` : (K, L_j) (`as_frame=True`: rows = classes, columns = state names),
    n_categories_, categories_ (None after a fit on codes), and the engine's converged_,
    n_iter_, history_, lower_bound_. `predict` gives the most probable class of each row.
    """

    _latent_name = "class"
    # every message a user of this model sees speaks of n_classes and classes
    _size_param, _latent_plural, _latent_words = "n_classes", "classes", "class(es)"
    em_family = discrete_family(
        CATEGORICAL_KERNELS, remedy="increase alpha (the Dirichlet smoothing), use fewer "
        "classes, or fit in float64")
    _parameter_constraints: ClassVar[dict] = {"n_classes": [Interval(int, 1, None)]}

    def __init__(self, n_classes=2, *, n_categories=None, alpha=0.01, weight_alpha=1.0,
                 tol=1e-3, max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 probs_init=None, random_state=None, warm_start=False, verbose=None,
                 max_time=None, callbacks=None, chunk_size=None, learning_decay=0.7,
                 learning_offset=10.0):
        self._store_init_args(locals())

    @property
    def n_components(self) -> int:
        """The mixture's name for n_classes (what the shared implementation reads)."""
        return self.n_classes

    def _validate_params(self):
        check_params(self, {"n_classes": self._parameter_constraints["n_classes"]})
        super()._validate_params()

    def to_bayesnet(self, class_name: str = "class", column_names=None) -> DiscreteBayesNet:
        """The fitted model as a DiscreteBayesNet: edges class -> x_j, the class hidden,
        CPTs π and θ_j. column_names : J names (default: the fit DataFrame's columns, else
        x0, x1, ...). Columns with state names (`categories_`) keep them as the network's
        state_names."""
        check_is_fitted(self)
        J = len(self.n_categories_)
        default = getattr(self, "feature_names_in_", [f"x{j}" for j in range(J)])
        names = [str(c) for c in (default if column_names is None else column_names)]
        if len(names) != J or len(set(names)) != J or class_name in names:
            raise InvalidParameterError(f"column_names must be {J} distinct names other than "
                             f"class_name={class_name!r}; got {names!r}.")
        cardinalities = {class_name: self.n_classes}
        cardinalities.update({name: int(L) for name, L in zip(names, self.n_categories_)})
        cpts = {class_name: np.asarray(self.weights_, dtype=np.float64)}
        cpts.update({name: np.asarray(self.category_probs(j), dtype=np.float64)
                     for j, name in enumerate(names)})
        states = {name: [str(s) for s in names_j]
                  for name, names_j in zip(names, self.categories_ or [None] * J)
                  if names_j is not None}
        return DiscreteBayesNet(edges=[(class_name, name) for name in names],
                                cardinalities=cardinalities, cpts=cpts, hidden=[class_name],
                                state_names=states or None, alpha=self.alpha)
