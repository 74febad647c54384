"""Categorical columns by name on the command line (issue 10, part 3): text states in, the
same names out, for the categorical mixture, latent class analysis and a Bayesian network
whose BIF names its states; the CLI's numbers equal the Python API's on the same table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.helpers import run_cli

from latentkit import CategoricalMixture, DiscreteBayesNet, LatentClassModel, load


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """200 rows of two text columns and one integer column from two classes, two cells
    missing, as a CSV and as the DataFrame it was written from."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 200)
    color = np.where(z == 0, rng.choice(["red", "green"], 200, p=[0.8, 0.2]),
                     rng.choice(["red", "green", "blue"], 200, p=[0.1, 0.2, 0.7]))
    size = np.where(z == 0, rng.choice(["S", "M"], 200, p=[0.7, 0.3]),
                    rng.choice(["M", "L"], 200, p=[0.3, 0.7]))
    frame = pd.DataFrame({"color": color.astype(object), "size": size.astype(object),
                          "count": rng.integers(0, 3, 200)})
    frame.loc[5, "color"] = None
    frame.loc[7, "size"] = None
    path = tmp_path_factory.mktemp("survey") / "survey.csv"
    frame.to_csv(path, index=False)
    return path, frame


@pytest.mark.parametrize("name, cls, size", [("cmm", CategoricalMixture, "n_components"),
                                             ("lca", LatentClassModel, "n_classes")])
def test_text_states_in_and_out(tmp_path, capsys, survey, name, cls, size):
    csv, frame = survey
    code, _, err = run_cli(["fit", name, csv, "-k", "2", "--random-state", "0", "-q", "-o",
                            tmp_path / "r"], capsys)
    assert code == 0, err
    model = load(tmp_path / "r" / "model.npz")
    assert list(model.categories_[0]) == ["blue", "green", "red"]
    assert list(model.categories_[1]) == ["L", "M", "S"]
    python = cls(**{size: 2}, random_state=0).fit(frame)  # the same table, in Python
    np.testing.assert_allclose(model.probs_, python.probs_, rtol=0, atol=1e-12)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["mean_log_likelihood"] == pytest.approx(python.score(frame), abs=1e-12)

    run_cli(["impute", tmp_path / "r" / "model.npz", csv, "-o", tmp_path / "i.csv"], capsys)
    filled = pd.read_csv(tmp_path / "i.csv")
    assert list(filled.columns) == ["color", "size", "count"] and len(filled) == 200
    expected = python.impute(frame)
    assert filled.loc[5, "color"] == expected.loc[5, "color"] and filled.loc[5, "color"] in (
        "blue", "green", "red")
    assert filled.loc[7, "size"] == expected.loc[7, "size"]
    pd.testing.assert_frame_equal(filled.drop(index=[5, 7]), frame.drop(index=[5, 7]),
                                  check_dtype=False)

    run_cli(["sample", tmp_path / "r" / "model.npz", "-n", "50", "-o", tmp_path / "s.csv"],
            capsys)
    drawn = pd.read_csv(tmp_path / "s.csv")
    assert list(drawn.columns) == ["color", "size", "count"]
    assert set(drawn["color"]) <= {"blue", "green", "red"} and set(drawn["size"]) <= {
        "L", "M", "S"}
    assert set(drawn["count"]) <= {0, 1, 2}  # codes stay integers, not 1.0


def test_an_unknown_state_is_an_error_naming_it(tmp_path, capsys, survey):
    csv, frame = survey
    run_cli(["fit", "cmm", csv, "-k", "2", "-q", "-o", tmp_path / "r"], capsys)
    odd = frame.copy()
    odd.loc[3, "color"] = "purple"
    odd.to_csv(tmp_path / "odd.csv", index=False)
    code, _, err = run_cli(["evaluate", tmp_path / "r" / "model.npz", tmp_path / "odd.csv"],
                           capsys)
    assert code == 2 and "'purple'" in err and "blue" in err


@pytest.fixture(scope="module")
def weather(tmp_path_factory):
    """Rain -> WetGrass <- Sprinkler with yes/no states in a BIF file, and 300 rows of
    state names (some missing)."""
    folder = tmp_path_factory.mktemp("weather")
    net = DiscreteBayesNet(
        edges=[("Rain", "WetGrass"), ("Sprinkler", "WetGrass")],
        cardinalities={"Rain": 2, "Sprinkler": 2, "WetGrass": 2},
        cpts={"Rain": [0.3, 0.7], "Sprinkler": [0.4, 0.6],
              "WetGrass": [[[0.99, 0.01], [0.8, 0.2]], [[0.9, 0.1], [0.05, 0.95]]]},
        state_names={v: ["yes", "no"] for v in ("Rain", "Sprinkler", "WetGrass")})
    net.to_bif(folder / "net.bif")
    X, _ = net.sample(300, random_state=1)
    names = np.where(np.asarray(X) == 0, "yes", "no").astype(object)
    names[np.random.default_rng(2).random(names.shape) < 0.15] = None
    frame = pd.DataFrame(names, columns=["Rain", "Sprinkler", "WetGrass"])
    frame[["WetGrass", "Rain", "Sprinkler"]].to_csv(folder / "weather.csv", index=False)
    return folder / "net.bif", folder / "weather.csv", frame


def test_a_bayes_net_reads_and_writes_its_bif_state_names(tmp_path, capsys, weather):
    bif, csv, frame = weather
    code, _, err = run_cli(["fit", "bayesnet", csv, "--structure", bif, "-q", "-o",
                            tmp_path / "r"], capsys)
    assert code == 0, err
    model = load(tmp_path / "r" / "model.npz")
    python = DiscreteBayesNet.from_bif(bif).fit(frame)
    for name, table in python.cpts_.items():
        np.testing.assert_allclose(model.cpts_[name], table, rtol=0, atol=1e-12)

    run_cli(["impute", tmp_path / "r" / "model.npz", csv, "-o", tmp_path / "i.csv"], capsys)
    filled = pd.read_csv(tmp_path / "i.csv")
    assert list(filled.columns) == ["WetGrass", "Rain", "Sprinkler"]  # the file's order
    assert filled.notna().all().all() and set(filled.stack()) == {"yes", "no"}

    code, _, _ = run_cli(["predict", tmp_path / "r" / "model.npz", csv, "-o",
                          tmp_path / "p.csv"], capsys)
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert code == 0 and list(predicted.columns) == ["Rain", "Sprinkler", "WetGrass",
                                                     "log_prob"]
    truth = python.map_assignment(evidence=frame, as_names=True)
    assert list(predicted["Rain"]) == list(truth.assignment["Rain"])
    np.testing.assert_allclose(predicted["log_prob"], truth.log_prob, rtol=1e-12)
