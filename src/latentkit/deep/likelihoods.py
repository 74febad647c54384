"""Decoder likelihoods p_θ(x | z) that factorize over the D dimensions of x.

Every decoder returns a `MaskedIndependent` distribution: a product over the last axis of
a per-dimension base distribution, with batch shape (*sample, B) and event shape (D,). Its
`log_prob(x, observed)` sums only over observed entries,

    log p(x_obs | z) = Σ_d m_d log p(x_d | z),        m_d ∈ {0, 1},

which is the exact marginal of the missing entries because p(x | z) factorizes given z
(∫ Π_d p(x_d | z) dx_mis = Π_{d observed} p(x_d | z)). Missing entries of x must hold a
finite placeholder (0 by convention); their value never changes the result.

Data scales (checked at the model boundary by `check_decoder_data`):
- Bernoulli: x in {0, 1} (binary pixels). The log-probability is the cross-entropy
  x log σ(a) + (1 - x) log σ(-a), which is also defined for x in [0, 1].
- Gaussian: any finite real x.
- Categorical (seed 004's softmax over intensity levels): x as floats in [0, 1]; a value is
  mapped to its level ℓ = round(x (L - 1)) in {0, …, L-1}, so 8-bit images divided by 255
  land exactly on their levels. Samples and means are returned on the same [0, 1] scale.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal, constraints

from latentkit.exceptions import InvalidInputError, InvalidParameterError

LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
SIGMA_MODES = ("fixed", "shared", "per_dim")


class MaskedIndependent(Independent):
    """Π_d p(x_d | z) over the last axis, whose `log_prob` can skip missing entries.

    base : a distribution with batch shape (*sample, B, D) and event shape ().
    Result: batch shape (*sample, B), event shape (D,).
    """

    def __init__(self, base_distribution: Distribution):
        super().__init__(base_distribution, 1, validate_args=False)

    def log_prob(self, value: torch.Tensor, observed: torch.Tensor | None = None) -> torch.Tensor:
        """value : (B, D) or (*sample, B, D); observed : (B, D) float mask, 1 = observed.

        Returns (*sample, B): Σ_d observed_d · log p(value_d | z).
        """
        per_dim = self.base_dist.log_prob(value)
        if observed is not None:
            # where, not a product: a placeholder can score -inf, and -inf * 0 is NaN.
            per_dim = torch.where(observed > 0, per_dim, torch.zeros_like(per_dim))
        return per_dim.sum(-1)


class QuantizedCategorical(Distribution):
    """A softmax over L intensity levels per dimension, on the [0, 1] scale.

    logits : (..., L). Value x in [0, 1] has level ℓ = round(x (L - 1)) and probability
    softmax(logits)_ℓ; batch shape (...), event shape ().
    """

    arg_constraints = {"logits": constraints.real_vector}
    support = constraints.unit_interval
    has_rsample = False

    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        self.n_levels = logits.shape[-1]
        super().__init__(batch_shape=logits.shape[:-1], validate_args=False)

    def levels_of(self, value: torch.Tensor) -> torch.Tensor:
        """value : (...,) floats in [0, 1] -> (...,) integer levels round(value (L - 1))."""
        scaled = torch.round(value * (self.n_levels - 1))
        return scaled.clamp(0, self.n_levels - 1).long()

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(self.logits, dim=-1)
        levels = self.levels_of(value).expand(log_p.shape[:-1])
        return log_p.gather(-1, levels.unsqueeze(-1)).squeeze(-1)

    @property
    def mean(self) -> torch.Tensor:
        grid = torch.linspace(0.0, 1.0, self.n_levels, dtype=self.logits.dtype,
                              device=self.logits.device)
        return torch.softmax(self.logits, dim=-1) @ grid

    def sample(self, sample_shape=()) -> torch.Tensor:
        categorical = torch.distributions.Categorical(logits=self.logits)
        levels = categorical.sample(torch.Size(sample_shape))
        return levels.to(self.logits.dtype) / (self.n_levels - 1)


class _Decoder(nn.Module):
    """Shared wiring: `net` maps z (..., latent_dim) to the likelihood's parameters."""

    def __init__(self, net: nn.Module, n_features: int):
        super().__init__()
        self.net = net
        self.n_features = int(n_features)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """z : (..., latent_dim) -> E[x | z] : (..., D), for reconstruction and imputation."""
        return self(z).mean


class BernoulliDecoder(_Decoder):
    """p(x | z) = Π_d Bernoulli(x_d; σ(a_d(z))).

    net : (..., latent_dim) -> logits (..., D).
    """

    likelihood = "bernoulli"

    def forward(self, z: torch.Tensor) -> MaskedIndependent:
        return MaskedIndependent(Bernoulli(logits=self.net(z), validate_args=False))


class GaussianDecoder(_Decoder):
    """p(x | z) = Π_d N(x_d; μ_d(z), σ_d²).

    net : (..., latent_dim) -> means (..., D).
    sigma : "fixed" (σ = sigma_init, a buffer), "shared" (one learned σ), or "per_dim"
        (a learned σ_d per dimension); learned scales are stored as log σ.
    sigma_init : σ for "fixed", the starting σ for the learned modes (> 0). Note that a
        learned σ is unbounded below: on data with constant pixels it can shrink towards 0.
    dtype : dtype of log σ (default torch's default dtype); pass float64 for an exact σ
        rather than a float32 log σ cast up later.
    """

    likelihood = "gaussian"

    def __init__(self, net: nn.Module, n_features: int, sigma: str = "fixed",
                 sigma_init: float = 1.0, dtype: torch.dtype | None = None):
        super().__init__(net, n_features)
        if sigma not in SIGMA_MODES:
            raise InvalidParameterError(
                f"sigma must be one of {SIGMA_MODES}, got {sigma!r}.")
        if not (isinstance(sigma_init, (int, float)) and math.isfinite(sigma_init)
                and sigma_init > 0):
            raise InvalidParameterError(
                f"sigma_init must be a finite number > 0, got {sigma_init!r}.")
        self.sigma_mode = sigma
        shape = (self.n_features,) if sigma == "per_dim" else ()
        log_sigma = torch.full(shape, math.log(sigma_init), dtype=dtype)
        if sigma == "fixed":
            self.register_buffer("log_sigma", log_sigma)
        else:
            self.log_sigma = nn.Parameter(log_sigma)

    def forward(self, z: torch.Tensor) -> MaskedIndependent:
        loc = self.net(z)
        scale = torch.exp(self.log_sigma).to(loc.dtype).expand_as(loc)
        return MaskedIndependent(Normal(loc, scale, validate_args=False))


class CategoricalDecoder(_Decoder):
    """p(x | z) = Π_d softmax(a_d(z))_{ℓ(x_d)} over L intensity levels (seed 004).

    net : (..., latent_dim) -> logits (..., D * L), the L logits of a dimension contiguous.
    x on the [0, 1] scale, level ℓ(x) = round(x (L - 1)).
    """

    likelihood = "categorical"

    def __init__(self, net: nn.Module, n_features: int, n_levels: int = 256):
        super().__init__(net, n_features)
        if not (isinstance(n_levels, (int, np.integer)) and n_levels >= 2):
            raise InvalidParameterError(
                f"n_levels must be an integer >= 2, got {n_levels!r}.")
        self.n_levels = int(n_levels)

    def forward(self, z: torch.Tensor) -> MaskedIndependent:
        flat = self.net(z)
        logits = flat.reshape(*flat.shape[:-1], self.n_features, self.n_levels)
        return MaskedIndependent(QuantizedCategorical(logits))


def check_decoder_data(X: np.ndarray, likelihood: str, *, n_levels: int = 256,
                       name: str = "X") -> None:
    """Raise InvalidInputError when X cannot be scored by the decoder's likelihood.

    X : (n_samples, n_features), NaN allowed (missing). inf is always rejected.
    Bernoulli needs {0, 1}; categorical needs [0, 1] on the grid k / (n_levels - 1)
    (within 1e-6 of it); Gaussian takes any finite value.
    """
    if likelihood not in LIKELIHOODS:
        raise InvalidParameterError(
            f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
    values = np.asarray(X, dtype=float)
    seen = values[~np.isnan(values)]
    if np.isinf(seen).any():
        raise InvalidInputError(f"{name} contains inf; replace it by a finite value, or by NaN "
                                "to mark it missing.")
    if likelihood == "bernoulli" and not np.isin(seen, (0.0, 1.0)).all():
        bad = seen[~np.isin(seen, (0.0, 1.0))][0]
        raise InvalidInputError(
            f"{name} must be binary (0 or 1) for likelihood='bernoulli', found {bad!r}; "
            "binarize it (e.g. X > 0.5) or use likelihood='gaussian'.")
    if likelihood == "categorical":
        if seen.size and (seen.min() < 0 or seen.max() > 1):
            raise InvalidInputError(
                f"{name} must lie in [0, 1] for likelihood='categorical' (levels k / "
                f"({n_levels} - 1)); found values in [{seen.min()}, {seen.max()}]: divide "
                f"8-bit images by 255.")
        off_grid = np.abs(seen * (n_levels - 1) - np.round(seen * (n_levels - 1))) > 1e-6 * n_levels
        if off_grid.any():
            raise InvalidInputError(
                f"{name} has values off the grid k / {n_levels - 1} (e.g. {seen[off_grid][0]!r}) "
                "for likelihood='categorical'; quantize it or set n_levels to match the data.")


__all__ = [
    "LIKELIHOODS", "SIGMA_MODES", "BernoulliDecoder", "CategoricalDecoder", "GaussianDecoder",
    "MaskedIndependent", "QuantizedCategorical", "check_decoder_data",
]
