"""The hierarchical VAE's torch module: L stochastic layers (seed 002; Burda et al. 2015).

Generative model, top-down (z_1 nearest x, z_L the top):

    p(z_L) = N(0, I)
    p(z_l | z_{l+1}) = N(μ_l(z_{l+1}), diag σ_l²(z_{l+1})),        l = L-1, …, 1
    p(x | z_1)       = a decoder of `likelihoods` (Bernoulli, Gaussian, categorical)

Inference model, bottom-up (the notes' form), each factor a diagonal Gaussian:

    q(z_{1:L} | x) = q(z_1 | x) Π_{l=2}^L q(z_l | z_{l-1}, x)

- ladder=False (Burda et al.'s two-layer model): q(z_l | z_{l-1}, x) = q(z_l | z_{l-1}), an
  MLP of z_{l-1} alone; x reaches layer l through z_{l-1}.
- ladder=True: a deterministic bottom-up path shared by the layers (Sønderby et al. 2016),
  h_1 = f_1(x) (q(z_1 | x)'s own features), h_l = f_l(h_{l-1}), and q(z_l | z_{l-1}, x) an
  MLP of the concatenation [z_{l-1}, h_l]. There is no precision-weighted merge: that merge
  belongs to Sønderby et al.'s top-down posterior, while this keeps the notes' bottom-up
  factorization.

Log-weights and bounds, z_{1:L} ~ q by reparameterization:

    log w = log p(x_obs | z_1) + Σ_{l<L} log p(z_l | z_{l+1}) + log p(z_L) - Σ_l log q(z_l | ·)
    ELBO_β = E[log p(x_obs | z_1)] - β E[log q(z_{1:L} | x) - log p(z_{1:L})]  (Monte Carlo KL)
    IWAE_k = log (1/k) Σ_i w_i;   naive: log (1/n) Σ_i p(x_obs | z_1^i), z^i top-down from p.

Deterministic block l (widths hidden[l-1]) joins layer l-1 to layer l (layer 0 is x):
q(z_l | ·) reads it bottom-up, p(z_{l-1} | z_l) (p(x | z_1) for l = 1) in reverse. Burda et
al.'s MNIST model: latent_dims=(100, 50), hidden=((200, 200), (100, 100)), activation="tanh".
With L = 1 the module is `module.VAEModule`'s: the same `prior`, `encoder`, `decoder`
(`blocks.build_vae_modules`), state_dict keys and draws.

Noise: each importance sample draws one (B, Σ_l d_l) standard normal from the generator,
split across the layers. Draws are sample-major, so chunking never changes them:
log_px("importance", n) equals iwae(k=n) for the same generator state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal

from latentkit.exceptions import InvalidParameterError

from ._batches import draw_for_rows
from .blocks import (
    GaussianEncoder,
    StandardNormalPrior,
    _positive_int,
    build_vae_modules,
    mlp,
    mlp_width,
)
from .objectives import ESTIMATORS, _check_count, chunked_log_mean_exp


def _shift(q: Independent, eps: torch.Tensor) -> torch.Tensor:
    """Reparameterized draw loc + scale · ε of a diagonal Gaussian: ε (n, *batch, d)."""
    return q.base_dist.loc + q.base_dist.scale * eps


def _heads(encoder: GaussianEncoder, features: torch.Tensor) -> Independent:
    """encoder's Gaussian N(μ(h), diag exp(ℓ(h))) from its body's features h : (..., w)."""
    loc = encoder.loc_head(features)
    scale = torch.exp(0.5 * encoder.log_var_head(features))
    return Independent(Normal(loc, scale, validate_args=False), 1)


def _conditional_gaussian(in_dim: int, hidden: tuple[int, ...], out_dim: int,
                          activation) -> GaussianEncoder:
    """N(μ(u), diag σ²(u)) of u : (..., in_dim), event (out_dim,): an MLP body, two heads."""
    return GaussianEncoder(mlp(in_dim, hidden, None, activation), mlp_width(in_dim, hidden),
                           out_dim)


# ---------------------------------------------------------------------------- module
class HierarchicalVAEModule(nn.Module):
    """p(z_L) Π p(z_l | z_{l+1}) p(x | z_1) with q(z_1 | x) Π q(z_l | z_{l-1}, x).

    n_features : D. latent_dims : (d_1, …, d_L), z_1 nearest x. hidden : the widths of one
        deterministic block, used for every block, or one tuple per layer (L tuples); ()
        gives linear maps. likelihood : "bernoulli" | "gaussian" | "categorical" (with
        n_levels; sigma, sigma_init for the Gaussian, see `likelihoods.GaussianDecoder`).
    ladder : share the deterministic bottom-up path between the layers (module docstring).
    activation : a name of `blocks.ACTIVATIONS`. uses_mask : q(z_1 | x) sees
        [x · observed, observed]. dtype : parameter dtype.
    Submodules: prior p(z_L); encoder q(z_1 | x); decoder p(x | z_1); inference[i]
    q(z_{i+2} | ·); generative[i] p(z_{i+1} | z_{i+2}); deterministic[i] f_{i+2} (ladder).
    """

    def __init__(self, n_features: int, latent_dims: Sequence[int] = (64, 32),
                 hidden: Sequence = (400,), likelihood: str = "bernoulli", ladder: bool = False,
                 activation: str = "tanh", dtype: torch.dtype = torch.float32,
                 uses_mask: bool = False, *, sigma: str = "fixed", sigma_init: float = 1.0,
                 n_levels: int = 256):
        super().__init__()
        dims = _latent_dims(latent_dims)
        blocks = _per_layer_hidden(hidden, len(dims))
        self.n_features, self.likelihood = int(n_features), likelihood
        self.latent_dims, self.hidden, self.ladder = dims, blocks, bool(ladder)
        _, self.encoder, self.decoder = build_vae_modules(
            n_features, dims[0], likelihood, blocks[0], uses_mask=uses_mask,
            activation=activation, sigma=sigma, sigma_init=sigma_init, n_levels=n_levels,
            dtype=dtype)
        self.prior = StandardNormalPrior(dims[-1])
        self.inference, self.generative = nn.ModuleList(), nn.ModuleList()
        self.deterministic = nn.ModuleList()
        width = self.encoder.loc_head.in_features                        # h_1's width
        for below, above, block in zip(dims[:-1], dims[1:], blocks[1:]):
            extra = 0
            if self.ladder:
                self.deterministic.append(mlp(width, block, None, activation))
                width = extra = mlp_width(width, block)
            self.inference.append(_conditional_gaussian(below + extra, block, above, activation))
            self.generative.append(_conditional_gaussian(above, block[::-1], below, activation))
        self.to(dtype)

    # -- the two passes -------------------------------------------------------------------
    def _noise(self, n: int, batch: int, like: torch.Tensor, generator) -> list[torch.Tensor]:
        """[(n, batch, d_l) for each layer]: n sample-major draws of (batch, Σ d_l), each
        the batch's rows of the global batch's draw under data-parallel training
        (`_batches.draw_for_rows`)."""
        def draw(shape):
            return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)

        draws = [draw_for_rows(draw, (batch, sum(self.latent_dims))) for _ in range(n)]
        return list(torch.stack(draws).split(self.latent_dims, dim=-1))

    def _infer(self, x, observed, noise) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Bottom-up z_l = μ + σ ε_l ~ q(z_l | ·): ([(n, B, d_l)], log q(z_{1:L} | x) (n, B))."""
        features = self.encoder.body(self.encoder.encoder_input(x, observed))   # h_1 (B, w)
        q = _heads(self.encoder, features)
        z = [_shift(q, noise[0])]
        log_q = q.log_prob(z[0])
        for i, layer in enumerate(self.inference):
            given = z[-1]
            if self.ladder:
                features = self.deterministic[i](features)                      # h_{i+2}
                given = torch.cat([given, features.expand(*given.shape[:-1], -1)], dim=-1)
            q = layer(given)
            z.append(_shift(q, noise[i + 1]))
            log_q = log_q + q.log_prob(z[-1])
        return z, log_q

    def _log_prior(self, z: list[torch.Tensor]) -> torch.Tensor:
        """log p(z_L) + Σ_{l<L} log p(z_l | z_{l+1}) : (n, B), z as `_infer` returns it."""
        log_p = self.prior().log_prob(z[-1])
        for i, layer in enumerate(self.generative):
            log_p = log_p + layer(z[i + 1]).log_prob(z[i])
        return log_p

    def _ancestral(self, n: int, batch: int, like: torch.Tensor, generator) -> torch.Tensor:
        """Top-down z_L ~ N(0, I), z_l ~ p(z_l | z_{l+1}): z_1 (n, batch, d_1)."""
        noise = self._noise(n, batch, like, generator)
        z = _shift(self.prior(), noise[-1])
        for layer, eps in zip(reversed(self.generative), reversed(noise[:-1])):
            z = _shift(layer(z), eps)
        return z

    def log_joint_terms(self, x, observed=None, *, n_samples: int, generator=None):
        """(log p(x_obs | z_1), log p(z_{1:L}), log q(z_{1:L} | x)), each (n_samples, B).

        x : (B, D), observed : (B, D) float mask or None; z_{1:L} ~ q, differentiable.
        """
        _check_count(n_samples, "n_samples")
        z, log_q = self._infer(x, observed, self._noise(n_samples, x.shape[0], x, generator))
        return self.decoder(z[0]).log_prob(x, observed), self._log_prior(z), log_q

    # -- the protocol of module.py --------------------------------------------------------
    def log_weights(self, x, observed=None, *, n_samples: int, generator=None):
        """log p(x_obs, z_{1:L}) - log q(z_{1:L} | x), z ~ q: (n_samples, B)."""
        log_lik, log_p, log_q = self.log_joint_terms(x, observed, n_samples=n_samples,
                                                     generator=generator)
        return log_lik + log_p - log_q

    def importance_latents(self, x, observed=None, *, n_samples: int, generator=None):
        """(z_1 : (n_samples, B, d_1), log w : (n_samples, B)), z_{1:L} ~ q: the first
        layer's draws with the whole hierarchy's importance weights, which is all that
        imputation needs (p(x | z_{1:L}) = p(x | z_1); `impute`)."""
        _check_count(n_samples, "n_samples")
        z, log_q = self._infer(x, observed, self._noise(n_samples, x.shape[0], x, generator))
        log_w = self.decoder(z[0]).log_prob(x, observed) + self._log_prior(z) - log_q
        return z[0], log_w

    def elbo(self, x, observed=None, *, beta: float = 1.0, n_samples: int = 1, generator=None):
        """E[log p(x_obs | z_1)] - β E[log q(z_{1:L} | x) - log p(z_{1:L})], Monte Carlo: (B,)."""
        if isinstance(beta, bool) or not (isinstance(beta, (int, float)) and
                                          math.isfinite(beta) and beta >= 0):
            raise InvalidParameterError(f"beta must be a finite number >= 0, got {beta!r}.")
        log_lik, log_p, log_q = self.log_joint_terms(x, observed, n_samples=n_samples,
                                                     generator=generator)
        return log_lik.mean(0) - beta * (log_q - log_p).mean(0)

    def iwae(self, x, observed=None, *, k: int, generator=None):
        """IWAE_k = log (1/k) Σ_i w_i, differentiable: (B,)."""
        _check_count(k, "k")
        log_w = self.log_weights(x, observed, n_samples=k, generator=generator)
        return torch.logsumexp(log_w, dim=0) - math.log(k)

    def log_px(self, method: str, x, observed=None, *, n_samples: int, chunk: int = 100,
               generator=None):
        """log p(x) by `method` (a key of objectives.ESTIMATORS), no gradients: (B,) nats.

        "elbo": the Monte Carlo ELBO over n_samples draws; "iwae" / "importance": IWAE with
        k = n_samples in chunks; "naive": z_1 from the top-down generative path.
        """
        if method not in ESTIMATORS:
            raise InvalidParameterError(
                f"method must be one of {sorted(ESTIMATORS)}, got {method!r}.")
        if method == "elbo":
            with torch.no_grad():
                return self.elbo(x, observed, n_samples=n_samples, generator=generator)
        if method == "naive":
            def terms(size):
                z_1 = self._ancestral(size, x.shape[0], x, generator)
                return self.decoder(z_1).log_prob(x, observed)
        else:
            def terms(size):
                return self.log_weights(x, observed, n_samples=size, generator=generator)
        return chunked_log_mean_exp(terms, n_samples, chunk)

    def posterior(self, x, observed=None):
        """q(z_1 | x): batch (B,), event (d_1,), the usable representation."""
        return self.encoder(x, observed)

    def decode_mean(self, z):
        """E[x | z_1] : (..., D) for z_1 : (..., d_1)."""
        return self.decoder.mean(z)

    def sample(self, n: int, generator=None):
        """(x ~ p(x | z_1) (n, D), z_1 (n, d_1)), z top-down from the generator; the x draw
        uses the global RNG, as VAEModule's."""
        _check_count(n, "n")
        like = self.prior.loc
        z_1 = self._ancestral(1, n, like, generator)[0]
        return self.decoder(z_1).sample(), z_1


# ---------------------------------------------------------------------------- checks
def _latent_dims(latent_dims) -> tuple[int, ...]:
    if isinstance(latent_dims, (int, str)) or not isinstance(latent_dims, Sequence) \
            or not len(latent_dims):
        raise InvalidParameterError(
            "latent_dims must be a non-empty sequence of positive ints (z_1 nearest x first), "
            f"e.g. (64, 32); got {latent_dims!r}.")
    return tuple(_positive_int(d, "latent_dims") for d in latent_dims)


def _per_layer_hidden(hidden, n_layers: int) -> tuple[tuple[int, ...], ...]:
    """hidden -> one tuple of widths per layer: ints are shared, L tuples are per layer."""
    if isinstance(hidden, (int, str)) or not isinstance(hidden, Sequence):
        raise InvalidParameterError(f"hidden must be a tuple of widths, e.g. (400,), or one "
                                    f"such tuple per layer; got {hidden!r}.")
    if all(not isinstance(h, Sequence) for h in hidden):
        return (tuple(_positive_int(h, "hidden") for h in hidden),) * n_layers
    if len(hidden) != n_layers or not all(isinstance(h, Sequence) for h in hidden):
        raise InvalidParameterError(
            f"hidden per layer must hold one tuple of widths for each of the {n_layers} "
            f"stochastic layers, e.g. ((200, 200), (100, 100)) for two; got {hidden!r}.")
    return tuple(tuple(_positive_int(h, "hidden") for h in block) for block in hidden)


__all__ = ["HierarchicalVAEModule"]
