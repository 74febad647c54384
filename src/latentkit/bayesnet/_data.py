"""Data and evidence for a Bayesian network, validated at the boundary.

Data is one column per observed (non-hidden) variable, in variable order: an integer-code
array (NaN, -1 or None = missing), an object array of state names, or a pandas DataFrame
whose columns are matched by name (categorical, string or numeric columns). Everything
becomes one float array of codes with NaN for missing, which is what the EM engine streams.
Evidence for a query is a dict {variable: state code or name} (one case) or a dict of
equal-length arrays / a data matrix (a batch of cases). Names and codes meet in the shared
`latentkit._states`; `learn_network_states` names the states of variables that have no
given names from text data at fit.
"""

from __future__ import annotations

import numpy as np

from .._states import column_holds_names, decode, encode_column, holds_names, learn_states
from .._validation import unmask
from ..exceptions import InvalidInputError
from ..mixture.categorical import check_codes
from ._graph import Structure

MODEL = "DiscreteBayesNet"


def _is_frame(X) -> bool:
    return hasattr(X, "columns") and hasattr(X, "iloc")


def _column_codes(values, v: int, structure: Structure, where: str) -> np.ndarray:
    """One column (any dtype) -> float codes with NaN for missing (-1 too)."""
    out = encode_column(values, structure.states[v], where, repr(structure.names[v]))
    out[out == -1] = np.nan
    return out


def _observed_columns(X, structure: Structure) -> list:
    """[(variable index, its raw column, where)] of the data, matched as `as_codes` does."""
    observed = structure.observed
    if _is_frame(X):
        columns = {str(c): c for c in X.columns}
        return [(v, X[columns[structure.names[v]]], f"X[{structure.names[v]!r}]")
                for v in observed if structure.names[v] in columns]
    array = np.asarray(X)
    if array.ndim != 2 or array.shape[1] != len(observed):
        return []  # as_codes gives the error
    return [(v, array[:, j], f"X[:, {j}]") for j, v in enumerate(observed)]


def learn_network_states(X, structure: Structure, given) -> dict:
    """{variable: state names} learned from text columns of the data for the observed
    variables without given state names (sorted, or a Categorical's categories). A
    column whose names are all default names ("0", "1", ...) learns nothing. The number
    of names must equal the variable's cardinality."""
    learned = {}
    for v, column, where in _observed_columns(X, structure):
        name, k = structure.names[v], structure.cards[v]
        if name in (given or {}) or not column_holds_names(column):
            continue
        if _names_in(column) <= set(structure.states[v]):
            continue  # the default names "0".."k-1" already decode these
        states = [str(s) for s in learn_states(column, where)]
        if len(states) != k:
            raise InvalidInputError(
                f"{where} holds {len(states)} state names {states}, but {name!r} has "
                f"cardinality {k}: give state_names={{{name!r}: [{k} names]}} (or a pandas "
                "Categorical with every state) to name them all.")
        learned[name] = tuple(states)
    return learned


def _names_in(column) -> set:
    """The strings of a column (a Categorical's categories)."""
    if str(getattr(column, "dtype", "")) == "category":
        return {str(c) for c in column.cat.categories}
    return {item for item in np.asarray(column, dtype=object).tolist() if isinstance(item, str)}


def evidence_holds_names(evidence) -> bool:
    """Whether query evidence (None, a dict or a data table) gives any state by name."""
    if evidence is None:
        return False
    if isinstance(evidence, dict):
        return any(column_holds_names(np.atleast_1d(np.asarray(value, dtype=object)))
                   for value in evidence.values())
    return holds_names(evidence)


def as_codes(X, structure: Structure) -> np.ndarray:
    """Data -> (n, n_observed) float codes, NaN = missing, in float32 when X is float32.

    Raises InvalidInputError (a ValueError) naming the row and column of the first bad entry.
    """
    observed = structure.observed
    names = [structure.names[v] for v in observed]
    X = unmask(X, allow_nan=True, model=MODEL)  # a masked entry is missing
    if _is_frame(X):
        columns = [str(c) for c in X.columns]
        absent = [name for name in names if name not in columns]
        if absent:
            raise InvalidInputError(f"the data has no column for {absent}; the network's observed "
                                    f"variables are {names}.")
        hidden = {structure.names[v] for v in structure.hidden}
        extra = [c for c in columns if c not in names and not (
            c in hidden and X[c].isna().all())]
        if extra:
            raise InvalidInputError(f"the data has columns {extra} that are not observed variables "
                                    f"of the network ({names}); drop them.")
        codes = np.column_stack([
            _column_codes(X[name], v, structure, f"X[{name!r}]")
            for name, v in zip(names, observed)]) if names else np.empty((len(X), 0))
        dtype = np.float64
    else:
        array = np.asarray(X)
        if array.ndim == 1 and len(names) == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise InvalidInputError(f"data must be 2-D (n_rows, {len(names)} observed variables); "
                                    f"got shape {array.shape}.")
        if array.shape[1] != len(names):
            raise InvalidInputError(
                f"data has {array.shape[1]} columns; the network has {len(names)} "
                f"observed variables {names} (hidden variables have no column).")
        dtype = np.float32 if array.dtype == np.float32 else np.float64
        if array.dtype.kind in "biuf":
            codes = array.astype(np.float64)
            codes[codes == -1] = np.nan
        else:
            codes = np.column_stack([
                _column_codes(array[:, j], v, structure, f"X[:, {j}]")
                for j, v in enumerate(observed)]) if names else np.empty((len(array), 0))
    if len(codes) == 0:
        raise InvalidInputError("the data has no rows.")
    check_codes_finite(codes)
    check_codes(codes, [structure.cards[v] for v in observed], 0, MODEL,
                [f"the cardinality of {structure.names[v]!r}" for v in observed])
    return codes.astype(dtype, copy=False)


def decode_data(codes: np.ndarray, structure: Structure) -> np.ndarray:
    """codes : (n, n_observed) -> the observed variables' state names : (n, n_observed)
    object array (None where missing)."""
    out = np.empty(codes.shape, dtype=object)
    for j, v in enumerate(structure.observed):
        out[:, j] = decode(codes[:, j], structure.states[v])
    return out


def check_codes_finite(codes: np.ndarray) -> None:
    bad = np.isinf(codes)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InvalidInputError(
            f"X[{row}, {col}] is inf; states are integer codes (NaN, -1 or None "
            "for missing).")


def evidence_states(evidence, structure: Structure):
    """Evidence -> (states (n, V) int with -1 = unknown, batched).

    evidence : None; {name: code or state name} (one case, batched False); {name: (n,)
    codes} or a data matrix / DataFrame of the observed variables (batched True).
    """
    V = len(structure.names)
    if evidence is None:
        return np.full((1, V), -1, dtype=np.int64), False
    if not isinstance(evidence, dict):
        codes = as_codes(evidence, structure)
        states = np.full((len(codes), V), -1, dtype=np.int64)
        states[:, list(structure.observed)] = np.nan_to_num(codes, nan=-1).astype(np.int64)
        return states, True
    batched = any(np.ndim(value) > 0 for value in evidence.values())
    n = max([np.size(value) for value in evidence.values()] + [1])
    states = np.full((n, V), -1, dtype=np.int64)
    for name, value in evidence.items():
        v = structure.position(name, f"evidence names {name!r}", InvalidInputError)
        values = np.atleast_1d(np.asarray(value, dtype=object))
        if values.ndim != 1 or len(values) not in (1, n):
            raise InvalidInputError(
                f"evidence[{name!r}] must be one state or {n} states; got shape "
                f"{np.shape(value)}.")
        codes = _column_codes(values, v, structure, f"evidence[{name!r}]")
        k = structure.cards[v]
        known = codes[~np.isnan(codes)]
        if np.any((known < 0) | (known >= k) | (known != np.floor(known))):
            raise InvalidInputError(
                f"evidence[{name!r}] = {value!r} is not a state of {name!r}: it "
                f"takes codes 0..{k - 1} or names {list(structure.states[v])}.")
        states[:, v] = np.nan_to_num(codes, nan=-1).astype(np.int64)
    return states, batched
