"""State names <-> integer codes for categorical data: learn, encode, decode, label, store.

Models of categorical data compute on integer codes stored as floats (NaN = missing). This
module is the one place where the user's state names meet those codes, for
CategoricalMixture, LatentClassModel and DiscreteBayesNet alike:

    learn_states(column)          -> the column's state names (sorted; a pandas Categorical
                                     keeps its categories in their order), or None for a
                                     column of codes;
    encode_column(column, states) -> float codes, NaN for missing; an unknown name is an
                                     InvalidInputError naming the column, row, value and the
                                     known states;
    decode(codes, states)         -> an object array of state names (None for missing).

A column holds names when it is text: strings in an object / string / pandas Categorical
column or a unicode array. Numbers are codes wherever they appear (a numeric column of a
mixed DataFrame, or a number in an object column of a network's data). Missing: None, NaN
and pandas' NA. The rule of every model: names in, names out (a method whose output is data
states returns names where its input held names); labelled tables (`as_frame=True`,
`as_series=True`) on request.

`PackedStates` stores a list (or dict) of state-name arrays of different lengths as three
flat arrays, which `latentkit.io` saves without pickle.

Limits. Every size read from data values (the largest code of a column, its number of
distinct state names, `n_categories`, a Bayesian network's cardinalities) is checked against
these constants before anything of that size is allocated, so that one stray value (a code
of 1e9, an identifier column) is a clear InvalidInputError / InvalidParameterError naming
the column, the value and the fix, never a MemoryError or a killed process:

    MAX_CATEGORIES    = 10_000   levels of one column / states of one variable (codes
                                 0..9_999);
    MAX_TOTAL_LEVELS  = 100_000  Σ_j L_j, the width of a categorical mixture's one-hot
                                 encoding: an E-step chunk (>= 256 rows) stays under
                                 256 * 100_000 * 8 B = 205 MB;
    MAX_TABLE_ENTRIES = 10**7    entries of one parameter table: a mixture's θ (K * Σ_j L_j)
                                 or a network's CPT or clique table (80 MB in float64; EM
                                 keeps a few such arrays);
    MAX_ONE_HOT_ENTRIES = 2**25  entries of the one-hot encoding a categorical mixture's
                                 initialization (k-means) works on (268 MB in float64): it
                                 uses a random subset of max(K, 2**25 // Σ_j L_j) rows of
                                 the init sample when the sample is larger.

Far above what a categorical model of real data needs (a column with thousands of levels is
an identifier or free text, not a category), far below what would exhaust memory.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._frames import is_data_frame
from .exceptions import InvalidInputError, InvalidParameterError
from .io import register_record

MAX_CATEGORIES = 10_000
MAX_TOTAL_LEVELS = 100_000
MAX_TABLE_ENTRIES = 10**7
MAX_ONE_HOT_ENTRIES = 2**25

RECODE = ("recode the column to 0..L-1 (e.g. with pandas.factorize) or pass its states as "
          "text")
IDENTIFIER = ("a column with that many states is an identifier or free text; drop it, or "
              "group its rare states together")


def check_level_count(count, where: str, what: str, error=InvalidInputError,
                      fix: str = IDENTIFIER) -> int:
    """`count` levels of one column / variable (e.g. what = "holds 12000 distinct state
    names") as an int, or `error` naming it, MAX_CATEGORIES and `fix` when above the
    limit."""
    if count > MAX_CATEGORIES:
        raise error(f"{where} {what}; a categorical column or variable takes at most "
                    f"{MAX_CATEGORIES} levels (MAX_CATEGORIES = {MAX_CATEGORIES}): {fix}.")
    return int(count)


def _pandas():
    import pandas as pd

    return pd


def _is_categorical(column) -> bool:
    return str(getattr(column, "dtype", "")) == "category"


def _is_str(item) -> bool:
    return isinstance(item, str | np.str_)


def _missing(values: np.ndarray) -> np.ndarray:
    """(n,) mask of None / NaN / pd.NA entries of a 1-D array of any dtype."""
    if values.dtype.kind in "biuUS":
        return np.zeros(len(values), dtype=bool)
    if values.dtype.kind in "fc":
        return np.isnan(values)
    return np.asarray(_pandas().isna(values), dtype=bool)


def column_holds_names(column) -> bool:
    """Whether one column (array or Series) is text: a pandas Categorical, a unicode array,
    or an object / string column with at least one string."""
    if _is_categorical(column):
        return True
    values = np.asarray(column)
    if values.dtype.kind in "US":
        return True
    return values.dtype.kind == "O" and any(_is_str(item) for item in values.tolist())


def table_columns(X, name: str = "X"):
    """[(column values, where, what)] of a 2-D table : (n, J): a DataFrame's Series, or an
    array's columns; `where` and `what` name the column in messages ("X['color']", "column
    'color'"; "X[:, 2]", "column 2")."""
    if is_data_frame(X):
        return [(X[c], f"{name}[{c!r}]", f"column {c!r}") for c in X.columns]
    values = np.asarray(X)
    if values.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-D (n_samples, n_features); got shape "
                                f"{values.shape}.")
    return [(values[:, j], f"{name}[:, {j}]", f"column {j}") for j in range(values.shape[1])]


def holds_names(X) -> bool:
    """Whether a table (DataFrame, array, list of rows) holds state names in any column."""
    if is_data_frame(X):
        return any(column_holds_names(X[c]) for c in X.columns
                   if X[c].dtype.kind not in "biufc")
    values = np.asarray(X) if not isinstance(X, np.ndarray) else X
    if values.dtype.kind in "US":
        return True
    return values.dtype.kind == "O" and any(_is_str(item) for item in values.flat)


def learn_states(column, where: str = "X") -> np.ndarray | None:
    """The state names of one column : (L,) object array, or None for a column of codes.

    Sorted distinct strings; a pandas Categorical's categories in their order (unobserved
    ones included). A column mixing strings with numbers is an InvalidInputError.
    """
    if _is_categorical(column):
        categories = column.cat.categories
        check_level_count(len(categories), where,
                          f"is a pandas Categorical with {len(categories)} categories")
        return np.asarray(categories, dtype=object)
    if not column_holds_names(column):
        return None
    values = np.asarray(column, dtype=object)
    present = values[~_missing(values)]
    strings = np.fromiter((_is_str(item) for item in present), dtype=bool, count=len(present))
    if not strings.all():
        row = int(np.flatnonzero(~_missing(values))[np.argmin(strings)])
        raise InvalidInputError(
            f"{where} mixes state names and numbers: row {row} holds {values[row]!r}. Give "
            "every entry of a column as a name (None/NaN for missing), or every one as an "
            "integer code.")
    names = {str(item) for item in present}
    check_level_count(len(names), where, f"holds {len(names)} distinct state names")
    return np.asarray(sorted(names), dtype=object)


def learn_table(X, name: str = "X") -> list | None:
    """Per column of a table, its learned state names or None (codes); None when no column
    holds names."""
    states = [learn_states(values, where) for values, where, _ in table_columns(X, name)]
    return None if all(s is None for s in states) else states


def _unknown_state(values, row: int, states, where: str, what: str):
    return InvalidInputError(
        f"{where}[{row}] = {values[row]!r} is not a state of {what}; its states are "
        f"{list(states)} (or None/NaN for missing).")


def _complex_error(where: str, what: str) -> InvalidInputError:
    return InvalidInputError(
        f"{where} holds {what}; categorical data are integer codes "
        "(or state names), never complex: pass the real part (X.real) if the imaginary "
        "parts are all zero.")


def reject_complex(values: np.ndarray, where: str) -> None:
    """InvalidInputError (a ValueError, as scikit-learn's "Complex data not supported")
    when a 1-D array of any dtype holds a complex number; it names the first one."""
    if values.dtype.kind == "c":
        raise _complex_error(where, f"complex numbers (dtype {values.dtype})")
    if values.dtype.kind == "O":
        for item in values.tolist():
            if isinstance(item, complex | np.complexfloating):
                raise _complex_error(where, f"the complex number {item!r}")


def encode_column(column, states, where: str = "X", what: str = "the column") -> np.ndarray:
    """One column -> (n,) float64 codes, NaN for missing.

    Strings are looked up in states : (L,) (InvalidInputError naming the column, the row,
    the value and the known states when absent); a pandas Categorical maps its categories
    the same way; numbers are codes and pass unchanged (the caller checks their range).
    """
    if _is_categorical(column):
        mapped = encode_column(np.asarray(column.cat.categories, dtype=object), states,
                               f"{where}.cat.categories", what)
        codes = np.asarray(column.cat.codes)
        return np.where(codes >= 0, mapped[np.maximum(codes, 0)] if len(mapped) else np.nan,
                        np.nan)
    values = np.asarray(column)
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    reject_complex(values, where)
    values = values.astype(object)
    out = np.full(len(values), np.nan)
    strings = np.fromiter((_is_str(item) for item in values), dtype=bool, count=len(values))
    if strings.any():
        index = _pandas().Index(np.asarray(states, dtype=object)).get_indexer(
            values[strings].astype(str).astype(object))
        if np.any(index < 0):
            row = int(np.flatnonzero(strings)[np.argmax(index < 0)])
            raise _unknown_state(values, row, states, where, what)
        out[strings] = index
    numbers = ~strings & ~_missing(values)
    for row in np.flatnonzero(numbers):
        try:
            out[row] = float(values[row])
        except (TypeError, ValueError):
            raise _unknown_state(values, int(row), states, where, what) from None
    return out


def encode_table(X, categories: list, model: str, name: str = "X"):
    """A table whose columns hold names (per `categories`, (J,) arrays or None for a code
    column) -> the same table of float codes: a DataFrame keeps its index and columns, any
    other input becomes an (n, J) float64 array. Numeric input passes through unchanged.
    categories None (a model fitted on codes) accepts no names."""
    if categories is None:
        if holds_names(X):
            raise InvalidInputError(
                f"{name} holds state names, but {model} was fitted on integer codes: fit it "
                "on names (a DataFrame or an object array of strings) to use them.")
        return X
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        return X
    columns = table_columns(X, name)
    if len(columns) != len(categories):
        raise InvalidInputError(f"{name} has {len(columns)} features, but {model} is "
                                f"expecting {len(categories)} features as input.")
    for (values, where, what), states in zip(columns, categories):
        if states is None and column_holds_names(values):
            raise InvalidInputError(f"{where} holds state names, but {what} held integer "
                                    f"codes when {model} was fitted; give it codes.")
    codes = np.column_stack([
        encode_column(values, [] if states is None else states, where, what)
        for (values, where, what), states in zip(columns, categories)])
    if is_data_frame(X):
        return _pandas().DataFrame(codes, index=X.index, columns=X.columns)
    return codes


def decode(codes, states) -> np.ndarray:
    """Integer codes (any shape; NaN or -1 = missing) -> an object array of state names,
    None where missing. states : (L,)."""
    codes = np.asarray(codes, dtype=np.float64)
    names = np.asarray(states, dtype=object)
    known = ~np.isnan(codes) & (codes >= 0)
    out = np.full(codes.shape, None, dtype=object)
    out[known] = names[codes[known].astype(np.intp)]
    return out


def decode_table(codes: np.ndarray, categories: list) -> np.ndarray:
    """codes : (n, J) -> (n, J) object array: state names in the columns that have them,
    the codes themselves (floats) in the others."""
    out = codes.astype(object)
    for j, states in enumerate(categories):
        if states is not None:
            out[:, j] = decode(codes[:, j], states)
    return out


# -- labelled outputs ---------------------------------------------------------------------


def check_as_names(as_names, default: bool) -> bool:
    """The names-in-names-out rule of a method's `as_names` keyword: None gives `default`
    (what the input held), True / False force names / codes."""
    if as_names not in (None, True, False):
        raise InvalidParameterError(f"as_names must be None, True or False; got {as_names!r}.")
    return default if as_names is None else as_names


def label_probs(probs: np.ndarray, states, name, *, like=None, index_name=None):
    """Probabilities labelled by state names : (L,). probs (L,) -> a pandas Series indexed
    by the names, named `name`; probs (n, L) -> a DataFrame whose columns are the names (an
    Index named `name`), with `like`'s index when `like` is a DataFrame."""
    pd = _pandas()
    columns = pd.Index(list(states), name=None if np.ndim(probs) == 1 else name)
    if np.ndim(probs) == 1:
        return pd.Series(np.asarray(probs), index=columns, name=name)
    frame = pd.DataFrame(np.asarray(probs), columns=columns,
                         index=like.index if is_data_frame(like) else None)
    if index_name is not None:
        frame.index.name = index_name
    return frame


# -- persistence --------------------------------------------------------------------------


@register_record
class PackedStates(NamedTuple):
    """Arrays of state names of different lengths, flat: names : (Σ L_j,) unicode; lengths
    : (J,) int64, -1 for an entry without names (a code column); keys : (J,) unicode for a
    dict {key: names}, None for a list."""

    names: np.ndarray
    lengths: np.ndarray
    keys: np.ndarray | None = None


def pack_states(states) -> PackedStates | None:
    """A list of (L_j,) arrays or None, or a dict {key: names} -> PackedStates (None -> None)."""
    if states is None:
        return None
    keys = None
    if isinstance(states, dict):
        keys = np.asarray([str(k) for k in states], dtype=str)
        states = list(states.values())
    lengths = np.asarray([-1 if s is None else len(s) for s in states], dtype=np.int64)
    names = [str(name) for s in states if s is not None for name in s]
    return PackedStates(np.asarray(names, dtype=str), lengths,
                        None if keys is None else keys.astype(str))


def unpack_states(packed):
    """Inverse of `pack_states`: a list of object arrays (None for -1), or a dict of tuples
    when keys were stored. A value that is not a PackedStates passes unchanged."""
    if not isinstance(packed, PackedStates):
        return packed
    out, start = [], 0
    for length in packed.lengths.tolist():
        if length < 0:
            out.append(None)
            continue
        out.append(np.asarray(packed.names[start:start + length].tolist(), dtype=object))
        start += length
    if packed.keys is None:
        return out
    return {str(k): tuple(s.tolist()) for k, s in zip(packed.keys.tolist(), out)}


class SavesStateNames:
    """Mixin for a model (a `LatentModel`) whose fitted attributes named in
    `_state_name_attributes` hold state names (lists or dicts of arrays): its persistence hook
    stores them as `PackedStates` and restores them."""

    _state_name_attributes: tuple = ()

    def _saved_state(self) -> dict:
        state = super()._saved_state()
        for name in self._state_name_attributes:
            if name in state:
                state[name] = pack_states(state[name])
        return state

    def _restore_state(self, state: dict) -> None:
        state = {name: unpack_states(value) if name in self._state_name_attributes else value
                 for name, value in state.items()}
        super()._restore_state(state)
