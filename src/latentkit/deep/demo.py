"""The deep family's section of `latentkit demo`: variational autoencoders on binarized MNIST
within a short CPU budget, and the four estimators of log p(x) side by side on test images
(seed 001: the ELBO, the IWAE bound, importance sampling with q, and naive Monte Carlo from
the prior, which fails in high dimension); then test images with their top half hidden,
imputed by the VAE (MIWAE's posterior-predictive mean and importance-resampled draws), by
the seed's variational EM (`partial_em`) and by column means.

    mnist_vae(out_dir, progress, *, quick=False) -> latentkit.cli.report.Section
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Budget:
    """The demo's sizes: training images, epochs (and a time guard per model, seconds),
    test images scored, the samples of each estimator, test images drawn in the
    latent space (encoding is cheap); for the imputations: test images with their top half
    hidden, importance samples per image, MIWAE draws per image, and the variational EM's
    mixture components and iterations."""

    n_train: int
    epochs: int
    max_time: float
    n_test: int
    k_iwae: int
    k_importance: int
    n_points: int
    n_impute: int
    k_impute: int
    n_draws: int
    em_components: int
    em_iter: int


FULL = Budget(n_train=5000, epochs=10, max_time=60.0, n_test=200, k_iwae=50,
              k_importance=500, n_points=2000, n_impute=100, k_impute=100, n_draws=5,
              em_components=20, em_iter=20)
QUICK = Budget(n_train=500, epochs=2, max_time=10.0, n_test=40, k_iwae=50,
               k_importance=100, n_points=200, n_impute=40, k_impute=50, n_draws=5,
               em_components=10, em_iter=20)
#: the two models: a 2-D latent space to draw, a 20-D one where naive Monte Carlo fails
LATENT_DIMS = (2, 20)
HIDDEN = (200,)


def _load_images(budget: Budget):
    """(X_train, X_test, y_test, image shape, description, note): MNIST thresholded at
    half intensity (n_points test images; the first n_test are scored), or scikit-learn's
    digits thresholded at grey level 8 when MNIST is absent (the last sixth held out)."""
    from latentkit import datasets
    from latentkit.cli.demo import missing_note

    try:
        train = datasets.load_mnist(split="train", n_samples=budget.n_train, binarize=True,
                                    random_state=0)
        n_test = max(budget.n_test, budget.n_points)
        test = datasets.load_mnist(split="test", n_samples=n_test, binarize=True,
                                   random_state=0)
        what = (f"{budget.n_train} MNIST training images binarized at half intensity "
                f"(x > 0.5), scored on {budget.n_test} test images")
        return train.data, test.data, test.target, (28, 28), what, ""
    except FileNotFoundError as error:
        bunch = datasets.load_digits()
        X = (np.asarray(bunch.data) > 8).astype(np.float64)
        n_test = len(X) // 6
        note = missing_note(error, "scikit-learn's 8x8 digits binarized at grey level 8")
        what = (f"{len(X) - n_test} scikit-learn 8x8 digits binarized at grey level 8, "
                f"scored on {min(n_test, budget.n_test)} of the last {n_test}")
        return (X[:-n_test][:budget.n_train], X[-n_test:], np.asarray(bunch.target)[-n_test:],
                (8, 8), what, note)


def _train(X, latent_dim: int, budget: Budget, progress):
    from .vae import VAE

    start = time.perf_counter()
    model = VAE(latent_dim, hidden=HIDDEN, epochs=budget.epochs, batch_size=100, lr=1e-3,
                device="cpu", random_state=0, max_time=budget.max_time,
                verbose=progress.verbose).fit(X)
    return model, time.perf_counter() - start


def _estimates(model, X, budget: Budget) -> dict[str, float]:
    """Mean log p(x) over the rows of X by each estimator, seeded (random_state=0)."""
    k, big = budget.k_iwae, budget.k_importance
    return {"ELBO (1 sample)": float(np.mean(model.score_samples(X, "elbo", 1))),
            f"IWAE bound (k={k})": float(np.mean(model.score_samples(X, "iwae", k))),
            f"importance sampling with q (k={big})":
                float(np.mean(model.score_samples(X, "importance", big))),
            f"naive Monte Carlo from the prior (k={big})":
                float(np.mean(model.score_samples(X, "naive", big)))}


def _estimator_rows(models: dict, X_test, budget: Budget) -> list[dict]:
    """One row per estimator, one column per model (its latent dimension)."""
    columns = {f"latent_dim={dim}": _estimates(model, X_test, budget)
               for dim, model in models.items()}
    names = next(iter(columns.values())).keys()
    return [{"estimator (mean log p(x), nats)": name,
             **{column: round(values[name], 2) for column, values in columns.items()}}
            for name in names]


def _figures(models, X_test, y_test, shape, folder: Path) -> list:
    from latentkit import plot

    from .figures import (
        plot_latent_space,
        plot_manifold,
        plot_reconstructions,
        plot_samples,
    )

    small, large = models[LATENT_DIMS[0]], models[LATENT_DIMS[1]]
    curves = {f"latent_dim={dim}": m.history_ for dim, m in models.items()}
    return [
        (plot.save_figure(plot_reconstructions(large, X_test, shape),
                          folder / "reconstructions.png"),
         f"test images (top) and their reconstructions by the {LATENT_DIMS[1]}-D VAE"),
        (plot.save_figure(plot_samples(large, shape), folder / "samples.png"),
         f"E[x | z] for 64 draws z ~ p(z) of the {LATENT_DIMS[1]}-D VAE"),
        (plot.save_figure(plot_latent_space(small.transform(X_test), y_test,
                                            label_name="digit",
                                            title="test images: E[z | x], coloured by digit"),
                          folder / "latent.png"),
         f"the {LATENT_DIMS[0]}-D latent space: each test image's posterior mean, coloured "
         f"by its digit (never seen in training)"),
        (plot.save_figure(plot_manifold(small, shape), folder / "manifold.png"),
         "E[x | z] of the 2-D VAE over a grid of z at the prior's quantiles"),
        (plot.save_figure(plot.plot_history(curves, xlabel="epoch",
                                            ylabel="mean ELBO per image (nats)",
                                            title="VAE training"),
                          folder / "training.png"),
         "the training ELBO per epoch of both models"),
    ]


#: Bernoulli probabilities are clipped to [EPS, 1 - EPS] before the log (a float32
#: sigmoid reaches 1.0 exactly)
EPS = 1e-6
IMPUTATION_TABLE = "imputing the hidden top half of test images"


def hide_top_half(X: np.ndarray, image_shape) -> np.ndarray:
    """X : (n, H * W) as float64 with the top H // 2 rows of each image set to NaN."""
    height, width = image_shape
    masked = np.array(X, dtype=np.float64)
    masked[:, :(height // 2) * width] = np.nan
    return masked


def hidden_pixel_scores(probs, truth, hidden, guesses=None) -> tuple[float, float]:
    """(mean binary cross-entropy in nats per pixel, error rate) over the hidden pixels.

    probs : (n, D), or (n_draws, n, D) averaged over draws, Bernoulli probabilities;
    truth : (n, D) in {0, 1}; hidden : (n, D) bool; guesses : binary completions of probs'
    shape (default 1[p > 0.5], the thresholded probabilities).
        cross-entropy = -mean_hidden[x log p + (1 - x) log(1 - p)],  p in [EPS, 1 - EPS]
        error         = mean_hidden 1[guess != x]
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1 - EPS)
    guesses = p > 0.5 if guesses is None else np.asarray(guesses) > 0.5
    x = np.broadcast_to(truth, p.shape)
    mask = np.broadcast_to(hidden, p.shape)
    log_lik = np.where(x > 0.5, np.log(p), np.log1p(-p))
    return float(-log_lik[mask].mean()), float((guesses != (x > 0.5))[mask].mean())


def _vae_draws(model, masked: np.ndarray, budget: Budget):
    """MIWAE's multiple imputation, rows 50 at a time: (probabilities, draws), each
    (n_draws, n, D): z_j resampled by importance weight, p(x_m | z_j) and x_m ~ it."""
    import torch

    from .impute import resampled_latents

    generator = torch.Generator().manual_seed(0)
    observed = torch.as_tensor(~np.isnan(masked), dtype=torch.float32)
    x = torch.as_tensor(np.nan_to_num(masked), dtype=torch.float32)
    probs = []
    for start in range(0, len(x), 50):
        rows = slice(start, start + 50)
        z = resampled_latents(model.module_, x[rows], observed[rows], n_draws=budget.n_draws,
                              n_samples=budget.k_impute, generator=generator)
        with torch.no_grad():
            probs.append(model.module_.decode_mean(z))
    probs = torch.cat(probs, dim=1)
    draws = torch.where(observed > 0, x, torch.bernoulli(probs, generator=generator))
    return probs.numpy().astype(np.float64), draws.numpy()


def _imputations(model, X_train, masked, budget: Budget) -> dict:
    """label -> (probabilities, binary guesses or None, seconds); arrays (n, D) or
    (n_draws, n, D). The variational EM fits the training images and the masked ones
    together (a mixture of em_components Bernoullis); column means are Laplace-smoothed
    training-pixel frequencies (Σ x + 1) / (n + 2)."""
    from .partial_em import variational_em

    out, start = {}, time.perf_counter()
    mean = model.impute(masked, n_samples=budget.k_impute, random_state=0)
    out["VAE: posterior-predictive mean"] = (mean.astype(np.float64), None,
                                             time.perf_counter() - start)
    start = time.perf_counter()
    probs, draws = _vae_draws(model, masked, budget)
    out[f"VAE: MIWAE draws ({budget.n_draws} per image)"] = (
        probs, draws, time.perf_counter() - start)
    start = time.perf_counter()
    fitted = variational_em(np.concatenate([X_train, masked]), budget.em_components,
                            n_iter=budget.em_iter, random_state=0)
    out[f"variational EM (K={budget.em_components}, mean-field q)"] = (
        fitted.phi[len(X_train):], None, time.perf_counter() - start)
    column = (X_train.sum(axis=0) + 1.0) / (len(X_train) + 2.0)
    out["column means"] = (np.broadcast_to(column, masked.shape), None, 0.0)
    return out


def _imputation_rows(imputations: dict, truth, hidden) -> list[dict]:
    rows = []
    for label, (probs, guesses, seconds) in imputations.items():
        cross_entropy, error = hidden_pixel_scores(probs, truth, hidden, guesses)
        rows.append({"method": label,
                     "hidden-pixel cross-entropy (nats/pixel)": round(cross_entropy, 4),
                     "hidden-pixel error (%)": round(100 * error, 2),
                     "time (s)": round(seconds, 2)})
    return rows


NAIVE_TEXT = (
    "Why naive Monte Carlo fails (seed 001): p(x) = E_{p(z)}[p(x | z)], so averaging "
    "p(x | z_i) over draws z_i from the prior is unbiased, but for a given image almost "
    "every z_i from the prior decodes to a different digit, with p(x | z_i) smaller by "
    "hundreds of nats than at the few z that explain x. The average is then decided by the "
    "best of a handful of draws and falls below log p(x); the region that matters "
    "shrinks roughly exponentially with the latent dimension and with what the posterior "
    "knows about z, so the failure grows with both. Importance sampling draws z from "
    "q(z | x), which puts them where p(x | z) is large: its estimate is at or above the "
    "IWAE bound, which is at or above the ELBO (each a lower bound in expectation, "
    "tightening towards log p(x) as k grows).")


def _gap_text(estimators: list[dict]) -> str:
    """The measured shortfall of naive Monte Carlo against importance sampling, per model."""
    by_name = {row["estimator (mean log p(x), nats)"].split(" (")[0]: row for row in estimators}
    naive = by_name["naive Monte Carlo from the prior"]
    importance = by_name["importance sampling with q"]
    gaps = [f"{importance[c] - naive[c]:.1f} nats with {c.replace('_', ' ')}"
            for c in naive if c.startswith("latent_dim")]
    return (f"Here naive Monte Carlo falls below importance sampling (same number of "
            f"samples) by {' and by '.join(gaps)}; the better trained the model, the more "
            f"its posteriors concentrate and the larger the shortfall.")


def _impute_part(model, X_train, X_test, shape, budget: Budget, folder: Path):
    """(table rows, figure, text) of the imputation of the top half of n_impute test
    images by `model`, the variational EM and column means."""
    from latentkit import plot

    from .figures import plot_imputations

    truth = np.asarray(X_test[:budget.n_impute], dtype=np.float64)
    masked = hide_top_half(truth, shape)
    hidden = np.isnan(masked)
    imputations = _imputations(model, np.asarray(X_train, dtype=np.float64), masked, budget)
    rows = _imputation_rows(imputations, truth, hidden)
    (mean, _, _), (_, draws, _), (phi, _, _), _ = imputations.values()
    figure = plot_imputations(truth, masked, {"VAE mean": mean, "VAE draw": draws[0],
                                              "variational EM": phi}, shape)
    caption = (f"test images, their bottom half alone (the hidden top half in blue), and "
               f"the top half filled in by the {model.latent_dim}-D VAE (posterior-predictive "
               f"mean; one MIWAE draw) and by the seed's variational EM (q's φ)")
    path = plot.save_figure(figure, folder / "imputations.png")
    return rows, (path, caption), _impute_text(rows, model.latent_dim, budget)


def _impute_text(rows: list[dict], latent_dim: int, budget: Budget) -> str:
    """What the imputation table shows, with its measured errors."""
    error = {row["method"].split(" (")[0]: row["hidden-pixel error (%)"] for row in rows}
    mean, vem = error["VAE: posterior-predictive mean"], error["variational EM"]
    column = error["column means"]
    better = [name for name, value in (("the VAE", mean), ("the variational EM", vem))
              if value < column]
    verdict = (f"{' and '.join(better)} beat{'s' if len(better) == 1 else ''} column means"
               if better else "neither beats column means at this budget")
    return (
        f"Missing data (seed 001, \"partially observed data\"): the top half of "
        f"{budget.n_impute} test images is hidden and filled in four ways. The "
        f"{latent_dim}-D VAE above, trained on complete images, weights {budget.k_impute} "
        f"draws z_i ~ q(z | x_o) by p(x_o | z_i) p(z_i) / q(z_i | x_o) (its encoder sees the "
        f"hidden pixels as 0; the weights correct for that) and returns Σ w̃_i E[x_m | z_i], "
        f"or resamples z_j by weight and draws x_m ~ p(x_m | z_j) (MIWAE, Mattei & Frellsen "
        f"2019). The seed's variational EM fits a mixture of {budget.em_components} "
        f"multivariate Bernoullis to the training images and the half-hidden ones together, "
        f"alternating a fully factored Bernoulli q(x_m) = Π φ_d over the hidden pixels (and "
        f"a mean-field q over the component) with an exact θ step (`latentkit.deep."
        f"partial_em`). The table scores each method's Bernoulli probabilities on the "
        f"hidden pixels (cross-entropy; for the draws, that of p(x_m | z_j)) and its "
        f"completions thresholded at 0.5 (the draws are binary already). Here the "
        f"posterior-predictive mean errs on {mean:.1f}% of the hidden pixels, the "
        f"variational EM on {vem:.1f}%, column means on {column:.1f}% ({verdict}). A "
        f"single draw errs more than the mean it scatters around, the price of a plausible "
        f"completion (for multiple imputation) over a best guess. Most of the top half is "
        f"background, which column means already get right: to do better a method must "
        f"infer the digit's stroke from the bottom half, and a short run may not learn to.")


def mnist_vae(out_dir, progress, *, quick: bool = False):
    """Binarized MNIST: variational autoencoders, four estimators of log p(x), and the
    imputation of the hidden top half of test images (VAE, variational EM, column means)."""
    from latentkit.cli.report import Section

    budget = QUICK if quick else FULL
    folder = Path(out_dir) / "vae"
    X_train, X_test, y_test, shape, what, note = _load_images(budget)
    models, rows = {}, []
    for dim in LATENT_DIMS:
        model, seconds = _train(X_train, dim, budget, progress)
        models[dim] = model
        rows.append({"latent_dim": dim, "hidden": str(HIDDEN), "epochs": int(model.n_iter_),
                     "stop": model.stop_reason_, "final training ELBO":
                         round(float(model.history_[-1]), 2), "time (s)": round(seconds, 1)})
    estimators = _estimator_rows(models, X_test[:budget.n_test], budget)
    figures = _figures(models, X_test, y_test, shape, folder)
    impute_rows, impute_figure, impute_text = _impute_part(
        models[LATENT_DIMS[1]], X_train, X_test, shape, budget, folder)
    text = (f"Two `VAE`s (Bernoulli decoder, MLP {shape[0] * shape[1]}-{HIDDEN[0]}-L, tanh, "
            f"Adam, batch 100) with latent dimension L = {LATENT_DIMS[0]} (to draw) and "
            f"L = {LATENT_DIMS[1]}, fitted to {what}, within a CPU budget of "
            f"{budget.epochs} epochs and at most {budget.max_time:g} s per model: far from "
            f"the IWAE paper's 3,280 epochs (`benchmarks/deep.py`), so the numbers are "
            f"those of a short run. The first table scores the test images by each "
            f"estimator of log p(x), all seeded.")
    return Section("Binarized MNIST: variational autoencoders", "\n\n".join(
        part for part in (note, text, NAIVE_TEXT + " " + _gap_text(estimators), impute_text)
        if part),
        [*figures, impute_figure],
        [("log p(x) of test images by four estimators", estimators),
         ("training", rows), (IMPUTATION_TABLE, impute_rows)])


__all__ = ["FULL", "IMPUTATION_TABLE", "QUICK", "Budget", "hidden_pixel_scores",
           "hide_top_half", "mnist_vae"]
