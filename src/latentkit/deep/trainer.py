"""One minibatch loop for every deep model, that never loses work.

A model supplies its torch module and a loss function

    loss_fn(module, batch, *, kl_weight) -> (loss, value)
        batch : (B, *event) rows as given (NaN kept: the loss handles masks);
        loss : () scalar to minimize, e.g. -mean ELBO with the KL term scaled by kl_weight;
        value : (B,) per-row objective to log, e.g. the ELBO;
    or (loss, value, terms) with terms {name: () tensor, the batch mean of a term to log}
    (e.g. a β-TC-VAE's total correlation): `TrainResult.terms` holds their epoch means;

and `Trainer.fit` does the rest: Adam with an optional learning-rate schedule, device choice,
seeds, gradient clipping, KL warm-up, a validation objective each epoch, early stopping that
keeps the best state, a progress bar, `max_time`, callbacks, and checkpoints that resume
bit-identically on the CPU.

Determinism. Epoch e visits the rows in the order `torch.randperm(n, generator)` with the
generator seeded from (seed, e), so the order of any epoch is known without replaying the
ones before; dynamic binarization (Burda et al. 2015: a fresh Bernoulli(x) draw of every
image at every visit) draws from a generator seeded from (seed, e) as well; the module's own
randomness (e.g. the reparameterization noise) comes from torch's global generator, seeded
from the seed at the start of a run and restored from a checkpoint on resume, inside
`torch.random.fork_rng` so that the caller's global RNG is left as it was (a loss function
must draw from torch's generators; Python's and NumPy's are neither seeded nor saved). A checkpoint
records the position (epoch, next batch) and every state that the rest of the run depends
on, so stopping anywhere and resuming gives the same parameters and history, bit for bit.

NaN/inf guard. The loss, the sum of the logged values and the gradient (the sum of all its
entries, or its norm when clipping; either is non-finite exactly when an entry is) are
checked, with one device synchronization, before the
optimizer steps, so a non-finite step is simply not taken: the parameters and Adam's moments
are still those of the last good step, at no cost. The module's buffers, which a forward
pass may update (batch-norm statistics), are copied after every good step (nothing to copy
for most VAEs) and put back after a bad one, so training continues from exactly the last
good state. Should a loss function have damaged the parameters or the optimizer state
themselves (they are checked after a bad step), the snapshot taken at the start of the epoch
is restored. After `max_nonfinite_steps` non-finite steps in a row training stops with
`TrainingDivergedError`, keeping the best state. (A full snapshot after every good step would
cost about 1/3 of a step of a 784-400-20 VAE on the CPU; every 50 steps, 0.7%; the gradient
sum, 2.5%.)

Data parallel. strategy='ddp' runs DistributedDataParallel over world_size processes (or
those of a torchrun launch), with the same per-epoch objective as the single-process run at
the same global batch to round-off: `ddp`'s docstring says how (loss scaling, noise drawn
for the global batch, all-reduced sums) and what it does not cover (batch-norm on the CPU,
batch-coupled estimators).

Speed. Whether the training rows hold any NaN is checked once (`Rows.may_have_nan`), so
dynamic binarization carries NaN through only when there can be some; a Dataset is only
seen batch by batch and always takes that path.
"""

from __future__ import annotations

import math

import torch

from ..exceptions import InvalidParameterError
from ._batches import binarize, derive_seed, epoch_order, kl_warmup_weight, resolve_device
from ._loop import EpochInfo, TrainResult
from ._run import (
    LR_SCHEDULES,
    SCHEDULE_DEFAULTS,
    NonFiniteStepWarning,
    TrainingDivergedError,
    _Run,
)
from .checkpoint import load_checkpoint
from .ddp import BACKENDS, STRATEGIES, choose_backend, fit_data_parallel


def _check(name, value, ok: bool, expected: str) -> None:
    if not ok:
        raise InvalidParameterError(f"{name} must be {expected}; got {value!r}.")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


class Trainer:
    """Minibatch training of a torch module on a loss function (see the module docstring).

    epochs, batch_size : epochs to run in all (a resumed run continues up to `epochs`) and
        rows per step (the last batch of an epoch may be smaller).
    lr, weight_decay : Adam's step size and L2 penalty.
    lr_schedule : None, 'exponential' (lr * gamma^epoch), 'cosine' (to eta_min over T_max =
        epochs) or 'plateau' (lr * factor after `patience` epochs without improvement of the
        monitored objective); stepped once per epoch; `lr_schedule_options` overrides the
        torch scheduler's arguments (defaults in SCHEDULE_DEFAULTS).
    clip_grad_norm : None or the largest global gradient 2-norm (larger ones are rescaled).
    kl_warmup_epochs : the KL weight passed to loss_fn rises linearly from 0 to 1 over this
        many epochs, per batch (`kl_warmup_weight`); 0 means always 1.
    early_stopping_patience : None, or stop after this many epochs without improvement of the
        monitored objective: the validation objective when there is validation data, else the
        training one.
    validation_fraction : share of the training rows (a seeded random split) held out for
        validation when `fit` gets no `valid_data`. With validation data the module ends the
        run holding its best state on it; without, its last state.
    checkpoint_path, checkpoint_every_minutes : where to write checkpoints (None: nowhere),
        and how often within an epoch (0: after every batch); one is also written at the end
        of every epoch and whenever the run stops.
    device : 'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'.
    random_state : None or an int seed (None: a fresh one, recorded in checkpoints).
    verbose : None shows a progress bar on a terminal after one second, True at once, False
        never. max_time : seconds, checked after each batch (None: no limit).
    callbacks : callables receiving an `EpochInfo` after each epoch; True from one stops.
    dynamic_binarization : replace each batch x (entries in [0, 1]) by a Bernoulli(x) draw,
        fresh at every epoch; validation rows are binarized by one fixed draw.
    max_nonfinite_steps : non-finite steps in a row before `TrainingDivergedError`.
    strategy : None (this process) or 'ddp' (data parallel, `ddp`): under torchrun (or in
        an initialized process group) every process calls fit and joins the group;
        otherwise fit spawns `world_size` processes and returns rank 0's result, the
        module holding its parameters. batch_size stays the global batch.
    world_size : None, or the processes to spawn with strategy='ddp' (under torchrun, None
        or the group's size). backend : None ('nccl' on CUDA, 'gloo' on the CPU), 'gloo'
        or 'nccl'.
    """

    def __init__(self, epochs: int = 10, batch_size: int = 100, lr: float = 1e-3,
                 lr_schedule: str | None = None, lr_schedule_options: dict | None = None,
                 weight_decay: float = 0.0, clip_grad_norm: float | None = None,
                 kl_warmup_epochs: float = 0, early_stopping_patience: int | None = None,
                 validation_fraction: float = 0.0, checkpoint_path=None,
                 checkpoint_every_minutes: float = 10, device="auto", random_state=None,
                 verbose=None, max_time: float | None = None, callbacks=None,
                 dynamic_binarization: bool = False, max_nonfinite_steps: int = 5,
                 strategy: str | None = None, world_size: int | None = None,
                 backend: str | None = None):
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.lr_schedule, self.lr_schedule_options = lr_schedule, lr_schedule_options
        self.weight_decay, self.clip_grad_norm = weight_decay, clip_grad_norm
        self.kl_warmup_epochs = kl_warmup_epochs
        self.early_stopping_patience = early_stopping_patience
        self.validation_fraction = validation_fraction
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every_minutes = checkpoint_every_minutes
        self.device, self.random_state, self.verbose = device, random_state, verbose
        self.max_time, self.callbacks = max_time, list(callbacks or ())
        self.dynamic_binarization = dynamic_binarization
        self.max_nonfinite_steps = max_nonfinite_steps
        self.strategy, self.world_size, self.backend = strategy, world_size, backend
        self._validate()
        self._validate_strategy()

    def _validate(self) -> None:
        def positive_int(v):
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1
        _check("epochs", self.epochs, positive_int(self.epochs), "a positive integer")
        _check("batch_size", self.batch_size, positive_int(self.batch_size),
               "a positive integer")
        _check("lr", self.lr, _is_number(self.lr) and self.lr > 0, "a positive number")
        _check("lr_schedule", self.lr_schedule, self.lr_schedule in LR_SCHEDULES,
               f"one of {LR_SCHEDULES}")
        _check("lr_schedule_options", self.lr_schedule_options,
               self.lr_schedule_options is None or isinstance(self.lr_schedule_options, dict),
               "None or a dict of the torch scheduler's arguments")
        _check("weight_decay", self.weight_decay,
               _is_number(self.weight_decay) and self.weight_decay >= 0, "a number >= 0")
        _check("clip_grad_norm", self.clip_grad_norm, self.clip_grad_norm is None or (
            _is_number(self.clip_grad_norm) and self.clip_grad_norm > 0), "None or > 0")
        _check("kl_warmup_epochs", self.kl_warmup_epochs,
               _is_number(self.kl_warmup_epochs) and self.kl_warmup_epochs >= 0,
               "a number >= 0")
        _check("early_stopping_patience", self.early_stopping_patience,
               self.early_stopping_patience is None or positive_int(
                   self.early_stopping_patience), "None or a positive integer")
        _check("validation_fraction", self.validation_fraction,
               _is_number(self.validation_fraction) and 0 <= self.validation_fraction < 1,
               "a number in [0, 1)")
        _check("checkpoint_every_minutes", self.checkpoint_every_minutes,
               _is_number(self.checkpoint_every_minutes) and self.checkpoint_every_minutes >= 0,
               "a number >= 0")
        _check("random_state", self.random_state, self.random_state is None or (
            isinstance(self.random_state, int) and not isinstance(self.random_state, bool)
            and self.random_state >= 0), "None or an integer >= 0")
        _check("max_time", self.max_time,
               self.max_time is None or (_is_number(self.max_time) and self.max_time > 0),
               "None or a positive number of seconds")
        _check("callbacks", self.callbacks, all(callable(cb) for cb in self.callbacks),
               "a list of callables")
        _check("max_nonfinite_steps", self.max_nonfinite_steps,
               positive_int(self.max_nonfinite_steps), "a positive integer")

    def _validate_strategy(self) -> None:
        _check("strategy", self.strategy, self.strategy in STRATEGIES, f"one of {STRATEGIES}")
        _check("world_size", self.world_size, self.world_size is None or (
            isinstance(self.world_size, int) and not isinstance(self.world_size, bool)
            and self.world_size >= 1), "None or a positive integer (processes to spawn)")
        _check("backend", self.backend, self.backend in BACKENDS, f"one of {BACKENDS}")
        for name in ("world_size", "backend"):
            if getattr(self, name) is not None and self.strategy != "ddp":
                raise InvalidParameterError(f"{name}={getattr(self, name)!r} applies to "
                                            "data-parallel training: add strategy='ddp'.")
        if self.strategy == "ddp":
            device = resolve_device(self.device)
            if self.backend == "nccl" and device.type != "cuda":
                raise InvalidParameterError(
                    f"backend='nccl' moves CUDA tensors only, but device={self.device!r} "
                    "resolves to the CPU (or no CUDA device is available); use "
                    "backend='gloo' (or None) on the CPU.")
            n_gpus = torch.cuda.device_count()
            if (device.type == "cuda" and choose_backend(self.backend, self.device) == "nccl"
                    and self.world_size is not None and self.world_size > n_gpus):
                raise InvalidParameterError(
                    f"world_size={self.world_size} processes with nccl need one CUDA device "
                    f"each, and {n_gpus} are visible; lower world_size or use device='cpu'.")

    def fit(self, module: torch.nn.Module, loss_fn, train_data, valid_data=None,
            resume_from=None) -> TrainResult:
        """Train `module` in place on `loss_fn` (see the module docstring) and report.

        train_data, valid_data : (n_rows, *event) tensor or array, or a Dataset.
        resume_from : a checkpoint path written by a Trainer with the same batch size, seed
            and data; the run continues from its position up to `epochs`.
        Returns a TrainResult. Raises CheckpointError (a damaged or mismatched checkpoint),
        TrainingDivergedError (after `max_nonfinite_steps` non-finite steps in a row; the best
        state is kept and a checkpoint written), InvalidInputError / InvalidParameterError.
        """
        if self.strategy == "ddp":
            return fit_data_parallel(self, module, loss_fn, train_data, valid_data,
                                     resume_from)
        return self._fit_in_process(_Run, module, loss_fn, train_data, valid_data,
                                    resume_from)

    def _fit_in_process(self, run_class, module, loss_fn, train_data, valid_data,
                        resume_from) -> TrainResult:
        """fit in this process with a `_Run` (or `ddp._DDPRun`, one process of a group)."""
        saved = None if resume_from is None else load_checkpoint(resume_from)
        run = run_class(self, module, loss_fn, train_data, valid_data, saved)
        devices = [run.device] if run.device.type == "cuda" else []
        was_training = module.training
        with torch.random.fork_rng(devices=devices):
            run.seed_or_restore_rng(saved)
            try:
                return run.train()
            finally:
                module.train(was_training)


__all__ = ["LR_SCHEDULES", "SCHEDULE_DEFAULTS", "EpochInfo", "NonFiniteStepWarning",
           "TrainResult", "Trainer", "TrainingDivergedError", "binarize", "derive_seed",
           "epoch_order", "kl_warmup_weight", "resolve_device"]
