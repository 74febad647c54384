"""Input validation, done once at the boundary (STYLE 7).

Every public entry point turns its input into a 2-D float array here; kernels never check.
Messages name the argument, what was expected and what was given, and say how to fix it.
"""

from __future__ import annotations

import math
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
    so is a masked entry of a numpy masked array (see `unmask`). At fit, a column with no
    observed value (NaN in every row) is an error: nothing can be learned about it.

    Scale limit: a value whose magnitude exceeds `SCALE_LIMITS` for its dtype (1e150 for
    float64, 1e15 for float32) is an error, at fit and at predict time: the models work with
    squares and sums of squares of the data, which would overflow (see `check_scale`). A
    model whose input tags declare codes or counts (categorical or positive_only: binary and
    categorical mixtures) never squares its data and checks its own domain instead.
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
    check_finite(X, allow_nan=allow_nan, name=name, model=type(estimator).__name__,
                 scale=_squares_its_data(estimator))
    if reset and allow_nan:
        check_observed_columns(X, name=name, model=type(estimator).__name__,
                               columns=getattr(estimator, "feature_names_in_", None))
    return X


def _squares_its_data(estimator) -> bool:
    """Whether the scale limit applies: not to a model whose input tags say it takes codes
    or counts (its arithmetic takes logs of probabilities, never squares of the data, and
    its own domain check names a stray value more precisely)."""
    try:
        tags = estimator.__sklearn_tags__().input_tags
    except AttributeError:
        return True
    return not (tags.categorical or tags.positive_only)


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
                 first_row: int = 0, scale: bool = True):
    """Raise InvalidInputError naming the first row and column holding inf (or NaN when not
    allowed), or (when `scale`) a value beyond the scale limit (`check_scale`).

    X : (n_samples, n_features); `first_row` numbers its rows within a larger stream.
    """
    if X.dtype.kind != "f" or X.size == 0:
        return
    # one BLAS pass, Σ x²: finite rules out inf and NaN, and <= limit² rules out every |x|
    # beyond the limit; only otherwise do the checks below look for the entry to name
    flat = X.ravel(order="K")
    with np.errstate(over="ignore", invalid="ignore"):
        squares = np.dot(flat, flat)
    limit = scale_limit(X.dtype)
    if np.isfinite(squares) and (not scale or squares <= limit * limit):
        return
    if not np.isfinite(np.add.reduce(X, axis=None)):
        _check_no_inf_or_nan(X, allow_nan=allow_nan, name=name, model=model,
                             first_row=first_row)
    if scale:
        check_scale(X, name=name, model=model, first_row=first_row)


def _check_no_inf_or_nan(X: np.ndarray, *, allow_nan: bool, name: str, model: str,
                         first_row: int):
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


#: The largest magnitude a data value may have, by dtype: sqrt(finfo.max) / 1e4 rounded down
#: to a power of ten, so that a sum of up to 1e8 squares (a scatter matrix over many rows, a
#: squared distance over many columns) stays finite. float64: 1e150; float32: 1e15.
SCALE_LIMITS = {np.dtype(np.float64): 1e150, np.dtype(np.float32): 1e15}


def scale_limit(dtype) -> float:
    """`SCALE_LIMITS` of a float dtype (float64's for any other)."""
    return SCALE_LIMITS.get(np.dtype(dtype), SCALE_LIMITS[np.dtype(np.float64)])


def check_scale(X: np.ndarray, *, name: str = "X", model: str = "model", first_row: int = 0):
    """Raise InvalidInputError naming the first row, column and value whose magnitude
    exceeds `SCALE_LIMITS[X.dtype]` (float32's limit for float32, float64's otherwise).

    Beyond it, squares and sums of squares of the data overflow, and a fit or a score
    would give inf or NaN (or fail far from the cause). NaN entries are ignored.
    X : (n_samples, n_features) floats; `first_row` numbers its rows within a larger stream.
    """
    if X.size == 0:
        return
    limit = scale_limit(X.dtype)
    high, low = np.fmax.reduce(X, axis=None), np.fmin.reduce(X, axis=None)  # NaN skipped
    if not (high > limit or low < -limit):
        return
    with np.errstate(invalid="ignore"):
        row, col = np.argwhere(np.abs(X) > limit)[0]
    value = float(X[row, col])
    largest = max(abs(float(high)), abs(float(low)))
    divisor = f"1e{math.ceil(math.log10(largest) - 0.01)}"  # 1e30 as float32 is 1.0000000150e30
    wide = SCALE_LIMITS[np.dtype(np.float64)]
    wider = (f" (or pass it as float64, X.astype(np.float64), whose limit is {wide:.0e})"
             if X.dtype == np.float32 and largest <= wide else "")
    raise InvalidInputError(
        f"{name} contains {value:.6g} at row {first_row + row}, column {col}: too large for "
        f"{model}, whose arithmetic (squares and sums of squares of the data) would overflow "
        f"{X.dtype.name} beyond |x| = {limit:.0e}. Rescale the data first, for example with "
        f"sklearn.preprocessing.StandardScaler or by dividing it by {divisor}{wider}.")


def check_observed_columns(X: np.ndarray, *, name: str = "X", model: str | None = "model",
                           columns=None, rows: str | None = None):
    """At fit: raise InvalidInputError when a column has no observed value (NaN in every row),
    naming it (and its name, from `columns`, when the data had names) and the fix.

    X : (n_samples, n_features) floats, NaN = missing; columns : (n_features,) names or None;
    model : the class name the message starts with (None: no prefix); rows : how the message
    says "every row" (default: "all n_samples rows").
    """
    if X.dtype.kind != "f" or X.size == 0:
        return
    empty = np.flatnonzero(np.isnan(np.fmax.reduce(X, axis=0)))  # fmax skips NaN
    if not empty.size:
        return
    which, it = ((f"column {empty[0]} is", "it") if empty.size == 1
                 else (f"columns {empty.tolist()} are", "them"))
    names = None if columns is None else [str(columns[j]) for j in empty]
    drop = (f"{name}.drop(columns={names!r}), or --drop {','.join(names)} on the command line"
            if names else f"np.delete({name}, {empty.tolist()}, axis=1), or --drop NAME on "
            "the command line")
    prefix = f"{model}: " if model else ""
    raise InvalidInputError(
        f"{prefix}column {empty[0]} of {name} is entirely missing (NaN): {which} missing in "
        f"{rows or f'all {X.shape[0]} rows'}, so nothing can be learned about {it}. "
        f"Drop {it}: {drop}.")


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
        """Whether `value` lies in the range; any int, however large (10**30, beyond
        numpy's int64), is compared exactly and never raises."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if isinstance(value, numbers.Integral):
            value = int(value)
        else:
            try:
                if not math.isfinite(float(value)):
                    return False
            except OverflowError:  # a Fraction beyond the float range
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


def as_seed(random_state, *, high: int = 2**31 - 1) -> int:
    """An int seed for a kernel or library that takes one (torch, numba streams): an int
    random_state as it is, anything else (None: fresh entropy; a Generator) drawn from it
    in [0, high)."""
    if isinstance(random_state, int | np.integer):
        return int(random_state)
    return int(as_generator(random_state).integers(0, high))


RANDOM_STATE = [
    Interval(int, 0, None),
    InstanceOf(np.random.Generator, np.random.RandomState, type(None), description="None"),
]
