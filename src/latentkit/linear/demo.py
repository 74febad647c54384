"""The linear-Gaussian family's section of `latentkit demo`: PCA of MNIST digits, PPCA
imputation of images with 30% of the pixels missing, and ICA unmixing of synthetic signals.
The section is `(out_dir, progress, *, quick=False) -> latentkit.cli.report.Section`."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np


def _load_images(n_rows: int):
    """(X in [0, 1], labels, image shape, description, note): MNIST, else 8x8 digits."""
    from latentkit.cli.demo import missing_note
    from latentkit.datasets import load_digits, load_mnist

    try:
        bunch = load_mnist(split="train", n_samples=n_rows, random_state=0, dtype=np.float64)
        return (bunch.data, bunch.target, (28, 28),
                f"{n_rows} MNIST training images (grey levels scaled to [0, 1])", "")
    except FileNotFoundError as error:
        bunch = load_digits()
        note = missing_note(error, "scikit-learn's 8x8 digits scaled to [0, 1]")
        return (bunch.data / 16.0, bunch.target, (8, 8),
                f"{len(bunch.data)} scikit-learn 8x8 digits (grey levels scaled to [0, 1])",
                note)


def _pca_part(X, y, shape, folder):
    from latentkit import plot

    from .figures import plot_explained_variance, plot_labelled_scatter, reconstruction_grid
    from .pca import PCA

    m_max = min(50, X.shape[1] - 1)
    start = time.perf_counter()
    pca = PCA(m_max).fit(X)
    seconds = time.perf_counter() - start
    ratios = pca.explained_variance_ratio_
    Z = pca.transform(X)[:, :2]
    figures = [
        (plot.save_figure(plot_explained_variance(ratios), folder / "pca_variance.png"),
         f"explained-variance ratio of the first {m_max} principal components"),
        (plot.save_figure(reconstruction_grid(X, y, pca.mean_, pca.components_, shape),
                          folder / "pca_reconstructions.png"),
         "one image of each digit and its reconstructions from M = 2, 10, 50 components"),
        (plot.save_figure(plot_labelled_scatter(Z, y, title="PCA: first two components",
                                                axis_labels=("PC 1", "PC 2")),
                          folder / "pca_scatter.png"),
         "every image projected on the first two principal components, coloured by digit"),
    ]
    rows = []
    for m in (2, 10, 50):
        m = min(m, m_max)
        U = pca.components_[:m].T
        residual = (X - pca.mean_) - (X - pca.mean_) @ U @ U.T
        rows.append({"M": m, "variance explained": float(ratios[:m].sum()),
                     "reconstruction RMSE": float(np.sqrt(np.mean(residual**2)))})
    rows[-1]["time (s)"] = round(seconds, 3)
    return figures, rows


def _iterative_impute(X_missing, quick: bool):
    """(X filled by scikit-learn's IterativeImputer, seconds): a few rounds of one
    regression per pixel on its nearest pixels."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    start = time.perf_counter()
    iterative = IterativeImputer(max_iter=1 if quick else 3, n_nearest_features=5 if quick
                                 else 20, random_state=0, skip_complete=True,
                                 keep_empty_features=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        filled = iterative.fit_transform(X_missing)
    return filled, time.perf_counter() - start


def _ppca_part(X, shape, folder, quick, rng):
    """PPCA by EM on images with 30% of the pixels missing at random; imputation RMSE
    against column means and scikit-learn's IterativeImputer (on a subset of rows)."""
    from sklearn.exceptions import ConvergenceWarning

    from latentkit import plot

    from .figures import imputation_grid
    from .ppca import PPCA

    mask = rng.random(X.shape) < 0.3
    X_missing = np.where(mask, np.nan, X)
    M = 5 if quick else 20
    start = time.perf_counter()
    with warnings.catch_warnings():  # a bounded number of iterations: the table says
        warnings.simplefilter("ignore", ConvergenceWarning)
        ppca = PPCA(M, solver="em", tol=1e-5, max_iter=10 if quick else 40,
                    random_state=0).fit(X_missing)
    seconds = time.perf_counter() - start
    imputed = ppca.impute(X_missing)
    column_means = np.nanmean(X_missing, axis=0)
    column_means = np.where(np.isnan(column_means), 0.0, column_means)
    mean_filled = np.where(mask, column_means, X_missing)
    n_sub = min(len(X), 60 if quick else 300)
    iterative_filled, iterative_seconds = _iterative_impute(X_missing[:n_sub], quick)

    def rmse(filled, n_rows=None):
        """RMSE over the deleted pixels of the first n_rows (default all) rows of `filled`."""
        n_rows = len(X) if n_rows is None else n_rows
        missing = mask[:n_rows]
        return float(np.sqrt(np.mean((filled[:n_rows] - X[:n_rows])[missing] ** 2)))

    sub = n_sub
    table = [
        {"method": f"PPCA (M={M}, EM with the missing pixels marginalized)",
         "RMSE, all rows": rmse(imputed), f"RMSE, first {n_sub} rows": rmse(imputed, sub),
         "iterations": f"{ppca.n_iter_}{'' if ppca.converged_ else ' (max_iter)'}",
         "time (s)": round(seconds, 2)},
        {"method": "column (pixel) means", "RMSE, all rows": rmse(mean_filled),
         f"RMSE, first {n_sub} rows": rmse(mean_filled, sub), "time (s)": 0.0},
        {"method": "scikit-learn IterativeImputer (subset)", "RMSE, all rows": None,
         f"RMSE, first {n_sub} rows": rmse(iterative_filled, n_sub),
         "time (s)": round(iterative_seconds, 2)},
    ]
    fig = imputation_grid(X, mask, {"PPCA": imputed, "Iterative": iterative_filled}, shape)
    figures = [(plot.save_figure(fig, folder / "ppca_imputation.png"),
                "rows: original, 30% of pixels missing (grey), PPCA imputation, "
                "IterativeImputer")]
    return figures, table, M


def _ica_part(folder, quick, rng):
    """Three synthetic sources (sine, square wave, sawtooth) plus a little noise, mixed by a
    fixed 3x3 matrix, unmixed by FastICA; sources matched to the truth for display."""
    from scipy.optimize import linear_sum_assignment

    from latentkit import plot
    from latentkit.metrics import amari_index

    from .figures import plot_signals
    from .ica import FastICA

    n = 1000 if quick else 4000
    t = np.linspace(0, 8, n)
    S = np.column_stack([np.sin(2 * t), np.sign(np.sin(3 * t)), 2 * ((t * 1.3) % 1) - 1])
    S += 0.05 * rng.standard_normal(S.shape)
    S /= S.std(axis=0)
    A = np.array([[1.0, 1.0, 1.0], [0.5, 2.0, 1.0], [1.5, 1.0, 2.0]])
    X = S @ A.T
    rows = []
    recovered = None
    for fun in ("logcosh", "exp", "cube"):
        model = FastICA(3, fun=fun, random_state=0, max_iter=500).fit(X)
        corr = np.corrcoef(S.T, model.transform(X).T)[:3, 3:]
        _, order = linear_sum_assignment(-np.abs(corr))
        rows.append({"contrast": fun, "Amari index": amari_index(model.components_, A),
                     "min |correlation| with the true source":
                         float(np.abs(corr[np.arange(3), order]).min()),
                     "iterations": int(model.n_iter_),
                     "mean log-likelihood": float(model.score(X))})
        if recovered is None:
            recovered = model.transform(X)[:, order] * np.sign(corr[np.arange(3), order])
    fig = plot_signals({"sources": S, "mixtures": X, "FastICA": recovered}, t,
                       title="ICA unmixing of three synthetic signals")
    figures = [(plot.save_figure(fig, folder / "ica_signals.png"),
                "true sources, the three observed mixtures, and FastICA's recovered sources "
                "(logcosh; matched in order and sign)")]
    return figures, rows


def mnist_linear(out_dir, progress, *, quick: bool = False):
    """MNIST digits: PCA, PPCA imputation with 30% missing pixels, and ICA unmixing."""
    from latentkit.cli.report import Section

    folder = Path(out_dir) / "linear"
    rng = np.random.default_rng(0)
    n_rows = 500 if quick else 10_000
    X, y, shape, what, note = _load_images(n_rows)
    X, y = X[:n_rows], y[:n_rows]  # the 8x8 digits fallback has 1797
    progress.step("      PCA")
    pca_figures, pca_rows = _pca_part(X, y, shape, folder)
    progress.step("      PPCA imputation")
    n_impute = min(len(X), 300 if quick else 3000)
    ppca_figures, ppca_rows, M = _ppca_part(X[:n_impute], shape, folder, quick, rng)
    progress.step("      ICA")
    ica_figures_, ica_rows = _ica_part(folder, quick, rng)
    text = (
        f"`PCA` of {what}: the explained-variance curve, reconstructions from the leading "
        f"M = 2, 10 and 50 components, and the 2-D projection coloured by digit (labels are "
        f"only used for colour).\n\n"
        f"`PPCA(n_components={M}, solver=\"em\")` fitted to the first {n_impute} images with "
        f"30% of the pixels deleted at random: EM marginalizes the missing pixels exactly, "
        f"and `impute` fills them with E[x_missing | x_observed]. The RMSE over the deleted "
        f"pixels is compared with filling each pixel's mean and with scikit-learn's "
        f"`IterativeImputer` (on a subset of rows: it fits one regression per pixel).\n\n"
        f"`FastICA` unmixes three synthetic signals from three linear mixtures; the Amari "
        f"index is 0 for perfect recovery (up to order and scale). The mean log-likelihood "
        f"is the maximum-likelihood view with a unit-variance hyperbolic secant source "
        f"prior.")
    return Section("Linear-Gaussian models: PCA, PPCA imputation, ICA", "\n\n".join(
        part for part in (note, text) if part), pca_figures + ppca_figures + ica_figures_,
        [("PCA", pca_rows), ("imputation of 30% missing pixels", ppca_rows),
         ("ICA on synthetic signals", ica_rows)])
