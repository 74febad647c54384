"""Tables out: .csv, .tsv, .parquet, .npy and .npz, one row per row of X, in order, with
the row index first when there is one."""

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


def _write_delimited(path: Path, X, columns, index, header, delimiter: str) -> None:
    # NaN is a null (an empty cell), except alone on its line, where an empty line would be
    # skipped by most readers: there it stays a float NaN, written `nan`
    alone = X.shape[1] == 1 and index is None
    arrays = [pa.array(X[:, j], from_pandas=not alone) for j in range(X.shape[1])]
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


def _write_parquet(path: Path, X, columns, index, header) -> None:
    pd.DataFrame(X, columns=list(columns), index=index).to_parquet(path)


def _write_npy(path: Path, X, columns, index, header) -> None:
    np.save(path, X, allow_pickle=False)


def _write_npz(path: Path, X, columns, index, header) -> None:
    arrays = {"X": X, "columns": np.asarray(list(columns), dtype=str)}
    if index is not None:
        values = index.to_numpy()
        arrays["index"] = values if values.dtype.kind in "biufcmM" else values.astype(str)
        arrays["index_name"] = np.asarray(index.name or "", dtype=str)
    np.savez(path, **arrays)


_WRITERS = {
    ".csv": lambda *a: _write_delimited(*a, delimiter=","),
    ".tsv": lambda *a: _write_delimited(*a, delimiter="\t"),
    ".parquet": _write_parquet, ".npy": _write_npy, ".npz": _write_npz,
}


def write_table(path: str | os.PathLike, X, columns: list[str], *, index: pd.Index | None = None,
                header: bool = True) -> Path:
    """Write X : (n_samples, n_features) by the file name's suffix, row for row in order.

    .csv / .tsv : a header row of `columns` (unless header=False), the index first when
        given (its name, or a blank cell, as pandas writes it), empty cells for NaN (`nan`
        in a file of one column, where an empty line would be skipped by most readers).
    .parquet : a pandas-compatible table, the index stored as pandas stores it.
    .npz : arrays X, columns and index (when given), read back with their names.
    .npy : X alone.
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
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    _WRITERS[suffix](path, X, columns, index, header)
    return path
