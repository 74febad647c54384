"""The `latentkit` command: fit, evaluate, sample, impute, report, demo.

User mistakes (a missing file, a bad option value, data of the wrong shape, a corrupt model
file) print one line `latentkit: error: ...` to stderr and exit with status 2, never a
traceback; set LATENTKIT_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

from . import models
from .data import BUNDLED, Data, load_data, write_table
from .models import REGISTRY, FigureJob, model_kwargs, split_model_options
from .report import Report, Section, text_table

EXIT_USER_ERROR = 2
_WIDTH = 88

_DATA_HELP = (
    "DATA is a .csv file (a header row is detected; empty cells and NA are missing), a .npy "
    "or .npz file (the first array, or --key NAME), a .parquet file, or a bundled dataset: "
    f"{', '.join(BUNDLED)}. mnist and binarized_mnist read 10,000 random training images "
    "(--max-rows N to change). Bundled data is adapted to the model: for bmm, digits and "
    "mnist are binarized at half their grey-level range; for cmm, image data becomes 4 grey "
    "levels and continuous columns (faithful, iris, wine) are cut into tertiles (0/1/2). "
    "Files are used as they are."
)


def _fill(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, _WIDTH, break_on_hyphens=False) for p in paragraphs)


def _models_help(with_options: bool = False) -> str:
    lines = []
    for spec in REGISTRY.values():
        text = (f"{spec.name:6} {spec.class_name}: {spec.description}; default data: "
                f"{spec.default_data_note}.")
        if with_options:
            text += " Options: " + ", ".join("--" + o.replace("_", "-") for o in spec.options())
        lines.append(textwrap.fill(text, _WIDTH, initial_indent="  ", break_on_hyphens=False,
                                   subsequent_indent=" " * 9))
    return "models:\n" + "\n".join(lines)


def _n_components(text: str):
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto'; got "
                                         f"{text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto'; got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def _add_data_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        parser.add_argument("--key", metavar="NAME",
                            help="the array to read from a .npz DATA file"),
        parser.add_argument("--max-rows", type=_positive_int, metavar="N",
                            help="use only the first N rows of DATA (N random images for mnist)"),
    ]


def build_parser() -> argparse.ArgumentParser:
    from latentkit import __version__

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="latentkit", formatter_class=formatter,
        description="Fit, evaluate and use latent variable models from the command line.",
        epilog=_models_help() + "\n\nRun `latentkit COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"latentkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    fit = sub.add_parser(
        "fit", formatter_class=formatter, help="fit a model to data; save it, a summary and "
        "figures",
        description=_fill(
            "Fit MODEL to DATA (or to the model's embedded default dataset), print a summary "
            "table, and write DIR/model.npz, DIR/summary.json, figures and DIR/index.html.",
            "Any other --some-option VALUE sets the model's constructor parameter "
            "some_option; VALUE is read as an int, float, true/false, none, a .npy file (an "
            "array), else a string. Examples: --covariance-type diag, --n-init 5, --tol 1e-4, "
            "--random-state 0.", _DATA_HELP),
        epilog=_models_help(with_options=True) + "\n\nexamples:\n  latentkit fit gmm\n"
        "  latentkit fit gmm faithful -k auto --out run/\n"
        "  latentkit fit gmm data.csv -k 4 --covariance-type diag --out run/\n"
        "  latentkit fit bmm mnist -k 20 --max-rows 5000 --out mnist-run/")
    fit.add_argument("model", metavar="MODEL", help=f"one of {', '.join(REGISTRY)}")
    fit.add_argument("data", metavar="DATA", nargs="?",
                     help="a data file or bundled dataset (default: the model's own)")
    fit_actions = [
        fit.add_argument("-k", "--n-components", type=_n_components, metavar="K",
                         help="number of components, or 'auto' (the default) to choose it "
                         "over 1..10 by --criterion"),
        fit.add_argument("--criterion", choices=("bic", "aic", "heldout"), default="bic",
                         help="how -k auto chooses K (default: bic)"),
        fit.add_argument("-o", "--out", metavar="DIR",
                         help="output folder (default: ./latentkit-MODEL)"),
        fit.add_argument("-q", "--quiet", action="store_true",
                         help="no progress bars or summary table"),
        fit.add_argument("--structure", metavar="NET.bif",
                         help="bayesnet: the network (variables, edges, starting CPTs) as a "
                         "BIF file"),
        *_add_data_options(fit),
    ]
    # `fit` hands every other --option to the model: these are the ones it keeps itself
    parser.fit_flags = frozenset(
        {"-h", "--help"}.union(*(action.option_strings for action in fit_actions)))

    evaluate = sub.add_parser(
        "evaluate", formatter_class=formatter, help="score a saved model on data",
        description=_fill("Print the mean log-likelihood, BIC, AIC and number of rows of DATA "
                          "under the model saved in MODEL_FILE (by `latentkit fit` or "
                          "model.save).", _DATA_HELP))
    evaluate.add_argument("model_file", metavar="MODEL_FILE")
    evaluate.add_argument("data", metavar="DATA")
    _add_data_options(evaluate)

    sample = sub.add_parser(
        "sample", formatter_class=formatter, help="draw samples from a saved model",
        description=_fill("Draw N rows x ~ p(x) from a saved model and write them as .csv "
                          "(with a header x1..xD) or .npy, by the file name's suffix."))
    sample.add_argument("model_file", metavar="MODEL_FILE")
    sample.add_argument("-n", "--n-samples", type=_positive_int, required=True, metavar="N")
    sample.add_argument("-o", "--out", required=True, metavar="FILE", help="a .csv or .npy")
    sample.add_argument("--random-state", type=int, metavar="SEED", help="seed for the draws")
    sample.add_argument("--with-components", action="store_true",
                        help="add a last column `component` with each row's latent z")

    impute = sub.add_parser(
        "impute", formatter_class=formatter, help="fill missing values with a saved model",
        description=_fill("Replace every missing value (empty cell, NA, NaN) of DATA by its "
                          "conditional expectation E[x_missing | x_observed] under the saved "
                          "model, and write the completed table (.csv keeps DATA's column "
                          "names, or .npy).", _DATA_HELP))
    impute.add_argument("model_file", metavar="MODEL_FILE")
    impute.add_argument("data", metavar="DATA")
    impute.add_argument("-o", "--out", required=True, metavar="FILE", help="a .csv or .npy")
    _add_data_options(impute)

    report = sub.add_parser(
        "report", formatter_class=formatter, help="figures and an HTML page for a saved model",
        description=_fill("Write the figures of a saved model on DATA and DIR/index.html with "
                          "its metrics and hyper-parameters.", _DATA_HELP))
    report.add_argument("model_file", metavar="MODEL_FILE")
    report.add_argument("data", metavar="DATA")
    report.add_argument("-o", "--out", required=True, metavar="DIR")
    _add_data_options(report)

    demo = sub.add_parser(
        "demo", formatter_class=formatter, help="fit every family on real data; HTML report",
        description=_fill("Fit each model family to real bundled data (Old Faithful, MNIST "
                          "digits) and write DIR/index.html with figures and metrics tables. "
                          "Takes about a minute on a laptop; --quick runs on small subsets in "
                          "seconds."))
    demo.add_argument("-o", "--out", default="demo-report", metavar="DIR",
                      help="output folder (default: demo-report)")
    demo.add_argument("--quick", action="store_true", help="small data: a smoke test")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return parser


# -- commands -----------------------------------------------------------------------------


def _read(spec, source: str, args) -> Data:
    data = load_data(source, key=args.key, max_rows=args.max_rows)
    return spec.prepare(data) if data.bundled else data


def _load_model(path: str):
    from latentkit.io import load

    models.import_all()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such model file: {path}")
    model = load(path)
    return model, models.spec_for(model)


def _load_with_data(args):
    """(model, spec, data): the saved model, its command-line spec, and DATA read for it
    with the model's number of columns checked."""
    model, spec = _load_model(args.model_file)
    data = _network_columns(model, _read(spec, args.data, args))
    _check_columns(model, data)
    return model, spec, data


def _check_columns(model, data: Data) -> None:
    expected = getattr(model, "n_features_in_", data.X.shape[1])
    if data.X.shape[1] != expected:
        raise ValueError(f"{data.name} has {data.X.shape[1]} columns but the model was fitted "
                         f"on {expected} columns.")


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


def _fit(spec, model, X, args):
    """Fit (choosing K when -k auto); returns (model, selection or None)."""
    if args.n_components is None and spec.k_param is not None:
        args.n_components = spec.default_k
    if args.n_components == "auto":
        from latentkit.metrics.selection import select_n_components

        candidates = list(range(1, min(10, len(X)) + 1))
        selection = select_n_components(model, X, candidates, criterion=args.criterion,
                                        random_state=getattr(model, "random_state", None))
        return selection.best_model, selection
    if args.n_components is not None:
        model.set_params(**{spec.k_param: args.n_components})
    return model.fit(X), None


def _build(spec, kwargs: dict, structure: str | None):
    """The model to fit: from --structure (a BIF file) for models that read one."""
    reads_structure = hasattr(spec.cls, "from_bif")
    if structure is None:
        if reads_structure:
            raise ValueError(f"{spec.name} needs --structure NET.bif: the network's variables, "
                             "edges and starting CPTs.")
        return spec.cls(**kwargs)
    if not reads_structure:
        raise ValueError(f"--structure is for bayesnet; {spec.name} takes no structure file.")
    if not os.path.isfile(structure):
        raise FileNotFoundError(f"no such structure file: {structure}")
    return spec.cls.from_bif(structure, **kwargs)


def _network_columns(model, data: Data) -> Data:
    """DATA's columns put in a network's variable order when its header names them."""
    if not hasattr(model, "observed_variables"):
        return data
    observed = list(model.observed_variables)
    names = data.column_names
    if sorted(names) == sorted(observed) and names != observed:
        order = [names.index(name) for name in observed]
        return data.replace(X=data.X[:, order], columns=observed)
    return data


def run_fit(args) -> int:
    spec = models.get_spec(args.model)
    kwargs = {**dict(spec.defaults), **model_kwargs(spec, args.model_options)}
    if args.n_components is not None and spec.k_param is None:
        raise ValueError(f"{spec.name} has no number of components; drop -k.")
    progress = ("verbose" in spec.options() and "verbose" not in kwargs and not args.quiet
                and sys.stderr.isatty())
    model = _build(spec, kwargs, args.structure)
    if progress:
        model.set_params(verbose=1)
    data = _read(spec, args.data or spec.default_data, args)
    data = _network_columns(model, data)
    out = Path(args.out or f"latentkit-{spec.name}")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model, selection = _fit(spec, model, data.X, args)
    seconds = time.perf_counter() - start
    if progress:
        model.set_params(verbose=kwargs.get("verbose", 0))
    model.save(out / "model.npz")
    rows = (models.describe(spec, model) + [("data", "data", data.describe())]
            + models.metrics(model, data) + models.convergence(model, seconds))
    figures = spec.figures(FigureJob(model, data, out, selection))
    summary = {key: value for key, _, value in rows}
    summary.update(params=model.get_params(deep=False), model_file="model.npz",
                   figures=[path.name for path, _ in figures])
    if selection is not None:
        from latentkit.plot.curves import table_columns

        summary["selection"] = {"criterion": args.criterion,
                                "table": table_columns(selection.table)}
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    report = Report(f"latentkit fit {spec.name}: {data.name}")
    tables = [[{label: value for _, label, value in rows}]]
    if selection is not None:
        tables.append((f"choosing K by {args.criterion}", selection.table))
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
    rows = (models.describe(spec, model) + [("data", "data", data.describe())]
            + models.metrics(model, data))
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
        raise ValueError(f"{type(model).__name__} cannot impute missing values.")
    missing = np.isnan(data.X)
    completed = np.asarray(model.impute(data.X))
    path = write_table(args.out, completed, data.column_names)
    print(f"imputed {int(missing.sum())} missing values in {int(missing.any(axis=1).sum())} "
          f"of {len(data.X)} rows; wrote {path}")
    return 0


def run_report(args) -> int:
    model, spec, data = _load_with_data(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = models.describe(spec, model) + models.metrics(model, data)
    rows += models.convergence(model, 0.0)[:2]
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


# -- running ------------------------------------------------------------------------------


def _one_line(error) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _user_errors() -> tuple[type[BaseException], ...]:
    from latentkit.io import ModelFileError

    return (ValueError, TypeError, OSError, ModelFileError)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"latentkit: warning: {category.__name__}: {_one_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    model_options: dict[str, str] = {}
    try:
        if argv and argv[0] == "fit":
            rest, model_options = split_model_options(argv[1:], parser.fit_flags)
            argv = ["fit", *rest]
    except ValueError as error:
        print(f"latentkit: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    args = parser.parse_args(argv)
    args.model_options = model_options  # fit's --options for the model's constructor
    handler = COMMANDS[args.command]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("latentkit: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        if os.environ.get("LATENTKIT_DEBUG"):
            raise
        print(f"latentkit: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
