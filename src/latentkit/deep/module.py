"""What a deep model's torch module provides: the one protocol `DeepModel` relies on.

A deep latent variable model is a torch module with these methods (x : (B, D) with missing
entries set to 0, observed : (B, D) float mask or None, generator : a torch.Generator or
None for the global RNG):

    elbo(x, observed, *, beta=1.0, n_samples=1, generator=None) -> (B,)   differentiable
    iwae(x, observed, *, k, generator=None) -> (B,)                       differentiable
    log_px(method, x, observed, *, n_samples, chunk, generator) -> (B,)   no gradients;
        method in ESTIMATORS ("elbo", "iwae", "importance", "naive")
    posterior(x, observed) -> q(z | x), batch (B,), event (latent_dim,)   (the first layer's
        for a hierarchical model: its usable representation)
    decode_mean(z) -> E[x | z] : (..., D)
    sample(n, generator) -> (x draws (n, D), z (n, latent_dim))
    log_weights(x, observed, *, n_samples, generator) -> (n_samples, B)
        log p(x_obs, z_i) - log q(z_i | x), z_i ~ q(z | x): importance weights (imputation by
        importance resampling, MIWAE)

`VAEModule` is the one-stochastic-layer case over a prior, an encoder and a decoder
(`blocks`); `hierarchical.HierarchicalVAEModule` the L-layer one.
"""

from __future__ import annotations

from torch import nn

from . import objectives
from .objectives import reparameterized_sample


class VAEModule(nn.Module):
    """p(z) p_θ(x | z) with q_φ(z | x): prior, encoder and decoder modules (`blocks`)."""

    def __init__(self, prior: nn.Module, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.prior, self.encoder, self.decoder = prior, encoder, decoder

    def elbo(self, x, observed=None, *, beta=1.0, n_samples=1, generator=None):
        return objectives.elbo(self.prior, self.encoder, self.decoder, x, observed,
                               beta=beta, n_samples=n_samples, generator=generator)

    def iwae(self, x, observed=None, *, k, generator=None):
        return objectives.iwae_bound(self.prior, self.encoder, self.decoder, x, observed, k=k,
                                     generator=generator)

    def log_px(self, method, x, observed=None, *, n_samples, chunk=100, generator=None):
        return objectives.estimate_log_px(method, self.prior, self.encoder, self.decoder, x,
                                          observed, n_samples=n_samples, chunk=chunk,
                                          generator=generator)

    def log_weights(self, x, observed=None, *, n_samples, generator=None):
        return objectives.log_importance_weights(self.prior, self.encoder, self.decoder, x,
                                                 observed, n_samples=n_samples,
                                                 generator=generator)

    def posterior(self, x, observed=None):
        return self.encoder(x, observed)

    def decode_mean(self, z):
        return self.decoder.mean(z)

    def sample(self, n, generator=None):
        z = reparameterized_sample(self.prior(), 1, batch_shape=(n,), generator=generator)[0]
        return self.decoder(z).sample(), z


__all__ = ["VAEModule"]
