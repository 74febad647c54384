"""Figures of the topic family (latentkit.topics.figures): the topic map's geometry against
independent truths (scipy's Jensen-Shannon distance, exact recovery of a Euclidean
configuration, the distance order on a toy φ), valid PNG files, the axis choices of the
perplexity curves, and the figures `latentkit fit lda` draws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon, pdist, squareform

from helpers import assert_png
from latentkit import plot
from latentkit.datasets import make_lda_corpus
from latentkit.topics import LDA
from latentkit.topics.figures import (
    classical_mds,
    jensen_shannon_distances,
    lda_figures,
    plot_document_topics,
    plot_perplexity_curves,
    plot_top_words,
    plot_topic_map,
    topic_map_coordinates,
)
from latentkit.topics.vectorize import TextCorpus


@pytest.fixture(scope="module")
def fitted():
    """A 6-topic LDA fitted to a planted corpus, with a vocabulary of named words."""
    corpus = make_lda_corpus(150, 40, 6, doc_length=60, alpha=0.2, eta=0.1, random_state=0)
    words = np.array([f"word{j}" for j in range(40)])
    text = TextCorpus(corpus.counts, words)
    model = LDA(6, max_iter=15, random_state=0).fit(text)
    return model, text


# -- geometry ------------------------------------------------------------------------------


def test_jensen_shannon_distances_match_scipy():
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.full(30, 0.3), size=7)
    P[2, :5] = 0.0  # zeros: 0 log 0 = 0
    D = jensen_shannon_distances(P)
    expected = np.array([[jensenshannon(p, q) for q in P] for p in P])  # natural log
    np.testing.assert_allclose(D, expected, atol=1e-7)
    np.testing.assert_array_equal(D, D.T)
    assert np.all(np.diag(D) == 0)
    assert D.max() <= np.sqrt(np.log(2)) + 1e-12


def test_jensen_shannon_distance_of_disjoint_supports_is_maximal():
    P = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.3, 0.7]])
    assert jensen_shannon_distances(P)[0, 1] == pytest.approx(np.sqrt(np.log(2)), rel=1e-12)


def test_classical_mds_recovers_a_euclidean_configuration():
    rng = np.random.default_rng(2)
    points = rng.normal(size=(9, 2)) * [3.0, 1.0]
    coordinates = classical_mds(squareform(pdist(points)), 2)
    # exact for Euclidean distances: the configuration up to a rigid motion
    np.testing.assert_allclose(pdist(coordinates), pdist(points), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(coordinates.mean(axis=0), 0.0, atol=1e-12)


def test_topic_map_preserves_the_distance_order_on_a_toy_phi():
    """Five topics along a path between two disjoint word distributions (plus a little
    noise): every pair's distance in the plane is ranked as its Jensen-Shannon distance,
    and the first axis orders the topics along the path."""
    rng = np.random.default_rng(0)
    first, second = np.r_[np.full(10, 0.1), np.zeros(10)], np.r_[np.zeros(10), np.full(10, 0.1)]
    phi = np.array([(1 - t) * first + t * second for t in (0.0, 0.2, 0.45, 0.7, 1.0)])
    phi = 0.9 * phi + 0.1 * rng.dirichlet(np.ones(20), size=5)
    coordinates = topic_map_coordinates(phi)
    planar = pdist(coordinates)
    js = squareform(jensen_shannon_distances(phi), checks=False)
    np.testing.assert_array_equal(np.argsort(planar), np.argsort(js))
    assert np.all(np.diff(coordinates[:, 0]) > 0) or np.all(np.diff(coordinates[:, 0]) < 0)


def test_geometry_rejects_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        jensen_shannon_distances(np.array([[0.5, -0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="square"):
        classical_mds(np.zeros((3, 2)))


# -- plots ---------------------------------------------------------------------------------


def test_topic_map_writes_a_png(fitted, tmp_path):
    model, text = fitted
    prevalence = model.transform(text).mean(axis=0)
    ax = plot_topic_map(model, prevalence)
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == 6 and labels[0] == "0: " + " ".join(model.top_words(3)[0])
    sizes = ax.collections[0].get_sizes()
    assert np.argmax(sizes) == np.argmax(prevalence)  # area grows with prevalence
    assert_png(plot.save_figure(ax, tmp_path / "map.png"))
    with pytest.raises(ValueError, match="prevalence"):
        plot_topic_map(model, prevalence[:3])


def test_top_words_grid(fitted, tmp_path):
    model, _ = fitted
    figure = plot_top_words(model, n_words=8)
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(visible) == 6 and len(figure.axes) == 10  # 2 rows of 5, 4 hidden
    bars = [patch.get_width() for patch in visible[2].patches]
    order = np.argsort(-model.topic_word_[2], kind="stable")[:8]
    np.testing.assert_allclose(bars, model.topic_word_[2, order])
    assert [t.get_text() for t in visible[2].get_yticklabels()] == model.top_words(8)[2]
    assert_png(plot.save_figure(figure, tmp_path / "words.png"))
    assert len(plot_top_words(model, topics=[4, 1]).axes) == 2
    with pytest.raises(ValueError, match="topics"):
        plot_top_words(model, topics=[6])


def test_document_topics(fitted, tmp_path):
    model, text = fitted
    proportions = model.transform(text)[0]
    ax = plot_document_topics(proportions, model, title="document 0")
    np.testing.assert_allclose([p.get_width() for p in ax.patches], proportions, rtol=1e-6)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[5] == "5: " + " ".join(model.top_words(3)[5])
    assert_png(plot.save_figure(ax, tmp_path / "doc.png"))
    with pytest.raises(ValueError, match="one value per topic"):
        plot_document_topics(proportions[:2], model)


def test_perplexity_curves_choose_the_x_scale(tmp_path):
    gibbs = (np.arange(1, 201), 3000 + 2000 / np.arange(1, 201))
    batch = (np.arange(1, 31), 3100 + 900 / np.arange(1, 31))
    ax = plot_perplexity_curves({"gibbs": gibbs, "batch": batch})
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    assert len(ax.get_legend().get_texts()) == 2
    assert_png(plot.save_figure(ax, tmp_path / "curves.png"))
    similar = plot_perplexity_curves({"a": batch, "b": (np.arange(1, 21), batch[1][:20])})
    assert similar.get_xscale() == "linear" and "log" not in similar.get_xlabel()
    assert plot_perplexity_curves({"a": batch}, log_x=True).get_xscale() == "log"
    with pytest.raises(ValueError, match="equally long"):
        plot_perplexity_curves({"a": (np.arange(1, 4), np.ones(2))})
    with pytest.raises(ValueError, match="empty"):
        plot_perplexity_curves({})


def test_lda_figures_for_the_command_line(fitted, tmp_path):
    from latentkit.registry import FigureJob
    from latentkit.topics._registry import _data

    model, text = fitted
    job = FigureJob(model, _data(text.counts, text.vocabulary, "toy"), tmp_path)
    figures = lda_figures(job)
    assert [path.name for path, _ in figures] == ["history.png", "topic_map.png",
                                                  "top_words.png"]
    for path, caption in figures:
        assert_png(path, min_side=150, max_side=10_000)
        assert caption.strip()
