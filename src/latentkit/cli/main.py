"""The `latentkit` command: fit, evaluate, sample, impute, predict, transform, forecast,
report, demo.

The command line knows no model family by name: it asks `latentkit.registry` for the specs
the families registered (their names, data preparation, options, figures, demo sections).

User mistakes (a missing file, a bad option value, data of the wrong shape, a corrupt model
file: a `latentkit.exceptions.UserError`, an OSError about a path, an unfitted model) print
one line `latentkit: error: ...` to stderr and exit with status 2. Anything else is a bug in
latentkit: one line `latentkit: internal error: ...` and exit status 1. `--debug` (or
LATENTKIT_DEBUG=1) prints the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
import warnings

from latentkit.exceptions import UserError
from latentkit.registry import registered_specs

from .commands import COMMANDS
from .data import BUNDLED
from .options import option_names, split_model_options

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
_WIDTH = 88

_DATA_HELP = (
    "DATA is a .csv or .tsv file, a .parquet file, a .npy or .npz file (the first array, or "
    "--key NAME), a .zarr store (one 2-D array), or a bundled dataset: "
    f"{', '.join(BUNDLED)}. Every row is kept in order: empty cells, NA, NaN and blank rows "
    "are missing values. The first row of a CSV is a header when a cell is not a number (or "
    "it reads 0..D-1, pandas' names; --no-header to read it as data). An unnamed first "
    "column of row labels (DataFrame.to_csv's index) is kept as the row index, not a "
    "feature; --index-col NAME or --time-col NAME (dates) choose one, --columns and --drop "
    "choose the features. mnist and binarized_mnist read 10,000 random training images "
    "(--max-rows N to change). Bundled data is adapted to the model's domain by its family "
    "(e.g. binarized for a model of binary data). Files are used as they are."
)
_STREAM_HELP = (
    "A .zarr, .parquet or .npy DATA file is not read into memory when the model streams "
    "(EM models of a table): `fit` reads it chunk by chunk, sums the log-likelihood, BIC "
    "and AIC chunk by chunk, and draws its figures from at most 10,000 rows (a seeded "
    "random sample of a larger file). --columns, --drop, --key and --max-rows read it in "
    "memory instead. --criterion heldout needs the rows in memory."
)


def _fill(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, _WIDTH, break_on_hyphens=False) for p in paragraphs)


def _models_help(with_options: bool = False) -> str:
    lines = []
    for spec in registered_specs().values():
        text = (f"{spec.name:6} {spec.class_name}: {spec.description}; default data: "
                f"{spec.default_data_note}.")
        if with_options:
            text += " Options: " + ", ".join(option_names(spec))
        lines.append(textwrap.fill(text, _WIDTH, initial_indent="  ", break_on_hyphens=False,
                                   subsequent_indent=" " * 9))
    return "models:\n" + "\n".join(lines)


def _add_family_options(fit: argparse.ArgumentParser) -> list:
    """[(spec name, action)] of the flags each registered spec adds to `fit`."""
    added = []
    for spec in registered_specs().values():
        if spec.cli_options is not None:
            group = fit.add_argument_group(f"{spec.name} options")
            added += [(spec.name, action) for action in spec.cli_options(group)]
    return added


def _n_components(text: str):
    """-k: a size, 'auto' (1..10, or 1..--k-max) or a range 'A:B' of sizes to choose from."""
    if text == "auto":
        return "auto"
    expected = "expected a positive integer, 'auto' or a range such as 2:20"
    try:
        values = [int(part) for part in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{expected}; got {text!r}") from None
    if len(values) > 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{expected}; got {text!r}")
    if len(values) == 1:
        return values[0]
    low, high = values
    if high <= low:
        raise argparse.ArgumentTypeError(f"a range A:B needs A < B; got {text!r}")
    return range(low, high + 1)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {value}")
    return value


def _column_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected column names separated by commas; got "
                                         f"{text!r}")
    return names


def _add_data_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        parser.add_argument("--key", metavar="NAME",
                            help="the array to read from a .npz DATA file"),
        parser.add_argument("--max-rows", type=_positive_int, metavar="N",
                            help="use only the first N rows of DATA (N random images for mnist)"),
        parser.add_argument("--columns", type=_column_names, metavar="A,B,...",
                            help="use only these columns of DATA, in this order"),
        parser.add_argument("--drop", type=_column_names, default=(), metavar="A,B,...",
                            help="leave these columns of DATA out (e.g. text or ids)"),
        parser.add_argument("--index-col", metavar="NAME",
                            help="a column of row labels: kept as the row index and written "
                            "back with the outputs, not used as a feature"),
        parser.add_argument("--time-col", metavar="NAME",
                            help="a column of dates (or years): the time index of a series, "
                            "not used as a feature"),
        parser.add_argument("--no-header", action="store_true",
                            help="the first row of a CSV/TSV DATA file is data, not names"),
    ]


def _add_scale_options(fit: argparse.ArgumentParser) -> list[argparse.Action]:
    """--dask SPEC and --dask-chunk-rows N: where `fit` runs its E-steps."""
    group = fit.add_argument_group("scaling out")
    return [
        group.add_argument("--dask", metavar="SPEC",
                           help="fit on a Dask cluster: 'local:N' starts N worker processes "
                           "here, 'tcp://HOST:8786' connects to a running scheduler. DATA is "
                           "read as a Dask array (a .zarr, .parquet or .npy file where the "
                           "workers read it; another file is read here and sent); the E-steps "
                           "and the scoring run on the workers, with the same results as a "
                           "fit in memory. EM models of a table only; needs "
                           'pip install "latentkit[scale]"'),
        group.add_argument("--dask-chunk-rows", type=_positive_int, metavar="N",
                           help="rows per Dask block (default: about 4 blocks per worker, "
                           "none over 128 MB)"),
    ]


def _examples() -> str:
    names = list(registered_specs())
    first = names[0] if names else "MODEL"
    return (f"\n\nexamples:\n  latentkit fit {first}\n"
            f"  latentkit fit {first} DATA.csv -k auto --criterion aic --out run/\n"
            f"  latentkit fit {first} DATA.csv -k 4 --n-init 5 --random-state 0 --out run/\n"
            f"  latentkit fit {first} DATA.zarr -k 4 --dask local:2\n"
            f"  latentkit --debug fit {first} DATA.npz --key X")


def _add_fit(sub, formatter) -> tuple[frozenset, list]:
    """The `fit` subcommand; (the flags fit keeps, [(spec name, dest, flag)] of the flags
    families added)."""
    fit = sub.add_parser(
        "fit", formatter_class=formatter, help="fit a model to data; save it, a summary and "
        "figures",
        description=_fill(
            "Fit MODEL to DATA (or to the model's embedded default dataset), print a summary "
            "table, and write DIR/model.npz, DIR/summary.json, figures and DIR/index.html.",
            "Any other --some-option VALUE sets the model's constructor parameter "
            "some_option; VALUE is read as an int, float, true/false, none, a .npy file (an "
            "array), else a string. Examples: --n-init 5, --tol 1e-4, --random-state 0.",
            _DATA_HELP, _STREAM_HELP),
        epilog=_models_help(with_options=True) + _examples())
    fit.add_argument("model", metavar="MODEL", help=f"one of {', '.join(registered_specs())}")
    fit.add_argument("data", metavar="DATA", nargs="?",
                     help="a data file or bundled dataset (default: the model's own)")
    fit_actions = [
        fit.add_argument("-k", "--n-components", type=_n_components, metavar="K",
                         help="the model's size (its number of components, topics, ...), "
                         "'auto' to choose it over 1..10 by --criterion (the default of "
                         "most models), or a range A:B to choose it from (e.g. -k 1:30)"),
        fit.add_argument("--k-max", type=_positive_int, metavar="N",
                         help="-k auto tries 1..N (default 10); it warns when the best K is "
                         "at the edge of the range"),
        fit.add_argument("--criterion", choices=("bic", "aic", "heldout"), default="bic",
                         help="how -k auto chooses K (default: bic)"),
        fit.add_argument("-o", "--out", metavar="DIR",
                         help="output folder (default: ./latentkit-MODEL)"),
        fit.add_argument("-q", "--quiet", action="store_true",
                         help="no progress bars or summary table"),
        *_add_data_options(fit),
        *_add_scale_options(fit),
    ]
    family = _add_family_options(fit)
    fit_actions += [action for _, action in family]
    # `fit` hands every other --option to the model: these are the ones it keeps itself
    flags = frozenset({"-h", "--help"}.union(*(a.option_strings for a in fit_actions)))
    return flags, [(name, action.dest, action.option_strings[0]) for name, action in family]


def _add_evaluate_and_sample_options(evaluate, sample) -> None:
    """evaluate's --json, --iwae, --disentanglement and --factors; sample's -n,
    --random-state and --with-components."""
    evaluate.add_argument("--json", action="store_true",
                          help="print the figures as one JSON object, at full precision")
    evaluate.add_argument("--iwae", type=_positive_int, metavar="K",
                          help="add the mean log-likelihood estimated by importance sampling "
                          "with K samples per row (models with score_samples(method=...), "
                          "e.g. vae); e.g. --iwae 5000")
    evaluate.add_argument("--disentanglement", action="store_true",
                          help="add MIG, SAP, DCI and the FactorVAE score of the model's "
                          "representation against DATA's known factors of variation "
                          "(the bundled sprites carry theirs; else --factors FILE)")
    evaluate.add_argument("--factors", metavar="FILE",
                          help="with --disentanglement: the factors of each row of DATA "
                          "(a .csv/.npy/... table of integer class indices, one row per row)")
    sample.add_argument("-n", "--n-samples", type=_positive_int, required=True, metavar="N")
    sample.add_argument("--random-state", type=int, metavar="SEED", help="seed for the draws")
    sample.add_argument("--with-components", action="store_true",
                        help="add a last column `component` with each row's latent z")


def _add_model_file_commands(sub, formatter) -> None:
    """evaluate, sample, impute and report: commands on a saved model."""
    evaluate = sub.add_parser(
        "evaluate", formatter_class=formatter, help="score a saved model on data",
        description=_fill("Print the mean log-likelihood, BIC, AIC and number of rows of DATA "
                          "(default: the bundled dataset a folder written by `fit` was fitted "
                          "on, else the model's default dataset) under the model saved in "
                          "MODEL_FILE (by `latentkit fit` or model.save; a folder written by "
                          "`fit` stands for its model.npz). A model fitted by variational "
                          "inference prints its bounds instead; --iwae K adds its "
                          "importance-sampling estimate of log p(x) with K samples; "
                          "--disentanglement the metrics of its representation against "
                          "DATA's factors of variation.",
                          _DATA_HELP))
    sample = sub.add_parser(
        "sample", formatter_class=formatter, help="draw samples from a saved model",
        description=_fill("Draw N rows x ~ p(x) from a saved model and write them as .csv or "
                          ".tsv (with a header x1..xD), .parquet, .npy or .npz, by the file "
                          "name's suffix, or as an image grid (.png) for a model fitted on "
                          "images. Without --out, a model fitted on images writes "
                          "samples.png beside MODEL_FILE (in the folder `fit` wrote)."))
    impute = sub.add_parser(
        "impute", formatter_class=formatter, help="fill missing values with a saved model",
        description=_fill("Replace every missing value (empty cell, NA, NaN) of DATA by its "
                          "conditional expectation E[x_missing | x_observed] under the saved "
                          "model, and write the completed table, row for row in DATA's order "
                          "(.csv, .tsv, .parquet and .npz keep DATA's column names and row "
                          "index; .npy holds the values only).", _DATA_HELP))
    report = sub.add_parser(
        "report", formatter_class=formatter, help="figures and an HTML page for a saved model",
        description=_fill("Write the figures of a saved model on DATA and DIR/index.html with "
                          "its metrics and hyper-parameters.", _DATA_HELP))
    predict, transform, forecast = _add_use_commands(sub, formatter)
    for command in (evaluate, sample, impute, report, predict, transform, forecast):
        command.add_argument("model_file", metavar="MODEL_FILE",
                             help="a saved model, or a folder written by `latentkit fit`")
    evaluate.add_argument("data", metavar="DATA", nargs="?",
                          help="a data file or bundled dataset (default: the bundled "
                          "dataset a folder written by fit was fitted on, else the model's "
                          "default dataset)")
    _add_data_options(evaluate)
    for command in (impute, report, predict, transform, forecast):
        command.add_argument("data", metavar="DATA")
        _add_data_options(command)
    _add_evaluate_and_sample_options(evaluate, sample)
    for command in (impute, predict, transform, forecast):
        command.add_argument("-o", "--out", required=True, metavar="FILE",
                             help="a .csv, .tsv, .parquet, .npy or .npz")
    sample.add_argument("-o", "--out", metavar="FILE",
                        help="a .csv, .tsv, .parquet, .npy or .npz, or a .png image grid "
                        "(default for a model fitted on images: samples.png beside "
                        "MODEL_FILE; required otherwise)")
    forecast.add_argument("--steps", type=_positive_int, required=True, metavar="N",
                          help="how many steps past the end of DATA to forecast")
    forecast.add_argument("--level", type=float, default=0.95, metavar="P",
                          help="the predictive intervals' coverage (default 0.95)")
    report.add_argument("-o", "--out", required=True, metavar="DIR")


def _add_use_commands(sub, formatter):
    """predict, transform and forecast: per-row uses of a saved model."""
    rows = ("The table has DATA's row index (or row numbers) and a header naming every "
            "column.")
    predict = sub.add_parser(
        "predict", formatter_class=formatter, help="labels and probabilities per row",
        description=_fill("Write each row's prediction under the saved model: for a "
                          "mixture the most probable component (`label`) and p(z = k | x) "
                          "(`prob_k`); for a Bayesian network the most probable joint "
                          "state of the unobserved variables.", rows, _DATA_HELP))
    transform = sub.add_parser(
        "transform", formatter_class=formatter, help="latent representation per row",
        description=_fill("Write the posterior mean E[z | x] of each row (scores of PCA, "
                          "PPCA, FA; sources of ICA; responsibilities of a mixture; "
                          "smoothed states of a linear dynamical system).", rows, _DATA_HELP))
    forecast = sub.add_parser(
        "forecast", formatter_class=formatter, help="forecast a series past its end",
        description=_fill("Write p(x_{T+k} | x_{1:T}) for k = 1..N under a saved time-series "
                          "model: the mean and the central --level predictive interval of "
                          "each column, indexed by the dates (or numbers) that continue "
                          "DATA's index.", _DATA_HELP))
    return predict, transform, forecast


def build_parser() -> argparse.ArgumentParser:
    from latentkit import __version__

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="latentkit", formatter_class=formatter,
        description="Fit, evaluate and use latent variable models from the command line.",
        epilog=_models_help() + "\n\nRun `latentkit COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"latentkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, print the "
                        "traceback (also LATENTKIT_DEBUG=1); accepted anywhere on the line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.fit_flags, parser.family_flags = _add_fit(sub, formatter)
    _add_model_file_commands(sub, formatter)
    demo = sub.add_parser(
        "demo", formatter_class=formatter, help="fit every family on real data; HTML report",
        description=_fill("Fit each model family to real bundled data and write "
                          "DIR/index.html with one section per family: figures and metrics "
                          "tables. Takes a few minutes on a laptop; --quick runs on small "
                          "subsets in seconds."))
    demo.add_argument("-o", "--out", default="demo-report", metavar="DIR",
                      help="output folder (default: demo-report)")
    demo.add_argument("--quick", action="store_true", help="small data: a smoke test")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return parser


# -- running ------------------------------------------------------------------------------


def _one_line(error) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is the user's mistake (exit 2) rather than a bug (exit 1)."""
    from sklearn.exceptions import NotFittedError

    return isinstance(error, UserError | FileNotFoundError | IsADirectoryError
                      | PermissionError | NotFittedError)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"latentkit: warning: {category.__name__}: {_one_line(message)}", file=sys.stderr)


def _report(error: BaseException, debug: bool) -> int:
    """Print `error` as one line (and the traceback when debugging); the exit status."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    if is_user_error(error):
        print(f"latentkit: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"latentkit: internal error: {type(error).__name__}: {_one_line(error)} (this is a "
          f"bug in latentkit; rerun with --debug for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("LATENTKIT_DEBUG"))
    argv = [word for word in argv if word != "--debug"]
    try:
        parser = build_parser()
        model_options: dict[str, str] = {}
        if argv and argv[0] == "fit":
            rest, model_options = split_model_options(argv[1:], parser.fit_flags)
            argv = ["fit", *rest]
        args = parser.parse_args(argv)
        args.model_options = model_options  # fit's --options for the model's constructor
        args.family_flags = parser.family_flags
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return int(COMMANDS[args.command](args) or 0)
    except KeyboardInterrupt:
        print("latentkit: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 -- every error becomes one line and a status
        return _report(error, debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
