"""Input validation, done once at the boundary (STYLE 7).

Every public entry point turns its input into a 2-D float array here; kernels never check.
Messages name the argument, what was expected and what was given, and say how to fix it.
"""

from __future__ import annotations

import numbers
from collections.abc import Container

import numpy as np
from sklearn.utils.validation import validate_data

from .exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterError

FLOAT_DTYPES = (np.float64, np.float32)


def check_X(
    estimator,
    X,
    *,
    reset: bool,
    allow_nan: bool,
    dtype=FLOAT_DTYPES,
    name: str = "X",
) -> np.ndarray:
    """Validate a data matrix for `estimator`.

    X : (n_samples, n_features), array-like. float32 and float64 are kept; other numeric
    dtypes become float64. `reset=True` (fit) records `n_features_in_`; `reset=False`
    (predict time) checks the number of features against it. inf is always an error; NaN
    means "missing" and is accepted only when `allow_nan` (the model marginalizes it), and
    so is a masked entry of a numpy masked array (see `unmask`).
    """
    X = unmask(X, allow_nan=allow_nan, name=name, model=type(estimator).__name__)
    try:
        X = validate_data(
            estimator, X, reset=reset, dtype=dtype, ensure_all_finite=False,
            ensure_min_samples=1)
    except TypeError as exc:  # scikit-learn's messages, marked as the user's mistake
        raise InvalidInputTypeError(str(exc)) from exc
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc
    check_finite(X, allow_nan=allow_nan, name=name, model=type(estimator).__name__)
    return X


def unmask(X, *, allow_nan: bool, name: str = "X", model: str = "model"):
    """A numpy masked array as a plain float array whose masked entries are NaN (missing),
    as pykalman and numpy users mark missing data; anything else is returned as it is.

    `np.asarray` would drop the mask and read the masked entries' placeholder values as
    data, silently. float32 stays float32; other dtypes become float64. A model that
    cannot marginalize missing values (`allow_nan` False) refuses masked entries.
    """
    if not isinstance(X, np.ma.MaskedArray):
        return X
    mask = np.ma.getmaskarray(X)
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    try:
        data = np.array(np.ma.getdata(X), dtype=dtype)
    except (TypeError, ValueError):  # text states: the masked entries become None
        data = np.array(np.ma.getdata(X), dtype=object)
        data[mask] = None
        return data
    if mask.any() and not allow_nan:
        raise InvalidInputError(
            f"{name} is a masked array with {int(mask.sum())} masked entries, and {model} "
            "cannot marginalize missing values. Impute them first (for example with "
            "GaussianMixture.impute) or drop the incomplete rows.")
    data[mask] = np.nan
    return data


def check_finite(X: np.ndarray, *, allow_nan: bool, name: str = "X", model: str = "model",
                 first_row: int = 0):
    """Raise ValueError naming the first row and column holding inf (or NaN when not allowed).

    X : (n_samples, n_features); `first_row` numbers its rows within a larger stream.
    """
    if X.dtype.kind != "f" or np.isfinite(np.add.reduce(X, axis=None)):
        return  # a finite sum (one cheap pass) rules out inf and NaN
    bad = np.isinf(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InvalidInputError(
            f"{name} contains inf at row {first_row + row}, column {col}; inf is never a "
            "valid value. "
            "Replace it with a finite number, or with NaN to mark the entry as missing."
        )
    if not allow_nan:
        bad = np.isnan(X)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InvalidInputError(
                f"{name} contains NaN at row {first_row + row}, column {col}, and {model} cannot "
                "marginalize missing values. Impute them first (for example with "
                "GaussianMixture.impute) or drop the incomplete rows."
            )


def check_n_samples(n_samples) -> None:
    """The number of draws asked of `sample`: a positive integer (not a bool)."""
    if (isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer)
            or n_samples < 1):
        raise InvalidParameterError(f"n_samples must be a positive integer; got {n_samples!r}.")


def check_n_components(n_components: int, n_samples: int, name: str = "n_components"):
    """K <= N: a mixture cannot have more components than samples to place them on."""
    if n_components > n_samples:
        raise InvalidInputError(
            f"{name}={n_components} must be <= n_samples={n_samples}: there are not enough "
            f"samples to fit {n_components} components. Use fewer components or more data."
        )


# -- hyper-parameter constraints, as data -------------------------------------------------


class Interval:
    """A numeric range constraint: `kind` is int or float; None leaves a side open."""

    def __init__(self, kind, low=None, high=None, *, closed: str = "both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def __contains__(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if not np.isfinite(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (not left and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (not right and value == self.high)):
            return False
        return True

    def __str__(self) -> str:
        kind = "an integer" if self.kind is int else "a number"
        lo = "(" if self.closed in ("neither", "right") else "["
        hi = ")" if self.closed in ("neither", "left") else "]"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"{kind} in {lo}{low}, {high}{hi}"


class Options:
    """One of a fixed set of values (strings, usually)."""

    def __init__(self, *values):
        self.values = values

    def __contains__(self, value) -> bool:
        return isinstance(value, str | type(None) | bool) and value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


class InstanceOf:
    """Any instance of the given types (None allowed by listing type(None))."""

    def __init__(self, *types, description: str):
        self.types, self.description = types, description

    def __contains__(self, value) -> bool:
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.description


def check_params(estimator, constraints: dict[str, list[Container]]):
    """Check every hyper-parameter of `estimator` against its list of allowed constraints.

    The message names the parameter, its allowed values and the given value.
    """
    for name, allowed in constraints.items():
        value = getattr(estimator, name)
        if any(value in constraint for constraint in allowed):
            continue
        options = " or ".join(str(c) for c in allowed)
        raise InvalidParameterError(
            f"{type(estimator).__name__}: parameter {name!r} must be {options}; "
            f"got {value!r}."
        )


def as_generator(random_state) -> np.random.Generator:
    """A numpy Generator from None, an int seed, a Generator or a legacy RandomState."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31 - 1))
    return np.random.default_rng(random_state)


RANDOM_STATE = [
    Interval(int, 0, None),
    InstanceOf(np.random.Generator, np.random.RandomState, type(None), description="None"),
]
