"""The README's quickstart is code users copy: it must run as written."""

import re
from pathlib import Path

import numpy as np
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


def test_other_families_snippet_runs(tmp_path, monkeypatch):
    from latentkit.datasets import load_nile

    try:
        load_nile()
    except FileNotFoundError:
        pytest.skip("the Nile series is not available (no ../shared/data, cache or network)")
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 -- our own README
    # the published local-level MLE (Durbin & Koopman) and the lecture's completion weights
    np.testing.assert_allclose(namespace["lds"].observation_covariance_[0, 0], 15099, rtol=0.01)
    np.testing.assert_allclose(namespace["lds"].transition_covariance_[0, 0], 1469.1, rtol=0.01)
    joint = namespace["net"].posterior_joint(["B", "C"], evidence={"A": 1, "D": 0})
    np.testing.assert_allclose(joint, [[0.0492, 0.0164], [0.8852, 0.0492]], atol=5e-5)
    assert np.isfinite(namespace["ppca"].impute(namespace["X_nan"])).all()


def test_pandas_snippet_runs():
    import pandas as pd

    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[2]
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 -- our own README
    assert list(namespace["scores"].columns) == ["pca0", "pca1"]
    assert isinstance(namespace["completed"], pd.DataFrame)
    assert not namespace["completed"].isna().any().any()
    assert list(namespace["samples"].columns) == list("abcd")


def test_pykalman_snippet_runs_and_matches_pykalman():
    from pykalman import KalmanFilter

    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[3]
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 -- our own README
    y = namespace["y"]
    peer = KalmanFilter(transition_matrices=[[1.0]], observation_matrices=[[1.0]]).em(
        y, n_iter=5)
    means, covariances = peer.smooth(y)
    np.testing.assert_allclose(namespace["means"], means, rtol=1e-10)
    np.testing.assert_allclose(namespace["covariances"], covariances, rtol=1e-10)
    mean, cov = peer.filter_update(means[-1], covariances[-1], observation=[2.4])
    np.testing.assert_allclose(namespace["mean"], mean, rtol=1e-10)


def test_topic_model_snippet_runs(tmp_path, monkeypatch):
    from latentkit.datasets import load_ap

    try:
        load_ap()
    except FileNotFoundError:
        pytest.skip("the AP corpus is not available (no ../shared/data, cache or network)")
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[4]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 -- our own README
    lda = namespace["lda"]
    assert namespace["theta"].shape == (246, 20)
    assert all(word in set(namespace["ap"].vocabulary) for word in lda.top_words(8)[0])
    # AP's completion perplexity is in the low thousands for 20 topics (a uniform model over
    # its 10,473 words would give 10,473)
    assert 1000 < lda.perplexity(namespace["test"]) < 5000


def test_deep_snippet_runs(tmp_path, monkeypatch):
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[5]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 -- our own README
    elbo, log_px = namespace["elbo"], namespace["log_px"]
    assert namespace["codes"].shape == (1797, 8) and namespace["images"].shape == (16, 64)
    # the importance estimate is a tighter bound than the ELBO (on average over rows)
    assert log_px.mean() > elbo.mean()


def test_disentanglement_snippet_runs(tmp_path, monkeypatch):
    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[6]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 -- our own README
    assert set(namespace["terms"]) >= {"mi", "tc", "dimwise_kl", "reconstruction", "kl"}
    assert all(len(values) == 2 for values in namespace["terms"].values())
    scores = namespace["scores"]
    assert namespace["codes"].shape == (2000, 6)
    assert 0 <= scores["MIG"] <= 1 and 0 <= scores["disentanglement"] <= 1
