"""`latentkit.tables`: every row kept in place, names and order kept, the header rule, the
index column, text and date columns refused with their fix, and every format in and out,
checked against pandas as the reference reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentkit.exceptions import InvalidInputError, InvalidParameterError
from latentkit.tables import read_table, write_table


def assert_same_values(actual, expected):
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual[~np.isnan(expected)], expected[~np.isnan(expected)],
                               rtol=0, atol=0)


@pytest.fixture
def frame():
    """8 x 3 with missing cells, one all-missing row (row 3) and names out of order."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    X[1, 2] = X[5, 0] = np.nan
    X[3] = np.nan
    return pd.DataFrame(X, columns=["zeta", "alpha", "mid"])


def test_an_all_blank_row_is_a_row_of_missing_values_in_place(tmp_path, frame):
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    assert ",,\n" in path.read_text()  # pandas writes the all-missing row as `,,`
    data = read_table(path)
    assert data.columns == ["zeta", "alpha", "mid"] and data.X.shape == (8, 3)
    assert_same_values(data.X, frame.to_numpy())
    reference = pd.read_csv(path, skip_blank_lines=False).to_numpy()
    assert_same_values(data.X, reference)


def test_missing_tokens_in_any_case_and_spacing(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("a,b,c\n1,NA,nan\n n/a , None ,?\nNULL,2, 3 \n,,\n")
    X = read_table(path).X
    expected = np.array([[1, np.nan, np.nan], [np.nan] * 3, [np.nan, 2, 3], [np.nan] * 3])
    assert_same_values(X, expected)


def test_one_column_keeps_empty_lines_as_missing(tmp_path):
    series = pd.DataFrame({"y": [1.0, np.nan, 2.0, np.nan]})
    path = tmp_path / "one.csv"
    series.to_csv(path, index=False)  # `""` (pandas 3) or an empty line (pandas 2)
    assert_same_values(read_table(path).X, series.to_numpy())
    path.write_text("y\n1.0\n\n2.0\n\n")
    assert_same_values(read_table(path).X, series.to_numpy())
    write_table(path, series.to_numpy(), ["y"])
    assert_same_values(pd.read_csv(path).to_numpy(), series.to_numpy())
    assert_same_values(read_table(path).X, series.to_numpy())


def test_an_empty_line_in_a_wide_file_is_a_row_of_missing_values(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("\n\nx,y\n1,2\n\n3,4\r\n\r\n5,6\n\n \n")  # blank lines at the end: none
    data = read_table(path)
    assert data.columns == ["x", "y"]
    nan = np.nan
    assert_same_values(data.X, np.array([[1, 2], [nan, nan], [3, 4], [nan, nan], [5, 6]]))
    path.write_text("x,y\n1,2\n   \n3,4\n")
    with pytest.raises(InvalidInputError, match=r"line 3 holds only spaces"):
        read_table(path)


def test_unnamed_index_column_is_taken_out_with_a_note(tmp_path, frame):
    frame.index = [10, 11, 12, 13, 20, 21, 22, 23]
    path = tmp_path / "indexed.csv"
    frame.to_csv(path)
    data = read_table(path)
    assert data.columns == ["zeta", "alpha", "mid"]
    assert_same_values(data.X, frame.to_numpy())
    assert list(data.index) == list(frame.index) and data.index.name is None
    assert len(data.notes) == 1 and "no name" in data.notes[0]
    named = read_table(path, drop=["Unnamed: 0"])  # named by the user: a column like any
    assert named.index is None and named.notes == () and named.columns == list(frame.columns)
    labelled = frame.set_axis([f"r{i}" for i in range(8)])
    labelled.to_csv(path)
    assert list(read_table(path).index) == list(labelled.index)
    # to_csv of a frame pandas read back: a new index, the old one a column `Unnamed: 0`
    pd.read_csv(path).to_csv(path)
    with pytest.raises(InvalidInputError, match=r"'r0' is not a number.*--drop 'Unnamed: 0.1'"):
        read_table(path)
    data = read_table(path, drop=["Unnamed: 0.1"])
    assert data.columns == ["zeta", "alpha", "mid"] and list(data.index) == list(range(8))
    assert_same_values(data.X, frame.to_numpy())


def test_numeric_header_rule(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 3))
    path = tmp_path / "n.csv"
    pd.DataFrame(X).to_csv(path, index=False)  # header 0,1,2 over floats: names
    data = read_table(path)
    assert data.columns == ["0", "1", "2"] and data.X.shape == (5, 3)
    assert "--no-header" in data.notes[0]
    forced = read_table(path, header=False)
    assert forced.X.shape == (6, 3) and forced.columns is None
    np.testing.assert_array_equal(forced.X[0], [0, 1, 2])
    pd.DataFrame(X, columns=[1, 2, 3]).to_csv(path)  # blank cell, then 1..D: pandas' names
    data = read_table(path)
    assert data.columns == ["1", "2", "3"] and data.X.shape == (5, 3)
    # integer codes whose first row happens to read 0,1: data, nothing lost
    path.write_text("0,1\n1,0\n1,1\n")
    data = read_table(path)
    assert data.columns is None and data.X.shape == (3, 2) and data.notes == ()
    path.write_text("2.5,7\n1,0\n")  # any other numeric first row is data
    assert read_table(path).X.shape == (2, 2)


def test_header_true_forces_names(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("5,6\n1,2\n")
    data = read_table(path, header=True)
    assert data.columns == ["5", "6"] and data.X.tolist() == [[1, 2]]


def test_text_and_date_columns_name_their_fix(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("when,a,label,b\n2020-01-01,1,x,2\n2020-01-02,,y,3\n2020-01-04,5,z,\n")
    with pytest.raises(InvalidInputError, match=r"line 2, column 1 \(when\): '2020-01-01' is "
                       r"a date.*--time-col when.*--drop when"):
        read_table(path)
    with pytest.raises(InvalidInputError, match=r"line 2, column 3 \(label\): 'x' is not a "
                       r"number.*--drop label"):
        read_table(path, time_col="when")
    data = read_table(path, time_col="when", drop=["label"])
    assert data.columns == ["a", "b"]
    assert_same_values(data.X, np.array([[1, 2], [np.nan, 3], [5, np.nan]]))
    assert isinstance(data.index, pd.DatetimeIndex) and data.index.name == "when"
    assert list(data.index) == list(pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-04"]))
    labels = read_table(path, index_col="label", columns=["b", "a"])
    assert labels.columns == ["b", "a"] and list(labels.index) == ["x", "y", "z"]
    assert_same_values(labels.X, np.array([[2, 1], [3, np.nan], [np.nan, 5]]))


def test_a_late_text_cell_gives_its_line(tmp_path):
    path = tmp_path / "late.csv"
    rows = [f"{i},{i * 0.5}" for i in range(500)]
    rows[400] = "400,oops"
    path.write_text("a,b\n\n" + "\n".join(rows) + "\n")
    with pytest.raises(InvalidInputError, match=r"line 403, column 2 \(b\): 'oops'"):
        read_table(path)


def test_time_col_quarters_and_years(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("quarter,gdp\n1959Q1,1.5\n1959Q2,\n1959Q3,2\n")
    index = read_table(path, time_col="quarter").index
    assert list(index) == list(pd.to_datetime(["1959-01-01", "1959-04-01", "1959-07-01"]))
    path.write_text("year,flow\n1871,1120\n1872,1160\n")
    data = read_table(path, time_col="year")
    assert list(data.index) == [1871, 1872] and data.X.tolist() == [[1120], [1160]]
    path.write_text("year,flow\n1871,1120\nsoon,1160\n")
    with pytest.raises(InvalidInputError, match=r"line 3: 'soon' in the time column"):
        read_table(path, time_col="year")


def test_column_options_are_checked(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("a,b,c\n1,2,3\n")
    assert read_table(path, columns=["c", "a"]).X.tolist() == [[3, 1]]
    assert read_table(path, drop=["b"]).columns == ["a", "c"]
    with pytest.raises(InvalidInputError, match="has no column 'z'; its columns are a, b, c"):
        read_table(path, columns=["a", "z"])
    with pytest.raises(InvalidParameterError, match="both kept"):
        read_table(path, columns=["a"], drop=["a"])
    with pytest.raises(InvalidParameterError, match="either index_col"):
        read_table(path, index_col="a", time_col="b")
    path.write_text("1,2,3\n4,5,6\n")
    headerless = read_table(path, header=False, drop=["x2"])
    assert headerless.columns == ["x1", "x3"] and headerless.X.shape == (2, 2)


def test_ragged_rows_and_empty_files(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(InvalidInputError, match="line 3: 3 fields where the first row has 2"):
        read_table(path)
    path.write_text("a,b\n")
    with pytest.raises(InvalidInputError, match="header row but no rows"):
        read_table(path)
    path.write_text("")
    with pytest.raises(InvalidInputError, match="is empty"):
        read_table(path)


def test_semicolons_tabs_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes("\ufeffa;b\n1.5;2\n;3\n".encode())
    data = read_table(path)
    assert data.columns == ["a", "b"]
    assert_same_values(data.X, np.array([[1.5, 2], [np.nan, 3]]))
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a,1\tb\n1\t2\n")  # a comma in a name: the suffix says tab
    assert read_table(tsv).columns == ["a,1", "b"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".npz"])
@pytest.mark.parametrize("index", [None, "dates", "labels"])
def test_write_then_read_keeps_rows_names_and_index(tmp_path, frame, suffix, index):
    labels = {None: None, "dates": pd.date_range("2021-03-01", periods=8, name="day"),
              "labels": pd.Index([f"id{i}" for i in range(8)], name="id")}[index]
    path = write_table(tmp_path / f"out{suffix}", frame.to_numpy(), list(frame.columns),
                       index=labels)
    options = {}
    if suffix in (".csv", ".tsv") and index == "dates":
        options = {"time_col": "day"}
    elif suffix in (".csv", ".tsv") and index == "labels":
        options = {"index_col": "id"}
    data = read_table(path, **options)
    assert data.columns == list(frame.columns)
    assert_same_values(data.X, frame.to_numpy())
    if labels is None:
        assert data.index is None
    else:
        assert list(data.index) == list(labels) and data.index.name == labels.name
    if suffix == ".parquet":  # pandas reads what we write
        assert_same_values(pd.read_parquet(path).to_numpy(), frame.to_numpy())
    if suffix in (".csv", ".tsv"):
        lines = path.read_text().splitlines()
        assert len(lines) == 9 and {len(line.split(suffix == ".csv" and "," or "\t"))
                                    for line in lines} == {3 + (labels is not None)}


def test_text_labels_are_quoted_only_when_they_must_be(tmp_path):
    path = write_table(tmp_path / "q.csv", np.eye(2), ["a", "b"],
                       index=pd.Index(["r1", "r2"], name="id"))
    assert path.read_text() == "id,a,b\nr1,1,0\nr2,0,1\n"
    labels = pd.Index(['say "hi", then', "r2"], name="id")
    write_table(path, np.eye(2), ["a", "b"], index=labels)
    assert list(read_table(path, index_col="id").index) == list(labels)
    assert list(pd.read_csv(path, index_col=0).index) == list(labels)


def test_pandas_reads_our_csv_the_same(tmp_path, frame):
    path = write_table(tmp_path / "p.csv", frame.to_numpy(), list(frame.columns))
    back = pd.read_csv(path, skip_blank_lines=False)
    assert list(back.columns) == list(frame.columns)
    assert_same_values(back.to_numpy(), frame.to_numpy())


def test_write_refuses_what_it_cannot_write(tmp_path):
    with pytest.raises(InvalidParameterError, match=r"\.csv or \.npy"):
        write_table(tmp_path / "x.txt", np.zeros((2, 2)), ["a", "b"])
    with pytest.raises(InvalidParameterError, match="2 column names"):
        write_table(tmp_path / "x.csv", np.zeros((2, 3)), ["a", "b"])
    path = write_table(tmp_path / "no_header.csv", np.eye(2), ["a", "b"], header=False)
    assert path.read_text() == "1,0\n0,1\n"


def test_npy_and_plain_npz(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "a.npy", X)
    data = read_table(tmp_path / "a.npy", columns=["x3", "x1"])
    assert data.columns == ["x3", "x1"] and data.X.tolist() == X[:, [2, 0]].tolist()
    np.savez(tmp_path / "b.npz", first=X, second=X * 2)
    assert read_table(tmp_path / "b.npz", key="second").X.tolist() == (X * 2).tolist()
    with pytest.raises(InvalidParameterError, match="--time-col applies to CSV"):
        read_table(tmp_path / "a.npy", time_col="x1")
    write_table(tmp_path / "c.npy", X, ["a", "b", "c"])
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), X)


def test_parquet_keeps_the_index_pandas_stored(tmp_path, frame):
    path = tmp_path / "p.parquet"
    frame.set_axis([f"r{i}" for i in range(8)]).to_parquet(path)  # unnamed: __index_level_0__
    data = read_table(path)
    assert list(data.index) == [f"r{i}" for i in range(8)] and data.index.name is None
    assert data.columns == list(frame.columns)
    frame.to_parquet(path)  # a RangeIndex is metadata only
    assert read_table(path).index is None


# --- categorical columns: text read as codes into sorted state names, written back as names


def assert_same_data(actual, expected):
    """Same X (NaN in the same cells), columns, index and categories."""
    assert_same_values(actual.X, expected.X)
    assert actual.columns == expected.columns
    assert actual.categories == expected.categories
    if expected.index is None:
        assert actual.index is None
    else:
        assert list(actual.index) == list(expected.index)
        assert actual.index.name == expected.index.name


def test_text_columns_are_read_as_categories_when_asked(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text("smoker,age,grade\nyes,31,B\n no ,NA,A\n,40,\nNA,22,C\nyes,1.5,?\n"
                    "No,7, B\n")
    data = read_table(path, categorical=True)
    assert data.columns == ["smoker", "age", "grade"]
    # sorted by code point: 'No' < 'no' < 'yes'; spaces trimmed; blank, NA and ? missing
    assert data.categories == {"smoker": ("No", "no", "yes"), "grade": ("A", "B", "C")}
    expected = np.array([[2, 31, 1], [1, np.nan, 0], [np.nan, 40, np.nan],
                         [np.nan, 22, 2], [2, 1.5, np.nan], [0, 7, 1]])
    assert_same_values(data.X, expected)
    frame = data.frame()  # pandas Categorical columns with the names
    assert list(frame["smoker"].astype(object).fillna("-")) == ["yes", "no", "-", "-", "yes",
                                                                "No"]
    assert frame["age"].dtype == np.float64
    with pytest.raises(InvalidInputError, match=r"line 2, column 1 \(smoker\): 'yes' is not a "
                       r"number.*--drop smoker.*categorical models \(cmm, bayesnet, lca\)"):
        read_table(path)  # categorical=False: unchanged, the error names the fix
    plain = read_table(path, drop=["smoker", "grade"], categorical=True)
    assert plain.categories is None and plain.columns == ["age"]


def test_text_states_with_and_without_a_header(tmp_path):
    path = tmp_path / "states.csv"
    path.write_text("a,b\nyes,lo\nno,hi\nyes,NA\n")
    data = read_table(path, categorical=True)
    assert data.columns == ["a", "b"] and data.X.shape == (3, 2)
    assert data.categories == {"a": ("no", "yes"), "b": ("hi", "lo")}
    assert_same_values(data.X, np.array([[1, 1], [0, 0], [1, np.nan]]))
    path.write_text("yes,lo\nno,hi\nyes,NA\n")
    data = read_table(path, categorical=True, header=False)
    assert data.columns is None and data.X.shape == (3, 2)
    assert data.categories == {"x1": ("no", "yes"), "x2": ("hi", "lo")}
    assert_same_values(data.X, np.array([[1, 1], [0, 0], [1, np.nan]]))
    assert list(data.frame()["x1"]) == ["yes", "no", "yes"]
    detected = read_table(path, categorical=True)  # the header rule: a text cell names
    assert detected.columns == ["yes", "lo"] and detected.X.shape == (2, 2)
    kept = read_table(path, categorical=True, header=False, drop=["x1"])
    assert kept.columns == ["x2"] and kept.categories == {"x2": ("hi", "lo")}


def test_a_late_text_column_and_numbers_in_text_stay_numbers(tmp_path):
    path = tmp_path / "late.csv"
    rows = [f"{i}," for i in range(300)] + ["300,b", "301,a", "302,"]
    path.write_text("n,s\n" + "\n".join(rows) + "\n")  # the sampled lines: s all missing
    data = read_table(path, categorical=True)
    assert data.categories == {"s": ("a", "b")}
    assert np.isnan(data.X[:300, 1]).all() and data.X[300:, 1].tolist()[:2] == [1, 0]
    assert data.X[:, 0].tolist() == list(range(303))
    path.write_text("a,b\n1_000,x\n 2 ,y\n")  # numbers Python parses: a column of numbers
    data = read_table(path, categorical=True)
    assert data.categories == {"b": ("x", "y")}
    assert data.X.tolist() == [[1000, 0], [2, 1]]


def test_parquet_categorical_string_and_boolean_columns(tmp_path):
    path = tmp_path / "c.parquet"
    frame = pd.DataFrame({
        "level": pd.Categorical(["lo", "hi", None, "hi"], categories=["lo", "mid", "hi"]),
        "name": ["b", " a ", None, "NA"],
        "flag": [True, False, True, True],
        "value": [1.0, 2.0, np.nan, 4.0]})
    frame.to_parquet(path)
    data = read_table(path, categorical=True)
    assert data.columns == ["level", "name", "flag", "value"]
    # a Categorical keeps its categories in order, unused 'mid' too; text is sorted
    assert data.categories == {"level": ("lo", "mid", "hi"), "name": ("a", "b"),
                               "flag": ("False", "True")}
    assert_same_values(data.X, np.array([[0, 1, 1, 1], [2, 0, 0, 2], [np.nan, np.nan, 1,
                                                                    np.nan], [2, np.nan, 1, 4]]))
    with pytest.raises(InvalidInputError, match=r"column 1 \(level\): 'lo' is not a number"):
        read_table(path)
    numeric = read_table(path, columns=["flag", "value"])
    assert numeric.categories is None and numeric.X[:, 0].tolist() == [1, 0, 1, 1]


@pytest.fixture
def categorical_data(tmp_path):
    """A table read with categories: 6 rows, a missing state, a numeric column, a label."""
    path = tmp_path / "source.csv"
    path.write_text("id,colour,size,weight\nr0,red,S,1.5\nr1,blue,M,\nr2,,S,3\n"
                    "r3,green,L,4\nr4,red,NA,5\nr5,\"navy, dark\",M,6\n")
    data = read_table(path, index_col="id", categorical=True)
    assert data.categories == {"colour": ("blue", "green", "navy, dark", "red"),
                               "size": ("L", "M", "S")}
    assert_same_values(data.X, np.array([[3, 2, 1.5], [0, 1, np.nan], [np.nan, 2, 3],
                                         [1, 0, 4], [3, np.nan, 5], [2, 1, 6]]))
    return data


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".npz"])
def test_categories_round_trip(tmp_path, categorical_data, suffix):
    data = categorical_data
    path = write_table(tmp_path / f"out{suffix}", data.X, data.columns, index=data.index,
                       categories=data.categories)
    options = {"index_col": "id"} if suffix in (".csv", ".tsv") else {}
    assert_same_data(read_table(path, categorical=True, **options), data)
    if suffix in (".csv", ".tsv"):  # the names, as pandas reads them
        back = pd.read_csv(path, sep=suffix == ".csv" and "," or "\t", index_col=0)
        assert back["colour"].fillna("-").tolist() == ["red", "blue", "-", "green", "red",
                                                       "navy, dark"]
        assert "3" in path.read_text() and "3.0" not in path.read_text()
    if suffix == ".parquet":
        back = pd.read_parquet(path)
        assert list(back["size"].cat.categories) == ["L", "M", "S"]
        assert back["size"].fillna("M").tolist() == ["S", "M", "S", "L", "M", "M"]
    unsorted = {"colour": ("red", "navy, dark", "green", "blue", "white"),
                "size": ("S", "M", "L")}
    X = data.X.copy()
    for j, name in ((0, "colour"), (1, "size")):  # the same values under other codes
        remap = np.array([unsorted[name].index(state) for state in data.categories[name]])
        codes = X[:, j]
        X[:, j] = np.where(np.isnan(codes), np.nan, remap[np.nan_to_num(codes).astype(int)])
    path = write_table(path, X, data.columns, index=data.index, categories=unsorted)
    back = read_table(path, categorical=True, **options)
    if suffix in (".parquet", ".npz"):  # the states as written, in order, unused ones too
        assert back.categories == unsorted
        assert_same_values(back.X, X)
    else:  # only the names: the read sorts them again
        assert_same_data(back, data)


def test_write_refuses_bad_codes_and_state_names(tmp_path):
    X = np.array([[0.0, 1.0], [1.0, np.nan], [np.nan, 2.0]])
    path = tmp_path / "bad.csv"
    with pytest.raises(InvalidParameterError, match=r"column 'b': row 3 holds the code 2, "
                       r"but its 2 states take the codes 0..1"):
        write_table(path, X, ["a", "b"], categories={"b": ("no", "yes")})
    with pytest.raises(InvalidParameterError, match="row 2 holds the code 0.5"):
        write_table(path, np.array([[0.0], [0.5]]), ["a"], categories={"a": ("no", "yes")})
    with pytest.raises(InvalidParameterError, match="row 1 holds the code -1"):
        write_table(path, np.array([[-1.0]]), ["a"], categories={"a": ("no", "yes")})
    with pytest.raises(InvalidParameterError, match="names 'z', not among the columns"):
        write_table(path, X, ["a", "b"], categories={"z": ("no", "yes")})
    with pytest.raises(InvalidParameterError, match="'NA' would read back as a missing"):
        write_table(path, X, ["a", "b"], categories={"a": ("NA", "yes")})
    with pytest.raises(InvalidParameterError, match="repeat a name"):
        write_table(path, X, ["a", "b"], categories={"a": ("no", "no")})
    assert not path.exists()  # nothing written
    for suffix in (".npy", ".npz", ".parquet", ".tsv"):
        with pytest.raises(InvalidParameterError, match="holds the code 2"):
            write_table(tmp_path / f"bad{suffix}", X, ["a", "b"],
                        categories={"b": ("no", "yes")})
    path = write_table(tmp_path / "codes.npy", X, ["a", "b"], categories={"a": ("no", "yes")})
    assert_same_values(np.load(path), X)  # .npy: the codes alone


def test_one_categorical_column_keeps_its_missing_rows(tmp_path):
    X = np.array([[np.nan], [0.0], [np.nan], [1.0]])
    for header in (True, False):
        path = write_table(tmp_path / "one.csv", X, ["s"], header=header,
                           categories={"s": ("no", "yes")})
        data = read_table(path, categorical=True, header=header)
        assert_same_values(data.X, X)
        assert data.categories == {"s" if header else "x1": ("no", "yes")}
