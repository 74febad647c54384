"""DATA in and out on the command line (`latentkit.cli.data` over `latentkit.tables`): every
input row comes out in its place, names and order kept, an index column detected and
written back, text and date columns refused with their fix, --columns / --drop /
--index-col / --time-col / --no-header, and CSV, TSV, Parquet, .npy and .npz in and out."""

from __future__ import annotations

import csv
import re
from functools import partial

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from helpers import assert_user_error, run_cli
from latentkit import GaussianMixture
from latentkit.cli import main
from latentkit.cli.data import load_data
from latentkit.tables import read_table

#: a table error may follow notes the reader printed (e.g. about an index column)
assert_error = partial(assert_user_error, notes=True)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def assert_rectangular(path, delimiter=","):
    """Every line of a written table has as many values as the header has names."""
    lines = path.read_text().splitlines()
    rows = list(csv.reader(lines, delimiter=delimiter))
    assert {len(row) for row in rows} == {len(rows[0])}, lines[:3]
    return lines


def mean_log_likelihood(out: str) -> float:
    return float(re.search(r"^mean log-likelihood\s+(\S+)$", out, re.M).group(1))


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]])
    return np.concatenate([rng.normal(c, 0.7, size=(40, 2)) for c in centers])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, table):
    """A GaussianMixture fitted in Python on (height, width), saved."""
    path = tmp_path_factory.mktemp("model") / "model.npz"
    model = GaussianMixture(n_components=3, random_state=0).fit(table)
    model.save(path)
    return path, model


def test_impute_keeps_an_all_blank_row_in_its_place(tmp_path, capsys, table, model_file):
    path, model = model_file
    holes = table.copy()
    holes[7] = np.nan  # written `,`: every cell missing
    holes[30, 1] = np.nan
    frame = pd.DataFrame(holes, columns=["height", "width"])
    frame.to_csv(tmp_path / "holes.csv", index=False)
    assert "\n,\n" in (tmp_path / "holes.csv").read_text()
    code, out, err = run_cli(["impute", path, tmp_path / "holes.csv", "--out", tmp_path / "f.csv"],
                         capsys)
    assert code == 0, err
    assert "imputed 3 missing values in 2 of 120 rows" in out
    filled = pd.read_csv(tmp_path / "f.csv")
    assert list(filled.columns) == ["height", "width"] and len(filled) == len(table)
    observed = ~np.isnan(holes)
    np.testing.assert_array_equal(filled.to_numpy()[observed], holes[observed])
    # the blank row, nothing observed, is filled with the mixture's mean sum_k w_k mu_k
    np.testing.assert_allclose(filled.to_numpy()[7], model.weights_ @ model.means_,
                               rtol=1e-12)
    assert_rectangular(tmp_path / "f.csv")


def test_to_csv_index_column_is_dropped_noted_and_written_back(tmp_path, capsys, table,
                                                               model_file):
    path, _ = model_file
    plain, indexed = tmp_path / "plain.csv", tmp_path / "indexed.csv"
    frame = pd.DataFrame(table, columns=["height", "width"])
    frame.to_csv(plain, index=False)
    frame.set_axis([f"s{i}" for i in range(len(frame))]).to_csv(indexed)
    code, out, err = run_cli(["evaluate", path, indexed], capsys)
    assert code == 0, err
    assert "120 rows x 2 columns" in out and "latentkit: note:" in err and "row index" in err
    assert mean_log_likelihood(out) == mean_log_likelihood(run_cli(["evaluate", path, plain],
                                                               capsys)[1])
    holes = frame.set_axis([f"s{i}" for i in range(len(frame))])
    holes.iloc[4, 0] = np.nan
    holes.to_csv(indexed)
    assert run_cli(["impute", path, indexed, "--out", tmp_path / "f.csv"], capsys)[0] == 0
    lines = assert_rectangular(tmp_path / "f.csv")
    assert lines[0] == ",height,width" and len(lines) == 121
    back = pd.read_csv(tmp_path / "f.csv", index_col=0)
    assert list(back.index) == list(holes.index)
    assert not back.isna().any().any()


def test_columns_keep_file_order_and_options_choose_them(tmp_path, capsys, table, model_file):
    path, _ = model_file
    ordered, shuffled = tmp_path / "ordered.csv", tmp_path / "shuffled.csv"
    pd.DataFrame(table, columns=["height", "width"]).to_csv(ordered, index=False)
    frame = pd.DataFrame({"label": ["a"] * len(table), "width": table[:, 1],
                          "height": table[:, 0]})
    frame.to_csv(shuffled, index=False)
    data = read_table(shuffled, drop=["label"])
    assert data.columns == ["width", "height"]  # file order, not sorted, not guessed
    np.testing.assert_array_equal(data.X, table[:, ::-1])
    expected = mean_log_likelihood(run_cli(["evaluate", path, ordered], capsys)[1])
    code, out, err = run_cli(["evaluate", path, shuffled, "--columns", "height,width"], capsys)
    assert code == 0, err
    assert mean_log_likelihood(out) == expected
    code, out, err = run_cli(["evaluate", path, shuffled, "--index-col", "label", "--drop",
                          "width,height", "--columns", "height"], capsys)
    assert code == 2 and "both kept" in err
    assert_error(["evaluate", path, shuffled], capsys, "column 1 (label)",
                      "'a' is not a number", "--drop label")
    assert_error(["evaluate", path, shuffled, "--columns", "height,depth"], capsys,
                      "no column 'depth'", "label, width, height")


def test_numeric_header_and_no_header(tmp_path, capsys, table, model_file):
    path, _ = model_file
    numbered = tmp_path / "numbered.csv"
    pd.DataFrame(table).to_csv(numbered, index=False)  # header 0,1
    code, out, err = run_cli(["evaluate", path, numbered], capsys)
    assert code == 0 and "120 rows x 2 columns" in out and "--no-header" in err
    code, out, err = run_cli(["evaluate", path, numbered, "--no-header"], capsys)
    assert code == 0 and "121 rows x 2 columns" in out
    headerless = tmp_path / "headerless.csv"
    np.savetxt(headerless, table, delimiter=",")
    holes = tmp_path / "holes.csv"
    lines = headerless.read_text().splitlines()
    lines[2] = ","
    holes.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(["impute", path, holes, "--out", tmp_path / "f.csv"], capsys)
    assert code == 0, err
    written = (tmp_path / "f.csv").read_text().splitlines()
    assert len(written) == len(table) and "x1" not in written[0]  # no names were added
    np.testing.assert_allclose(np.loadtxt(tmp_path / "f.csv", delimiter=",")[[0, 1, 3]],
                               table[[0, 1, 3]], rtol=1e-15)


def test_time_col_keeps_dates_as_the_index_of_a_series(tmp_path, capsys):
    rng = np.random.default_rng(2)
    level = np.cumsum(rng.normal(size=60)) + 10
    frame = pd.DataFrame({"month": pd.date_range("2001-01-01", periods=60, freq="MS"),
                          "flow": level + rng.normal(0, 0.5, 60)})
    frame.loc[10, "flow"] = np.nan
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    assert_error(["fit", "lds", path, "--out", tmp_path / "o"], capsys,
                      "'2001-01-01' is a date", "--time-col month")
    data = load_data(str(path), options=read_options(time_col="month"))
    assert list(data.index) == list(frame["month"]) and data.X.shape == (60, 1)
    code, out, err = run_cli(["fit", "lds", path, "--time-col", "month", "--max-iter", "5",
                          "--out", tmp_path / "o"], capsys)
    assert code == 0, err
    assert "60 rows x 1 columns" in out and (tmp_path / "o" / "signal.png").is_file()


def read_options(**kwargs):
    from latentkit.tables import TableOptions

    return TableOptions(**kwargs)


@pytest.mark.parametrize("source, target", [(".tsv", ".parquet"), (".parquet", ".tsv"),
                                            (".csv", ".npz"), (".npz", ".csv"),
                                            (".parquet", ".npy")])
def test_formats_in_and_out(tmp_path, capsys, table, model_file, source, target):
    path, _ = model_file
    holes = pd.DataFrame(table, columns=["height", "width"],
                         index=pd.Index([f"id{i}" for i in range(len(table))], name="id"))
    holes.iloc[[3, 50], [1, 0]] = np.nan
    holes.iloc[9] = np.nan
    data_path = tmp_path / f"in{source}"
    if source == ".tsv":
        holes.to_csv(data_path, sep="\t")
    elif source == ".parquet":
        holes.to_parquet(data_path)
    elif source == ".npz":
        np.savez(data_path, X=holes.to_numpy(), columns=np.array(holes.columns, dtype=str),
                 index=np.array(holes.index, dtype=str), index_name=np.array("id"))
    else:
        holes.to_csv(data_path)
    extra = ["--index-col", "id"] if source in (".tsv", ".csv") else []
    out = tmp_path / f"out{target}"
    code, stdout, err = run_cli(["impute", path, data_path, *extra, "--out", out], capsys)
    assert code == 0, err
    assert "in 3 of 120 rows" in stdout
    if target == ".npy":
        filled = np.load(out)
        assert filled.shape == (120, 2)
        np.testing.assert_array_equal(filled[0], table[0])
        return
    back = read_table(out, index_col="id") if target in (".csv", ".tsv") else read_table(out)
    assert back.columns == ["height", "width"] and back.X.shape == (120, 2)
    assert list(back.index) == list(holes.index) and back.index.name == "id"
    assert not np.isnan(back.X).any()
    np.testing.assert_array_equal(back.X[0], table[0])
    if target in (".csv", ".tsv"):
        assert_rectangular(out, "\t" if target == ".tsv" else ",")


def test_npy_and_options_that_do_not_apply(tmp_path, capsys, table, model_file):
    path, _ = model_file
    npy = tmp_path / "t.npy"
    np.save(npy, np.column_stack([table[:, 1], table[:, 0], table[:, 0]]))
    code, out, err = run_cli(["evaluate", path, npy, "--columns", "x2,x1"], capsys)
    assert code == 0 and "120 rows x 2 columns" in out
    assert_error(["evaluate", path, npy, "--time-col", "x1"], capsys,
                      "--time-col applies to CSV, TSV and Parquet")
    assert_error(["evaluate", path, npy, "--key", "X"], capsys, ".npz")
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(path), str(csv), "--columns", "a,,b"])
    assert exit_info.value.code == 2 and "column names separated by commas" in (
        capsys.readouterr().err)
