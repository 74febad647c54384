"""The deep section of `latentkit demo` in quick mode (seconds): its figures, its table of
four estimators of log p(x) on test images, and the fallback to scikit-learn's digits when
MNIST is absent."""

from __future__ import annotations

import re

import pytest

from helpers import assert_png
from latentkit.cli.demo import Progress, sections
from latentkit.cli.report import Report
from latentkit.deep.demo import LATENT_DIMS, QUICK, mnist_vae
from latentkit.registry import get_spec

FIGURES = ["reconstructions.png", "samples.png", "latent.png", "manifold.png", "training.png"]


def _estimates(section) -> dict[str, dict[str, float]]:
    """estimator name (without its k) -> {model column: value}."""
    rows = dict(section.tables)["log p(x) of test images by four estimators"]
    return {row["estimator (mean log p(x), nats)"].split(" (")[0]:
            {key: value for key, value in row.items() if key.startswith("latent_dim")}
            for row in rows}


def check_section(section, tmp_path):
    assert [path.name for path, _ in section.figures] == FIGURES
    for path, caption in section.figures:
        assert_png(path, min_side=150, max_side=10_000)
        assert caption.strip(), f"{path} has no caption"
    estimates = _estimates(section)
    assert list(estimates) == ["ELBO", "IWAE bound", "importance sampling with q",
                               "naive Monte Carlo from the prior"]
    for column in (f"latent_dim={dim}" for dim in LATENT_DIMS):
        values = {name: row[column] for name, row in estimates.items()}
        assert all(-1e4 < v < 0 for v in values.values()), values
        # averaged over the test images, k = 50 draws from q bound log p(x) more tightly
        # than one (Burda et al.: E[IWAE_k] is non-decreasing in k); seeded, so exact
        assert values["ELBO"] < values["IWAE bound"], values
    training = dict(section.tables)["training"]
    assert [row["latent_dim"] for row in training] == list(LATENT_DIMS)
    assert all(1 <= row["epochs"] <= QUICK.epochs for row in training)
    assert "naive Monte Carlo fails" in section.text
    report = Report("demo")
    report.add(section)
    html = report.write(tmp_path).read_text()
    for source in re.findall(r'<img src="([^"]+)"', html):
        assert (tmp_path / source).is_file()
    return estimates


def test_vae_section_quick(tmp_path):
    section = mnist_vae(tmp_path, Progress(enabled=False), quick=True)
    if section.text.startswith("Note: the dataset was not found"):
        pytest.skip("MNIST is absent: the fallback test covers this checkout")
    estimates = check_section(section, tmp_path)
    assert "MNIST training images" in section.text
    # the notes' point: from the prior, naive Monte Carlo misses the z that explain an
    # image; with 20 latent dimensions it falls far below importance sampling
    naive = estimates["naive Monte Carlo from the prior"][f"latent_dim={LATENT_DIMS[1]}"]
    importance = estimates["importance sampling with q"][f"latent_dim={LATENT_DIMS[1]}"]
    assert naive < importance - 10, (naive, importance)


def test_vae_section_falls_back_to_digits(tmp_path, monkeypatch):
    import latentkit.datasets as datasets

    def absent(*args, **kwargs):
        raise FileNotFoundError("Data file 'x' was not found.\nLooked in: nowhere")

    monkeypatch.setattr(datasets, "load_mnist", absent)
    section = mnist_vae(tmp_path, Progress(enabled=False), quick=True)
    assert section.text.startswith("Note: the dataset was not found")
    assert "8x8 digits" in section.text
    check_section(section, tmp_path)


def test_the_section_is_the_vae_specs_demo():
    assert get_spec("vae").demo is mnist_vae and mnist_vae in sections()
