"""The disentanglement section of `latentkit demo` (issue 15) in quick mode: its figures
(traversals, training curves, a discrete VAE's samples), its metrics table for the VAE,
β-VAE and β-TC-VAE (each value the library's metric of the model's codes), registration
in the demo, and the fallback to scikit-learn's digits when MNIST is absent."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import assert_png, hide_datasets
from latentkit.cli.demo import Progress, sections
from latentkit.datasets import make_sprites
from latentkit.deep.demo_disentangle import MODELS, QUICK, sprites_and_discrete
from latentkit.metrics import mig

TABLE = "disentanglement of the posterior means (higher is more disentangled)"
FIGURES = ["traversals.png", "training.png", "discrete_samples.png"]


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, sprites_and_discrete(out, Progress(enabled=False), quick=True)


def test_the_section_draws_its_figures_and_scores_the_three_models(section):
    out, result = section
    assert [path.name for path, _ in result.figures] == FIGURES
    for path, caption in result.figures:
        assert path.parent == out / "disentangle" and caption
        assert_png(path)
    rows = dict(result.tables)[TABLE]
    assert [row["model"] for row in rows] == list(MODELS)
    for row in rows:
        for metric in ("MIG", "SAP", "DCI disentanglement", "DCI completeness",
                       "DCI informativeness", "FactorVAE score"):
            assert 0 <= row[metric] <= 1, row
    assert "sprites" in result.text and "Gumbel-softmax" in result.text


def test_the_table_holds_the_metric_of_each_models_codes(section):
    from latentkit import deep

    _, result = section
    bunch = make_sprites(QUICK.n_sprites, random_state=0)
    images = np.asarray(bunch.images, dtype=np.float32)
    row = dict(result.tables)[TABLE][1]
    beta_vae = deep.BetaVAE(QUICK.latent_dim, beta=4.0, hidden=QUICK.hidden,
                            epochs=QUICK.epochs, batch_size=64, device="cpu", random_state=0,
                            verbose=False).fit(images)
    codes = beta_vae.transform(images[:QUICK.n_scored]).astype(np.float64)
    assert row["MIG"] == round(mig(codes, bunch.factors[:QUICK.n_scored]), 3)


def test_the_section_is_in_the_demo_and_falls_back_to_digits(tmp_path, monkeypatch):
    assert sprites_and_discrete in sections()
    hide_datasets(monkeypatch, "load_mnist")
    result = sprites_and_discrete(tmp_path, Progress(enabled=False), quick=True)
    assert "digits" in result.text and "was not found" in result.text
