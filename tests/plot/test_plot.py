"""Figures of latentkit.plot (the shared helpers): criterion curves, EM histories,
projections and image grids, behaviour on bad input, and valid PNG files. The mixture
family's density figures are tested in tests/mixture/test_figures.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from helpers import assert_png, three_blobs
from latentkit import plot
from latentkit.metrics import ResultTable


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # tiny problems: BLAS threads only add overhead (and contention on a busy machine)
    with threadpool_limits(limits=1):
        yield


def _best_x(ax) -> float:
    [best] = [line for line in ax.lines if line.get_label().startswith("best")]
    return float(best.get_xdata()[0])


@pytest.fixture(scope="module")
def blobs():
    return three_blobs()


def test_criterion_curve_marks_the_minimum_bic(tmp_path):
    table = ResultTable(["n_components", "bic", "log_likelihood"],
                        [(1, 500.0, -3.0), (2, 420.0, -2.5), (3, 450.0, -2.4)])
    ax = plot.plot_criterion_curve(table)
    assert _best_x(ax) == 2
    assert "BIC" in ax.get_ylabel() and "lower" in ax.get_ylabel()
    assert ax.get_xlabel() == "number of components K"
    assert_png(plot.save_figure(ax, tmp_path / "bic.png"))


def test_criterion_curve_heldout_is_maximized_and_accepts_rows():
    rows = [{"n_components": k, "heldout": v} for k, v in [(3, -2.0), (1, -3.0), (2, -1.5)]]
    ax = plot.plot_criterion_curve(rows)
    assert _best_x(ax) == 2
    assert "higher" in ax.get_ylabel()
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])  # sorted by K


def test_criterion_curve_from_select_n_components(blobs):
    from latentkit.metrics import select_n_components
    from latentkit.mixture.gaussian import GaussianMixture

    selection = select_n_components(GaussianMixture(random_state=0), blobs, [1, 2, 3, 4])
    ax = plot.plot_criterion_curve(selection.table)
    assert _best_x(ax) == selection.best_n_components


def test_criterion_curve_rejects_tables_without_a_criterion():
    with pytest.raises(ValueError, match="criterion"):
        plot.plot_criterion_curve([{"n_components": 1, "time": 0.1}])
    with pytest.raises(TypeError):
        plot.plot_criterion_curve(42)


def test_history_one_run_and_several(tmp_path):
    ax = plot.plot_history(np.array([-5.0, -4.0, -3.5, -3.4]))
    assert ax.get_xlabel() == "EM iteration"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4])
    assert "4 iterations" in ax.get_legend().get_texts()[0].get_text()
    assert_png(plot.save_figure(ax, tmp_path / "history.png"))
    ax = plot.plot_history({"K=2": [-3.0, -2.0], "K=3": [-3.0, -2.5, -1.9]})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("K=2") and labels[1].startswith("K=3")


def test_projection_2d_colours_each_cluster(tmp_path, blobs):
    rng = np.random.default_rng(1)
    X = np.column_stack([blobs, rng.normal(size=(len(blobs), 3))])
    labels = np.repeat([0, 1, 2], 80)
    ax = plot.plot_projection_2d(X, labels)
    assert len(ax.collections) == 3
    assert "PC 1" in ax.get_xlabel() and "% of variance" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["1 (80)", "2 (80)", "3 (80)"]
    assert_png(plot.save_figure(ax, tmp_path / "projection.png"))
    with pytest.raises(ValueError, match="labels"):
        plot.plot_projection_2d(X, labels[:-1])


def test_image_grid(tmp_path):
    images = np.random.default_rng(0).random((10, 64))
    fig = plot.plot_image_grid(images, (8, 8), ncols=5, titles=[str(i) for i in range(10)])
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 10 and len(fig.axes) == 10
    assert shown[3].get_title() == "3"
    np.testing.assert_array_equal(shown[0].images[0].get_array(), images[0].reshape(8, 8))
    assert_png(plot.save_figure(fig, tmp_path / "grid.png"), min_side=200)
    with pytest.raises(ValueError, match="image_shape"):
        plot.plot_image_grid(images, (28, 28))
    with pytest.raises(ValueError, match="titles"):
        plot.plot_image_grid(images, (8, 8), titles=["a"])


def test_plotting_never_imports_pyplot():
    code = ("import sys, numpy as np, latentkit.plot as p; p.plot_history([1.0, 2.0]); "
            "print('matplotlib.pyplot' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
