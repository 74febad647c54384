"""What the `latentkit` subcommands fit, evaluate, report and demo do, over the registry of
`latentkit.registry`: read DATA, build and fit (or load) the model, write the model, its
summary, figures and page. The row-by-row uses of a saved model are in `uses.py`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from latentkit.exceptions import InvalidParameterError
from latentkit.registry import FigureJob, get_spec

from . import options, scale
from .columns import match_features
from .loading import (
    given_to,
    load_model,
    load_with_data,
    matched_by_name,
    print_notes,
    read_data,
)
from .report import Report, Section, text_table
from .uses import USES

#: the exit status of a fit interrupted by Ctrl-C (after saving what it kept)
EXIT_INTERRUPTED = 130


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


def _metrics(spec, model, data, X) -> list:
    """The summary rows about the fit to DATA: the spec's `metrics`, else the likelihood
    rows every model has."""
    return (spec.metrics or options.metrics)(model, data, X)


def _size_option(spec, args, model_options: dict) -> dict:
    """--n-topics (the size parameter's own name, e.g. n_topics) as an alias of -k."""
    flag = spec.size_param.replace("_", "-") if spec.size_param else None
    if flag is None or flag not in model_options:
        return model_options
    if args.n_components is not None:
        raise InvalidParameterError(f"give the size once: -k or --{flag}, not both.")
    rest = dict(model_options)
    args.n_components = options.coerce(rest.pop(flag))
    return rest


def _build(spec, args):
    """The unfitted model: the spec's defaults, its family flags, then the --options."""
    _check_family_flags(spec, args)
    if args.n_components is not None and spec.size_param is None:
        raise InvalidParameterError(f"{spec.name} has no number of components; drop -k.")
    kwargs = {**dict(spec.defaults),
              **(spec.cli_kwargs(args) if spec.cli_kwargs is not None else {}),
              **options.model_kwargs(spec, _size_option(spec, args, args.model_options))}
    return spec.cls(**kwargs), kwargs


def _candidates(spec, args, n_rows: int) -> list[int] | None:
    """The sizes -k auto (or a range A:B, or --k-max N) tries; None for a fixed size."""
    size = args.n_components
    if size is None and spec.size_param is not None:
        size = spec.default_size
    if args.k_max is not None and size not in ("auto", None) and not isinstance(size, range):
        raise InvalidParameterError(f"--k-max sets the top of -k auto's range; it does not "
                                    f"apply to -k {size}.")
    if isinstance(size, range):
        return list(size)
    if size == "auto":
        top = args.k_max if args.k_max is not None else min(10, n_rows)
        return list(range(1, top + 1))
    return None


def _fit(spec, model, X, args, n_rows: int, *, streamed: bool):
    """Fit X (of n_rows rows; `streamed`: a path or Dask array, scored block by block),
    choosing the size by a criterion over a range of candidates; (model, selection or
    None)."""
    candidates = _candidates(spec, args, n_rows)
    if candidates is not None:
        from latentkit.metrics.selection import select_n_components

        choose = scale.select_streamed if streamed else select_n_components
        selection = choose(model, X, candidates, criterion=args.criterion,
                           random_state=getattr(model, "random_state", None),
                           param=spec.size_param)
        return selection.best_model, selection
    size = args.n_components if args.n_components is not None else spec.default_size
    if spec.size_param is not None:
        model.set_params(**{spec.size_param: size})
    return model.fit(X), None


def _fit_with_progress(spec, model, kwargs: dict, X, args, n_rows: int, streamed: bool):
    """_fit with progress bars when stderr is a terminal and --verbose was not set (none
    with --quiet, even for a model whose default verbose=None shows one on a terminal)."""
    settable = "verbose" in spec.options() and "verbose" not in kwargs
    progress = settable and not args.quiet and sys.stderr.isatty()
    if progress:
        model.set_params(verbose=1)
    elif settable and args.quiet:
        model.set_params(verbose=0)
    model, selection = _fit(spec, model, X, args, n_rows, streamed=streamed)
    if progress:
        model.set_params(verbose=kwargs.get("verbose", 0))
    return model, selection


def _write_summary(out: Path, rows, model, figures, selection, criterion,
                   source: dict) -> None:
    summary = {key: value for key, _, value in rows}
    summary.update(params=model.get_params(deep=False), model_file="model.npz",
                   figures=[path.name for path, _ in figures], **source)
    if selection is not None:
        from latentkit.plot.curves import table_columns

        summary["selection"] = {"criterion": criterion, "table": table_columns(selection.table),
                                "random_state": _jsonable(getattr(selection, "random_state",
                                                                  None))}
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")


def _convergence_note(model) -> str:
    """A page's warning when the fit stopped before converging ('' when it converged or
    the model does not iterate)."""
    reason = getattr(model, "stop_reason_", None)
    if getattr(model, "converged_", True) or reason in (None, "given", "online"):
        return ""
    why = {"interrupted": "it was interrupted (Ctrl-C); the parameters are those of the "
                          "last complete iteration",
           "max_iter": f"it reached max_iter={getattr(model, 'max_iter', '?')} iterations; "
                       "raise --max-iter or --tol",
           "max_time": "it reached its max_time budget"}.get(reason, f"it stopped ({reason})")
    return f"Note: this fit did not converge: {why}."


def _page_sections(spec, model, job: FigureJob, figures, summary_tables, intro: str):
    """The sections every fit and report page has: the model (metrics, figures, a warning
    when it did not converge), its parameter tables, and its hyper-parameters."""
    text = "\n\n".join(part for part in (intro, _convergence_note(model)) if part)
    with matched_by_name():
        parameter_tables = spec.tables(job)
    params = [{"parameter": k, "value": str(v)} for k, v in model.get_params(deep=False).items()]
    sections = [Section("Model", text, figures, summary_tables)]
    if parameter_tables:
        sections.append(Section("Parameters", "", tables=parameter_tables))
    sections.append(Section("Hyper-parameters", "", tables=[params]))
    return sections


def _fit_input(spec, model, args):
    """(DATA matched to the model's variables when it names them, the model's input)."""
    data = read_data(spec, args.data or spec.default_data, args)
    data = spec.align(model, match_features(data, spec.feature_names(model)))
    print_notes(data)
    return data, given_to(spec, data, named=True)


class _Fitted(NamedTuple):
    """What `run_fit` writes about: the fitted model, the selection (or None), the Data its
    figures draw, the summary rows and how DATA is described."""

    model: object
    selection: object
    data: object
    rows: list
    description: str


def _fit_and_score(spec, model, kwargs, args, out: Path) -> _Fitted:
    """Read DATA (or leave it where it is: a store, --dask), fit, save the model and
    compute the summary rows; on --dask, inside `connect(SPEC)`."""
    if args.dask is not None:
        scale.check_dask_request(spec, model, args)
    stream = None
    with scale.cluster(args) as client:
        if scale.wants_stream(spec, model, args):
            stream = scale.streamed_input(spec, args, client,
                                          lambda: _fit_input(spec, model, args)[0])
            data, X, n_rows = stream.sample, stream.X, stream.n_rows
        else:
            data, X = _fit_input(spec, model, args)
            n_rows = X.shape[0]
        start = time.perf_counter()
        model, selection = _fit_with_progress(spec, model, kwargs, X, args, n_rows,
                                              streamed=stream is not None)
        seconds = time.perf_counter() - start
        model.save(out / "model.npz")
        if stream is None or stream.in_memory is not None:
            metrics = _metrics(spec, model, data, data.X if stream else X)
        else:
            metrics = scale.streamed_metrics(model, stream.X)
    description = data.describe() if stream is None else stream.describe()
    rows = (options.describe(spec, model) + [("data", "data", description)] + metrics
            + options.convergence(model, seconds))
    return _Fitted(model, selection, data, rows, description)


def run_fit(args) -> int:
    spec = get_spec(args.model)
    model, kwargs = _build(spec, args)
    out = Path(args.out or f"latentkit-{spec.name}")
    out.mkdir(parents=True, exist_ok=True)
    model, selection, data, rows, description = _fit_and_score(spec, model, kwargs, args, out)
    interrupted = getattr(model, "stop_reason_", None) == "interrupted"
    job = FigureJob(model, data, out, selection)
    with matched_by_name():
        figures = spec.figures(job)
    # a bundled dataset is recorded, so `evaluate`/`report` on this folder default to it
    source = ({"data_source": args.data or spec.default_data, "max_rows": args.max_rows}
              if data.bundled else {})
    _write_summary(out, rows, model, figures, selection, args.criterion, source)
    report = Report(f"latentkit fit {spec.name}: {data.name}")
    tables = [[{label: value for _, label, value in rows}]]
    if selection is not None:
        tables.append((f"choosing {selection.param} by {args.criterion}", selection.table))
    for section in _page_sections(spec, model, job, figures, tables,
                                  f"`{spec.class_name}` fitted to {description}."):
        report.add(section)
    report.write(out)
    if not args.quiet:
        print(text_table([(label, value) for _, label, value in rows]))
        if selection is not None:
            print(f"\nK chosen by {args.criterion}:\n{selection.table}")
        count = f"{len(figures)} figure{'s' if len(figures) != 1 else ''}"
        print(f"\nwrote model.npz, summary.json, index.html and {count} to {out}")
    if interrupted:
        print(f"latentkit: fit interrupted; saved the last complete iteration to "
              f"{out / 'model.npz'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _importance_row(model, X, k: int) -> tuple[str, str, float]:
    """evaluate --iwae K: the mean of score_samples(X, method="importance", n_samples=K),
    for a model whose score_samples names its estimator."""
    import inspect

    score = getattr(model, "score_samples", None)
    takes = score is not None and {"method", "n_samples"} <= set(
        inspect.signature(score).parameters)
    if not takes:
        raise InvalidParameterError(
            f"--iwae applies to models whose log-likelihood is estimated by sampling (e.g. "
            f"vae, iwae); {type(model).__name__} has no importance-sampling estimator: drop "
            f"--iwae.")
    value = float(np.mean(score(X, method="importance", n_samples=k)))
    return ("mean_log_likelihood_importance",
            f"mean log-likelihood (importance sampling, k={k})", value)


def run_evaluate(args) -> int:
    if args.data is not None:  # a store the model streams is scored chunk by chunk
        model, spec = load_model(args.model_file)
        if scale.evaluates_in_chunks(spec, model, args):
            if args.factors is not None:
                raise InvalidParameterError("--factors is read by --disentanglement; add it.")
            _print_rows(options.describe(spec, model) + scale.stored_metrics(model, args.data),
                        args.json)
            return 0
    model, spec, data, X = load_with_data(args)[:4]
    extra = [] if args.iwae is None else [_importance_row(model, X, args.iwae)]
    if args.disentanglement:
        from .disentanglement import disentanglement_rows

        extra += disentanglement_rows(model, data, X, args.factors)
    elif args.factors is not None:
        raise InvalidParameterError("--factors is read by --disentanglement; add it.")
    rows = (options.describe(spec, model) + [("data", "data", data.describe())]
            + _metrics(spec, model, data, X) + extra)
    _print_rows(rows, args.json)
    return 0


def _print_rows(rows, as_json: bool) -> None:
    """evaluate's rows as a table, or (--json) as one JSON object at full precision."""
    if as_json:
        print(json.dumps(_jsonable({key: value for key, _, value in rows})))
    else:
        print(text_table([(label, value) for _, label, value in rows]))


def run_report(args) -> int:
    model, spec, data, X = load_with_data(args)[:4]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = options.describe(spec, model) + _metrics(spec, model, data, X)
    rows += options.convergence(model, 0.0)[:2]
    job = FigureJob(model, data, out)
    with matched_by_name():
        figures = spec.figures(job)
    report = Report(f"{spec.class_name} from {Path(args.model_file).name} on {data.name}")
    intro = f"The model saved in `{args.model_file}`, evaluated on {data.describe()}."
    for section in _page_sections(spec, model, job, figures,
                                  [[{label: value for _, label, value in rows}]], intro):
        report.add(section)
    path = report.write(out)
    print(f"wrote {path} and {len(figures)} figures")
    return 0


def run_demo(args) -> int:
    from .demo import Progress, run_demo

    path = run_demo(args.out, quick=args.quick, progress=Progress(enabled=not args.quiet))
    print(f"wrote {path}")
    return 0


COMMANDS = {"fit": run_fit, "evaluate": run_evaluate, "report": run_report, "demo": run_demo,
            **USES}
