"""The `latentkit` command line end to end: every subcommand in a temporary folder, every
input format, the one-line errors (exit status 2), the HTML report and the demo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from helpers import assert_png, assert_user_error, hide_datasets, run_cli
from latentkit.cli import main
from latentkit.cli.data import load_data, read_csv
from latentkit.cli.options import coerce, split_model_options
from latentkit.cli.report import Report, Section
from latentkit.registry import registered_specs


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def require_faithful():
    """Skip when Old Faithful (the gmm default data) is absent, as data tests do elsewhere."""
    from latentkit.datasets import load_faithful

    try:
        load_faithful()
    except FileNotFoundError:
        pytest.skip("Old Faithful is not available (no ../shared/data, cache or network)")


@pytest.fixture(scope="module")
def table():
    """A 3-cluster 2-D data set: X (150, 2)."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]])
    return np.concatenate([rng.normal(c, 0.7, size=(50, 2)) for c in centers])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, table):
    """A gmm fitted by the CLI on a headed CSV: (folder, csv path)."""
    folder = tmp_path_factory.mktemp("fitted")
    csv = folder / "data.csv"
    np.savetxt(csv, table, delimiter=",", header="height,width", comments="")
    assert main(["fit", "gmm", str(csv), "-k", "3", "--random-state", "0", "--out",
                 str(folder / "run"), "--quiet"]) == 0
    return folder / "run", csv


# -- fit ----------------------------------------------------------------------------------


def test_fit_default_data_writes_model_summary_and_figures(tmp_path, capsys):
    require_faithful()
    code, out, err = run_cli(["fit", "gmm", "-k", "2", "--n-init", "2", "--out", tmp_path], capsys)
    assert code == 0, err
    for label in ("model", "K (components)", "covariance type", "mean log-likelihood", "BIC",
                  "AIC", "iterations", "converged", "time (s)"):
        assert re.search(rf"^{re.escape(label)}\s", out, re.M), label
    assert "faithful" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_components"] == 2 and summary["params"]["n_init"] == 2
    assert summary["covariance_type"] == "full" and summary["rows"] == 272
    for name in ("density.png", "history.png"):
        assert_png(tmp_path / name)
    assert summary["figures"] == ["density.png", "history.png"]
    from latentkit.io import load

    model = load(tmp_path / "model.npz")
    assert model.n_components == 2 and model.n_init == 2


def test_fit_auto_k_draws_the_criterion_curve(tmp_path, capsys, fitted):
    _, csv = fitted
    code, out, err = run_cli(["fit", "gmm", csv, "-k", "auto", "--random-state", "0",
                          "--out", tmp_path], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["selection"]["criterion"] == "bic"
    assert summary["selection"]["table"]["n_components"] == list(range(1, 11))
    assert summary["n_components"] == 3  # three well separated clusters
    assert "K chosen by bic" in out
    assert_png(tmp_path / "criterion.png")


def test_fit_auto_heldout_without_k_uses_the_default(tmp_path, capsys):
    code, _, err = run_cli(["fit", "cmm", "--criterion", "heldout", "--random-state", "0",
                        "--max-rows", "120", "--out", tmp_path, "-q"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["selection"]["criterion"] == "heldout"
    assert "wine" in summary["data"] and "quantile bins" in summary["data"]


def test_fit_bmm_on_digits_shows_component_means(tmp_path, capsys):
    code, out, err = run_cli(["fit", "bmm", "digits", "-k", "6", "--max-iter", "15",
                          "--random-state", "0", "--max-rows", "400", "--out", tmp_path],
                         capsys)
    assert code == 0, err
    assert "binarized" in out and "adjusted Rand index" in out
    for name in ("projection.png", "means.png", "history.png"):
        assert_png(tmp_path / name, min_side=250)


@pytest.mark.parametrize("fmt", ["csv-header", "csv-plain", "npy", "npz", "npz-key", "parquet"])
def test_fit_reads_every_file_format(tmp_path, capsys, table, fmt):
    if fmt == "csv-header":
        path = tmp_path / "d.csv"
        path.write_text("a;b\n" + "\n".join(f"{x:.6f};{y:.6f}" for x, y in table))
    elif fmt == "csv-plain":
        path = tmp_path / "d.csv"
        np.savetxt(path, table, delimiter=",")
    elif fmt == "npy":
        path = tmp_path / "d.npy"
        np.save(path, table.astype(np.float32))
    elif fmt.startswith("npz"):
        path = tmp_path / "d.npz"
        np.savez(path, other=np.zeros((3, 5)), X=table) if fmt == "npz-key" else np.savez(
            path, X=table)
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        path = tmp_path / "d.parquet"
        pq.write_table(pa.table({"a": table[:, 0], "b": table[:, 1]}), path)
    extra = ["--key", "X"] if fmt == "npz-key" else []
    code, out, err = run_cli(["fit", "gmm", path, "-k", "2", *extra, "--out", tmp_path / "o"],
                         capsys)
    assert code == 0, err
    assert "150 rows x 2 columns" in out
    assert_png(tmp_path / "o" / "density.png")


def test_fit_with_missing_values_draws_the_imputed_projection(tmp_path, capsys, table):
    rng = np.random.default_rng(3)
    X = np.column_stack([table, table[:, 0] + rng.normal(0, 0.3, len(table))])
    X[rng.random(X.shape) < 0.1] = np.nan
    path = tmp_path / "holes.csv"
    path.write_text("\n".join(",".join("" if np.isnan(v) else f"{v:.5f}" for v in row)
                              for row in X) + "\n")
    code, out, err = run_cli(["fit", "gmm", path, "-k", "3", "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert_png(tmp_path / "o" / "projection.png")


def test_csv_header_detection_and_missing_cells(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("x,y,z\n1,2,3\n4,,NA\n\n7,8,9\n")
    data = read_csv(path)
    assert data.columns == ["x", "y", "z"] and data.X.shape == (4, 3)  # the empty line too
    assert np.isnan(data.X[1, 1]) and np.isnan(data.X[1, 2]) and data.X[3, 0] == 7
    assert np.isnan(data.X[2]).all()
    path.write_text("1,2\n3,4\n")
    assert read_csv(path).columns is None and read_csv(path).X.shape == (2, 2)
    path.write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(ValueError, match=r"line 3, column 2 \(b\): 'oops' is not a number"):
        read_csv(path)
    path.write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="line 2: 1 fields"):
        read_csv(path)


def test_image_arrays_keep_their_shape(tmp_path):
    path = tmp_path / "img.npy"
    np.save(path, np.zeros((4, 5, 6)))
    data = load_data(str(path))
    assert data.X.shape == (4, 30) and data.image_shape == (5, 6)


# -- evaluate, sample, impute, report -----------------------------------------------------


def test_evaluate(capsys, fitted):
    folder, csv = fitted
    code, out, err = run_cli(["evaluate", folder / "model.npz", csv], capsys)
    assert code == 0, err
    values = dict(re.findall(r"^(mean log-likelihood|BIC|AIC|rows)\s+(\S+)$", out, re.M))
    assert set(values) == {"mean log-likelihood", "BIC", "AIC", "rows"}
    assert values["rows"] == "150"
    summary = json.loads((folder / "summary.json").read_text())
    assert float(values["BIC"]) == pytest.approx(summary["bic"], abs=0.06)


def test_sample_csv_and_npy(tmp_path, capsys, fitted):
    folder, _ = fitted
    model = folder / "model.npz"
    code, out, _ = run_cli(["sample", model, "-n", "25", "--out", tmp_path / "s.csv",
                        "--random-state", "1", "--with-components"], capsys)
    assert code == 0 and "25 samples" in out
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "height,width,component" and len(lines) == 26  # the model's names
    assert run_cli(["sample", model, "-n", "25", "--out", tmp_path / "a.npy",
                "--random-state", "1"], capsys)[0] == 0
    assert run_cli(["sample", model, "-n", "25", "--out", tmp_path / "b.npy",
                "--random-state", "1"], capsys)[0] == 0
    first, second = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert first.shape == (25, 2)
    np.testing.assert_array_equal(first, second)  # the seed makes draws reproducible


def test_impute_fills_only_the_missing_cells(tmp_path, capsys, fitted, table):
    folder, _ = fitted
    holes = table.copy()
    holes[[3, 60, 120], [0, 1, 0]] = np.nan
    path = tmp_path / "holes.csv"
    lines = ["height,width"] + [",".join("" if np.isnan(v) else repr(float(v)) for v in row)
                                for row in holes]
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(["impute", folder / "model.npz", path, "--out", tmp_path / "f.csv"],
                         capsys)
    assert code == 0, err
    assert "imputed 3 missing values in 3 of 150 rows" in out
    completed = read_csv(tmp_path / "f.csv")
    assert completed.columns == ["height", "width"]
    assert not np.isnan(completed.X).any()
    observed = ~np.isnan(holes)
    np.testing.assert_allclose(completed.X[observed], holes[observed])
    # each filled value lies near its own cluster's centre, as E[x_missing | x_observed] does
    assert np.max(np.abs(completed.X[~observed] - table[~observed])) < 3.0


def test_report_references_existing_files(tmp_path, capsys, fitted):
    folder, csv = fitted
    code, out, err = run_cli(["report", folder / "model.npz", csv, "--out", tmp_path], capsys)
    assert code == 0, err
    page = (tmp_path / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert "density.png" in sources and "history.png" in sources
    for source in sources:
        assert_png(tmp_path / source)
    assert "Hyper-parameters" in page and "covariance_type" in page


def test_fit_page_references_existing_files(fitted):
    folder, _ = fitted
    page = (folder / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources, "the fit page shows no figure"
    for source in sources:
        assert (folder / source).is_file()
        assert_png(folder / source)


# -- errors -------------------------------------------------------------------------------


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, fitted, table):
    folder, csv = fitted
    model = folder / "model.npz"
    assert_user_error(["fit", "gmm", tmp_path / "nope.csv"], capsys, "no such file")
    assert_user_error(["fit", "gmm", "nosuchdataset"], capsys, "bundled datasets")
    assert_user_error(["fit", "hmm"], capsys, "unknown model 'hmm'", "gmm, bmm, cmm")
    line = assert_user_error(["fit", "gmm", "--colour", "red"], capsys, "--colour")
    assert "--covariance-type" in line and "--reg-covar" in line
    assert_user_error(["fit", "gmm", csv, "-k", "2", "--covariance-type", "banana", "--out",
                       tmp_path], capsys, "covariance_type", "banana")
    assert_user_error(["fit", "gmm", csv, "-k", "2", "--n-init", "many", "--out", tmp_path],
                      capsys, "n_init")
    assert_user_error(["fit", "gmm", "--tol"], capsys, "--tol needs a value")
    wide = tmp_path / "wide.csv"
    np.savetxt(wide, np.column_stack([table, table[:, :1]]), delimiter=",")
    assert_user_error(["evaluate", model, wide], capsys, "3 columns", "fitted on 2")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(model.read_bytes()[:200])
    assert_user_error(["evaluate", corrupt, csv], capsys, "corrupt.npz")
    assert_user_error(["evaluate", tmp_path / "missing.npz", csv], capsys, "no such model")
    assert_user_error(["sample", model, "-n", "3", "--out", tmp_path / "s.txt"], capsys,
                      ".csv or .npy")
    text = tmp_path / "words.csv"
    text.write_text("a,b\nx,y\n")
    assert_user_error(["fit", "gmm", text], capsys, "not a number")
    assert_user_error(["fit", "bmm", "iris"], capsys, "binary")


def _break_fit(monkeypatch, error):
    """Make GaussianMixture.fit raise `error`, as a bug inside latentkit would."""
    from latentkit.mixture.gaussian import GaussianMixture

    def broken(self, X, y=None):
        raise error

    monkeypatch.setattr(GaussianMixture, "fit", broken)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyError("boom"),
                                   ValueError("an internal check failed")])
def test_internal_errors_are_one_line_and_exit_1(tmp_path, capsys, monkeypatch, fitted,
                                                 error):
    _, csv = fitted
    monkeypatch.delenv("LATENTKIT_DEBUG", raising=False)
    _break_fit(monkeypatch, error)
    code, out, err = run_cli(["fit", "gmm", csv, "-k", "2", "--out", tmp_path], capsys)
    assert code == 1, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0] == (f"latentkit: internal error: {type(error).__name__}: {error} (this is "
                        f"a bug in latentkit; rerun with --debug for the traceback)")


@pytest.mark.parametrize("how", ["flag first", "flag last", "environment"])
def test_debug_prints_the_traceback(tmp_path, capsys, monkeypatch, fitted, how):
    _, csv = fitted
    _break_fit(monkeypatch, RuntimeError("boom"))
    argv = ["fit", "gmm", csv, "-k", "2", "--out", tmp_path]
    if how == "environment":
        monkeypatch.setenv("LATENTKIT_DEBUG", "1")
    else:
        monkeypatch.delenv("LATENTKIT_DEBUG", raising=False)
        argv = ["--debug", *argv] if how == "flag first" else [*argv, "--debug"]
    code, _, err = run_cli(argv, capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err and 'raise error' in err
    assert err.strip().splitlines()[-1].startswith("latentkit: internal error: RuntimeError")


def test_debug_shows_the_traceback_of_a_user_error_too(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LATENTKIT_DEBUG", raising=False)
    code, _, err = run_cli(["--debug", "fit", "gmm", tmp_path / "nope.csv"], capsys)
    assert code == 2 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1] == f"latentkit: error: no such file: {tmp_path}/nope.csv"


def test_user_mistakes_of_every_kind_exit_2(tmp_path, capsys, monkeypatch, fitted):
    from sklearn.exceptions import NotFittedError

    folder, csv = fitted
    monkeypatch.delenv("LATENTKIT_DEBUG", raising=False)
    assert_user_error(["fit", "gmm", csv, "--structure", tmp_path / "net.bif"], capsys,
                      "--structure is an option of bayesnet; gmm does not take it")
    assert_user_error(["fit", "lds", csv, "-k", "2"], capsys, "lds has no number of components")
    assert_user_error(["evaluate", tmp_path, csv], capsys)  # a folder, not a model file
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    assert_user_error(["evaluate", folder / "model.npz", empty], capsys, "is empty")
    _break_fit(monkeypatch, NotFittedError("This model is not fitted yet."))
    assert_user_error(["fit", "gmm", csv, "-k", "2", "--out", tmp_path / "o"], capsys,
                      "not fitted yet")


def test_usage_errors_exit_2(capsys):
    for argv in (["fit", "gmm", "-k", "two"], ["sample", "m.npz"], ["frobnicate"], []):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["fit", "evaluate", "sample", "impute", "predict",
                                     "transform", "forecast", "report", "demo"])
def test_every_subcommand_has_help(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: latentkit {command}") and len(out) > 300


def test_option_parsing_helpers():
    rest, options = split_model_options(
        ["gmm", "d.csv", "--tol=1e-4", "--n-init", "3", "-k", "2", "--out", "o", "--reg-covar",
         "-1"], {"--out", "-k", "--n-components"})
    assert rest == ["gmm", "d.csv", "-k", "2", "--out", "o"]
    assert options == {"tol": "1e-4", "n-init": "3", "reg-covar": "-1"}
    assert [coerce(v) for v in ("3", "1e-4", "true", "False", "none", "full")] == [
        3, 1e-4, True, False, None, "full"]
    assert type(coerce("3")) is int


def test_every_registered_model_has_a_default_dataset():
    from latentkit.base import EMModel
    from latentkit.cli.data import BUNDLED

    for spec in registered_specs().values():
        assert spec.cls.__name__ == spec.class_name
        assert spec.size_param not in spec.options()
        # restarts are an option of every model fitted by EM
        assert "n_init" in spec.options() or not issubclass(spec.cls, EMModel), spec.name
        # a bundled table, or data the spec's own reader knows (LDA's AP corpus)
        assert spec.default_data in BUNDLED or spec.read_data is not None, spec.name


# -- the report builder and the demo ------------------------------------------------------


def test_report_builder(tmp_path):
    from latentkit import plot

    outside = plot.save_figure(plot.plot_history([1.0, 2.0]), tmp_path / "elsewhere.png")
    inside = plot.save_figure(plot.plot_history([1.0, 3.0]), tmp_path / "out" / "in.png")
    report = Report("A <title>")
    report.add(Section("First", "Some `code` & text.\n\nNote: a warning.",
                       figures=[(inside, "inside")], tables=[[{"K": 2, "BIC": 1234.56}]]))
    report.add(Section("First", "", figures=[outside]))
    page = report.write(tmp_path / "out").read_text()
    assert "A &lt;title&gt;" in page and "<code>code</code> &amp; text." in page
    assert 'href="#first"' in page and 'href="#first-2"' in page
    assert 'class="note"' in page and "<td>1234.6</td>" in page
    assert 'src="in.png"' in page and 'src="figures/elsewhere.png"' in page
    assert (tmp_path / "out" / "figures" / "elsewhere.png").is_file()
    from latentkit import __version__

    assert f"latentkit {__version__}" in page
    broken = Report("x")
    broken.add(Section("s", figures=[tmp_path / "missing.png"]))
    with pytest.raises(FileNotFoundError):
        broken.write(tmp_path / "b")


def test_demo_quick_end_to_end(tmp_path, capsys):
    code, out, err = run_cli(["demo", "--quick", "--out", tmp_path], capsys)
    assert code == 0, err
    page = (tmp_path / "index.html").read_text()
    from latentkit.cli.demo import sections

    assert page.count("<section") == len(sections())
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 5
    for source in sources:
        assert_png(tmp_path / source, min_side=150)
    assert "cluster purity" in page and "adjusted Rand index" in page


def test_demo_falls_back_when_data_is_absent(tmp_path, monkeypatch):
    from latentkit.cli import demo

    hide_datasets(monkeypatch, "load_faithful", "load_mnist")
    path = demo.run_demo(tmp_path, quick=True, progress=demo.Progress(enabled=False))
    page = path.read_text()
    # one note per section whose data file is absent (faithful, mnist, ... in later sections)
    assert page.count('class="note"') >= 2 and "iris" in page and "8x8 digits" in page
    for source in re.findall(r'<img src="([^"]+)"', page):
        assert (tmp_path / source).is_file()


# -- the installed console script ---------------------------------------------------------


def test_console_script(tmp_path):
    script = shutil.which("latentkit", path=str(Path(sys.executable).parent)) or shutil.which(
        "latentkit")
    if script is None:
        pytest.skip("the latentkit console script is not installed")
    require_faithful()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    ok = subprocess.run([script, "fit", "gmm", "faithful", "-k", "2", "--out", tmp_path],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "BIC" in ok.stdout and (tmp_path / "model.npz").is_file()
    bad = subprocess.run([script, "evaluate", tmp_path / "model.npz", tmp_path / "none.csv"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"latentkit: error: no such file: {tmp_path / 'none.csv'}"]
