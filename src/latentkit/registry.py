"""The registry of model families: the public extension point of latentkit.

A `ModelSpec` says everything the command line, the demo, model selection and the contract
tests need to know about one model: its class, its command-line name, its embedded default
dataset and how a bundled dataset becomes its input, its figures, its demo section, the name
of its size parameter and a small synthetic problem it fits. Each family registers its specs
when it is imported (`latentkit/<family>/_registry.py`); a new model needs nothing else:

    from latentkit.registry import ModelSpec, register

    register(ModelSpec("mygmm", MyMixture, "my mixture", "faithful", "Old Faithful (272 x 2)",
                       figures=my_figures))

after which `latentkit fit mygmm`, `latentkit evaluate`, `latentkit.load` and
`select_n_components` know it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .exceptions import InvalidParameterError

if TYPE_CHECKING:  # the command line's data record; specs only read its fields
    from .cli.data import Data

Figures = list[tuple[Path, str]]


@dataclass(frozen=True)
class FigureJob:
    """What a figure function gets: the fitted model, its data (a `latentkit.cli.data.Data`:
    X, column_names, target, image_shape), where to write, and the model-selection result
    when the size parameter was chosen automatically (else None)."""

    model: Any
    data: Data
    out_dir: Path
    selection: Any = None


def as_is(data: Data) -> Data:
    """The default `prepare`: bundled data used unchanged."""
    return data


def keep_columns(model, data: Data) -> Data:
    """The default `align`: DATA's columns used in the order they come."""
    return data


def fitted_feature_names(model) -> list[str] | None:
    """The default `feature_names`: the `feature_names_in_` the model was fitted with, or
    None when it saw no names."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def labels_and_probabilities(model, X):
    """The default `predict_table`: a DataFrame with each row's most probable component
    (`label`) and, when the model has predict_proba, p(z = k | x) as `prob_k`."""
    import pandas as pd

    table = pd.DataFrame({"label": np.asarray(model.predict(X))})
    if callable(getattr(model, "predict_proba", None)):
        probs = np.asarray(model.predict_proba(X), dtype=np.float64)
        for k in range(probs.shape[1]):
            table[f"prob_{k}"] = probs[:, k]
    return table


def no_tables(job: FigureJob) -> list:
    """The default `tables`: none."""
    return []


def history_figures(job: FigureJob) -> Figures:
    """The default `figures`: the criterion curve when the size was chosen automatically and
    the EM objective per iteration (when the model records one)."""
    from .plot.common import criterion_figure, history_figure

    return criterion_figure(job) + history_figure(job)


@dataclass(frozen=True)
class ModelSpec:
    """How latentkit handles one model.

    name : the command-line name (`latentkit fit NAME`).
    cls : the estimator class (registered with `latentkit.io` too, so `load` rebuilds it).
    description, default_data, default_data_note : help text; the bundled dataset used when
        DATA is not given, and a note describing it.
    prepare : bundled Data -> the model's input domain (e.g. binarized); files are used as is.
    figures : FigureJob -> [(png path, caption)], the figures of `fit` and `report`.
    summary_params : hyper-parameters shown in the summary table.
    size_param : the constructor parameter that sets the model's size (-k on the command
        line, the candidates of `select_n_components`); None when the model has none.
    size_label : how the summary table names the size.
    default_size : the size when -k is not given: "auto" (chosen by a criterion) or an int.
    hidden_params : constructor parameters not offered as --options.
    defaults : constructor values the command line uses unless --options set them.
    demo : (out_dir, progress, *, quick) -> report Section of `latentkit demo`, or None.
    cli_options : parser -> [argparse.Action], adding the family's own `fit` flags (e.g.
        --structure) and returning them; their values reach `cli_kwargs` only, and giving
        one for a model of another spec is an error.
    cli_kwargs : (parsed args) -> constructor keyword arguments from those flags.
    align : (model, Data) -> Data, DATA's columns put in the order the model expects.
    feature_names : model -> the names of the columns it takes, in order, or None (by
        default its `feature_names_in_`); the command line matches DATA's columns by them.
    tables : FigureJob -> [(caption, rows)] of the model's parameters for `fit` and
        `report` pages (rows: a list of dicts or a ResultTable), e.g. component weights and
        means per named feature.
    predict_table : (model, X) -> DataFrame, what `latentkit predict` writes for each row
        (by default the most probable component and its probabilities).
    categorical : whether the model takes categories: the command line reads text columns
        of DATA as categories (state names) instead of refusing them.
    read_data : (DATA, the fitted model or None when fitting) -> Data, or None to leave
        DATA to the table reader: the family's own reader for inputs a table cannot hold
        (a text file of documents, a bundled corpus of sparse counts).
    model_input : (Data, named) -> what the model is given (None: the table, as a
        DataFrame when the model knows names, else the float array X).
    metrics : (model, Data, model input) -> [(key, label, value)], the rows `fit`,
        `evaluate` and `report` print about the fit to DATA (None: mean log-likelihood,
        BIC, AIC, and the adjusted Rand index where DATA has labels).
    example : rng -> (constructor kwargs, X float64 of ~100-300 rows), a small synthetic
        problem the model fits (contract tests, docs).
    """

    name: str
    cls: type
    description: str
    default_data: str
    default_data_note: str
    prepare: Callable[[Data], Data] = as_is
    figures: Callable[[FigureJob], Figures] = history_figures
    summary_params: tuple[str, ...] = ()
    size_param: str | None = "n_components"
    size_label: str = "K (components)"
    default_size: int | str = "auto"
    hidden_params: tuple[str, ...] = ("callbacks",)
    defaults: tuple[tuple[str, object], ...] = ()
    demo: Callable | None = None
    cli_options: Callable[[argparse.ArgumentParser], list[argparse.Action]] | None = None
    cli_kwargs: Callable[[argparse.Namespace], dict] | None = None
    align: Callable[[Any, Data], Data] = keep_columns
    feature_names: Callable[[Any], list[str] | None] = fitted_feature_names
    tables: Callable[[FigureJob], list] = no_tables
    predict_table: Callable[[Any, Any], Any] = labels_and_probabilities
    categorical: bool = False
    read_data: Callable[[str, Any], Data | None] | None = None
    model_input: Callable[[Data, bool], Any] | None = None
    metrics: Callable[[Any, Data, Any], list] | None = None
    example: Callable[[np.random.Generator], tuple[dict, np.ndarray]] | None = None

    @property
    def class_name(self) -> str:
        return self.cls.__name__

    def options(self) -> list[str]:
        """Constructor parameters settable as --some-option VALUE."""
        names = self.cls().get_params(deep=False)
        return sorted(n for n in names
                      if n != self.size_param and n not in self.hidden_params)


_SPECS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add `spec` to the registry (and its class to `latentkit.io`, so `load` can rebuild
    it). Registering the same name and class again replaces the spec; a name already taken
    by another class is an error."""
    from .io import register_model

    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register expects a ModelSpec; got {type(spec).__name__}.")
    known = _SPECS.get(spec.name)
    if known is not None and known.cls is not spec.cls:
        raise InvalidParameterError(
            f"cannot register {spec.cls.__qualname__} as {spec.name!r}: the name already "
            f"belongs to {known.cls.__module__}.{known.cls.__qualname__}.")
    register_model(spec.cls)
    _SPECS[spec.name] = spec
    return spec


def registered_specs() -> dict[str, ModelSpec]:
    """A copy of the registry, name -> spec, in registration order (every family that ships
    with latentkit is registered once `latentkit` is imported)."""
    import latentkit

    latentkit.import_families()  # every family, those imported on first use included
    return dict(_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The spec registered as `name`; InvalidParameterError listing the known names."""
    specs = registered_specs()
    spec = specs.get(name)
    if spec is None:
        raise InvalidParameterError(f"unknown model {name!r}; known models: "
                                    f"{', '.join(specs)}.")
    return spec


def spec_for(model_or_class) -> ModelSpec:
    """The spec registered for a model's (or a class's) exact class; InvalidParameterError
    when there is none (a subclass is a different model: it registers its own spec)."""
    cls = model_or_class if isinstance(model_or_class, type) else type(model_or_class)
    specs = registered_specs().values()
    for spec in specs:
        if spec.cls is cls:
            return spec
    raise InvalidParameterError(
        f"{cls.__name__} is not registered with latentkit.registry; known classes: "
        f"{', '.join(sorted({s.class_name for s in specs}))}.")


__all__ = ["FigureJob", "ModelSpec", "as_is", "fitted_feature_names", "get_spec",
           "history_figures", "keep_columns", "labels_and_probabilities", "no_tables",
           "register", "registered_specs", "spec_for"]
