"""The command line's data round trips (issue 10): columns matched by name, predict /
transform / forecast tables with the input's index, sample headers that match the rows,
model selection over a range, and an interrupted fit that saves what it kept."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from tests.helpers import assert_user_error, load_or_skip, run_cli, three_blobs

from latentkit import GaussianMixture, LinearDynamicalSystem, load
from latentkit.tables import read_table


@pytest.fixture(scope="module")
def frame():
    """Three blobs as a DataFrame with named columns and a non-trivial row index."""
    X = three_blobs()
    return pd.DataFrame(X, columns=["alpha", "beta"], index=pd.RangeIndex(100, 340))


@pytest.fixture(scope="module")
def gmm_run(tmp_path_factory, frame):
    """A GMM fitted by the CLI on frame.to_csv() (index column included)."""
    folder = tmp_path_factory.mktemp("gmm")
    frame.to_csv(folder / "data.csv")
    code = _quiet_main(["fit", "gmm", folder / "data.csv", "-k", "3", "--random-state", "0",
                        "-q", "--out", folder / "run"])
    assert code == 0
    return folder / "run" / "model.npz", folder / "data.csv"


def _quiet_main(argv) -> int:
    from latentkit.cli.main import main

    return main([str(a) for a in argv])


def _header_and_widths(path):
    lines = path.read_text().splitlines()
    return lines[0].split(","), {len(line.split(",")) for line in lines[1:]}, len(lines) - 1


def test_cli_fit_keeps_names_and_matches_python(gmm_run, frame, capsys):
    model_file, csv = gmm_run
    model = load(model_file)
    assert list(model.feature_names_in_) == ["alpha", "beta"]
    # the reverse: fitted in Python on the DataFrame, scored by the CLI on the CSV
    python = GaussianMixture(3, random_state=0).fit(frame)
    np.testing.assert_allclose(python.means_, model.means_, rtol=0, atol=1e-12)
    python.save(csv.parent / "python.npz")
    code, out, _ = run_cli(["evaluate", csv.parent / "python.npz", csv, "--json"], capsys)
    assert code == 0
    figures = json.loads(out)
    assert figures["rows"] == len(frame)
    assert figures["mean_log_likelihood"] == pytest.approx(python.score(frame), abs=1e-12)
    assert figures["bic"] == pytest.approx(python.bic(frame), abs=1e-9)
    np.testing.assert_allclose(model.score(frame), python.score(frame), rtol=0, atol=1e-12)


def test_shuffled_columns_are_matched_by_name(gmm_run, frame, tmp_path, capsys):
    model_file, csv = gmm_run
    shuffled = frame[["beta", "alpha"]].copy()
    shuffled.iloc[3, 0] = np.nan
    shuffled.to_csv(tmp_path / "shuffled.csv")
    run_cli(["impute", model_file, tmp_path / "shuffled.csv", "-o", tmp_path / "i.csv"],
            capsys)
    filled = pd.read_csv(tmp_path / "i.csv", index_col=0)
    assert list(filled.columns) == ["beta", "alpha"]  # written back in the file's order
    expected = load(model_file).impute(shuffled[["alpha", "beta"]])
    np.testing.assert_allclose(filled[["alpha", "beta"]], expected, rtol=0, atol=1e-12)
    code, _, err = run_cli(["predict", model_file, tmp_path / "shuffled.csv", "-o",
                            tmp_path / "p.csv"], capsys)
    assert code == 0 and "model's order" in err
    predicted = read_table(tmp_path / "p.csv")
    expected = load(model_file).predict_proba(shuffled[["alpha", "beta"]])
    np.testing.assert_allclose(predicted.X[:, 1:], expected, rtol=0, atol=1e-12)
    assert list(predicted.index) == list(frame.index)


def test_a_misnamed_column_is_an_error_naming_it(gmm_run, frame, tmp_path, capsys):
    model_file, _ = gmm_run
    frame.rename(columns={"beta": "betta"}).to_csv(tmp_path / "typo.csv")
    for verb in ("evaluate", "predict", "transform", "impute"):
        extra = [] if verb == "evaluate" else ["-o", tmp_path / "o.csv"]
        assert_user_error([verb, model_file, tmp_path / "typo.csv", *extra], capsys,
                          "missing 'beta'", "unexpected 'betta'", notes=True)
    assert not (tmp_path / "o.csv").exists()


def test_headerless_data_is_taken_in_the_models_order(gmm_run, frame, tmp_path, capsys):
    model_file, _ = gmm_run
    np.savetxt(tmp_path / "bare.csv", frame.to_numpy(), delimiter=",")
    code, _, err = run_cli(["transform", model_file, tmp_path / "bare.csv", "-o",
                            tmp_path / "t.csv"], capsys)
    assert code == 0 and "no header" in err and "alpha, beta" in err
    header, widths, rows = _header_and_widths(tmp_path / "t.csv")
    assert widths == {len(header)} and rows == len(frame)


@pytest.mark.parametrize("verb", ["predict", "transform"])
def test_predict_and_transform_write_the_inputs_index(gmm_run, frame, tmp_path, capsys, verb):
    model_file, csv = gmm_run
    code, _, _ = run_cli([verb, model_file, csv, "-o", tmp_path / "out.csv"], capsys)
    assert code == 0
    header, widths, rows = _header_and_widths(tmp_path / "out.csv")
    assert widths == {len(header)} and rows == len(frame)
    table = read_table(tmp_path / "out.csv")
    assert list(table.index) == list(frame.index)
    model = load(model_file)
    if verb == "predict":
        assert header[1:] == ["label", "prob_0", "prob_1", "prob_2"]
        np.testing.assert_array_equal(table.X[:, 0], model.predict(frame))
        np.testing.assert_allclose(table.X[:, 1:].sum(axis=1), 1.0, atol=1e-12)
    else:
        np.testing.assert_allclose(table.X, model.transform(frame), rtol=0, atol=1e-12)


def test_predict_of_a_model_that_does_not_is_an_error(tmp_path, frame, capsys):
    frame.to_csv(tmp_path / "d.csv")
    assert run_cli(["fit", "pca", tmp_path / "d.csv", "-k", "1", "-q", "-o", tmp_path / "r"],
                   capsys)[0] == 0
    assert_user_error(["predict", tmp_path / "r" / "model.npz", tmp_path / "d.csv", "-o",
                       tmp_path / "p.csv"], capsys, "no predict", "transform", notes=True)
    assert_user_error(["forecast", tmp_path / "r" / "model.npz", tmp_path / "d.csv",
                       "--steps", "2", "-o", tmp_path / "f.csv"], capsys, "no forecast",
                      notes=True)


@pytest.mark.parametrize("model, k, width", [("pca", 1, 1), ("gmm", 2, 1)])
def test_sample_with_components_has_a_name_per_value(tmp_path, frame, capsys, model, k,
                                                     width):
    frame.to_csv(tmp_path / "d.csv")
    run_cli(["fit", model, tmp_path / "d.csv", "-k", k, "-q", "-o", tmp_path / "r"], capsys)
    code, _, _ = run_cli(["sample", tmp_path / "r" / "model.npz", "-n", "7", "--with-"
                          "components", "-o", tmp_path / "s.csv"], capsys)
    assert code == 0
    header, widths, rows = _header_and_widths(tmp_path / "s.csv")
    assert header[:2] == ["alpha", "beta"] and len(header) == 2 + width
    assert widths == {len(header)} and rows == 7


@pytest.fixture(scope="module")
def nile_csv(tmp_path_factory):
    """The Nile flow with a yearly date column."""
    y = np.asarray(load_or_skip("load_nile").data, dtype=np.float64).ravel()
    folder = tmp_path_factory.mktemp("nile")
    dates = pd.date_range("1871-01-01", periods=len(y), freq="YS")
    pd.DataFrame({"date": dates, "flow": y}).to_csv(folder / "nile.csv", index=False)
    return folder / "nile.csv", y


def test_forecast_continues_the_dates_with_intervals(nile_csv, tmp_path, capsys):
    csv, y = nile_csv
    assert run_cli(["fit", "lds", csv, "--time-col", "date", "-q", "-o", tmp_path / "r"],
                   capsys)[0] == 0
    model = load(tmp_path / "r" / "model.npz")
    code, _, _ = run_cli(["forecast", tmp_path / "r" / "model.npz", csv, "--time-col", "date",
                          "--steps", "3", "--level", "0.9", "-o", tmp_path / "f.csv"], capsys)
    assert code == 0
    header, widths, rows = _header_and_widths(tmp_path / "f.csv")
    assert header == ["date", "flow", "flow_lower90", "flow_upper90"] and rows == 3
    assert widths == {4}
    table = read_table(tmp_path / "f.csv", time_col="date")
    assert list(table.index.year) == [1971, 1972, 1973]
    truth = model.forecast(y[:, None], n_steps=3)
    half = 1.6448536269514722 * np.sqrt(truth.cov[:, 0, 0])
    np.testing.assert_allclose(table.X[:, 0], truth.mean[:, 0], rtol=1e-12)
    np.testing.assert_allclose(table.X[:, 2] - table.X[:, 1], 2 * half, rtol=1e-9)


def test_forecast_of_a_series_without_dates_by_row_number(tmp_path, capsys):
    y = np.cumsum(np.random.default_rng(0).normal(size=(6, 1)), axis=0)
    LinearDynamicalSystem(state_dim=1, random_state=0).fit(y).save(tmp_path / "m.npz")
    np.savetxt(tmp_path / "y.csv", y, delimiter=",")
    code, _, _ = run_cli(["forecast", tmp_path / "m.npz", tmp_path / "y.csv", "--steps", "2",
                          "-o", tmp_path / "f.csv"], capsys)
    assert code == 0
    lines = (tmp_path / "f.csv").read_text().splitlines()
    assert lines[1].split(",")[0] == "6" and lines[2].split(",")[0] == "7"


def test_k_range_and_k_max(tmp_path, frame, capsys):
    frame.to_csv(tmp_path / "d.csv")
    code, out, err = run_cli(["fit", "gmm", tmp_path / "d.csv", "-k", "2:4", "-o",
                              tmp_path / "r"], capsys)
    assert code == 0
    ks = [int(line.split()[0]) for line in out.splitlines() if line.strip()[:1].isdigit()
          and len(line.split()) == 5]
    assert ks == [2, 3, 4]
    code, out, err = run_cli(["fit", "gmm", tmp_path / "d.csv", "--k-max", "2", "-o",
                              tmp_path / "r2"], capsys)
    assert code == 0 and "largest candidate" in err and "n_components" in err
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["fit", "gmm", tmp_path / "d.csv", "-k", "4:2"], capsys)
    assert exit_info.value.code == 2 and "A < B" in capsys.readouterr().err
    assert_user_error(["fit", "gmm", tmp_path / "d.csv", "-k", "3", "--k-max", "5"], capsys,
                      "--k-max", notes=True)


def test_an_interrupted_fit_saves_and_exits_non_zero(tmp_path, frame, capsys, monkeypatch):
    family = GaussianMixture.em_family
    calls = {"n": 0}

    def m_step(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return family.m_step(*args)

    monkeypatch.setattr(GaussianMixture, "em_family", dataclasses.replace(family,
                                                                          m_step=m_step))
    frame.to_csv(tmp_path / "d.csv")
    code, _, err = run_cli(["fit", "gmm", tmp_path / "d.csv", "-k", "3", "--tol", "0", "-q",
                            "-o", tmp_path / "r"], capsys)
    assert code == 130 and "interrupted" in err
    saved = load(tmp_path / "r" / "model.npz")
    assert saved.n_iter_ == 3 and not saved.converged_
    assert "did not converge" in (tmp_path / "r" / "index.html").read_text()
