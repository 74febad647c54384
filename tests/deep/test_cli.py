"""The deep models on the command line (issue 14 part 7): `latentkit fit vae` on bundled
digits, `evaluate DIR --iwae K`, `sample DIR -n N` as an image grid, and the errors a user
can make. Fits are one epoch on a few hundred 8x8 images (seconds)."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from helpers import assert_png, assert_user_error, run_cli
from latentkit import VAE, load
from latentkit.cli.data import load_data
from latentkit.deep._registry import binary_images


def _fit(out, capsys, *extra):
    code, stdout, err = run_cli(["fit", "vae", "digits", "--max-rows", "300", "--epochs", "1",
                                 "--random-state", "0", "--out", out, *extra], capsys)
    assert code == 0, err
    return stdout, err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A VAE with a 2-D latent space fitted by the CLI to 300 binarized digits."""
    from latentkit.cli.main import main

    out = tmp_path_factory.mktemp("vae") / "run"
    code = main(["fit", "vae", "digits", "--max-rows", "300", "--epochs", "1", "-k", "2",
                 "--random-state", "0", "-q", "--out", str(out)])
    assert code == 0
    return out


def _digits_binary(n_rows: int) -> np.ndarray:
    return binary_images(load_data("digits", max_rows=n_rows)).X


def test_fit_writes_the_model_summary_and_figures(run_dir):
    model = load(run_dir / "model.npz")
    assert isinstance(model, VAE) and model.latent_dim == 2 and model.epochs == 1
    assert model.input_shape_ == (8, 8)  # bundled images are given to the model as images
    assert model.verbose == 0  # -q: no progress bar, even on a terminal
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["latent_dim"] == 2 and summary["rows"] == 300
    assert summary["figures"] == ["training.png", "latent.png", "reconstructions.png",
                                  "generated.png", "manifold.png"]
    for name in summary["figures"]:
        assert_png(run_dir / name, min_side=150, max_side=10_000)
    # the summary's ELBO is the model's, on the binarized digits it was fitted to
    X = _digits_binary(300).reshape(300, 8, 8)
    expected = model.score_samples(X, method="elbo", n_samples=1).mean()
    assert summary["mean_elbo"] == pytest.approx(expected, rel=1e-12)


def test_the_size_parameter_is_an_alias_of_k(tmp_path, capsys):
    stdout, _ = _fit(tmp_path / "run", capsys, "--latent-dim", "3")
    assert load(tmp_path / "run" / "model.npz").latent_dim == 3
    assert "latent dimension" in stdout and "mean ELBO" in stdout
    assert not (tmp_path / "run" / "manifold.png").exists()  # a 2-D latent space only


def test_fit_shows_a_progress_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _, err = _fit(tmp_path / "run", capsys)
    # the bar is drawn (tqdm throttles its refreshes: which counts appear depends on speed)
    assert re.search(r"train:.*\d+/3", err), err


def test_evaluate_a_folder_with_importance_sampling(run_dir, capsys):
    code, out, err = run_cli(["evaluate", run_dir, "digits", "--max-rows", "100",
                              "--iwae", "50", "--json"], capsys)
    assert code == 0, err
    figures = json.loads(out)
    model = load(run_dir / "model.npz")
    X = _digits_binary(100).reshape(100, 8, 8)
    importance = model.score_samples(X, method="importance", n_samples=50).mean()
    assert figures["rows"] == 100
    assert figures["mean_log_likelihood_importance"] == pytest.approx(importance, rel=1e-12)
    # importance sampling with 50 draws is a tighter bound than one-sample ELBO on average
    assert figures["mean_elbo"] < figures["mean_log_likelihood_importance"]
    code, text, _ = run_cli(["evaluate", run_dir / "model.npz", "digits", "--max-rows", "100",
                             "--iwae", "50"], capsys)
    assert code == 0 and "mean log-likelihood (importance sampling, k=50)" in text


def test_evaluate_without_data_reads_what_the_folder_was_fitted_on(run_dir, capsys):
    """A folder written by fit records its bundled data (digits, 300 rows): evaluate reads
    it again. A model file alone records none: the digits model meets the spec's default,
    binarized_mnist (784 columns), and the error proves which data was read (or says the
    file is absent)."""
    code, out, err = run_cli(["evaluate", run_dir], capsys)
    assert code == 0, err
    assert "digits (binarized at 8): 300 rows" in out
    line = assert_user_error(["evaluate", run_dir / "model.npz", "--max-rows", "20"], capsys,
                             notes=True)
    assert "784 columns" in line or "binarized_mnist" in line, line


def test_evaluate_iwae_of_a_model_without_sampling_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(["fit", "gmm", "iris", "-k", "2", "-q", "--out", tmp_path],
                           capsys)
    assert code == 0, err
    assert_user_error(["evaluate", tmp_path, "iris", "--iwae", "10"], capsys, "--iwae",
                      "GaussianMixture")


def test_sample_writes_an_image_grid_by_default(run_dir, tmp_path, capsys):
    code, out, err = run_cli(["sample", run_dir, "-n", "16", "--random-state", "0"], capsys)
    assert code == 0, err
    assert_png(run_dir / "samples.png", min_side=150, max_side=10_000)
    assert "16 samples" in out
    code, _, err = run_cli(["sample", run_dir / "model.npz", "-n", "16", "--out",
                            tmp_path / "grid.png"], capsys)
    assert code == 0, err
    assert_png(tmp_path / "grid.png", min_side=150, max_side=10_000)


def test_sample_to_a_table_matches_python(run_dir, tmp_path, capsys):
    code, _, err = run_cli(["sample", run_dir, "-n", "5", "--random-state", "3", "--out",
                            tmp_path / "draws.npy"], capsys)
    assert code == 0, err
    draws = np.load(tmp_path / "draws.npy")
    expected, _ = load(run_dir / "model.npz").sample(5, random_state=3)
    np.testing.assert_array_equal(draws, expected)
    assert draws.shape == (5, 64) and set(np.unique(draws)) <= {0.0, 1.0}


def test_sample_of_a_model_without_images_needs_out(tmp_path, capsys):
    code, _, err = run_cli(["fit", "gmm", "iris", "-k", "2", "-q", "--out", tmp_path],
                           capsys)
    assert code == 0, err
    assert_user_error(["sample", tmp_path, "-n", "4"], capsys, "--out")
    assert_user_error(["sample", tmp_path, "-n", "4", "--out", tmp_path / "x.png"], capsys,
                      "image grid")


def test_non_binary_data_into_a_bernoulli_vae_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "grey.csv"
    rng = np.random.default_rng(0)
    np.savetxt(path, rng.uniform(size=(30, 5)), delimiter=",", header="a,b,c,d,e",
               comments="")
    assert_user_error(["fit", "vae", path, "--epochs", "1", "--out", tmp_path / "run"],
                      capsys, "binary", "likelihood='gaussian'")


def test_a_folder_without_a_model_is_a_clear_error(tmp_path, capsys):
    assert_user_error(["evaluate", tmp_path, "digits"], capsys, "model.npz")
