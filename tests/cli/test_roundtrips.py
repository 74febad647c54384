"""Round trips through the command line that lost or misaligned data before issue 10: an
all-blank row, an index column, a numeric header, a date column, a Bayes-net file with a
misspelled column. Row count and order are preserved, names are preserved, and a mismatch
is an error, never a guess."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.helpers import assert_user_error, run_cli, three_blobs

from latentkit import load
from latentkit.bayesnet.demo import seed_network
from latentkit.tables import read_table


def _fit(capsys, *argv) -> None:
    code, _, err = run_cli(["fit", *argv, "-q", "--random-state", "0"], capsys)
    assert code == 0, err


def test_an_all_blank_row_is_imputed_in_its_place(tmp_path, capsys):
    X = three_blobs()[:30]
    lines = ["a,b"] + [f"{x:.17g},{y:.17g}" for x, y in X]
    lines.insert(11, ",")  # data row 10 is all blank
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    _fit(capsys, "gmm", tmp_path / "d.csv", "-k", "2", "-o", tmp_path / "r")
    code, _, _ = run_cli(["impute", tmp_path / "r" / "model.npz", tmp_path / "d.csv", "-o",
                          tmp_path / "out.csv"], capsys)
    assert code == 0
    out = read_table(tmp_path / "out.csv")
    assert out.columns == ["a", "b"] and len(out.X) == 31
    np.testing.assert_array_equal(out.X[:10], X[:10])
    np.testing.assert_array_equal(out.X[11:], X[10:])  # nothing after it shifted
    model = load(tmp_path / "r" / "model.npz")
    np.testing.assert_allclose(out.X[10], model.weights_ @ model.means_, rtol=1e-12)


def test_an_index_column_comes_back_as_the_index(tmp_path, capsys):
    frame = pd.DataFrame(three_blobs()[:40], columns=["u", "v"],
                         index=[f"r{i}" for i in range(40)])
    frame.iloc[5, 1] = np.nan
    frame.to_csv(tmp_path / "d.csv")
    _fit(capsys, "gmm", tmp_path / "d.csv", "-k", "2", "-o", tmp_path / "r")
    assert load(tmp_path / "r" / "model.npz").n_features_in_ == 2  # the index is no feature
    run_cli(["impute", tmp_path / "r" / "model.npz", tmp_path / "d.csv", "-o",
             tmp_path / "out.csv"], capsys)
    back = pd.read_csv(tmp_path / "out.csv", index_col=0)
    assert list(back.index) == list(frame.index) and list(back.columns) == ["u", "v"]
    assert not back.isna().any().any()
    np.testing.assert_array_equal(back.drop(index="r5").to_numpy(),
                                  frame.drop(index="r5").to_numpy())


def test_a_numeric_header_is_names_not_a_row(tmp_path, capsys):
    X = three_blobs()[:50]
    pd.DataFrame(X).to_csv(tmp_path / "d.csv")  # header ",0,1": pandas' names
    _fit(capsys, "gmm", tmp_path / "d.csv", "-k", "2", "-o", tmp_path / "r")
    model = load(tmp_path / "r" / "model.npz")
    assert list(model.feature_names_in_) == ["0", "1"]
    code, out, _ = run_cli(["evaluate", tmp_path / "r" / "model.npz", tmp_path / "d.csv"],
                           capsys)
    assert code == 0 and any(line.split() == ["rows", "50"] for line in out.splitlines())
    run_cli(["sample", tmp_path / "r" / "model.npz", "-n", "4", "-o", tmp_path / "s.csv"],
            capsys)
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "0,1"


def test_a_date_column_is_the_series_index(tmp_path, capsys):
    y = np.cumsum(np.random.default_rng(1).normal(size=40))
    dates = pd.date_range("2001-01-01", periods=40, freq="MS")
    text = ["date,level"] + [f"{d.date()},{v:.17g}" for d, v in zip(dates, y)]
    text[13] = f"{dates[12].date()},"  # a missing step, kept in its place
    (tmp_path / "s.csv").write_text("\n".join(text) + "\n")
    _fit(capsys, "lds", tmp_path / "s.csv", "--time-col", "date", "-o", tmp_path / "r")
    model = load(tmp_path / "r" / "model.npz")
    run_cli(["impute", tmp_path / "r" / "model.npz", tmp_path / "s.csv", "--time-col", "date",
             "-o", tmp_path / "out.csv"], capsys)
    out = read_table(tmp_path / "out.csv", time_col="date")
    assert list(out.index) == list(dates) and np.isfinite(out.X).all()
    series = y.copy()[:, None]
    series[12] = np.nan
    np.testing.assert_allclose(out.X, model.impute(series), rtol=1e-12)


@pytest.fixture()
def network_files(tmp_path):
    """The seed network A -> C <- B, C -> D as a BIF file and 300 rows of its variables."""
    net = seed_network()
    net.to_bif(tmp_path / "net.bif")
    X, _ = net.sample(300, random_state=0)
    return tmp_path / "net.bif", np.asarray(X, dtype=np.float64), net.variables


@pytest.mark.parametrize("header", ["A,B,C,d", "foo,bar,baz,qux"])
def test_a_bayes_net_file_with_a_misspelled_column_is_refused(tmp_path, capsys,
                                                              network_files, header):
    bif, X, names = network_files
    assert list(names) == ["A", "B", "C", "D"]
    lines = [header] + [",".join(str(int(v)) for v in row) for row in X]
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    assert_user_error(["fit", "bayesnet", tmp_path / "bad.csv", "--structure", bif, "-q"],
                      capsys, "missing", "unexpected", header.split(",")[-1], notes=True)


def test_a_bayes_net_file_in_another_order_is_matched_by_name(tmp_path, capsys,
                                                             network_files):
    bif, X, _ = network_files
    lines = ["D,B,C,A"] + [",".join(str(int(v)) for v in row[[3, 1, 2, 0]]) for row in X]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    _fit(capsys, "bayesnet", tmp_path / "d.csv", "--structure", bif, "-o", tmp_path / "r")
    model = load(tmp_path / "r" / "model.npz")
    code, out, _ = run_cli(["evaluate", tmp_path / "r" / "model.npz", tmp_path / "d.csv"],
                           capsys)
    line = next(x for x in out.splitlines() if x.startswith("mean log-likelihood"))
    assert code == 0 and float(line.split()[-1]) == pytest.approx(model.score(X), rel=1e-4)
