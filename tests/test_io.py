"""Safe persistence: round trips, corrupted and foreign files, atomic writes, no pickle."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import latentkit
from latentkit import _io_files
from latentkit._io_codec import header_checksum
from latentkit.base import LatentModel
from latentkit.io import ModelFileError, load, register_model, registered_models, save


@register_model
class ToyModel(LatentModel):
    """A diagonal Gaussian whose score_samples depends on every kind of stored attribute."""

    def __init__(self, shift=0.0, means_init=None, names=("a", "b"), callbacks=None,
                 random_state=None):
        self.shift = shift
        self.means_init = means_init
        self.names = names
        self.callbacks = callbacks
        self.random_state = random_state

    def fit(self, X, y=None):
        X = self._validate_X(X, reset=True)
        offset = 0 if self.means_init is None else np.asarray(self.means_init, dtype=X.dtype)
        self.mean_ = X.mean(axis=0) + offset
        self.scale_ = X.std(axis=0) + 1
        self.counts_ = np.array([len(X), 2 * len(X)], dtype=np.int32)
        self.positive_ = self.mean_ > 0
        self.n_iter_ = 3
        self.lower_bound_ = -1.5
        self.converged_ = True
        self.stop_reason_ = "tol"
        self.history_ = [1.0, 2.0, 3.5]
        self.grid_ = (2, 3)
        self.nothing_ = None
        self.temperature_ = np.float32(0.5)
        return self

    def _after_load(self):
        self._loaded = True

    def score_samples(self, X):
        X = self._validate_X(X, reset=False)
        z = (X - self.mean_ - self.shift) / self.scale_
        extra = self.lower_bound_ * self.n_iter_ + sum(self.history_) + self.positive_.sum()
        return (-0.5 * (z**2).sum(axis=1) - np.log(self.scale_).sum() + extra
                + self.temperature_ * self.counts_[0] / self.grid_[1])


class Unregistered(ToyModel):
    pass


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(20, 2))


@pytest.fixture
def saved(tmp_path, X):
    path = tmp_path / "model.npz"
    save(ToyModel().fit(X), path)
    return path


def fitted_attributes(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def assert_same_model(a, b):
    assert type(a) is type(b)
    attrs_a, attrs_b = fitted_attributes(a), fitted_attributes(b)
    assert attrs_a.keys() == attrs_b.keys()
    for name, value in attrs_a.items():
        assert type(attrs_b[name]) is type(value), name
        if isinstance(value, np.ndarray):
            assert attrs_b[name].dtype == value.dtype, name
        np.testing.assert_array_equal(attrs_b[name], value, err_msg=name)


# -- zip surgery ----------------------------------------------------------------------------


def rewrite_members(path, replace=None, drop=()):
    """Rewrite the zip at `path` with members replaced ({member: bytes}) or dropped."""
    replace = replace or {}
    with zipfile.ZipFile(path) as src:
        items = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, content in items:
            if name not in drop:
                dst.writestr(name, replace.get(name, content))


def npy_bytes(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def read_header(path):
    with np.load(path) as npz:
        return json.loads(npz["__header__"].tobytes())


def write_header(path, header, forge=True):
    """Replace the header; `forge`: recompute its checksum as a forger would."""
    if forge:
        header = {**header, "header_checksum": header_checksum(header)}
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    rewrite_members(path, {"__header__.npy": npy_bytes(raw)})


def edit_header(path, forge=True, **changes):
    """Change header entries; by default with the header checksum recomputed, so that what
    is tested is the validation behind it."""
    write_header(path, {**read_header(path), **changes}, forge=forge)


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_identical(tmp_path, X, dtype):
    X = X.astype(dtype)
    model = ToyModel(shift=0.25).fit(X)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert_same_model(model, loaded)
    assert loaded.mean_.dtype == dtype
    assert loaded.get_params() == model.get_params()
    assert loaded._loaded
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_method_save_and_feature_names(tmp_path, X):
    frame = pd.DataFrame(X, columns=["height", "weight"])
    model = ToyModel().fit(frame)
    model.save(str(tmp_path / "m.npz"))
    loaded = load(str(tmp_path / "m.npz"))
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == ["height", "weight"]
    assert_same_model(model, loaded)
    np.testing.assert_array_equal(loaded.score_samples(frame), model.score_samples(frame))


def test_array_hyper_parameter_round_trip(tmp_path, X):
    means_init = np.array([0.5, -1.0], dtype=np.float32)
    model = ToyModel(means_init=means_init, names=("x", "y"), random_state=3).fit(X)
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.means_init.dtype == np.float32
    np.testing.assert_array_equal(loaded.means_init, means_init)
    assert loaded.names == ("x", "y") and loaded.random_state == 3
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_path_is_used_as_given_and_overwritten(tmp_path, X):
    path = tmp_path / "model.lk"
    save(ToyModel().fit(X), path)
    save(ToyModel(shift=2.0).fit(X), path)
    assert os.listdir(tmp_path) == ["model.lk"]
    assert load(path).shift == 2.0


def test_header_content(saved):
    with np.load(saved, allow_pickle=False) as npz:
        header = json.loads(npz["__header__"].tobytes())
        members = set(npz.files)
    assert header["format"] == "latentkit-model" and header["format_version"] == 2
    assert header["header_checksum"] == header_checksum(header)
    assert header["library_version"] == latentkit.__version__
    assert header["class"] == "ToyModel"
    assert header["params"]["shift"] == 0.0
    assert header["fitted"]["mean_"] == {"type": "ndarray", "dtype": "<f8", "shape": [2]}
    assert set(header["checksums"]) == members - {"__header__"}
    assert "fitted/mean_" in members and "fitted/nothing_" not in members


# -- what cannot be saved ---------------------------------------------------------------------


def test_unfitted_model_is_an_error(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted"):
        save(ToyModel(), tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_unregistered_class_is_an_error(tmp_path, X):
    with pytest.raises(TypeError, match="not registered"):
        save(Unregistered().fit(X), tmp_path / "m.npz")
    assert "ToyModel" in registered_models()


def test_unsaveable_hyper_parameters_warn_and_load_as_none(tmp_path, X):
    model = ToyModel(callbacks=[lambda *args: None],
                     random_state=np.random.default_rng(0)).fit(X)
    with pytest.warns(UserWarning) as record:
        save(model, tmp_path / "m.npz")
    messages = " ".join(str(w.message) for w in record)
    assert "'callbacks'" in messages and "'random_state'" in messages
    loaded = load(tmp_path / "m.npz")
    assert loaded.callbacks is None and loaded.random_state is None
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


@pytest.mark.parametrize("value", [{"a": 1}, np.array([object()]), [[1, 2]], lambda: 0])
def test_unsupported_fitted_attribute_is_a_type_error(tmp_path, X, value):
    model = ToyModel().fit(X)
    model.extra_ = value
    with pytest.raises(TypeError, match="'extra_'"):
        save(model, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# -- atomic writes ----------------------------------------------------------------------------


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, X, monkeypatch):
    path = tmp_path / "m.npz"
    save(ToyModel().fit(X), path)
    before = path.read_bytes()

    def failing_write(file, arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr("latentkit.io._write_npz", failing_write)
    with pytest.raises(OSError, match="disk full"):
        save(ToyModel(shift=1.0).fit(X), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    with pytest.raises(OSError, match="disk full"):
        save(ToyModel().fit(X), tmp_path / "new.npz")
    assert os.listdir(tmp_path) == ["m.npz"]


def test_the_temporary_name_is_recognized_only_for_its_target():
    name = _io_files.temp_name("model.npz")
    assert _io_files.is_temp_name(name, "model.npz")
    assert not _io_files.is_temp_name(name, "model.np")
    assert not _io_files.is_temp_name(".model.npz.x.tmp", "model.npz")
    long = "m" * 300 + ".npz"
    assert len(_io_files.temp_name(long)) < 255
    assert _io_files.is_temp_name(_io_files.temp_name(long), long)


def test_latentkit_exports_the_error():
    assert latentkit.ModelFileError is ModelFileError
    assert ModelFileError.__module__ == "latentkit.io"
    assert issubclass(ModelFileError, ValueError)


# -- rejected files -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.npz")


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or not a latentkit model file"):
        load(saved)


@pytest.mark.parametrize("content", [b"", b"hello, not a model", b"\x80\x04K\x01."])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="truncated or not a latentkit model file"):
        load(path)


def test_foreign_npz_and_npy(tmp_path):
    np.savez(tmp_path / "foreign.npz", weights=np.arange(3))
    with pytest.raises(ModelFileError, match="not a latentkit model file"):
        load(tmp_path / "foreign.npz")
    np.save(tmp_path / "single.npy", np.arange(3))
    with pytest.raises(ModelFileError, match="not a latentkit model file"):
        load(tmp_path / "single.npy")


def test_flipped_byte_in_array_data_is_caught(saved):
    with zipfile.ZipFile(saved) as zf:
        data = bytearray(zf.read("fitted/mean_.npy"))
    data[-1] ^= 0x01  # the last byte of the last element: a valid zip member, wrong values
    rewrite_members(saved, {"fitted/mean_.npy": bytes(data)})
    with pytest.raises(ModelFileError, match="corrupted or tampered"):
        load(saved)


def test_any_flipped_byte_loads_identically_or_raises(saved, X):
    """Damage anywhere (zip structure, deflate streams, header, data) is a ModelFileError;
    flips that load (zip timestamps and other unused metadata) give the identical model."""
    original_bytes, reference = saved.read_bytes(), load(saved)
    for position in range(0, len(original_bytes), 5):
        damaged = bytearray(original_bytes)
        damaged[position] ^= 0xFF
        saved.write_bytes(bytes(damaged))
        try:
            loaded = load(saved)
        except ModelFileError:
            continue
        assert_same_model(reference, loaded)
        np.testing.assert_array_equal(loaded.score_samples(X), reference.score_samples(X))


def test_missing_array(saved):
    rewrite_members(saved, drop=("fitted/scale_.npy",))
    with pytest.raises(ModelFileError, match="missing.*fitted/scale_"):
        load(saved)


def test_unknown_class(saved):
    edit_header(saved, **{"class": "os.system"})
    with pytest.raises(ModelFileError, match="not a registered.*known classes: .*ToyModel"):
        load(saved)


def test_newer_format_version(saved):
    edit_header(saved, format_version=3)
    with pytest.raises(ModelFileError, match="written by a newer latentkit.*upgrade"):
        load(saved)


def test_invalid_fitted_name_in_header(saved):
    with np.load(saved) as npz:
        fitted = json.loads(npz["__header__"].tobytes())["fitted"]
    edit_header(saved, fitted={**fitted, "__class__": {"type": "none"}})
    with pytest.raises(ModelFileError, match="invalid fitted attribute name"):
        load(saved)


# -- no pickle, ever --------------------------------------------------------------------------

UNPICKLED = []


class Payload:
    """Records that it was unpickled: an attack would run arbitrary code here instead."""

    def __reduce__(self):
        return UNPICKLED.append, ("code ran",)


def test_object_array_is_rejected_without_unpickling(saved):
    malicious = npy_bytes(np.array([Payload()], dtype=object), allow_pickle=True)
    rewrite_members(saved, {"fitted/mean_.npy": malicious})
    with pytest.raises(ModelFileError, match="corrupted or tampered"):
        load(saved)
    assert UNPICKLED == []


def test_round_trip_never_calls_pickle(saved, monkeypatch, X):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("load", "loads", "dump", "dumps", "Unpickler", "Pickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    save(load(saved), saved)
    assert load(saved).score_samples(X).shape == (20,)


# -- records and the per-model persistence hook ---------------------------------------------

from typing import NamedTuple  # noqa: E402

from latentkit.io import register_record  # noqa: E402


@register_record
class Floor(NamedTuple):
    level: float
    shift: np.ndarray
    inner: object = None


class Unlisted(NamedTuple):
    level: float


@register_model
class WeightsModel(LatentModel):
    """Keeps its 'weights' in a dict, as a torch module keeps a state_dict: it hands them to
    `save` as arrays through the persistence hook, and gets them back through `load`."""

    def __init__(self, width=2):
        self.width = width

    def fit(self, X, y=None):
        self._weights = {"layer.weight": np.arange(self.width * 3.0).reshape(self.width, 3),
                         "layer.bias": np.ones(self.width, dtype=np.float32)}
        self.state_ = Floor(0.5, np.array([1.0, 2.0]), Floor(0.25, np.zeros(1)))
        self.is_fitted_ = True
        return self

    def _saved_state(self):
        arrays = {f"w_{name.replace('.', '_')}": value for name, value in self._weights.items()}
        return {**arrays, "state_": self.state_, "is_fitted_": True}

    def _restore_state(self, state):
        self._weights = {name[2:].replace("_", "."): state[name] for name in state
                         if name.startswith("w_")}
        self.state_, self.is_fitted_ = state["state_"], state["is_fitted_"]


def test_the_persistence_hook_saves_and_restores_what_the_model_chooses(tmp_path):
    model = WeightsModel(width=3).fit(None)
    model.save(tmp_path / "w.npz")
    loaded = load(tmp_path / "w.npz")
    assert loaded._weights.keys() == model._weights.keys()
    for name, value in model._weights.items():
        np.testing.assert_array_equal(loaded._weights[name], value)
        assert loaded._weights[name].dtype == value.dtype
    assert type(loaded.state_) is Floor and type(loaded.state_.inner) is Floor
    assert loaded.state_.level == 0.5 and loaded.state_.inner.level == 0.25
    np.testing.assert_array_equal(loaded.state_.shift, [1.0, 2.0])


def test_records_are_stored_field_by_field_and_rebuilt_only_as_registered_classes(tmp_path):
    path = tmp_path / "w.npz"
    WeightsModel().fit(None).save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert "fitted/state_/shift" in npz.files and "fitted/state_/inner/shift" in npz.files
    edit_header(path, fitted={"state_": {"type": "record", "class": "os.system",
                                         "fields": {}}, "is_fitted_": {"type": "bool"}})
    with pytest.raises(ModelFileError, match="unknown record 'os.system'"):
        load(path)


def test_an_unregistered_record_cannot_be_saved(tmp_path, X):
    model = ToyModel().fit(X)
    model.extra_ = Unlisted(1.0)
    with pytest.raises(TypeError, match="extra_"):
        model.save(tmp_path / "m.npz")
