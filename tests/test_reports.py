"""The tables and figures each family gives `latentkit fit` / `report` pages (the `tables=`
and `figures=` of its ModelSpec): they are named by the user's features, states and dates,
and their numbers are the fitted model's parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import dates as mdates
from threadpoolctl import threadpool_limits

from helpers import assert_png, load_or_skip, run_cli
from latentkit.registry import FigureJob, get_spec
from latentkit.tables import Data


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _feature_columns(rows, fixed=("component", "weight")) -> list[str]:
    return [name for name in rows[0] if name not in fixed]


# -- mixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faithful() -> pd.DataFrame:
    return pd.DataFrame(load_or_skip("load_faithful").data, columns=["eruptions", "waiting"])


def test_gmm_table_names_features_and_holds_weights_and_means(tmp_path, faithful):
    spec = get_spec("gmm")
    model = spec.cls(n_components=2, random_state=0).fit(faithful)
    job = FigureJob(model, Data(X=faithful.to_numpy(), name="faithful"), tmp_path)
    (caption, rows), (sd_caption, sd_rows) = spec.tables(job)
    assert "weights and means" in caption and "standard deviations" in sd_caption
    assert list(rows[0]) == ["component", "weight", "eruptions", "waiting"]
    assert [row["component"] for row in rows] == [1, 2]
    weights = np.array([row["weight"] for row in rows])
    assert weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(weights, model.weights_)
    means = np.array([[row["eruptions"], row["waiting"]] for row in rows])
    np.testing.assert_allclose(means, model.means_)
    # the standard deviations are the square roots of the covariances' diagonals
    sd = np.array([[row["eruptions"], row["waiting"]] for row in sd_rows])
    np.testing.assert_allclose(sd ** 2, np.diagonal(model.covariances_, axis1=1, axis2=2))


def test_gmm_table_takes_data_column_names_when_fitted_on_an_array(tmp_path, faithful):
    model = get_spec("gmm").cls(n_components=2, random_state=0).fit(faithful.to_numpy())
    job = FigureJob(model, Data(X=faithful.to_numpy(), name="f", columns=["dur", "wait"]),
                    tmp_path)
    rows = get_spec("gmm").tables(job)[0][1]
    assert _feature_columns(rows) == ["dur", "wait"]
    unnamed = FigureJob(model, Data(X=faithful.to_numpy(), name="f"), tmp_path)
    assert _feature_columns(get_spec("gmm").tables(unnamed)[0][1]) == ["x1", "x2"]


def test_bernoulli_table_of_many_features_shows_the_most_different_twenty(tmp_path):
    rng = np.random.default_rng(0)
    prototypes = np.zeros((2, 64))
    prototypes[0, 10:40], prototypes[1, 30:60] = 0.9, 0.9  # columns 0-9, 60-63 always 0
    X = (rng.random((300, 64)) < prototypes[rng.integers(0, 2, 300)]).astype(float)
    names = [f"pixel_{j}" for j in range(64)]
    model = get_spec("bmm").cls(n_components=2, random_state=0).fit(X)
    (caption, rows), = get_spec("bmm").tables(FigureJob(model, Data(X=X, name="px",
                                                                    columns=names), tmp_path))
    shown = _feature_columns(rows)
    assert len(shown) == 20 and "20 of 64 features" in caption
    assert shown == sorted(shown, key=names.index), "shown in column order"
    picked = [names.index(name) for name in shown]
    assert all(10 <= j < 30 or 40 <= j < 60 for j in picked), picked  # the contrasting ones
    np.testing.assert_allclose([[row[n] for n in shown] for row in rows],
                               model.means_[:, picked])
    assert sum(row["weight"] for row in rows) == pytest.approx(1.0)


def test_categorical_table_names_the_most_probable_state(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.integers(0, 2, 300)
    X = np.column_stack([np.where(rng.random(300) < 0.9, z, 1 - z),
                         np.where(rng.random(300) < 0.9, 2 * z, 1)]).astype(float)
    categories = {"smoker": ("no", "yes"), "level": ("low", "mid", "high")}
    model = get_spec("cmm").cls(n_components=2, random_state=0).fit(X)
    data = Data(X=X, name="survey", columns=["smoker", "level"], categories=categories)
    (_, rows), = get_spec("cmm").tables(FigureJob(model, data, tmp_path))
    assert _feature_columns(rows) == ["smoker", "level"]
    for k, row in enumerate(rows):
        for j, name in enumerate(("smoker", "level")):
            probs = model.category_probs(j)[k]
            top = categories[name][int(np.argmax(probs))]
            assert row[name].startswith(f"{top} {probs.max():.2f}"), row[name]


def test_mppca_table_has_weights_means_and_noise(tmp_path):
    spec = get_spec("mppca")
    kwargs, X = spec.example(np.random.default_rng(0))
    model = spec.cls(**kwargs).fit(X)
    names = ["a", "b", "c", "d", "e"]
    (_, rows), = spec.tables(FigureJob(model, Data(X=X, name="m", columns=names), tmp_path))
    np.testing.assert_allclose([[row[n] for n in names] for row in rows], model.means_)
    np.testing.assert_allclose([row["noise variance σ²"] for row in rows],
                               model.noise_variance_)


# -- linear models -----------------------------------------------------------------------

WINE_NAMES = ["alcohol", "malic_acid", "ash", "alcalinity", "magnesium", "phenols"]


@pytest.fixture(scope="module")
def six_columns():
    _, X = get_spec("ppca").example(np.random.default_rng(0))
    return X


def test_loadings_heatmap_names_the_features_on_its_axis(six_columns):
    from latentkit.linear.figures import plot_loadings

    model = get_spec("ppca").cls(n_components=2, random_state=0).fit(six_columns)
    ax = plot_loadings(model.components_.T, WINE_NAMES)
    assert [t.get_text() for t in ax.get_yticklabels()] == WINE_NAMES
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    image = ax.get_images()[0]
    np.testing.assert_allclose(image.get_array(), model.components_.T)
    low, high = image.get_clim()
    assert low == pytest.approx(-high) and image.get_cmap().name == "RdBu_r"  # centred at 0
    assert len(ax.figure.axes) == 2, "a colorbar"


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("name", ["ppca", "fa", "pca"])
def test_loadings_figure_and_table(tmp_path, six_columns, name):
    spec = get_spec(name)
    model = spec.cls(n_components=2, random_state=0).fit(
        pd.DataFrame(six_columns, columns=WINE_NAMES))
    job = FigureJob(model, Data(X=six_columns, name="wine"), tmp_path)
    figures = dict(spec.figures(job))
    assert_png(tmp_path / "loadings.png")
    assert "loadings.png" in {path.name for path in figures}
    (caption, rows), = spec.tables(job)
    assert [row["feature"] for row in rows] == WINE_NAMES
    factors = [column for column in rows[0] if column[-1].isdigit()]
    assert len(factors) == 2
    np.testing.assert_allclose([[row[f] for f in factors] for row in rows],
                               model.components_.T)
    if name == "fa":
        np.testing.assert_allclose([row["noise variance ψ"] for row in rows],
                                   model.noise_variance_)


def test_many_features_cap_the_heatmap_and_drop_the_table(tmp_path):
    from latentkit.linear.figures import loadings_figure

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 40))
    X[:, 7] += 5 * rng.normal(size=200)  # the feature with the largest loading
    names = [f"gene{j}" for j in range(40)]
    spec = get_spec("ppca")
    model = spec.cls(n_components=2, random_state=0).fit(X)
    job = FigureJob(model, Data(X=X, name="genes", columns=names), tmp_path)
    (path, caption), = loadings_figure(job)
    assert "30 of 40 features" in caption and path.name == "loadings.png"
    assert spec.tables(job) == []
    images = Data(X=X, name="img", image_shape=(5, 8))
    assert loadings_figure(FigureJob(model, images, tmp_path)) == [], \
        "image data shows its components as images instead"


# -- Bayesian networks -------------------------------------------------------------------

STATES = {"A": ["no", "yes"], "B": ["lo", "hi"], "C": ["off", "on"], "D": ["f", "t"]}


@pytest.fixture(scope="module")
def network():
    from latentkit.bayesnet.demo import SEED_CARDS, SEED_EDGES, seed_network

    X, _ = seed_network().sample(300, random_state=0)
    X = np.asarray(X, dtype=np.float64)[:, [0, 1, 3]]
    model = get_spec("bayesnet").cls(edges=SEED_EDGES, cardinalities=SEED_CARDS,
                                     state_names=STATES, hidden=["C"], random_state=0)
    return model.fit(X), X


def test_cpt_tables_have_state_columns_and_rows_that_sum_to_one(tmp_path, network):
    model, X = network
    job = FigureJob(model, Data(X=X, name="net", columns=["A", "B", "D"]), tmp_path)
    tables = dict(get_spec("bayesnet").tables(job))
    assert list(tables) == ["p(A)", "p(B)", "p(C | A, B) (hidden)", "p(D | C)"]
    for caption, rows in tables.items():
        variable = caption[2]
        states = STATES[variable]
        assert list(rows[0])[-2:] == states
        for row in rows:
            assert sum(row[s] for s in states) == pytest.approx(1.0)
    c_rows = tables["p(C | A, B) (hidden)"]
    assert [(row["A"], row["B"]) for row in c_rows] == [("no", "lo"), ("no", "hi"),
                                                        ("yes", "lo"), ("yes", "hi")]
    np.testing.assert_allclose([[row["off"], row["on"]] for row in c_rows],
                               model.cpts_["C"].reshape(4, 2))


def test_cpt_rows_are_capped_and_parent_names_never_hide_a_state():
    from latentkit.bayesnet.figures import MAX_CPT_ROWS, cpt_rows

    cpt = np.full((3, 3, 3, 3, 2), 0.5)
    rows = cpt_rows(cpt, ["a", "b", "c", "d"], [["0", "1", "2"]] * 4, ["x", "y"])
    assert len(rows) == MAX_CPT_ROWS < 81
    assert rows[1] == {"a": "0", "b": "0", "c": "0", "d": "1", "x": 0.5, "y": 0.5}
    clash = cpt_rows(np.array([[0.2, 0.8], [0.6, 0.4]]), ["yes"], [["u", "v"]], ["no", "yes"])
    assert clash[1] == {"yes (parent)": "v", "no": 0.6, "yes": 0.4}


def test_network_figure_draws_every_variable(tmp_path, network):
    from latentkit.bayesnet.figures import plot_network

    model, X = network
    figures = get_spec("bayesnet").figures(FigureJob(model, Data(X=X, name="n"), tmp_path))
    assert_png(tmp_path / "network.png")
    assert (tmp_path / "network.png") in {path for path, _ in figures}
    ax = plot_network(["A", "B", "C", "D"], [(), (), (0, 1), (2,)], hidden=[2])
    assert sorted(t.get_text() for t in ax.texts) == ["A", "B", "C", "D"]
    assert len(ax.patches) == 3, "one arrow per edge"
    y = {t.get_text(): t.get_position()[1] for t in ax.texts}
    assert y["A"] == y["B"] > y["C"] > y["D"], "parents above their children"


# -- linear dynamical systems ------------------------------------------------------------


@pytest.fixture(scope="module")
def monthly():
    spec = get_spec("lds")
    _, X = spec.example(np.random.default_rng(0))
    X[40:45, 0] = np.nan  # a gap: "missing" is drawn on the first Axes only
    index = pd.date_range("2000-01-01", periods=len(X), freq="MS", name="month")
    model = spec.cls(state_dim=1, random_state=0, max_iter=10).fit(X)
    return model, Data(X=X, name="sales", columns=["sales", "cost"], index=index)


def _count_legends(figure) -> int:
    return sum(ax.get_legend() is not None for ax in figure.axes) + len(figure.legends)


def test_lds_signal_figure_has_a_date_axis_and_one_legend(monthly):
    from latentkit.dynamics.figures import signal_figure, time_axis

    model, data = monthly
    time, label = time_axis(data.index, len(data.X))
    assert label == "month" and np.issubdtype(time.dtype, np.datetime64)
    figure = signal_figure(model, data.X, time, data.column_names, time_label=label)
    ax = figure.axes[-1]
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
    start, stop = (mdates.num2date(x).year for x in ax.get_xlim())
    assert start in (1999, 2000) and stop in (2012, 2013)  # 150 months from Jan 2000
    assert np.issubdtype(np.asarray(ax.lines[0].get_xdata()).dtype, np.datetime64)
    assert _count_legends(figure) == 1
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert sorted(labels) == sorted(set(labels)) == sorted(
        ["missing", "observed", "filtered (95%)", "smoothed (95%)"])


def test_lds_without_index_counts_steps(monthly, tmp_path):
    from latentkit.dynamics.figures import time_axis

    model, data = monthly
    time, label = time_axis(None, 5)
    assert label is None and time.tolist() == [0, 1, 2, 3, 4]
    years = pd.Index(np.arange(1871, 1876), name="year")
    assert time_axis(years, 5)[0].tolist() == [1871.0, 1872, 1873, 1874, 1875]
    figures = get_spec("lds").figures(FigureJob(model, data.replace(index=None), tmp_path))
    assert_png(figures[0][0])


def test_lds_tables_hold_the_parameters(monthly, tmp_path):
    model, data = monthly
    (state_caption, states), (_, series) = get_spec("lds").tables(
        FigureJob(model, data, tmp_path))
    assert states == [{"state": "z1", "A": pytest.approx(model.transition_matrix_[0, 0]),
                       "b": pytest.approx(model.transition_offset_[0]),
                       "Q": pytest.approx(model.transition_covariance_[0, 0])}]
    assert f"{abs(model.transition_matrix_[0, 0]):.4g}" in state_caption
    assert [row["series"] for row in series] == ["sales", "cost"]
    np.testing.assert_allclose([row["C"] for row in series], model.observation_matrix_[:, 0])
    np.testing.assert_allclose([row["R (noise variance)"] for row in series],
                               np.diag(model.observation_covariance_))


def test_fit_lds_with_a_time_column_draws_dates(tmp_path, capsys):
    dates = pd.date_range("1990-01-01", periods=60, freq="QS")
    level = np.cumsum(np.random.default_rng(0).normal(size=60))
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "gdp": level}).to_csv(
        tmp_path / "gdp.csv", index=False)
    code, out, err = run_cli(["fit", "lds", tmp_path / "gdp.csv", "--time-col", "date",
                              "--out", tmp_path / "run", "-q", "--max-iter", "20"], capsys)
    assert code == 0, err
    assert_png(tmp_path / "run" / "signal.png")
