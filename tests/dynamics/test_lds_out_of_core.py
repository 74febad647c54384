"""LinearDynamicalSystem.fit on sequences on disk: a 3-D (n_seq, T, p) `.npy` (path or
np.memmap) or Zarr array (path or zarr.Array) is read lazily in chunks of whole sequences
(`_em.StoredSequenceSource`) and the fit equals the in-memory fit; the input is validated
as in memory (inf names its sequence and step; a column never observed is an error)."""

import numpy as np
import pytest
import zarr

from helpers import traced_peak
from latentkit import ConvergenceWarning
from latentkit.dynamics import LinearDynamicalSystem, simulate
from latentkit.dynamics._em import SequenceBatch, StoredSequenceSource
from latentkit.exceptions import InvalidInputError
from lds_truth import random_params

pytestmark = pytest.mark.filterwarnings(f"ignore::{ConvergenceWarning.__module__}."
                                        f"{ConvergenceWarning.__name__}")

#: 4 sequences of 25 steps per chunk: 40 sequences make 10 chunks
OPTIONS = dict(state_dim=2, random_state=0, max_iter=6, tol=0.0, chunk_size=100)
FITTED = ("transition_matrix_", "transition_offset_", "observation_matrix_",
          "observation_offset_", "transition_covariance_", "observation_covariance_",
          "initial_state_mean_", "initial_state_covariance_")


def sequences(n_seq=40, T=25, p=3, seed=0):
    """(n_seq, T, p) draws of a random stable system, 10% of the entries missing."""
    rng = np.random.default_rng(seed)
    X, _ = simulate(random_params(2, p, seed), T, n_seq, rng)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def on_disk(form, tmp_path, X):
    """X as the form a user hands fit: a .npy path or memmap, a Zarr path or array (Zarr
    chunks of 7 sequences: not aligned with the model's chunks of 4)."""
    if form.startswith("npy"):
        path = tmp_path / "X.npy"
        np.save(path, X)
        return str(path) if form == "npy path" else np.load(path, mmap_mode="r")
    store = zarr.create_array(store=str(tmp_path / "X.zarr"), shape=X.shape, dtype=X.dtype,
                              chunks=(7,) + X.shape[1:], overwrite=True)
    store[...] = X
    return str(tmp_path / "X.zarr") if form == "zarr path" else store


FORMS = ["npy path", "npy memmap", "zarr path", "zarr array"]


@pytest.mark.parametrize("form", FORMS)
def test_fit_on_disk_equals_the_in_memory_fit(tmp_path, form):
    X = sequences()
    in_memory = LinearDynamicalSystem(**OPTIONS).fit(X)
    streamed = LinearDynamicalSystem(**OPTIONS).fit(on_disk(form, tmp_path, X))
    assert len(streamed.history_) == len(in_memory.history_) == 6
    np.testing.assert_allclose(streamed.history_, in_memory.history_, rtol=1e-10)
    for name in FITTED:
        np.testing.assert_allclose(getattr(streamed, name), getattr(in_memory, name),
                                   rtol=1e-10, atol=1e-12, err_msg=name)
    assert streamed.n_features_in_ == 3


@pytest.mark.parametrize("form", ["npy memmap", "zarr array"])
def test_float32_on_disk_fits_in_float32_like_in_memory(tmp_path, form):
    X = sequences(seed=1).astype(np.float32)
    in_memory = LinearDynamicalSystem(**OPTIONS).fit(X)
    streamed = LinearDynamicalSystem(**OPTIONS).fit(on_disk(form, tmp_path, X))
    assert streamed.transition_matrix_.dtype == np.float32
    np.testing.assert_allclose(streamed.history_, in_memory.history_, rtol=1e-10)
    np.testing.assert_allclose(streamed.observation_matrix_, in_memory.observation_matrix_,
                               rtol=1e-6, atol=1e-7)


def test_one_sequence_on_disk_is_read_whole_and_fits_as_in_memory(tmp_path):
    X = sequences(n_seq=1, T=120)[0]
    in_memory = LinearDynamicalSystem(**OPTIONS).fit(X)
    streamed = LinearDynamicalSystem(**OPTIONS).fit(on_disk("npy path", tmp_path, X))
    np.testing.assert_allclose(streamed.history_, in_memory.history_, rtol=1e-10)


class RecordingArray:
    """An array on disk stand-in that records every slice read from it."""

    def __init__(self, X):
        self.X, self.shape, self.dtype, self.reads = X, X.shape, X.dtype, []

    def __getitem__(self, rows):
        self.reads.append((rows.start, rows.stop))
        return self.X[rows]


def test_the_source_reads_whole_sequences_a_chunk_at_a_time():
    X = sequences(n_seq=10, T=25)
    array = RecordingArray(X)
    source = StoredSequenceSource(array, np.float64, steps_per_chunk=60)  # 2 per chunk
    chunks = list(source)
    assert all(isinstance(c, SequenceBatch) for c in chunks)
    assert array.reads == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    np.testing.assert_array_equal(np.concatenate([c.X for c in chunks]), X)
    assert source.n_samples == 250 and sum(len(c) for c in chunks) == 250


def test_init_sample_takes_whole_sequences_within_the_row_budget():
    X = sequences(n_seq=10, T=25)
    source = StoredSequenceSource(X, np.float64, steps_per_chunk=60)
    every = source.init_sample(250, np.random.default_rng(0))
    assert len(every) == 10 and all(np.array_equal(a, b, equal_nan=True)
                                    for a, b in zip(every, X))
    some = source.init_sample(100, np.random.default_rng(0))  # 100 steps: 4 sequences
    picked = [next(i for i in range(10) if np.array_equal(s, X[i], equal_nan=True))
              for s in some]
    assert len(picked) == 4 and picked == sorted(set(picked))


@pytest.mark.parametrize("form", ["npy memmap", "zarr array"])
def test_inf_is_an_error_naming_the_sequence_and_step_as_in_memory(tmp_path, form):
    X = sequences()
    X[17, 9, 1] = np.inf
    with pytest.raises(InvalidInputError) as in_memory:
        LinearDynamicalSystem(**OPTIONS).fit(X)
    with pytest.raises(InvalidInputError, match=r"sequence 17\) contains inf at row 9, "
                                                r"column 1") as streamed:
        LinearDynamicalSystem(**OPTIONS).fit(on_disk(form, tmp_path, X))
    assert str(streamed.value) == str(in_memory.value)


def test_a_column_never_observed_is_an_error(tmp_path):
    X = sequences()
    X[:, :, 2] = np.nan
    with pytest.raises(InvalidInputError, match="column 2 of X is entirely missing"):
        LinearDynamicalSystem(**OPTIONS).fit(on_disk("npy path", tmp_path, X))


def test_bad_paths_and_shapes_are_errors_naming_the_fix(tmp_path):
    model = LinearDynamicalSystem(**OPTIONS)
    with pytest.raises(InvalidInputError, match=r"\.npy file or a \.zarr store"):
        model.fit(str(tmp_path / "X.csv"))
    with pytest.raises(InvalidInputError, match="cannot memory-map"):
        model.fit(str(tmp_path / "absent.npy"))
    with pytest.raises(InvalidInputError, match="no Zarr store at .*check the path"):
        model.fit(str(tmp_path / "absent.zarr"))
    with pytest.raises(InvalidInputError, match=r"shape \(0, 25, 3\)"):
        model.fit(on_disk("zarr array", tmp_path, np.zeros((0, 25, 3))))
    fitted = LinearDynamicalSystem(**OPTIONS, warm_start=True).fit(sequences())
    with pytest.raises(InvalidInputError, match="have 2 features but 3 are expected"):
        fitted.fit(on_disk("npy memmap", tmp_path, sequences(p=2)))


def test_peak_memory_is_bounded_by_the_chunk_not_the_store(tmp_path, monkeypatch):
    """EM over a 12.8 MB Zarr array (2000 sequences of 100 steps, p = 8) in chunks of 20
    sequences (2000 steps): the traced peak (numpy and zarr's decoders report to
    tracemalloc) is the E-step's temporaries of one chunk (about 60 floats per step with
    n = 2: ~1 MB), a Zarr read (3 blocks of 7 sequences) and the init sample (10
    sequences, set below), far below the array: the bound is a quarter of it, 3.2 MB."""

    monkeypatch.setenv("LATENTKIT_NUM_THREADS", "1")  # one chunk computed at a time
    monkeypatch.setattr(LinearDynamicalSystem, "_max_init_rows", 1000)
    rng = np.random.default_rng(3)
    n_seq, T, p = 2000, 100, 8
    store = zarr.create_array(store=str(tmp_path / "big.zarr"), shape=(n_seq, T, p),
                              dtype="f8", chunks=(7, T, p))
    for start in range(0, n_seq, 500):
        store[start:start + 500] = rng.normal(size=(500, T, p)).cumsum(axis=1)
    model = LinearDynamicalSystem(2, random_state=0, max_iter=1, tol=0.0, chunk_size=2000)
    model.fit(store[:10])  # compile the kernels first: numba's compiler allocates ~20 MB
    peak = traced_peak(model.fit, store)
    assert model.n_iter_ == 1
    assert peak < store.nbytes / 4, f"peak {peak / 1e6:.1f} MB"
