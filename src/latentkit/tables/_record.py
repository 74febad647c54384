"""The records of a table read from a file: `Data` (the values, their names, the row labels)
and `TableOptions` (which columns to read, and how)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentkit.exceptions import InvalidInputError, InvalidParameterError


@dataclass(frozen=True)
class Data:
    """A table read for a model.

    X : (n_samples, n_features) float, NaN = missing, rows in the source's order.
    name : what to call the source in messages (a file name, a bundled dataset's name).
    columns : the features' names in the source's order, or None when it has none.
    target : (n_samples,) labels of a labelled bundled dataset, or None.
    image_shape : (height, width) of image rows, or None.
    bundled : whether the table is a bundled dataset (which a family may adapt).
    value_range : (low, high) of the values' nominal range (grey levels), or None.
    index : (n_samples,) row labels, or None: the dates of --time-col, the values of
        --index-col, or a detected unnamed index column; written back with the outputs.
    notes : what the reader decided that the user should hear (a dropped index column, a
        numeric header), one sentence each.
    categories : {column name: state names} for the columns read as categories (text
        columns, when the model takes categories): X holds codes 0..len(states)-1 into the
        names (NaN = missing). None when no column was.
    factors : (n_samples, n_factors) the known factors of variation of each row (the
        sprites' shape, scale, orientation and position; disentanglement metrics), or None;
        factor_names : their names.
    """

    X: np.ndarray
    name: str
    columns: list[str] | None = None
    target: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None
    bundled: bool = False
    value_range: tuple[float, float] | None = None
    index: pd.Index | None = None
    notes: tuple[str, ...] = ()
    categories: dict[str, tuple[str, ...]] | None = None
    factors: np.ndarray | None = None
    factor_names: tuple[str, ...] | None = None

    @property
    def column_names(self) -> list[str]:
        """The source's column names, else x1 .. xD."""
        if self.columns is not None and len(self.columns) == self.X.shape[1]:
            return list(self.columns)
        return [f"x{j + 1}" for j in range(self.X.shape[1])]

    def frame(self) -> pd.DataFrame:
        """X as a DataFrame with the column names and the row index; a categorical column
        holds its state names (pandas Categorical), every other column floats."""
        names = self.column_names
        frame = pd.DataFrame(self.X, columns=names, index=self.index)
        for name, states in (self.categories or {}).items():
            codes = frame[name].to_numpy()
            frame[name] = pd.Categorical.from_codes(
                np.where(np.isnan(codes), -1, codes).astype(np.int64), categories=list(states))
        return frame

    def describe(self) -> str:
        rows, cols = self.X.shape
        return f"{self.name}: {rows} rows x {cols} columns"

    def replace(self, **changes) -> Data:
        return dataclasses.replace(self, **changes)

    def head(self, n_rows: int) -> Data:
        """The first `n_rows` rows, with their labels, targets and factors."""
        return self.replace(
            X=self.X[:n_rows],
            target=None if self.target is None else self.target[:n_rows],
            index=None if self.index is None else self.index[:n_rows],
            factors=None if self.factors is None else self.factors[:n_rows])


def _names(value, option: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(name, str) and name for name in names):
        raise InvalidParameterError(f"{option} must be column names (non-empty strings); got "
                                    f"{value!r}.")
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"{option} names a column twice: {', '.join(names)}.")
    return names


@dataclass(frozen=True)
class TableOptions:
    """How to read a table (the command line's --columns, --drop, --index-col, --time-col,
    --no-header).

    columns : the features to keep, in this order (None: every column, in file order).
    drop : features to leave out.
    index_col : a column used as row labels, not as a feature.
    time_col : a column of dates (or numbers, e.g. years) used as the row index of a series.
    header : whether the first row of a CSV/TSV file names the columns; None detects it
        (the rule of `latentkit.tables`), False reads it as data (--no-header).
    categorical : read a text column as categories (its distinct values, sorted, are the
        state names in `Data.categories`; X holds the codes) instead of refusing it; for
        models of categorical data.
    """

    columns: tuple[str, ...] | None = None
    drop: tuple[str, ...] = ()
    index_col: str | None = None
    time_col: str | None = None
    header: bool | None = None
    categorical: bool = False

    def __post_init__(self):
        object.__setattr__(self, "columns", _names(self.columns, "columns"))
        object.__setattr__(self, "drop", _names(self.drop, "drop") or ())
        if self.index_col is not None and self.time_col is not None:
            raise InvalidParameterError("give either index_col (--index-col) or time_col "
                                        "(--time-col), not both: each sets the row index.")
        if self.header not in (None, True, False):
            raise InvalidParameterError(f"header must be None, True or False; got "
                                        f"{self.header!r}.")
        label = self.index_col or self.time_col
        both = set(self.drop) & set(self.columns or ())
        if both:
            raise InvalidParameterError(f"{', '.join(sorted(both))} is both kept (--columns) "
                                        f"and dropped (--drop).")
        if label is not None and label in (*self.drop, *(self.columns or ())):
            raise InvalidParameterError(f"{label!r} is the row index; leave it out of "
                                        f"--columns and --drop.")

    @property
    def label(self) -> str | None:
        """The column that becomes the row index, if one was named."""
        return self.index_col or self.time_col

    @property
    def selects(self) -> bool:
        return self.columns is not None or bool(self.drop)


def kept_positions(names: list[str], options: TableOptions, source: str) -> list[int]:
    """Positions (in `names`) of the features to read, in output order."""
    position = {name: j for j, name in enumerate(names)}
    unknown = [name for name in (*options.drop, *(options.columns or ())) if name not in position]
    if unknown:
        raise InvalidInputError(f"{source} has no column {', '.join(map(repr, unknown))}; its "
                                f"columns are {', '.join(names)}.")
    if options.columns is not None:
        return [position[name] for name in options.columns]
    dropped = set(options.drop)
    kept = [j for j, name in enumerate(names) if name not in dropped]
    if not kept:
        raise InvalidInputError(f"--drop leaves no column of {source}.")
    return kept


def select(data: Data, options: TableOptions) -> Data:
    """`data` with only the columns `options` keeps (an array or bundled source)."""
    if not options.selects:
        return data
    names = data.column_names
    kept = kept_positions(names, options, data.name)
    categories = {names[j]: data.categories[names[j]] for j in kept
                  if data.categories and names[j] in data.categories}
    return data.replace(X=data.X[:, kept], columns=[names[j] for j in kept],
                        categories=categories or None)
