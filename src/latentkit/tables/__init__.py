"""Tables in and out: CSV, TSV, Parquet, .npy and .npz files as a `Data` record, on pyarrow.

    from latentkit.tables import read_table, write_table
    data = read_table("macro.csv", time_col="date", drop=["notes"])
    data.X, data.columns, data.index          # floats (NaN = missing), names, dates
    write_table("out.csv", data.X, data.columns, index=data.index)

Rows. Every row is kept, in file order: blank cells and the tokens NA, NaN, N/A, null,
None and ? (any case, spaces around ignored) are missing values (NaN), and a row whose cells
are all blank (`,,,`) is a row of NaN, never a deleted row; so is a line with no characters
at all between the rows (pandas writes a missing value so in a one-column file). Blank lines
before the first row or after the last row of a wider file are no rows, and a line holding
only spaces in the middle of one is an error naming it (it is neither a row nor nothing).

Columns. They are kept in file order under their names (a blank name in column j becomes
`Unnamed: j`, as pandas reads it); `columns=` keeps some, in a given order, `drop=` leaves
some out. A column that holds text or dates is an error naming the column and its fix
(`--drop NAME`, `--index-col NAME` or `--time-col NAME`), never a column of NaN.

Categories. With `categorical=True` (the command line sets it for a model of categorical
data, such as cmm and bayesnet) a column of text is read as categories instead: X holds
codes 0..L-1 (NaN = missing) and `Data.categories` maps the column's name to its L state
names, the distinct values (trimmed, missing tokens left out) sorted; a Parquet pandas
Categorical column keeps its categories in order, and a Parquet boolean column has the
states ('False', 'True'). A text column whose values are all numbers stays numbers.
`write_table(..., categories=)` writes the codes back as the names (.csv, .tsv, .parquet)
or keeps the names beside them (.npz), so a table read back is the table written. Dates in
text are text here: leave them out with `drop=`, or make them the index with `time_col=`.

Header rule (CSV and TSV). The first line that is not blank is a header when `header=True`,
and a row of data when `header=False` (the command line's --no-header). Otherwise (None):
- it is a header when any of its cells is not a number (a missing token is a number here);
- it is a header when its cells, after an optional blank first cell (pandas' index
  column), are the integers 0..D-1 or 1..D written without a decimal point: pandas' names
  for a frame made from an array (`pd.DataFrame(X).to_csv()`). Without the blank first
  cell, such a row is read as data when every value below it is a whole number (there a
  row of integer codes is as likely), and a row read as a header is reported in `notes`;
- otherwise it is data.

Index. `index_col=` and `time_col=` take a column out of the features as the row index
(`time_col` parses dates: ISO dates and times, 1959Q1, ...; numbers such as years stay
numbers). Without them, a first column with no name (blank, or pandas' `Unnamed: 0`) that
holds whole numbers, text or dates is taken as the index, as `DataFrame.to_csv` wrote it,
with a note. A Parquet file keeps the index pandas stored in it. The index is written back
as the first column (CSV, TSV), as pandas' index (Parquet) or as the array `index` (.npz).
"""

from __future__ import annotations

import os
from pathlib import Path

from latentkit.exceptions import InvalidInputError

from ._arrays import read_npy, read_npz, read_parquet
from ._categories import MISSING_TOKENS
from ._csv import read_csv
from ._record import Data, TableOptions, select
from ._write import write_table

#: file suffixes `read_table` reads
READERS = {".csv": read_csv, ".tsv": read_csv, ".parquet": read_parquet, ".npy": read_npy,
           ".npz": read_npz}


def read_file(path: Path, options: TableOptions, key: str | None = None) -> Data:
    """`path` by its suffix, read with `options`."""
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise InvalidInputError(f"cannot read {path}: the file type {suffix or '(none)'} is "
                                f"not supported; use {', '.join(READERS)}.")
    if suffix == ".npz":
        return read_npz(path, options, key=key)
    if key is not None:
        raise InvalidInputError(f"--key names an array of a .npz file; {path.name} is not one.")
    return READERS[suffix](path, options)


def read_table(path: str | os.PathLike, *, columns=None, drop=(), index_col: str | None = None,
               time_col: str | None = None, header: bool | None = None,
               key: str | None = None, categorical: bool = False) -> Data:
    """A table file as a `Data` record (the rules above).

    columns : names of the features to keep, in this order (None: all, in file order).
    drop : names of features to leave out.
    index_col, time_col : a column used as the row index (`time_col`: parsed as dates).
    header : None detects a CSV/TSV header row, True / False says whether there is one.
    key : the array of a .npz file (its first, or `write_table`'s X, when None).
    categorical : read text columns as categories (codes in X, names in `Data.categories`)
        instead of refusing them.
    """
    options = TableOptions(columns=columns, drop=drop, index_col=index_col,
                           time_col=time_col, header=header, categorical=categorical)
    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return read_file(path, options, key)


__all__ = ["MISSING_TOKENS", "READERS", "Data", "TableOptions", "read_csv", "read_file",
           "read_npy", "read_npz", "read_parquet", "read_table", "select", "write_table"]
