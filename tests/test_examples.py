"""Every script in examples/ runs to the end (they are what the docs show)."""

import runpy
from pathlib import Path

import pytest

from latentkit.datasets import load_faithful

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path, monkeypatch, capsys):
    try:
        load_faithful()
    except FileNotFoundError:
        pytest.skip("the examples use Old Faithful (no ../shared/data, cache or network)")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.strip()
