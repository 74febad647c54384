"""Gradient estimators for expectations over categorical latents, E_{q_θ}[f(z)].

z ∈ {1..K} (one or many independent categoricals), q_θ = softmax(θ) with θ the logits.
The expectation is not differentiable through a draw, so each estimator builds a tensor
whose gradient estimates ∇_θ E_q[f(z)] (seed 002):

    REINFORCE (score function)   ĝ = ∇f(z) + (f(z) - b) ∇_θ log q_θ(z),  z ~ q_θ
        unbiased for any b that does not depend on z (E_q[∇ log q] = 0); b is a baseline
        (control variate) that lowers the variance: a moving average of f, or a learned
        b(x) trained on (f - b)².
    straight-through             y = one_hot(z) - p.detach() + p,  p = softmax(θ)
        forward: the exact one-hot draw; backward: the softmax's Jacobian (biased).
    Gumbel-softmax / concrete    y = softmax((θ + g) / τ),  g_c = -log(-log u_c), u ~ U(0,1)
        a reparameterized relaxation onto the simplex; as τ -> 0 the draws become one-hot
        (argmax(θ + g) is an exact draw of q: the Gumbel-max trick) and the bias of
        ∇ E[f(y)] for ∇ E[f(z)] vanishes, while its variance grows like 1/τ. The hard
        variant is one_hot(argmax y) - y.detach() + y (straight-through Gumbel).
    temperature schedule         τ_t = max(τ_min, τ_0 exp(-r t)),  t = training steps taken

Shapes: logits (*batch, K) -> draws (*batch,) integer classes or (*batch, K) one-hot /
relaxed vectors. Every draw comes from torch's generators: `generator` (a torch.Generator)
or the global one when None; never numpy's or Python's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from latentkit.deep._batches import draw_for_rows
from latentkit.exceptions import InvalidParameterError

#: the smallest uniform draw kept: u = 0 would give an infinite Gumbel draw
_TINY = torch.finfo(torch.float32).tiny


# ---------------------------------------------------------------------------- draws
def gumbel_noise(shape, *, like: torch.Tensor, generator=None) -> torch.Tensor:
    """Standard Gumbel draws g = -log(-log u), u ~ U(0, 1): `shape`, like's dtype/device
    (in a data-parallel step, this process's rows of the global batch's draw:
    `_batches.draw_for_rows`)."""
    u = draw_for_rows(lambda size: torch.rand(size, generator=generator, dtype=like.dtype,
                                              device=like.device), shape)
    return -torch.log(-torch.log(u.clamp_min(_TINY)))


def categorical_sample(logits: torch.Tensor, generator=None) -> torch.Tensor:
    """An exact draw z ~ softmax(logits) per batch entry by the Gumbel-max trick,
    argmax_c (θ_c + g_c): logits (*batch, K) -> (*batch,) int64 classes."""
    with torch.no_grad():
        return torch.argmax(logits + gumbel_noise(logits.shape, like=logits,
                                                  generator=generator), dim=-1)


def one_hot(classes: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """(*batch,) int classes -> (*batch, n_classes) one-hot vectors in like's dtype."""
    return nn.functional.one_hot(classes, n_classes).to(like.dtype)


def straight_through(logits: torch.Tensor, generator=None) -> torch.Tensor:
    """Straight-through draw: (*batch, K) -> (*batch, K), exactly one_hot(z), z ~ q, in
    the forward pass, with the gradient of p = softmax(logits) in the backward pass:
    y = one_hot(z) - p.detach() + p (Bengio, Léonard & Courville 2013)."""
    p = torch.softmax(logits, dim=-1)
    hard = one_hot(categorical_sample(logits, generator), logits.shape[-1], logits)
    # written hard + (p - p.detach()): p - p is exactly 0, so the value is hard to the bit
    return hard + (p - p.detach()) if p.requires_grad else hard


def gumbel_softmax(logits: torch.Tensor, temperature: float, *, hard: bool = False,
                   generator=None) -> torch.Tensor:
    """A Gumbel-softmax (concrete) draw y = softmax((θ + g) / τ): (*batch, K) -> (*batch, K).

    hard=True: the forward value is one_hot(argmax y), an exact draw of softmax(θ), and the
    gradient is the relaxed one's (straight-through Gumbel, Jang, Gu & Poole 2017).
    """
    _check_temperature(temperature, "temperature")
    g = gumbel_noise(logits.shape, like=logits, generator=generator)
    soft = torch.softmax((logits + g) / temperature, dim=-1)
    if not hard:
        return soft
    y_hard = one_hot(torch.argmax(soft, dim=-1), logits.shape[-1], logits)
    return y_hard + (soft - soft.detach()) if soft.requires_grad else y_hard


# ------------------------------------------------------------------------ REINFORCE
def reinforce_surrogate(f_values: torch.Tensor, log_q: torch.Tensor,
                        baseline: torch.Tensor | float = 0.0) -> torch.Tensor:
    """A tensor whose value is f(z) and whose gradient is the score-function estimate.

        s = f(z) + (f(z) - b).detach() · (log q(z) - log q(z).detach())

    is the textbook surrogate f + (f - b).detach() · log q minus a constant, so ∇s =
    ∇f + (f - b) ∇ log q (unbiased when b does not depend on z) while s itself still
    reads f(z) (logging the objective needs no second pass). f_values, log_q : (*batch,)
    for the same draws z; baseline : a number, or a tensor broadcasting to (*batch,) (it
    is detached here: no gradient flows to b through this term).
    """
    advantage = (f_values - baseline).detach()
    return f_values + advantage * (log_q - log_q.detach())


def baseline_fit_term(f_values: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """-(f - b)², with value 0: a term to add to a maximized objective so that its
    gradient trains the baseline b on the squared error (f - b)², f detached (b must not
    move f, and f must not move through b). (*batch,) -> (*batch,)."""
    squared = (f_values.detach() - baseline).square()
    return squared.detach() - squared


class MovingAverageBaseline(nn.Module):
    """b = the bias-corrected exponential moving average of the mean of f over steps:

        m_t = decay · m_{t-1} + (1 - decay) · mean(f_t),   b_t = m_t / (1 - decay^t)

    (b_0 = 0 before any update). The state is two buffers (`total`, `count`), so a
    module holding it carries it in its state_dict and checkpoints. Use `value()` for a
    step's baseline, then `update(f)` after the step (b must not depend on the step's own
    draws to stay unbiased).
    """

    def __init__(self, decay: float = 0.99):
        super().__init__()
        if not (isinstance(decay, (int, float)) and 0.0 <= decay < 1.0):
            raise InvalidParameterError(f"decay must be a number in [0, 1), e.g. 0.99; got "
                                        f"{decay!r}.")
        self.decay = float(decay)
        self.register_buffer("total", torch.zeros((), dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def value(self) -> torch.Tensor:
        """The current baseline b : () (float64; 0 before the first update)."""
        if int(self.count) == 0:
            return torch.zeros((), dtype=torch.float64, device=self.total.device)
        return self.total / (1.0 - self.decay ** int(self.count))

    @torch.no_grad()
    def update(self, f_values: torch.Tensor) -> None:
        """Fold in the mean of f_values (*batch,)."""
        mean = f_values.detach().double().mean().to(self.total.device)
        self.total.mul_(self.decay).add_((1.0 - self.decay) * mean)
        self.count.add_(1)


class LearnedBaseline(nn.Module):
    """b(x) = c + r_ψ(x): a moving average c of f (`MovingAverageBaseline`, centring; as
    NVIL, Mnih & Gregor 2014) plus a small network r_ψ : (..., in_dim) -> (...,) fitted to
    the residual by `baseline_fit_term` on (f - b(x))².

    Stop-gradient design: x enters detached (the baseline never trains the encoder or the
    data path); the score-function term sees b detached (`reinforce_surrogate`); only the
    fit term's gradient reaches ψ, with f detached. hidden : widths of r_ψ's layers.
    """

    def __init__(self, in_dim: int, hidden=(64,), decay: float = 0.99):
        super().__init__()
        from latentkit.deep.blocks import mlp

        self.centre = MovingAverageBaseline(decay)
        self.net = mlp(in_dim, tuple(hidden), 1, "tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x : (..., in_dim) -> b(x) : (...,)."""
        centre = self.centre.value().to(x.dtype)
        return centre + self.net(x.detach()).squeeze(-1)

    def update(self, f_values: torch.Tensor) -> None:
        self.centre.update(f_values)


# ---------------------------------------------------------------------- temperature
def annealed_temperature(step: int, initial: float, rate: float, minimum: float) -> float:
    """τ_t = max(τ_min, τ_0 exp(-r t)) after t training steps (exponential decay to a floor)."""
    return max(float(minimum), float(initial) * math.exp(-float(rate) * int(step)))


class TemperatureSchedule(nn.Module):
    """The Gumbel-softmax temperature τ_t = max(minimum, initial · exp(-rate · t)), t the
    training steps taken: a buffer (`step`, int64), so a checkpoint resumes the schedule
    exactly. `value()` is the current τ; `advance()` counts one step."""

    def __init__(self, initial: float = 1.0, rate: float = 0.0, minimum: float = 0.5):
        super().__init__()
        _check_temperature(initial, "temperature")
        _check_temperature(minimum, "min_temperature")
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate >= 0):
            raise InvalidParameterError(f"anneal_rate must be a finite number >= 0 (per "
                                        f"training step, e.g. 1e-4); got {rate!r}.")
        if minimum > initial:
            raise InvalidParameterError(
                f"min_temperature={minimum!r} exceeds temperature={initial!r}: the schedule "
                "decays from temperature to the floor min_temperature; lower the floor.")
        self.initial, self.rate, self.minimum = float(initial), float(rate), float(minimum)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def value(self) -> float:
        return annealed_temperature(int(self.step), self.initial, self.rate, self.minimum)

    @torch.no_grad()
    def advance(self) -> None:
        self.step.add_(1)


# ---------------------------------------------------------------------- diagnostics
def exact_gradient(logits: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """∇_θ Σ_z softmax(θ)_z f(z) = p ⊙ (f - p·f) for one categorical: logits, table (K,)
    -> (K,). (∂p_z/∂θ_c = p_z (δ_zc - p_c).)"""
    p = torch.softmax(logits, dim=-1)
    return p * (table - (p * table).sum(-1, keepdim=True))


def gradient_variance(gradient_draw, n_draws: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (P,), per-coordinate variance (P,)) of n_draws gradient estimates, each from
    gradient_draw() -> (P,) flat float tensor (one fresh draw of the estimator's noise at
    fixed parameters). The total Σ variance is the usual figure of an estimator's noise."""
    if not (isinstance(n_draws, int) and n_draws >= 2):
        raise InvalidParameterError(f"n_draws must be an int >= 2; got {n_draws!r}.")
    draws = torch.stack([gradient_draw().detach().double() for _ in range(n_draws)])
    return draws.mean(0), draws.var(0, unbiased=True)


def _check_temperature(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise InvalidParameterError(f"{name} must be a finite number > 0 (e.g. 1.0); got "
                                    f"{value!r}.")


__all__ = [
    "LearnedBaseline", "MovingAverageBaseline", "TemperatureSchedule", "annealed_temperature",
    "baseline_fit_term", "categorical_sample", "exact_gradient", "gradient_variance",
    "gumbel_noise", "gumbel_softmax", "one_hot", "reinforce_surrogate", "straight_through",
]
