"""Training checkpoints without pickle: one safetensors file.

A checkpoint is a *tree*: nested dicts, lists and tuples whose leaves are None, bool, int,
float, str or torch tensors (a model's `state_dict`, an optimizer's `state_dict` with its int
keys and `betas` tuples, a scheduler's state with `inf`, counters, RNG states as uint8
tensors). `save_checkpoint` splits it in two:

- every tensor leaf goes into the safetensors data section under the name of its path in the
  tree (`model/encoder.0.weight`, `optimizer/state/0/exp_avg`);
- everything else becomes JSON (`encode_tree`), in which a tensor leaf is the reference
  ``{"__tensor__": name}``; dicts keep the type of their keys (``{"__dict__": [[k, v], ...]}``),
  tuples stay tuples and non-finite floats survive (``{"__float__": "inf"}``).

The JSON lives in the safetensors header metadata together with the format name, its version
and a sha256 digest of the JSON and of every tensor (name, dtype, shape, bytes) in name
order. Loading (`load_checkpoint`) parses the header itself, lets safetensors read the
tensors (it never executes code), recomputes the digest and refuses any mismatch, so a
truncated, tampered or foreign file is one clear `CheckpointError`. `torch.load` (which
unpickles) is never called. Writes are atomic: a temporary file beside the target, flushed
and fsync'ed, then `os.replace`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..exceptions import UserError

CHECKPOINT_FORMAT = "latentkit-checkpoint"
CHECKPOINT_VERSION = 1
_HEADER_LIMIT = 100 * 2**20  # safetensors' own cap on the JSON header (100 MB)


class CheckpointError(UserError, ValueError):
    """A file that is not an intact latentkit checkpoint, or one that does not fit the
    model or trainer it is resumed into."""


def encode_tree(tree, path: str = "", tensors: dict | None = None):
    """Split `tree` into a JSON-able object and its tensors.

    tree : nested dict / list / tuple of None, bool, int, float, str and torch.Tensor.
    path : the name prefix of the tensors found under `tree`.
    Returns (json_object, tensors) with tensors : dict name -> detached CPU contiguous copy
    (copies: safetensors refuses tensors that share storage, e.g. tied weights).
    """
    tensors = {} if tensors is None else tensors
    if isinstance(tree, torch.Tensor):
        name = path or "tensor"
        while name in tensors:  # a key holding '/' could collide with a nested path
            name += "'"
        tensors[name] = tree.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": name}, tensors
    if tree is None or isinstance(tree, (bool, int, str)):
        return tree, tensors
    if isinstance(tree, float):
        return (tree if math.isfinite(tree) else {"__float__": repr(tree)}), tensors
    if isinstance(tree, (list, tuple)):
        items = [encode_tree(item, f"{path}/{i}", tensors)[0] for i, item in enumerate(tree)]
        return (items if isinstance(tree, list) else {"__tuple__": items}), tensors
    if isinstance(tree, dict):
        pairs = [[encode_tree(key, "", {})[0], encode_tree(value, f"{path}/{key}", tensors)[0]]
                 for key, value in tree.items()]
        return {"__dict__": pairs}, tensors
    raise TypeError(f"a checkpoint cannot hold a {type(tree).__name__} at {path or '/'!r}; "
                    "convert it to a tensor, a number, a string or a container of them.")


def decode_tree(obj, tensors: dict):
    """Inverse of `encode_tree`: rebuild the tree from its JSON object and its tensors."""
    if isinstance(obj, list):
        return [decode_tree(item, tensors) for item in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(decode_tree(item, tensors) for item in obj["__tuple__"])
    return {decode_tree(key, tensors): decode_tree(value, tensors)
            for key, value in obj["__dict__"]}


def tree_digest(tree_json: str, tensors: dict) -> str:
    """sha256 (hex) of the tree's JSON text and of every tensor's name, dtype, shape and raw
    bytes, in name order: what a checkpoint file's header vouches for."""
    digest = hashlib.sha256(tree_json.encode())
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path, tree: dict) -> None:
    """Write `tree` (see the module docstring) to `path` atomically as one safetensors file."""
    obj, tensors = encode_tree(tree)
    tree_json = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    metadata = {"format": CHECKPOINT_FORMAT, "version": str(CHECKPOINT_VERSION),
                "sha256": tree_digest(tree_json, tensors), "tree": tree_json}
    payload = save_tensors(tensors, metadata=metadata)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _read_metadata(path: str, data: bytes) -> dict:
    """The `__metadata__` of a safetensors file's header, or a CheckpointError."""
    if len(data) < 8:
        raise CheckpointError(f"{path!r} is not a checkpoint: {len(data)} bytes, shorter than "
                              "a safetensors header (the file is truncated or empty).")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(len(data) - 8, _HEADER_LIMIT):
        raise CheckpointError(f"{path!r} is truncated or not a safetensors file: its header "
                              f"claims {size} bytes and the file holds {len(data) - 8}.")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError as exc:
        raise CheckpointError(f"{path!r}: unreadable safetensors header ({exc}).") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path!r} is not a latentkit checkpoint (no "
                              f"{CHECKPOINT_FORMAT!r} header); was it written by "
                              "Trainer(checkpoint_path=...)?")
    if metadata.get("version") != str(CHECKPOINT_VERSION):
        raise CheckpointError(f"{path!r} has checkpoint format version "
                              f"{metadata.get('version')!r}; this latentkit reads version "
                              f"{CHECKPOINT_VERSION}.")
    return metadata


def load_checkpoint(path) -> dict:
    """Read and verify a checkpoint written by `save_checkpoint`; returns its tree (tensors
    on the CPU). Raises CheckpointError for a missing, truncated, tampered or foreign file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path!r}: {exc.strerror}.") from None
    metadata = _read_metadata(path, data)
    try:
        tensors = load_tensors(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path!r}: damaged tensor data ({exc}).") from None
    tree_json = metadata.get("tree", "")
    if tree_digest(tree_json, tensors) != metadata.get("sha256"):
        raise CheckpointError(f"{path!r} failed its integrity check (sha256 of its contents "
                              "differs from the one recorded when it was written): the file "
                              "was modified or damaged; resume from another checkpoint.")
    try:
        return decode_tree(json.loads(tree_json), tensors)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path!r}: malformed checkpoint tree ({exc}).") from None


__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "decode_tree",
           "encode_tree", "load_checkpoint", "save_checkpoint", "tree_digest"]
