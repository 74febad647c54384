"""The commands that use a saved model row by row: sample, impute, predict, transform and
forecast. Each writes one table (.csv, .tsv, .parquet, .npy or .npz) whose header has as
many names as each row has values, and, for DATA's rows, DATA's row index; `sample` of a
model fitted on images (rows of shape (height, width): its `input_shape_`) may write an
image grid (.png) instead, its default output.

The command line knows no family: a model predicts when it has `predict` (the spec's
`predict_table` says what that means for it), transforms when it has `transform`, and
forecasts when it has `forecast`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from latentkit.exceptions import InvalidParameterError

from .columns import as_table
from .data import write_table
from .loading import load_model, load_with_data


def _write(path, values, columns, *, index=None, header=True, categories=None):
    """write_table with names for every column, dropping categories of absent columns."""
    categories = {name: states for name, states in (categories or {}).items()
                  if name in columns}
    extra = {"categories": categories} if categories else {}
    return write_table(path, values, list(columns), index=index, header=header, **extra)


def _needs(model, method: str, instead: str) -> None:
    if not callable(getattr(model, method, None)):
        raise InvalidParameterError(f"{type(model).__name__} has no {method}; {instead}")


def _with_latents(X, columns, z):
    """X with the latent draws appended: `component` for a label per row, z1..zL for a
    vector per row (none for a model without latent variables, with a note)."""
    if z.ndim == 1:
        return np.column_stack([X, z]), [*columns, "component"]
    z = z.reshape(len(z), -1)
    if z.shape[1] == 0:
        print("latentkit: note: the model has no latent variables; no columns added")
    return np.column_stack([X, z]), [*columns, *(f"z{j + 1}" for j in range(z.shape[1]))]


def image_shape(model) -> tuple[int, int] | None:
    """(height, width) when the model was fitted on images: rows of 2 or more axes
    (`input_shape_`, e.g. (28, 28) or (1, 28, 28)) with one channel; else None."""
    shape = tuple(int(s) for s in (getattr(model, "input_shape_", None) or ()))
    if len(shape) >= 2 and int(np.prod(shape[:-2])) == 1:
        return shape[-2], shape[-1]
    return None


def _sample_path(args, shape) -> Path:
    """sample's output: --out, else (images only) samples.png beside MODEL_FILE."""
    if args.out is not None:
        path = Path(args.out)
        if path.suffix.lower() == ".png" and shape is None:
            raise InvalidParameterError(
                f"{path.name}: an image grid needs a model fitted on images (rows of shape "
                f"(height, width)); write a table instead (.csv, .tsv, .parquet, .npy, .npz).")
        return path
    if shape is None:
        raise InvalidParameterError(
            "sample needs --out FILE (.csv, .tsv, .parquet, .npy or .npz): only a model "
            "fitted on images has a default output (an image grid, samples.png).")
    folder = Path(args.model_file)
    if folder.is_dir():
        return folder / "samples.png"
    stem = folder.stem
    return folder.with_name("samples.png" if stem == "model" else f"{stem}-samples.png")


def _write_grid(path: Path, X: np.ndarray, shape) -> Path:
    """The draws X : (n, height * width) as an image grid PNG at `path`."""
    from latentkit import plot

    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    grid = plot.plot_image_grid(X, shape, suptitle=f"{len(X)} samples x ~ p(x)")
    return plot.save_figure(grid, path)


def run_sample(args) -> int:
    model, spec = load_model(args.model_file)
    shape = image_shape(model)
    out = _sample_path(args, shape)
    if out.suffix.lower() == ".png" and args.with_components:
        raise InvalidParameterError("--with-components adds latent columns to a table; it "
                                    "does not apply to a .png image grid.")
    X, z = model.sample(args.n_samples, random_state=args.random_state)
    if out.suffix.lower() == ".png":
        path = _write_grid(out, X, shape)
        print(f"wrote an image grid of {len(X)} samples to {path}")
        return 0
    X, columns, categories = as_table(X)
    columns = columns or spec.feature_names(model) or [f"x{j + 1}" for j in range(X.shape[1])]
    if args.with_components:
        X, columns = _with_latents(X, columns, np.asarray(z, dtype=np.float64))
    path = _write(out, X, columns, categories=categories)
    print(f"wrote {len(X)} samples to {path}")
    return 0


def run_impute(args) -> int:
    loaded = load_with_data(args)
    _needs(loaded.model, "impute", "it cannot fill missing values.")
    data = loaded.data
    missing = np.isnan(data.X)
    completed, columns, categories = as_table(loaded.model.impute(loaded.X))
    columns = columns or data.column_names
    if loaded.file_columns is not None and loaded.file_columns != columns:
        order = [columns.index(name) for name in loaded.file_columns]  # the file's order
        completed, columns = completed[:, order], list(loaded.file_columns)
    path = _write(args.out, completed, columns, index=data.index, header=loaded.header,
                  categories={**(data.categories or {}), **categories})
    print(f"imputed {int(missing.sum())} missing values in {int(missing.any(axis=1).sum())} "
          f"of {len(data.X)} rows; wrote {path}")
    return 0


def run_predict(args) -> int:
    loaded = load_with_data(args)
    _needs(loaded.model, "predict", "use `latentkit transform` for its latent "
           "representation.")
    table = loaded.spec.predict_table(loaded.model, loaded.X)
    values, columns, categories = as_table(table)
    path = _write(args.out, values, columns, index=loaded.data.index, categories=categories)
    print(f"wrote predictions for {len(values)} rows ({', '.join(columns)}) to {path}")
    return 0


def _transform_names(model, width: int) -> list[str]:
    try:
        names = [str(name) for name in model.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        names = []
    return names if len(names) == width else [f"z{j + 1}" for j in range(width)]


def run_transform(args) -> int:
    loaded = load_with_data(args)
    _needs(loaded.model, "transform", "it has no latent representation to compute.")
    Z = loaded.model.transform(loaded.X)
    if isinstance(Z, pd.DataFrame):
        Z = Z.to_numpy(dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z.reshape(len(Z), -1)
    columns = _transform_names(loaded.model, Z.shape[1])
    path = _write(args.out, Z, columns, index=loaded.data.index)
    print(f"wrote {Z.shape[1]} columns ({', '.join(columns[:6])}"
          f"{', ...' if len(columns) > 6 else ''}) for {len(Z)} rows to {path}")
    return 0


def future_index(index: pd.Index | None, n_rows: int, n_steps: int) -> pd.Index:
    """The labels of the n_steps rows after a series of n_rows: dates at the index's own
    frequency, numbers (years) at its constant step, else the positions n_rows, ..."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        with warnings.catch_warnings():  # pandas 3 announces a change of return type
            warnings.simplefilter("ignore")
            freq = index.freq or pd.infer_freq(index)
        if freq is not None:
            return pd.date_range(index[-1], periods=n_steps + 1, freq=freq)[1:].rename(
                index.name)
    if index is not None and len(index) >= 2 and pd.api.types.is_numeric_dtype(index.dtype):
        steps = np.diff(index.to_numpy(dtype=np.float64))
        if np.all(steps == steps[0]) and steps[0] != 0:
            future = index[-1] + steps[0] * np.arange(1, n_steps + 1)
            return pd.Index(future.astype(index.dtype), name=index.name)
    return pd.RangeIndex(n_rows, n_rows + n_steps, name="step")


def _z_value(level: float) -> float:
    """The standard normal quantile of (1 + level) / 2: the half-width of a central
    `level` interval in standard deviations."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2))


def run_forecast(args) -> int:
    loaded = load_with_data(args)
    _needs(loaded.model, "forecast", "only a model of time series forecasts.")
    if not 0 < args.level < 1:
        raise InvalidParameterError(f"--level must be in (0, 1), e.g. 0.95; got {args.level}.")
    forecast = loaded.model.forecast(loaded.X, n_steps=args.steps)
    mean = np.asarray(forecast.mean, dtype=np.float64)
    sd = np.sqrt(np.clip(np.diagonal(np.asarray(forecast.cov), axis1=1, axis2=2), 0, None))
    half = _z_value(args.level) * sd
    names, percent = loaded.data.column_names, f"{100 * args.level:g}"
    columns = [f"{name}{suffix}" for name in names
               for suffix in ("", f"_lower{percent}", f"_upper{percent}")]
    values = np.stack([mean, mean - half, mean + half], axis=2).reshape(len(mean), -1)
    index = future_index(loaded.data.index, len(loaded.data.X), args.steps)
    path = _write(args.out, values, columns, index=index)
    print(f"wrote a {args.steps}-step forecast with {percent}% predictive intervals to "
          f"{path}")
    return 0


USES = {"sample": run_sample, "impute": run_impute, "predict": run_predict,
        "transform": run_transform, "forecast": run_forecast}
