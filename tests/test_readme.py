"""The README's quickstart is code users copy: it must run as written."""

import re
from pathlib import Path

import pytest

from latentkit.datasets import load_faithful

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs(tmp_path, monkeypatch):
    try:
        load_faithful()
    except FileNotFoundError:
        pytest.skip("Old Faithful is not available (no ../shared/data, cache or network)")
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 -- our own README
    assert namespace["best"].n_components == namespace["k"]
    assert (tmp_path / "gmm.npz").exists()
