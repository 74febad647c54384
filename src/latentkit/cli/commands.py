"""What each `latentkit` subcommand does, over the registry of `latentkit.registry`: read
DATA, build and fit (or load) the model, write the model, its summary, figures and page."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from latentkit.exceptions import InvalidInputError, InvalidParameterError
from latentkit.registry import FigureJob, get_spec, registered_specs, spec_for

from . import options
from .data import Data, TableOptions, load_data, write_table
from .report import Report, Section, text_table


def _read(spec, source: str, args) -> Data:
    """DATA read with the --key, --max-rows, --columns, --drop, --index-col, --time-col and
    --no-header options; the reader's notes go to stderr."""
    options = TableOptions(columns=args.columns, drop=args.drop, index_col=args.index_col,
                           time_col=args.time_col, header=False if args.no_header else None)
    data = load_data(source, key=args.key, max_rows=args.max_rows, options=options)
    for note in data.notes:
        print(f"latentkit: note: {note}", file=sys.stderr)
    return spec.prepare(data) if data.bundled else data


def _load_model(path: str):
    """(model, spec) of a saved model file."""
    from latentkit.io import load

    registered_specs()  # every family imported: `load` knows their classes
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such model file: {path}")
    model = load(path)
    return model, spec_for(model)


def _load_with_data(args):
    """(model, spec, data): the saved model, its spec, and DATA read for it with the
    model's number of columns checked."""
    model, spec = _load_model(args.model_file)
    data = spec.align(model, _read(spec, args.data, args))
    expected = getattr(model, "n_features_in_", data.X.shape[1])
    if data.X.shape[1] != expected:
        raise InvalidInputError(f"{data.name} has {data.X.shape[1]} columns but the model "
                                f"was fitted on {expected} columns.")
    return model, spec, data


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def _check_family_flags(spec, args) -> None:
    """A family's own `fit` flag given for a model of another family is an error."""
    for owner, dest, flag in args.family_flags:
        if owner != spec.name and getattr(args, dest, None) is not None:
            raise InvalidParameterError(f"{flag} is an option of {owner}; {spec.name} does "
                                        f"not take it.")


def _build(spec, args):
    """The unfitted model: the spec's defaults, its family flags, then the --options."""
    _check_family_flags(spec, args)
    if args.n_components is not None and spec.size_param is None:
        raise InvalidParameterError(f"{spec.name} has no number of components; drop -k.")
    kwargs = {**dict(spec.defaults),
              **(spec.cli_kwargs(args) if spec.cli_kwargs is not None else {}),
              **options.model_kwargs(spec, args.model_options)}
    return spec.cls(**kwargs), kwargs


def _fit(spec, model, X, args):
    """Fit, choosing the size by a criterion when -k is auto; (model, selection or None)."""
    size = args.n_components
    if size is None and spec.size_param is not None:
        size = spec.default_size
    if size == "auto":
        from latentkit.metrics.selection import select_n_components

        candidates = list(range(1, min(10, len(X)) + 1))
        selection = select_n_components(model, X, candidates, criterion=args.criterion,
                                        random_state=getattr(model, "random_state", None),
                                        param=spec.size_param)
        return selection.best_model, selection
    if size is not None:
        model.set_params(**{spec.size_param: size})
    return model.fit(X), None


def _fit_with_progress(spec, model, kwargs: dict, X, args):
    """_fit with progress bars when stderr is a terminal and --verbose was not set."""
    progress = ("verbose" in spec.options() and "verbose" not in kwargs and not args.quiet
                and sys.stderr.isatty())
    if progress:
        model.set_params(verbose=1)
    model, selection = _fit(spec, model, X, args)
    if progress:
        model.set_params(verbose=kwargs.get("verbose", 0))
    return model, selection


def _write_summary(out: Path, rows, model, figures, selection, criterion) -> None:
    summary = {key: value for key, _, value in rows}
    summary.update(params=model.get_params(deep=False), model_file="model.npz",
                   figures=[path.name for path, _ in figures])
    if selection is not None:
        from latentkit.plot.curves import table_columns

        summary["selection"] = {"criterion": criterion, "table": table_columns(selection.table)}
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")


def run_fit(args) -> int:
    spec = get_spec(args.model)
    model, kwargs = _build(spec, args)
    data = spec.align(model, _read(spec, args.data or spec.default_data, args))
    out = Path(args.out or f"latentkit-{spec.name}")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model, selection = _fit_with_progress(spec, model, kwargs, data.X, args)
    seconds = time.perf_counter() - start
    model.save(out / "model.npz")
    rows = (options.describe(spec, model) + [("data", "data", data.describe())]
            + options.metrics(model, data) + options.convergence(model, seconds))
    figures = spec.figures(FigureJob(model, data, out, selection))
    _write_summary(out, rows, model, figures, selection, args.criterion)
    report = Report(f"latentkit fit {spec.name}: {data.name}")
    tables = [[{label: value for _, label, value in rows}]]
    if selection is not None:
        tables.append((f"choosing {selection.param} by {args.criterion}", selection.table))
    report.add(Section("Fit", f"`{spec.class_name}` fitted to {data.describe()}.",
                       figures, tables))
    report.write(out)
    if not args.quiet:
        print(text_table([(label, value) for _, label, value in rows]))
        if selection is not None:
            print(f"\nK chosen by {args.criterion}:\n{selection.table}")
        count = f"{len(figures)} figure{'s' if len(figures) != 1 else ''}"
        print(f"\nwrote model.npz, summary.json, index.html and {count} to {out}")
    return 0


def run_evaluate(args) -> int:
    model, spec, data = _load_with_data(args)
    rows = (options.describe(spec, model) + [("data", "data", data.describe())]
            + options.metrics(model, data))
    print(text_table([(label, value) for _, label, value in rows]))
    return 0


def run_sample(args) -> int:
    model, _ = _load_model(args.model_file)
    X, z = model.sample(args.n_samples, random_state=args.random_state)
    X = np.asarray(X, dtype=np.float64)
    columns = [f"x{j + 1}" for j in range(X.shape[1])]
    if args.with_components:
        X, columns = np.column_stack([X, np.asarray(z)]), [*columns, "component"]
    path = write_table(args.out, X, columns)
    print(f"wrote {len(X)} samples to {path}")
    return 0


def run_impute(args) -> int:
    model, _, data = _load_with_data(args)
    if not hasattr(model, "impute"):
        raise InvalidParameterError(f"{type(model).__name__} cannot impute missing values.")
    missing = np.isnan(data.X)
    completed = np.asarray(model.impute(data.X))
    path = write_table(args.out, completed, data.column_names, index=data.index,
                       header=data.columns is not None)
    print(f"imputed {int(missing.sum())} missing values in {int(missing.any(axis=1).sum())} "
          f"of {len(data.X)} rows; wrote {path}")
    return 0


def run_report(args) -> int:
    model, spec, data = _load_with_data(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = options.describe(spec, model) + options.metrics(model, data)
    rows += options.convergence(model, 0.0)[:2]
    figures = spec.figures(FigureJob(model, data, out))
    params = [{"parameter": k, "value": str(v)} for k, v in model.get_params(deep=False).items()]
    report = Report(f"{spec.class_name} from {Path(args.model_file).name} on {data.name}")
    report.add(Section("Model", f"The model saved in `{args.model_file}`, evaluated on "
                       f"{data.describe()}.", figures,
                       [[{label: value for _, label, value in rows}]]))
    report.add(Section("Hyper-parameters", "", tables=[params]))
    path = report.write(out)
    print(f"wrote {path} and {len(figures)} figures")
    return 0


def run_demo(args) -> int:
    from .demo import Progress, run_demo

    path = run_demo(args.out, quick=args.quick, progress=Progress(enabled=not args.quiet))
    print(f"wrote {path}")
    return 0


COMMANDS = {"fit": run_fit, "evaluate": run_evaluate, "sample": run_sample,
            "impute": run_impute, "report": run_report, "demo": run_demo}
