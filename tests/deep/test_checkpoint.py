"""The no-pickle checkpoint format: exact round trips, integrity checks, atomic writes."""

import json
import math
import os
import struct

import pytest
import torch
from safetensors.torch import save as save_tensors

from latentkit.deep.checkpoint import (
    CheckpointError,
    decode_tree,
    encode_tree,
    load_checkpoint,
    save_checkpoint,
)


def _same(a, b) -> bool:
    """Structural equality, exact for tensors (dtype, shape, values) and NaN-aware."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    return type(a) is type(b) and a == b


def _tree():
    generator = torch.Generator().manual_seed(0)
    return {
        "ints": {0: 1, 7: -2**62}, "tuple": (0.9, 0.999), "floats": [math.inf, -math.inf,
                                                                      math.nan, 0.1 + 0.2],
        "none": None, "flag": True, "text": "a/b", "nested": {"a": [{"b": (1, "c")}]},
        "f32": torch.randn(3, 4, generator=generator),
        "f64": torch.randn(5, generator=generator, dtype=torch.float64),
        "bf16": torch.randn(2, 2, generator=generator).to(torch.bfloat16),
        "scalar": torch.tensor(3.0), "empty": torch.zeros(0, 3), "mask": torch.tensor(
            [True, False]), "rng": torch.get_rng_state(), "long": torch.arange(4),
    }


def test_round_trip_is_exact(tmp_path):
    tree = _tree()
    save_checkpoint(tmp_path / "c.safetensors", tree)
    assert _same(tree, load_checkpoint(tmp_path / "c.safetensors"))
    assert _same(tree, decode_tree(*encode_tree(tree)))


def test_optimizer_and_scheduler_states_reload_and_continue_identically(tmp_path):
    def setup():
        torch.manual_seed(0)
        module = torch.nn.Linear(3, 2)
        optimizer = torch.optim.Adam(module.parameters(), lr=0.1)
        return module, optimizer, torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)

    def step(module, optimizer, scheduler, seed):
        x = torch.randn(4, 3, generator=torch.Generator().manual_seed(seed))
        optimizer.zero_grad()
        module(x).pow(2).sum().backward()
        optimizer.step()
        scheduler.step(float(seed))

    a, opt_a, sched_a = setup()
    for seed in range(3):
        step(a, opt_a, sched_a, seed)
    save_checkpoint(tmp_path / "c", {"m": a.state_dict(), "o": opt_a.state_dict(),
                                     "s": sched_a.state_dict()})
    step(a, opt_a, sched_a, 3)
    b, opt_b, sched_b = setup()
    tree = load_checkpoint(tmp_path / "c")
    assert tree["s"]["mode_worse"] == math.inf and tree["o"]["param_groups"][0]["betas"] == (
        0.9, 0.999)
    b.load_state_dict(tree["m"])
    opt_b.load_state_dict(tree["o"])
    sched_b.load_state_dict(tree["s"])
    step(b, opt_b, sched_b, 3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert sched_a.state_dict() == sched_b.state_dict()


def test_tied_weights_are_saved(tmp_path):
    weight = torch.nn.Parameter(torch.randn(3, 3))
    save_checkpoint(tmp_path / "c", {"a": weight, "b": weight, "view": weight[0]})
    tree = load_checkpoint(tmp_path / "c")
    assert torch.equal(tree["a"], weight) and torch.equal(tree["view"], weight[0])


def _flip_byte(path, offset_from_end):
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def test_tampered_tensor_bytes_are_rejected(tmp_path):
    path = tmp_path / "c"
    save_checkpoint(path, {"w": torch.ones(100)})
    _flip_byte(path, 5)
    with pytest.raises(CheckpointError, match="integrity"):
        load_checkpoint(path)


def test_tampered_metadata_is_rejected(tmp_path):
    path = tmp_path / "c"
    save_checkpoint(path, {"epoch": 12345, "w": torch.ones(2)})
    data = path.read_bytes()
    assert data.count(b"12345") == 1
    path.write_bytes(data.replace(b"12345", b"12346"))  # same length: a valid header
    with pytest.raises(CheckpointError, match="integrity"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0, 5, 50, -10])
def test_truncated_file_is_rejected(tmp_path, keep):
    path = tmp_path / "c"
    save_checkpoint(path, {"w": torch.ones(100)})
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_foreign_files_are_rejected(tmp_path):
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(save_tensors({"w": torch.ones(2)}))
    with pytest.raises(CheckpointError, match="not a latentkit checkpoint"):
        load_checkpoint(plain)
    future = tmp_path / "future"
    future.write_bytes(save_tensors({"w": torch.ones(2)}, metadata={
        "format": "latentkit-checkpoint", "version": "99", "sha256": "", "tree": "{}"}))
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(future)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "missing")
    pickled = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, pickled)
    with pytest.raises(CheckpointError):
        load_checkpoint(pickled)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    path = tmp_path / "c"
    save_checkpoint(path, _tree())

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load / pickle called")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr("pickle.loads", forbidden)
    monkeypatch.setattr("pickle.load", forbidden)
    assert _same(load_checkpoint(path), _tree() | {"rng": load_checkpoint(path)["rng"]})


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    path = tmp_path / "c"
    save_checkpoint(path, {"w": torch.zeros(3)})
    with pytest.raises(TypeError, match="cannot hold a object"):
        save_checkpoint(path, {"w": torch.ones(3), "bad": object()})
    assert torch.equal(load_checkpoint(path)["w"], torch.zeros(3))  # the old one intact
    save_checkpoint(path, {"w": torch.ones(3)})
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["c"]


def test_header_holds_readable_json(tmp_path):
    path = tmp_path / "c"
    save_checkpoint(path, {"epoch": 3, "w": torch.ones(2)})
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8:8 + size])["__metadata__"]
    assert metadata["format"] == "latentkit-checkpoint" and len(metadata["sha256"]) == 64
    assert json.loads(metadata["tree"])["__dict__"][0] == ["epoch", 3]
