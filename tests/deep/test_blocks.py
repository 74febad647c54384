"""Building blocks: each decoder's log-probability against scipy / numpy references, with
and without a mask; priors, encoders, the network families and the factory."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy.stats import bernoulli, multivariate_normal, norm
from torch import nn

from latentkit.deep.blocks import (
    ConvDecoderNet,
    ConvEncoderBody,
    GaussianEncoder,
    LearnedGaussianPrior,
    StandardNormalPrior,
    build_vae_modules,
    mlp,
    mlp_width,
)
from latentkit.deep.likelihoods import (
    BernoulliDecoder,
    CategoricalDecoder,
    GaussianDecoder,
    check_decoder_data,
)
from latentkit.exceptions import InvalidInputError, InvalidParameterError

K, B, D, LATENT = 3, 4, 7, 2


def _z_and_mask(seed=0):
    rng = np.random.default_rng(seed)
    z = torch.as_tensor(rng.normal(size=(K, B, LATENT)))
    mask = (rng.random((B, D)) > 0.4).astype(float)
    return z, mask, rng


def _masked_sum(per_dim, mask):
    """per_dim : (K, B, D) -> (K, B), the two reference sums: all and observed only."""
    return per_dim.sum(-1), (per_dim * mask).sum(-1)


def _check(decoder, x, reference, mask, z):
    full, observed = _masked_sum(reference, mask)
    dist = decoder(z)
    assert dist.batch_shape == (K, B) and dist.event_shape == (D,)
    x_t = torch.as_tensor(x)
    np.testing.assert_allclose(dist.log_prob(x_t).detach().numpy(), full, rtol=1e-10)
    np.testing.assert_allclose(dist.log_prob(x_t, torch.as_tensor(mask)).detach().numpy(),
                               observed, rtol=1e-10)
    garbage = torch.as_tensor(np.where(mask > 0, x, 0.0))   # the placeholder does not matter
    np.testing.assert_allclose(dist.log_prob(garbage, torch.as_tensor(mask)).detach().numpy(),
                               observed, rtol=1e-10)
    assert not np.allclose(full, observed)


def test_bernoulli_decoder_matches_scipy():
    z, mask, rng = _z_and_mask(1)
    net = nn.Linear(LATENT, D).double()
    decoder = BernoulliDecoder(net, D)
    x = (rng.random((B, D)) > 0.5).astype(float)
    probs = torch.sigmoid(net(z)).detach().numpy()
    _check(decoder, x, bernoulli.logpmf(x, probs), mask, z)
    np.testing.assert_allclose(decoder.mean(z).detach().numpy(), probs, rtol=1e-12)


@pytest.mark.parametrize("mode", ["fixed", "shared", "per_dim"])
def test_gaussian_decoder_matches_scipy(mode):
    z, mask, rng = _z_and_mask(2)
    net = nn.Linear(LATENT, D).double()
    decoder = GaussianDecoder(net, D, sigma=mode, sigma_init=0.7, dtype=torch.float64)
    if mode == "per_dim":
        with torch.no_grad():
            decoder.log_sigma.copy_(torch.as_tensor(rng.normal(size=D) * 0.3))
    sigma = np.exp(decoder.log_sigma.detach().numpy())
    x = rng.normal(size=(B, D))
    loc = net(z).detach().numpy()
    _check(decoder, x, norm.logpdf(x, loc, sigma), mask, z)
    np.testing.assert_allclose(decoder.mean(z).detach().numpy(), loc, rtol=1e-12)
    learned = [name for name, _ in decoder.named_parameters() if name == "log_sigma"]
    assert learned == ([] if mode == "fixed" else ["log_sigma"])
    assert decoder.log_sigma.shape == ((D,) if mode == "per_dim" else ())
    assert "log_sigma" in decoder.state_dict()       # a fixed σ is saved as a buffer


def test_categorical_decoder_matches_numpy_softmax():
    z, mask, rng = _z_and_mask(3)
    levels = 5
    net = nn.Linear(LATENT, D * levels).double()
    decoder = CategoricalDecoder(net, D, n_levels=levels)
    level = rng.integers(0, levels, size=(B, D))
    x = level / (levels - 1)
    logits = net(z).detach().numpy().reshape(K, B, D, levels)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    reference = np.take_along_axis(log_softmax, np.broadcast_to(level, (K, B, D))[..., None],
                                   -1)[..., 0]
    _check(decoder, x, reference, mask, z)
    expected_mean = (np.exp(log_softmax) * np.linspace(0, 1, levels)).sum(-1)
    np.testing.assert_allclose(decoder.mean(z).detach().numpy(), expected_mean, rtol=1e-10)
    # a value between grid points maps to round(x (L - 1))
    dist = decoder(z)
    for shift in (0.4, -0.4):   # within half a step of a level: the same level
        nudged = torch.as_tensor(x + shift / (levels - 1))
        torch.testing.assert_close(dist.log_prob(nudged), dist.log_prob(torch.as_tensor(x)))
    samples = dist.sample((2,))
    assert samples.shape == (2, K, B, D)
    np.testing.assert_allclose((samples * (levels - 1)).numpy() % 1, 0, atol=1e-12)


def test_priors():
    prior = StandardNormalPrior(3).double()
    z = torch.randn(5, 3, dtype=torch.float64)
    expected = multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z.numpy())
    np.testing.assert_allclose(prior.log_prob(z).numpy(), expected, rtol=1e-12)
    assert prior().event_shape == (3,) and prior().batch_shape == ()
    assert prior.sample((4, 2)).shape == (4, 2, 3)
    assert list(prior.parameters()) == []
    learned = LearnedGaussianPrior(3)
    assert {name for name, _ in learned.named_parameters()} == {"prior_loc", "prior_log_scale"}
    torch.testing.assert_close(learned().log_prob(z.float()), prior.log_prob(z).float())


def test_encoder_uses_the_mask_only_when_asked():
    torch.manual_seed(0)
    x = torch.randn(B, D)
    mask = (torch.rand(B, D) > 0.5).float()
    x = x * mask
    with_mask = GaussianEncoder(mlp(2 * D, (5,)), 5, LATENT, uses_mask=True)
    q = with_mask(x, mask)
    assert q.batch_shape == (B,) and q.event_shape == (LATENT,)
    torch.testing.assert_close(with_mask.encoder_input(x, mask), torch.cat([x, mask], -1))
    assert not torch.allclose(q.mean, with_mask(x, torch.ones_like(mask)).mean)
    torch.testing.assert_close(with_mask(x).mean, with_mask(x, torch.ones_like(mask)).mean)
    plain = GaussianEncoder(mlp(D, (5,)), 5, LATENT)
    torch.testing.assert_close(plain(x, mask).mean, plain(x).mean)
    assert torch.all(q.stddev > 0)
    assert with_mask(x.expand(K, B, D), mask).batch_shape == (K, B)   # leading sample dims


def test_mlp_family():
    linear = mlp(6, (), 3)
    assert [type(m) for m in linear] == [nn.Linear]
    net = mlp(6, (10, 4), 3, activation="relu")
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    body = mlp(6, (10,), None)
    assert [type(m) for m in body] == [nn.Linear, nn.Tanh] and mlp_width(6, (10,)) == 10
    assert mlp_width(6, ()) == 6 and mlp(6, (), None)(torch.ones(2, 6)).shape == (2, 6)
    assert mlp(6, (4,), 3, activation=nn.ELU)[1].__class__ is nn.ELU
    with pytest.raises(InvalidParameterError, match="activation"):
        mlp(6, (4,), 3, activation="swishy")
    with pytest.raises(InvalidParameterError, match="hidden"):
        mlp(6, (0,), 3)


def test_conv_family_shapes_and_pixel_layout():
    torch.manual_seed(0)
    body = ConvEncoderBody((1, 28, 28), in_channels=2, hidden=(32,))
    assert body(torch.rand(K, B, 2 * 784)).shape == (K, B, 32)
    net = ConvDecoderNet(LATENT, (1, 28, 28), hidden=(16,), outputs_per_pixel=3)
    z = torch.randn(K, B, LATENT)
    out = net(z)
    assert out.shape == (K, B, 784 * 3)
    # the 3 outputs of pixel (i, j) are contiguous: compare with the raw deconvolution map
    raw = net.deconvs(net.fc(z.reshape(-1, LATENT)).reshape(-1, *net.grid))   # (N, 3, 28, 28)
    pixel = 5 * 28 + 9
    torch.testing.assert_close(out.reshape(-1, 784, 3)[:, pixel], raw[:, :, 5, 9])
    with pytest.raises(InvalidParameterError, match="image_shape"):
        ConvEncoderBody((1, 30, 30), 1, (8,))


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "categorical"])
def test_factory_builds_working_modules(architecture, likelihood, tmp_path):
    torch.manual_seed(0)
    prior, encoder, decoder = build_vae_modules(
        784, 4, likelihood, (16,), architecture, uses_mask=True, n_levels=4,
        dtype=torch.float64)
    assert all(p.dtype == torch.float64 for m in (encoder, decoder) for p in m.parameters())
    x = torch.rand(B, 784, dtype=torch.float64)
    x = (x > 0.5).double() if likelihood == "bernoulli" else torch.round(x * 3) / 3
    mask = (torch.rand(B, 784) > 0.3).double()
    z = encoder(x, mask).rsample((K,))
    assert decoder(z).log_prob(x, mask).shape == (K, B)
    assert decoder.mean(z).shape == (K, B, 784)
    for name, module in {"encoder": encoder, "decoder": decoder, "prior": prior}.items():
        path = str(tmp_path / f"{name}.safetensors")
        save_file(module.state_dict(), path)                 # contiguous, unshared tensors
        restored = load_file(path)
        assert restored.keys() == module.state_dict().keys()


def test_factory_linear_and_errors():
    prior, encoder, decoder = build_vae_modules(10, 3, "gaussian", hidden=())
    assert [type(m) for m in decoder.net] == [nn.Linear]
    assert isinstance(encoder.body[0], nn.Identity) and encoder.loc_head.in_features == 10
    assert next(decoder.parameters()).dtype == torch.float32
    with pytest.raises(InvalidParameterError, match="likelihood"):
        build_vae_modules(10, 3, "poisson")
    with pytest.raises(InvalidParameterError, match="architecture"):
        build_vae_modules(10, 3, architecture="resnet")
    with pytest.raises(InvalidParameterError, match="image_shape"):
        build_vae_modules(10, 3, architecture="conv")
    with pytest.raises(InvalidParameterError, match="at least one"):
        build_vae_modules(784, 3, hidden=(), architecture="conv")
    with pytest.raises(InvalidParameterError, match="latent_dim"):
        build_vae_modules(10, 0)
    with pytest.raises(InvalidParameterError, match="sigma"):
        build_vae_modules(10, 3, "gaussian", sigma="learned")
    with pytest.raises(InvalidParameterError, match="sigma_init"):
        build_vae_modules(10, 3, "gaussian", sigma_init=0.0)
    with pytest.raises(InvalidParameterError, match="n_levels"):
        build_vae_modules(10, 3, "categorical", n_levels=1)


def test_check_decoder_data():
    check_decoder_data(np.array([[0.0, 1.0, np.nan]]), "bernoulli")
    check_decoder_data(np.array([[0.0, 2 / 3, np.nan]]), "categorical", n_levels=4)
    check_decoder_data(np.array([[-3.0, 1e3, np.nan]]), "gaussian")
    with pytest.raises(InvalidInputError, match="binary"):
        check_decoder_data(np.array([[0.0, 0.5]]), "bernoulli")
    with pytest.raises(InvalidInputError, match="inf"):
        check_decoder_data(np.array([[0.0, np.inf]]), "gaussian")
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        check_decoder_data(np.array([[0.0, 255.0]]), "categorical")
    with pytest.raises(InvalidInputError, match="grid"):
        check_decoder_data(np.array([[0.5]]), "categorical", n_levels=4)
    with pytest.raises(InvalidParameterError, match="likelihood"):
        check_decoder_data(np.zeros((1, 1)), "poisson")
