"""The topic family's section of `latentkit demo`: LDA with K = 20 topics fitted to the AP
corpus by its three methods (batch variational EM, online variational Bayes, collapsed Gibbs
sampling), compared by held-out perplexity as they learn. The section is
`(out_dir, progress, *, quick=False) -> latentkit.cli.report.Section`.

Every method is scored by the same evaluator, document completion (`_heldout`): each
held-out article's tokens are split in halves, θ_d is inferred from the first half with the
topics fixed at φ, and the second half is scored. During fitting a callback scores the
current topics (φ = rows of λ normalized; for Gibbs, η + the current sweep's counts) on a
subset of the held-out articles; the table scores the final models on all of them.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

METHODS = ("batch", "online", "gibbs")
#: what one step of each method is, for the axis label and the table
STEP_NAMES = {"batch": "EM iterations", "online": "passes", "gibbs": "Gibbs sweeps"}
HELDOUT_FRACTION = 0.1
SPLIT_SEED = 0


class DemoSettings(NamedTuple):
    """Sizes of one run of the section: documents used (None: all), K, each method's
    iteration budget, online's minibatch size, held-out articles scored per iteration, and
    how many (log-spaced) Gibbs sweeps are scored."""

    n_docs: int | None
    n_topics: int
    max_iter: dict
    batch_size: int
    n_eval_docs: int
    n_gibbs_evals: int


FULL = DemoSettings(None, 20, {"batch": 30, "online": 10, "gibbs": 200}, 256, 100, 25)
QUICK = DemoSettings(300, 8, {"batch": 4, "online": 3, "gibbs": 20}, 64, 30, 6)


def _corpus(n_docs: int | None):
    """(counts CSR (n_docs, V), description, note): AP, or when AP is absent a planted
    LDA corpus of 20 topics over 2,000 words with a note saying so."""
    from latentkit.cli.demo import missing_note
    from latentkit.datasets import load_ap, make_lda_corpus
    from latentkit.topics.vectorize import TextCorpus

    try:
        ap = load_ap()
        counts, vocabulary, note = ap.counts, ap.vocabulary, ""
        what = "AP news articles"
    except FileNotFoundError as error:
        planted = make_lda_corpus(n_docs or 2000, 2000, 20, doc_length=120, alpha=0.1,
                                  eta=0.05, random_state=0)
        counts, note = planted.counts, missing_note(
            error, "a corpus drawn from LDA itself (20 planted topics over 2,000 words "
                   "named w0..w1999)")
        vocabulary = np.array([f"w{j}" for j in range(counts.shape[1])])
        what = "planted-LDA documents"
    if n_docs is not None:
        counts = counts[:n_docs]
    return TextCorpus(counts.tocsr(), vocabulary), what, note


def heldout_split(n_docs: int, fraction: float = HELDOUT_FRACTION, seed: int = SPLIT_SEED):
    """(train, heldout) sorted document indices: a seeded random `fraction` held out."""
    order = np.random.default_rng(seed).permutation(n_docs)
    n_heldout = max(1, round(fraction * n_docs))
    return np.sort(order[n_heldout:]), np.sort(order[:n_heldout])


def evaluation_points(max_iter: int, n_points: int) -> set[int]:
    """About n_points iterations in 1..max_iter, log-spaced (dense early, where perplexity
    moves), always including 1 and max_iter."""
    points = np.unique(np.round(np.geomspace(1, max_iter, max(2, n_points))).astype(int))
    return {int(p) for p in points} | {1, max_iter}


class PerplexityRecorder:
    """A fit callback: at the chosen iterations, the document-completion perplexity of the
    current topics on fixed (observed, held-out) halves; `seconds` is the time it spent, so
    the fit's own time can be reported without it."""

    def __init__(self, observed, heldout, points=None):
        self.observed, self.heldout, self.points = observed, heldout, points
        self.iterations, self.perplexities, self.seconds = [], [], 0.0

    def __call__(self, step) -> None:
        from ._heldout import completion_perplexity

        if self.points is not None and step.iteration not in self.points:
            return
        start = time.perf_counter()
        topic_word = np.asarray(step.params.topic_word, dtype=np.float64)
        phi = topic_word / topic_word.sum(axis=1, keepdims=True)
        self.iterations.append(int(step.iteration))
        self.perplexities.append(completion_perplexity(
            self.observed, self.heldout, phi, np.asarray(step.params.alpha, np.float64)))
        self.seconds += time.perf_counter() - start


def fit_methods(train, evaluation, settings: DemoSettings, progress) -> dict:
    """{method: (fitted LDA, PerplexityRecorder, fit seconds without the evaluation)} for
    batch, online and gibbs with K = settings.n_topics, all with random_state=0."""
    from latentkit.em import ConvergenceWarning

    from ._heldout import split_halves
    from .lda import LDA

    observed, heldout = split_halves(evaluation, SPLIT_SEED)
    fitted = {}
    for method in METHODS:
        max_iter = settings.max_iter[method]
        points = (evaluation_points(max_iter, settings.n_gibbs_evals) if method == "gibbs"
                  else None)
        recorder = PerplexityRecorder(observed, heldout, points)
        model = LDA(settings.n_topics, method=method, max_iter=max_iter,
                    batch_size=settings.batch_size, random_state=0, callbacks=[recorder],
                    verbose=progress.verbose)
        start = time.perf_counter()
        with warnings.catch_warnings():  # a fixed budget of iterations: the table says so
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(train)
        fitted[method] = (model, recorder, time.perf_counter() - start - recorder.seconds)
    return fitted


def _method_rows(fitted: dict, heldout) -> list[dict]:
    return [{"method": method, "held-out perplexity": model.perplexity(heldout),
             "iterations": f"{model.n_iter_} {STEP_NAMES[method]}",
             "converged": bool(model.converged_), "time (s)": round(seconds, 2)}
            for method, (model, _, seconds) in fitted.items()]


def _topic_rows(model, prevalence) -> list[dict]:
    return [{"topic": k, "prevalence": round(float(prevalence[k]), 4),
             "top words": " ".join(words)} for k, words in enumerate(model.top_words(10))]


def _figures(folder: Path, fitted: dict, best: str, heldout, proportions, what: str):
    """The section's four (path, caption) figures."""
    from latentkit import plot

    from .figures import (
        plot_document_topics,
        plot_perplexity_curves,
        plot_top_words,
        plot_topic_map,
    )

    model, recorder = fitted[best][:2]
    curves = {f"{method} ({STEP_NAMES[method]})": (fit[1].iterations, fit[1].perplexities)
              for method, fit in fitted.items()}
    article = int(np.argmax(np.asarray(heldout.counts.sum(axis=1)).ravel()))
    n_tokens = int(heldout.counts[article].sum())
    frequent = np.argsort(-heldout.counts[article].toarray().ravel(), kind="stable")[:8]
    shown = ", ".join(str(heldout.vocabulary[j]) for j in frequent)
    perplexity = plot_perplexity_curves(
        curves, xlabel="iteration: EM iteration, online pass or Gibbs sweep")
    document = plot_document_topics(proportions[article], model,
                                     title=f"A held-out article ({n_tokens} tokens): {best}")
    return [
        (plot.save_figure(perplexity, folder / "perplexity.png"),
         f"held-out perplexity of the current topics after each step, on "
         f"{recorder.observed.shape[0]} held-out {what}"),
        (plot.save_figure(plot_topic_map(model, proportions.mean(axis=0)),
                          folder / "topic_map.png"),
         f"topic map of the {best} model: classical MDS of the Jensen-Shannon distances "
         f"between topics; area ∝ prevalence in the held-out {what}"),
        (plot.save_figure(plot_top_words(model), folder / "top_words.png"),
         f"the ten most probable words of each topic ({best} model)"),
        (plot.save_figure(document, folder / "article.png"),
         f"topic proportions of the longest held-out article; its most frequent words: "
         f"{shown}"),
    ]


def ap_lda(out_dir, progress, *, quick: bool = False):
    """The AP corpus: topic models (LDA by batch VB, online VB and Gibbs sampling)."""
    from latentkit.cli.report import Section
    from latentkit.topics.vectorize import TextCorpus

    settings = QUICK if quick else FULL
    corpus, what, note = _corpus(settings.n_docs)
    train_index, heldout_index = heldout_split(corpus.counts.shape[0])
    train = TextCorpus(corpus.counts[train_index], corpus.vocabulary)
    heldout = TextCorpus(corpus.counts[heldout_index], corpus.vocabulary)
    evaluation = heldout.counts[:settings.n_eval_docs]
    fitted = fit_methods(train, evaluation, settings, progress)
    rows = _method_rows(fitted, heldout)
    best = min(rows, key=lambda row: row["held-out perplexity"])["method"]
    model = fitted[best][0]
    proportions = np.asarray(model.transform(heldout), dtype=np.float64)
    figures = _figures(Path(out_dir) / "ap", fitted, best, heldout, proportions, what)
    budget = ", ".join(f"{settings.max_iter[m]} {STEP_NAMES[m]} ({m})" for m in METHODS)
    text = (f"`LDA(n_topics={settings.n_topics})` fitted to {len(train_index)} {what} "
            f"({corpus.counts.shape[1]}-word vocabulary) by each method: {budget}; online "
            f"uses minibatches of {settings.batch_size}. A seeded {HELDOUT_FRACTION:.0%} of "
            f"the articles ({len(heldout_index)}) is held out. Perplexity is by document "
            f"completion, the same code for every method: θ of each held-out article is "
            f"inferred from half of its tokens with the topics fixed, and the other half is "
            f"scored. The curves score the topics after each step on {evaluation.shape[0]} "
            f"held-out articles (Gibbs at about {settings.n_gibbs_evals} log-spaced sweeps, "
            f"using the current sweep's counts); the table scores the final models (Gibbs: "
            f"counts averaged over the kept sweeps) on all of them. Times exclude the "
            f"per-step scoring. The lowest held-out perplexity is {best}'s: its topics are "
            f"shown below.")
    tables = [("held-out perplexity per method", rows),
              (f"topics of the {best} model: prevalence in the held-out articles and top "
               f"words", _topic_rows(model, proportions.mean(axis=0)))]
    return Section("The AP corpus: topic models",
                   "\n\n".join(part for part in (note, text) if part), figures, tables)
