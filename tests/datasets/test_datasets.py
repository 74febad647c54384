"""Tests for latentkit.datasets: real loaders against the facts in shared/data/SOURCES.md,
the locate/verify/download path, and the synthetic generators' ground truth.

Monte Carlo checks use a fixed seed and a tolerance of 5 standard errors per quantity.
"""

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets

from latentkit import datasets
from latentkit.datasets import _paths, real
from latentkit.datasets.real import parse_amat, parse_idx

MC_SIGMAS = 5.0  # Monte Carlo tolerance, in standard errors


def _shared_file(relpath: str) -> Path:
    """The data file as the loaders would find it, or skip the test when it is absent."""
    for root in _paths.data_dirs():
        if (root / relpath).is_file():
            return root / relpath
    pytest.skip(f"{relpath} not available (see shared/data/SOURCES.md or set LATENTKIT_DATA)")


@pytest.fixture
def isolated_roots(tmp_path, monkeypatch):
    """An empty $LATENTKIT_DATA and user cache, both under tmp_path."""
    data, cache = tmp_path / "data", tmp_path / "xdg"
    data.mkdir()
    monkeypatch.setenv("LATENTKIT_DATA", str(data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return data, cache / "latentkit"


# -- real loaders ------------------------------------------------------------------------


def test_faithful_matches_sources():
    _shared_file(real._FAITHFUL.relpath)
    bunch = datasets.load_faithful()
    assert bunch.data.shape == (272, 2) and bunch.data.dtype == np.float64
    assert bunch.target is None and bunch.feature_names == ["eruptions", "waiting"]
    np.testing.assert_allclose(bunch.data.mean(axis=0), [3.48778, 70.8971], atol=5e-5)
    np.testing.assert_array_equal(bunch.data.min(axis=0), [1.6, 43])
    np.testing.assert_array_equal(bunch.data.max(axis=0), [5.1, 96])
    assert "Rdatasets" in bunch.DESCR
    X, y = datasets.load_faithful(return_X_y=True)
    assert y is None and np.array_equal(X, bunch.data)


def test_nile_matches_sources():
    _shared_file(real._NILE.relpath)
    bunch = datasets.load_nile()
    assert bunch.data.shape == (100, 1) and bunch.data.dtype == np.float64
    assert bunch.target is None and bunch.feature_names == ["volume"]
    assert bunch.data[0, 0] == 1120 and abs(bunch.data.mean() - 919.35) < 1e-9
    np.testing.assert_array_equal(bunch.years, np.arange(1871, 1971))
    X, y = datasets.load_nile(return_X_y=True)
    assert y is None and np.array_equal(X, bunch.data)


def test_macrodata_matches_sources():
    _shared_file(real._MACRODATA.relpath)
    bunch = datasets.load_macrodata()
    assert bunch.data.shape == (203, 12) and bunch.target is None
    assert bunch.feature_names[:3] == ["realgdp", "realcons", "realinv"]
    assert bunch.feature_names[-2:] == ["infl", "realint"]
    assert (bunch.year[0], bunch.quarter[0]) == (1959, 1)
    assert (bunch.year[-1], bunch.quarter[-1]) == (2009, 3)
    assert bunch.data[0, 0] == 2710.349 and "FRED" in bunch.DESCR


def test_mnist_train_matches_sources():
    _shared_file(real._MNIST["train-images-idx3"].relpath)
    X, y = datasets.load_mnist("train", return_X_y=True)
    assert X.shape == (60000, 784) and X.dtype == np.float32
    assert y.dtype == np.int64 and y[0] == 5
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    np.testing.assert_array_equal(np.bincount(y), counts)
    assert X.min() == 0.0 and X.max() == 1.0


def test_mnist_test_split_values_binarize_and_dtype():
    _shared_file(real._MNIST["t10k-images-idx3"].relpath)
    bunch = datasets.load_mnist("test", dtype=np.float64)
    X = bunch.data
    assert X.shape == (10000, 784) and X.dtype == np.float64 and bunch.target[0] == 7
    assert len(bunch.feature_names) == 784 and bunch.image_shape == (28, 28)
    assert "CC BY-SA 3.0" in bunch.DESCR
    # Values are p / 255 for integer p.
    scaled = X * 255
    assert np.abs(scaled - np.round(scaled)).max() < 1e-9
    binary = datasets.load_mnist("test", binarize=True).data
    assert binary.dtype == np.float32
    assert np.array_equal(binary, (X > 0.5).astype(np.float32))


def test_mnist_subset_is_deterministic_and_drawn_from_the_split():
    _shared_file(real._MNIST["t10k-images-idx3"].relpath)
    full = datasets.load_mnist("test")
    a = datasets.load_mnist("test", n_samples=200, random_state=3)
    b = datasets.load_mnist("test", n_samples=200, random_state=np.random.default_rng(3))
    c = datasets.load_mnist("test", n_samples=200, random_state=4)
    assert a.data.shape == (200, 784) and a.target.shape == (200,)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    rows = {row.tobytes() + bytes([label]) for row, label in zip(full.data, full.target)}
    assert all(row.tobytes() + bytes([label]) in rows for row, label in zip(a.data, a.target))
    assert len({row.tobytes() for row in a.data}) == 200  # without replacement


@pytest.mark.parametrize(
    "split, n_rows, fraction_of_ones",
    [("train", 50000, 0.1306), ("valid", 10000, 0.1311), ("test", 10000, 0.1325)],
)
def test_binarized_mnist_matches_sources(split, n_rows, fraction_of_ones):
    _shared_file(real._BINARIZED_MNIST[split].relpath)
    bunch = datasets.load_binarized_mnist(split)
    assert bunch.data.shape == (n_rows, 784) and bunch.data.dtype == np.float32
    n_ones = np.count_nonzero(bunch.data == 1)
    assert bunch.target is None and n_ones + np.count_nonzero(bunch.data == 0) == n_rows * 784
    assert abs(n_ones / (n_rows * 784) - fraction_of_ones) < 5e-5


def test_binarized_mnist_subset():
    _shared_file(real._BINARIZED_MNIST["test"].relpath)
    X, y = datasets.load_binarized_mnist("test", n_samples=50, random_state=0, return_X_y=True)
    again = datasets.load_binarized_mnist("test", n_samples=50, random_state=0).data
    assert X.shape == (50, 784) and y is None and np.array_equal(X, again)


@pytest.mark.parametrize(
    "name, shape, n_classes",
    [("load_digits", (1797, 64), 10), ("load_iris", (150, 4), 3), ("load_wine", (178, 13), 3)],
)
def test_sklearn_wrappers(name, shape, n_classes):
    bunch = getattr(datasets, name)()
    reference = getattr(sklearn.datasets, name)()
    assert bunch.data.shape == shape and bunch.data.dtype == np.float64
    assert bunch.target.dtype == np.int64 and len(np.unique(bunch.target)) == n_classes
    np.testing.assert_array_equal(bunch.data, reference.data)
    np.testing.assert_array_equal(bunch.target, reference.target)
    assert len(bunch.feature_names) == shape[1] and bunch.DESCR
    X, y = getattr(datasets, name)(return_X_y=True)
    assert np.array_equal(X, bunch.data) and np.array_equal(y, bunch.target)


# -- file formats --------------------------------------------------------------------------


def _idx_bytes(values: np.ndarray) -> bytes:
    header = np.array([0x800 | values.ndim, *values.shape], dtype=">u4").tobytes()
    return header + values.astype(np.uint8).tobytes()


def test_parse_idx_round_trip_and_errors():
    values = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(parse_idx(_idx_bytes(values), 3), values)
    with pytest.raises(ValueError, match="magic number is 0x00000803, expected 0x00000801"):
        parse_idx(_idx_bytes(values), 1)
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(_idx_bytes(values)[:-1], 3)
    with pytest.raises(ValueError, match="shorter than an IDX header"):
        parse_idx(b"\x00\x00", 3)


def test_parse_amat_round_trip_and_errors():
    pixels = np.random.default_rng(0).integers(0, 2, size=(3, 784), dtype=np.uint8)
    text = "".join(" ".join(map(str, row)) + "\n" for row in pixels).encode()
    np.testing.assert_array_equal(parse_amat(text), pixels)
    with pytest.raises(ValueError, match="whole number"):
        parse_amat(text[:-1])
    with pytest.raises(ValueError, match="'0'/'1'"):
        parse_amat(text.replace(b"1", b"2", 1))
    with pytest.raises(ValueError, match="'0'/'1'"):
        parse_amat(text.replace(b" ", b",", 1))


def test_unreadable_gzip_is_a_value_error(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"x" * 1000)[:-10])
    with pytest.raises(ValueError, match="not a readable gzip file"):
        real._read_gzip(path)


# -- locating, verifying, downloading ----------------------------------------------------


def test_corrupt_file_is_reported_not_skipped(isolated_roots):
    data, _ = isolated_roots
    source = _shared_file(real._FAITHFUL.relpath)
    target = data / real._FAITHFUL.relpath
    target.parent.mkdir(parents=True)
    shutil.copyfile(source, target)
    assert datasets.find_data_file(*real._FAITHFUL) == target  # LATENTKIT_DATA comes first
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0x01
    corrupt = target.with_suffix(".tmp")
    corrupt.write_bytes(bytes(raw))
    os.replace(corrupt, target)  # a new file, whatever the file system's mtime resolution
    actual = hashlib.sha256(raw).hexdigest()
    with pytest.raises(ValueError) as info:
        datasets.load_faithful()
    message = str(info.value)
    assert str(target) in message and real._FAITHFUL.sha256 in message and actual in message
    assert "Delete" in message and "downloaded again" in message


def test_truncated_mnist_file_is_a_value_error(isolated_roots):
    data, _ = isolated_roots
    source = _shared_file(real._MNIST["t10k-labels-idx1"].relpath)
    _shared_file(real._MNIST["t10k-images-idx3"].relpath)
    target = data / real._MNIST["t10k-labels-idx1"].relpath
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes()[:-100])
    with pytest.raises(ValueError, match="sha256"):
        datasets.load_mnist("test")


def test_digest_is_memoized_per_path_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"first")
    first = hashlib.sha256(b"first").hexdigest()
    assert _paths.file_sha256(path) == first

    def no_hashing(*args):
        raise AssertionError("re-hashed a file whose size and mtime did not change")

    monkeypatch.setattr(_paths.hashlib, "sha256", no_hashing)
    assert _paths.file_sha256(path) == first
    monkeypatch.undo()
    path.write_bytes(b"second, longer")
    assert _paths.file_sha256(path) == hashlib.sha256(b"second, longer").hexdigest()


def test_download_from_file_url(isolated_roots, tmp_path):
    _, cache = isolated_roots
    payload = os.urandom(3000)
    source = tmp_path / "upstream.bin"
    source.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    relpath = "latentkit-test/blob.bin"
    found = datasets.find_data_file(relpath, digest, source.as_uri())
    assert found == cache / relpath and found.read_bytes() == payload
    assert sorted(p.name for p in found.parent.iterdir()) == ["blob.bin"]  # no temp left
    assert datasets.find_data_file(relpath, digest) == found  # now found in the cache


def test_download_with_wrong_checksum_keeps_nothing(isolated_roots, tmp_path):
    _, cache = isolated_roots
    source = tmp_path / "upstream.bin"
    source.write_bytes(b"not what was published")
    with pytest.raises(ValueError, match="sha256 is .* expected 0{64}; the file was not saved"):
        datasets.find_data_file("latentkit-test/blob.bin", "0" * 64, source.as_uri())
    assert not (cache / "latentkit-test").exists()


def test_failed_download_is_file_not_found(isolated_roots, tmp_path):
    url = (tmp_path / "missing.bin").as_uri()
    with pytest.raises(FileNotFoundError, match="downloading it from .*missing.bin failed"):
        datasets.find_data_file("latentkit-test/blob.bin", "0" * 64, url)


def test_not_found_lists_every_place_looked(isolated_roots):
    data, cache = isolated_roots
    with pytest.raises(FileNotFoundError) as info:
        datasets.find_data_file("latentkit-test/nowhere.csv", "0" * 64)
    message = str(info.value)
    for root in _paths.data_dirs():
        assert str(root / "latentkit-test/nowhere.csv") in message
    assert str(data) in message and str(cache) in message and "LATENTKIT_DATA" in message


def test_cache_dir_honours_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert datasets.cache_dir() == tmp_path / "latentkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert datasets.cache_dir() == Path.home() / ".cache" / "latentkit"


# -- synthetic generators -----------------------------------------------------------------


def _assert_within_mc(estimate, truth, standard_error, what):
    excess = np.abs(np.asarray(estimate) - truth) / standard_error
    if np.any(excess > MC_SIGMAS):
        raise AssertionError(f"{what}: {excess.max():.1f} standard errors from the truth")


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_make_mixture_recovers_its_parameters(covariance_type):
    n, K, D = 30000, 3, 3
    weights = np.array([0.5, 0.3, 0.2])
    truth = datasets.make_mixture(
        n, K, D, covariance_type, separation=4.0, weights=weights, random_state=0
    )
    X, labels, means, covs = truth.X, truth.labels, truth.means, truth.covariances
    assert X.shape == (n, D) and labels.dtype == np.int64 and covs.shape == (K, D, D)
    assert np.array_equal(X, truth.X_complete) and np.array_equal(truth.weights, weights)
    frequencies = np.bincount(labels, minlength=K) / n
    _assert_within_mc(frequencies, weights, np.sqrt(weights * (1 - weights) / n), "weights")
    for k in range(K):
        Xk = X[labels == k]
        nk, var = len(Xk), np.diag(covs[k])
        _assert_within_mc(Xk.mean(axis=0), means[k], np.sqrt(var / nk), f"mean {k}")
        # Var of a sample covariance entry: (S_ij^2 + S_ii S_jj) / n for Gaussian data.
        se = np.sqrt((covs[k] ** 2 + np.outer(var, var)) / nk)
        _assert_within_mc(np.cov(Xk, rowvar=False), covs[k], se, f"covariance {k}")
    # Ground-truth structure, exactly.
    np.linalg.cholesky(covs)
    np.testing.assert_allclose(covs, np.swapaxes(covs, 1, 2))
    np.testing.assert_allclose(np.trace(covs, axis1=1, axis2=2).mean() / D, 1.0)
    pairwise = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(K, 1)]
    np.testing.assert_allclose(pairwise.mean(), 4.0)
    off_diagonal = covs[:, ~np.eye(D, dtype=bool)]
    if covariance_type in ("diag", "spherical"):
        assert np.all(off_diagonal == 0)
    else:
        assert np.all(np.abs(off_diagonal).max(axis=1) > 1e-3)
    if covariance_type == "spherical":
        np.testing.assert_allclose(covs, np.diagonal(covs, axis1=1, axis2=2)[:, :1, None]
                                   * np.eye(D))
    assert (covariance_type == "tied") == bool(np.all(covs == covs[0]))


def test_make_mixture_is_seeded():
    a = datasets.make_mixture(random_state=7)
    b = datasets.make_mixture(random_state=np.random.default_rng(7))
    c = datasets.make_mixture(random_state=8)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.covariances, b.covariances)
    assert not np.array_equal(a.X, c.X)
    single = datasets.make_mixture(100, n_components=1, random_state=0)
    assert np.all(single.means == 0) and np.all(single.labels == 0)


@pytest.mark.parametrize("missing_rate, n_features", [(0.2, 5), (0.9, 2)])
def test_make_mixture_missing_completely_at_random(missing_rate, n_features):
    n = 20000
    truth = datasets.make_mixture(
        n, n_features=n_features, missing_rate=missing_rate, random_state=1
    )
    missing = np.isnan(truth.X)
    assert not missing.all(axis=1).any()
    assert not np.isnan(truth.X_complete).any()
    np.testing.assert_array_equal(truth.X[~missing], truth.X_complete[~missing])
    # A row drawn all-missing gets one entry back: expected rate r - r**D / D.
    expected = missing_rate - missing_rate**n_features / n_features
    se = np.sqrt(expected * (1 - expected) / missing.size)
    _assert_within_mc(missing.mean(), expected, se, "missing rate")


def test_make_bernoulli_mixture_recovers_its_parameters():
    n, K, D = 30000, 3, 12
    weights = np.array([0.2, 0.3, 0.5])
    truth = datasets.make_bernoulli_mixture(n, K, D, weights=weights, random_state=0)
    X, labels, probs = truth.X, truth.labels, truth.probs
    assert X.shape == (n, D) and X.dtype == np.float64 and set(np.unique(X)) == {0.0, 1.0}
    assert probs.shape == (K, D) and probs.min() >= 0.05 and probs.max() <= 0.95
    frequencies = np.bincount(labels, minlength=K) / n
    _assert_within_mc(frequencies, weights, np.sqrt(weights * (1 - weights) / n), "weights")
    for k in range(K):
        Xk = X[labels == k]
        se = np.sqrt(probs[k] * (1 - probs[k]) / len(Xk))
        _assert_within_mc(Xk.mean(axis=0), probs[k], se, f"probs {k}")
    again = datasets.make_bernoulli_mixture(n, K, D, weights=weights, random_state=0)
    assert np.array_equal(X, again.X)


def test_make_categorical_mixture_recovers_its_parameters():
    n, K, n_categories = 30000, 3, [2, 3, 5, 1]
    truth = datasets.make_categorical_mixture(n, K, n_categories, random_state=0)
    X, labels, probs = truth.X, truth.labels, truth.probs
    assert X.shape == (n, 4) and X.dtype == np.float64 and np.array_equal(X, np.round(X))
    assert [p.shape for p in probs] == [(K, L) for L in n_categories]
    np.testing.assert_allclose(truth.weights, np.full(K, 1 / K))
    for j, L in enumerate(n_categories):
        assert X[:, j].min() >= 0 and X[:, j].max() <= L - 1
        np.testing.assert_allclose(probs[j].sum(axis=1), 1.0)
        for k in range(K):
            codes = X[labels == k, j].astype(int)
            frequencies = np.bincount(codes, minlength=L) / len(codes)
            se = np.sqrt(np.maximum(probs[j][k] * (1 - probs[j][k]), 1e-12) / len(codes))
            _assert_within_mc(frequencies, probs[j][k], se, f"column {j}, component {k}")


# -- bad arguments ------------------------------------------------------------------------

BAD_ARGUMENTS = [
    (datasets.load_mnist, {"split": "valid"}, "split"),
    (datasets.load_mnist, {"n_samples": 0}, "n_samples"),
    (datasets.load_mnist, {"n_samples": 2.5}, "n_samples"),
    (datasets.load_mnist, {"binarize": "yes"}, "binarize"),
    (datasets.load_mnist, {"dtype": np.int32}, "dtype"),
    (datasets.load_mnist, {"random_state": "seed"}, "random_state"),
    (datasets.load_binarized_mnist, {"split": "validation"}, "split"),
    (datasets.load_binarized_mnist, {"n_samples": -1}, "n_samples"),
    (datasets.load_iris, {"return_X_y": "yes"}, "return_X_y"),
    (datasets.make_mixture, {"n_samples": 0}, "n_samples"),
    (datasets.make_mixture, {"n_components": 0}, "n_components"),
    (datasets.make_mixture, {"n_features": 0}, "n_features"),
    (datasets.make_mixture, {"covariance_type": "block"}, "covariance_type"),
    (datasets.make_mixture, {"separation": -1.0}, "separation"),
    (datasets.make_mixture, {"missing_rate": 1.0}, "missing_rate"),
    (datasets.make_mixture, {"missing_rate": 0.1, "n_features": 1}, "missing_rate"),
    (datasets.make_mixture, {"weights": [0.5, 0.5]}, "weights"),
    (datasets.make_mixture, {"weights": [0.5, 0.6, -0.1]}, "weights"),
    (datasets.make_bernoulli_mixture, {"n_features": 0}, "n_features"),
    (datasets.make_bernoulli_mixture, {"random_state": -1}, "random_state"),
    (datasets.make_categorical_mixture, {"n_categories": []}, "n_categories"),
    (datasets.make_categorical_mixture, {"n_categories": [2, 0]}, "n_categories"),
    (datasets.make_categorical_mixture, {"n_categories": "abc"}, "n_categories"),
]


@pytest.mark.parametrize("function, kwargs, name", BAD_ARGUMENTS)
def test_bad_arguments_name_the_argument_and_the_value(function, kwargs, name):
    with pytest.raises(ValueError) as info:
        function(**kwargs)
    message = str(info.value)
    assert f"'{name}'" in message and repr(kwargs[name])[:20] in message


@pytest.mark.parametrize(
    "function, split, too_many",
    [(datasets.load_mnist, "test", 10001), (datasets.load_binarized_mnist, "valid", 10001)],
)
def test_n_samples_above_the_split_size(function, split, too_many):
    _shared_file("mnist/t10k-images-idx3-ubyte.gz" if split == "test" else
                 real._BINARIZED_MNIST[split].relpath)
    with pytest.raises(ValueError, match=r"'n_samples' must be an integer in \[1, 10000\]"):
        function(split, n_samples=too_many)
