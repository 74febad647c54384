"""Disentanglement and discrete latents (issue 15): quality at a stated CPU budget.

1. Factors data. A VAE, a β-VAE (β = 4) and a β-TC-VAE (β = 6, MSS), 3 seeds each, on
   `--sprites` random 64 x 64 sprites of `latentkit.datasets.make_sprites` (dSprites'
   factors: 3 shapes, 6 scales, 40 orientations, 32 x 32 positions), latent dimension 10,
   MLP encoder/decoder (`--hidden`), Bernoulli decoder, Adam 1e-3 (1e-4 in Locatello et
   al.), batch 64, `--epochs` epochs. Scored on 10,000 fresh sprites (seed 99): MIG (20
   bins, all rows) and DCI (boosted trees, 100 stages, on the first `--dci-rows` rows,
   1/3 of them held out): disentanglement_lib's protocols. Printed beside the ranges
   published for dSprites (read off the papers' figures, so approximate): Locatello et al.
   2019 (ICML; 50 seeds x 6 hyper-parameters per method, 300,000 steps of batch 64, conv
   nets) and Chen et al. 2018 (NeurIPS, Fig. 5-6; MIG against β).
2. Discrete VAE on binarized MNIST (the static binarization of Larochelle & Murray):
   20 categorical latents of 10 classes, MLP 784-400-200 (`DiscreteVAE` defaults beside),
   trained at an equal budget (`--dvae-epochs` epochs on `--mnist` training images, batch
   100, Adam 1e-3) with each estimator: Gumbel-softmax (τ 1 -> 0.5), straight-through,
   REINFORCE with a learned baseline. Test NLL by importance sampling with q as proposal
   (`--k` samples, `--n-test` test images), and the measured total variance of the
   encoder's gradient on one minibatch of 100 training images over 50 draws at the
   trained parameters (`discrete.encoder_gradient_variance`).
3. Metric speed: `disentangle_metrics.py` (MIG, SAP, DCI, FactorVAE on 10,000 codes).

Prints markdown; --write appends it to benchmarks/RESULTS.md.

Usage: python benchmarks/disentangle.py [--quick] [--write] [--seeds 0 1 2] [--epochs E]
       [--sprites N] [--dvae-epochs E] [--mnist N] [--skip-sprites] [--skip-dvae]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
#: name -> (latentkit.deep class, β)
SPRITE_MODELS = {"VAE": ("VAE", 1.0), "β-VAE (β=4)": ("BetaVAE", 4.0),
                 "β-TC-VAE (β=6)": ("BetaTCVAE", 6.0)}
#: approximate published ranges on dSprites (see the module docstring)
PUBLISHED = {
    "VAE": "MIG ≈ 0.05-0.15 (Chen et al., β = 1); β-VAE sweeps start here",
    "β-VAE (β=4)": "MIG ≈ 0.1-0.3, DCI-D ≈ 0.1-0.4 (Locatello et al., 50 seeds, all β); "
                   "MIG ≈ 0.2 at β = 4 (Chen et al.)",
    "β-TC-VAE (β=6)": "MIG ≈ 0.1-0.35, DCI-D ≈ 0.15-0.45 (Locatello et al., all β); "
                      "MIG ≈ 0.3-0.4 at β = 6 (Chen et al.)",
}
ESTIMATORS = ("gumbel", "straight_through", "reinforce")


def sprite_scores(args) -> list[dict]:
    """One row per (model, seed): training time, final objective, MIG and DCI."""
    from latentkit import deep
    from latentkit.datasets import make_sprites
    from latentkit.metrics import dci, mig

    train = make_sprites(args.sprites, random_state=0)
    test = make_sprites(args.n_scored, random_state=99)
    images = np.asarray(train.images, dtype=np.float32)
    scored = np.asarray(test.images, dtype=np.float32)
    rows = []
    for seed in args.seeds:
        for name, (cls_name, beta) in SPRITE_MODELS.items():
            start = time.perf_counter()
            model = getattr(deep, cls_name)(
                10, beta=beta, hidden=tuple(args.hidden), epochs=args.epochs, batch_size=64,
                device="cpu", random_state=seed, verbose=False).fit(images)
            seconds = time.perf_counter() - start
            codes = model.transform(scored).astype(np.float64)
            factors = np.asarray(test.factors)
            trees = dci(codes[:args.dci_rows], factors[:args.dci_rows], random_state=0,
                        n_jobs=-1)
            rows.append({"model": name, "seed": seed, "seconds": seconds,
                         "objective": float(model.history_[-1]),
                         "mig": mig(codes, factors),
                         "dci_d": trees["disentanglement"], "dci_c": trees["completeness"],
                         "dci_i": trees["informativeness"]})
            print(f"  {name} seed {seed}: {seconds:.0f} s, MIG {rows[-1]['mig']:.3f}, "
                  f"DCI-D {rows[-1]['dci_d']:.3f}", flush=True)
    return rows


def _mean_sd(values) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def sprite_table(rows: list[dict], args) -> str:
    lines = [f"Sprites: {args.sprites} training images (64 x 64), {args.epochs} epochs of "
             f"batch 64 ({args.epochs * args.sprites // 64:,} steps), MLP {tuple(args.hidden)}, "
             f"10 latents, seeds {args.seeds}; scored on {args.n_scored:,} fresh sprites "
             f"(DCI on the first {args.dci_rows:,}). Mean ± sd over seeds.", "",
             "| model | MIG | DCI disentanglement | DCI completeness | DCI informativeness "
             "| final objective (nats) | fit (s) | published (dSprites, approximate) |",
             "|---|---|---|---|---|---|---|---|"]
    for name in SPRITE_MODELS:
        mine = [row for row in rows if row["model"] == name]
        lines.append(
            f"| {name} | {_mean_sd(r['mig'] for r in mine)} | "
            f"{_mean_sd(r['dci_d'] for r in mine)} | {_mean_sd(r['dci_c'] for r in mine)} | "
            f"{_mean_sd(r['dci_i'] for r in mine)} | "
            f"{statistics.mean(r['objective'] for r in mine):.1f} | "
            f"{statistics.mean(r['seconds'] for r in mine):.0f} | {PUBLISHED[name]} |")
    return "\n".join(lines)


def _mnist(args):
    from latentkit.datasets import load_binarized_mnist

    train = load_binarized_mnist(split="train", n_samples=args.mnist, random_state=0)
    test = load_binarized_mnist(split="test", n_samples=args.n_test, random_state=0)
    return (np.asarray(train.data, dtype=np.float32),
            np.asarray(test.data, dtype=np.float32))


def dvae_scores(args) -> list[dict]:
    """One row per estimator: fit time, test ELBO, test NLL (importance sampling), the
    encoder-gradient variance."""
    from latentkit.deep.discrete import DiscreteVAE, encoder_gradient_variance

    train, test = _mnist(args)
    rows = []
    for estimator in ESTIMATORS:
        start = time.perf_counter()
        model = DiscreteVAE(20, 10, estimator=estimator, hidden=(400, 200),
                            epochs=args.dvae_epochs, batch_size=100, device="cpu",
                            random_state=0, verbose=False).fit(train)
        seconds = time.perf_counter() - start
        elbo = float(np.mean(model.score_samples(test, method="elbo", n_samples=1)))
        nll = -float(np.mean(model.score_samples(test, method="importance",
                                                 n_samples=args.k)))
        variance = encoder_gradient_variance(model, train[:100], n_draws=50)
        rows.append({"estimator": estimator, "seconds": seconds, "elbo": elbo, "nll": nll,
                     "variance": variance})
        print(f"  {estimator}: {seconds:.0f} s, test NLL {nll:.2f}, variance {variance:.3g}",
              flush=True)
    return rows


def dvae_table(rows: list[dict], args) -> str:
    lines = [f"Discrete VAE, binarized MNIST: 20 x 10-class latents, MLP 784-(400, 200), "
             f"{args.dvae_epochs} epochs on {args.mnist:,} training images, batch 100, seed "
             f"0; test NLL by importance sampling (k = {args.k}) on {args.n_test:,} test "
             f"images; gradient variance = Σ_i Var of the encoder's gradient over 50 draws "
             f"on 100 training images at the trained parameters.", "",
             "| estimator | test NLL (nats) | test ELBO | encoder-gradient variance | fit (s) |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['estimator']} | {row['nll']:.2f} | {row['elbo']:.2f} | "
                     f"{row['variance']:.4g} | {row['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    parser.add_argument("--write", action="store_true", help="append to RESULTS.md")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sprites", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--n-scored", type=int, default=10_000)
    parser.add_argument("--dci-rows", type=int, default=3_000)
    parser.add_argument("--mnist", type=int, default=20_000)
    parser.add_argument("--dvae-epochs", type=int, default=10)
    parser.add_argument("--n-test", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=1_000)
    parser.add_argument("--skip-sprites", action="store_true")
    parser.add_argument("--skip-dvae", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.sprites, args.epochs, args.n_scored, args.dci_rows = [0], 500, 1, 500, 300
        args.mnist, args.dvae_epochs, args.n_test, args.k = 500, 1, 50, 50
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    parts = [f"## Disentanglement and discrete latents ({datetime.date.today()}, "
             f"`benchmarks/disentangle.py`{' --quick' if args.quick else ''}, "
             f"{os.cpu_count()} CPU cores, no GPU)"]
    if not args.skip_sprites:
        parts.append(sprite_table(sprite_scores(args), args))
    if not args.skip_dvae:
        parts.append(dvae_table(dvae_scores(args), args))
    text = "\n\n".join(parts) + "\n"
    print(text)
    if args.write:
        with open(os.path.join(HERE, "RESULTS.md"), "a", encoding="utf-8") as fh:
            fh.write("\n" + text)


if __name__ == "__main__":
    main()
