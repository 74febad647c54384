"""Deep LVM training speed (issue 14): latentkit's VAE.fit against a plain hand-written
PyTorch loop and against pythae's VAE trainer, side by side in one run.

Model: the 1-layer VAE of Burda et al. (2015), 784-200-200-50 (tanh), Bernoulli decoder,
analytic KL, Adam lr 1e-3, batch 100, on 10,000 MNIST training rows (`load_mnist("train",
n_samples=10_000, random_state=0)`, grey levels in [0, 1]).

Contestants (every one from the same seed, interleaved round by round; torch with ONE thread
for all of them, to keep the 2-core machine's noise out of the ratios):
  - latentkit: `VAE(50, hidden=(200, 200), activation="tanh", dynamic_binarization=True)
    .fit(X)`; X has no missing entries, so its encoder reads x alone (784 inputs; the VAE
    adds the missing-data mask as input only when the training data has NaN, `uses_mask_`,
    which this row checks);
  - plain: a hand-written loop of the paper's network (784 inputs): per epoch a randperm, per
    step a Bernoulli(x) draw, encoder, one reparameterized draw, decoder, BCE-with-logits +
    analytic KL, zero_grad, backward, Adam step — nothing else;
  - plain+mask: the same loop with the encoder input of a VAE trained on data with missing
    entries (x and a column of ones per pixel, 1,568 inputs): what the mask input costs;
  - Trainer+plain: latentkit's `Trainer.fit` driving the plain module (784 inputs) on the
    plain ELBO, so Trainer+plain / plain is the Trainer's overhead alone, with the same
    network and loss, latentkit / Trainer+plain the model path's (torch.distributions
    objects, the encoder / decoder modules, the missing-data check), and latentkit / plain
    what a user pays against writing the loop by hand;
  - pythae (`pythae.models.VAE` with the same encoder / decoder, reconstruction_loss="bce",
    its `BaseTrainer`): run in its own virtual environment (PYTHAE_PYTHON, default
    /tmp/pythae-venv/bin/python) as a subprocess of this script (`--pythae-worker`), which
    writes JSON. pythae has no dynamic binarization: it trains on one fixed Bernoulli draw
    of the training rows (seed 0).

Epoch time: the time between the ends of consecutive epochs inside one multi-epoch run
(callbacks for latentkit and pythae, the loop itself for the plain ones; the first epoch of
each run, which holds the set-up, is dropped), CPU time (time.process_time) and wall time,
median over the remaining epochs of all rounds.
Quality at equal epochs: the test ELBO (one draw per row, analytic KL) on 2,000 test images
(`load_mnist("test", n_samples=2_000, random_state=0)`, one fixed Bernoulli draw, seed 1)
after the last epoch of the last round, one evaluator for everyone (`test_elbo` below).

Usage: python benchmarks/deep.py [--rounds 3] [--epochs 5] [--no-pythae] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
LATENT, HIDDEN, BATCH, LR = 50, (200, 200), 100, 1e-3
PYTHAE_PYTHON = os.environ.get("PYTHAE_PYTHON", "/tmp/pythae-venv/bin/python")


# ------------------------------------------------------------------ the plain networks
def mlp(sizes) -> nn.Sequential:
    """Linear + tanh for each consecutive pair of `sizes`, the last Linear without tanh."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class PlainVAE(nn.Module):
    """Encoder D_in-200-200 -> (μ, log σ²) in R^50 each; decoder 50-200-200-784 logits."""

    def __init__(self, with_mask: bool):
        super().__init__()
        self.with_mask = with_mask
        d_in = 1568 if with_mask else 784
        self.body = nn.Sequential(mlp((d_in, *HIDDEN)), nn.Tanh())
        self.loc, self.log_var = nn.Linear(HIDDEN[-1], LATENT), nn.Linear(HIDDEN[-1], LATENT)
        self.decoder = mlp((LATENT, *HIDDEN[::-1], 784))

    def encode(self, x):
        """x : (B, 784) -> (μ, log σ²), each (B, 50)."""
        h = self.body(torch.cat([x, torch.ones_like(x)], -1) if self.with_mask else x)
        return self.loc(h), self.log_var(h)

    def elbo(self, x):
        """(B,) = Σ_d [x log σ(a) + (1-x) log(1-σ(a))] - ½ Σ_j (σ_j² + μ_j² - 1 - log σ_j²)."""
        mu, log_var = self.encode(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        logits = self.decoder(z)
        rec = -nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
        kl = 0.5 * (log_var.exp() + mu**2 - 1 - log_var).sum(-1)
        return rec.sum(-1) - kl


def plain_run(X: torch.Tensor, epochs: int, seed: int, with_mask: bool):
    """A hand-written training loop; returns (model, [(cpu, wall) at each epoch end])."""
    torch.manual_seed(seed)
    model = PlainVAE(with_mask)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(seed)
    marks = [(time.process_time(), time.perf_counter())]
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), BATCH):
            x = X[order[start:start + BATCH]]
            x = (torch.rand(x.shape, generator=generator) < x).float()
            loss = -model.elbo(x).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        marks.append((time.process_time(), time.perf_counter()))
    return model, marks


def test_elbo(encode, decode_logits, X: np.ndarray, seed: int = 0) -> float:
    """Mean ELBO (nats) over binary rows X (n, 784): one reparameterized draw per row,
    Bernoulli log-likelihood from logits, analytic KL against N(0, I)."""
    x = torch.from_numpy(X)
    torch.manual_seed(seed)
    with torch.no_grad():
        mu, log_var = encode(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        rec = -nn.functional.binary_cross_entropy_with_logits(decode_logits(z), x,
                                                              reduction="none").sum(-1)
        kl = 0.5 * (log_var.exp() + mu**2 - 1 - log_var).sum(-1)
    return float((rec - kl).mean())


def epoch_times(marks) -> list[tuple[float, float]]:
    """[(cpu, wall) seconds of each epoch] from the marks at the epoch ends."""
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks[:-1], marks[1:], strict=True)]


# ------------------------------------------------------------------------- latentkit
def trainer_run(X: torch.Tensor, epochs: int, seed: int):
    """latentkit's Trainer on the plain module and loss; returns (model, marks)."""
    from latentkit.deep.trainer import Trainer

    marks = []

    def loss_fn(module, batch, *, kl_weight):
        value = module.elbo(batch)
        return -value.mean(), value.detach()

    start = (time.process_time(), time.perf_counter())
    torch.manual_seed(seed)
    model = PlainVAE(with_mask=False)
    Trainer(epochs=epochs, batch_size=BATCH, lr=LR, dynamic_binarization=True, device="cpu",
            random_state=seed, verbose=False,
            callbacks=[lambda info: marks.append((time.process_time(), time.perf_counter()))],
            ).fit(model, loss_fn, X)
    return model, [start, *marks]


def latentkit_run(X: np.ndarray, epochs: int, seed: int):
    """VAE.fit with a callback marking each epoch end; returns (model, marks)."""
    from latentkit.deep import VAE

    marks = []

    def mark(info):
        marks.append((time.process_time(), time.perf_counter()))

    start = (time.process_time(), time.perf_counter())
    model = VAE(LATENT, hidden=HIDDEN, activation="tanh", epochs=epochs, batch_size=BATCH,
                lr=LR, dynamic_binarization=True, device="cpu", random_state=seed,
                verbose=False, callbacks=[mark])
    model.fit(X)
    if model.uses_mask_:
        raise RuntimeError("VAE.fit on complete data took the mask as encoder input: this row "
                           "no longer measures the 784-input network of the others.")
    return model, [start, *marks]


def latentkit_elbo(model, X: np.ndarray) -> float:
    module = model.module_
    return test_elbo(lambda x: _loc_logvar(module.encoder(x)),
                     lambda z: module.decoder(z).base_dist.logits, X)


def _loc_logvar(q):
    return q.base_dist.loc, 2 * torch.log(q.base_dist.scale)


# ---------------------------------------------------------------------------- pythae
def pythae_worker(data_dir: str, epochs: int, seed: int) -> None:
    """Run in pythae's environment: train pythae's VAE and print one JSON line."""
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    torch.set_num_threads(1)
    X = torch.from_numpy(np.load(os.path.join(data_dir, "train_bin.npy")))
    X_test = np.load(os.path.join(data_dir, "test_bin.npy"))

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(mlp((784, *HIDDEN)), nn.Tanh())
            self.loc = nn.Linear(HIDDEN[-1], LATENT)
            self.log_var = nn.Linear(HIDDEN[-1], LATENT)

        def forward(self, x):
            h = self.body(x.reshape(len(x), -1))
            return ModelOutput(embedding=self.loc(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = mlp((LATENT, *HIDDEN[::-1], 784))

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    class Marks(TrainingCallback):
        def __init__(self):
            self.marks = []

        def on_epoch_end(self, training_config, **kwargs):
            self.marks.append((time.process_time(), time.perf_counter()))

    torch.manual_seed(seed)
    model = VAE(VAEConfig(input_dim=(784,), latent_dim=LATENT, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    config = BaseTrainerConfig(output_dir=os.path.join(data_dir, "pythae_out"),
                               num_epochs=epochs, learning_rate=LR,
                               per_device_train_batch_size=BATCH, optimizer_cls="Adam",
                               steps_saving=None, seed=seed, no_cuda=True,
                               train_dataloader_num_workers=0)
    marks = Marks()
    trainer = BaseTrainer(model=model, train_dataset=BaseDataset(X, torch.zeros(len(X))),
                          training_config=config, callbacks=[marks])
    start = (time.process_time(), time.perf_counter())
    trainer.train()
    trained = trainer.model
    trained.eval()

    def encode(x):
        out = trained.encoder(x)
        return out.embedding, out.log_covariance

    elbo = test_elbo(encode, trained.decoder.net, X_test)
    print(json.dumps({"marks": [start, *marks.marks], "test_elbo": elbo,
                      "version": _version("pythae")}))


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def pythae_run(data_dir: str, epochs: int, seed: int) -> dict:
    """Run pythae_worker under PYTHAE_PYTHON; returns its JSON (raises on failure)."""
    done = subprocess.run([PYTHAE_PYTHON, os.path.abspath(__file__), "--pythae-worker",
                           data_dir, "--epochs", str(epochs), "--seed", str(seed)],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"pythae worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- driver
def load_data(data_dir: str):
    """(train grey levels (10000, 784), test binary (2000, 784)); pythae's files saved."""
    from latentkit.datasets import load_mnist

    X = load_mnist("train", n_samples=10_000, random_state=0).data.astype(np.float32)
    T = load_mnist("test", n_samples=2_000, random_state=0).data.astype(np.float32)
    rng = np.random.default_rng(1)
    T = (rng.random(T.shape, dtype=np.float32) < T).astype(np.float32)
    np.save(os.path.join(data_dir, "train_bin.npy"),
            (np.random.default_rng(0).random(X.shape, dtype=np.float32) < X).astype(
                np.float32))
    np.save(os.path.join(data_dir, "test_bin.npy"), T)
    return X, T


def run_all(args) -> dict:
    torch.set_num_threads(1)
    names = ["latentkit", "Trainer+plain", "plain", "plain+mask"] + (
        [] if args.no_pythae else ["pythae"])
    times = {name: [] for name in names}
    elbo = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as data_dir:
        X, T = load_data(data_dir)
        Xt = torch.from_numpy(X)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                if name == "latentkit":
                    model, marks = latentkit_run(X, args.epochs, seed=r)
                    elbo[name].append(latentkit_elbo(model, T))
                elif name == "pythae":
                    out = pythae_run(data_dir, args.epochs, seed=r)
                    marks, version = out["marks"], out["version"]
                    elbo[name].append(out["test_elbo"])
                else:
                    if name == "Trainer+plain":
                        model, marks = trainer_run(Xt, args.epochs, seed=r)
                    else:
                        model, marks = plain_run(Xt, args.epochs, seed=r,
                                                 with_mask=name == "plain+mask")
                    elbo[name].append(test_elbo(model.encode, model.decoder, T))
                times[name] += epoch_times(marks)[1:]  # the first holds set-up
                print(f"round {r} {name}: {epoch_times(marks)}", file=sys.stderr, flush=True)
    return {"times": times, "elbo": elbo, "epochs": args.epochs, "rounds": args.rounds,
            "pythae_version": None if args.no_pythae else version}


def report(result: dict) -> str:
    """A markdown section from run_all's result."""
    times, elbo = result["times"], result["elbo"]
    med = {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts))
           for name, ts in times.items()}
    base = med["plain"]
    rows = ["| trainer | CPU s/epoch | wall s/epoch | CPU ratio to plain | wall ratio to plain |"
            f" test ELBO after {result['epochs']} epochs (mean ± sd over seeds) |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, (cpu, wall) in med.items():
        rows.append(f"| {name} | {cpu:.3f} | {wall:.3f} | {cpu / base[0]:.3f}x | "
                    f"{wall / base[1]:.3f}x | {statistics.mean(elbo[name]):.2f} ± "
                    f"{statistics.stdev(elbo[name]) if len(elbo[name]) > 1 else 0:.2f} |")
    trainer = (med["Trainer+plain"][0] / base[0], med["Trainer+plain"][1] / base[1])
    stamp = datetime.date.today().isoformat()
    head = (f"`python benchmarks/deep.py --rounds {result['rounds']} --epochs "
            f"{result['epochs']}` ({stamp}; {platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__}, one torch thread; pythae "
            f"{result['pythae_version'] or 'not run'}). Median of "
            f"{len(times['plain'])} epochs per trainer (the first of each run dropped). "
            f"Trainer+plain / plain (the Trainer's own overhead): CPU **{trainer[0]:.3f}x**, "
            f"wall **{trainer[1]:.3f}x**.")
    return head + "\n\n" + "\n".join(rows) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-pythae", action="store_true")
    parser.add_argument("--write", action="store_true", help="append to RESULTS.md")
    parser.add_argument("--json", default=None, help="also save the raw result here")
    parser.add_argument("--pythae-worker", metavar="DATA_DIR", default=None)
    args = parser.parse_args(argv)
    if args.pythae_worker:
        pythae_worker(args.pythae_worker, args.epochs, args.seed)
        return
    result = run_all(args)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(result, file, indent=1)
    text = report(result)
    print(text)
    if args.write:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as file:
            file.write("\n" + text)


if __name__ == "__main__":
    main()
