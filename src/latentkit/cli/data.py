"""Reading DATA for the command line: a file (.csv, .tsv, .parquet, .npy, .npz, read by
`latentkit.tables`), a Zarr store (.zarr) or the name of a bundled dataset.

Every reader returns a `Data` record holding X : (n_samples, n_features) as a float array
(NaN = missing), the column names when the source has them, the row index when it has one,
labels for labelled bundled datasets and the image shape for image data. Problems the user
can fix raise InvalidInputError (a ValueError) or FileNotFoundError with a one-line message
naming the file, row and column.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from latentkit.exceptions import InvalidInputError, InvalidParameterError
from latentkit.tables import (
    MISSING_TOKENS,
    READERS,
    Data,
    TableOptions,
    read_csv,
    read_file,
    read_npy,
    read_npz,
    read_parquet,
    select,
    write_table,
)

#: rows read from mnist / binarized_mnist when --max-rows is not given
DEFAULT_IMAGE_ROWS = 10_000
#: random 64x64 images drawn for sprites when --max-rows is not given
DEFAULT_SPRITE_ROWS = 20_000

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
    "sprites": ("make_sprites", (0.0, 1.0)),
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
    elif name == "sprites":
        kwargs = {"n_samples": max_rows or DEFAULT_SPRITE_ROWS, "random_state": 0}
    bunch = getattr(datasets, loader)(**kwargs)
    X, target = np.asarray(bunch.data), bunch.get("target")
    target = None if target is None else np.asarray(target)
    columns = bunch.get("feature_names")
    factors = bunch.get("factors")
    data = Data(X=X, name=name, columns=list(columns) if columns is not None else None,
                target=target, image_shape=bunch.get("image_shape"), bundled=True,
                value_range=value_range, index=_time_index(bunch, len(X)),
                factors=None if factors is None else np.asarray(factors),
                factor_names=None if factors is None else tuple(bunch["factor_names"]))
    return data.head(max_rows) if max_rows is not None and len(X) > max_rows else data


def _time_index(bunch, n_rows: int) -> pd.Index | None:
    """The dates of a bundled series: its years (the Nile), or its years and quarters
    (US macro) as quarter-start dates; None for data that is not a series."""
    if "quarter" in bunch and "year" in bunch:
        periods = pd.PeriodIndex.from_fields(year=np.asarray(bunch["year"], dtype=int),
                                             quarter=np.asarray(bunch["quarter"], dtype=int),
                                             freq="Q")
        return periods.to_timestamp()[:n_rows].rename("date")
    if "years" in bunch:
        return pd.Index(np.asarray(bunch["years"], dtype=int)[:n_rows], name="year")
    return None


#: bundled dataset names accepted as DATA
BUNDLED = tuple(_BUNDLED_LOADERS)


# -- files ---------------------------------------------------------------------------------


def _bundled(source: str, max_rows: int | None, options: TableOptions) -> Data:
    if options.header is False or options.label is not None:
        raise InvalidParameterError("--no-header, --index-col and --time-col apply to CSV, "
                                    f"TSV and Parquet files, not to the bundled {source}.")
    return select(_load_bundled(source, max_rows), options)


def read_zarr(path: Path, options: TableOptions, key: str | None = None) -> Data:
    """A Zarr store's 2-D array (a group's one array, or the array `key` names) read whole,
    with --columns/--drop over its columns x1..xD; `fit` streams a store instead where the
    model streams (`latentkit.cli.scale`)."""
    from latentkit.em.stores import open_zarr_array

    if options.header is False or options.label is not None:
        raise InvalidParameterError("--no-header, --index-col and --time-col apply to CSV, "
                                    f"TSV and Parquet files, not to the Zarr store {path.name}.")
    if key is not None:
        import zarr

        group = zarr.open(str(path), mode="r")
        if not hasattr(group, "arrays"):
            raise InvalidInputError(f"{path.name} holds a single array; drop --key.")
        names = [name for name, _ in group.arrays()]
        if key not in names:
            raise InvalidInputError(f"{path.name} has no array {key!r} (its arrays: "
                                    f"{names}); drop --key, or name one of them.")
        array = group[key]
    else:
        array = open_zarr_array(str(path), name=path.name)
    X = np.asarray(array[...], dtype=np.float64)
    if X.ndim != 2:
        raise InvalidInputError(f"{path.name}: expected a 2-D array (rows x columns); got "
                                f"shape {X.shape}.")
    return select(Data(X=X, name=path.name), options)


def load_data(source: str, *, key: str | None = None, max_rows: int | None = None,
              options: TableOptions | None = None) -> Data:
    """DATA given on the command line: a file path or a bundled dataset name.

    key : the array of a .npz file (the first when None).
    max_rows : keep only the first rows (a random subset of this size for mnist and
        binarized_mnist, which otherwise read 10,000 training images; this many random
        sprites, else 20,000, with their factors in `Data.factors`).
    options : the columns to read and how (--columns, --drop, --index-col, --time-col,
        --no-header); see `latentkit.tables`.
    """
    options = options or TableOptions()
    path = Path(os.path.expanduser(source))
    if path.is_dir() and path.suffix.lower() == ".zarr":
        data = read_zarr(path, options, key)
        if max_rows is not None:
            data = data.head(max_rows)
    elif path.is_file():
        data = read_file(path, options, key)
        if max_rows is not None:
            data = data.head(max_rows)
    elif source in BUNDLED:
        data = _bundled(source, max_rows, options)
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


__all__ = ["BUNDLED", "DEFAULT_IMAGE_ROWS", "DEFAULT_SPRITE_ROWS", "MISSING_TOKENS", "READERS",
           "Data", "TableOptions", "load_data", "read_csv", "read_npy", "read_npz",
           "read_parquet", "read_zarr", "write_table"]
