"""`latentkit evaluate --disentanglement` (issue 15): the four metrics of a model's
representation against DATA's factors (a --factors file, or the factors the bundled sprites
carry), the same numbers as the library's functions, and clear errors without factors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.helpers import assert_user_error, run_cli

from latentkit import load
from latentkit.metrics import dci, factorvae_score, mig, sap


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    """Rows mixing two 3-valued factors linearly in 4 columns, a PCA fitted on them by the
    CLI, and the factors file."""
    from latentkit.cli.main import main

    folder = tmp_path_factory.mktemp("factors")
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 3, size=(300, 2))
    mixing = np.array([[1.0, 0.2, 0.5, -0.3], [0.1, 1.0, -0.4, 0.6]])
    X = factors @ mixing + 0.05 * rng.standard_normal((300, 4))
    np.savetxt(folder / "x.csv", X, delimiter=",", header="a,b,c,d", comments="")
    np.savetxt(folder / "f.csv", factors, delimiter=",", header="first,second", comments="",
               fmt="%d")
    assert main(["fit", "pca", str(folder / "x.csv"), "-k", "2", "-q",
                 "--out", str(folder / "run")]) == 0
    return folder, X, factors


def test_the_rows_are_the_library_metrics_of_the_models_transform(linear_run, capsys):
    folder, X, factors = linear_run
    code, out, err = run_cli(["evaluate", folder / "run", folder / "x.csv",
                              "--disentanglement", "--factors", folder / "f.csv", "--json"],
                             capsys)
    assert code == 0, err
    rows = json.loads(out)
    codes = load(folder / "run" / "model.npz").transform(pd.DataFrame(X, columns=list("abcd")))
    scores = dci(codes, factors, random_state=0)
    assert rows["mig"] == pytest.approx(mig(codes, factors), abs=1e-12)
    assert rows["sap"] == pytest.approx(sap(codes, factors, random_state=0), abs=1e-12)
    assert rows["dci_disentanglement"] == pytest.approx(scores["disentanglement"], abs=1e-12)
    assert rows["dci_completeness"] == pytest.approx(scores["completeness"], abs=1e-12)
    assert rows["dci_informativeness"] == pytest.approx(scores["informativeness"], abs=1e-12)
    assert rows["factorvae_score"] == pytest.approx(
        factorvae_score(codes, factors, random_state=0), abs=1e-12)
    assert "first, second" in err  # the factors' names, from the file's header


def test_without_factors_or_with_the_wrong_rows_it_is_a_clear_error(linear_run, capsys):
    folder, X, factors = linear_run
    assert_user_error(["evaluate", folder / "run", folder / "x.csv", "--disentanglement"],
                      capsys, "has none", "--factors FILE")
    np.savetxt(folder / "short.csv", factors[:10], delimiter=",", fmt="%d")
    assert_user_error(["evaluate", folder / "run", folder / "x.csv", "--disentanglement",
                       "--factors", folder / "short.csv"], capsys, "has 10 rows", "300")
    np.savetxt(folder / "real.csv", factors + 0.5, delimiter=",")
    assert_user_error(["evaluate", folder / "run", folder / "x.csv", "--disentanglement",
                       "--factors", folder / "real.csv"], capsys, "integer factor values")
    assert_user_error(["evaluate", folder / "run", folder / "x.csv",
                       "--factors", folder / "f.csv"], capsys, "--disentanglement")


def test_a_folder_fitted_on_sprites_is_evaluated_on_them_with_their_factors(tmp_path,
                                                                            capsys):
    from latentkit.cli.data import load_data

    code, _, err = run_cli(["fit", "pca", "sprites", "--max-rows", "200", "-k", "3", "-q",
                            "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["data_source"], summary["max_rows"]) == ("sprites", 200)
    code, out, err = run_cli(["evaluate", tmp_path / "run", "--disentanglement", "--json"],
                             capsys)
    assert code == 0, err
    rows = json.loads(out)
    data = load_data("sprites", max_rows=200)
    codes = load(tmp_path / "run" / "model.npz").transform(data.frame())
    assert rows["rows"] == 200
    assert rows["mig"] == pytest.approx(mig(codes, data.factors), abs=1e-12)
