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
from ..exceptions import InvalidParameterError
from ..io import register_model
from .base import DeepModel, _hidden_ok
from .blocks import build_vae_modules
from .hierarchical import HierarchicalVAEModule
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
    checkpoint_every_minutes, device, random_state, verbose, max_time, callbacks, strategy,
    world_size : the Trainer's options (`latentkit.deep.trainer.Trainer`; strategy="ddp"
        with world_size=N trains data-parallel on N processes, `latentkit.deep.ddp`); beta
        scales the KL term (β-VAE).

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
                 verbose=None, max_time=None, callbacks=None,
                 strategy=None, world_size=None):
        self._store_init_args(locals())

    def _uses_mask(self) -> bool:
        """Whether the encoder takes the missing-data mask as input (when the training
        data had missing entries; `uses_mask_`)."""
        return bool(getattr(self, "uses_mask_", True))

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
    (score_samples' default method "iwae", n_samples = 1000 unless given)."""

    _parameter_constraints: ClassVar[dict] = {"k": [Interval(int, 1, 100_000)]}
    score_kind = "iwae"

    def __init__(self, latent_dim=2, *, k=5, likelihood="bernoulli", hidden=(400,),
                 architecture="mlp", image_shape=None, activation="tanh", sigma="fixed",
                 sigma_init=1.0, epochs=10, batch_size=100, lr=1e-3, lr_schedule=None,
                 clip_grad_norm=None, kl_warmup_epochs=0.0, beta=1.0,
                 early_stopping_patience=None, validation_fraction=0.0,
                 dynamic_binarization=False, checkpoint_path=None,
                 checkpoint_every_minutes=10.0, device="auto", random_state=None,
                 verbose=None, max_time=None, callbacks=None,
                 strategy=None, world_size=None):
        self._store_init_args(locals())

    def _objective(self, module, x, observed, beta: float):
        return module.iwae(x, observed, k=self.k)


@register_model
class HierarchicalVAE(VAE):
    """A VAE with L stochastic layers (`hierarchical.HierarchicalVAEModule`): a top-down
    generative path p(z_L) Π p(z_l | z_{l+1}) p(x | z_1) and the bottom-up inference network
    q(z_1 | x) Π q(z_l | z_{l-1}, x); `ladder=True` shares a deterministic bottom-up path
    between the layers. latent_dims : (d_1, ..., d_L), z_1 nearest x; hidden : one tuple of
    widths for every block, or one tuple per block (Burda et al.'s MNIST model:
    latent_dims=(100, 50), hidden=((200, 200), (100, 100))). `latent_dim` is d_1, the
    dimension of the representation transform returns (q(z_1 | x)'s mean). Trained on the
    ELBO, or on IWAE_k with k > 1."""

    _parameter_constraints: ClassVar[dict] = {"k": [Interval(int, 1, 100_000)]}

    def __init__(self, latent_dims=(64, 32), *, k=1, ladder=False, likelihood="bernoulli",
                 hidden=(400,), activation="tanh", sigma="fixed", sigma_init=1.0, epochs=10,
                 batch_size=100, lr=1e-3, lr_schedule=None, clip_grad_norm=None,
                 kl_warmup_epochs=0.0, beta=1.0, early_stopping_patience=None,
                 validation_fraction=0.0, dynamic_binarization=False, checkpoint_path=None,
                 checkpoint_every_minutes=10.0, device="auto", random_state=None,
                 verbose=None, max_time=None, callbacks=None,
                 strategy=None, world_size=None):
        self._store_init_args(locals())

    # the VAE's options that this model fixes
    architecture, image_shape = "mlp", None

    @property
    def latent_dim(self) -> int:
        return int(self.latent_dims[0]) if len(self.latent_dims) else 0

    def _validate_params(self):
        self._check_architecture()  # latent_dims first: latent_dim is derived from it
        super()._validate_params()

    def _check_architecture(self) -> None:
        dims, hidden = self.latent_dims, self.hidden
        if not (isinstance(dims, tuple | list) and len(dims) >= 1 and all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims)):
            raise InvalidParameterError(f"latent_dims must be a tuple of positive ints, one "
                                        f"per stochastic layer; got {dims!r}.")
        per_layer = bool(hidden) and all(isinstance(h, tuple | list) for h in hidden)
        if per_layer and len(hidden) != len(dims):
            raise InvalidParameterError(
                f"hidden has {len(hidden)} per-layer tuples for {len(dims)} stochastic "
                "layers; give one tuple per layer, or one tuple for all.")
        if not all(_hidden_ok(block) for block in (hidden if per_layer else [hidden])):
            raise InvalidParameterError(
                f"hidden must be a tuple of positive widths, or one such tuple per "
                f"stochastic layer; got {hidden!r}.")

    def _build_module(self, n_features: int):
        hidden = self.hidden
        if hidden and isinstance(hidden[0], tuple | list):
            hidden = tuple(tuple(block) for block in hidden)
        return HierarchicalVAEModule(n_features, tuple(self.latent_dims), hidden,
                                     self.likelihood, self.ladder, self.activation,
                                     uses_mask=self._uses_mask(), sigma=self.sigma,
                                     sigma_init=self.sigma_init)

    def _objective(self, module, x, observed, beta: float):
        if self.k > 1:
            return module.iwae(x, observed, k=self.k)
        return module.elbo(x, observed, beta=beta)


__all__ = ["IWAE", "HierarchicalVAE", "VAE"]
