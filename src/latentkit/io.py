"""Safe persistence (DESIGN section 6): one `.npz` file, no pickle, atomic writes, and a
model that is validated before `load` returns it.

File layout, written with `np.savez_compressed` (deflate: model files are for storage and
transfer, parameters such as covariances and feature names shrink, and the cost is negligible
next to fitting). Every member is a `.npy` array:

- `__header__` : (n_bytes,) uint8, UTF-8 JSON with "format" ("latentkit-model"),
  "format_version", "library_version", "class", "params" (JSON hyper-parameters; null where a
  value lives in an array or could not be saved), "param_types", "fitted" (one description per
  fitted attribute: its python type and, for array-backed values, dtype and shape),
  "checksums" (sha256 over dtype, shape and C-order bytes of every other member) and, from
  format_version 2, "header_checksum": sha256 over the canonical JSON of the header without
  this entry (sorted keys, no spaces, ASCII; `_io_codec.header_checksum`). Since the header
  lists the members' checksums, that one digest covers the whole file: any edit of a
  hyper-parameter, a description or an array is reported as "modified or damaged".
- `param/<name>` : hyper-parameters that are arrays or numpy scalars (e.g. `means_init`).
- `fitted/<name>` : the model's saved state: by default its fitted attributes (instance
  attributes named `name_`, not `_name`); a model chooses otherwise through its persistence
  hook, `_saved_state()` -> {name: value} and `_restore_state(state)` (a model holding torch
  weights hands them over as arrays there). A value may be a registered record (a NamedTuple
  or dataclass decorated with `register_record`, e.g. an EM state); its fields are stored as
  `fitted/<name>/<field>`, recursively, and it is rebuilt only as a registered class.

Loading uses `np.load(path, allow_pickle=False)`: nothing in the file is executed or
unpickled, and only classes decorated with `register_model` can be rebuilt. Checksums detect
damage and edits, not a forger (anyone can recompute them), so the rebuilt model is also
validated (`_io_checks`): its hyper-parameters by the model's own `_validate_params()`, its
fitted attributes against their schema (`_io_schemas`: type, dtype kind, shape tied to the
hyper-parameters and to each other, finiteness), and by one test use (sample a row, score
it). Every rejection is one `ModelFileError` naming the file and what is wrong.

Format versions: this version writes 2 and reads 1 and 2. A version-1 file (latentkit
before the header checksum) has no header checksum to verify; its members' checksums and all
the validation above still apply. A file of a newer version is refused, asking for an
upgrade. Temporary files and the clean-up after a killed save: see `_io_files`.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from . import _io_checks, _io_files
from ._io_codec import (
    _RECORDS,  # noqa: F401 -- the record registry, for introspection
    ARRAY_KINDS,
    SAFE_NAME,
    ModelFileError,
    array_checksum,
    decode_params,
    decode_value,
    encode_params,
    encode_value,
    header_checksum,
    register,
    register_record,
)

FORMAT = "latentkit-model"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER = "__header__"

_REGISTRY: dict[str, type] = {}
# what numpy and zipfile raise on damaged bytes (bad zip structure, deflate stream, npy header)
_DAMAGE = (ValueError, EOFError, OSError, NotImplementedError, zipfile.BadZipFile, zlib.error)


def register_model(cls: type) -> type:
    """Class decorator: allow `load` to rebuild `cls` from a file (registry: name -> class)."""
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise TypeError(f"register_model expects an estimator class, got {cls!r}")
    return register(_REGISTRY, cls)


def registered_models() -> dict[str, type]:
    """A copy of the registry: class name -> class."""
    return dict(_REGISTRY)


# -- save ---------------------------------------------------------------------------------


def save(model, path) -> None:
    """Write a fitted `model` to the single file `path` (used as given, no suffix added).

    The write is atomic: a temporary file `.<name>.<32 hex>.tmp` in the same directory is
    renamed over `path` only once complete; on failure it is removed and an existing file at
    `path` is untouched, and one left by a killed save is removed by the next save of the
    same path (`_io_files`). Hyper-parameters that cannot be stored without pickle
    (callables, random generators) are saved as None with a UserWarning; an unsupported
    fitted attribute is a TypeError.
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
    params, param_types = encode_params(model, arrays)
    fitted = {}
    state = model._saved_state() if hasattr(model, "_saved_state") else saved_state(model)
    for name, value in state.items():
        if not SAFE_NAME.match(name):
            raise TypeError(f"cannot save {cls.__name__}: state name {name!r} is not an "
                            "identifier")
        try:
            fitted[name] = encode_value(value, f"fitted/{name}", arrays)
        except TypeError as exc:
            raise TypeError(f"cannot save fitted attribute {name!r} of {cls.__name__}: "
                            f"{exc}") from None
    from . import __version__

    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "library_version": __version__,
        "class": cls.__name__, "params": params, "param_types": param_types,
        "fitted": fitted, "checksums": {key: array_checksum(a) for key, a in arrays.items()},
    }
    header["header_checksum"] = header_checksum(header)
    text = json.dumps(header, allow_nan=False, sort_keys=True).encode("utf-8")
    arrays[HEADER] = np.frombuffer(text, dtype=np.uint8)
    _atomic_write(os.fspath(path), arrays)


def _write_npz(file, arrays: dict) -> None:
    np.savez_compressed(file, allow_pickle=False, **arrays)


def _atomic_write(path: str, arrays: dict) -> None:
    _io_files.atomic_write(path, lambda file: _write_npz(file, arrays))


# -- load ---------------------------------------------------------------------------------


def load(path):
    """Rebuild the model saved at `path` by `save`; never executes code from the file.

    Raises FileNotFoundError for a missing file and ModelFileError for a file that is
    truncated, foreign, from a newer format, of an unregistered class, modified or damaged,
    or whose hyper-parameters or fitted attributes are invalid or inconsistent.
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
            members = _member_names(npz, path)
            cls = _REGISTRY.get(header["class"])
            if cls is None:  # a family imported on first use (latentkit.deep: torch)
                from .registry import registered_specs

                registered_specs()
                cls = _REGISTRY.get(header["class"])
            if cls is None:
                raise ModelFileError(
                    f"{path!r} holds a {header['class']!r}, which is not a registered "
                    f"latentkit model; known classes: {', '.join(sorted(_REGISTRY)) or 'none'}")
            arrays = _read_arrays(npz, members, header, path)
    model = _rebuild(cls, header, arrays, path)
    _io_checks.check_fitted(model, path)
    _io_checks.smoke_test(model, path)
    return model


def _rebuild(cls: type, header: dict, arrays: dict, path: str):
    """The model the header and arrays describe, its hyper-parameters validated."""
    try:
        params = decode_params(header, arrays)
    except ModelFileError as exc:
        raise ModelFileError(f"{path!r}: {exc}") from None
    try:
        model = cls(**params)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path!r}: {cls.__name__} rejects the saved hyper-parameters "
                             f"(written by latentkit {header['library_version']}): {exc}"
                             ) from None
    _io_checks.validate_params(model, path)
    state = {}
    for name, desc in header["fitted"].items():
        if not (isinstance(name, str) and SAFE_NAME.match(name)):
            raise ModelFileError(f"{path!r}: invalid fitted attribute name {name!r}")
        try:
            state[name] = decode_value(desc, arrays, f"fitted/{name}")
        except ModelFileError as exc:
            raise ModelFileError(f"{path!r}: {exc}") from None
    try:
        if hasattr(model, "_restore_state"):
            model._restore_state(state)
        else:
            restore_state(model, state)
    except Exception as exc:  # noqa: BLE001 -- whatever a model's hook makes of bad state
        raise ModelFileError(f"{path!r}: the saved state does not fit {cls.__name__} "
                             f"({type(exc).__name__}: {exc})") from None
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


# -- reading the file ---------------------------------------------------------------------


def _member_names(npz, path: str) -> set[str]:
    """The members' names without ".npy"; every member must be a uniquely named .npy."""
    names = npz.zip.namelist()
    odd = sorted({name for name in names if not name.endswith(".npy")})
    if odd:
        raise ModelFileError(f"{path!r} has members that are not .npy arrays: {odd}; the "
                             "file is corrupted or tampered")
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise ModelFileError(f"{path!r} has duplicate members {twice}: corrupted or "
                             "tampered")
    return {name[: -len(".npy")] for name in names}


def _parse_json(raw) -> object:
    """The JSON in a uint8 array (NaN and Infinity refused), or None."""
    if not (isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 1):
        return None

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(raw.tobytes().decode("utf-8"), parse_constant=refuse)


def _read_header(npz, path: str) -> dict:
    """The parsed header, its checksum verified (format_version 2) and its shape checked."""
    foreign = ModelFileError(f"{path!r} is not a latentkit model file (no valid header)")
    if HEADER not in npz.files:
        raise foreign
    try:
        header = _parse_json(npz[HEADER])
    except (*_DAMAGE, RecursionError):
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
    if version >= 2 and header.get("header_checksum") != header_checksum(header):
        raise ModelFileError(f"{path!r} has been modified or damaged: its header does not "
                             "match the header checksum (corrupted or tampered)")
    expected = {"class": str, "library_version": str, "params": dict, "param_types": dict,
                "fitted": dict, "checksums": dict}
    for key, kind in expected.items():
        if not isinstance(header.get(key), kind):
            raise ModelFileError(f"{path!r} has a malformed header: {key!r} is missing or "
                                 f"not a {kind.__name__}")
    return header


def _read_arrays(npz, members: set[str], header: dict, path: str) -> dict:
    """Every member listed in the header's checksums: present, a plain array of a storable
    dtype, and matching its checksum; no member unlisted."""
    checksums = header["checksums"]
    members = members - {HEADER}
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
        except (*_DAMAGE, MemoryError) as exc:  # MemoryError: a forged, huge shape
            raise ModelFileError(f"{path!r}: array {name!r} is unreadable ({exc}); the file "
                                 "is corrupted or tampered") from None
        if not isinstance(array, np.ndarray):  # numpy hands back raw bytes for a non-.npy
            raise ModelFileError(f"{path!r}: member {name!r} is not a .npy array; the file "
                                 "is corrupted or tampered")
        if array.dtype.kind not in ARRAY_KINDS:
            raise ModelFileError(f"{path!r}: array {name!r} has dtype {array.dtype}, which "
                                 "latentkit never writes; the file is corrupted or tampered")
        if array_checksum(array) != digest:
            raise ModelFileError(f"{path!r} has been modified or damaged: array {name!r} "
                                 "does not match its checksum (corrupted or tampered)")
        arrays[name] = array
    return arrays


__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "load", "register_model",
           "register_record", "registered_models", "restore_state", "save", "saved_state"]
