"""The demo's linear section and the `latentkit fit ica` / `fit mppca` commands."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from helpers import assert_png, hide_datasets, run_cli
from latentkit.cli.demo import Progress
from latentkit.cli.report import Report
from latentkit.linear.demo import mnist_linear


def check_section(section, tmp_path):
    assert len(section.figures) == 5
    for path, caption in section.figures:
        assert_png(path, min_side=150, max_side=10_000)
        assert caption.strip(), f"{path} has no caption"
    tables = dict(section.tables)
    pca = tables["PCA"]
    assert [row["M"] for row in pca] == [2, 10, 50]
    explained = [row["variance explained"] for row in pca]
    assert 0 < explained[0] < explained[1] < explained[2] <= 1
    errors = [row["reconstruction RMSE"] for row in pca]
    assert errors[0] > errors[1] > errors[2] > 0
    ppca, mean_fill, iterative = tables["imputation of 30% missing pixels"]
    assert ppca["RMSE, all rows"] < mean_fill["RMSE, all rows"]
    subset = next(k for k in ppca if k.startswith("RMSE, first"))
    assert 0 < iterative[subset] < mean_fill[subset]
    for row in tables["ICA on synthetic signals"]:
        assert row["Amari index"] < 0.1 and row["min |correlation| with the true source"] > 0.98
    report = Report("demo")
    report.add(section)
    html = report.write(tmp_path).read_text()
    for source in re.findall(r'<img src="([^"]+)"', html):
        assert (tmp_path / source).is_file()


def test_linear_section_quick(tmp_path):
    section = mnist_linear(tmp_path, Progress(enabled=False), quick=True)
    check_section(section, tmp_path)


def test_linear_section_falls_back_to_digits(tmp_path, monkeypatch):
    hide_datasets(monkeypatch, "load_mnist")
    section = mnist_linear(tmp_path, Progress(enabled=False), quick=True)
    assert section.text.startswith("Note: the dataset was not found")
    assert "8x8 digits" in section.text
    check_section(section, tmp_path)


def test_fit_ica_on_digits(tmp_path, capsys):
    code, out, err = run_cli(["fit", "ica", "-k", "6", "--fun", "cube", "--random-state", "0",
                          "--out", tmp_path], capsys)
    assert code == 0, err
    assert re.search(r"^fun\s+cube", out, re.M) and "digits" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_components"] == 6 and summary["figures"] == ["mixing.png",
                                                                   "sources.png"]
    for name in summary["figures"]:
        assert_png(tmp_path / name, min_side=150, max_side=10_000)
    from latentkit.io import load

    model = load(tmp_path / "model.npz")
    assert model.components_.shape == (6, 64) and model.fun == "cube"
    code, out, err = run_cli(["sample", tmp_path / "model.npz", "-n", "5", "--out",
                          tmp_path / "s.npy"], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "s.npy").shape == (5, 64)


def test_fit_mppca_and_impute(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(100, 1)) @ [[1.0, 2.0, 0.5, -1.0]] + 5,
                        rng.normal(size=(100, 1)) @ [[-2.0, 0.3, 1.0, 1.0]] - 5])
    X += 0.05 * rng.normal(size=X.shape)
    holes = X.copy()
    holes[[3, 50, 150], [0, 2, 3]] = np.nan
    path = tmp_path / "data.csv"
    path.write_text("a,b,c,d\n" + "\n".join(
        ",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in holes) + "\n")
    code, out, err = run_cli(["fit", "mppca", path, "-k", "2", "--n-latent", "1",
                          "--random-state", "0", "--out", tmp_path / "fit"], capsys)
    assert code == 0, err
    assert re.search(r"^n latent\s+1", out, re.M)
    code, out, err = run_cli(["impute", tmp_path / "fit" / "model.npz", path, "--out",
                          tmp_path / "filled.npy"], capsys)
    assert code == 0, err
    filled = np.load(tmp_path / "filled.npy")
    missing = np.isnan(holes)
    np.testing.assert_array_equal(filled[~missing], holes[~missing])
    # one latent line per cluster, noise 0.05: the missing entry is predicted from the others
    assert np.max(np.abs(filled[missing] - X[missing])) < 0.3


@pytest.mark.parametrize("argv, fragment", [
    (["fit", "mppca", "iris", "--n-latent", "4"], "n_latent=4 must be < n_features=4"),
    (["fit", "ica", "iris", "-k", "9"], "n_components=9 must be <="),
    (["fit", "ica", "iris", "-k", "2", "--fun", "tanh"], "'fun' must be one of"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, fragment):
    code, out, err = run_cli([*argv, "--out", tmp_path], capsys)
    assert code == 2 and err.count("\n") == 1 and fragment in err, err


@pytest.mark.parametrize("name", ["ppca", "fa"])
def test_cli_impute_writes_the_conditional_mean(tmp_path, capsys, name):
    """`latentkit impute MODEL DATA` for PPCA and factor analysis: the written table keeps
    every observed cell and fills each NaN with the saved model's E[x_missing | x_observed]."""
    from latentkit import load

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 6)) + 0.1 * rng.normal(size=(300, 6))
    holes = np.where(rng.random(X.shape) < 0.2, np.nan, X)
    path = tmp_path / "data.csv"
    path.write_text(",".join("abcdef") + "\n" + "\n".join(
        ",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in holes) + "\n")
    code, out, err = run_cli(["fit", name, path, "-k", "2", "--out", tmp_path / "fit"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["impute", tmp_path / "fit" / "model.npz", path, "--out",
                          tmp_path / "filled.csv"], capsys)
    assert code == 0, err
    filled = np.loadtxt(tmp_path / "filled.csv", delimiter=",", skiprows=1)
    frame = pd.DataFrame(holes, columns=list("abcdef"))  # the names it was fitted with
    expected = load(tmp_path / "fit" / "model.npz").impute(frame).to_numpy()
    missing = np.isnan(holes)
    np.testing.assert_allclose(filled, expected, rtol=1e-12)
    np.testing.assert_array_equal(filled[~missing], holes[~missing])
    # rank-2 data with noise 0.1: the filled cells are close to the truth
    assert np.sqrt(np.mean((filled[missing] - X[missing]) ** 2)) < 0.3
