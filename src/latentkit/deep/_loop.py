"""What a Trainer's run reports and carries: `TrainResult` (to the caller), `EpochInfo` (to
callbacks) and `_Loop` (the run's position and records, JSON-able, checkpointed).

Terms. A loss function may return, beside (loss, value), a dict of named scalar terms
{name: () tensor, the batch mean of that term}, e.g. a β-TC-VAE's mutual information, total
correlation and dimension-wise KL, or a VQ-VAE's codebook perplexity. The run weights each
term by its batch's rows and keeps the epoch mean per name:

    terms[name][e - 1] = Σ_batches B_b · term_b / Σ_batches B_b     (good steps of epoch e)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class TrainResult:
    """What `Trainer.fit` reports. Epochs are numbered from 1; `history[e - 1]` is the mean
    per-row objective over the rows of epoch e (measured while the parameters moved),
    `valid_history[e - 1]` the validation objective after it (empty without validation),
    `terms[name][e - 1]` the epoch mean of a term the loss function logged (see above).
    `converged` is True when the run ended as asked (all epochs, or early stopping)."""

    history: list[float]
    valid_history: list[float]
    best_epoch: int | None
    best_objective: float
    stop_reason: str  # epochs | early_stopping | max_time | interrupted | callback
    epochs_run: int
    converged: bool
    skipped_steps: list[tuple[int, int]] = field(default_factory=list)  # (epoch, batch index)
    terms: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class EpochInfo:
    """What a callback receives after each epoch; a callback returning True stops the run."""

    epoch: int
    objective: float
    valid_objective: float | None
    lr: float
    elapsed: float
    history: tuple[float, ...]
    valid_history: tuple[float, ...]
    module: torch.nn.Module
    terms: dict[str, tuple[float, ...]] = field(default_factory=dict)


@dataclass
class _Loop:
    """Everything about a run's progress that a checkpoint must carry (JSON-able)."""

    seed: int
    epoch: int = 0  # 0-based index of the epoch under way
    batch: int = 0  # index of its next batch
    epoch_sum: float = 0.0  # sum of the logged values of its good steps so far
    epoch_rows: int = 0
    history: list = field(default_factory=list)
    valid_history: list = field(default_factory=list)
    best_value: float = -math.inf
    best_epoch: int | None = None
    since_best: int = 0
    bad_in_row: int = 0
    skipped: list = field(default_factory=list)
    term_sums: dict = field(default_factory=dict)  # name -> Σ B_b · term_b this epoch
    terms: dict = field(default_factory=dict)  # name -> [epoch means]

    def add_terms(self, sums: dict) -> None:
        """Add a good step's row-weighted terms {name: B · term}."""
        for name, total in sums.items():
            self.term_sums[name] = self.term_sums.get(name, 0.0) + total

    def close_terms(self) -> None:
        """End of an epoch: each term's epoch mean into `terms` (a term the epoch's steps
        did not log gets NaN, so every list has one entry per epoch)."""
        names = list(self.terms) + [name for name in self.term_sums if name not in self.terms]
        for name in names:
            mean = (self.term_sums[name] / self.epoch_rows
                    if name in self.term_sums and self.epoch_rows else math.nan)
            self.terms.setdefault(name, [math.nan] * (len(self.history) - 1)).append(mean)
        self.term_sums = {}
