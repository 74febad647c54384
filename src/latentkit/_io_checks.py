"""The checks `load` runs on a rebuilt model before handing it over.

A file whose checksums match can still be inconsistent: written by a buggy or hostile
program that recomputed them, or by a future version. After rebuilding, `load` checks

1. the hyper-parameters, by the model's own `_validate_params()` (what fit runs);
2. the fitted attributes, against `_io_schemas`: type, dtype kind, finiteness, range and
   shape, with shapes tied to the hyper-parameters and to each other (a GaussianMixture's
   means_ is (n_components, n_features_in_), its covariances_ shaped by covariance_type),
   then the model's own `_check_fitted()` where it defines one;
3. a test use: the model's `_current_params()` where it has one, then drawing one row with
   `sample(1)` (one row of zeros where the model cannot sample) and scoring it with
   `score_samples`, which must not be NaN.

Each failure is one `ModelFileError` naming the file and the member or use at fault.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings

import numpy as np

from ._io_codec import ModelFileError
from ._io_schemas import COMMON, EM_ENGINE, Fitted, schema_of


def validate_params(model, path: str) -> None:
    """The model's own hyper-parameter validation, as fit runs it."""
    if not hasattr(type(model), "_parameter_constraints"):
        return
    try:
        model._validate_params()
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{path!r} holds invalid hyper-parameters for "
                             f"{type(model).__name__}: {exc}") from None


def check_fitted(model, path: str) -> None:
    """Every fitted attribute against the model's schema, its EM state's numbers, then the
    model's own `_check_fitted()` hook."""
    dims: dict[str, int] = {}
    for name, rule in schema_of(model).items():
        found, value = _lookup(model, name)
        member = "fitted/" + name.replace(".", "/")
        if not found:
            if name not in COMMON and name not in EM_ENGINE and "." not in name:
                raise ModelFileError(f"{path!r}: fitted attribute {name!r} (member "
                                     f"{member!r}) is missing")
            continue
        problem = _problem(value, rule, model, dims)
        if problem:
            raise ModelFileError(f"{path!r}: fitted attribute {name!r} (member {member!r}) "
                                 f"{problem}")
    field = _non_finite_field(vars(model).get("em_state_"))
    if field:
        raise ModelFileError(f"{path!r}: the EM state (member 'fitted/em_state_/{field}') "
                             "holds NaN or inf")
    hook = getattr(model, "_check_fitted", None)
    if callable(hook):
        try:
            hook()
        except (ValueError, TypeError) as exc:
            raise ModelFileError(f"{path!r}: inconsistent fitted attributes: {exc}") from None


def _lookup(model, name: str) -> tuple[bool, object]:
    """(found, value) of a fitted attribute, or of a record's field as "attribute.field"
    (not found where the record is absent or None)."""
    head, *fields = name.split(".")
    if head not in vars(model):
        return False, None
    value = vars(model)[head]
    for field in fields:
        if value is None or not hasattr(value, field):
            return False, None
        value = getattr(value, field)
    return True, value


def _non_finite_field(record) -> str | None:
    """The first field of a record (NamedTuple or dataclass, recursively) holding a float
    that is NaN or inf, as "field/subfield"; None when all are finite."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        items = [(f.name, getattr(record, f.name)) for f in dataclasses.fields(record)]
    elif isinstance(record, tuple) and hasattr(record, "_fields"):
        items = list(zip(record._fields, record))
    else:
        return None
    for name, value in items:
        if isinstance(value, float | np.floating | np.ndarray):
            array = np.asarray(value)
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                return name
        inner = _non_finite_field(value)
        if inner:
            return f"{name}/{inner}"
    return None


def _problem(value, rule: Fitted, model, dims: dict) -> str | None:
    """What is wrong with `value` under `rule`, or None."""
    if value is None:
        return None if rule.optional else "is None"
    if rule.shape == () and isinstance(value, str | numbers.Number | np.generic):
        array = np.asarray(value)
    elif isinstance(value, np.ndarray) and type(value) in (np.ndarray, np.memmap):
        array = value
    else:
        return f"is a {type(value).__name__}, expected {_expected(rule)}"
    if array.dtype.kind not in rule.kinds:
        return f"has dtype {array.dtype}, expected {_expected(rule)}"
    if rule.kinds == "O" and not all(isinstance(item, str) for item in array.flat):
        return "holds items that are not strings"
    shape = _shape(rule.shape, array.shape, model, dims)
    if shape is not None:
        return shape
    if array.dtype.kind == "f" and rule.finite and not np.all(np.isfinite(array)):
        return "holds NaN or inf"
    if rule.low is not None and array.size and np.min(array) < rule.low:
        return f"holds values below {rule.low}"
    return None


def _expected(rule: Fitted) -> str:
    kinds = {"f": "float", "iu": "integer", "b": "bool", "U": "str", "O": "str"}
    what = kinds.get(rule.kinds, rule.kinds)
    return f"a {what} scalar" if rule.shape == () else f"a {what} array"


def _shape(expected: tuple, actual: tuple, model, dims: dict) -> str | None:
    """A message when `actual` does not match `expected` (see `_io_schemas`), else None."""
    sizes = actual if len(actual) == len(expected) else (None,) * len(expected)
    resolved = tuple(symbol if isinstance(symbol, int) else _dimension(symbol, model, dims, size)
                     for symbol, size in zip(expected, sizes))
    if resolved == tuple(actual):
        return None
    names = ", ".join(map(str, expected)) + ("," if len(expected) == 1 else "")
    shown = ", ".join("?" if size is None else str(size) for size in resolved)
    return f"has shape {tuple(actual)}, expected ({names}) = ({shown})"


def _dimension(symbol: str, model, dims: dict, size: int | None) -> int | None:
    """The size a shape symbol stands for: an int fitted attribute or hyper-parameter of
    that name, else a free symbol bound to `size` on first use (None: not known)."""
    if symbol not in dims:
        value = vars(model).get(symbol, getattr(model, symbol, None))
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not ok and size is None:
            return None
        dims[symbol] = int(value) if ok else size
    return dims[symbol]


def smoke_test(model, path: str) -> None:
    """Use the model once as a user would; any failure is a ModelFileError."""
    name = type(model).__name__
    step = "_current_params()"
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            _try(model, "_current_params")
            step = "sample(1)"
            drawn = _try(model, "sample", 1, random_state=0)
            X = drawn[0] if isinstance(drawn, tuple) else _zeros(model)
            if X is None:
                return
            step = "score_samples"
            scores = _try(model, "score_samples", X)
            nan = scores is not None and np.isnan(np.asarray(scores, dtype=np.float64)).any()
    except Exception as exc:  # noqa: BLE001 -- whatever a damaged model raises
        raise ModelFileError(
            f"{path!r}: the loaded {name} fails when used ({step} raised "
            f"{type(exc).__name__}: {exc}); its fitted attributes are inconsistent") from None
    if nan:
        raise ModelFileError(f"{path!r}: the loaded {name} scores its own sample as NaN; "
                             "its fitted attributes are invalid")


def _try(model, method: str, *args, **kwargs):
    """model.method(*args, **kwargs), or None where the model does not implement it
    (no such method, or it raises NotImplementedError)."""
    call = getattr(model, method, None)
    if not callable(call):
        return None
    try:
        return call(*args, **kwargs)
    except NotImplementedError:
        return None


def _zeros(model):
    """One row of zeros with the model's features (a DataFrame when it knows their names),
    or None when it does not record n_features_in_."""
    n_features = vars(model).get("n_features_in_")
    if not isinstance(n_features, numbers.Integral):
        return None
    X = np.zeros((1, int(n_features)))
    names = vars(model).get("feature_names_in_")
    if names is None:
        return X
    import pandas as pd

    return pd.DataFrame(X, columns=list(names))
