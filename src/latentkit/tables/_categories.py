"""Text columns as categories (`TableOptions.categorical`): state names and float codes for
the reader, and the checks of names and codes that the writer and the .npz reader share.

A column read as categories holds codes 0..L-1 into its L state names, NaN where missing:
- a text column: the states are its distinct values (trimmed, missing tokens left out),
  sorted by code point, as Python's `sorted` orders them;
- a pandas Categorical column (a Parquet dictionary column): its categories, in order;
- a Parquet boolean column: the states ('False', 'True'), so the codes are its 0 / 1.
A text column whose values are all numbers (or missing) is not one: it stays numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: cell values read as missing (NaN), compared lower-case after trimming spaces
MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})
#: the states of a boolean column read as categories: codes 0 and 1 as before
BOOLEAN_STATES = ("False", "True")

#: (codes : (n_rows,) float64, NaN = missing; state names)
Codes = tuple[np.ndarray, tuple[str, ...]]


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _all_numbers(states: list[str]) -> bool:
    """Whether every state is a number (pandas' vectorized parse, then Python's `float` for
    the few it refuses, such as `1_000`)."""
    parsed = pd.to_numeric(pd.Series(states, dtype=object), errors="coerce").to_numpy()
    return all(_parses(states[i]) for i in np.flatnonzero(np.isnan(parsed)))


def _code_floats(codes: np.ndarray) -> np.ndarray:
    """(n_rows,) float64 of integer codes, -1 (missing) as NaN."""
    return np.where(codes < 0, np.nan, codes).astype(np.float64)


def cleaned_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A text column trimmed, with its missing tokens as nulls."""
    trimmed = pc.utf8_trim_whitespace(column)
    missing = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(MISSING_TOKENS)))
    return pc.if_else(missing, pa.scalar(None, pa.string()), trimmed)


def _numbers(states: pa.Array) -> bool:
    try:
        pc.cast(states, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _all_numbers(states.to_pylist())
    return True


def text_codes(column: pa.ChunkedArray) -> Codes | None:
    """Codes and sorted states of a text column as read (spaces around cells, missing
    tokens); None when every value is a number (the column stays numeric).

    The cells are cleaned once per distinct value, not per row: each row's position among
    the distinct raw cells maps to its state's code.
    """
    distinct = pc.unique(column)
    cleaned = cleaned_text(distinct)
    states = pc.unique(pc.drop_null(cleaned))
    states = pc.take(states, pc.array_sort_indices(states))
    if _numbers(states):
        return None
    state_of_distinct = pc.fill_null(pc.index_in(cleaned, value_set=states), -1).to_numpy()
    rows = pc.fill_null(pc.index_in(column, value_set=distinct), -1).to_numpy()
    # position -1 (a null the distinct cells lack) is the appended -1: missing
    codes = np.append(state_of_distinct, -1)[rows]
    return _code_floats(codes), tuple(states.to_pylist())


def dictionary_codes(column: pa.ChunkedArray) -> Codes | None:
    """Codes into the categories, in order, of a dictionary column of text (a pandas
    Categorical), trimmed, with missing tokens as missing; None when its values are not
    text, or every category is a number (the column stays numeric)."""
    if not (pa.types.is_string(column.type.value_type)
            or pa.types.is_large_string(column.type.value_type)):
        return None
    values = column.to_pandas()  # a Categorical: pyarrow unifies the chunks' dictionaries
    trimmed = pd.Index(values.cat.categories.astype(str)).str.strip()
    missing = trimmed.str.lower().isin(MISSING_TOKENS)
    states = [str(state) for state in pd.unique(trimmed[~missing])]
    if _all_numbers(states):
        return None
    # a category and its trimmed copy are one state; a missing token maps to -1
    remap = pd.Index(states, dtype=object).get_indexer(trimmed)
    codes = values.cat.codes.to_numpy()
    return _code_floats(np.where(codes < 0, -1, remap[codes])), tuple(states)


def boolean_codes(column: pa.ChunkedArray) -> Codes:
    """Codes 0 (False) and 1 (True) of a boolean column, into BOOLEAN_STATES."""
    values = pc.fill_null(pc.cast(column, pa.float64()), np.nan)
    return values.to_numpy(), BOOLEAN_STATES


def state_problem(states) -> str | None:
    """What is wrong with a column's state names, or None: they must be distinct text,
    neither blank nor a missing token, without spaces around them, so that a file keeps
    them as they are."""
    if isinstance(states, str) or not all(isinstance(state, str) for state in states):
        return f"state names must be a sequence of strings; got {states!r}"
    for state in states:
        if state.strip().lower() in MISSING_TOKENS:
            return f"the state name {state!r} would read back as a missing value"
        if state != state.strip():
            return f"the state name {state!r} has spaces around it, which reading trims"
    if len(set(states)) != len(states):
        return f"the state names {tuple(states)!r} repeat a name"
    return None


def code_problem(codes: np.ndarray, n_states: int) -> str | None:
    """What is wrong with codes : (n_rows,) float into `n_states` states, or None: each must
    be NaN or a whole number 0..n_states-1."""
    bad = ~np.isnan(codes)
    bad[bad] = ((codes[bad] != np.round(codes[bad])) | (codes[bad] < 0)
                | (codes[bad] >= n_states))
    if not bad.any():
        return None
    row = int(np.flatnonzero(bad)[0])
    return (f"row {row + 1} holds the code {float(codes[row]):g}, but its {n_states} states "
            f"take the codes 0..{n_states - 1}")
