"""A model file is validated before it is used (issue 12).

Hostile or damaged files: the header is covered by a checksum, so an edit is "modified or
damaged"; a forger who recomputes every checksum meets the validation behind it
(hyper-parameters, fitted attributes' types and shapes, one test use). Every rejection is a
ModelFileError naming the file. And a save killed mid-write leaves a temporary file that
the next save of the same path removes.
"""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile

import numpy as np
import pytest

from latentkit import _io_files
from latentkit._io_codec import array_checksum, header_checksum
from latentkit._io_schemas import DEFAULT_SCHEMAS, Fitted
from latentkit.base import LatentModel
from latentkit.io import FORMAT_VERSION, ModelFileError, load, register_model, save
from latentkit.mixture.gaussian import GaussianMixture
from latentkit.registry import registered_specs

SPECS = registered_specs()


# -- crafting files -------------------------------------------------------------------------


def members_of(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info.filename) for info in zf.infolist()}


def write_members(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def read_header(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(npz["__header__"].tobytes())


def write_header(path, header: dict, *, forge: bool) -> None:
    """Replace the header; `forge` recomputes its checksum, as a forger would."""
    if forge:
        header = {**header, "header_checksum": header_checksum(header)}
    members = members_of(path)
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    members["__header__.npy"] = npy_bytes(raw)
    write_members(path, members)


def edit_header(path, edit, *, forge: bool) -> None:
    """Apply `edit` (header dict -> None) to the file's header and write it back."""
    header = read_header(path)
    edit(header)
    write_header(path, header, forge=forge)


def forge_array(path, name: str, array: np.ndarray, desc: dict | None = None) -> None:
    """Replace member `name` (e.g. "fitted/means_") by `array`, with its description, its
    checksum and the header checksum all recomputed: a consistent forgery."""
    header = read_header(path)
    members = members_of(path)
    members[f"{name}.npy"] = npy_bytes(array)
    write_members(path, members)
    header["checksums"][name] = array_checksum(array)
    section, _, attribute = name.partition("/")
    table = header["fitted"] if section == "fitted" else header["param_types"]
    if "/" not in attribute:
        entry = desc or {**table[attribute], "dtype": array.dtype.str,
                         "shape": list(array.shape)}
        table[attribute] = entry
    write_header(path, header, forge=True)


@pytest.fixture
def gmm_file(tmp_path):
    X = np.random.default_rng(0).normal(size=(120, 2))
    model = GaussianMixture(3, covariance_type="full", random_state=0).fit(X)
    path = tmp_path / "gmm.npz"
    save(model, path)
    return path, model, X


# -- round trips of every registered model --------------------------------------------------


def saved_example(name: str, path):
    """(model, X): the registry spec's example problem, fitted and saved to `path`."""
    kwargs, X = SPECS[name].example(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SPECS[name].cls(**kwargs).fit(X)
    save(model, path)
    return model, X


@pytest.mark.parametrize("name", list(SPECS))
def test_every_registered_model_round_trips_with_identical_scores(tmp_path, name):
    model, X = saved_example(name, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert type(loaded) is type(model)
    assert loaded.get_params().keys() == model.get_params().keys()
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_a_format_version_1_file_still_loads(gmm_file):
    """Files of the previous version carry no header checksum; they load, validated."""
    path, model, X = gmm_file
    header = read_header(path)
    del header["header_checksum"]
    write_header(path, {**header, "format_version": 1}, forge=False)
    np.testing.assert_array_equal(load(path).score_samples(X), model.score_samples(X))
    # without a header checksum, the validation still stops an inconsistent edit
    header["params"]["covariance_type"] = "diag"
    write_header(path, {**header, "format_version": 1}, forge=False)
    with pytest.raises(ModelFileError, match="covariances_"):
        load(path)


def test_a_newer_format_is_refused_with_a_clear_message(gmm_file):
    path, _, _ = gmm_file
    write_header(path, {**read_header(path), "format_version": FORMAT_VERSION + 1},
                 forge=True)
    with pytest.raises(ModelFileError, match="newer latentkit.*upgrade"):
        load(path)


# -- the header checksum ----------------------------------------------------------------------


@pytest.mark.parametrize("edit", [
    lambda h: h["params"].update(covariance_type="diag"),
    lambda h: h["params"].update(reg_covar=0.5),
    lambda h: h.update({"class": "BernoulliMixture"}),
    lambda h: h["fitted"]["n_iter_"].update(type="float"),
    lambda h: h.update(library_version="0.0.1"),
    lambda h: h.pop("header_checksum"),
])
def test_any_edit_of_the_header_is_detected(gmm_file, edit):
    path, _, _ = gmm_file
    edit_header(path, edit, forge=False)
    with pytest.raises(ModelFileError, match=r"gmm\.npz' has been modified or damaged"):
        load(path)


def test_non_json_constants_in_the_header_are_refused(gmm_file):
    path, _, _ = gmm_file
    edit_header(path, lambda h: h["params"].update(reg_covar=float("nan")), forge=False)
    with pytest.raises(ModelFileError, match="no valid header"):
        load(path)


# -- forgeries with every checksum recomputed: the validation -------------------------------


def test_covariance_type_edited_full_to_diag(gmm_file):
    path, _, _ = gmm_file
    header = read_header(path)
    header["params"]["covariance_type"] = "diag"
    write_header(path, header, forge=True)
    with pytest.raises(ModelFileError,
                       match=r"gmm\.npz.*'covariances_'.*shape \(3, 2, 2\).*\(3, 2\)"):
        load(path)


@pytest.mark.parametrize("params, match", [
    ({"covariance_type": "bogus"}, "invalid hyper-parameters.*covariance_type"),
    ({"n_components": -1}, "invalid hyper-parameters.*n_components"),
    ({"reg_covar": "a lot"}, "invalid hyper-parameters.*reg_covar"),
    ({"n_components": 2}, "'weights_'.*shape"),
    ({"no_such_parameter": 1}, "rejects the saved hyper-parameters"),
])
def test_hyper_parameters_are_validated_as_fit_validates_them(gmm_file, params, match):
    path, _, _ = gmm_file
    header = read_header(path)
    header["params"].update(params)
    write_header(path, header, forge=True)
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_means_of_the_wrong_shape(gmm_file):
    path, model, _ = gmm_file
    forge_array(path, "fitted/means_", np.zeros((3, 3)))
    with pytest.raises(ModelFileError, match=r"gmm\.npz.*'means_' \(member 'fitted/means_'\)"
                                             r" has shape \(3, 3\)"):
        load(path)


@pytest.mark.parametrize("array, match", [
    (np.array([0.5, np.nan, 0.5]), "'weights_'.*NaN or inf"),
    (np.array([1, 0, 0]), "'weights_'.*dtype int64, expected a float array"),
    (np.array([-0.5, 1.0, 0.5]), "'weights_'.*below 0"),
    (np.array(["a", "b", "c"]), "'weights_'.*dtype <U1"),
])
def test_fitted_arrays_of_the_wrong_kind_or_values(gmm_file, array, match):
    path, _, _ = gmm_file
    forge_array(path, "fitted/weights_", array)
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_a_fitted_entry_of_the_wrong_type(gmm_file):
    """The header says means_ is a tuple (or n_iter_ a str): rebuilt as described, it fails
    the validation instead of failing in use."""
    path, _, _ = gmm_file
    header = read_header(path)
    header["fitted"]["weights_"]["type"] = "tuple"
    write_header(path, header, forge=True)
    with pytest.raises(ModelFileError, match="'weights_'.*is a tuple, expected a float array"):
        load(path)
    forge_array(path, "fitted/n_iter_", np.array("five"),
                desc={"type": "str", "dtype": "<U4", "shape": []})
    with pytest.raises(ModelFileError, match="'n_iter_'.*dtype <U4, expected a integer"):
        load(path)


@pytest.mark.parametrize("desc", [
    "means", 3, {"type": "pickle"}, {"type": "ndarray"}, {"type": "int", "dtype": "<f8",
                                                           "shape": [3, 2]},
])
def test_malformed_descriptions_in_the_header(gmm_file, desc):
    path, _, _ = gmm_file
    edit_header(path, lambda h: h["fitted"].update(means_=desc), forge=True)
    with pytest.raises(ModelFileError, match=r"gmm\.npz.*'fitted/means_'"):
        load(path)


def test_a_missing_fitted_attribute(gmm_file):
    path, _, _ = gmm_file
    header = read_header(path)
    del header["fitted"]["covariances_"], header["checksums"]["fitted/covariances_"]
    members = members_of(path)
    del members["fitted/covariances_.npy"]
    write_members(path, members)
    write_header(path, header, forge=True)
    with pytest.raises(ModelFileError, match="'covariances_'.*is missing"):
        load(path)


def test_an_inconsistency_only_use_reveals_is_caught_by_the_test_use(tmp_path):
    """A Bayes net's flat CPT vector of the wrong length has a valid type and dtype; using
    the model fails, and load says so."""
    spec = SPECS["bayesnet"]
    kwargs, X = spec.example(np.random.default_rng(0))
    path = tmp_path / "net.npz"
    save(spec.cls(**kwargs).fit(X), path)
    forge_array(path, "fitted/cpt_values_", np.full(5, 0.5))
    with pytest.raises(ModelFileError, match=r"net\.npz.*fails when used"):
        load(path)


def test_an_unknown_class(gmm_file):
    path, _, _ = gmm_file
    write_header(path, {**read_header(path), "class": "os.system"}, forge=True)
    with pytest.raises(ModelFileError, match="'os.system', which is not a registered"):
        load(path)


# -- the members of the zip -------------------------------------------------------------------


def test_a_member_replaced_by_a_non_npy_blob(gmm_file):
    path, _, _ = gmm_file
    members = members_of(path)
    members["fitted/means_.npy"] = b"#!/bin/sh\nrm -rf ~\n"
    write_members(path, members)
    with pytest.raises(ModelFileError, match=r"member 'fitted/means_' is not a \.npy array"):
        load(path)


def test_a_member_that_is_not_npy_at_all(gmm_file):
    path, _, _ = gmm_file
    members = members_of(path)
    members["fitted/means_"] = members.pop("fitted/means_.npy")
    write_members(path, members)
    with pytest.raises(ModelFileError, match=r"not \.npy arrays: \['fitted/means_'\]"):
        load(path)


@pytest.mark.parametrize("forge", [False, True])
def test_extra_and_missing_members(gmm_file, forge):
    path, _, _ = gmm_file
    members = members_of(path)
    write_members(path, {**members, "fitted/extra_.npy": npy_bytes(np.zeros(2))})
    with pytest.raises(ModelFileError, match=r"unlisted arrays \['fitted/extra_'\]"):
        load(path)
    write_members(path, {k: v for k, v in members.items() if k != "fitted/precisions_.npy"})
    with pytest.raises(ModelFileError, match=r"missing arrays \['fitted/precisions_'\]"):
        load(path)


def test_a_duplicate_member(gmm_file):
    path, _, _ = gmm_file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("fitted/means_.npy", npy_bytes(np.zeros((3, 2))))
    with pytest.raises(ModelFileError, match="duplicate members"):
        load(path)


def test_a_member_of_a_dtype_latentkit_never_writes(gmm_file):
    path, _, _ = gmm_file
    forge_array(path, "fitted/means_", np.zeros((3, 2), dtype="datetime64[s]"))
    with pytest.raises(ModelFileError, match="'fitted/means_' has dtype datetime64"):
        load(path)


# -- every forged member of every model: a ModelFileError, or a model that works -------------


def variants(array: np.ndarray):
    """Forged replacements of a fitted array: cut, widened, re-typed, re-shaped."""
    if array.ndim:
        yield array[..., :-1] if array.shape[-1] > 1 else np.concatenate([array, array], -1)
        yield array[None]
        if array.size:
            yield array.reshape(-1)[:1].reshape(())
    else:
        yield array.reshape(1)
    if array.dtype.kind in "fc":
        yield array.astype(np.int64) if array.dtype.kind == "f" else array.real
        yield np.full_like(array, np.nan)
    elif array.dtype.kind in "iub":
        yield array.astype(np.float64)
        # a negative value, or for an unsigned array its largest
        yield np.full_like(array, np.iinfo(array.dtype).max if array.dtype.kind == "u" else -1)
    else:
        yield np.zeros(array.shape)


@pytest.mark.parametrize("name", list(SPECS))
def test_every_forged_member_is_rejected_or_harmless(tmp_path, name):
    path = tmp_path / "m.npz"
    model, X = saved_example(name, path)
    original = path.read_bytes()
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files if key.startswith("fitted/")}
    for member, array in arrays.items():
        for forged in variants(array):
            path.write_bytes(original)
            forge_array(path, member, forged)
            try:
                loaded = load(path)
            except ModelFileError as error:
                assert "m.npz" in str(error)
                continue
            with warnings.catch_warnings():  # loaded: it must work as a model
                warnings.simplefilter("ignore")
                loaded.score_samples(X)


# -- temporary files of killed saves ----------------------------------------------------------


def temp_files(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def old_file(path, content: bytes = b""):
    """`path` written with `content` and dated 2 x STALE_AFTER_S ago: a stale leftover."""
    path.write_bytes(content)
    old = time.time() - 2 * _io_files.STALE_AFTER_S
    os.utime(path, (old, old))
    return path


def test_a_stale_temporary_file_is_removed_by_the_next_save(gmm_file):
    path, model, _ = gmm_file
    old_file(path.parent / f".{path.name}.{'0' * 32}.tmp", b"PK\x03\x04 half a model")
    fresh = path.parent / f".{path.name}.{'1' * 32}.tmp"  # a save that is running now
    fresh.write_bytes(b"PK\x03\x04")
    other = old_file(path.parent / f".other.npz.{'2' * 32}.tmp")  # another target's
    mine = old_file(path.parent / f".{path.name}.notes.tmp")  # not our pattern: the user's
    save(model, path)
    assert temp_files(path.parent) == sorted([fresh.name, other.name, mine.name])


@pytest.mark.skipif(_io_files.fcntl is None, reason="flock is POSIX")
def test_a_temporary_file_a_live_save_holds_is_kept(gmm_file):
    import fcntl

    path, model, _ = gmm_file
    held = old_file(path.parent / f".{path.name}.{'3' * 32}.tmp", b"PK")
    with open(held, "rb") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        save(model, path)
        assert held.exists()
    save(model, path)  # the holder is gone: now it is stale
    assert not held.exists()


KILLED_SAVE = """
import sys, time
import numpy as np
import latentkit.io as io
from latentkit.mixture.gaussian import GaussianMixture

def stalled_write(file, arrays):
    file.write(b"PK\\x03\\x04" + bytes(4096))
    file.flush()
    print("writing", flush=True)
    time.sleep(600)

io._write_npz = stalled_write
X = np.random.default_rng(0).normal(size=(60, 2))
io.save(GaussianMixture(2, random_state=0).fit(X), sys.argv[1])
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_save_killed_with_sigkill_is_cleaned_up_by_the_next_save(gmm_file):
    path, model, X = gmm_file
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED_SAVE), str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        [temp] = temp_files(path.parent)
        old = time.time() - 2 * _io_files.STALE_AFTER_S
        os.utime(path.parent / temp, (old, old))
        save(model, path)  # the writer is alive and holds its lock: its file stays
        assert temp_files(path.parent) == [temp]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert temp_files(path.parent) == [temp]
    save(model, path)
    assert temp_files(path.parent) == []
    np.testing.assert_array_equal(load(path).score_samples(X), model.score_samples(X))


# -- the per-class hooks ----------------------------------------------------------------------


@register_model
class HookedModel(LatentModel):
    """States its fitted schema and its own consistency check, as a model class may."""

    def __init__(self, size=2):
        self.size = size

    def fit(self, X, y=None):
        X = self._validate_X(X, reset=True)
        self.centres_ = np.zeros((self.size, X.shape[1]))
        self.weights_ = np.full(self.size, 1 / self.size)
        return self

    def _fitted_schema(self):
        return {"centres_": Fitted("f", ("size", "n_features_in_")),
                "weights_": Fitted("f", ("size",), low=0)}

    def _check_fitted(self):
        if not np.isclose(self.weights_.sum(), 1):
            raise ValueError(f"weights_ must sum to 1; they sum to {self.weights_.sum()}")

    def score_samples(self, X):
        X = self._validate_X(X, reset=False)
        return -((X[:, None, :] - self.centres_) ** 2).sum(axis=(1, 2))


def test_a_model_s_own_schema_and_check_are_applied(tmp_path):
    path = tmp_path / "hooked.npz"
    HookedModel(3).fit(np.ones((4, 2))).save(path)
    assert load(path).centres_.shape == (3, 2)
    header = read_header(path)
    header["params"]["size"] = 2
    write_header(path, header, forge=True)
    with pytest.raises(ModelFileError, match=r"'centres_'.*\(size, n_features_in_\) = \(2, 2\)"):
        load(path)
    HookedModel(3).fit(np.ones((4, 2))).save(path)
    forge_array(path, "fitted/weights_", np.full(3, 0.5))
    with pytest.raises(ModelFileError, match="inconsistent fitted attributes: weights_ must"):
        load(path)


def test_every_default_schema_names_a_registered_class():
    """A renamed or moved class would silently lose its checks."""
    classes = {f"{s.cls.__module__}.{s.cls.__qualname__}" for s in SPECS.values()}
    assert set(DEFAULT_SCHEMAS) <= classes
