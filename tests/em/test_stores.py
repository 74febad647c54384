"""Out-of-core stores (`latentkit.em.stores`): a Zarr array and a Parquet file feed EM the
very chunks an in-memory array would, so a fit from a store equals the in-memory fit; each
chunk is validated as it is read; peak memory is bounded by the chunk size, not the file."""


import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr

from helpers import traced_peak
from latentkit import em
from latentkit.bayesnet import DiscreteBayesNet
from latentkit.em import stores
from latentkit.em.stores import ParquetSource, ZarrSource, store_source
from latentkit.exceptions import InvalidInputError
from latentkit.linear import PPCA, FactorAnalysis
from latentkit.mixture import BernoulliMixture, CategoricalMixture, GaussianMixture, MixtureOfPPCA

FORMATS = ["zarr", "parquet"]
#: the fits below run a fixed number of iterations (tol=0)
pytestmark = pytest.mark.filterwarnings("ignore::latentkit.ConvergenceWarning")


@pytest.fixture(autouse=True)
def stores_stream(monkeypatch):
    """Route stores through `store_source` as `em.as_source` / `em.is_streaming` will
    (the lead wires them; until then the model's `fit` reaches them through these)."""
    as_source, is_streaming = em.as_source, em.is_streaming

    def routed(data, *, chunk_rows, allow_nan):
        source = store_source(data, chunk_rows=chunk_rows, allow_nan=allow_nan)
        return source if source is not None else as_source(data, chunk_rows=chunk_rows,
                                                           allow_nan=allow_nan)

    def streams(data):
        return isinstance(data, zarr.Array) or str(data).endswith(
            (".zarr", ".parquet", ".pq")) or is_streaming(data)

    monkeypatch.setattr(em, "as_source", routed)
    monkeypatch.setattr(em, "is_streaming", streams)


def write_zarr(path, X, chunk_rows=37):
    """X : (n, D) as a Zarr array at `path`, chunked (chunk_rows, D) (rows deliberately not
    aligned with the model's chunks)."""
    store = zarr.create_array(store=str(path), shape=X.shape, dtype=X.dtype,
                              chunks=(chunk_rows,) + X.shape[1:], overwrite=True)
    store[...] = X
    return str(path)


def write_parquet(path, X, row_group_size=41):
    """X : (n, D) as a Parquet file, one column per feature (NaN written as null)."""
    columns = {f"x{j}": pa.array(X[:, j], from_pandas=True) for j in range(X.shape[1])}
    pq.write_table(pa.table(columns), str(path), row_group_size=row_group_size)
    return str(path)


def stored(form, tmp_path, X):
    if form == "zarr":
        return write_zarr(tmp_path / "X.zarr", X)
    return write_parquet(tmp_path / "X.parquet", X)


# -- the chunks ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMATS)
def test_chunks_are_the_array_row_blocks_and_init_sample_the_same_rows(tmp_path, form):
    X = np.random.default_rng(0).normal(size=(250, 3))
    source = store_source(stored(form, tmp_path, X), chunk_rows=1, allow_nan=False)
    source.chunk_rows = 64  # set after construction, as the model does
    chunks = list(source)
    assert [len(c) for c in chunks] == [64, 64, 64, 58]
    np.testing.assert_array_equal(np.concatenate(chunks), X)
    assert (source.n_samples, source.n_features, source.dtype) == (250, 3, np.float64)
    # a subset: the rows rng picks, as an in-memory source draws them with the same seed
    rows = np.sort(np.random.default_rng(5).choice(250, size=40, replace=False))
    np.testing.assert_array_equal(source.init_sample(40, np.random.default_rng(5)), X[rows])
    np.testing.assert_array_equal(source.init_sample(1000, np.random.default_rng(5)), X)


def test_zarr_decodes_each_zarr_chunk_once_per_pass(tmp_path, monkeypatch):
    X = np.arange(600.0).reshape(200, 3)
    source = ZarrSource(write_zarr(tmp_path / "a.zarr", X, chunk_rows=7), chunk_rows=10,
                        allow_nan=False)
    assert source.block_rows() == 14  # two Zarr chunks cover a 10-row chunk
    tall = ZarrSource(write_zarr(tmp_path / "b.zarr", X, chunk_rows=100), chunk_rows=10,
                      allow_nan=False)
    reads = []
    real = stores.read_rows
    monkeypatch.setattr(stores, "read_rows", lambda a, start, stop: reads.append(
        (start, stop)) or real(a, start, stop))
    chunks = list(tall)
    assert [len(c) for c in chunks] == [10] * 20
    np.testing.assert_array_equal(np.concatenate(chunks), X)
    assert reads == [(0, 100), (100, 200)]  # each 100-row Zarr chunk read (decoded) once


def test_parquet_records_names_reads_nulls_as_nan_and_keeps_float32(tmp_path):
    table = pa.table({"b": pa.array([1.5, None, 3.0], pa.float32()),
                      "a": pa.array([2.0, 4.0, None], pa.float32())})
    pq.write_table(table, tmp_path / "t.pq")
    source = store_source(tmp_path / "t.pq", chunk_rows=2, allow_nan=True)
    assert isinstance(source, ParquetSource)
    assert list(source.feature_names) == ["b", "a"]  # file order
    assert source.dtype == np.float32
    np.testing.assert_array_equal(np.concatenate(list(source)),
                                  np.array([[1.5, 2.0], [np.nan, 4.0], [3.0, np.nan]]))
    ints = tmp_path / "i.parquet"
    pq.write_table(pa.table({"k": pa.array([1, None], pa.int64()),
                             "f": pa.array([0.5, 1.0], pa.float32())}), ints)
    source = store_source(ints, chunk_rows=4, allow_nan=True)
    assert source.dtype == np.float64  # an int column: not all float32
    np.testing.assert_array_equal(next(iter(source)), [[1.0, 0.5], [np.nan, 1.0]])


def test_store_source_is_none_for_other_input(tmp_path):
    assert store_source(np.zeros((3, 2)), chunk_rows=1, allow_nan=False) is None
    assert store_source(str(tmp_path / "x.npy"), chunk_rows=1, allow_nan=False) is None


# -- fits from a store equal fits from memory ----------------------------------------------


def gaussian_data(rng, n=400, D=4):
    return np.concatenate([rng.normal(size=(n // 2, D)), rng.normal(size=(n // 2, D)) + 3])


def binary_data(rng, n=400, D=6):
    return (rng.random((n, D)) < np.where(np.arange(n)[:, None] < n // 2, 0.2, 0.8)) * 1.0


def code_data(rng, n=400, D=4):
    z = rng.random(n) < 0.4
    return np.where(z[:, None], rng.integers(0, 2, (n, D)), rng.integers(1, 3, (n, D))) * 1.0


def latent_class_net():
    observed = ["a", "b", "c", "d"]
    return DiscreteBayesNet(edges=[("class", v) for v in observed],
                            cardinalities={"class": 2, **dict.fromkeys(observed, 3)},
                            hidden=["class"], random_state=0, max_iter=8, tol=0.0)


COMMON = dict(random_state=0, max_iter=8, tol=0.0, chunk_size=64)
CASES = {
    "gmm": (lambda: GaussianMixture(2, **COMMON), gaussian_data, ("means_", "covariances_")),
    "bernoulli": (lambda: BernoulliMixture(2, **COMMON), binary_data, ("means_", "weights_")),
    "categorical": (lambda: CategoricalMixture(2, **COMMON), code_data,
                    ("probs_", "weights_")),
    "mppca": (lambda: MixtureOfPPCA(2, n_latent=1, **COMMON), gaussian_data,
              ("means_", "components_", "noise_variance_")),
    "ppca": (lambda: PPCA(2, solver="em", **COMMON), gaussian_data,
             ("components_", "noise_variance_")),
    "fa": (lambda: FactorAnalysis(2, solver="em", **COMMON), gaussian_data,
           ("components_", "noise_variance_")),
    "bayesnet": (latent_class_net, code_data, ("cpt_values_",)),
}


def assert_same_fit(streamed, in_memory, attributes):
    np.testing.assert_allclose(streamed.history_, in_memory.history_, rtol=1e-10)
    assert len(streamed.history_) == len(in_memory.history_) > 1
    for name in attributes:
        expected = getattr(in_memory, name)
        np.testing.assert_allclose(getattr(streamed, name), expected, rtol=1e-10, atol=1e-12,
                                   err_msg=name)
        assert getattr(streamed, name).dtype == expected.dtype


@pytest.mark.parametrize("form", FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_from_a_store_equals_the_in_memory_fit(tmp_path, form, case):
    make, data, attributes = CASES[case]
    X = data(np.random.default_rng(1))
    X[[3, 50, 51], [0, 1, 2]] = np.nan  # missing entries: every model here marginalizes
    X[120] = np.nan  # and a row with nothing observed
    in_memory = make().fit(X)
    assert_same_fit(make().fit(stored(form, tmp_path, X)), in_memory, attributes)


@pytest.mark.parametrize("form", FORMATS)
def test_float32_store_fits_in_float32_like_float32_in_memory(tmp_path, form):
    X = gaussian_data(np.random.default_rng(2)).astype(np.float32)
    in_memory = GaussianMixture(2, **COMMON).fit(X)
    streamed = GaussianMixture(2, **COMMON).fit(stored(form, tmp_path, X))
    assert streamed.means_.dtype == np.float32
    np.testing.assert_allclose(streamed.history_, in_memory.history_, rtol=1e-6)
    np.testing.assert_allclose(streamed.means_, in_memory.means_, rtol=1e-5, atol=1e-6)


def test_a_zarr_array_object_fits_like_its_path(tmp_path):
    X = gaussian_data(np.random.default_rng(3))
    path = write_zarr(tmp_path / "X.zarr", X)
    by_path = GaussianMixture(2, **COMMON).fit(path)
    by_array = GaussianMixture(2, **COMMON).fit(zarr.open_array(path, mode="r"))
    np.testing.assert_array_equal(by_array.history_, by_path.history_)


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMATS)
def test_inf_is_an_error_naming_its_row(tmp_path, form):
    X = gaussian_data(np.random.default_rng(4))
    X[333, 2] = np.inf
    with pytest.raises(InvalidInputError, match="inf at row 333, column 2"):
        GaussianMixture(2, **COMMON).fit(stored(form, tmp_path, X))


@pytest.mark.parametrize("form", FORMATS)
def test_a_column_missing_in_every_row_is_an_error(tmp_path, form):
    X = gaussian_data(np.random.default_rng(5))
    X[:, 1] = np.nan
    with pytest.raises(InvalidInputError, match="column 1 of data is entirely missing"):
        GaussianMixture(2, **COMMON).fit(stored(form, tmp_path, X))


def test_missing_paths_are_errors_naming_the_path(tmp_path):
    for name in ("absent.zarr", "absent.parquet"):
        with pytest.raises(InvalidInputError, match=f"no .* at .*{name}.*check the path"):
            GaussianMixture(2).fit(str(tmp_path / name))


@pytest.mark.parametrize("shape", [(50,), (10, 5, 2)])
def test_a_zarr_array_that_is_not_2d_is_refused(tmp_path, shape):
    path = write_zarr(tmp_path / "X.zarr", np.ones(shape), chunk_rows=10)
    with pytest.raises(InvalidInputError, match=r"must be 2-D .*shape \(" + str(shape[0])):
        GaussianMixture(2).fit(path)


def test_a_zarr_group_must_hold_one_array(tmp_path):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("X", shape=(40, 2), dtype="f8")[...] = np.ones((40, 2))
    group.create_array("y", shape=(40,), dtype="f8")
    with pytest.raises(InvalidInputError, match=r"holds 2 arrays .*zarr.open\("):
        GaussianMixture(2).fit(str(tmp_path / "g.zarr"))


def test_a_string_column_in_parquet_is_an_error_naming_it(tmp_path):
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0], "city": ["Oslo", "Lima"]}), path)
    with pytest.raises(InvalidInputError, match="column 'city' has type string.*Drop"):
        GaussianMixture(1).fit(str(path))


# -- memory -------------------------------------------------------------------------------


def test_peak_memory_is_a_few_chunks_not_the_store(tmp_path, monkeypatch):
    """A GMM fit on a Zarr store 40 chunks long (51 MB), read in chunks of 1.28 MB. The
    traced peak (numpy reports its buffers to tracemalloc, and so do zarr's decoders) must
    stay below 10 chunks, a quarter of the store: the engine's chunks in flight (with one
    thread, the first two of a pass and the current one: 3), one Zarr read (the compressed
    bytes, the decoded bytes and the block: 3), the E-step's temporaries (about 2.5 chunks,
    as measured on a memory-mapped .npy whose chunks are not traced) and, at the start,
    the init sample (2 chunks, set below) with k-means' work on it."""
    monkeypatch.setenv("LATENTKIT_NUM_THREADS", "1")  # one chunk computed at a time
    rows, D, n_chunks = 10_000, 16, 40
    chunk_bytes = rows * D * 8
    rng = np.random.default_rng(6)
    path = str(tmp_path / "big.zarr")
    store = zarr.create_array(store=path, shape=(n_chunks * rows, D), dtype="f8",
                              chunks=(rows, D))
    for i in range(n_chunks):
        store[i * rows:(i + 1) * rows] = rng.normal(size=(rows, D)) + (i % 2) * 3
    monkeypatch.setattr(GaussianMixture, "_max_init_rows", 2 * rows)
    model = GaussianMixture(2, covariance_type="diag", random_state=0, max_iter=2, tol=0.0,
                            chunk_size=rows)
    peak = traced_peak(model.fit, path)
    assert model.n_iter_ == 2
    assert peak < 10 * chunk_bytes, f"peak {peak / chunk_bytes:.1f} chunks"


def test_a_parquet_fit_keeps_the_column_names_and_checks_them_later(tmp_path):
    """The file's column names become feature_names_in_ (as a DataFrame's would), and a later
    stream with other columns is refused, not silently scored."""
    X = np.random.default_rng(0).normal(size=(120, 3))
    write_parquet(tmp_path / "a.parquet", X)
    names = list(pq.read_schema(tmp_path / "a.parquet").names)
    model = GaussianMixture(2, random_state=0).fit(str(tmp_path / "a.parquet"))
    assert list(model.feature_names_in_) == names
    pq.write_table(pa.table({f"other{j}": X[:, j] for j in range(3)}), tmp_path / "b.parquet")
    model.warm_start = True
    with pytest.raises(InvalidInputError, match="not those GaussianMixture was fitted on"):
        model.fit(str(tmp_path / "b.parquet"))
    refit = GaussianMixture(2, random_state=0).fit(str(tmp_path / "b.parquet"))
    assert list(refit.feature_names_in_) == [f"other{j}" for j in range(3)]
