"""DATA's columns against a model's: matched by name, handed to the model, written back.

A model fitted from a table with a header keeps its column names (`feature_names_in_`, or
its spec's `feature_names`, e.g. a Bayesian network's observed variables) in its saved
file. Every command that gives it data matches DATA's columns to those names:

- the same names in another order are put in the model's order;
- a missing or unexpected name is an error naming each one and the fix;
- a file without a header is taken column by column, in the model's order, with a note.

Outputs go the other way: a model's DataFrame of state names (a categorical model's impute
or sample) becomes codes plus the state names, which `write_table` writes as names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentkit.exceptions import InvalidInputError
from latentkit.tables import Data


def _listing(names) -> str:
    return ", ".join(map(repr, names))


def match_features(data: Data, names: list[str] | None) -> Data:
    """`data` with its columns in the order of `names` (the model's features).

    names None (a model that saw no names): `data` unchanged (its column count is checked by
    the caller). A headerless `data` of the right width takes `names`, with a note.
    Raises InvalidInputError naming the missing and the unexpected columns.
    """
    if names is None:
        return data
    width = data.X.shape[1]
    if data.columns is None:
        if width != len(names):
            raise InvalidInputError(
                f"{data.name} has {width} columns but the model was fitted on {len(names)}: "
                f"{_listing(names)}.")
        note = (f"{data.name} has no header: its {width} columns are taken as the model's "
                f"features {', '.join(names)}, in this order.")
        return data.replace(columns=list(names), notes=(*data.notes, note))
    columns = list(data.columns)
    missing = [name for name in names if name not in columns]
    unexpected = [name for name in columns if name not in names]
    if missing or unexpected:
        parts = ([f"missing {_listing(missing)}"] if missing else []) + (
            [f"unexpected {_listing(unexpected)}"] if unexpected else [])
        raise InvalidInputError(
            f"the columns of {data.name} do not match the model's features: "
            f"{'; '.join(parts)}. The model was fitted on {_listing(names)} (any order); "
            f"rename the columns, or choose them with --columns / --drop.")
    if columns == list(names):
        return data
    order = [columns.index(name) for name in names]
    note = f"{data.name}'s columns were put in the model's order: {', '.join(names)}."
    return data.replace(X=data.X[:, order], columns=list(names), notes=(*data.notes, note))


def model_input(data: Data, named: bool):
    """What the model is given: a DataFrame (its column names, row index and categories)
    when the model knows names, else the float array X."""
    return data.frame() if named and data.columns is not None else data.X


def as_table(values) -> tuple[np.ndarray, list[str] | None, dict[str, tuple[str, ...]]]:
    """A model's output (array or DataFrame) as (X floats, column names or None, {column:
    state names}) for `write_table`: a column of text states becomes codes into its states
    (a Categorical's own categories, else the sorted distinct values)."""
    if not isinstance(values, pd.DataFrame):
        return np.asarray(values, dtype=np.float64), None, {}
    columns, X, categories = [str(c) for c in values.columns], [], {}
    for name, column in zip(columns, (values[c] for c in values.columns)):
        if pd.api.types.is_numeric_dtype(column.dtype) and not isinstance(
                column.dtype, pd.CategoricalDtype):
            X.append(column.to_numpy(dtype=np.float64, na_value=np.nan))
            continue
        if isinstance(column.dtype, pd.CategoricalDtype):
            states, codes = [str(c) for c in column.cat.categories], column.cat.codes
        else:
            text = column.astype("string")
            states = sorted(text.dropna().unique())
            codes = pd.Categorical(text, categories=states).codes
        X.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
        categories[name] = tuple(states)
    return np.column_stack(X) if X else np.empty((len(values), 0)), columns, categories
