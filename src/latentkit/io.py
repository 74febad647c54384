"""Safe persistence (DESIGN section 6): one `.npz` file, no pickle, atomic writes.

File layout, written with `np.savez_compressed` (deflate: model files are for storage and
transfer, parameters such as covariances and feature names shrink, and the cost is negligible
next to fitting):

- `__header__` : (n_bytes,) uint8, UTF-8 JSON with "format" ("latentkit-model"),
  "format_version", "library_version", "class", "params" (JSON hyper-parameters; null where a
  value lives in an array or could not be saved), "param_types", "fitted" (one description per
  fitted attribute: its python type and, for array-backed values, dtype and shape) and
  "checksums" (sha256 over dtype, shape and C-order bytes of every other member).
- `param/<name>` : hyper-parameters that are arrays or numpy scalars (e.g. `means_init`).
- `fitted/<name>` : the model's saved state: by default its fitted attributes (instance
  attributes named `name_`, not `_name`); a model chooses otherwise through its persistence
  hook, `_saved_state()` -> {name: value} and `_restore_state(state)` (a model holding torch
  weights hands them over as arrays there). A value may be a registered record (a NamedTuple
  or dataclass decorated with `register_record`, e.g. an EM state); its fields are stored as
  `fitted/<name>/<field>`, recursively, and it is rebuilt only as a registered class.

Loading uses `np.load(path, allow_pickle=False)`: nothing in the file is executed or
unpickled, and only classes decorated with `register_model` can be rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import uuid
import warnings
import zipfile
import zlib

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .exceptions import UserError

FORMAT = "latentkit-model"
FORMAT_VERSION = 1
HEADER = "__header__"

_REGISTRY: dict[str, type] = {}
_RECORDS: dict[str, type] = {}
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ARRAY_KINDS = "biufcU"  # bool, integers, floats, complex, unicode
_SCALAR_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
# what numpy and zipfile raise on damaged bytes (bad zip structure, deflate stream, npy header)
_DAMAGE = (ValueError, EOFError, OSError, NotImplementedError, zipfile.BadZipFile, zlib.error)


class ModelFileError(UserError, ValueError):
    """A file that is not a readable, intact latentkit model file."""


def _register(registry: dict, cls: type) -> type:
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


def register_model(cls: type) -> type:
    """Class decorator: allow `load` to rebuild `cls` from a file (registry: name -> class)."""
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise TypeError(f"register_model expects an estimator class, got {cls!r}")
    return _register(_REGISTRY, cls)


def register_record(cls: type) -> type:
    """Class decorator: let a NamedTuple or dataclass of storable values (arrays, numbers,
    strings, None, other registered records) be saved as part of a model's state."""
    if not (isinstance(cls, type) and (dataclasses.is_dataclass(cls) or hasattr(cls, "_fields"))):
        raise TypeError(f"register_record expects a NamedTuple or dataclass, got {cls!r}")
    return _register(_RECORDS, cls)


def _record_fields(record) -> tuple[str, ...]:
    """The field names of a record class or instance."""
    if dataclasses.is_dataclass(record):
        return tuple(f.name for f in dataclasses.fields(record))
    return tuple(record._fields)


def registered_models() -> dict[str, type]:
    """A copy of the registry: class name -> class."""
    return dict(_REGISTRY)


# -- encoding values ----------------------------------------------------------------------


def _checksum(array: np.ndarray) -> str:
    digest = hashlib.sha256(f"{array.dtype.str}|{list(array.shape)}|".encode())
    digest.update(array.tobytes(order="C"))
    return digest.hexdigest()


def _encode_value(value, key: str, arrays: dict) -> dict:
    """The description of a storable value; its arrays go into `arrays` under `key`
    (a record's fields under `key/<field>`). TypeError for anything else."""
    record = _RECORDS.get(type(value).__name__)
    if record is type(value):
        fields = {name: _encode_value(getattr(value, name), f"{key}/{name}", arrays)
                  for name in _record_fields(value)}
        return {"type": "record", "class": record.__name__, "fields": fields}
    desc, array = _encode(value)
    if array is not None:
        arrays[key] = array
    return desc


def _decode_value(desc, arrays: dict, key: str):
    """The value `_encode_value` described; a record only as a registered class."""
    if isinstance(desc, dict) and desc.get("type") == "record":
        cls = _RECORDS.get(desc.get("class"))
        fields = desc.get("fields")
        if cls is None or not isinstance(fields, dict):
            raise ModelFileError(f"{key!r} holds an unknown record {desc.get('class')!r}")
        if set(fields) != set(_record_fields(cls)):
            raise ModelFileError(f"{key!r}: the fields of record {cls.__name__} do not match "
                                 "this version of latentkit")
        return cls(**{name: _decode_value(d, arrays, f"{key}/{name}")
                      for name, d in fields.items()})
    return _decode(desc, arrays.get(key), key)


def _encode(value) -> tuple[dict, np.ndarray | None]:
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
        elif value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"unsupported array dtype {value.dtype}")
        array = np.asarray(value)
    elif isinstance(value, np.generic):
        kind, array = "numpy_scalar", np.asarray(value)
        if array.dtype.kind not in _ARRAY_KINDS:
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


def _decode(desc: dict, array: np.ndarray | None, where: str):
    kind = desc.get("type") if isinstance(desc, dict) else None
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
    if kind in _SCALAR_TYPES and array.ndim == 0:
        return _SCALAR_TYPES[kind](array.item())
    if kind in ("list", "tuple") and array.ndim == 1:
        return array.tolist() if kind == "list" else tuple(array.tolist())
    raise ModelFileError(f"invalid description {desc!r} for {where!r} in the header")


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


def _encode_params(model, arrays: dict) -> tuple[dict, dict]:
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
            types[name], array = _encode(value)
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


# -- save ---------------------------------------------------------------------------------


def save(model, path) -> None:
    """Write a fitted `model` to the single file `path` (used as given, no suffix added).

    The write is atomic: a temporary file in the same directory is renamed over `path` only
    once complete; on failure it is removed and an existing file at `path` is untouched.
    Hyper-parameters that cannot be stored without pickle (callables, random generators)
    are saved as None with a UserWarning; an unsupported fitted attribute is a TypeError.
    """
    cls = type(model)
    if _REGISTRY.get(cls.__name__) is not cls:
        raise TypeError(f"{cls.__name__} is not registered with latentkit.io.register_model, "
                        "so a saved file could not be loaded")
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise NotFittedError(f"cannot save this {cls.__name__}: it is not fitted yet; call "
                             "fit before save") from exc
    arrays: dict[str, np.ndarray] = {}
    params, param_types = _encode_params(model, arrays)
    fitted = {}
    state = model._saved_state() if hasattr(model, "_saved_state") else saved_state(model)
    for name, value in state.items():
        if not _SAFE_NAME.match(name):
            raise TypeError(f"cannot save {cls.__name__}: state name {name!r} is not an "
                            "identifier")
        try:
            fitted[name] = _encode_value(value, f"fitted/{name}", arrays)
        except TypeError as exc:
            raise TypeError(f"cannot save fitted attribute {name!r} of {cls.__name__}: "
                            f"{exc}") from None
    from . import __version__

    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
        "class": cls.__name__, "params": params, "param_types": param_types,
        "fitted": fitted, "checksums": {key: _checksum(a) for key, a in arrays.items()},
    }
    text = json.dumps(header, allow_nan=False, sort_keys=True).encode("utf-8")
    arrays[HEADER] = np.frombuffer(text, dtype=np.uint8)
    _atomic_write(os.fspath(path), arrays)


def _write_npz(file, arrays: dict) -> None:
    np.savez_compressed(file, allow_pickle=False, **arrays)


def _atomic_write(path: str, arrays: dict) -> None:
    directory, base = os.path.split(path)
    temp = os.path.join(directory, f".{base}.{uuid.uuid4().hex}.tmp")
    # O_EXCL: never clobber; mode 0o666 lets the umask decide, as for a plain open()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as file:  # a file object: numpy appends no ".npz"
            _write_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise


# -- load ---------------------------------------------------------------------------------


def load(path):
    """Rebuild the model saved at `path` by `save`; never executes code from the file.

    Raises FileNotFoundError for a missing file and ModelFileError for a file that is
    truncated, foreign, from a newer format, of an unregistered class, or corrupted.
    """
    path = os.fspath(path)
    # opened here, so that the handle is closed whatever numpy makes of the bytes
    with open(path, "rb") as fh:
        try:
            npz = np.load(fh, allow_pickle=False)
        except _DAMAGE as exc:
            # numpy's own message can suggest loading with allow_pickle: never pass that on
            detail = "" if "pickle" in str(exc) else f" ({exc})"
            raise ModelFileError(f"{path!r} is truncated or not a latentkit model file"
                                 f"{detail}") from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ModelFileError(f"{path!r} is not a latentkit model file (it holds one "
                                 "array)")
        with npz:
            header = _read_header(npz, path)
            cls = _REGISTRY.get(header["class"])
            if cls is None:
                raise ModelFileError(
                    f"{path!r} holds a {header['class']!r}, which is not a registered "
                    f"latentkit model; known classes: {', '.join(sorted(_REGISTRY)) or 'none'}")
            arrays = _read_arrays(npz, header, path)
    params = dict(header["params"])
    for name, desc in header["param_types"].items():
        kind = desc.get("type") if isinstance(desc, dict) else None
        if kind == "tuple" and isinstance(params.get(name), list):
            params[name] = tuple(params[name])
        elif kind not in ("tuple", "dropped"):
            params[name] = _decode(desc, arrays.get(f"param/{name}"), f"param/{name}")
    try:
        model = cls(**params)
    except TypeError as exc:
        raise ModelFileError(f"{path!r}: {cls.__name__} rejects the saved hyper-parameters "
                             f"(written by latentkit {header['library_version']}): {exc}"
                             ) from None
    state = {}
    for name, desc in header["fitted"].items():
        if not (isinstance(name, str) and _SAFE_NAME.match(name)):
            raise ModelFileError(f"{path!r}: invalid fitted attribute name {name!r}")
        state[name] = _decode_value(desc, arrays, f"fitted/{name}")
    try:
        if hasattr(model, "_restore_state"):
            model._restore_state(state)
        else:
            restore_state(model, state)
    except ValueError as exc:
        raise ModelFileError(f"{path!r}: {exc}") from None
    return model


# -- the default persistence hook ---------------------------------------------------------


def saved_state(model) -> dict:
    """What `save` stores by default: the fitted attributes (`name_`, not `_name`)."""
    return {name: value for name, value in vars(model).items()
            if name.endswith("_") and not name.startswith("_")}


def restore_state(model, state: dict) -> None:
    """What `load` does by default: set each fitted attribute, then `model._after_load()`
    where the model defines it (to rebuild caches derived from the fitted attributes)."""
    for name in state:
        if not (name.endswith("_") and not name.startswith("_")):
            raise ValueError(f"invalid fitted attribute name {name!r}")
    vars(model).update(state)
    if hasattr(model, "_after_load"):
        model._after_load()


def _read_header(npz, path: str) -> dict:
    """The parsed, validated JSON header."""
    foreign = ModelFileError(f"{path!r} is not a latentkit model file (no valid header)")
    if HEADER not in npz.files:
        raise foreign
    try:
        raw = npz[HEADER]
        valid = raw.dtype == np.uint8 and raw.ndim == 1
        header = json.loads(raw.tobytes().decode("utf-8")) if valid else None
    except _DAMAGE:
        raise foreign from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise foreign
    version = header.get("format_version")
    if type(version) is not int or version < 1:
        raise ModelFileError(f"{path!r} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by a newer latentkit ({header.get('library_version')}, "
            f"format_version {version}; this one reads up to {FORMAT_VERSION}); upgrade "
            "latentkit to load it")
    expected = {"class": str, "library_version": str, "params": dict, "param_types": dict,
                "fitted": dict, "checksums": dict}
    for key, kind in expected.items():
        if not isinstance(header.get(key), kind):
            raise ModelFileError(f"{path!r} has a malformed header: {key!r} is missing or "
                                 f"not a {kind.__name__}")
    return header


def _read_arrays(npz, header: dict, path: str) -> dict:
    """Every member listed in the header's checksums, verified."""
    checksums = header["checksums"]
    members = set(npz.files) - {HEADER}
    missing = sorted(set(checksums) - members)
    if missing:
        raise ModelFileError(f"{path!r} is missing arrays {missing}: corrupted or tampered")
    unexpected = sorted(members - set(checksums))
    if unexpected:
        raise ModelFileError(f"{path!r} has unlisted arrays {unexpected}: corrupted or "
                             "tampered")
    arrays = {}
    for name, digest in checksums.items():
        try:
            array = npz[name]  # allow_pickle=False: an object array raises, never unpickles
        except _DAMAGE as exc:
            raise ModelFileError(f"{path!r}: array {name!r} is unreadable ({exc}); the file "
                                 "is corrupted or tampered") from None
        if _checksum(array) != digest:
            raise ModelFileError(f"{path!r}: checksum mismatch for array {name!r}; the file "
                                 "is corrupted or tampered")
        arrays[name] = array
    return arrays
