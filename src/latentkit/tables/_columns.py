"""Arrow columns to a `Data` record: the row index taken out (--index-col, --time-col, or a
detected unnamed index column), the kept features converted to float with NaN for missing,
and any column that is not numbers read as categories (`TableOptions.categorical`, the rules
of `_categories`) or refused with the option that fixes it."""

from __future__ import annotations

import re
import shlex
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from latentkit.exceptions import InvalidInputError

from ._categories import (
    MISSING_TOKENS,
    Codes,
    boolean_codes,
    cleaned_text,
    dictionary_codes,
    text_codes,
)
from ._record import Data, TableOptions, kept_positions

#: the name pandas gives an unnamed first column (its index, written by `DataFrame.to_csv`)
UNNAMED_FIRST = "Unnamed: 0"
_QUARTER = re.compile(r"^\d{4}\s*-?\s*Q[1-4]$", re.IGNORECASE)

#: where a row is, for messages: row number (0-based, in the table) -> "file, line N"
Where = Callable[[int], str]


def _categorical_models() -> str:
    """What the text-column error adds: the registered models that read text (the specs
    with categorical=True, e.g. "cmm, bayesnet, lca"). The registry is imported here, not
    at module level: it imports the model families, which may import tables."""
    from latentkit.registry import registered_specs

    names = [name for name, spec in registered_specs().items() if spec.categorical]
    return f"categorical models ({', '.join(names)}) read a text column's values as states"


def _numeric_kind(kind: pa.DataType) -> bool:
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            or pa.types.is_null(kind) or pa.types.is_decimal(kind))


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """(n_rows,) float64 of a numeric column, NaN where it is null."""
    values = pc.cast(column, pa.float64())
    if values.null_count:
        values = pc.fill_null(values, np.nan)
    return values.to_numpy()


def _fill_floats(target: np.ndarray, column: pa.ChunkedArray) -> None:
    """Copy a float64 column into `target` : (n_rows,), NaN where it is null."""
    row = 0
    for chunk in column.chunks:
        target[row:row + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
        row += len(chunk)


def _is_date(text: str) -> bool:
    if _QUARTER.match(text):
        return True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pd.Timestamp(text)
        except (ValueError, TypeError, OverflowError):
            return False
    return any(mark in text for mark in "-/:") or text[:1].isalpha()


def not_a_number(where: str, position: int, name: str, value) -> InvalidInputError:
    """The error for a cell that is not a number, naming the option that fixes it."""
    flag = shlex.quote(name)
    if _is_date(str(value)):
        return InvalidInputError(
            f"{where}, column {position} ({name}): {value!r} is a date, not a number; use the "
            f"column as the time index with --time-col {flag} (time_col= in Python), or "
            f"leave it out with --drop {flag}.")
    return InvalidInputError(
        f"{where}, column {position} ({name}): {value!r} is not a number; leave the column "
        f"out with --drop {flag} (drop= in Python), or use it as row labels with --index-col "
        f"{flag}; {_categorical_models()}.")


def _parsed(cleaned: pa.ChunkedArray, position: int, name: str, where: Where) -> np.ndarray:
    """(n_rows,) float64 of a cleaned text column of numbers (Python's `float` for what
    pyarrow does not parse, such as `1_000`); the first other value is an error."""
    texts = cleaned.to_pylist()
    values = np.full(len(texts), np.nan)
    for row, text in enumerate(texts):
        if text is None:
            continue
        try:
            values[row] = float(text)
        except ValueError:
            raise not_a_number(where(row), position, name, text) from None
    return values


def _text_values(column: pa.ChunkedArray, position: int, name: str, where: Where,
                 categorical: bool) -> np.ndarray | Codes:
    """(n_rows,) float64 of a text column of numbers and missing tokens; with
    `categorical`, (codes, states) of one that holds text."""
    found = text_codes(column) if categorical else None
    if found is not None:
        return found
    cleaned = cleaned_text(column)
    try:
        return _floats(cleaned)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _parsed(cleaned, position, name, where)


def feature_values(column: pa.ChunkedArray, position: int, name: str, where: Where,
                   categorical: bool = False) -> np.ndarray | Codes:
    """(n_rows,) float64 of one feature column; position is 1-based in the source. With
    `categorical`, a text, pandas Categorical or boolean column is (codes, state names)
    instead (the rules of `_categories`), unless its values are all numbers."""
    kind = column.type
    if categorical and pa.types.is_boolean(kind):
        return boolean_codes(column)
    if categorical and pa.types.is_dictionary(kind):
        found = dictionary_codes(column)
        if found is not None:
            return found
    if _numeric_kind(kind):
        return _floats(column)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text_values(column, position, name, where, categorical)
    if pa.types.is_dictionary(kind):
        return _text_values(pc.cast(column, pa.string()), position, name, where, False)
    valid = pc.drop_null(column)
    value = valid[0].as_py() if len(valid) else None
    row = pc.index(pc.is_valid(column), True).as_py() if len(valid) else 0
    if pa.types.is_temporal(kind):
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        raise not_a_number(where(row), position, name, text)
    raise InvalidInputError(f"{where(row)}, column {position} ({name}) holds {kind} values; "
                            f"latentkit needs numbers: leave it out with --drop {name}.")


def _whole(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(np.all(finite == np.round(finite)))


def _label_index(column: pa.ChunkedArray, name: str | None) -> pd.Index:
    """Row labels as they are; whole numbers stored as floats become integers."""
    if _numeric_kind(column.type) and not pa.types.is_boolean(column.type):
        values = _floats(column)
        if not np.isnan(values).any() and _whole(values):
            return pd.Index(values.astype(np.int64), name=name)
        return pd.Index(values, name=name)
    return pd.Index(column.to_pandas()).rename(name)


def _text_dates(texts: pd.Series, name: str, where: Where) -> pd.DatetimeIndex:
    texts = texts.str.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        valid = texts.dropna()
        if len(valid) and valid.str.match(_QUARTER).all():
            periods = pd.PeriodIndex(texts.str.replace(r"[\s-]", "", regex=True), freq="Q")
            return pd.DatetimeIndex(periods.to_timestamp()).rename(name)
        dates = pd.to_datetime(texts, errors="coerce")
    bad = dates.isna() & texts.notna() & ~texts.str.lower().isin(MISSING_TOKENS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InvalidInputError(f"{where(row)}: {texts.iloc[row]!r} in the time column "
                                f"{name!r} is not a date.")
    return pd.DatetimeIndex(dates).rename(name)


def time_index(column: pa.ChunkedArray, name: str, where: Where) -> pd.Index:
    """The --time-col index: dates (ISO dates and times, 1959Q1, ...) as a DatetimeIndex,
    numbers (e.g. years) as they are."""
    kind = column.type
    if pa.types.is_temporal(kind):
        return pd.DatetimeIndex(pd.to_datetime(column.to_pandas())).rename(name)
    if _numeric_kind(kind):
        return _label_index(column, name)
    if pa.types.is_dictionary(kind):
        column = pc.cast(column, pa.string())
    return _text_dates(column.to_pandas().astype(object), name, where)


def _looks_like_index(column: pa.ChunkedArray) -> bool:
    """Whole numbers (0..n-1 from DataFrame.to_csv), text or dates: row labels."""
    if _numeric_kind(column.type):
        return not pa.types.is_boolean(column.type) and _whole(_floats(column))
    return True


def _take_index(table: pa.Table, names: list[str], named: bool, options: TableOptions,
                source: str, where: Where) -> tuple[int | None, pd.Index | None, str | None]:
    """(position of the index column or None, the index, a note for the user)."""
    label = options.label
    if label is not None:
        if label not in names:
            raise InvalidInputError(f"{source} has no column {label!r} (--"
                                    f"{'time' if options.time_col else 'index'}-col); its "
                                    f"columns are {', '.join(names)}.")
        position = names.index(label)
        column = table.column(position)
        if options.time_col is not None:
            return position, time_index(column, label, where), None
        return position, _label_index(column, label), None
    chosen = (*options.drop, *(options.columns or ()))
    if (named and names[0] == UNNAMED_FIRST and UNNAMED_FIRST not in chosen
            and table.num_columns > 1 and _looks_like_index(table.column(0))):
        note = (f"{source}: the first column has no name and holds row labels (an index, as "
                f"DataFrame.to_csv writes it); it is kept as the row index, not read as a "
                f"feature.")
        return 0, _label_index(table.column(0), None), note
    return None, None, None


def table_to_data(table: pa.Table, names: list[str] | None, options: TableOptions, *,
                  name: str, source: str, where: Where, index: pd.Index | None = None,
                  notes: tuple[str, ...] = ()) -> Data:
    """`table`'s columns (named `names`, or None for a headerless file) as a `Data` record."""
    named = names is not None
    names = list(names) if named else [f"x{j + 1}" for j in range(table.num_columns)]
    position, found, note = _take_index(table, names, named, options, source, where)
    if position is not None:
        index, notes = found, (*notes, note) if note else notes
    features = [j for j in range(len(names)) if j != position]
    kept = [features[k] for k in kept_positions([names[j] for j in features], options, source)]
    columns = [names[j] for j in kept] if named or options.selects else None
    X = np.empty((table.num_rows, len(kept)), dtype=np.float64)
    categories = {}
    for out, j in enumerate(kept):
        column = table.column(j)
        if column.type == pa.float64():  # chunk by chunk: no concatenated copy
            _fill_floats(X[:, out], column)
            continue
        values = feature_values(column, j + 1, names[j], where, options.categorical)
        if isinstance(values, tuple):  # (codes, states), keyed as Data.column_names has it
            values, states = values
            categories[columns[out] if columns else f"x{out + 1}"] = states
        X[:, out] = values
    return Data(X=X, name=name, columns=columns, index=index, notes=notes,
                categories=categories or None)
