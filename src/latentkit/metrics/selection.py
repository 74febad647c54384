"""Choosing the number of components: BIC, AIC or held-out log-likelihood.

    BIC = -2 log p(X | θ̂) + P log N      AIC = -2 log p(X | θ̂) + 2 P      (lower is better)
    held-out = mean log p(x | θ̂_train) over rows not used to fit         (higher is better)

with P the number of free parameters. Works for any estimator with a size parameter and
`bic` / `aic` / `score` methods: each candidate is a `clone` of the model with that parameter
set. The parameter's name comes from the model's `latentkit.registry` spec (`size_param`:
n_components for mixtures and linear models, n_topics for a topic model, ...); for a class
the registry does not know, pass `param=`, else scikit-learn's `n_components` is used.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing

from .._validation import as_generator
from ..exceptions import InvalidParameterError
from .table import ResultTable

CRITERIA = ("bic", "aic", "heldout")


class Selection(NamedTuple):
    """The result of `select_n_components`.

    table : a ResultTable with one row per candidate (first column: `param`); best_model :
    the chosen model, fitted on all of X; best_n_components : its size.
    """

    table: ResultTable
    best_model: object
    best_n_components: int

    @property
    def param(self) -> str:
        """The name of the size parameter that was varied (the table's first column)."""
        return self.table.columns[0]


def _check_candidates(candidates) -> list[int]:
    if isinstance(candidates, numbers.Integral | str | bytes) or not isinstance(
            candidates, Sequence | np.ndarray | range):
        raise InvalidParameterError(f"candidates must be a sequence of positive integers "
                                    f"(numbers of components to try); got {candidates!r}.")
    values = list(candidates)
    bad = [c for c in values if isinstance(c, bool) or not isinstance(c, numbers.Integral)
           or c < 1]
    if not values or bad:
        raise InvalidParameterError(f"candidates must be a non-empty sequence of positive "
                                    f"integers; got {candidates!r}"
                                    + (f" (invalid: {bad!r})." if bad else "."))
    if len(set(values)) != len(values):
        raise InvalidParameterError(f"candidates must be distinct; got {candidates!r}.")
    return [int(c) for c in values]


def size_param(model, param: str | None = None) -> str:
    """The name of the parameter that sets `model`'s size: `param` when given, else the
    registry's `size_param` for the model's class, else scikit-learn's `n_components`."""
    from ..registry import spec_for

    if param is None:
        try:
            spec = spec_for(type(model))
        except InvalidParameterError:  # a class the registry does not know
            spec = None
        if spec is not None and spec.size_param is None:
            raise InvalidParameterError(
                f"{type(model).__name__} has no size parameter to select (its registry spec "
                f"{spec.name!r} has size_param=None); pass param= to vary another one.")
        param = "n_components" if spec is None else spec.size_param
    if not hasattr(model, "get_params") or param not in model.get_params():
        raise InvalidParameterError(
            f"select_n_components needs an estimator with an {param!r} parameter; "
            f"{type(model).__name__} has none.")
    return param


def _check_model(model, criterion: str, param: str | None) -> str:
    """The size parameter's name, once the criterion and the model are checked."""
    if criterion not in CRITERIA:
        raise InvalidParameterError(f"criterion must be one of "
                                    f"{', '.join(map(repr, CRITERIA))}; got {criterion!r}.")
    param = size_param(model, param)
    method = "score" if criterion == "heldout" else criterion
    if not callable(getattr(model, method, None)):
        raise InvalidParameterError(f"criterion {criterion!r} needs a {method}() method, "
                                    f"which {type(model).__name__} lacks.")
    return param


def _split(X, test_size, random_state):
    """(train, test) rows of X by a seeded permutation; test_size a fraction in (0, 1)."""
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not (
            0 < test_size < 1):
        raise InvalidParameterError(f"test_size must be a fraction in (0, 1); got "
                                    f"{test_size!r}.")
    n = len(X)
    n_test = math.ceil(test_size * n)
    if n_test >= n:
        raise InvalidParameterError(f"test_size={test_size} leaves no training rows out of "
                                    f"{n}.")
    order = as_generator(random_state).permutation(n)
    return _safe_indexing(X, np.sort(order[n_test:])), _safe_indexing(X, np.sort(order[:n_test]))


def select_n_components(model, X, candidates, criterion: str = "bic", test_size: float = 0.25,
                        random_state=None, *, param: str | None = None) -> Selection:
    """Fit `model` with each size in `candidates` and pick the best.

    model : an unfitted or fitted estimator with a size parameter (it is cloned, not
        modified). X : (n_samples, n_features) data the model accepts (NaN = missing
        where the model marginalizes it).
    criterion : "bic" or "aic" (fit on all of X, lowest wins) or "heldout" (fit on a seeded
        random (1 - test_size) share of the rows, criterion = mean log-likelihood of the held-
        out rows, highest wins; the winner is then refitted on all of X).
    test_size : held-out fraction, used only by "heldout". random_state : seeds the split.
    Ties go to the earlier candidate.
    param : the size parameter to vary; by default the registry's `size_param` of the
        model's class (`latentkit.registry`), or n_components for a class it does not know.

    Returns Selection(table, best_model, best_n_components), whose `param` names the size
    parameter; the table's columns are `param`, the criterion (bic | aic | heldout),
    log_likelihood (mean per row on the rows the model was fitted on), time_s (fit time) and
    converged (None when the model does not report it).
    """
    candidates = _check_candidates(candidates)
    param = _check_model(model, criterion, param)
    if criterion == "heldout":
        X_fit, X_test = _split(X, test_size, random_state)
    else:
        X_fit = X
    table = ResultTable([param, criterion, "log_likelihood", "time_s", "converged"],
                        formats={criterion: ".6g", "time_s": ".3f"})
    fitted = []
    for k in candidates:
        estimator = clone(model).set_params(**{param: k})
        start = time.perf_counter()
        estimator.fit(X_fit)
        elapsed = time.perf_counter() - start
        if criterion == "heldout":
            value = float(estimator.score(X_test))
        else:
            value = float(getattr(estimator, criterion)(X_fit))
        converged = getattr(estimator, "converged_", None)
        table.add_row([k, value, float(estimator.score(X_fit)), elapsed,
                       None if converged is None else bool(converged)])
        fitted.append(estimator)
    values = table.column(criterion).astype(float)
    best = int(np.nanargmax(values) if criterion == "heldout" else np.nanargmin(values))
    best_k = candidates[best]
    best_model = fitted[best]
    if criterion == "heldout":
        best_model = clone(model).set_params(**{param: best_k}).fit(X)
    direction = "highest" if criterion == "heldout" else "lowest"
    table.title = f"{param} by {criterion} ({direction} wins): best {best_k}"
    return Selection(table, best_model, best_k)
