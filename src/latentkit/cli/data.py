"""Reading DATA for the command line: a file (.csv, .npy, .npz, .parquet) or the name of a
bundled dataset.

Every reader returns a `Data` record holding X : (n_samples, n_features) as a float array
(NaN = missing), the column names when the source has them, labels for labelled bundled
datasets and the image shape for image data. Problems the user can fix raise
InvalidInputError (a ValueError) or FileNotFoundError with a one-line message naming the
file, row and column.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentkit.exceptions import InvalidInputError, InvalidParameterError

#: cell values read as missing (NaN) in CSV files, compared lower-case
MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})
#: rows read from mnist / binarized_mnist when --max-rows is not given
DEFAULT_IMAGE_ROWS = 10_000


@dataclass(frozen=True)
class Data:
    """X : (n_samples, n_features) float; target : (n_samples,) labels or None."""

    X: np.ndarray
    name: str
    columns: list[str] | None = None
    target: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None
    bundled: bool = False
    #: (low, high) of the values' nominal range for bundled image data (grey levels)
    value_range: tuple[float, float] | None = None

    @property
    def column_names(self) -> list[str]:
        """The source's column names, else x1 .. xD."""
        if self.columns is not None and len(self.columns) == self.X.shape[1]:
            return list(self.columns)
        return [f"x{j + 1}" for j in range(self.X.shape[1])]

    def describe(self) -> str:
        rows, cols = self.X.shape
        return f"{self.name}: {rows} rows x {cols} columns"

    def replace(self, **changes) -> Data:
        return dataclasses.replace(self, **changes)


# -- bundled datasets ---------------------------------------------------------------------


#: bundled dataset name -> (loader in latentkit.datasets, nominal value range or None)
_BUNDLED_LOADERS = {
    "faithful": ("load_faithful", None),
    "nile": ("load_nile", None),
    "macrodata": ("load_macrodata", None),
    "mnist": ("load_mnist", (0.0, 1.0)),
    "binarized_mnist": ("load_binarized_mnist", (0.0, 1.0)),
    "digits": ("load_digits", (0.0, 16.0)),
    "iris": ("load_iris", None),
    "wine": ("load_wine", None),
}
#: bundled datasets read as a random subset of the training split
_SUBSAMPLED = ("mnist", "binarized_mnist")


def _load_bundled(name: str, max_rows: int | None) -> Data:
    from latentkit import datasets

    loader, value_range = _BUNDLED_LOADERS[name]
    kwargs = {}
    if name in _SUBSAMPLED:
        kwargs = {"split": "train", "n_samples": max_rows or DEFAULT_IMAGE_ROWS,
                  "random_state": 0}
    bunch = getattr(datasets, loader)(**kwargs)
    X, target = np.asarray(bunch.data), bunch.get("target")
    target = None if target is None else np.asarray(target)
    if max_rows is not None and len(X) > max_rows:
        X = X[:max_rows]
        target = None if target is None else target[:max_rows]
    columns = bunch.get("feature_names")
    return Data(X=X, name=name, columns=list(columns) if columns is not None else None,
                target=target, image_shape=bunch.get("image_shape"), bundled=True,
                value_range=value_range)


#: bundled dataset names accepted as DATA
BUNDLED = tuple(_BUNDLED_LOADERS)


# -- files --------------------------------------------------------------------------------


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


def _parse_cell(cell: str) -> float | None:
    text = cell.strip()
    if text.lower() in MISSING_TOKENS:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def read_csv(path: Path) -> Data:
    """A numeric table; the first row is a header when any of its cells is not a number.

    Cells that are empty or NA/NaN/null/? are missing (NaN). The delimiter is a comma,
    semicolon or tab (detected).
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        sample = handle.read(8192)
        handle.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        rows = [(number, row) for number, row in enumerate(csv.reader(handle, dialect), 1)
                if any(cell.strip() for cell in row)]
    if not rows:
        raise InvalidInputError(f"{path} is empty: it has no rows of data.")
    columns = None
    if any(_parse_cell(cell) is None for cell in rows[0][1]):
        columns = [cell.strip() for cell in rows[0][1]]
        rows = rows[1:]
        if not rows:
            raise InvalidInputError(f"{path} has a header row but no rows of data.")
    width = len(columns) if columns is not None else len(rows[0][1])
    X = np.empty((len(rows), width), dtype=np.float64)
    for index, (line, row) in enumerate(rows):
        if len(row) != width:
            raise InvalidInputError(f"{path}, line {line}: {len(row)} fields where the first row "
                                    f"has {width}.")
        for col, cell in enumerate(row):
            value = _parse_cell(cell)
            if value is None:
                name = f" ({columns[col]})" if columns else ""
                raise InvalidInputError(f"{path}, line {line}, column {col + 1}{name}: {cell!r} is "
                                        f"not a number.")
            X[index, col] = value
    return Data(X=X, name=path.name, columns=columns)


def read_npy(path: Path) -> Data:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise InvalidInputError(f"{path} is not a readable numeric .npy file ({error}).") from None
    X, image_shape = _two_d(_as_float(array, str(path)), str(path))
    return Data(X=X, name=path.name, image_shape=image_shape)


def read_npz(path: Path, key: str | None = None) -> Data:
    """The array named `key`, or the first array of the archive."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InvalidInputError(f"{path} is not a readable .npz file ({error}).") from None
    with archive:
        keys = list(archive.files)
        if not keys:
            raise InvalidInputError(f"{path} holds no arrays.")
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
    return Data(X=X, name=f"{path.name}[{key}]", image_shape=image_shape)


def read_parquet(path: Path) -> Data:
    """A table of numeric (or boolean) columns; nulls are missing (NaN)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInputError("reading .parquet files needs pyarrow: "
                                "pip install 'latentkit[parquet]'.") from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise InvalidInputError(f"{path} is not a readable parquet file ({error}).") from None
    columns = []
    for name, column in zip(table.column_names, table.columns):
        kind = column.type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_boolean(kind)):
            raise InvalidInputError(f"{path}: column {name!r} holds {kind} values; latentkit needs "
                                    f"numeric columns.")
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        columns.append(np.asarray(values, dtype=np.float64))
    if not columns:
        raise InvalidInputError(f"{path} has no columns.")
    return Data(X=np.column_stack(columns), name=path.name, columns=list(table.column_names))


READERS = {".csv": read_csv, ".npy": read_npy, ".npz": read_npz, ".parquet": read_parquet}


def load_data(source: str, *, key: str | None = None, max_rows: int | None = None) -> Data:
    """DATA given on the command line: a file path or a bundled dataset name.

    key : the array of a .npz file (the first when None).
    max_rows : keep only the first rows (a random subset of this size for mnist and
        binarized_mnist, which otherwise read 10,000 training images).
    """
    path = Path(os.path.expanduser(source))
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix not in READERS:
            raise InvalidInputError(f"cannot read {source}: the file type "
                                    f"{suffix or '(none)'} is not supported; use "
                                    f"{', '.join(READERS)}.")
        data = read_npz(path, key) if suffix == ".npz" else READERS[suffix](path)
        if max_rows is not None:
            data = data.replace(X=data.X[:max_rows])
    elif source in BUNDLED:
        data = _load_bundled(source, max_rows)
    elif path.exists():
        raise InvalidInputError(f"{source} is not a file.")
    elif path.suffix or os.sep in source:
        raise FileNotFoundError(f"no such file: {source}")
    else:
        raise InvalidInputError(f"{source!r} is neither a file nor a bundled dataset; bundled "
                                f"datasets: {', '.join(BUNDLED)}.")
    if data.X.shape[0] == 0 or data.X.shape[1] == 0:
        raise InvalidInputError(f"{data.name} has no data: shape {data.X.shape}.")
    return data


def write_table(path: str | os.PathLike, X: np.ndarray, columns: list[str]) -> Path:
    """Write X : (n_samples, n_features) as .csv (with a header row) or .npy, by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npy"):
        raise InvalidParameterError(f"cannot write {path}: use a .csv or .npy file name.")
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        np.save(path, np.asarray(X), allow_pickle=False)
        return path
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in np.asarray(X):
            writer.writerow(["" if math.isnan(v) else repr(float(v)) for v in row])
    return path
