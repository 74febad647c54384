"""Parquet, .npy and .npz files as `Data` records."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from latentkit.exceptions import InvalidInputError, InvalidParameterError

from ._categories import code_problem, state_problem
from ._columns import table_to_data
from ._record import Data, TableOptions, select

_INDEX_LEVEL = re.compile(r"^__index_level_\d+__$")


def _refuse_table_options(options: TableOptions, path: Path) -> None:
    """Arrays have no header and no label column: those options cannot apply."""
    given = [flag for flag, value in (("--no-header", options.header is False),
                                      ("--index-col", options.index_col),
                                      ("--time-col", options.time_col)) if value]
    if given:
        raise InvalidParameterError(f"{', '.join(given)} applies to CSV, TSV and Parquet "
                                    f"files, not to {path.name}.")


def _stored_index(table: pa.Table) -> tuple[pa.Table, pd.Index | None]:
    """The table without the index columns pandas stored in it, and that index."""
    meta = table.schema.pandas_metadata or {}
    stored = [name for name in meta.get("index_columns", []) if isinstance(name, str)]
    if not stored:
        return table, None
    levels = [pd.Index(table.column(name).to_pandas()).rename(
        None if _INDEX_LEVEL.match(name) else name) for name in stored]
    index = levels[0] if len(levels) == 1 else pd.MultiIndex.from_arrays(
        levels, names=[level.name for level in levels])
    return table.drop_columns(stored), index


def read_parquet(path: str | Path, options: TableOptions | None = None) -> Data:
    """A Parquet file: numeric (or boolean) columns, nulls missing, and with
    `options.categorical` text, pandas Categorical and boolean columns as categories; the
    index pandas stored with it (DataFrame.to_parquet) kept as the row index."""
    path, options = Path(path), options or TableOptions()
    if options.header is False:
        raise InvalidParameterError(f"--no-header applies to CSV and TSV files; {path.name} "
                                    f"names its columns.")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise InvalidInputError(f"{path} is not a readable parquet file ({error}).") from None
    table, index = _stored_index(table)
    if table.num_columns == 0:
        raise InvalidInputError(f"{path} has no columns.")
    if options.label is not None:
        index = None
    return table_to_data(table, [str(name) for name in table.column_names], options,
                         name=path.name, source=str(path), index=index,
                         where=lambda row: f"{path}, row {row + 1}")


def _as_float(array: np.ndarray, where: str) -> np.ndarray:
    if array.dtype.kind in "f":
        return array
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    raise InvalidInputError(f"{where} holds {array.dtype} values; latentkit needs numbers "
                            f"(booleans, integers or floats).")


def _two_d(array: np.ndarray, where: str) -> tuple[np.ndarray, tuple[int, int] | None]:
    """(n_samples, n_features) from a 1-D (one column), 2-D or 3-D (images) array."""
    if array.ndim == 1:
        return array.reshape(-1, 1), None
    if array.ndim == 2:
        return array, None
    if array.ndim == 3:
        return array.reshape(len(array), -1), (int(array.shape[1]), int(array.shape[2]))
    raise InvalidInputError(f"{where} holds an array of shape {array.shape}; expected 2-D "
                            f"(n_samples, n_features).")


def read_npy(path: str | Path, options: TableOptions | None = None) -> Data:
    """A numeric .npy array; its columns are x1 .. xD for --columns and --drop."""
    path, options = Path(path), options or TableOptions()
    _refuse_table_options(options, path)
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise InvalidInputError(f"{path} is not a readable numeric .npy file ({error}).") from None
    X, image_shape = _two_d(_as_float(array, str(path)), str(path))
    return select(Data(X=X, name=path.name, image_shape=image_shape), options)


def _saved_categories(archive, path: Path, X: np.ndarray,
                      columns: list[str]) -> dict[str, tuple[str, ...]] | None:
    """{column: state names} of an archive `write_table` saved with categories (arrays
    category_columns, category_sizes, category_states), each checked against X's codes."""
    if "category_columns" not in archive.files:
        return None
    names = [str(name) for name in archive["category_columns"]]
    sizes = [int(size) for size in archive["category_sizes"]]
    states = [str(state) for state in archive["category_states"]]
    if len(sizes) != len(names) or sum(sizes) != len(states) or min(sizes, default=0) < 0:
        raise InvalidInputError(f"{path}: {len(names)} category_columns, category_sizes "
                                f"{sizes} and {len(states)} category_states do not agree.")
    ends = np.cumsum(sizes)
    categories = {name: tuple(states[end - size:end])
                  for name, size, end in zip(names, sizes, ends)}
    for name, column_states in categories.items():
        if name not in columns:
            raise InvalidInputError(f"{path}: category_columns names {name!r}, not a column.")
        problem = state_problem(column_states) or code_problem(X[:, columns.index(name)],
                                                         len(column_states))
        if problem is not None:
            raise InvalidInputError(f"{path}, column {name!r}: {problem}.")
    return categories


def _saved_table(archive, path: Path) -> Data:
    """A table `write_table` saved: arrays X, columns, (when it had one) index, and (when
    it had some) categories."""
    try:
        X = _as_float(archive["X"], f"{path}[X]")
        columns = [str(c) for c in archive["columns"]]
        index = None
        if "index" in archive.files:
            name = str(archive["index_name"]) if "index_name" in archive.files else ""
            index = pd.Index(archive["index"], name=name or None)
    except ValueError as error:
        raise InvalidInputError(f"{path}: {error} (names and labels must be stored as "
                                f"numbers or fixed-width text, dtype=str).") from None
    if (X.ndim != 2 or len(columns) != X.shape[1]
            or (index is not None and len(index) != len(X))):
        raise InvalidInputError(f"{path}: X has shape {X.shape} but {len(columns)} column "
                                f"names" + ("" if index is None else f" and {len(index)} "
                                            f"index labels") + ".")
    return Data(X=X, name=path.name, columns=columns, index=index,
                categories=_saved_categories(archive, path, X, columns))


def read_npz(path: str | Path, options: TableOptions | None = None, *,
             key: str | None = None) -> Data:
    """The array named `key`, or the first array of the archive; an archive written by
    `write_table` (arrays X, columns, index, category_*) keeps its column names, index and
    categories (with or without `options.categorical`: its X holds the codes either way)."""
    path, options = Path(path), options or TableOptions()
    _refuse_table_options(options, path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InvalidInputError(f"{path} is not a readable .npz file ({error}).") from None
    with archive:
        keys = list(archive.files)
        if not keys:
            raise InvalidInputError(f"{path} holds no arrays.")
        if key in (None, "X") and {"X", "columns"} <= set(keys):
            return select(_saved_table(archive, path), options)
        if key is None:
            key = keys[0]
        elif key not in keys:
            raise InvalidInputError(f"{path} has no array {key!r}; its arrays are "
                                    f"{', '.join(keys)}.")
        try:
            array = archive[key]
        except ValueError as error:
            raise InvalidInputError(f"{path}: array {key!r} is not numeric ({error}).") from None
    where = f"{path}[{key}]"
    X, image_shape = _two_d(_as_float(array, where), where)
    return select(Data(X=X, name=f"{path.name}[{key}]", image_shape=image_shape), options)
