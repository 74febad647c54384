"""The deep models' figures (`latentkit.deep.figures`): which figures a fit gets for image
and non-image data, and what each draws. Models are one or two epochs on small data."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import assert_png
from latentkit.deep import VAE
from latentkit.deep.figures import (
    deep_figures,
    image_shape_of,
    plot_imputations,
    plot_latent_space,
    plot_reconstructions,
    plot_samples,
    plot_traversals,
)
from latentkit.registry import FigureJob
from latentkit.tables import Data


@pytest.fixture(scope="module")
def digits():
    """(300, 64) binarized 8x8 digits and their labels."""
    from latentkit.datasets import load_digits

    bunch = load_digits()
    return (np.asarray(bunch.data[:300]) > 8).astype(np.float64), np.asarray(bunch.target[:300])


def _vae(X, latent_dim=2, **kwargs):
    return VAE(latent_dim, hidden=(32,), epochs=2, batch_size=50, device="cpu",
               random_state=0, verbose=False, **kwargs).fit(X)


def test_image_data_gets_five_figures(digits, tmp_path):
    X, y = digits
    model = _vae(X.reshape(-1, 8, 8))
    data = Data(X=X, name="digits", target=y, image_shape=(8, 8))
    figures = deep_figures(FigureJob(model, data, tmp_path))
    assert [path.name for path, _ in figures] == ["training.png", "latent.png",
                                                  "reconstructions.png", "generated.png",
                                                  "manifold.png"]
    for path, caption in figures:
        assert_png(path, min_side=150, max_side=10_000)
        assert caption.strip()
    assert "coloured by label" in dict((p.name, c) for p, c in figures)["latent.png"]


def test_rows_without_an_image_shape_get_no_image_figures(digits, tmp_path):
    X, _ = digits
    model = _vae(X, latent_dim=3)
    figures = deep_figures(FigureJob(model, Data(X=X, name="rows"), tmp_path))
    names = {path.name: caption for path, caption in figures}
    assert list(names) == ["training.png", "latent.png"]
    assert "PCA" in names["latent.png"] and "no labels" in names["latent.png"]


def test_the_image_shape_comes_from_the_data_or_the_fitted_rows(digits):
    X, _ = digits
    as_images, as_rows = _vae(X.reshape(-1, 8, 8)), _vae(X)
    assert image_shape_of(as_images) == (8, 8)
    assert image_shape_of(as_rows) is None
    assert image_shape_of(as_rows, Data(X=X, name="d", image_shape=(8, 8))) == (8, 8)
    assert image_shape_of(as_rows, Data(X=X, name="d", image_shape=(4, 4))) is None  # 16 != 64


def test_reconstructions_show_inputs_then_the_models_means(digits):
    X, _ = digits
    model = _vae(X)
    figure = plot_reconstructions(model, X, (8, 8), n_show=6)
    axes = [ax for ax in figure.axes if ax.images]
    assert len(axes) == 12
    np.testing.assert_array_equal(axes[0].images[0].get_array(), X[0].reshape(8, 8))
    np.testing.assert_allclose(axes[6].images[0].get_array(),
                               model.reconstruct(X[:1]).reshape(8, 8), rtol=1e-6)


def test_samples_are_decoded_means_of_prior_draws(digits):
    X, _ = digits
    model = _vae(X)
    figure = plot_samples(model, (8, 8), n=9, random_state=4)
    shown = np.array([ax.images[0].get_array() for ax in figure.axes if ax.images])
    _, z = model.sample(9, random_state=4)
    import torch

    with torch.no_grad():
        expected = torch.sigmoid(model.module_.decoder.net(torch.as_tensor(z))).numpy()
    np.testing.assert_allclose(shown.reshape(9, -1), expected, rtol=1e-5, atol=1e-6)


def test_traversals_move_one_latent_per_row_from_the_posterior_mean(digits):
    import torch

    X, _ = digits
    model = _vae(X, latent_dim=3)
    figure = plot_traversals(model, X[5], (8, 8), n_steps=4, limit=2.0, dims=[2, 0])
    shown = np.array([ax.images[0].get_array() for ax in figure.axes if ax.images])
    assert shown.shape == (8, 8, 8)
    mean = model.transform(X[5:6])[0]
    for row, j in enumerate([2, 0]):
        z = np.tile(mean, (4, 1))
        z[:, j] = [-2.0, -2 / 3, 2 / 3, 2.0]
        with torch.no_grad():
            expected = torch.sigmoid(model.module_.decoder.net(
                torch.as_tensor(z, dtype=torch.float32))).numpy()
        np.testing.assert_allclose(shown[4 * row:4 * (row + 1)].reshape(4, -1), expected,
                                   rtol=1e-5, atol=1e-6)
    # by default every dimension, the most used (largest KL on x) first
    default = plot_traversals(model, X[5], (8, 8), n_steps=3)
    titles = [ax.get_title() for ax in default.axes if ax.images][::3]
    q = model.posterior(X[5:6])
    variance = np.diagonal(q.cov[0])
    kl = 0.5 * (variance + q.mean[0] ** 2 - 1 - np.log(variance))
    assert titles == [f"z{j}" for j in np.argsort(-kl)]


def test_latent_space_is_coloured_by_label():
    rng = np.random.default_rng(0)
    Z, labels = rng.normal(size=(60, 2)), np.repeat([3, 5, 7], 20)
    ax = plot_latent_space(Z, labels, label_name="digit")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["3", "5", "7"]
    assert ax.get_xlabel() == "z1"
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(np.sort(offsets[:, 0]), np.sort(Z[:, 0]))
    wide = plot_latent_space(rng.normal(size=(60, 5)), None)
    assert wide.get_xlabel().startswith("PC 1") and wide.get_legend() is None


def test_imputations_show_originals_masked_inputs_then_each_imputation(digits):
    X, _ = digits
    masked = X[:6].copy()
    masked[:, :32] = np.nan                                   # the top half of 8x8
    filled = {"first": np.full((6, 64), 0.25), "second": np.where(np.isnan(masked), 0.75,
                                                                   masked)}
    figure = plot_imputations(X[:6], masked, filled, (8, 8), n_show=4)
    axes = [ax for ax in figure.axes if ax.images]
    assert len(axes) == 4 * 4                                 # 4 rows of 4 images
    assert [axes[4 * i].get_title() for i in range(4)] == ["original", "masked input",
                                                           "first", "second"]
    shown = [np.ma.filled(ax.images[0].get_array(), np.nan) for ax in axes]
    for column in range(4):
        np.testing.assert_array_equal(shown[column], X[column].reshape(8, 8))
        np.testing.assert_array_equal(shown[4 + column], masked[column].reshape(8, 8))
        np.testing.assert_array_equal(shown[8 + column], np.full((8, 8), 0.25))
        np.testing.assert_array_equal(shown[12 + column], filled["second"][column].reshape(8, 8))
    # on a fixed [0, 1] grey scale, hidden (NaN) pixels in the "bad" colour: not a grey,
    # so no pixel value can look hidden
    image = axes[4].images[0]
    assert image.get_clim() == (0.0, 1.0)
    red, green, blue, _ = image.cmap.get_bad()
    assert not (red == green == blue)
