"""The discrete VAE: L independent categorical latents of C classes each (Jang, Gu & Poole
2017; Maddison, Mnih & Teh 2017), trained by a gradient estimator of `estimators`:

    z = (z_1, ..., z_L),  z_j ~ Uniform{1..C}  (p(z) = C^-L),   x | z ~ p_θ(x | one_hot(z)),
    q_φ(z | x) = Π_j Categorical(z_j; softmax(ℓ_j(x))),   ℓ(x) : (L, C) logits,
    ELBO = E_q[log p(x | z)] - KL(q || p),  KL(q || U) = Σ_j Σ_c q_jc log(q_jc · C)  (exact).

Bernoulli latents are n_classes=2: each binary variable is a 2-class categorical with
q(z_j = 1) = σ(ℓ_j1 - ℓ_j0), decoded from its one-hot pair (a linear layer on it is any
affine function of the bit).

Shapes: x : (B, D) (missing entries 0), observed : (B, D) mask or None; logits (B, L, C);
latent codes z are one-hot (*sample, B, L, C) (decoded flattened to L·C inputs); log q,
log w : (*sample, B). Training (`objective`) replaces the expectation's gradient by the
chosen estimator; `elbo`, `iwae`, `log_px` use exact categorical draws (Gumbel-max).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.distributions import Independent, OneHotCategorical

from latentkit._validation import Interval, Options
from latentkit.deep import estimators as est
from latentkit.deep.base import DeepModel, _out_dtype
from latentkit.deep.blocks import build_vae_modules
from latentkit.deep.objectives import _check_count, chunked_log_mean_exp
from latentkit.distributions import FactorizedCategorical
from latentkit.exceptions import InvalidParameterError
from latentkit.io import register_model

#: the training estimators of the discrete latents
ESTIMATOR_NAMES = ("gumbel", "straight_through", "reinforce")
#: REINFORCE's baselines (None: plain score function)
BASELINES = ("learned", "moving_average", None)


def categorical_kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(q || U) = Σ_j Σ_c q_jc (log q_jc + log C): logits (..., L, C) -> (...,) nats
    (0 log 0 = 0: q · log_softmax stays finite)."""
    log_q = torch.log_softmax(logits, dim=-1)
    return (log_q.exp() * (log_q + math.log(logits.shape[-1]))).sum((-2, -1))


def log_q_of(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """log q(z | x) = Σ_j log q_j(z_j) for one-hot codes (*sample, B, L, C) and logits
    (B, L, C) -> (*sample, B)."""
    return (codes * torch.log_softmax(logits, dim=-1)).sum((-2, -1))


class CategoricalEncoder(nn.Module):
    """ℓ_φ(x) : (..., D) -> logits (..., L, C): an encoder body (the Gaussian encoder's, so
    mask handling and conv bodies are shared, `blocks`) and one linear head."""

    def __init__(self, body_encoder: nn.Module, n_latents: int, n_classes: int):
        super().__init__()
        self.body, self.uses_mask = body_encoder.body, body_encoder.uses_mask
        self.encoder_input = body_encoder.encoder_input
        self.n_latents, self.n_classes = int(n_latents), int(n_classes)
        self.head = nn.Linear(body_encoder.loc_head.in_features, n_latents * n_classes)

    def forward(self, x: torch.Tensor, observed: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.head(self.body(self.encoder_input(x, observed)))
        return logits.reshape(*logits.shape[:-1], self.n_latents, self.n_classes)


class DiscreteVAEModule(nn.Module):
    """The torch module (`module.py`'s protocol) of the discrete VAE.

    encoder : a CategoricalEncoder; decoder : a decoder of `likelihoods` over L·C inputs;
    estimator : a name of ESTIMATOR_NAMES; schedule : the Gumbel temperature
    (`estimators.TemperatureSchedule`, its step a buffer); baseline : REINFORCE's
    (`estimators.MovingAverageBaseline`, `estimators.LearnedBaseline`) or None.
    """

    def __init__(self, encoder: CategoricalEncoder, decoder: nn.Module, estimator: str,
                 schedule: est.TemperatureSchedule, baseline: nn.Module | None = None,
                 hard: bool = False):
        super().__init__()
        self.encoder, self.decoder, self.schedule, self.baseline = (encoder, decoder,
                                                                    schedule, baseline)
        self.estimator, self.hard = estimator, bool(hard)
        self.n_latents, self.n_classes = encoder.n_latents, encoder.n_classes

    # -- pieces ----------------------------------------------------------------------------
    def log_prior(self) -> float:
        """log p(z) = -L log C for every z."""
        return -self.n_latents * math.log(self.n_classes)

    def decode(self, codes: torch.Tensor):
        """codes (..., L, C) one-hot or relaxed -> p(x | z), batch (...,), event (D,)."""
        return self.decoder(codes.flatten(-2))

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """z : (..., L, C) one-hot or relaxed codes, or (..., L) integer classes (what
        `sample` returns) -> E[x | z] : (..., D)."""
        if not z.is_floating_point():
            z = est.one_hot(z, self.n_classes, self.encoder.head.weight)
        return self.decoder.mean(z.flatten(-2))

    def exact_codes(self, logits: torch.Tensor, n: int, generator=None) -> torch.Tensor:
        """n exact draws z ~ q, one-hot (n, B, L, C), drawn one sample at a time (so a
        chunked evaluation draws the same numbers)."""
        return torch.stack([est.one_hot(est.categorical_sample(logits, generator),
                                        self.n_classes, logits) for _ in range(n)])

    def posterior(self, x, observed=None) -> Independent:
        """q(z | x): batch (B,), event (L, C) one-hot; `.mean` (B, L, C) the probabilities."""
        return Independent(OneHotCategorical(logits=self.encoder(x, observed),
                                             validate_args=False), 1)

    # -- evaluation (exact draws) --------------------------------------------------------------
    def importance_latents(self, x, observed=None, *, n_samples, generator=None):
        """(z (S, B, L, C), log w (S, B)), log w = log p(x | z) + log p(z) - log q(z | x)."""
        logits = self.encoder(x, observed)
        codes = self.exact_codes(logits, n_samples, generator)
        log_w = (self.decode(codes).log_prob(x, observed) + self.log_prior()
                 - log_q_of(logits, codes))
        return codes, log_w

    def log_weights(self, x, observed=None, *, n_samples, generator=None):
        return self.importance_latents(x, observed, n_samples=n_samples,
                                       generator=generator)[1]

    def elbo(self, x, observed=None, *, beta=1.0, n_samples=1, generator=None):
        """E_q[log p(x | z)] (mean over n_samples exact draws) - β KL(q || U) : (B,). The
        true ELBO at β = 1; its gradient reaches the encoder through the KL only (train
        with `objective`)."""
        _check_count(n_samples, "n_samples")
        logits = self.encoder(x, observed)
        codes = self.exact_codes(logits, n_samples, generator)
        reconstruction = self.decode(codes).log_prob(x, observed).mean(0)
        return reconstruction - beta * categorical_kl_to_uniform(logits)

    def iwae(self, x, observed=None, *, k, generator=None):
        """log (1/k) Σ_i w(z_i), z_i ~ q exact : (B,)."""
        _check_count(k, "k")
        log_w = self.log_weights(x, observed, n_samples=k, generator=generator)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def log_px(self, method, x, observed=None, *, n_samples, chunk=100, generator=None):
        """log p(x) by `method`: "elbo", "iwae"/"importance" (q as proposal, running
        log-sum-exp over chunks) or "naive" (z from the uniform prior) : (B,)."""
        if method not in ("elbo", "iwae", "importance", "naive"):
            raise InvalidParameterError(f"method must be 'elbo', 'iwae', 'importance' or "
                                        f"'naive'; got {method!r}.")
        _check_count(n_samples, "n_samples")
        if method == "elbo":
            with torch.no_grad():
                return self.elbo(x, observed, n_samples=n_samples, generator=generator)
        return chunked_log_mean_exp(
            lambda size: self._chunk_log_w(method, x, observed, size, generator),
            n_samples, chunk)

    def _chunk_log_w(self, method, x, observed, size, generator) -> torch.Tensor:
        if method != "naive":
            return self.log_weights(x, observed, n_samples=size, generator=generator)
        flat = torch.zeros(x.shape[0], self.n_latents, self.n_classes, dtype=x.dtype,
                           device=x.device)  # uniform logits: draws from p(z)
        return self.decode(self.exact_codes(flat, size, generator)).log_prob(x, observed)

    def sample(self, n, generator=None):
        """(x ~ p(x | z) : (n, D), z ~ U : (n, L) int64 classes)."""
        flat = torch.zeros(n, self.n_latents, self.n_classes,
                           dtype=self.encoder.head.weight.dtype)
        classes = est.categorical_sample(flat, generator)
        return self.decode(est.one_hot(classes, self.n_classes, flat)).sample(), classes

    # -- training ----------------------------------------------------------------------------
    def objective(self, x, observed=None, *, beta=1.0, generator=None, update=None):
        """The training surrogate (value (B,), terms {name: ()}), maximized.

        gumbel: log p(x | y) - β KL, y a Gumbel-softmax draw at τ_t (hard=True: straight-
        through Gumbel); straight_through: y = one_hot(z) with the softmax's gradient;
        reinforce: reinforce_surrogate(log p(x | z), log q(z | x), b) - β KL (+ the
        learned baseline's zero-valued fit term). update : advance the temperature step
        and the baseline's average (default: in training mode).
        """
        update = self.training if update is None else update
        logits = self.encoder(x, observed)
        kl = categorical_kl_to_uniform(logits)
        terms = {}
        if self.estimator == "reinforce":
            reconstruction, terms = self._reinforce(x, observed, logits, generator, update)
        else:
            if self.estimator == "gumbel":
                tau = self.schedule.value()
                codes = est.gumbel_softmax(logits, tau, hard=self.hard, generator=generator)
                terms["temperature"] = torch.tensor(tau, dtype=torch.float64)
                if update:
                    self.schedule.advance()
            else:
                codes = est.straight_through(logits, generator)
            reconstruction = self.decode(codes).log_prob(x, observed)
            terms["reconstruction"] = reconstruction.detach().mean()
        terms["kl"] = kl.detach().mean()
        return reconstruction - beta * kl, terms

    def _reinforce(self, x, observed, logits, generator, update):
        """The score-function term (B,) with baseline b, and its terms."""
        codes = self.exact_codes(logits, 1, generator)[0]
        f_values = self.decode(codes).log_prob(x, observed)
        fit = torch.zeros_like(f_values)
        if self.baseline is None:
            b = torch.zeros_like(f_values)
        elif isinstance(self.baseline, est.LearnedBaseline):
            b = self.baseline(self.encoder.encoder_input(x, observed))
            fit = est.baseline_fit_term(f_values, b)
        else:
            b = self.baseline.value().to(f_values.dtype).expand_as(f_values)
        value = est.reinforce_surrogate(f_values, log_q_of(logits, codes), b) + fit
        if update and self.baseline is not None:
            self.baseline.update(f_values)
        return value, {"reconstruction": f_values.detach().mean(),
                       "baseline": b.detach().mean()}


@register_model
class DiscreteVAE(DeepModel):
    """A VAE with categorical latents (numpy in and out; see the module docstring).

    Parameters
    ----------
    n_latents : int, L, the number of categorical latent variables.
    n_classes : int, C >= 2, the classes of each (2: Bernoulli latents).
    estimator : the gradient estimator of the discrete draws (`estimators`):
        "gumbel" (Gumbel-softmax relaxation at temperature τ_t; hard=True: straight-through
        Gumbel), "straight_through" (exact one-hot draws, softmax gradient), "reinforce"
        (score function with `baseline`).
    temperature, anneal_rate, min_temperature : the Gumbel schedule
        τ_t = max(min_temperature, temperature · exp(-anneal_rate · t)), t the training
        steps taken (a module buffer: checkpoints resume it exactly); only for "gumbel".
    hard : straight-through Gumbel (one-hot forward) instead of the soft relaxation.
    baseline : REINFORCE's control variate: "learned" (a moving average plus a small
        network of x fitted to (f - b)², `estimators.LearnedBaseline`), "moving_average"
        or None; baseline_decay : the moving average's decay.
    likelihood, hidden, architecture, image_shape, activation, sigma, sigma_init : the
        decoder and encoder body, as `VAE`'s (`blocks.build_vae_modules` over L·C inputs).
    epochs, batch_size, lr, lr_schedule, clip_grad_norm, kl_warmup_epochs, beta,
    early_stopping_patience, validation_fraction, dynamic_binarization, checkpoint_path,
    checkpoint_every_minutes, device, random_state, verbose, max_time, callbacks : the
        Trainer's options, as `VAE`'s.

    Attributes
    ----------
    module_ (a `DiscreteVAEModule`); history_ : the training surrogate's mean per epoch
    (for "gumbel" the relaxed objective, not the ELBO; for the others an unbiased ELBO
    estimate); history_terms_ : "reconstruction", "kl", and "temperature" (gumbel) or
    "baseline" (reinforce) per epoch; valid_history_ : the true ELBO (exact draws);
    n_iter_, best_epoch_, converged_, stop_reason_, n_features_in_, input_shape_.

    posterior(X) is a latentkit `FactorizedCategorical` (n, L, C); transform(X) the
    probabilities q(z_j = c | x) flattened to (n, L·C) (E_q[one_hot(z)]); sample returns
    (X, z : (n, L) int classes); score_samples "iwae"/"importance" importance-samples
    with q(z | x) as proposal.
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_latents": [Interval(int, 1, 100_000)], "n_classes": [Interval(int, 2, 100_000)],
        "estimator": [Options(*ESTIMATOR_NAMES)],
        "temperature": [Interval(float, 0, None, closed="neither")],
        "anneal_rate": [Interval(float, 0, None)],
        "min_temperature": [Interval(float, 0, None, closed="neither")],
        "hard": [Options(True, False)], "baseline": [Options(*BASELINES)],
        "baseline_decay": [Interval(float, 0, 1, closed="left")],
    }

    def __init__(self, n_latents=20, n_classes=10, *, estimator="gumbel", temperature=1.0,
                 anneal_rate=1e-4, min_temperature=0.5, hard=False, baseline="learned",
                 baseline_decay=0.99, likelihood="bernoulli", hidden=(400,),
                 architecture="mlp", image_shape=None, activation="tanh", sigma="fixed",
                 sigma_init=1.0, epochs=10, batch_size=100, lr=1e-3, lr_schedule=None,
                 clip_grad_norm=None, kl_warmup_epochs=0.0, beta=1.0,
                 early_stopping_patience=None, validation_fraction=0.0,
                 dynamic_binarization=False, checkpoint_path=None,
                 checkpoint_every_minutes=10.0, device="auto", random_state=None,
                 verbose=None, max_time=None, callbacks=None,
                 strategy=None, world_size=None):
        self._store_init_args(locals())

    @property
    def latent_dim(self) -> int:
        """L · C, the width of the one-hot code (and of transform's output)."""
        whole = all(isinstance(v, int | np.integer) and not isinstance(v, bool)
                    for v in (self.n_latents, self.n_classes))
        return int(self.n_latents) * int(self.n_classes) if whole else 0

    def _check_architecture(self) -> None:
        super()._check_architecture()
        if self.min_temperature > self.temperature:
            raise InvalidParameterError(
                f"min_temperature={self.min_temperature!r} exceeds temperature="
                f"{self.temperature!r}: the schedule decays from temperature to the floor "
                "min_temperature; lower the floor or raise temperature.")
        if self.hard and self.estimator != "gumbel":
            raise InvalidParameterError(
                f"hard=True is straight-through Gumbel and needs estimator='gumbel'; got "
                f"estimator={self.estimator!r} (its draws are exact one-hots already).")

    def _validate_params(self):
        for name in ("n_latents", "n_classes"):  # latent_dim is derived from them
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < (
                    2 if name == "n_classes" else 1):
                raise InvalidParameterError(
                    f"DiscreteVAE: parameter {name!r} must be an int >= "
                    f"{2 if name == 'n_classes' else 1}; got {value!r}.")
        super()._validate_params()

    def _build_module(self, n_features: int) -> DiscreteVAEModule:
        uses_mask = bool(getattr(self, "uses_mask_", True))
        _, body, decoder = build_vae_modules(
            n_features, self.latent_dim, self.likelihood, tuple(self.hidden),
            self.architecture, self.image_shape, uses_mask=uses_mask,
            activation=self.activation, sigma=self.sigma, sigma_init=self.sigma_init)
        encoder = CategoricalEncoder(body, self.n_latents, self.n_classes)
        baseline = None
        if self.estimator == "reinforce" and self.baseline == "learned":
            baseline = est.LearnedBaseline(n_features * (2 if uses_mask else 1), (64,),
                                           self.baseline_decay)
        elif self.estimator == "reinforce" and self.baseline == "moving_average":
            baseline = est.MovingAverageBaseline(self.baseline_decay)
        schedule = est.TemperatureSchedule(float(self.temperature), float(self.anneal_rate),
                                           float(self.min_temperature))
        return DiscreteVAEModule(encoder, decoder, self.estimator, schedule, baseline,
                                 hard=self.hard)

    def _objective(self, module, x, observed, beta: float):
        if not module.training:  # validation: the true ELBO, exact draws
            return module.elbo(x, observed, beta=beta)
        return module.objective(x, observed, beta=beta)

    @property
    def _n_features_out(self) -> int:
        return self.latent_dim

    def posterior(self, X) -> FactorizedCategorical:
        """q(z | x) = Π_l q(z_l | x): a `FactorizedCategorical`, (n_samples, L, C)."""
        check_is_fitted(self)
        with torch.no_grad():
            logits = torch.cat([self.module_.encoder(x, observed)
                                for x, observed in self._batches(X)]).double()
        return FactorizedCategorical(torch.log_softmax(logits, dim=-1).numpy())

    def transform(self, X) -> np.ndarray:
        """q(z_j = c | x) : (n_samples, L · C), latent j's C probabilities contiguous."""
        check_is_fitted(self)
        with torch.no_grad():
            probs = torch.cat([torch.softmax(self.module_.encoder(x, observed), dim=-1)
                               for x, observed in self._batches(X)])
        return probs.flatten(1).numpy().astype(_out_dtype(X))


def encoder_gradient_variance(model: DiscreteVAE, X, n_draws: int = 50,
                              random_state: int = 0) -> float:
    """Σ_i Var[ĝ_i], the total variance of the encoder's gradient of the training loss
    on the minibatch X over n_draws fresh draws at the fitted (fixed) parameters: the
    noise of model.estimator (at the current temperature; REINFORCE with its baseline).
    The module's state (temperature step, baseline averages) is not changed."""
    check_is_fitted(model)
    module = model.module_
    x, observed = next(model._batches(X)) if len(X) <= 256 else next(model._batches(X[:256]))
    params = list(module.encoder.parameters())
    generator = torch.Generator().manual_seed(int(random_state))

    def draw() -> torch.Tensor:
        value, _ = module.objective(x, observed, beta=model.beta, generator=generator,
                                    update=False)
        grads = torch.autograd.grad(-value.mean(), params, allow_unused=True)
        return torch.cat([torch.zeros_like(p).flatten() if g is None else g.flatten()
                          for g, p in zip(grads, params)])

    _, variance = est.gradient_variance(draw, n_draws)
    return float(variance.sum())


__all__ = ["BASELINES", "ESTIMATOR_NAMES", "CategoricalEncoder", "DiscreteVAE",
           "DiscreteVAEModule", "categorical_kl_to_uniform", "encoder_gradient_variance",
           "log_q_of"]
