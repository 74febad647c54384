"""The mixture family's sections of `latentkit demo`: Old Faithful with a Gaussian mixture
(K by BIC) and binarized MNIST digits with Bernoulli mixtures. Each section is
`(out_dir, progress, *, quick=False) -> latentkit.cli.report.Section`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

# -- Old Faithful: Gaussian mixture, K by BIC ---------------------------------------------


def faithful_gmm(out_dir, progress, *, quick: bool = False):
    """Old Faithful eruptions: a Gaussian mixture with K chosen by BIC."""
    from latentkit import plot
    from latentkit.cli.demo import missing_note
    from latentkit.cli.report import Section
    from latentkit.datasets import load_faithful, load_iris
    from latentkit.metrics.selection import select_n_components

    from .figures import plot_density_2d
    from .gaussian import GaussianMixture

    folder = Path(out_dir) / "faithful"
    note = ""
    try:
        X = load_faithful().data
        names, what = ["eruption time (min)", "waiting time (min)"], "Old Faithful (272 x 2)"
    except FileNotFoundError as error:
        X = load_iris().data[:, 2:4]
        names, what = ["petal length (cm)", "petal width (cm)"], "iris petals (150 x 2)"
        note = missing_note(error, "the petal length and width of scikit-learn's iris")
    candidates = list(range(1, 5 if quick else 9))
    n_init = 2 if quick else 5
    model = GaussianMixture(covariance_type="full", n_init=n_init, random_state=0,
                            verbose=progress.verbose)
    selection = select_n_components(model, X, candidates, criterion="bic")
    best = selection.best_model
    K = best.n_components
    figures = [
        (plot.save_figure(plot_density_2d(best, X, feature_names=names,
                                               title=f"{what}: Gaussian mixture, K={K}"),
                          folder / "density.png"),
         "log-density contours with 1 and 2 s.d. ellipses of each component"),
        (plot.save_figure(plot.plot_criterion_curve(selection.table), folder / "bic.png"),
         f"BIC for K = {candidates[0]}..{candidates[-1]}; the minimum is marked"),
        (plot.save_figure(plot.plot_history(best.history_, title=f"EM convergence, K={K}"),
                          folder / "history.png"),
         "mean log-likelihood per EM iteration of the chosen model"),
    ]
    chosen = [{"K": K, "mean log-likelihood": float(best.score(X)), "BIC": float(best.bic(X)),
               "AIC": float(best.aic(X)), "iterations": int(best.n_iter_),
               "converged": bool(best.converged_)}]
    text = (f"`GaussianMixture(covariance_type=\"full\", n_init={n_init})` fitted to {what} "
            f"for each K in {candidates[0]}..{candidates[-1]}; BIC chooses K = {K}. The "
            f"density plot shows log p(x) with each component's 1 and 2 standard-deviation "
            f"ellipses over the data coloured by the most probable component.")
    return Section("Old Faithful: Gaussian mixture, K by BIC", "\n\n".join(
        part for part in (note, text) if part), figures,
        [("chosen model", chosen), ("BIC for each K", selection.table)])


# -- MNIST digits: Bernoulli mixtures -----------------------------------------------------


def _majority_labels(labels, clusters, n_components: int) -> list[str]:
    out = []
    for k in range(n_components):
        members = labels[clusters == k]
        out.append(str(np.bincount(members).argmax()) if len(members) else "-")
    return out


def _load_digit_images(n_rows: int):
    """(X binary, y, image shape, description, note)."""
    from latentkit.cli.demo import missing_note
    from latentkit.datasets import load_digits, load_mnist

    try:
        bunch = load_mnist(split="train", n_samples=n_rows, binarize=True, random_state=0)
        return (bunch.data, bunch.target, (28, 28),
                f"{n_rows} MNIST training images, binarized (intensity >= 128 of 255)", "")
    except FileNotFoundError as error:
        bunch = load_digits()
        X = (bunch.data > 8).astype(np.float64)
        note = missing_note(error, "scikit-learn's 8x8 digits binarized at grey level 8")
        return (X, bunch.target, (8, 8),
                f"{len(X)} scikit-learn 8x8 digits, binarized (grey level > 8 of 16)", note)


def mnist_bmm(out_dir, progress, *, quick: bool = False):
    """Binarized MNIST digits: Bernoulli mixtures with K = 10 and 20."""
    from latentkit import plot
    from latentkit.cli.report import Section
    from latentkit.metrics import adjusted_rand_score, cluster_purity

    from .bernoulli import BernoulliMixture

    folder = Path(out_dir) / "mnist"
    X, y, shape, what, note = _load_digit_images(1200 if quick else 12_000)
    n_heldout = len(X) // 6
    X_train, y_train, X_heldout = X[:-n_heldout], y[:-n_heldout], X[-n_heldout:]
    rows, histories, fitted = [], {}, {}
    for K in ((5, 10) if quick else (10, 20)):
        start = time.perf_counter()
        model = BernoulliMixture(K, max_iter=30 if quick else 100, random_state=0,
                                 verbose=progress.verbose).fit(X_train)
        seconds = time.perf_counter() - start
        clusters = model.predict(X_train)
        rows.append({"K": K, "mean log-likelihood": float(model.score(X_train)),
                     "held-out mean log-likelihood": float(model.score(X_heldout)),
                     "BIC": float(model.bic(X_train)),
                     "cluster purity": float(cluster_purity(y_train, clusters)),
                     "adjusted Rand index": float(adjusted_rand_score(y_train, clusters)),
                     "iterations": int(model.n_iter_), "converged": bool(model.converged_),
                     "time (s)": round(seconds, 2)})
        histories[f"K={K}"] = model.history_
        fitted[K] = (model, clusters)
    K = max(fitted)
    model, clusters = fitted[K]
    majority = _majority_labels(y_train, clusters, K)
    order = np.argsort(-np.asarray(model.weights_))
    titles = [f"{majority[k]}  (w={model.weights_[k]:.2f})" for k in order]
    grid = plot.plot_image_grid(np.asarray(model.means_)[order], shape, titles=titles,
                                ncols=min(10, K), vmin=0.0, vmax=1.0,
                                suptitle=f"Bernoulli mixture, K={K}: component means "
                                         f"(title: majority digit, weight)")
    figures = [
        (plot.save_figure(grid, folder / "means.png"),
         "each component's pixel probabilities, by decreasing weight"),
        (plot.save_figure(plot.plot_history(histories, title="EM convergence"),
                          folder / "history.png"),
         "mean log-likelihood (plus the log prior of the smoothing) per EM iteration"),
    ]
    text = (f"`BernoulliMixture` fitted to {len(X_train)} of {what}; the last {n_heldout} "
            f"images are held out. Cluster purity is the fraction of images whose cluster's "
            f"most common digit is their own; the adjusted Rand index compares the clusters "
            f"with the digit labels (0 = chance, 1 = identical). The labels are never used "
            f"for fitting.")
    return Section("Binarized MNIST digits: Bernoulli mixtures", "\n\n".join(
        part for part in (note, text) if part), figures, [("metrics", rows)])
