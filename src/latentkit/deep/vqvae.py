"""The vector-quantized VAE (van den Oord, Vinyals & Kavukcuoglu 2017).

    z_e = enc(x) : (L, d)          L = n_latents vectors of dimension d = code_dim
    k_l = argmin_k ‖z_e,l - e_k‖²  the nearest of K = n_codes codes (`codebook`)
    z_q,l = e_{k_l},               x | z_q ~ p_θ(x | z_q)  (Bernoulli, Gaussian, categorical)

Training maximizes, per row (sums over the L positions and d coordinates),

    log p_θ(x | z_e + sg[z_q - z_e])          reconstruction (straight-through gradients)
      - ‖sg[z_e] - z_q‖²                      codebook loss (codebook_update="loss" only)
      - β ‖z_e - sg[z_q]‖²                    commitment (β = beta_commitment)

with codebook_update="ema" moving the codes by exponential moving averages instead of the
codebook loss; dead codes are restarted at encoder outputs (`codebook`).

After training, a prior over the code indices, p(k_1..k_L) = Σ_c π_c Π_l θ_c,l,k_l (a
`CategoricalMixture` with n_prior_components components, one categorical variable of K
categories per position), is fitted by EM on the training rows' codes. `sample` draws codes
from it and decodes them.

Score. With q(k | x) the point mass at the nearest codes k(x), the ELBO is

    log p(x) >= E_q[log p(x | k) + log p(k) - log q(k | x)] = log p(x | z_q(x)) + log p(k(x))

(log q = 0): a true lower bound on the log-likelihood of the model "codes from the fitted
prior, then the decoder", deterministic, and what `score_samples` returns.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._validation import Interval, Options, check_n_samples
from ..distributions import FactorizedCategorical
from ..exceptions import InvalidParameterError
from ..io import register_model
from .base import DeepModel, _out_dtype
from .blocks import ConvDecoderNet, ConvEncoderBody, _image_shape_for, mlp
from .codebook import CODEBOOK_UPDATES, Codebook, straight_through
from .likelihoods import BernoulliDecoder, CategoricalDecoder, GaussianDecoder

#: the saved prior's fitted attributes are stored under this prefix
PRIOR_PREFIX = "prior__"


def vq_terms(log_px: torch.Tensor, z_e: torch.Tensor, z_q: torch.Tensor):
    """Per-row terms of the VQ-VAE objective. log_px : (B,); z_e, z_q : (B, L, d), z_q
    carrying the gradient to the codes only. Returns (commitment ‖z_e - sg[z_q]‖² : (B,),
    codebook ‖sg[z_e] - z_q‖² : (B,)), each summed over positions and coordinates."""
    commitment = (z_e - z_q.detach()).pow(2).sum((-2, -1))
    codebook = (z_e.detach() - z_q).pow(2).sum((-2, -1))
    return commitment, codebook


class VQVAEModule(nn.Module):
    """encoder_net : (B, D_in) -> (B, L·d); decoder : a `likelihoods` decoder on (B, L·d);
    codebook : a `codebook.Codebook` of dimension d. D_in = 2 D when uses_mask (the input
    is [x · observed, observed])."""

    def __init__(self, encoder_net: nn.Module, decoder: nn.Module, codebook: Codebook,
                 n_latents: int, uses_mask: bool = False):
        super().__init__()
        self.encoder_net, self.decoder, self.codebook = encoder_net, decoder, codebook
        self.n_latents, self.uses_mask = int(n_latents), bool(uses_mask)

    def encode(self, x: torch.Tensor, observed: torch.Tensor | None = None) -> torch.Tensor:
        """x : (B, D) -> z_e : (B, L, d)."""
        if self.uses_mask:
            mask = torch.ones_like(x) if observed is None else observed.to(x.dtype)
            x = torch.cat([x * mask, mask], dim=-1)
        return self.encoder_net(x).reshape(len(x), self.n_latents, self.codebook.code_dim)

    def objective(self, x, observed=None, *, beta_commitment: float):
        """x : (B, D) -> (objective (B,), terms {name: () batch mean}); updates the codebook
        in training mode."""
        z_e = self.encode(x, observed)
        z_q, _, stats = self.codebook(z_e)
        z_st = straight_through(z_e, z_q)
        log_px = self.decoder(z_st.flatten(1)).log_prob(x, observed)
        commitment, codebook = vq_terms(log_px, z_e, z_q)
        value = log_px - beta_commitment * commitment
        terms = {"reconstruction": log_px.detach().mean(),
                 "commitment": commitment.detach().mean(), **stats}
        if self.codebook.update == "loss":
            value = value - codebook
            terms["codebook"] = codebook.detach().mean()
        return value, terms

    def codes(self, x, observed=None) -> torch.Tensor:
        """x : (B, D) -> nearest-code indices (B, L)."""
        return self.codebook.quantize(self.encode(x, observed))

    def log_px_given_codes(self, x, observed, codes) -> torch.Tensor:
        """log p(x_obs | z_q) : (B,) for codes : (B, L)."""
        return self.decoder(self.codebook.lookup(codes).flatten(1)).log_prob(x, observed)

    def decode_mean(self, codes: torch.Tensor) -> torch.Tensor:
        """codes : (B, L) -> E[x | z_q] : (B, D)."""
        return self.decoder.mean(self.codebook.lookup(codes).flatten(1))

    def sample_given_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes : (n, L) -> x ~ p(x | z_q) : (n, D), from torch's global generator."""
        return self.decoder(self.codebook.lookup(codes).flatten(1)).sample()


def build_vqvae_module(n_features: int, n_latents: int, code_dim: int, codebook: Codebook, *,
                       likelihood: str, hidden: tuple, architecture: str, image_shape,
                       activation: str, sigma: str, sigma_init: float,
                       uses_mask: bool) -> VQVAEModule:
    """The MLP (or conv) encoder to L·d outputs, the mirrored decoder and its likelihood."""
    latent, outputs = n_latents * code_dim, (256 if likelihood == "categorical" else 1)
    in_dim = 2 * n_features if uses_mask else n_features
    if architecture == "mlp":
        encoder = mlp(in_dim, hidden, latent, activation)
        net = mlp(latent, hidden[::-1], n_features * outputs, activation)
    else:
        shape = _image_shape_for(n_features, image_shape)
        body = ConvEncoderBody(shape, shape[0] * (2 if uses_mask else 1), hidden, activation)
        encoder = nn.Sequential(body, nn.Linear(hidden[-1], latent))
        net = ConvDecoderNet(latent, shape, hidden[::-1], outputs, activation)
    if likelihood == "bernoulli":
        decoder = BernoulliDecoder(net, n_features)
    elif likelihood == "gaussian":
        decoder = GaussianDecoder(net, n_features, sigma, sigma_init)
    else:
        decoder = CategoricalDecoder(net, n_features, 256)
    return VQVAEModule(encoder, decoder, codebook, n_latents, uses_mask)


@register_model
class VQVAE(DeepModel):
    """A vector-quantized VAE with the latentkit contract (numpy in and out).

    Parameters
    ----------
    n_latents : int, L, the number of code vectors per row.
    code_dim : int, d, the dimension of each code vector.
    n_codes : int, K, the codebook's size.
    codebook_update : "ema" (exponential moving averages, no codebook loss) or "loss" (the
        codes are trained by the codebook loss ‖sg[z_e] - e‖²).
    beta_commitment : float >= 0, β of the commitment loss β ‖z_e - sg[e]‖² (0.25, as in
        the paper).
    decay : EMA decay γ in (0, 1) (0.99). epsilon : Laplace smoothing ε > 0 of the EMA
        cluster sizes (1e-5).
    dead_code_threshold : float >= 0, restart a code whose EMA usage (code assignments per
        batch, averaged with decay γ) falls below it, at a random encoder output of the
        current batch; 0 disables restarts. Default 1.0 (Jukebox).
    n_prior_components : int, components of the `CategoricalMixture` prior over the code
        indices fitted after training (at most the number of training rows).
    likelihood, hidden, architecture, image_shape, activation, sigma, sigma_init : the
        decoder's likelihood and the networks, as in `VAE` (the encoder ends in a linear map
        to L·d outputs, the decoder starts from the L·d quantized coordinates).
    epochs, batch_size, lr, lr_schedule, clip_grad_norm, early_stopping_patience,
    validation_fraction, dynamic_binarization, checkpoint_path, checkpoint_every_minutes,
    device, random_state, verbose, max_time, callbacks : the Trainer's options
        (`latentkit.deep.trainer.Trainer`).

    Attributes
    ----------
    module_ : the trained torch module (encoder_net, codebook, decoder); history_ : the mean
    training objective per epoch; history_terms_ : per-epoch means of "reconstruction",
    "commitment" (unscaled by β), "codebook" (with codebook_update="loss"), "perplexity"
    (exp of the entropy of the batch's code frequencies, averaged over batches) and
    "restarts" (dead codes restarted per batch); n_restarts_ : dead codes restarted in all;
    prior_ : the fitted `CategoricalMixture` over the codes (saved as its arrays);
    valid_history_, n_iter_, best_epoch_, converged_, stop_reason_, n_features_in_,
    input_shape_.

    `posterior` is q(k | x), the point mass at `codes(X)` (a `FactorizedCategorical`).
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_latents": [Interval(int, 1, 100_000)],
        "code_dim": [Interval(int, 1, 100_000)],
        "n_codes": [Interval(int, 2, 10_000)],
        "codebook_update": [Options(*CODEBOOK_UPDATES)],
        "beta_commitment": [Interval(float, 0, None)],
        "decay": [Interval(float, 0, 1, closed="neither")],
        "epsilon": [Interval(float, 0, None, closed="neither")],
        "dead_code_threshold": [Interval(float, 0, None)],
        "n_prior_components": [Interval(int, 1, 10_000)],
    }
    # the DeepModel options that have no meaning here (no KL term)
    beta, kl_warmup_epochs = 1.0, 0.0
    #: what history_ holds (figures' axis label)
    objective_name = "log p(x | z_q) - β commitment"

    def __init__(self, n_latents=8, code_dim=16, n_codes=64, *, codebook_update="ema",
                 beta_commitment=0.25, decay=0.99, epsilon=1e-5, dead_code_threshold=1.0,
                 n_prior_components=10, likelihood="bernoulli", hidden=(400,),
                 architecture="mlp", image_shape=None, activation="tanh", sigma="fixed",
                 sigma_init=1.0, epochs=10, batch_size=100, lr=1e-3, lr_schedule=None,
                 clip_grad_norm=None, early_stopping_patience=None, validation_fraction=0.0,
                 dynamic_binarization=False, checkpoint_path=None,
                 checkpoint_every_minutes=10.0, device="auto", random_state=None,
                 verbose=None, max_time=None, callbacks=None,
                 strategy=None, world_size=None):
        self._store_init_args(locals())

    @property
    def latent_dim(self) -> int:
        """L·d, the width of `transform`'s output."""
        return int(self.n_latents) * int(self.code_dim)

    def _check_architecture(self) -> None:
        super()._check_architecture()
        if self.architecture == "conv" and not len(self.hidden):
            raise InvalidParameterError("hidden must name at least one fully connected width "
                                        "for architecture='conv', e.g. hidden=(256,); got ().")

    def _build_module(self, n_features: int) -> VQVAEModule:
        codebook = Codebook(self.n_codes, self.code_dim, self.codebook_update, self.decay,
                            self.epsilon, self.dead_code_threshold)
        return build_vqvae_module(
            n_features, self.n_latents, self.code_dim, codebook, likelihood=self.likelihood,
            hidden=tuple(self.hidden), architecture=self.architecture,
            image_shape=self.image_shape, activation=self.activation, sigma=self.sigma,
            sigma_init=self.sigma_init, uses_mask=bool(getattr(self, "uses_mask_", True)))

    def _objective(self, module, x, observed, beta: float):
        return module.objective(x, observed, beta_commitment=self.beta_commitment)

    # -- fitting --------------------------------------------------------------------------

    def fit(self, X, y=None, *, resume_from=None):
        """Train on X : (n, D) or (n, *image_shape) (NaN = missing), or continue the run in
        the checkpoint `resume_from`; then fit the prior over the codes of X. Returns self."""
        super().fit(X, y, resume_from=resume_from)
        self.n_restarts_ = int(self.module_.codebook.n_restarts)
        codes = self.codes(X).astype(np.float64)
        self.prior_ = self._new_prior().fit(codes)
        return self

    def _new_prior(self):
        from ..mixture import CategoricalMixture

        return CategoricalMixture(self.n_prior_components,
                                  n_categories=[int(self.n_codes)] * int(self.n_latents),
                                  random_state=self._seed_of(self.random_state))

    # -- inference ------------------------------------------------------------------------

    def codes(self, X) -> np.ndarray:
        """The nearest-code indices of each row : (n_samples, n_latents) int64."""
        check_is_fitted(self)
        with torch.no_grad():
            return torch.cat([self.module_.codes(x, observed) for x, observed
                              in self._batches(X)]).numpy().astype(np.int64)

    def transform(self, X) -> np.ndarray:
        """The quantized vectors z_q(x), flattened : (n_samples, n_latents·code_dim)."""
        codes = torch.from_numpy(self.codes(X))
        with torch.no_grad():
            z_q = self.module_.codebook.lookup(codes).flatten(1)
        return z_q.numpy().astype(_out_dtype(X))

    def posterior(self, X) -> FactorizedCategorical:
        """q(k | x): the point mass at the nearest codes, one categorical over the n_codes
        codes per latent position: a `FactorizedCategorical` (n_samples, n_latents, n_codes)
        with log q = 0 at `codes(X)` and -inf elsewhere."""
        codes = self.codes(X)
        log_probs = np.full((*codes.shape, int(self.n_codes)), -np.inf)
        np.put_along_axis(log_probs, codes[..., None], 0.0, axis=-1)
        return FactorizedCategorical(log_probs)

    def score_samples(self, X, method="elbo") -> np.ndarray:
        """The ELBO per row (n_samples,): log p(x_obs | z_q(x)) + log p_prior(codes(x)), a
        lower bound on log p(x) (q is a point mass, log q = 0); deterministic. Only method
        "elbo" exists (importance sampling with a point-mass proposal is the same number)."""
        check_is_fitted(self)
        if method not in (None, "elbo"):
            raise InvalidParameterError(
                f"VQVAE.score_samples: method must be 'elbo' (q is a point mass, so the "
                f"ELBO is exact for the codes; importance sampling does not apply); got "
                f"{method!r}.")
        codes = self.codes(X)
        with torch.no_grad():
            parts, start = [], 0
            for x, observed in self._batches(X):
                rows = torch.from_numpy(codes[start:start + len(x)])
                parts.append(self.module_.log_px_given_codes(x, observed, rows))
                start += len(x)
        log_px = torch.cat(parts).numpy().astype(np.float64)
        log_prior = self.prior_.score_samples(codes.astype(np.float64))
        return (log_px + log_prior).astype(_out_dtype(X))

    def sample(self, n_samples=1, random_state=None):
        """(X : (n_samples, *input_shape) from p(x | z_q), codes : (n_samples, n_latents)
        int64 from the prior)."""
        check_is_fitted(self)
        check_n_samples(n_samples)
        seed = self._seed_of(random_state)
        codes = self.prior_.sample(n_samples, random_state=seed)[0].astype(np.int64)
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(seed)
            x = self.module_.sample_given_codes(torch.from_numpy(codes))
        return x.numpy().astype(np.float32).reshape(n_samples, *self.input_shape_), codes

    def reconstruct(self, X) -> np.ndarray:
        """E[x | z_q(x)] : (n_samples, D), the decoder's mean at the quantized codes."""
        codes = torch.from_numpy(self.codes(X))
        with torch.no_grad():
            return self.module_.decode_mean(codes).numpy()

    def impute(self, X):
        """X with each NaN replaced by E[x | z_q(x_obs)], the decoder's mean at the codes of
        the observed entries (deterministic)."""
        rows = self._rows(X, reset=False)
        filled = np.where(np.isnan(rows), self.reconstruct(X), rows)
        return filled.reshape(np.shape(X)).astype(np.float32)

    def _n_parameters(self) -> int:
        prior = self.prior_.weights_.size - 1 + self.prior_.probs_.shape[0] * (
            self.prior_.probs_.shape[1] - self.n_latents)
        return super()._n_parameters() + int(prior)

    # -- persistence ----------------------------------------------------------------------

    def _saved_state(self) -> dict:
        """DeepModel's state, with the prior's fitted attributes as prior__<name>."""
        state = super()._saved_state()
        prior = state.pop("prior_")
        state.update({PRIOR_PREFIX + name: value
                      for name, value in prior._saved_state().items()})
        return state

    def _restore_state(self, state: dict) -> None:
        prior_state = {name[len(PRIOR_PREFIX):]: value for name, value in state.items()
                       if name.startswith(PRIOR_PREFIX)}
        super()._restore_state({name: value for name, value in state.items()
                                if not name.startswith(PRIOR_PREFIX)})
        prior = self._new_prior()
        prior._restore_state(prior_state)
        self.prior_ = prior

    def _fitted_schema(self) -> dict:
        from .._io_schemas import Fitted

        return {**super()._fitted_schema(), "n_restarts_": Fitted("iu", low=0)}


__all__ = ["VQVAE", "VQVAEModule", "build_vqvae_module", "vq_terms"]
