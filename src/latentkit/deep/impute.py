"""Imputation of missing entries by a deep latent variable model (MIWAE's two imputations).

Mattei & Frellsen (2019). With z_i ~ q(z | x_o), i = 1..n, the importance weights
w_i = p(x_o | z_i) p(z_i) / q(z_i | x_o) and their self-normalized form
w̃_i = w_i / Σ_j w_j approximate expectations under p(z | x_o):

    single imputation   E[x_m | x_o] = E_{p(z | x_o)} E[x_m | z] ≈ Σ_i w̃_i E[x_m | z_i]
    multiple imputation (sampling-importance-resampling)
                        j ~ Categorical(w̃),  x_m ~ p(x_m | z_j)

Both are consistent as n -> ∞ (the self-normalized estimate has an O(1/n) bias).
Observed entries are returned unchanged.

Shapes: x : (B, D) with missing entries set to 0 (or NaN, replaced by 0 here);
observed : (B, D) float mask, 1 = observed, 0 = missing (None: observed where x is not
NaN); z : (n, B, latent_dim).

The module (see `module`) needs `posterior(x, observed)`, `decode_mean(z)` and the pair
(latent draws, their log-weights). The protocol's `log_weights` returns the weights only,
so the pair comes from `module.importance_latents(x, observed, *, n_samples, generator)
-> (z, log_w)` when the module defines it, else it is computed from the module's `prior`,
`posterior` and `decoder` exactly as `objectives.log_importance_weights` does (the
one-layer `VAEModule`). Multiple imputation samples `module.decoder(z)` (or
`module.decode(z)` when defined).
"""

from __future__ import annotations

import torch
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from latentkit.deep.likelihoods import QuantizedCategorical
from latentkit.deep.objectives import reparameterized_sample
from latentkit.exceptions import InvalidInputError, InvalidParameterError


# --------------------------------------------------------------------------- public API
def impute_mean(module, x: torch.Tensor, observed: torch.Tensor | None = None, *,
                n_samples: int = 100, chunk: int = 100,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """x with each missing entry replaced by Σ_i w̃_i E[x_m | z_i]: (B, D).

    n_samples : importance samples per row. chunk : samples decoded at once (memory
    chunk · B · D); the draws are taken one sample at a time, so the result does not depend
    on chunk beyond round-off. The weighted sum is accumulated with a running maximum of the
    log-weights (an online softmax):
        acc <- acc · exp(m_old - m_new) + Σ_i exp(log w_i - m_new) E[x | z_i].
    """
    x, observed = _check_batch(x, observed)
    _check_count(n_samples, "n_samples")
    _check_count(chunk, "chunk")
    numerator = torch.zeros_like(x)
    denominator = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    running_max = torch.full_like(denominator, -torch.inf)
    with torch.no_grad():
        q = module.posterior(x, observed)
        for start in range(0, n_samples, chunk):
            size = min(chunk, n_samples - start)
            z, log_w = importance_latents(module, x, observed, n_samples=size,
                                          generator=generator, posterior=q)
            new_max = torch.maximum(running_max, log_w.max(0).values)       # (B,)
            rescale = torch.exp(running_max - new_max)                      # exp(-inf) = 0
            weights = torch.exp(log_w - new_max)                            # (size, B)
            means = module.decode_mean(z)                                   # (size, B, D)
            numerator = numerator * rescale[:, None] + (weights[..., None] * means).sum(0)
            denominator = denominator * rescale + weights.sum(0)
            running_max = new_max
    return torch.where(observed > 0, x, numerator / denominator[:, None])


def impute_draws(module, x: torch.Tensor, observed: torch.Tensor | None = None, *,
                 n_draws: int = 1, n_samples: int = 100,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiple imputation by sampling-importance-resampling: (n_draws, B, D).

    For each row, n_samples latents z_i ~ q(z | x_o) with log-weights log w_i; then n_draws
    indices j ~ Categorical(w̃) (with replacement) and x_m ~ p(x_m | z_j). Observed entries
    are x in every draw. All randomness comes from `generator` (the decoder's draws too:
    Bernoulli, Gaussian and quantized categorical decoders are sampled with it).
    """
    x, observed = _check_batch(x, observed)
    chosen = resampled_latents(module, x, observed, n_draws=n_draws, n_samples=n_samples,
                               generator=generator)                      # (n_draws, B, L)
    with torch.no_grad():
        decoder = module.decode if hasattr(module, "decode") else module.decoder
        draws = sample_with_generator(decoder(chosen), generator)           # (n_draws, B, D)
    return torch.where(observed > 0, x, draws)


def resampled_latents(module, x: torch.Tensor, observed: torch.Tensor | None = None, *,
                      n_draws: int = 1, n_samples: int = 100,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The latents of multiple imputation, z_j with j ~ Categorical(w̃) : (n_draws, B, L).

    n_samples latents z_i ~ q(z | x_o) per row with self-normalized weights w̃_i, then
    n_draws indices drawn with replacement: z_j is approximately a draw of p(z | x_o).
    `impute_draws` draws x_m ~ p(x_m | z_j) from them; `module.decode_mean(z_j)` gives the
    Bernoulli probabilities (the Gaussian means...) each draw comes from.
    """
    x, observed = _check_batch(x, observed)
    _check_count(n_draws, "n_draws")
    _check_count(n_samples, "n_samples")
    with torch.no_grad():
        z, log_w = importance_latents(module, x, observed, n_samples=n_samples,
                                      generator=generator)
        probs = torch.softmax(log_w, dim=0).T                               # (B, n)
        index = torch.multinomial(probs, n_draws, replacement=True, generator=generator)
        rows = torch.arange(x.shape[0], device=x.device)
        return z[index.T, rows]                                             # (n_draws, B, L)


def importance_latents(module, x: torch.Tensor, observed: torch.Tensor, *, n_samples: int,
                       generator: torch.Generator | None = None,
                       posterior: Distribution | None = None):
    """(z : (n_samples, B, latent_dim), log w : (n_samples, B)), z_i ~ q(z | x_o).

    log w(z) = log p(x_o | z) + log p(z) - log q(z | x_o). Uses the module's own
    `importance_latents` when it has one; else its prior, posterior and decoder.
    posterior : q(z | x_o) when already computed.
    """
    if hasattr(module, "importance_latents"):
        return module.importance_latents(x, observed, n_samples=n_samples, generator=generator)
    if not (hasattr(module, "prior") and hasattr(module, "decoder")):
        raise InvalidParameterError(
            f"module {type(module).__name__} must define importance_latents(x, observed, *, "
            "n_samples, generator) -> (z, log_w), or have prior and decoder attributes "
            "(as VAEModule) for imputation.")
    q = module.posterior(x, observed) if posterior is None else posterior
    z = reparameterized_sample(q, n_samples, generator=generator)
    log_w = module.decoder(z).log_prob(x, observed) + module.prior().log_prob(z) - q.log_prob(z)
    return z, log_w


def sample_with_generator(dist: Distribution, generator: torch.Generator | None):
    """One draw of a decoder distribution, (*batch, D), from `generator`.

    Bernoulli: 1[u < p]; Normal: loc + scale · ε; QuantizedCategorical: a level drawn by
    torch.multinomial, on the [0, 1] scale. Other distributions use their own sample()
    (global RNG; a generator is then refused).
    """
    base = dist.base_dist if isinstance(dist, Independent) else dist
    if isinstance(base, Bernoulli):
        return torch.bernoulli(base.probs, generator=generator)
    if isinstance(base, Normal):
        eps = torch.randn(base.loc.shape, generator=generator, dtype=base.loc.dtype,
                          device=base.loc.device)
        return base.loc + base.scale * eps
    if isinstance(base, QuantizedCategorical):
        probs = torch.softmax(base.logits, dim=-1)
        flat = probs.reshape(-1, base.n_levels)
        levels = torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
        return levels.to(probs.dtype) / (base.n_levels - 1)
    if generator is not None:
        raise InvalidParameterError(
            f"cannot draw from {type(base).__name__} with an explicit generator; pass "
            "generator=None and seed with torch.manual_seed.")
    return dist.sample()


# ------------------------------------------------------------------------------ checks
def _check_batch(x, observed):
    """-> (x with missing entries 0, observed float mask), both (B, D) in x's dtype."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or not x.is_floating_point():
        raise InvalidInputError(
            f"x must be a 2-D floating-point tensor (B, D), got "
            f"{type(x).__name__} {tuple(getattr(x, 'shape', ()))}; flatten images first.")
    nan = torch.isnan(x)
    if observed is None:
        observed = (~nan).to(x.dtype)
    elif not isinstance(observed, torch.Tensor) or observed.shape != x.shape:
        raise InvalidInputError(
            f"observed must be a tensor of x's shape {tuple(x.shape)}, got "
            f"{tuple(getattr(observed, 'shape', ()))}.")
    observed = observed.to(x.dtype)
    if not torch.isin(observed, torch.tensor([0.0, 1.0], dtype=x.dtype)).all():
        raise InvalidInputError("observed must hold only 0 (missing) and 1 (observed).")
    if (nan & (observed > 0)).any():
        raise InvalidInputError("x is NaN at an entry that observed marks as observed; mark "
                                "it missing (observed = 0) or give its value.")
    if torch.isinf(x).any():
        raise InvalidInputError("x contains inf; replace it by a finite value, or by NaN to "
                                "mark it missing.")
    return torch.where(observed > 0, x, torch.zeros_like(x)), observed


def _check_count(value, name: str) -> None:
    if isinstance(value, bool) or not hasattr(value, "__index__") or value < 1:
        raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}.")


__all__ = ["impute_draws", "impute_mean", "importance_latents", "resampled_latents",
           "sample_with_generator"]
