"""The command line and demo for Bayesian networks: `latentkit fit bayesnet DATA
--structure NET.bif`, and the demo section of the seed's A-B-C-D network."""

from __future__ import annotations

import json

import numpy as np
import pytest

import latentkit
from latentkit.bayesnet.demo import completion_table, seed_bayesnet, seed_network
from latentkit.cli.demo import Progress
from latentkit.cli.main import main


def test_fit_bayesnet_from_a_bif_structure(tmp_path, capsys):
    net = seed_network()
    net.to_bif(tmp_path / "net.bif")
    X, _ = net.sample(400, random_state=0)
    X[np.random.default_rng(0).random(X.shape) < 0.3] = np.nan
    lines = ["D,C,B,A"] + [",".join("" if np.isnan(v) else str(int(v)) for v in row[::-1])
                           for row in X]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    assert main(["fit", "bayesnet", str(tmp_path / "data.csv"), "--structure",
                 str(tmp_path / "net.bif"), "--out", str(out), "-q", "--random-state",
                 "0"]) == 0
    model = latentkit.load(out / "model.npz")
    summary = json.loads((out / "summary.json").read_text())
    # every row counts, an all-missing one (`,,,`) too: it is kept in its place (issue 10)
    assert np.isnan(X).all(axis=1).any(), "the data should hold an all-missing row"
    assert summary["rows"] == len(X)
    assert summary["mean_log_likelihood"] == pytest.approx(model.score(X))
    assert (out / "history.png").exists()
    assert main(["fit", "bayesnet", str(tmp_path / "data.csv"), "-q"]) == 2
    assert "needs --structure" in capsys.readouterr().err


def test_demo_section_completion_table_and_em(tmp_path):
    rows = completion_table(seed_network())
    assert [r["weight p(B, C | a, not d)"] for r in rows] == ["0.0492", "0.8852", "0.0164",
                                                              "0.0492"]
    section = seed_bayesnet(tmp_path, Progress(enabled=False), quick=True)
    assert all(path.exists() for path, _ in section.figures)
    fit = dict(section.tables)["EM fit"][0]
    assert fit["final largest CPT error"] < 0.25
