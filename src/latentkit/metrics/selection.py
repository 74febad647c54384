"""Choosing the number of components: BIC, AIC or held-out log-likelihood.

    BIC = -2 log p(X | θ̂) + P log N      AIC = -2 log p(X | θ̂) + 2 P      (lower is better)
    held-out = mean log p(x | θ̂_train) over rows not used to fit         (higher is better)

with P the number of free parameters. Works for any estimator with a size parameter and
`bic` / `aic` / `score` methods: each candidate is a `clone` of the model with that parameter
set. The parameter's name comes from the model's `latentkit.registry` spec (`size_param`:
n_components for mixtures and linear models, n_topics for a topic model, ...); for a class
the registry does not know, pass `param=`, else scikit-learn's `n_components` is used.

A run is reproducible by default: one integer seed (0 unless `random_state` says otherwise)
seeds the held-out split and every candidate whose own `random_state` is None; it is
recorded in `Selection.random_state` and in the table's title. Warnings raised while one
candidate is fitted or scored are re-issued with its size in front ("n_components=7: EM did
not converge ..."), and a `SelectionEdgeWarning` says when the best size is the largest
candidate tried, or the smallest one above 1: the optimum may then lie outside the range.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.utils import _safe_indexing

from .._validation import RANDOM_STATE, as_generator
from ..exceptions import InvalidParameterError
from .table import ResultTable

CRITERIA = ("bic", "aic", "heldout")


DEFAULT_SEED = 0


class SelectionEdgeWarning(UserWarning):
    """The best size is at the edge of the candidates tried (the largest one, or the smallest
    one when it is above 1): the optimum may lie outside the range."""


@dataclass(frozen=True)
class Selection:
    """The result of `select_n_components`.

    table : a ResultTable with one row per candidate (first column: `param`); best_model :
    the chosen model, fitted on all of X; best_n_components : its size; random_state : the
    integer seed used for the held-out split and for every candidate whose own
    random_state was None (None only for a Selection built by hand).

    It unpacks as `table, best_model, best_n_components = selection`, as before it had a
    seed; `at_edge` says whether the best size is at the edge of the candidates.
    """

    table: ResultTable
    best_model: object
    best_n_components: int
    random_state: int | None = None

    def __iter__(self):
        return iter((self.table, self.best_model, self.best_n_components))

    @property
    def param(self) -> str:
        """The name of the size parameter that was varied (the table's first column)."""
        return self.table.columns[0]

    @property
    def at_edge(self) -> bool:
        """Whether the best size is the largest candidate, or the smallest one above 1, of
        more than one tried (`SelectionEdgeWarning` was issued)."""
        return _edge(self.table.column(self.param).tolist(), self.best_n_components) is not None


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


def _check_seed(random_state) -> int:
    """The integer seed of a run: DEFAULT_SEED for None, an int as given, and one integer
    drawn from a Generator or RandomState (so the run can be replayed from the number)."""
    if not any(random_state in constraint for constraint in RANDOM_STATE):
        raise InvalidParameterError(f"random_state must be None, an integer >= 0, a numpy "
                                    f"Generator or a RandomState; got {random_state!r}.")
    if random_state is None:
        return DEFAULT_SEED
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    return int(random_state)


def _split(X, test_size, seed: int):
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
    order = as_generator(seed).permutation(n)
    return _safe_indexing(X, np.sort(order[n_test:])), _safe_indexing(X, np.sort(order[:n_test]))


def _candidate(model, param: str, k: int, seed: int):
    """An unfitted clone of `model` of size k, seeded with `seed` when its own random_state
    is None (an explicit one is kept)."""
    estimator = clone(model).set_params(**{param: k})
    if estimator.get_params(deep=False).get("random_state", ...) is None:
        estimator.set_params(random_state=seed)
    return estimator


def _fit_candidate(estimator, X_fit, X_test, criterion: str, scorer=None):
    """Fit `estimator` on X_fit : (n_fit, n_features); the table row's numbers
    (criterion value, mean log-likelihood per row of X_fit, fit seconds)."""
    start = time.perf_counter()
    estimator.fit(X_fit)
    elapsed = time.perf_counter() - start
    if scorer is not None:  # data not in memory, scored block by block
        values = scorer(estimator, X_fit)
        return float(values[criterion]), float(values["mean_log_likelihood"]), elapsed
    if criterion == "heldout":
        value = float(estimator.score(X_test))
    else:
        value = float(getattr(estimator, criterion)(X_fit))
    return value, float(estimator.score(X_fit)), elapsed


def _labelled(label: str, function, *args):
    """function(*args), its warnings re-issued with `label: ` in front of each message (same
    category, attributed to the caller of select_n_components). The active filters apply
    inside, so a filter that turns a warning into an error still raises there."""
    with warnings.catch_warnings(record=True) as caught:
        result = function(*args)
    for record in caught:
        warnings.warn(f"{label}: {record.message}", record.category, stacklevel=3)
    return result


def _edge(candidates: list[int], best_k: int) -> str | None:
    """"largest" or "smallest" when best_k is that edge of more than one candidate, else
    None. The smallest counts only above 1: K=1 winning is an answer, not an edge."""
    if len(candidates) < 2:
        return None
    if best_k == max(candidates):
        return "largest"
    if best_k == min(candidates) and best_k > 1:
        return "smallest"
    return None


def _edge_message(candidates: list[int], best_k: int, param: str, criterion: str,
                  edge: str) -> str:
    """What `SelectionEdgeWarning` says: where the best size sits and a range to try."""
    low, high = min(candidates), max(candidates)
    contiguous = sorted(candidates) == list(range(low, high + 1))
    tried = f"{low}..{high}" if contiguous else ", ".join(map(str, sorted(candidates)))
    if edge == "largest":
        where, direction, start, stop = "beyond", "higher", low, 2 * high
    else:
        where, direction, start, stop = "below", "lower", 1, high
    return (f"the best {param} by {criterion} is {best_k}, the {edge} candidate tried "
            f"({tried}): the optimum may lie {where}; try a range reaching {direction} (e.g. "
            f"-k {start}:{stop} on the command line, or candidates=range({start}, {stop + 1})).")


def _pick(table: ResultTable, criterion: str) -> int:
    """Index of the best candidate: highest held-out log-likelihood, else lowest BIC / AIC;
    ties go to the earlier one, NaN never wins."""
    values = table.column(criterion).astype(float)
    return int(np.nanargmax(values) if criterion == "heldout" else np.nanargmin(values))


def select_n_components(model, X, candidates, criterion: str = "bic", test_size: float = 0.25,
                        random_state=None, *, param: str | None = None,
                        scorer=None) -> Selection:
    """Fit `model` with each size in `candidates` and pick the best.

    model : an unfitted or fitted estimator with a size parameter (it is cloned, not
        modified). X : (n_samples, n_features) data the model accepts (NaN = missing
        where the model marginalizes it).
    criterion : "bic" or "aic" (fit on all of X, lowest wins) or "heldout" (fit on a seeded
        random (1 - test_size) share of the rows, criterion = mean log-likelihood of the held-
        out rows, highest wins; the winner is then refitted on all of X).
    test_size : held-out fraction, used only by "heldout".
    random_state : None (seed 0, the default), an int >= 0, or a Generator / RandomState from
        which one integer seed is drawn. The seed splits the rows for "heldout" and is given
        to every candidate whose own random_state is None (an explicit one is kept), so two
        runs print the same table. Ties go to the earlier candidate.
    param : the size parameter to vary; by default the registry's `size_param` of the
        model's class (`latentkit.registry`), or n_components for a class it does not know.
    scorer : for X that is not in memory (a store's path, a Dask array: "bic" or "aic"
        only), (fitted estimator, X) -> {criterion: value, "mean_log_likelihood": value},
        summed block by block; None scores X in memory with the model's own methods.

    Warnings raised while a candidate is fitted or scored are re-issued, same category, as
    "n_components=7: <message>". A SelectionEdgeWarning says when the best size is the
    largest candidate, or the smallest one above 1 (of more than one tried).

    Returns Selection(table, best_model, best_n_components, random_state) (the seed used),
    whose `param` names the size parameter and `at_edge` flags an edge; the table's columns
    are `param`, the criterion (bic | aic | heldout), log_likelihood (mean per row on the
    rows the model was fitted on), time_s (fit time) and converged (None when the model does
    not report it); its title names the seed.
    """
    candidates = _check_candidates(candidates)
    param = _check_model(model, criterion, param)
    seed = _check_seed(random_state)
    if scorer is not None and criterion == "heldout":
        raise InvalidParameterError("criterion 'heldout' splits the rows in memory; with a "
                                    "scorer (data not in memory) use 'bic' or 'aic'.")
    X_fit, X_test = _split(X, test_size, seed) if criterion == "heldout" else (X, None)
    table = ResultTable([param, criterion, "log_likelihood", "time_s", "converged"],
                        formats={criterion: ".6g", "time_s": ".3f"})
    fitted = []
    for k in candidates:
        estimator = _candidate(model, param, k, seed)
        value, log_likelihood, elapsed = _labelled(f"{param}={k}", _fit_candidate, estimator,
                                                   X_fit, X_test, criterion, scorer)
        converged = getattr(estimator, "converged_", None)
        table.add_row([k, value, log_likelihood, elapsed,
                       None if converged is None else bool(converged)])
        fitted.append(estimator)
    best = _pick(table, criterion)
    best_k, best_model = candidates[best], fitted[best]
    if criterion == "heldout":
        best_model = _labelled(f"{param}={best_k} (refitted on all rows)", _candidate(
            model, param, best_k, seed).fit, X)
    direction = "highest" if criterion == "heldout" else "lowest"
    table.title = (f"{param} by {criterion} ({direction} wins, random_state={seed}): "
                   f"best {best_k}")
    edge = _edge(candidates, best_k)
    if edge is not None:
        warnings.warn(_edge_message(candidates, best_k, param, criterion, edge),
                      SelectionEdgeWarning, stacklevel=2)
    return Selection(table, best_model, best_k, seed)
