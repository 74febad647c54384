"""`latentkit fit` on out-of-core files (.zarr, .parquet, .npy) and on a Dask cluster
(`--dask local:2`): the same summary numbers and parameters as the in-memory fit of the same
numbers from a CSV, a log-likelihood that a brute-force mixture density confirms, the store
never read whole, and the one-line errors (a bad cluster spec, a model that does not fit on
Dask, dask missing, a criterion that needs the rows in memory)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from threadpoolctl import threadpool_limits

from helpers import assert_user_error, run_cli
from latentkit import load

pytest.importorskip("dask.array")
pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

#: the summary's numbers compared between two fits of the same data
SUMMARY_KEYS = ("rows", "mean_log_likelihood", "bic", "aic", "n_iter", "n_components")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """300 rows x 3 columns of three Gaussian clusters as a header-less CSV, a .npy file, a
    Zarr store in chunks of 64 rows and a Parquet file of columns a, b, c."""
    folder = tmp_path_factory.mktemp("stores")
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [0.0, 6.0, 2.0]])
    X = np.concatenate([rng.normal(c, 0.7, size=(100, 3)) for c in centres])
    paths = {"X": X, "csv": folder / "X.csv", "npy": folder / "X.npy",
             "zarr": folder / "X.zarr", "parquet": folder / "X.parquet"}
    np.savetxt(paths["csv"], X, delimiter=",", fmt="%.17g")
    np.save(paths["npy"], X)
    store = zarr.create_array(str(paths["zarr"]), shape=X.shape, chunks=(64, 3), dtype="f8")
    store[:] = X
    pd.DataFrame(X, columns=["a", "b", "c"]).to_parquet(paths["parquet"])
    return paths


def fit(capsys, data, out, *options) -> tuple[dict, object]:
    """(summary.json, the saved model) of `latentkit fit gmm DATA --out OUT OPTIONS`."""
    code, _, err = run_cli(["fit", "gmm", data, "--random-state", "0", "--out", out, "-q",
                            *options], capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    return summary, load(out / "model.npz")


def assert_same_fit(first, second, tol: float = 1e-10) -> None:
    """Two (summary, model) pairs agree: the summary's numbers to round-off, the mixture's
    weights, means and covariances to `tol`, the same figures."""
    (summary_a, model_a), (summary_b, model_b) = first, second
    for key in SUMMARY_KEYS:
        assert summary_b[key] == pytest.approx(summary_a[key], rel=1e-12, abs=0), key
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(model_b, name), getattr(model_a, name), rtol=0,
                                   atol=tol, err_msg=name)
    assert summary_b["figures"] == summary_a["figures"]


def brute_force_criteria(model, X) -> tuple[float, float, float]:
    """(mean log p(x), BIC, AIC) of a full-covariance mixture on X : (N, D), from scipy's
    densities and the free-parameter count (K - 1) + K D + K D (D + 1) / 2."""
    K, D = model.means_.shape
    log_joint = np.column_stack([
        math.log(w) + multivariate_normal(mu, cov).logpdf(X)
        for w, mu, cov in zip(model.weights_, model.means_, model.covariances_, strict=True)])
    total = float(np.sum(logsumexp(log_joint, axis=1)))
    free = (K - 1) + K * D + K * D * (D + 1) // 2
    n = len(X)
    return total / n, -2 * total + free * math.log(n), -2 * total + 2 * free


@pytest.fixture(scope="module")
def csv_fit(files, tmp_path_factory):
    """The in-memory reference: `latentkit fit gmm X.csv -k 2:4` (its summary and model)."""
    capsys = _NoCapture()
    return fit(capsys, files["csv"], tmp_path_factory.mktemp("csv"), "-k", "2:4")


class _NoCapture:
    """A stand-in for capsys in a module fixture (run_cli reads the output and drops it)."""

    def readouterr(self):
        return "", ""


@pytest.mark.parametrize("kind", ["zarr", "parquet", "npy"])
def test_a_store_fits_as_its_csv(files, csv_fit, tmp_path, capsys, kind):
    assert_same_fit(csv_fit, fit(capsys, files[kind], tmp_path / "run", "-k", "2:4"))


def test_the_streamed_summary_is_the_mixture_density(files, csv_fit, tmp_path, capsys):
    summary, model = fit(capsys, files["zarr"], tmp_path / "run", "-k", "2:4")
    mean, bic, aic = brute_force_criteria(model, files["X"])
    assert summary["mean_log_likelihood"] == pytest.approx(mean, rel=1e-10)
    assert summary["bic"] == pytest.approx(bic, rel=1e-10)
    assert summary["aic"] == pytest.approx(aic, rel=1e-10)
    assert summary["n_components"] == 3 and summary["rows"] == 300
    assert summary["selection"]["table"]["n_components"] == [2, 3, 4]


def test_a_store_is_never_read_whole(files, tmp_path, capsys, monkeypatch):
    """The regression: before, every DATA went through the in-memory table reader."""
    import latentkit.cli.loading as loading
    from latentkit.cli import scale

    def refuse(*args, **kwargs):
        raise AssertionError("DATA was read into memory")

    monkeypatch.setattr(loading, "load_data", refuse)
    monkeypatch.setattr(scale, "FIGURE_ROWS", 50)
    summary, _ = fit(capsys, files["npy"], tmp_path / "run", "-k", "3")
    assert summary["rows"] == 300  # the metrics cover every row, not the figures' sample
    assert "random sample of 50 rows" in summary["data"]


def test_a_table_option_reads_the_store_in_memory(files, tmp_path, capsys):
    summary, _ = fit(capsys, files["zarr"], tmp_path / "run", "-k", "3", "--max-rows", "120")
    assert summary["rows"] == 120 and summary["data"] == "X.zarr: 120 rows x 3 columns"


@pytest.mark.parametrize(("kind", "options"), [
    ("zarr", ("-k", "2:4", "--dask-chunk-rows", "70")),  # 5 uneven blocks, K chosen by BIC
    ("parquet", ("-k", "2:4")),
    ("npy", ("-k", "2:4", "--dask-chunk-rows", "128")),
])
def test_dask_fits_as_the_csv(files, csv_fit, tmp_path, capsys, monkeypatch, kind, options):
    from latentkit.distributed.source import DaskSource

    passes = []
    map_reduce = DaskSource.map_reduce
    monkeypatch.setattr(DaskSource, "map_reduce", lambda self, step, reduce=None: (
        passes.append(self.client) or map_reduce(self, step, reduce)))
    assert_same_fit(csv_fit, fit(capsys, files[kind], tmp_path / "run", "--dask", "local:2",
                                 *options))
    assert passes and all(client is not None for client in passes)  # E-steps on the cluster


def test_dask_on_a_csv_read_here(files, csv_fit, tmp_path, capsys):
    assert_same_fit(csv_fit, fit(capsys, files["csv"], tmp_path / "run", "--dask", "local:1",
                                 "-k", "2:4", "--dask-chunk-rows", "100"))


@pytest.mark.parametrize("spec", ["nonsense", "local:0", ""])
def test_a_bad_cluster_spec_is_a_usage_error(files, tmp_path, capsys, spec):
    assert_user_error(["fit", "gmm", files["zarr"], "--out", tmp_path, "--dask", spec],
                      capsys, "local:N")


def test_a_model_that_does_not_fit_on_dask_is_refused(files, tmp_path, capsys):
    line = assert_user_error(["fit", "pca", files["csv"], "--out", tmp_path, "--dask",
                              "local:2"], capsys, "does not fit on Dask", "Drop --dask")
    assert "gmm" in line  # the models that do are listed


def test_dask_missing_names_the_install(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    assert_user_error(["fit", "gmm", files["zarr"], "--out", tmp_path, "--dask", "local:2"],
                      capsys, 'pip install "latentkit[scale]"')


def test_heldout_needs_the_rows_in_memory(files, tmp_path, capsys):
    assert_user_error(["fit", "gmm", files["zarr"], "--out", tmp_path, "-k", "2:3",
                       "--criterion", "heldout"], capsys, "--criterion bic or aic")


def test_a_model_that_does_not_stream_reads_a_zarr_store_whole(files, tmp_path, capsys):
    from_csv = fit_pca(capsys, files["csv"], tmp_path / "csv")
    from_zarr = fit_pca(capsys, files["zarr"], tmp_path / "zarr")
    assert from_zarr["mean_log_likelihood"] == pytest.approx(from_csv["mean_log_likelihood"],
                                                             rel=1e-12)


def fit_pca(capsys, data, out) -> dict:
    code, _, err = run_cli(["fit", "pca", data, "-k", "2", "--out", out, "-q"], capsys)
    assert code == 0, err
    return json.loads((out / "summary.json").read_text())


def evaluate(capsys, *argv) -> dict:
    code, out, err = run_cli(["evaluate", *argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_evaluate_scores_a_store_in_chunks(files, tmp_path, capsys, monkeypatch):
    import latentkit.cli.loading as loading

    _, model = fit(capsys, files["csv"], tmp_path / "run", "-k", "3")
    from_csv = evaluate(capsys, tmp_path / "run", files["csv"])
    monkeypatch.setattr(loading, "load_data", None)  # a store is never read whole
    for kind in ("zarr", "npy", "parquet"):
        scores = evaluate(capsys, tmp_path / "run", files[kind])
        for key in ("rows", "mean_log_likelihood", "bic", "aic"):
            assert scores[key] == pytest.approx(from_csv[key], rel=1e-12), (kind, key)
    mean = brute_force_criteria(model, files["X"])[0]
    assert from_csv["mean_log_likelihood"] == pytest.approx(mean, rel=1e-10)


def test_evaluate_on_a_store_of_other_width_is_a_usage_error(files, tmp_path, capsys):
    fit(capsys, files["csv"], tmp_path / "run", "-k", "2")
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((5, 4)))
    assert_user_error(["evaluate", tmp_path / "run", wide], capsys, "4 columns",
                      "fitted on 3 columns")


def test_an_unreachable_scheduler_is_a_usage_error(files, tmp_path, capsys):
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert_user_error(["fit", "gmm", files["zarr"], "--out", tmp_path, "-k", "2",
                           "--dask", "tcp://127.0.0.1:9"], capsys, "cannot reach the scheduler",
                          "--dask local:N")
