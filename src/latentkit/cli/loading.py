"""Reading DATA and saved models for the commands: DATA with the table options, a saved
model with its spec, and the two matched by column name (`latentkit.cli.columns`)."""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from typing import Any, NamedTuple

from latentkit.exceptions import InvalidInputError
from latentkit.registry import ModelSpec, registered_specs, spec_for

from .columns import match_features, model_input
from .data import Data, TableOptions, load_data


def read_data(spec: ModelSpec, source: str, args, model=None) -> Data:
    """DATA read with the --key, --max-rows, --columns, --drop, --index-col, --time-col and
    --no-header options (text columns as categories for a model that takes them), or by
    the spec's own reader where it has one that takes DATA (given the fitted model when
    there is one)."""
    if spec.read_data is not None:
        data = spec.read_data(source, model)
        if data is not None:
            return data
    options = TableOptions(columns=args.columns, drop=args.drop, index_col=args.index_col,
                           time_col=args.time_col, header=False if args.no_header else None,
                           categorical=spec.categorical)
    data = load_data(source, key=args.key, max_rows=args.max_rows, options=options)
    return spec.prepare(data) if data.bundled else data


def print_notes(data: Data) -> None:
    """The reader's and the matcher's notes, to stderr."""
    for note in data.notes:
        print(f"latentkit: note: {note}", file=sys.stderr)


def model_path(path) -> str:
    """The model file MODEL_FILE names: itself, or DIR/model.npz for a folder DIR written by
    `latentkit fit`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        inside = os.path.join(path, "model.npz")
        if not os.path.isfile(inside):
            raise FileNotFoundError(f"{path} is a folder without a model.npz; give the model "
                                    f"file, or the folder `latentkit fit --out` wrote.")
        return inside
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such model file: {path}")
    return path


def load_model(path: str):
    """(model, spec) of a saved model file, or of DIR/model.npz for a folder DIR."""
    from latentkit.io import load

    registered_specs()  # every family imported: `load` knows their classes
    model = load(model_path(path))
    return model, spec_for(model)


class Loaded(NamedTuple):
    """A saved model and DATA matched to it.

    X : what the model is given (a DataFrame when it knows feature names, else data.X);
    header : whether DATA had column names (outputs are written with a header then);
    file_columns : DATA's column names in the file's order (data's are in the model's).
    """

    model: Any
    spec: ModelSpec
    data: Data
    X: Any
    header: bool
    file_columns: list[str] | None


def match(model, spec: ModelSpec, data: Data) -> tuple[Data, Any]:
    """(DATA with its columns in the model's order, the model's input); notes printed."""
    names = spec.feature_names(model)
    data = spec.align(model, match_features(data, names))
    print_notes(data)
    expected = getattr(model, "n_features_in_", data.X.shape[1])
    if data.X.shape[1] != expected:
        raise InvalidInputError(f"{data.name} has {data.X.shape[1]} columns but the model "
                                f"was fitted on {expected} columns.")
    return data, given_to(spec, data, named=names is not None)


def given_to(spec: ModelSpec, data: Data, *, named: bool):
    """What the model is given of `data`: the spec's `model_input`, else the table (a
    DataFrame when the model knows names)."""
    return (spec.model_input or model_input)(data, named)


def fitted_source(model_file) -> tuple[str, int | None] | None:
    """(bundled dataset, --max-rows) a folder written by `latentkit fit` was fitted on, as
    its summary.json records it; None for a model file, or data that was not bundled."""
    import json

    summary = os.path.join(os.fspath(model_file), "summary.json")
    if not os.path.isfile(summary):
        return None
    try:
        with open(summary, encoding="utf-8") as handle:
            recorded = json.load(handle)
    except (OSError, ValueError):
        return None
    source = recorded.get("data_source") if isinstance(recorded, dict) else None
    return (source, recorded.get("max_rows")) if isinstance(source, str) else None


def load_with_data(args) -> Loaded:
    """The saved model of args.model_file and args.data read and matched to it. Without
    DATA: the bundled dataset a folder written by `fit` was fitted on (with its --max-rows
    unless given), else the spec's default data."""
    model, spec = load_model(args.model_file)
    source = args.data
    if source is None:
        fitted = fitted_source(args.model_file)
        source = spec.default_data if fitted is None else fitted[0]
        if fitted is not None and args.max_rows is None:
            args.max_rows = fitted[1]
    data = read_data(spec, source, args, model)
    file_columns = data.columns
    data, X = match(model, spec, data)
    return Loaded(model, spec, data, X, file_columns is not None, file_columns)


@contextmanager
def matched_by_name():
    """Figures and metrics draw with DATA's float array after its columns were matched by
    name: scikit-learn's "X does not have valid feature names" warning does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        yield
