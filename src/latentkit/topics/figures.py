"""Figures of topic models: the topic map (an LDAvis-style 2-D embedding of the topics), the
top words of each topic, one document's topic proportions, and held-out perplexity against
iterations for several training methods; plus `lda_figures(job)`, the figures `latentkit fit
lda` and `report` draw.

Every single-panel function draws on an optional `ax` (a new Agg figure when None) and
returns the Axes; `plot_top_words` returns its Figure. Save with `latentkit.plot.save_figure`.

The topic map (Sievert & Shirley 2014, LDAvis) places the K topic-word distributions φ_k in
the plane by classical multidimensional scaling of their Jensen-Shannon distances

    JSD(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m),   m = ½ (p + q),   d(p, q) = √JSD(p, q),

(d is a metric, Endres & Schindelin 2003): with D the (K, K) matrix of d and J = I - 11ᵀ/K
the centring matrix, B = -½ J D∘D J is the Gram matrix of centred points whose Euclidean
distances are D (exactly when D is Euclidean), and the coordinates are the top two
eigenvectors of B scaled by the square roots of their eigenvalues.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy.special import rel_entr

#: iteration counts whose largest / smallest ratio exceeds this get a log x-axis
LOG_X_RATIO = 4.0


# -- the topic map's geometry (pure array functions) ---------------------------------------


def jensen_shannon_distances(distributions) -> np.ndarray:
    """Pairwise Jensen-Shannon distances d(p_i, p_j) = √JSD(p_i, p_j) in nats.

    distributions : (K, V) rows that are probability distributions (non-negative; each row
    is normalized here). Returns (K, K) symmetric, zero diagonal, entries in [0, √log 2].
    Memory O(K V): one row against all the others at a time.
    """
    P = np.asarray(distributions, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] < 1 or np.any(P < 0) or np.any(P.sum(axis=1) <= 0):
        raise ValueError(f"distributions must be (K, V) non-negative rows with positive sums;"
                         f" got shape {P.shape}.")
    P = P / P.sum(axis=1, keepdims=True)
    K = P.shape[0]
    divergence = np.zeros((K, K))
    for i in range(K):
        mixture = 0.5 * (P[i] + P[i:])  # (K - i, V): m for the pairs (i, j >= i)
        # rel_entr(p, m) = p log(p / m), with 0 log 0 = 0
        half_kl = rel_entr(P[i], mixture).sum(axis=1) + rel_entr(P[i:], mixture).sum(axis=1)
        divergence[i, i:] = divergence[i:, i] = 0.5 * half_kl
    return np.sqrt(np.clip(divergence, 0.0, None))


def classical_mds(distances, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) multidimensional scaling: (K, n_components) coordinates.

    distances : (K, K) symmetric with zero diagonal. B = -½ J (D∘D) J with J = I - 11ᵀ/K;
    coordinates = the top eigenvectors of B times √eigenvalue (negative eigenvalues, from a
    non-Euclidean D, count as 0; fewer than n_components topics pad with zeros). The sign of
    each axis is fixed so that its largest-magnitude coordinate is positive.
    """
    D = np.asarray(distances, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"distances must be a square (K, K) matrix; got shape {D.shape}.")
    K = D.shape[0]
    centring = np.eye(K) - np.full((K, K), 1.0 / K)
    gram = -0.5 * centring @ (D * D) @ centring
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (gram + gram.T))  # ascending
    order = np.argsort(eigenvalues)[::-1][:n_components]
    coordinates = np.zeros((K, n_components))
    scale = np.sqrt(np.clip(eigenvalues[order], 0.0, None))
    coordinates[:, :len(order)] = eigenvectors[:, order] * scale
    flip = np.sign(coordinates[np.argmax(np.abs(coordinates), axis=0),
                               np.arange(n_components)])
    return coordinates * np.where(flip == 0, 1.0, flip)


def topic_map_coordinates(topic_word) -> np.ndarray:
    """The topic map: (K, 2) classical MDS of the Jensen-Shannon distances between the rows
    of topic_word : (K, V) φ."""
    return classical_mds(jensen_shannon_distances(topic_word), 2)


# -- plots ---------------------------------------------------------------------------------


def plot_topic_map(model, prevalence, n_labels: int = 3, ax=None, *, title=None):
    """The topics as circles in the plane (module docstring: MDS of Jensen-Shannon distances
    between the rows of φ = model.topic_word_), area ∝ prevalence, each labelled with its
    topic number and its n_labels top words.

    model : a fitted LDA (topic_word_, top_words); prevalence : (K,) each topic's mean
    proportion over documents (e.g. `model.transform(X).mean(axis=0)`).
    """
    from latentkit.plot._figure import cluster_colors, new_axes

    phi = np.asarray(model.topic_word_, dtype=np.float64)
    prevalence = np.asarray(prevalence, dtype=np.float64).ravel()
    if prevalence.shape != (phi.shape[0],) or np.any(prevalence < 0):
        raise ValueError(f"prevalence must hold {phi.shape[0]} non-negative values (one per "
                         f"topic); got shape {prevalence.shape}.")
    coordinates = topic_map_coordinates(phi)
    share = prevalence / prevalence.sum() if prevalence.sum() > 0 else prevalence
    ax = new_axes(ax, figsize=(8.4, 7.2))
    areas = 150.0 + 6000.0 * share  # points²: area ∝ prevalence above a visible minimum
    colors = cluster_colors(phi.shape[0])
    ax.scatter(coordinates[:, 0], coordinates[:, 1], s=areas, c=colors, alpha=0.55,
               edgecolors="black", linewidths=0.6)
    words = model.top_words(n_labels)
    for k, (x, y) in enumerate(coordinates):
        ax.annotate(f"{k}: " + " ".join(words[k]), (x, y), fontsize=7.5, ha="center",
                    va="center", xytext=(0, -(math.sqrt(areas[k]) / 2 + 6)),
                    textcoords="offset points")
    ax.margins(0.15)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("MDS axis 1 (Jensen-Shannon distance)")
    ax.set_ylabel("MDS axis 2")
    ax.set_title(title or f"Topic map: {phi.shape[0]} topics (area ∝ prevalence)")
    ax.grid(alpha=0.25)
    return ax


def plot_top_words(model, n_words: int = 10, topics=None, *, ncols: int = 5,
                   suptitle=None):
    """A grid of horizontal bar charts, one per topic, of its n_words most probable words
    and their probabilities φ_kw (most probable on top). topics : the topic numbers to draw
    (all when None). Returns the Figure."""
    from matplotlib.figure import Figure

    phi = np.asarray(model.topic_word_, dtype=np.float64)
    topics = list(range(phi.shape[0])) if topics is None else [int(k) for k in topics]
    if not topics or min(topics) < 0 or max(topics) >= phi.shape[0]:
        raise ValueError(f"topics must be numbers in 0..{phi.shape[0] - 1}; got {topics}.")
    words = model.top_words(n_words)
    order = np.argsort(-phi, axis=1, kind="stable")[:, :n_words]
    ncols = min(ncols, len(topics))
    nrows = math.ceil(len(topics) / ncols)
    figure = Figure(figsize=(2.7 * ncols, 0.5 + 0.24 * n_words * nrows + 0.35 * nrows),
                    layout="constrained")
    axes = np.atleast_1d(figure.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, k in zip(axes, topics):
        positions = np.arange(len(words[k]))
        ax.barh(positions, phi[k, order[k]], color="tab:blue", alpha=0.8)
        ax.set_yticks(positions, words[k], fontsize=7.5)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=6.5)
        ax.set_title(f"topic {k}", fontsize=9)
    for ax in axes[len(topics):]:
        ax.set_visible(False)
    figure.suptitle(suptitle or f"Top {n_words} words of each topic: p(word | topic)")
    return figure


def plot_document_topics(proportions, model, title=None, ax=None):
    """One document's topic proportions θ_d : (K,) as horizontal bars, each labelled with
    its topic number and top 3 words."""
    from latentkit.plot._figure import new_axes

    proportions = np.asarray(proportions, dtype=np.float64).ravel()
    words = model.top_words(3)
    if proportions.shape != (len(words),):
        raise ValueError(f"proportions must hold one value per topic ({len(words)}); got "
                         f"shape {proportions.shape}.")
    ax = new_axes(ax, figsize=(7.2, max(3.2, 0.8 + 0.28 * len(words))))
    positions = np.arange(len(words))
    ax.barh(positions, proportions, color="tab:orange", alpha=0.85)
    ax.set_yticks(positions, [f"{k}: " + " ".join(w) for k, w in enumerate(words)],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(1e-9, proportions.max()) * 1.1)
    ax.set_xlabel("topic proportion θ")
    ax.set_title(title or "Topic proportions of one document")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_perplexity_curves(curves: Mapping, ax=None, *, title=None, log_x=None,
                           xlabel="iteration"):
    """Held-out perplexity against iterations for several methods on shared axes.

    curves : {method: (iterations (n,), perplexities (n,))}. log_x : a log x-axis (when
    None: when the methods' last iterations differ by more than LOG_X_RATIO times, e.g. 200
    Gibbs sweeps against 30 EM iterations); the axis label says so. Each run's final value
    is in the legend.
    """
    from latentkit.plot._figure import new_axes

    if not curves:
        raise ValueError("curves is empty: give at least one method's (iterations, "
                         "perplexities).")
    runs = {name: (np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, np.float64).ravel())
            for name, (x, y) in curves.items()}
    for name, (x, y) in runs.items():
        if x.shape != y.shape or x.size == 0 or np.any(x <= 0):
            raise ValueError(f"{name}: iterations and perplexities must be equally long, "
                             f"non-empty, with iterations >= 1; got {x.shape}, {y.shape}.")
    lasts = [x.max() for x, _ in runs.values()]
    if log_x is None:
        log_x = max(lasts) / min(lasts) > LOG_X_RATIO
    ax = new_axes(ax, figsize=(7.2, 4.6))
    for name, (x, y) in runs.items():
        line, = ax.plot(x, y, marker="o" if x.size <= 40 else None, markersize=3.5,
                        linewidth=1.6, label=f"{name}: final {y[-1]:.1f} after {int(x[-1])}")
        ax.plot(x[-1], y[-1], marker="s", markersize=7, color=line.get_color())
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel + (" (log scale)" if log_x else ""))
    ax.set_ylabel("held-out perplexity (lower is better)")
    ax.set_title(title or "Held-out perplexity (document completion)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    return ax


# -- the command line's figures ------------------------------------------------------------


def lda_figures(job) -> list:
    """`latentkit fit lda` / `report`: the objective per iteration, the topic map (prevalence
    = mean topic proportion over DATA's documents) and the top words of each topic."""
    from latentkit import plot
    from latentkit.plot.common import criterion_figure, history_figure

    from ._registry import corpus_input

    model = job.model
    gibbs = model._is_gibbs()
    figures = criterion_figure(job) + history_figure(
        job, caption=("log p(w, z) per document per Gibbs sweep" if gibbs
                      else "ELBO per document per iteration (a lower bound)"),
        ylabel="log p(w, z) per document" if gibbs else "ELBO per document",
        xlabel="Gibbs sweep" if gibbs else "EM iteration" if model.method == "batch"
        else "pass over the corpus",
        title="Gibbs sampling trace" if gibbs else "variational EM convergence")
    prevalence = np.asarray(model.transform(corpus_input(job.data, True))).mean(axis=0)
    topic_map = plot_topic_map(model, prevalence)
    figures.append((plot.save_figure(topic_map, job.out_dir / "topic_map.png"),
                    "topic map: MDS of the Jensen-Shannon distances between topics, area "
                    "∝ prevalence in DATA"))
    figures.append((plot.save_figure(plot_top_words(model), job.out_dir / "top_words.png"),
                    "the ten most probable words of each topic"))
    return figures
