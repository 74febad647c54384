"""Figures of the mixture family (latentkit.mixture.figures): density contours and ellipse
geometry against closed forms, behaviour on bad input, valid PNG files, and the figures
`latentkit fit` draws for each mixture. Mixtures here are scikit-learn's GaussianMixture (an
independent stand-in with the same attribute names) and latentkit's own."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

from helpers import assert_png, three_blobs
from latentkit import plot
from latentkit.mixture.figures import _ellipse, component_covariances, plot_density_2d


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def blobs():
    return three_blobs()


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_component_covariances_expand_every_type(blobs, covariance_type):
    model = SkGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    full = component_covariances(model)
    assert full.shape == (3, 2, 2)
    # independent truth: scikit-learn's precisions_cholesky_ give Σ^-1 = L L^T per component
    chol = model.precisions_cholesky_
    if covariance_type == "full":
        precisions = chol @ np.swapaxes(chol, 1, 2)
    elif covariance_type == "tied":
        precisions = np.broadcast_to(chol @ chol.T, (3, 2, 2))
    elif covariance_type == "diag":
        precisions = chol[:, :, None] ** 2 * np.eye(2)
    else:
        precisions = chol[:, None, None] ** 2 * np.eye(2)
    np.testing.assert_allclose(full @ precisions, np.broadcast_to(np.eye(2), (3, 2, 2)),
                               atol=1e-8)


def test_ellipse_axes_and_angle_match_the_covariance():
    # Σ = R diag(9, 1) R^T with R a rotation by 30°: the 2-s.d. ellipse has full axes
    # 2 * 2 * 3 = 12 and 2 * 2 * 1 = 4, its long axis at 30° (mod 180°).
    angle = math.radians(30)
    R = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    covariance = R @ np.diag([9.0, 1.0]) @ R.T
    ellipse = _ellipse([1.0, 2.0], covariance, 2, "k", "-")
    assert ellipse.width == pytest.approx(12.0)
    assert ellipse.height == pytest.approx(4.0)
    assert ellipse.angle % 180 == pytest.approx(30.0)
    assert tuple(ellipse.center) == (1.0, 2.0)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_density_2d_draws_contours_ellipses_and_points(tmp_path, blobs, covariance_type):
    model = SkGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    ax = plot_density_2d(model, blobs, feature_names=["a", "b"])
    assert len(ax.patches) == 6  # 1 and 2 s.d. per component
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "b"
    assert covariance_type in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum("(weight" in text for text in legend) == 3
    path = plot.save_figure(ax, tmp_path / f"density_{covariance_type}.png")
    assert_png(path)


def test_density_2d_with_latentkit_model_and_missing_rows(tmp_path, blobs):
    from latentkit.mixture.gaussian import GaussianMixture

    X = blobs.copy()
    X[5, 1] = np.nan
    model = GaussianMixture(3, random_state=0).fit(blobs)
    ax = plot_density_2d(model, X)
    assert ax.get_xlabel() == "x1"
    scatter = [c for c in ax.collections if c.get_offsets().shape[0] == len(X) - 1]
    assert scatter, "the rows with NaN should not be drawn, the others should"
    assert_png(plot.save_figure(ax, tmp_path / "density.png"))


def test_density_2d_rejects_other_dimensions(blobs):
    model = SkGaussianMixture(2, random_state=0).fit(np.column_stack([blobs, blobs[:, :1]]))
    with pytest.raises(ValueError, match="2 columns"):
        plot_density_2d(model, np.column_stack([blobs, blobs[:, :1]]))
