"""Every table the command line writes, for every registered model, has one name per value
in every row and reads back with the same names and row count (issue 10's proof)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.helpers import run_cli

from latentkit.registry import registered_specs
from latentkit.tables import read_table

SPECS = [spec for spec in registered_specs().values() if spec.example is not None]
VERBS = {"sample": None, "impute": "impute", "predict": "predict", "transform": "transform",
         "forecast": "forecast"}


def _fitted(spec, folder):
    """The spec's example problem as a named CSV and the model fitted on it, saved."""
    kwargs, X = spec.example(np.random.default_rng(0))
    names = (list(spec.cls(**kwargs).observed_variables) if spec.name == "bayesnet"
             else [f"f{j}" for j in range(X.shape[1])])
    frame = pd.DataFrame(X, columns=names)
    frame.to_csv(folder / "data.csv", index=False)
    model = spec.cls(**kwargs).fit(frame)
    model.save(folder / "model.npz")
    return model, frame


def _verb_argv(verb, folder, out):
    argv = [verb, folder / "model.npz"]
    if verb == "sample":
        return [*argv, "-n", "9", "--with-components", "--random-state", "0", "-o", out]
    argv += [folder / "data.csv", "-o", out]
    return [*argv, "--steps", "3"] if verb == "forecast" else argv


@pytest.mark.parametrize("spec", SPECS, ids=[spec.name for spec in SPECS])
def test_every_written_table_has_a_name_per_value(tmp_path, capsys, spec):
    model, frame = _fitted(spec, tmp_path)
    written = 0
    for verb, method in VERBS.items():
        if method is not None and not callable(getattr(model, method, None)):
            continue
        out = tmp_path / f"{verb}.csv"
        code, _, err = run_cli(_verb_argv(verb, tmp_path, out), capsys)
        assert code == 0, (verb, err)
        lines = out.read_text().splitlines()
        header = lines[0].split(",")
        assert {len(line.split(",")) for line in lines[1:]} == {len(header)}, (verb, lines[:3])
        rows = {"sample": 9, "forecast": 3}.get(verb, len(frame))
        assert len(lines) - 1 == rows, verb
        back = read_table(out, categorical=True)
        assert len(back.X) == rows and back.X.shape[1] + (back.index is not None) == len(
            header), verb
        written += 1
    assert written >= 2


@pytest.mark.parametrize("suffix", [".tsv", ".parquet", ".npz"])
def test_other_formats_read_back_with_their_names(tmp_path, capsys, suffix):
    spec = registered_specs()["gmm"]
    model, frame = _fitted(spec, tmp_path)
    for verb in ("predict", "transform", "impute"):
        out = tmp_path / f"{verb}{suffix}"
        assert run_cli(_verb_argv(verb, tmp_path, out), capsys)[0] == 0
        back = read_table(out)
        assert len(back.X) == len(frame) and len(back.columns) == back.X.shape[1]
    assert read_table(tmp_path / f"impute{suffix}").columns == list(frame.columns)
