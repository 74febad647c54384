"""Tables out: .csv, .tsv, .parquet, .npy and .npz, one row per row of X, in order, with
the row index first when there is one, and the codes of categorical columns as their state
names."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from latentkit.exceptions import InvalidParameterError

from ._categories import code_problem, state_problem

#: {position in X: state names} of the columns written as names
States = dict[int, tuple[str, ...]]


def _index_array(index: pd.Index) -> pa.Array:
    """The index as a CSV column: dates as ISO text (no time when all are midnight)."""
    if isinstance(index, pd.DatetimeIndex):
        return pa.array(index.astype(str).to_numpy(object), mask=index.isna(), type=pa.string())
    if pd.api.types.is_numeric_dtype(index.dtype) and not pd.api.types.is_bool_dtype(index):
        return pa.array(index.to_numpy(), from_pandas=True)
    return pa.array([None if pd.isna(v) else str(v) for v in index], type=pa.string())


def _needs_quotes(array: pa.Array, delimiter: str) -> bool:
    """Whether a text column has a value holding the delimiter, a quote or a line break."""
    if not pa.types.is_string(array.type):
        return False
    special = pc.match_substring_regex(array, f"[{re.escape(delimiter)}\"\r\n]")
    return bool(pc.any(special).as_py())


def _header_line(names: list[str], delimiter: str) -> bytes:
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\n").writerow(names)
    return text.getvalue().encode("utf-8")


def _missing_codes(codes: np.ndarray) -> np.ndarray:
    """(n_rows,) int64 codes of float codes, -1 where missing (NaN)."""
    return np.where(np.isnan(codes), -1, codes).astype(np.int64)


def _names_array(codes: np.ndarray, states: tuple[str, ...], alone: bool) -> pa.Array:
    """codes : (n_rows,) float as their state names, null (an empty cell) where missing, or
    `nan` when `alone` on its line."""
    missing = np.isnan(codes)
    positions = pa.array(np.where(missing, 0, codes).astype(np.int64), mask=missing)
    names = pc.take(pa.array(list(states), type=pa.string()), positions)
    return pc.fill_null(names, "nan") if alone else names


def _write_delimited(path: Path, X, columns, index, header, states: States,
                     delimiter: str) -> None:
    # NaN is a null (an empty cell), except alone on its line, where an empty line would be
    # skipped by most readers: there it stays a float NaN, written `nan`
    alone = X.shape[1] == 1 and index is None
    arrays = [_names_array(X[:, j], states[j], alone) if j in states
              else pa.array(X[:, j], from_pandas=not alone) for j in range(X.shape[1])]
    names = list(columns)
    if index is not None:
        arrays, names = [_index_array(index), *arrays], [index.name or "", *names]
    table = pa.Table.from_arrays(arrays, names=[f"c{j}" for j in range(len(arrays))])
    with open(path, "wb") as handle:
        if header:
            handle.write(_header_line(names, delimiter))
        # pyarrow quotes every text value when quoting is "needed": only when one must be
        quote = any(_needs_quotes(array, delimiter) for array in arrays)
        pa_csv.write_csv(table, handle, pa_csv.WriteOptions(
            include_header=False, delimiter=delimiter,
            quoting_style="needed" if quote else "none"))


def _write_parquet(path: Path, X, columns, index, header, states: States) -> None:
    frame = pd.DataFrame(X, columns=list(columns), index=index)
    for j, names in states.items():  # by position: column names may repeat
        frame.isetitem(j, pd.Categorical.from_codes(_missing_codes(X[:, j]),
                                                    categories=list(names)))
    frame.to_parquet(path)


def _write_npy(path: Path, X, columns, index, header, states: States) -> None:
    np.save(path, X, allow_pickle=False)


def _write_npz(path: Path, X, columns, index, header, states: States) -> None:
    arrays = {"X": X, "columns": np.asarray(list(columns), dtype=str)}
    if index is not None:
        values = index.to_numpy()
        arrays["index"] = values if values.dtype.kind in "biufcmM" else values.astype(str)
        arrays["index_name"] = np.asarray(index.name or "", dtype=str)
    if states:
        arrays["category_columns"] = np.asarray([columns[j] for j in states], dtype=str)
        arrays["category_sizes"] = np.asarray([len(names) for names in states.values()],
                                              dtype=np.int64)
        arrays["category_states"] = np.asarray(
            [name for names in states.values() for name in names], dtype=str)
    np.savez(path, **arrays)


_WRITERS = {
    ".csv": lambda *a: _write_delimited(*a, delimiter=","),
    ".tsv": lambda *a: _write_delimited(*a, delimiter="\t"),
    ".parquet": _write_parquet, ".npy": _write_npy, ".npz": _write_npz,
}


def _checked_states(path: Path, X: np.ndarray, columns: list[str], categories) -> States:
    """{position: state names} of the columns `categories` names (every column of that
    name), each name list and each column's codes checked."""
    if categories is None:
        return {}
    unknown = [name for name in categories if name not in columns]
    if unknown:
        raise InvalidParameterError(f"cannot write {path}: categories names "
                                    f"{', '.join(map(repr, unknown))}, not among the columns "
                                    f"{', '.join(map(str, columns))}.")
    states = {}
    for j, name in enumerate(columns):
        if name not in categories:
            continue
        names = categories[name]
        problem = state_problem(names)
        if problem is None:
            names = tuple(names)
            problem = code_problem(X[:, j], len(names))
        if problem is not None:
            raise InvalidParameterError(f"cannot write {path}: column {name!r}: {problem}.")
        states[j] = names
    return states


def write_table(path: str | os.PathLike, X, columns: list[str], *, index: pd.Index | None = None,
                header: bool = True,
                categories: dict[str, tuple[str, ...]] | None = None) -> Path:
    """Write X : (n_samples, n_features) by the file name's suffix, row for row in order.

    categories : {column name: state names} of categorical columns (`Data.categories`):
        their values in X are codes 0..L-1 into the L names (NaN = missing), written as
        the names; a code outside 0..L-1, or a name that reading would not give back
        (blank, a missing token, spaces around it, repeated), is an error.
    .csv / .tsv : a header row of `columns` (unless header=False), the index first when
        given (its name, or a blank cell, as pandas writes it), empty cells for NaN (`nan`
        in a file of one column, where an empty line would be skipped by most readers),
        state names for codes. Only the names present are stored, and reading sorts them:
        the categories read back are those written when they are all present and sorted,
        as a read gives them (and, as in every format, not all numbers: such a column
        reads back as numbers).
    .parquet : a pandas-compatible table, the index stored as pandas stores it; a
        categorical column as a pandas Categorical, its states in order.
    .npz : arrays X (codes for categorical columns), columns and index (when given), read
        back with their names; with categories, also `category_columns` (C names),
        `category_sizes` (C counts) and `category_states` (every column's states, one
        column after the other).
    .npy : X alone (codes for categorical columns).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITERS:
        raise InvalidParameterError(f"cannot write {path}: use a .csv or .npy file name (or "
                                    f".tsv, .parquet, .npz).")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(columns) != X.shape[1]:
        raise InvalidParameterError(f"cannot write {path}: X has shape {X.shape} and "
                                    f"{len(columns)} column names.")
    if index is not None and len(index) != len(X):
        raise InvalidParameterError(f"cannot write {path}: {len(index)} index labels for "
                                    f"{len(X)} rows.")
    states = _checked_states(path, X, list(columns), categories)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    _WRITERS[suffix](path, X, columns, index, header, states)
    return path
