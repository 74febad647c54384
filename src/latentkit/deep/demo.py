"""The deep family's section of `latentkit demo`: variational autoencoders on binarized MNIST
within a short CPU budget, and the four estimators of log p(x) side by side on test images
(seed 001: the ELBO, the IWAE bound, importance sampling with q, and naive Monte Carlo from
the prior, which fails in high dimension).

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
    test images scored, the samples of each estimator, and test images drawn in the
    latent space (encoding is cheap)."""

    n_train: int
    epochs: int
    max_time: float
    n_test: int
    k_iwae: int
    k_importance: int
    n_points: int


FULL = Budget(n_train=5000, epochs=10, max_time=60.0, n_test=200, k_iwae=50,
              k_importance=500, n_points=2000)
QUICK = Budget(n_train=500, epochs=2, max_time=10.0, n_test=40, k_iwae=50,
               k_importance=100, n_points=200)
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


def mnist_vae(out_dir, progress, *, quick: bool = False):
    """Binarized MNIST: variational autoencoders and four estimators of log p(x)."""
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
    text = (f"Two `VAE`s (Bernoulli decoder, MLP {shape[0] * shape[1]}-{HIDDEN[0]}-L, tanh, "
            f"Adam, batch 100) with latent dimension L = {LATENT_DIMS[0]} (to draw) and "
            f"L = {LATENT_DIMS[1]}, fitted to {what}, within a CPU budget of "
            f"{budget.epochs} epochs and at most {budget.max_time:g} s per model: far from "
            f"the IWAE paper's 3,280 epochs (`benchmarks/deep.py`), so the numbers are "
            f"those of a short run. The table scores the test images by each estimator of "
            f"log p(x), all seeded.")
    return Section("Binarized MNIST: variational autoencoders", "\n\n".join(
        part for part in (note, text, NAIVE_TEXT + " " + _gap_text(estimators)) if part),
        figures,
        [("log p(x) of test images by four estimators", estimators),
         ("training", rows)])


__all__ = ["FULL", "QUICK", "Budget", "mnist_vae"]
