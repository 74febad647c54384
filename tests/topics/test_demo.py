"""The demo's topic-model section (latentkit.topics.demo) in quick mode, on AP and on the
planted corpus it falls back to; and its pieces: the held-out split, the log-spaced Gibbs
evaluation points, the per-iteration perplexity callback."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from helpers import assert_png, hide_datasets
from latentkit.cli.demo import Progress
from latentkit.cli.report import Report, Section
from latentkit.datasets import make_lda_corpus
from latentkit.em import ConvergenceWarning
from latentkit.topics import LDA
from latentkit.topics._heldout import split_halves
from latentkit.topics.demo import (
    QUICK,
    PerplexityRecorder,
    ap_lda,
    evaluation_points,
    heldout_split,
)


def check_section(section, tmp_path, n_words: int):
    assert isinstance(section, Section) and section.title == "The AP corpus: topic models"
    names = [path.name for path, _ in section.figures]
    assert names == ["perplexity.png", "topic_map.png", "top_words.png", "article.png"]
    for path, caption in section.figures:
        assert_png(path, min_side=150, max_side=10_000)
        assert caption.strip(), f"{path} has no caption"
    tables = dict(section.tables)
    methods = tables["held-out perplexity per method"]
    assert [row["method"] for row in methods] == ["batch", "online", "gibbs"]
    for row in methods:
        # a fitted model predicts better than the uniform distribution over the vocabulary
        assert 1 < row["held-out perplexity"] < n_words
        assert row["time (s)"] >= 0 and str(QUICK.max_iter[row["method"]]) in row["iterations"]
    (caption, topics), = [(c, t) for c, t in section.tables if c.startswith("topics of")]
    best = min(methods, key=lambda row: row["held-out perplexity"])["method"]
    assert f"the {best} model" in caption
    assert [row["topic"] for row in topics] == list(range(QUICK.n_topics))
    assert all(len(row["top words"].split()) == 10 for row in topics)
    assert sum(row["prevalence"] for row in topics) == pytest.approx(1.0, abs=1e-3)
    report = Report("demo")
    report.add(section)
    html = report.write(tmp_path).read_text()
    for source in re.findall(r'<img src="([^"]+)"', html):
        assert (tmp_path / source).is_file()


def test_ap_section_quick(tmp_path):
    from latentkit.datasets import load_ap

    try:
        n_words = load_ap().counts.shape[1]
    except FileNotFoundError:
        pytest.skip("the AP corpus is not installed")
    section = ap_lda(tmp_path, Progress(enabled=False), quick=True)
    assert not section.text.startswith("Note:") and "AP news articles" in section.text
    check_section(section, tmp_path, n_words)


def test_section_falls_back_to_a_planted_corpus(tmp_path, monkeypatch):
    hide_datasets(monkeypatch, "load_ap", path="ap/ap.dat.gz")
    section = ap_lda(tmp_path, Progress(enabled=False), quick=True)
    assert section.text.startswith("Note: the dataset was not found (Data file 'ap/ap.dat.gz'")
    assert "planted" in section.text
    check_section(section, tmp_path, n_words=2000)


def test_heldout_split_is_a_seeded_partition():
    train, heldout = heldout_split(1000)
    assert len(heldout) == 100 and len(train) == 900
    np.testing.assert_array_equal(np.sort(np.r_[train, heldout]), np.arange(1000))
    np.testing.assert_array_equal(heldout_split(1000)[1], heldout)
    assert not np.array_equal(heldout_split(1000, seed=1)[1], heldout)


def test_evaluation_points_are_log_spaced_with_both_ends():
    points = sorted(evaluation_points(200, 25))
    assert points[0] == 1 and points[-1] == 200 and 15 <= len(points) <= 25
    gaps = np.diff(points)
    assert np.all(gaps >= 1) and gaps[-1] > 10 * gaps[0]  # dense early, sparse late
    assert sorted(evaluation_points(3, 25)) == [1, 2, 3]


@pytest.mark.parametrize("method", ["batch", "online", "gibbs"])
def test_recorder_scores_the_topics_of_each_step(method):
    """The callback's last value is the perplexity of the final topics by the model's own
    evaluator (batch / online: the last step's λ is components_); for Gibbs the points it
    was told to score and no others."""
    corpus = make_lda_corpus(120, 30, 3, doc_length=40, alpha=0.3, eta=0.1, random_state=0)
    train, heldout = corpus.counts[:100], corpus.counts[100:]
    observed, held = split_halves(heldout, 0)
    points = {1, 4, 10} if method == "gibbs" else None
    recorder = PerplexityRecorder(observed, held, points)
    model = LDA(3, method=method, max_iter=10, batch_size=50, tol=0.0, random_state=0,
                callbacks=[recorder])
    with warnings.catch_warnings():  # tol=0: a fixed number of iterations
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train)
    if method == "gibbs":
        assert recorder.iterations == [1, 4, 10]
    else:
        assert recorder.iterations == list(range(1, 11))
        assert recorder.perplexities[-1] == pytest.approx(model.perplexity(heldout), rel=1e-9)
    assert all(1 < value < 30 for value in recorder.perplexities)
    assert recorder.seconds > 0

