"""`fit`'s model options (`--some-option VALUE` sets the constructor parameter some_option)
and the rows of the summary table every command prints."""

from __future__ import annotations

import os

import numpy as np

from latentkit.exceptions import InvalidInputError, InvalidParameterError


def split_model_options(tokens: list[str], known: set[str]):
    """(tokens for argparse, {option name: raw value}) from the words after `fit`: every
    `--name VALUE` or `--name=VALUE` whose --name argparse does not know is a model option."""
    rest, options = [], {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            rest.extend(tokens[index:])
            break
        name, equals, value = token[2:].partition("=")
        if token.startswith("--") and name and f"--{name}" not in known:
            if not equals:
                if index + 1 >= len(tokens):
                    raise InvalidParameterError(f"option --{name} needs a value")
                value = tokens[index + 1]
                index += 1
            options[name] = value
        else:
            rest.append(token)
        index += 1
    return rest, options


def coerce(text: str):
    """A command-line value as int, float, bool, None, an array (.npy file), else str."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if lowered.endswith(".npy"):
        if not os.path.isfile(text):
            raise FileNotFoundError(f"no such file: {text}")
        return np.load(text, allow_pickle=False)
    return text


def option_names(spec) -> list[str]:
    """The --options of a spec's constructor parameters."""
    return ["--" + name.replace("_", "-") for name in spec.options()]


def model_kwargs(spec, raw: dict[str, str]) -> dict:
    """Constructor keyword arguments from the raw --option values; unknown names are an
    error that lists the valid options."""
    valid = spec.options()
    kwargs = {}
    for name, text in raw.items():
        param = name.replace("-", "_")
        if param not in valid:
            size = "-k/--n-components, --criterion, " if spec.size_param else ""
            raise InvalidParameterError(
                f"unknown option --{name} for {spec.name} ({spec.class_name}); valid "
                f"options: {size}--out, --key, --max-rows, {', '.join(option_names(spec))}")
        kwargs[param] = coerce(text)
    return kwargs


# -- summary rows: (key, label, value) ----------------------------------------------------


def metrics(model, data, X) -> list[tuple[str, str, object]]:
    """The fit of `model` on `data` (given to the model as X: data.X or its DataFrame):
    mean log-likelihood, BIC, AIC, and the adjusted Rand index against the labels when the
    data has them and the model clusters."""
    rows = [("rows", "rows", int(X.shape[0])),
            ("mean_log_likelihood", "mean log-likelihood", float(model.score(X))),
            ("bic", "BIC", float(model.bic(X))),
            ("aic", "AIC", float(model.aic(X)))]
    _check_finite_metrics(model, rows[1:])
    if data.target is not None and hasattr(model, "predict"):
        from sklearn.metrics import adjusted_rand_score

        ari = adjusted_rand_score(data.target, model.predict(X))
        rows.append(("adjusted_rand_index", "adjusted Rand index vs labels", float(ari)))
    return rows


def _check_finite_metrics(model, rows) -> None:
    """A non-finite log-likelihood, BIC or AIC is an error (exit status 2), never a row."""
    bad = [f"{label} {value}" for _, label, value in rows if not np.isfinite(value)]
    if bad:
        raise InvalidInputError(
            f"{type(model).__name__} gives no finite fit to DATA ({', '.join(bad)}): some "
            "rows have zero (or undefined) probability under the model. Check that DATA has "
            "the units, scale and columns the model was fitted on, and see which rows with "
            "the model's score_samples.")


def describe(spec, model) -> list[tuple[str, str, object]]:
    """The model's name, its size and the spec's summary parameters."""
    rows = [("model", "model", f"{spec.name} ({type(model).__name__})")]
    if spec.size_param is not None:
        rows.append((spec.size_param, spec.size_label, getattr(model, spec.size_param)))
    for name in spec.summary_params:
        rows.append((name, name.replace("_", " "), getattr(model, name)))
    return rows


def convergence(model, seconds: float) -> list[tuple[str, str, object]]:
    return [("n_iter", "iterations", int(getattr(model, "n_iter_", 0))),
            ("converged", "converged", bool(getattr(model, "converged_", False))),
            ("seconds", "time (s)", round(float(seconds), 3))]
