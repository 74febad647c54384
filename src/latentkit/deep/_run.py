"""A Trainer's run (see `trainer`): the epochs and batches, the NaN/inf guard, validation
and early stopping, checkpoints and resume. `_Run` holds the module, the optimizer, the
scheduler and the run's position (`_Loop`); `Trainer.fit` builds one per call. The hooks
`_shard`, `_forward`, `_backward`, `_global_sums`, `_past_deadline` and `_agree` are where a
data-parallel run (`ddp._DDPRun`) differs; here they are the single-process identities."""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from ..em.contract import ConvergenceWarning
from ..exceptions import (
    InvalidInputError,
    InvalidParameterError,
    UserError,
)
from ._batches import (
    BINARIZE,
    SPLIT,
    TORCH,
    VALID,
    Rows,
    binarize,
    derive_seed,
    epoch_order,
    kl_warmup_weight,
    resolve_device,
)
from ._loop import EpochInfo, TrainResult, _Loop
from .checkpoint import CheckpointError, save_checkpoint

if TYPE_CHECKING:  # the Trainer's options, read by the run
    from . import trainer

LR_SCHEDULES = (None, "exponential", "cosine", "plateau")
#: options of each schedule unless `lr_schedule_options` says otherwise (plateau: mode "max",
#: as the monitored objective is maximized; cosine: T_max = epochs)
SCHEDULE_DEFAULTS = {"exponential": {"gamma": 0.99}, "cosine": {"eta_min": 0.0},
                     "plateau": {"factor": 0.5, "patience": 5}}
_RESUME_KEYS = ("batch_size", "dynamic_binarization", "n_train", "n_valid", "row_shape")


class NonFiniteStepWarning(ConvergenceWarning):
    """A training step had a non-finite loss or gradient and was skipped."""


class TrainingDivergedError(UserError, RuntimeError):
    """Too many non-finite steps in a row: the options (lr, clipping) or the data must change."""


def _unpack(returned, n_rows: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """A loss function's (loss, value) or (loss, value, terms), checked: value (n_rows,),
    terms {name: () tensor}. Returns (loss, value, terms)."""
    loss, value, terms = (*returned, {}) if len(returned) == 2 else returned
    if value.shape != (n_rows,):
        raise ValueError(f"loss_fn must return (loss, value[, terms]) with value of shape "
                         f"({n_rows},), one objective per row; got {tuple(value.shape)}.")
    if not isinstance(terms, dict) or not all(
            isinstance(t, torch.Tensor) and t.numel() == 1 for t in terms.values()):
        raise ValueError("loss_fn's terms must be a dict {name: scalar tensor}, each the "
                         "batch mean of a term to log.")
    return loss, value, terms


def _row_sums(loss: torch.Tensor, value: torch.Tensor, terms: dict,
              n_rows: int) -> torch.Tensor:
    """(2 + T,) float64 on loss's device: [B · loss, Σ_rows value, B · term_t ...] of a
    batch of B = n_rows rows (loss and the terms are batch means); zeros when B = 0 (a
    data-parallel process holding no row of a small last batch)."""
    if n_rows == 0:
        return torch.zeros(2 + len(terms), dtype=torch.float64, device=loss.device)
    means = torch.stack([loss.detach().double()] + [
        t.detach().double().reshape(()).to(loss.device) for t in terms.values()]) * n_rows
    return torch.cat([means[:1], value.detach().double().sum().reshape(1), means[1:]])


def _float_dtype(module: torch.nn.Module) -> torch.dtype:
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.get_default_dtype()


def _all_finite(tensors) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors
               if isinstance(t, torch.Tensor) and t.is_floating_point())


class _Run:
    """One call of `Trainer.fit`: the module, its optimizer and scheduler, the data, the loop
    state, and the steps of the loop."""

    def __init__(self, cfg: trainer.Trainer, module, loss_fn, train_data, valid_data, saved):
        self.cfg, self.module, self.loss_fn = cfg, module, loss_fn
        self.is_main = getattr(self, "is_main", True)  # the process that writes and shows
        self.device = resolve_device(cfg.device)
        module.to(self.device)
        self.loop = _Loop(self._seed(saved))
        self.train_rows, self.valid_rows = self._data(train_data, valid_data,
                                                      _float_dtype(module))
        self.n_batches = -(-self.train_rows.n_rows // cfg.batch_size)
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = self._scheduler()
        self.binarizer = (torch.Generator(device=self.device) if cfg.dynamic_binarization
                          else None)
        self.best_state, self.saved_at, self.mark, self.bar = None, None, None, None
        if saved is not None:
            self._restore(saved)
        self.snapshot, self.good_buffers = None, None

    def _seed(self, saved) -> int:
        seed = self.cfg.random_state
        if saved is None:
            return int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed
        if seed is not None and seed != saved["loop"]["seed"]:
            raise CheckpointError(f"the checkpoint was written with random_state="
                                  f"{saved['loop']['seed']}; resume with that one (or None), "
                                  f"not {seed}.")
        return saved["loop"]["seed"]

    def _data(self, train_data, valid_data, dtype):
        cfg = self.cfg
        train = Rows(train_data, self.device, dtype, "train_data")
        valid = None if valid_data is None else Rows(valid_data, self.device, dtype,
                                                      "valid_data")
        if valid is not None and cfg.validation_fraction > 0:
            raise InvalidParameterError("give valid_data or validation_fraction > 0, not both.")
        if cfg.validation_fraction > 0:
            n_valid = round(cfg.validation_fraction * train.n_rows)
            if not 1 <= n_valid < train.n_rows:
                raise InvalidParameterError(
                    f"validation_fraction={cfg.validation_fraction} of {train.n_rows} rows "
                    f"leaves {n_valid} for validation; it needs at least one on each side.")
            split = torch.Generator().manual_seed(derive_seed(self.loop.seed, SPLIT))
            order = torch.randperm(train.n_rows, generator=split)
            train, valid = train.subset(order[n_valid:]), train.subset(order[:n_valid])
        for rows, name in ((train, "train_data"), (valid, "valid_data")):
            if cfg.dynamic_binarization and rows is not None and rows.tensor is not None and (
                    not rows.tensor.is_floating_point()
                    or bool(((rows.tensor < 0) | (rows.tensor > 1)).any())):
                raise InvalidInputError(f"dynamic_binarization draws Bernoulli(x): {name} must "
                                        "be floating point in [0, 1] (scale the intensities "
                                        "first, e.g. X / 255).")
        return train, valid

    def _scheduler(self):
        cfg = self.cfg
        if cfg.lr_schedule is None:
            return None
        options = {**SCHEDULE_DEFAULTS[cfg.lr_schedule], **(cfg.lr_schedule_options or {})}
        schedules = torch.optim.lr_scheduler
        try:
            if cfg.lr_schedule == "exponential":
                return schedules.ExponentialLR(self.optimizer, **options)
            if cfg.lr_schedule == "cosine":
                return schedules.CosineAnnealingLR(self.optimizer,
                                                   **{"T_max": cfg.epochs, **options})
            return schedules.ReduceLROnPlateau(self.optimizer, **{"mode": "max", **options})
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(f"lr_schedule_options={cfg.lr_schedule_options!r} "
                                        f"does not fit lr_schedule={cfg.lr_schedule!r}: {exc}"
                                        ) from None

    def _config(self) -> dict:
        return {"batch_size": self.cfg.batch_size,
                "dynamic_binarization": bool(self.cfg.dynamic_binarization),
                "n_train": self.train_rows.n_rows,
                "n_valid": 0 if self.valid_rows is None else self.valid_rows.n_rows,
                "row_shape": self.train_rows.row_shape()}

    def _restore(self, saved: dict) -> None:
        """Load a checkpoint's module, optimizer, scheduler and loop state (RNGs: see
        `seed_or_restore_rng`)."""
        config = self._config()
        for key in _RESUME_KEYS:
            if saved["config"].get(key) != config[key]:
                raise CheckpointError(
                    f"the checkpoint was written with {key}={saved['config'].get(key)!r} and "
                    f"this run has {config[key]!r}: resume with the same data and options.")
        if (saved["scheduler"] is None) != (self.scheduler is None):
            raise CheckpointError("the checkpoint and this Trainer differ in lr_schedule; "
                                  "resume with the same lr_schedule.")
        try:
            self.module.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(saved["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"the checkpoint does not fit this module: {exc}") from None
        self.best_state = saved["best"]
        self.loop = _Loop(**saved["loop"])

    def seed_or_restore_rng(self, saved) -> None:
        """Seed torch's global generator for a fresh run, or restore it (and the
        binarization generator) from a checkpoint."""
        if saved is None:
            torch.default_generator.manual_seed(derive_seed(self.loop.seed, TORCH))
            if self.device.type == "cuda":
                with torch.cuda.device(self.device):
                    torch.cuda.manual_seed(derive_seed(self.loop.seed, TORCH))
        else:
            rng = saved["rng"]
            torch.set_rng_state(rng["torch"])
            if self.device.type == "cuda" and rng["cuda"] is not None:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
            if self.binarizer is not None and rng["binarizer"] is not None:
                self.binarizer.set_state(rng["binarizer"])
        self._mark()

    def _mark(self) -> None:
        """Record the RNG states at the current position (what a checkpoint written now, or
        after an interruption before the next mark, must restore)."""
        self.mark = {"torch": torch.get_rng_state(),
                     "cuda": (torch.cuda.get_rng_state(self.device)
                              if self.device.type == "cuda" else None),
                     "binarizer": None if self.binarizer is None else self.binarizer.get_state()}

    def _save(self) -> None:
        loop = self.loop
        save_checkpoint(self.cfg.checkpoint_path, {
            "config": self._config(), "loop": loop.__dict__, "model": self.module.state_dict(),
            "best": self.best_state, "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng": self.mark})
        self.saved_at, self.last_checkpoint = (loop.epoch, loop.batch), time.monotonic()

    def _take_snapshot(self) -> None:
        """Keep the module's and the optimizer's state (at the start of an epoch) and a copy
        of the buffers (after each good step)."""
        self.snapshot = {
            "model": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "epoch": self.loop.epoch + 1, "batch": self.loop.batch}
        self.good_buffers = [b.detach().clone() for b in self.module.buffers()]

    def _keep_buffers(self) -> None:
        for kept, buffer in zip(self.good_buffers, self.module.buffers()):
            kept.copy_(buffer)

    def train(self) -> TrainResult:
        cfg, loop = self.cfg, self.loop
        self.start = self.last_checkpoint = time.monotonic()
        self.deadline = None if cfg.max_time is None else self.start + cfg.max_time
        verbose = cfg.verbose if self.is_main else False
        delay = (1.0 if sys.stderr.isatty() else None) if verbose is None else (
            0.0 if verbose else None)
        with tqdm(total=cfg.epochs * self.n_batches, desc="train", disable=delay is None,
                  initial=loop.epoch * self.n_batches + loop.batch, leave=False,
                  file=sys.stderr, delay=delay or 0.0) as self.bar:
            self.postfix_at = 0.0
            try:
                reason = self._epochs()
            except KeyboardInterrupt:
                reason = "interrupted"
            except TrainingDivergedError:
                self._finish("diverged")
                raise
        return self._finish(reason)

    def _epochs(self) -> str:
        cfg, loop = self.cfg, self.loop
        while loop.epoch < cfg.epochs:
            order = epoch_order(self.train_rows.n_rows, loop.seed, loop.epoch)
            if loop.batch == 0 and self.binarizer is not None:
                self.binarizer.manual_seed(derive_seed(loop.seed, BINARIZE, loop.epoch))
                self._mark()
            self._take_snapshot()
            for index in range(loop.batch, self.n_batches):
                self._batch(order, index)
                if cfg.checkpoint_path is not None and (
                        time.monotonic() - self.last_checkpoint
                        >= 60 * cfg.checkpoint_every_minutes):
                    self._save()
                if index + 1 < self.n_batches and self._past_deadline():  # and epoch's end
                    return "max_time"
            reason = self._agree(self._end_epoch())
            if reason is not None:
                return reason
        return "epochs"

    def _batch(self, order: torch.Tensor, index: int) -> None:
        """Fetch batch `index` of the epoch's `order`, take one guarded step, advance."""
        cfg, loop = self.cfg, self.loop
        rows = order[index * cfg.batch_size:(index + 1) * cfg.batch_size]
        weight = kl_warmup_weight(loop.epoch * self.n_batches + index, self.n_batches,
                                  cfg.kl_warmup_epochs)
        local, shard = self._shard(rows)
        with shard:
            x = self.train_rows.take(local)
            if self.binarizer is not None:
                x = binarize(x, self.binarizer, may_have_nan=self.train_rows.may_have_nan)
            bad, total, terms = self._step(x, weight, len(rows))
        if bad is None:
            loop.epoch_sum, loop.epoch_rows, loop.bad_in_row = (
                loop.epoch_sum + total, loop.epoch_rows + len(rows), 0)
            loop.add_terms(terms)
        loop.batch = index + 1
        self._mark()
        if bad is not None:
            self._nonfinite(bad, index)
        if not self.bar.disable:
            self.bar.update(1)
            if time.monotonic() - self.postfix_at > 0.5 and loop.epoch_rows:
                self.bar.set_postfix(objective=f"{loop.epoch_sum / loop.epoch_rows:.6g}")
                self.postfix_at = time.monotonic()

    # -- where a data-parallel run differs (ddp._DDPRun) ----------------------------------
    def _shard(self, rows: torch.Tensor):
        """(this process's share of the batch's row indices, the context to draw its noise
        in): all of them, no context."""
        return rows, contextlib.nullcontext()

    def _forward(self, x: torch.Tensor, kl_weight: float):
        return self.loss_fn(self.module, x, kl_weight=kl_weight)

    def _backward(self, loss: torch.Tensor, n_local: int, n_rows: int) -> None:
        loss.backward()

    def _global_sums(self, sums: torch.Tensor):
        """Start summing this process's sums over the processes; call the result for the
        batch's sums (a data-parallel run overlaps the sum with the backward pass)."""
        return lambda: sums

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _agree(self, reason: str | None) -> str | None:
        """The stop decision at an epoch's end, the same in every process."""
        return reason

    # -- the steps ------------------------------------------------------------------------
    def _step(self, x: torch.Tensor, kl_weight: float,
              n_rows: int) -> tuple[str | None, float, dict]:
        """One Adam step on this process's rows x : (B_local, *event) of a batch of n_rows
        rows, unless the loss, the values or the gradient are non-finite. Returns (None or
        the name of what was non-finite, sum of the batch's values, {name: B · term} of the
        logged terms); one device synchronization reads them all."""
        self.optimizer.zero_grad(set_to_none=True)
        loss, value, terms = _unpack(self._forward(x, kl_weight), len(x))
        summed = self._global_sums(_row_sums(loss, value, terms, len(x)))
        self._backward(loss, len(x), n_rows)
        sums = summed()
        checks = torch.cat([sums[:2], self._gradient_summary().to(sums.device).reshape(1),
                            sums[2:]]).tolist()
        sums = dict(zip(terms, checks[3:]))
        for name, number in zip(("loss", "objective values", "gradient"), checks):
            if not math.isfinite(number):
                return name, checks[1], sums
        self.optimizer.step()
        if self.good_buffers:
            self._keep_buffers()
        return None, checks[1], sums

    def _gradient_summary(self) -> torch.Tensor:
        """() float64, finite exactly when every gradient entry is finite: the global 2-norm
        when clipping (which computes it anyway), else Σ_p Σ_i grad_p,i, since a NaN entry
        makes the sum NaN and an infinite one makes it ±inf or NaN. (Finite entries whose
        per-parameter sum passes float32's 3e38 are flagged too, as the norm flags squares
        past it; such a step is skipped either way.) One reduction per parameter: a sum
        reads the gradients once, as the norm does, without squaring or a second pass
        (0.10 ms against 0.18-0.23 ms for `get_total_norm`, 425k parameters, one thread)."""
        if self.cfg.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip_grad_norm)
            return norm.detach().double()
        sums = [p.grad.sum() for p in self.params if p.grad is not None]
        if not sums:
            return torch.zeros((), dtype=torch.float64)
        return torch.stack(sums).double().sum()

    def _nonfinite(self, what: str, index: int) -> None:
        """After a skipped step: put back the buffers of the last good step (and the epoch's
        snapshot if the parameters or the optimizer state were damaged), warn, or give up
        after too many."""
        loop = self.loop
        loop.bad_in_row += 1
        loop.skipped.append((loop.epoch + 1, index))
        rolled = ""
        for kept, buffer in zip(self.good_buffers, self.module.buffers()):
            if not torch.equal(kept, buffer):
                buffer.copy_(kept)
                rolled = "; the buffers its forward pass had changed were put back"
        optimizer_tensors = [t for state in self.optimizer.state.values()
                             for t in state.values()]
        if not _all_finite(list(self.module.parameters()) + optimizer_tensors):
            self.module.load_state_dict(self.snapshot["model"])
            self.optimizer.load_state_dict(copy.deepcopy(self.snapshot["optimizer"]))
            rolled = (f"; its parameters or optimizer state were damaged: restored the "
                      f"snapshot of epoch {self.snapshot['epoch']}, batch index "
                      f"{self.snapshot['batch']}")
        where = f"epoch {loop.epoch + 1}, batch index {index} (of {self.n_batches})"
        advice = (f"lower lr (now {self.optimizer.param_groups[0]['lr']:g}), set "
                  "clip_grad_norm (e.g. 10.0), lengthen kl_warmup_epochs, or check the data "
                  "for extreme values")
        if loop.bad_in_row >= self.cfg.max_nonfinite_steps:
            raise TrainingDivergedError(
                f"{loop.bad_in_row} non-finite steps in a row, the last at {where}: training "
                f"stopped, keeping the best state{self._checkpoint_note()}. To continue, "
                f"{advice}.")
        warnings.warn(f"non-finite {what} at {where}: the step was skipped and training "
                      f"continues from the last good state{rolled}. If this recurs, {advice}.",
                      NonFiniteStepWarning, stacklevel=6)  # < _batch < _epochs < train < fit

    def _checkpoint_note(self) -> str:
        path = self.cfg.checkpoint_path
        return "" if path is None else f" (checkpoint in {str(path)!r}: resume_from=it)"

    def _validate(self) -> float:
        """Mean per-row objective on the validation rows, kl_weight 1, in eval mode, with
        one fixed binarization draw when dynamic_binarization is on."""
        rows, size = self.valid_rows, self.cfg.batch_size
        generator = None
        if self.binarizer is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(derive_seed(self.loop.seed, VALID))
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        self.module.eval()
        try:
            with torch.no_grad():
                for start in range(0, rows.n_rows, size):
                    local, shard = self._shard(torch.arange(start, min(rows.n_rows,
                                                                       start + size)))
                    with shard:
                        x = rows.take(local)
                        if generator is not None:
                            x = binarize(x, generator, may_have_nan=rows.may_have_nan)
                        _, value, _ = _unpack(self.loss_fn(self.module, x, kl_weight=1.0),
                                              len(x))
                    total = total + value.detach().double().sum().to(self.device)
        finally:
            self.module.train()
        return float(self._global_sums(total.reshape(1))()[0]) / rows.n_rows

    def _end_epoch(self) -> str | None:
        """Validation, history, schedule, best state, checkpoint, callbacks and the stopping
        rules at the end of an epoch; the stop reason, or None to go on."""
        cfg, loop = self.cfg, self.loop
        valid = None if self.valid_rows is None else self._validate()
        train = loop.epoch_sum / loop.epoch_rows if loop.epoch_rows else math.nan
        monitored = train if valid is None else valid
        loop.history.append(train)
        loop.close_terms()
        if valid is not None:
            loop.valid_history.append(valid)
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        elif self.scheduler is not None:
            self.scheduler.step()
        if monitored > loop.best_value:
            loop.best_value, loop.best_epoch, loop.since_best = monitored, loop.epoch + 1, 0
            self.best_state = {k: v.detach().clone()
                               for k, v in self.module.state_dict().items()}
        else:
            loop.since_best += 1
        loop.epoch, loop.batch, loop.epoch_sum, loop.epoch_rows = loop.epoch + 1, 0, 0.0, 0
        self._mark()
        if cfg.checkpoint_path is not None:
            self._save()
        info = EpochInfo(loop.epoch, train, valid, self.optimizer.param_groups[0]["lr"],
                         time.monotonic() - self.start, tuple(loop.history),
                         tuple(loop.valid_history), self.module,
                         {name: tuple(values) for name, values in loop.terms.items()})
        if any(callback(info) is True for callback in cfg.callbacks):
            return "callback"
        if cfg.early_stopping_patience and loop.since_best >= cfg.early_stopping_patience:
            return "early_stopping"
        if self._past_deadline():
            return "max_time"
        return None

    def _finish(self, reason: str) -> TrainResult:
        """The last checkpoint, the best state back into the module (with validation data,
        after early stopping or divergence), and the report."""
        loop = self.loop
        if self.cfg.checkpoint_path is not None and self.saved_at != (loop.epoch, loop.batch):
            self._save()
        if reason == "interrupted":
            warnings.warn(f"training interrupted at epoch {loop.epoch + 1}, batch index "
                          f"{loop.batch}; keeping the best state (epoch {loop.best_epoch})"
                          f"{self._checkpoint_note()}.", ConvergenceWarning, stacklevel=4)
        keep_best = self.valid_rows is not None or reason in ("early_stopping", "diverged")
        if keep_best and self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        return TrainResult(list(loop.history), list(loop.valid_history), loop.best_epoch,
                           loop.best_value, reason, len(loop.history),
                           reason in ("epochs", "early_stopping"),
                           [tuple(step) for step in loop.skipped],
                           {name: list(values) for name, values in loop.terms.items()})
