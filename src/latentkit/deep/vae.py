"""The variational autoencoder (Kingma & Welling 2014) and the importance-weighted
autoencoder (Burda, Grosse & Salakhutdinov 2015): one stochastic layer,

    z ~ N(0, I),   x | z ~ p_θ(x | z)  (Bernoulli, Gaussian or 256-level categorical),
    q_φ(z | x) = N(μ_φ(x), diag σ²_φ(x)),

trained on the ELBO E_q[log p(x | z)] - β KL(q(z | x) || p(z)) (VAE; β = 1 unless asked)
or on the k-sample bound IWAE_k = E[log (1/k) Σ_i p(x, z_i) / q(z_i | x)] (IWAE).
"""

from __future__ import annotations

from typing import ClassVar

from .._validation import Interval
from ..io import register_model
from .base import DeepModel
from .blocks import build_vae_modules
from .module import VAEModule


@register_model
class VAE(DeepModel):
    """A variational autoencoder with the latentkit contract (numpy in and out).

    Parameters
    ----------
    latent_dim : int, the dimension of z.
    likelihood : "bernoulli" (binary data), "gaussian" (real data; `sigma` "fixed" at
        sigma_init, "shared" learned, or "per_dim" learned) or "categorical" (256 intensity
        levels of data in [0, 1]).
    hidden : widths of the encoder's hidden layers (the decoder mirrors them); () makes the
        encoder and decoder linear (with likelihood="gaussian", a PPCA).
    architecture : "mlp", or "conv" for images (image_shape (C, H, W), default (1, 28, 28)).
    activation : "tanh", "relu", ...
    epochs, batch_size, lr, lr_schedule, clip_grad_norm, kl_warmup_epochs, beta,
    early_stopping_patience, validation_fraction, dynamic_binarization, checkpoint_path,
    checkpoint_every_minutes, device, random_state, verbose, max_time, callbacks : the
        Trainer's options (`latentkit.deep.trainer.Trainer`); beta scales the KL term
        (β-VAE).

    Attributes
    ----------
    module_ : the trained torch module (prior, encoder, decoder); history_ : the mean
    training objective per epoch; valid_history_; n_iter_ (epochs run), best_epoch_,
    converged_, stop_reason_, n_features_in_, input_shape_.
    """

    _parameter_constraints: ClassVar[dict] = {}

    def __init__(self, latent_dim=2, *, likelihood="bernoulli", hidden=(400,),
                 architecture="mlp", image_shape=None, activation="tanh", sigma="fixed",
                 sigma_init=1.0, epochs=10, batch_size=100, lr=1e-3, lr_schedule=None,
                 clip_grad_norm=None, kl_warmup_epochs=0.0, beta=1.0,
                 early_stopping_patience=None, validation_fraction=0.0,
                 dynamic_binarization=False, checkpoint_path=None,
                 checkpoint_every_minutes=10.0, device="auto", random_state=None,
                 verbose=None, max_time=None, callbacks=None):
        self._store_init_args(locals())

    def _uses_mask(self) -> bool:
        return True

    def _build_module(self, n_features: int):
        prior, encoder, decoder = build_vae_modules(
            n_features, self.latent_dim, self.likelihood, tuple(self.hidden),
            self.architecture, self.image_shape, uses_mask=self._uses_mask(),
            activation=self.activation, sigma=self.sigma, sigma_init=self.sigma_init)
        return VAEModule(prior, encoder, decoder)


@register_model
class IWAE(VAE):
    """The importance-weighted autoencoder: a VAE trained on the k-sample bound IWAE_k
    (k = `k`), which tightens towards log p(x) as k grows; scored by importance sampling
    (score_samples' default method "iwae", n_samples = 5000)."""

    _parameter_constraints: ClassVar[dict] = {"k": [Interval(int, 1, 100_000)]}
    score_kind = "iwae"

    def __init__(self, latent_dim=2, *, k=5, likelihood="bernoulli", hidden=(400,),
                 architecture="mlp", image_shape=None, activation="tanh", sigma="fixed",
                 sigma_init=1.0, epochs=10, batch_size=100, lr=1e-3, lr_schedule=None,
                 clip_grad_norm=None, kl_warmup_epochs=0.0, beta=1.0,
                 early_stopping_patience=None, validation_fraction=0.0,
                 dynamic_binarization=False, checkpoint_path=None,
                 checkpoint_every_minutes=10.0, device="auto", random_state=None,
                 verbose=None, max_time=None, callbacks=None):
        self._store_init_args(locals())

    def _objective(self, module, x, observed, beta: float):
        return module.iwae(x, observed, k=self.k)


__all__ = ["IWAE", "VAE"]
