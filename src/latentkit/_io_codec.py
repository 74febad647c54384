"""How `latentkit.io` turns values into arrays and JSON descriptions, and back.

The registry of storable record classes, the checksums (of each array member
and of the header itself) and the (value <-> description + array) codec live here, so that
`io.py` keeps only the file format's control flow. Every decoding failure is a
`ModelFileError` naming the member it concerns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import warnings

import numpy as np

from .exceptions import UserError

_RECORDS: dict[str, type] = {}
SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ARRAY_KINDS = "biufcU"  # bool, integers, floats, complex, unicode
_SCALAR_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
_KINDS = {"none", "record", "ndarray", "object_str", "numpy_scalar", "list", "tuple",
          *_SCALAR_TYPES}


class ModelFileError(UserError, ValueError):
    """A file that is not a readable, intact, consistent latentkit model file."""


ModelFileError.__module__ = "latentkit.io"  # its public home


# -- registries ---------------------------------------------------------------------------


def register(registry: dict, cls: type) -> type:
    """registry[cls.__name__] = cls, unless the name belongs to a class defined elsewhere
    (re-registering the same definition, e.g. on a module reload, is allowed)."""
    known = registry.get(cls.__name__)
    if known is not None and (known.__module__, known.__qualname__) != (
            cls.__module__, cls.__qualname__):
        raise ValueError(f"cannot register {cls.__module__}.{cls.__qualname__}: the name "
                         f"{cls.__name__!r} already belongs to {known.__module__}."
                         f"{known.__qualname__}")
    registry[cls.__name__] = cls
    return cls


def register_record(cls: type) -> type:
    """Class decorator: let a NamedTuple or dataclass of storable values (arrays, numbers,
    strings, None, other registered records) be saved as part of a model's state."""
    if not (isinstance(cls, type) and (dataclasses.is_dataclass(cls) or hasattr(cls, "_fields"))):
        raise TypeError(f"register_record expects a NamedTuple or dataclass, got {cls!r}")
    return register(_RECORDS, cls)


def _record_fields(record) -> tuple[str, ...]:
    """The field names of a record class or instance."""
    if dataclasses.is_dataclass(record):
        return tuple(f.name for f in dataclasses.fields(record))
    return tuple(record._fields)


# -- checksums ----------------------------------------------------------------------------


def array_checksum(array: np.ndarray) -> str:
    """sha256 over the dtype, the shape and the C-order bytes of `array`."""
    digest = hashlib.sha256(f"{array.dtype.str}|{list(array.shape)}|".encode())
    digest.update(array.tobytes(order="C"))
    return digest.hexdigest()


def header_checksum(header: dict) -> str:
    """sha256 over the canonical JSON of `header` without its "header_checksum" entry
    (sorted keys, no spaces, ASCII). The header lists every member's checksum, so this one
    digest covers the whole file. ValueError for a header that is not plain JSON."""
    body = {key: value for key, value in header.items() if key != "header_checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# -- encoding values ----------------------------------------------------------------------


def encode_value(value, key: str, arrays: dict) -> dict:
    """The description of a storable value; its arrays go into `arrays` under `key`
    (a record's fields under `key/<field>`). TypeError for anything else."""
    record = _RECORDS.get(type(value).__name__)
    if record is type(value):
        fields = {name: encode_value(getattr(value, name), f"{key}/{name}", arrays)
                  for name in _record_fields(value)}
        return {"type": "record", "class": record.__name__, "fields": fields}
    desc, array = encode(value)
    if array is not None:
        arrays[key] = array
    return desc


def encode(value) -> tuple[dict, np.ndarray | None]:
    """(description, array or None) for a storable value; TypeError for anything else."""
    if value is None:
        return {"type": "none"}, None
    if isinstance(value, np.ndarray):
        if type(value) not in (np.ndarray, np.memmap):
            raise TypeError(f"unsupported array subclass {type(value).__name__}")
        kind = "ndarray"
        if value.dtype == object:
            if not all(isinstance(item, str) for item in value.flat):
                raise TypeError("object arrays are supported only when every element is a str")
            value, kind = value.astype(str), "object_str"
        elif value.dtype.kind not in ARRAY_KINDS:
            raise TypeError(f"unsupported array dtype {value.dtype}")
        array = np.asarray(value)
    elif isinstance(value, np.generic):
        kind, array = "numpy_scalar", np.asarray(value)
        if array.dtype.kind not in ARRAY_KINDS:
            raise TypeError(f"unsupported numpy scalar type {type(value).__name__}")
    elif type(value) in _SCALAR_TYPES.values():
        kind, array = type(value).__name__, np.asarray(value)
        if array.dtype == object:  # an int beyond int64
            raise TypeError(f"integer {value} does not fit in int64")
    elif type(value) in (list, tuple):
        numbers = (bool, int, float, np.bool_, np.integer, np.floating)
        if not all(isinstance(item, numbers) for item in value):
            raise TypeError(f"only flat {type(value).__name__}s of numbers are supported")
        kind, array = type(value).__name__, np.asarray(value)
        if array.dtype == object:
            raise TypeError(f"{type(value).__name__} holds an integer beyond int64")
    else:
        raise TypeError(f"unsupported type {type(value).__name__}")
    return {"type": kind, "dtype": array.dtype.str, "shape": list(array.shape)}, array


# -- decoding values ----------------------------------------------------------------------


def check_description(desc, where: str) -> str:
    """The kind of a header description; ModelFileError when it is not one `encode`
    writes (a dict with a known "type", and "dtype" and "shape" where an array backs it)."""
    kind = desc.get("type") if isinstance(desc, dict) else None
    if kind not in _KINDS:
        raise ModelFileError(f"the header's description of {where!r} is invalid ({desc!r})")
    if kind not in ("none", "record") and not (
            isinstance(desc.get("dtype"), str) and isinstance(desc.get("shape"), list)):
        raise ModelFileError(f"the header's description of {where!r} lacks its dtype or "
                             f"shape ({desc!r})")
    return kind


def decode_value(desc, arrays: dict, key: str):
    """The value `encode_value` described; a record only as a registered class."""
    if check_description(desc, key) == "record":
        cls = _RECORDS.get(desc.get("class"))
        fields = desc.get("fields")
        if cls is None or not isinstance(fields, dict):
            raise ModelFileError(f"{key!r} holds an unknown record {desc.get('class')!r}")
        if set(fields) != set(_record_fields(cls)):
            raise ModelFileError(f"{key!r}: the fields of record {cls.__name__} do not match "
                                 "this version of latentkit")
        return cls(**{name: decode_value(d, arrays, f"{key}/{name}")
                      for name, d in fields.items()})
    return decode(desc, arrays.get(key), key)


def decode(desc: dict, array: np.ndarray | None, where: str):
    """The value of a non-record description backed by `array` (None when absent)."""
    kind = check_description(desc, where)
    if kind == "none":
        return None
    if array is None:
        raise ModelFileError(f"array {where!r} is missing: corrupted or tampered")
    if desc.get("dtype") != array.dtype.str or desc.get("shape") != list(array.shape):
        raise ModelFileError(f"array {where!r} does not match its description in the header")
    if kind == "ndarray":
        return array
    if kind == "object_str" and array.dtype.kind == "U":
        return array.astype(object)
    if kind == "numpy_scalar" and array.ndim == 0:
        return array[()]
    if kind in _SCALAR_TYPES and array.ndim == 0 and np.can_cast(
            array.dtype, np.asarray(_SCALAR_TYPES[kind]()).dtype, casting="same_kind"):
        return _SCALAR_TYPES[kind](array.item())
    if kind in ("list", "tuple") and array.ndim == 1 and array.dtype.kind in "biuf":
        return array.tolist() if kind == "list" else tuple(array.tolist())
    raise ModelFileError(f"the header's description {desc!r} of {where!r} does not fit "
                         f"its array ({array.dtype}, shape {array.shape})")


# -- hyper-parameters ---------------------------------------------------------------------


def _is_json(value) -> bool:
    """Plain JSON that round-trips exactly (finite floats, str keys)."""
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return bool(np.isfinite(value))
    if type(value) in (list, tuple):
        return all(_is_json(item) for item in value)
    if type(value) is dict:
        return all(type(k) is str and _is_json(v) for k, v in value.items())
    return False


def encode_params(model, arrays: dict) -> tuple[dict, dict]:
    """(JSON params, param_types); array params go into `arrays` as param/<name>."""
    params, types = {}, {}
    for name, value in model.get_params(deep=False).items():
        params[name] = None
        if _is_json(value):
            params[name] = value
            if type(value) is tuple:
                types[name] = {"type": "tuple"}
            continue
        try:
            types[name], array = encode(value)
        except TypeError:
            types[name] = {"type": "dropped", "python_type": type(value).__name__}
            warnings.warn(
                f"hyper-parameter {name!r} of {type(model).__name__} holds a "
                f"{type(value).__name__}, which cannot be saved without pickle; it is saved "
                "as None and the loaded model will have "
                f"{name}=None. Set it again after loading if needed.", UserWarning, stacklevel=3)
            continue
        if array is not None:
            arrays[f"param/{name}"] = array
    return params, types


def decode_params(header: dict, arrays: dict) -> dict:
    """The constructor arguments a header and its param/<name> arrays describe."""
    params = dict(header["params"])
    for name, desc in header["param_types"].items():
        kind = desc.get("type") if isinstance(desc, dict) else None
        if kind == "tuple" and isinstance(params.get(name), list):
            params[name] = tuple(params[name])
        elif kind not in ("tuple", "dropped"):
            params[name] = decode(desc, arrays.get(f"param/{name}"), f"param/{name}")
    return params
