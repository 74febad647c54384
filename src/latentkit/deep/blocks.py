"""Priors, encoders, network families and the one factory the deep models call.

Generative model (seed 001): z ~ p(z), x | z ~ p_θ(x | z) (a decoder of `likelihoods`);
inference model q_φ(z | x) = N(z; μ_φ(x), diag σ_φ²(x)).

Shapes, in PyTorch's vocabulary: x : (B, D), flattened (images too: a (B, 1, 28, 28) batch
enters as (B, 784)); observed : (B, D) float mask, 1 = observed, missing entries of x set to
0; z : (*sample, B, latent_dim), e.g. (k, B, latent_dim) for k importance samples.

User-supplied networks: an encoder body maps (..., D_in) -> (..., feature_dim), where
D_in = D, or 2 D when the encoder sees the mask ([x * observed, observed] concatenated);
a decoder network maps (..., latent_dim) -> (..., D * outputs_per_dim) (1 output per
dimension for Bernoulli and Gaussian, n_levels for categorical, levels of one dimension
contiguous). Any `nn.Module` honouring those shapes can replace the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal

from latentkit.deep.likelihoods import (
    LIKELIHOODS,
    BernoulliDecoder,
    CategoricalDecoder,
    GaussianDecoder,
)
from latentkit.exceptions import InvalidParameterError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
}
ARCHITECTURES = ("mlp", "conv")


def _activation(activation: str | Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """A name of ACTIVATIONS, or a zero-argument callable returning an nn.Module."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise InvalidParameterError(
                f"activation must be one of {sorted(ACTIVATIONS)} or an nn.Module class, "
                f"got {activation!r}.")
        return ACTIVATIONS[activation]
    if not callable(activation):
        raise InvalidParameterError(
            f"activation must be a name or an nn.Module class, got {activation!r}.")
    return activation


# ----------------------------------------------------------------------------- priors
class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I_latent_dim): batch shape (), event shape (latent_dim,).

    `prior()` returns the distribution; the zero buffer carries device and dtype.
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = _positive_int(latent_dim, "latent_dim")
        self.register_buffer("loc", torch.zeros(self.latent_dim))

    def forward(self) -> Independent:
        return Independent(Normal(self.loc, torch.ones_like(self.loc), validate_args=False), 1)

    def sample(self, sample_shape=()) -> torch.Tensor:
        """-> (*sample_shape, latent_dim), from the global torch RNG."""
        return self().sample(torch.Size(sample_shape))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """z : (..., latent_dim) -> (...,)."""
        return self().log_prob(z)


class LearnedGaussianPrior(StandardNormalPrior):
    """p(z) = N(m, diag s²) with learned m and log s, initialised at N(0, I)."""

    def __init__(self, latent_dim: int):
        super().__init__(latent_dim)
        self.prior_loc = nn.Parameter(torch.zeros(self.latent_dim))
        self.prior_log_scale = nn.Parameter(torch.zeros(self.latent_dim))

    def forward(self) -> Independent:
        scale = torch.exp(self.prior_log_scale)
        return Independent(Normal(self.prior_loc, scale, validate_args=False), 1)


# ---------------------------------------------------------------------------- encoder
class GaussianEncoder(nn.Module):
    """q_φ(z | x) = N(μ(h), diag exp(ℓ(h))), h = body(input), two linear heads μ and ℓ.

    body : (..., D_in) -> (..., feature_dim); D_in = D, or 2 D when uses_mask=True, in
        which case the input is [x * observed, observed] (observed = 1 when not given).
    When uses_mask=False the mask is not an input: missing entries enter as their
    placeholder 0. forward(x : (..., D), observed : (..., D) | None) -> a distribution
    with batch shape (...) and event shape (latent_dim,).
    """

    def __init__(self, body: nn.Module, feature_dim: int, latent_dim: int,
                 uses_mask: bool = False):
        super().__init__()
        self.body = body
        self.latent_dim = _positive_int(latent_dim, "latent_dim")
        self.uses_mask = bool(uses_mask)
        self.loc_head = nn.Linear(_positive_int(feature_dim, "feature_dim"), self.latent_dim)
        self.log_var_head = nn.Linear(feature_dim, self.latent_dim)

    def encoder_input(self, x: torch.Tensor, observed: torch.Tensor | None) -> torch.Tensor:
        """(..., D) -> (..., D_in): x, or [x * observed, observed] when uses_mask."""
        if not self.uses_mask:
            return x
        mask = torch.ones_like(x) if observed is None else observed.to(x.dtype).expand_as(x)
        return torch.cat([x * mask, mask], dim=-1)

    def forward(self, x: torch.Tensor, observed: torch.Tensor | None = None) -> Independent:
        features = self.body(self.encoder_input(x, observed))
        loc = self.loc_head(features)
        scale = torch.exp(0.5 * self.log_var_head(features))
        return Independent(Normal(loc, scale, validate_args=False), 1)


# --------------------------------------------------------------------- network families
def mlp(in_dim: int, hidden: Sequence[int] = (400,), out_dim: int | None = None,
        activation: str | Callable[[], nn.Module] = "tanh") -> nn.Sequential:
    """A multilayer perceptron (..., in_dim) -> (..., out_dim).

    Linear + activation for each width in `hidden`, then a final Linear to out_dim
    (hidden=() gives one linear map). out_dim=None returns the body only, ending at the
    last activation, with output width hidden[-1] (or in_dim, an identity, for hidden=()).
    """
    make = _activation(activation)
    layers: list[nn.Module] = []
    width = _positive_int(in_dim, "in_dim")
    for size in hidden:
        layers += [nn.Linear(width, _positive_int(size, "hidden")), make()]
        width = size
    if out_dim is not None:
        layers.append(nn.Linear(width, _positive_int(out_dim, "out_dim")))
    return nn.Sequential(*layers) if layers else nn.Sequential(nn.Identity())


def mlp_width(in_dim: int, hidden: Sequence[int]) -> int:
    """Output width of mlp(in_dim, hidden, out_dim=None)."""
    return int(hidden[-1]) if len(hidden) else int(in_dim)


class ConvEncoderBody(nn.Module):
    """(..., in_channels·H·W) -> (..., feature_dim) for images.

    Two 4×4 stride-2 convolutions (channels 32, 64; H×W -> H/2×W/2 -> H/4×W/4), flatten,
    then the fully connected widths `hidden` (at least one). 28×28 gives 7×7×64 features.
    """

    def __init__(self, image_shape: Sequence[int], in_channels: int, hidden: Sequence[int],
                 activation="relu", channels: tuple[int, int] = (32, 64)):
        super().__init__()
        _, height, width = _check_image_shape(image_shape)
        make = _activation(activation)
        self.in_shape = (in_channels, height, width)
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, channels[0], 4, stride=2, padding=1), make(),
            nn.Conv2d(channels[0], channels[1], 4, stride=2, padding=1), make(),
            nn.Flatten())
        flat = channels[1] * (height // 4) * (width // 4)
        self.fc = mlp(flat, _nonempty(hidden), None, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        h = self.convs(x.reshape(-1, *self.in_shape))
        return self.fc(h).reshape(*lead, -1)


class ConvDecoderNet(nn.Module):
    """(..., latent_dim) -> (..., C·H·W·outputs_per_pixel) for images.

    Fully connected widths `hidden`, a linear map to 64×H/4×W/4, then two 4×4 stride-2
    transposed convolutions (64 -> 32 -> C·outputs_per_pixel); the outputs of one pixel are
    contiguous in the flattened result (the layout CategoricalDecoder reshapes).
    """

    def __init__(self, latent_dim: int, image_shape: Sequence[int], hidden: Sequence[int],
                 outputs_per_pixel: int = 1, activation="relu",
                 channels: tuple[int, int] = (64, 32)):
        super().__init__()
        self.image_shape = _check_image_shape(image_shape)
        n_channels, height, width = self.image_shape
        make = _activation(activation)
        self.outputs_per_pixel = int(outputs_per_pixel)
        self.grid = (channels[0], height // 4, width // 4)
        fc_out = channels[0] * (height // 4) * (width // 4)
        self.fc = nn.Sequential(mlp(latent_dim, hidden, fc_out, activation), make())
        self.deconvs = nn.Sequential(
            nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1), make(),
            nn.ConvTranspose2d(channels[1], n_channels * self.outputs_per_pixel, 4, stride=2,
                               padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h = self.deconvs(self.fc(z.reshape(-1, z.shape[-1])).reshape(-1, *self.grid))
        n_channels, height, width = self.image_shape
        # (N, C·P, H, W) -> (N, C, H, W, P): the P outputs of one pixel become contiguous.
        h = h.reshape(-1, n_channels, self.outputs_per_pixel, height, width)
        return h.permute(0, 1, 3, 4, 2).reshape(*lead, -1)


# ---------------------------------------------------------------------------- factory
def build_vae_modules(n_features: int, latent_dim: int, likelihood: str = "bernoulli",
                      hidden: Sequence[int] = (400,), architecture: str = "mlp",
                      image_shape: Sequence[int] | None = None, uses_mask: bool = False, *,
                      activation: str = "tanh", sigma: str = "fixed", sigma_init: float = 1.0,
                      n_levels: int = 256, dtype: torch.dtype = torch.float32):
    """Build (prior, encoder, decoder) for a one-layer VAE. Returns three nn.Modules.

    n_features : D, the flattened dimension of x. likelihood : "bernoulli" | "gaussian" |
    "categorical" (with n_levels). sigma, sigma_init : the Gaussian decoder's scale (see
    GaussianDecoder). architecture "mlp": the encoder body is mlp(D_in, hidden) and the
    decoder mlp(latent_dim, reversed(hidden), D·outputs); hidden=() is a linear encoder and
    decoder (a linear-Gaussian VAE is then a PPCA). architecture "conv": image_shape
    (C, H, W) with H, W divisible by 4 and C·H·W = D (default (1, 28, 28)); `hidden` are the
    fully connected widths between the convolutions and the latent layer (at least one).
    activation : a name of ACTIVATIONS. dtype : parameter dtype (float32 by default).
    """
    n_features = _positive_int(n_features, "n_features")
    latent_dim = _positive_int(latent_dim, "latent_dim")
    hidden = tuple(_positive_int(h, "hidden") for h in hidden)
    if likelihood not in LIKELIHOODS:
        raise InvalidParameterError(
            f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
    if architecture not in ARCHITECTURES:
        raise InvalidParameterError(
            f"architecture must be one of {ARCHITECTURES}, got {architecture!r}.")
    outputs = n_levels if likelihood == "categorical" else 1
    in_dim = 2 * n_features if uses_mask else n_features
    if architecture == "mlp":
        body, feature_dim = mlp(in_dim, hidden, None, activation), mlp_width(in_dim, hidden)
        net = mlp(latent_dim, hidden[::-1], n_features * outputs, activation)
    else:
        image_shape = _image_shape_for(n_features, image_shape)
        in_channels = image_shape[0] * (2 if uses_mask else 1)
        body = ConvEncoderBody(image_shape, in_channels, hidden, activation)
        feature_dim = hidden[-1]
        net = ConvDecoderNet(latent_dim, image_shape, hidden[::-1], outputs, activation)
    encoder = GaussianEncoder(body, feature_dim, latent_dim, uses_mask)
    if likelihood == "bernoulli":
        decoder = BernoulliDecoder(net, n_features)
    elif likelihood == "gaussian":
        decoder = GaussianDecoder(net, n_features, sigma, sigma_init, dtype=dtype)
    else:
        decoder = CategoricalDecoder(net, n_features, n_levels)
    prior = StandardNormalPrior(latent_dim)
    return prior.to(dtype), encoder.to(dtype), decoder.to(dtype)


# --------------------------------------------------------------------------- checks
def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}.")
    if int(value) < 1:
        raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _nonempty(hidden: Sequence[int]) -> tuple[int, ...]:
    if not len(hidden):
        raise InvalidParameterError(
            "hidden must name at least one fully connected width for architecture='conv', "
            "e.g. hidden=(256,); got ().")
    return tuple(hidden)


def _check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1 or shape[1] % 4 or shape[2] % 4:
        raise InvalidParameterError(
            f"image_shape must be (channels, height, width) with height and width divisible "
            f"by 4, got {tuple(image_shape)!r}.")
    return shape


def _image_shape_for(n_features: int, image_shape) -> tuple[int, int, int]:
    shape = _check_image_shape((1, 28, 28) if image_shape is None else image_shape)
    if shape[0] * shape[1] * shape[2] != n_features:
        raise InvalidParameterError(
            f"image_shape {shape} holds {shape[0] * shape[1] * shape[2]} values but the data "
            f"have n_features={n_features}; pass the images' (channels, height, width).")
    return shape


__all__ = [
    "ACTIVATIONS", "ARCHITECTURES", "ConvDecoderNet", "ConvEncoderBody", "GaussianEncoder",
    "LearnedGaussianPrior", "StandardNormalPrior", "build_vae_modules", "mlp", "mlp_width",
]
