"""β-VAE (Higgins et al. 2017) and β-TC-VAE (Chen, Li, Grosse & Duvenaud 2018): VAEs whose
KL term is reweighted to encourage disentangled (factorized) codes.

    β-VAE     E_q[log p(x|z)] - β KL(q(z|x) || p(z))                        (β = 4)
    β-TC-VAE  E_q[log p(x|z)] - α I_q(z; n) - β KL(q(z) || Π_j q(z_j))
                              - γ Σ_j KL(q(z_j) || p(z_j))                   (α, β, γ = 1, 6, 1)

The β-TC-VAE's three terms are the index-code mutual information, the total correlation and
the dimension-wise KL of `total_correlation` (their sum is the KL term averaged over the
data); the aggregate posterior q(z) they need is estimated on each minibatch from the N
training rows (`n_train_rows_`, fixed at fit), by minibatch-weighted ("mws") or
minibatch-stratified ("mss") sampling. At α = β = γ = 1 the objective is the ELBO with a
one-draw Monte Carlo KL, equal to the VAE's ELBO in expectation. KL warm-up
(kl_warmup_epochs) scales all three terms.

Both log their terms per epoch in `history_terms_`: "reconstruction" (E_q[log p(x|z)]) and
"kl" (the analytic KL(q(z|x) || p(z))), and for the β-TC-VAE "mi", "tc", "dimwise_kl".
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch.distributions import Independent, Normal

from .._validation import Interval, Options
from ..exceptions import InvalidParameterError
from ..io import register_model
from .blocks import StandardNormalPrior
from .objectives import closed_form_kl, elbo_terms, reparameterized_sample
from .total_correlation import SAMPLING, estimate_kl_decomposition
from .vae import VAE


def _diagonal_gaussian(dist, what: str) -> Normal:
    """The Normal of an Independent(Normal, 1) over the event (latent_dim,), else an error."""
    if (isinstance(dist, Independent) and type(dist.base_dist) is Normal
            and dist.reinterpreted_batch_ndims == 1):
        return dist.base_dist
    raise InvalidParameterError(f"the β-TC decomposition needs a diagonal Gaussian {what} "
                                f"(Independent(Normal, 1)); got {type(dist).__name__}.")


def beta_elbo_terms(module, x, observed=None, *, beta: float):
    """β-VAE objective per row (B,) = reconstruction - β KL, and its terms' batch means.

    The terms of `objectives.elbo` (one draw, the analytic KL), so beta=1 trains
    bit-identically to `VAE`. module : a `VAEModule`; x : (B, D); observed : (B, D) mask
    or None. Returns (value, {"reconstruction", "kl"}).
    """
    reconstruction, kl = elbo_terms(module.prior, module.encoder, module.decoder, x,
                                    observed)
    value = reconstruction - beta * kl
    return value, {"reconstruction": reconstruction.detach().mean(),
                   "kl": kl.detach().mean()}


def beta_tc_terms(module, x, observed=None, *, alpha: float, beta: float, gamma: float,
                  dataset_size: int, sampling: str):
    """β-TC-VAE objective per row (B,) and its terms' batch means:

        value_i = log p(x_i | z_i) - α MI_i - β TC_i - γ dimKL_i,   z_i ~ q(z | x_i),

    MI_i + TC_i + dimKL_i = log q(z_i|x_i) - log p(z_i) (`total_correlation`). module : a
    `VAEModule` with a diagonal-Gaussian encoder and a factorized Gaussian prior; x : (B, D);
    dataset_size : N, the training rows; sampling : "mws" | "mss". Returns (value,
    {"reconstruction", "kl", "mi", "tc", "dimwise_kl"}), "kl" the analytic KL's mean.
    """
    q = module.encoder(x, observed)
    p = module.prior()
    q_normal = _diagonal_gaussian(q, "posterior q(z | x)")
    p_normal = _diagonal_gaussian(p, "prior p(z)")
    z = reparameterized_sample(q, 1)[0]                                      # (B, L)
    reconstruction = module.decoder(z).log_prob(x, observed)                # (B,)
    parts = estimate_kl_decomposition(z, q_normal.loc, q_normal.scale, p_normal.log_prob(z),
                                      dataset_size=dataset_size, sampling=sampling)
    value = (reconstruction - alpha * parts.mutual_information
             - beta * parts.total_correlation - gamma * parts.dimwise_kl)
    with torch.no_grad():  # two diagonal Gaussians: the closed form always exists
        kl = closed_form_kl(q, p, standard_prior=type(module.prior) is StandardNormalPrior)
    return value, {"reconstruction": reconstruction.detach().mean(), "kl": kl.mean(),
                   "mi": parts.mutual_information.detach().mean(),
                   "tc": parts.total_correlation.detach().mean(),
                   "dimwise_kl": parts.dimwise_kl.detach().mean()}


@register_model
class BetaVAE(VAE):
    """A β-VAE: the VAE with the KL term weighted by `beta` (default 4; Higgins et al.
    2017). beta=1 is the VAE (the same weights for the same seed). Logs "reconstruction"
    and "kl" per epoch in `history_terms_`. Parameters and attributes as `VAE`'s."""

    def __init__(self, latent_dim=10, *, beta=4.0, likelihood="bernoulli", hidden=(400,),
                 architecture="mlp", image_shape=None, activation="tanh", sigma="fixed",
                 sigma_init=1.0, epochs=10, batch_size=100, lr=1e-3, lr_schedule=None,
                 clip_grad_norm=None, kl_warmup_epochs=0.0, early_stopping_patience=None,
                 validation_fraction=0.0, dynamic_binarization=False, checkpoint_path=None,
                 checkpoint_every_minutes=10.0, device="auto", random_state=None,
                 verbose=None, max_time=None, callbacks=None,
                 strategy=None, world_size=None):
        self._store_init_args(locals())

    def _objective(self, module, x, observed, beta: float):
        return beta_elbo_terms(module, x, observed, beta=beta)


@register_model
class BetaTCVAE(VAE):
    """A β-TC-VAE (Chen et al. 2018): E_q[log p(x|z)] - α MI - β TC - γ dimKL.

    Parameters (beyond `VAE`'s)
    ---------------------------
    alpha : weight of the index-code mutual information I_q(z; n) (default 1).
    beta : weight of the total correlation KL(q(z) || Π_j q(z_j)) (default 6).
    gamma : weight of the dimension-wise KL Σ_j KL(q(z_j) || p(z_j)) (default 1).
    sampling : "mss" (minibatch-stratified, default, as Chen et al.'s improved estimator)
        or "mws" (minibatch-weighted) estimation of log q(z) (`total_correlation`).

    Attributes (beyond `VAE`'s)
    ---------------------------
    n_train_rows_ : N, the training rows the minibatch estimators weight by (the rows of X
        less those held out by validation_fraction).
    history_terms_ : per epoch "reconstruction", "kl", "mi", "tc", "dimwise_kl".
    """

    _parameter_constraints: ClassVar[dict] = {
        "alpha": [Interval(float, 0, None)], "gamma": [Interval(float, 0, None)],
        "sampling": [Options(*SAMPLING)]}

    def __init__(self, latent_dim=10, *, alpha=1.0, beta=6.0, gamma=1.0, sampling="mss",
                 likelihood="bernoulli", hidden=(400,), architecture="mlp", image_shape=None,
                 activation="tanh", sigma="fixed", sigma_init=1.0, epochs=10, batch_size=100,
                 lr=1e-3, lr_schedule=None, clip_grad_norm=None, kl_warmup_epochs=0.0,
                 early_stopping_patience=None, validation_fraction=0.0,
                 dynamic_binarization=False, checkpoint_path=None,
                 checkpoint_every_minutes=10.0, device="auto", random_state=None,
                 verbose=None, max_time=None, callbacks=None,
                 strategy=None, world_size=None):
        self._store_init_args(locals())

    def _validate_params(self):
        super()._validate_params()
        if self.beta == 0 and self.kl_warmup_epochs > 0:
            raise InvalidParameterError(
                "kl_warmup_epochs > 0 scales the three KL terms by the warm-up weight, "
                "which BetaTCVAE reads from beta; with beta=0 set kl_warmup_epochs=0.")

    def _rows(self, X, *, reset: bool):
        X = super()._rows(X, reset=reset)
        if reset:  # the Trainer holds out round(validation_fraction · n) rows
            self.n_train_rows_ = len(X) - round(self.validation_fraction * len(X))
        return X

    def _fitted_schema(self) -> dict:
        from .._io_schemas import Fitted

        return {**super()._fitted_schema(), "n_train_rows_": Fitted("iu", low=1)}

    def _objective(self, module, x, observed, beta: float):
        # DeepModel passes beta · (KL warm-up weight); the weight scales all three terms
        warmup = beta / self.beta if self.beta > 0 else 1.0
        # a validation batch may outnumber the training rows (validation_fraction > 0.5):
        # it is then its own data set
        dataset_size = max(int(self.n_train_rows_), x.shape[0])
        return beta_tc_terms(module, x, observed, alpha=self.alpha * warmup, beta=beta,
                             gamma=self.gamma * warmup, dataset_size=dataset_size,
                             sampling=self.sampling)


__all__ = ["BetaTCVAE", "BetaVAE", "beta_elbo_terms", "beta_tc_terms"]
