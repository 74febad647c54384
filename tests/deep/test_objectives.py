"""Objectives and log p(x) estimators: closed forms, Monte Carlo with stated tolerances,
two computations of one quantity, and the naive estimator's failure in high dimension."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn
from torch.distributions import Independent, Laplace, Normal, kl_divergence

from latentkit.deep.blocks import (
    GaussianEncoder,
    LearnedGaussianPrior,
    StandardNormalPrior,
    build_vae_modules,
)
from latentkit.deep.likelihoods import GaussianDecoder
from latentkit.deep.objectives import (
    ESTIMATORS,
    bits_per_dim,
    elbo,
    estimate_log_px,
    importance_sampling,
    iwae_bound,
    naive_monte_carlo,
    reparameterized_sample,
)
from latentkit.exceptions import InvalidParameterError


def _linear_gaussian(D, L, sigma, seed, w_scale=1.0):
    """A PPCA as a linear VAE: (prior, exact-posterior encoder, decoder, W, b), float64.

    W has orthogonal columns so the exact posterior N(M⁻¹Wᵀ(x-b), σ²M⁻¹) is diagonal.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(D, L)))
    W = q * w_scale * np.linspace(2.0, 1.0, L)
    b = rng.normal(size=D)
    linear = nn.Linear(L, D).double()
    encoder = GaussianEncoder(nn.Identity(), D, L).double()
    M = np.diag(W.T @ W) + sigma**2
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(W))
        linear.bias.copy_(torch.as_tensor(b))
        A = W.T / M[:, None]
        encoder.loc_head.weight.copy_(torch.as_tensor(A))
        encoder.loc_head.bias.copy_(torch.as_tensor(-A @ b))
        encoder.log_var_head.weight.zero_()
        encoder.log_var_head.bias.copy_(torch.as_tensor(np.log(sigma**2 / M)))
    decoder = GaussianDecoder(linear, D, "fixed", sigma, dtype=torch.float64)
    return StandardNormalPrior(L).double(), encoder, decoder, W, b


def _draw(W, b, sigma, n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, W.shape[1])) @ W.T + b + sigma * rng.normal(size=(n, W.shape[0]))
    exact = multivariate_normal(b, W @ W.T + sigma**2 * np.eye(len(b))).logpdf(X)
    return torch.as_tensor(X), np.atleast_1d(exact)


def _small_vae(likelihood="bernoulli", seed=0, D=12):
    torch.manual_seed(seed)
    prior, encoder, decoder = build_vae_modules(D, 3, likelihood, (8,), uses_mask=True,
                                                dtype=torch.float64)
    x = (torch.rand(5, D, dtype=torch.float64) > 0.5).double()
    return prior, encoder, decoder, x


# ------------------------------------------------------------------------------- KL
def test_analytic_kl_equals_monte_carlo_estimate():
    torch.manual_seed(0)
    q = Independent(Normal(torch.randn(4, 3, dtype=torch.float64),
                           torch.rand(4, 3, dtype=torch.float64) + 0.3), 1)
    for prior in (StandardNormalPrior(3).double(), LearnedGaussianPrior(3).double()):
        if isinstance(prior, LearnedGaussianPrior):
            with torch.no_grad():
                prior.prior_loc.copy_(torch.tensor([0.5, -1.0, 0.2]))
                prior.prior_log_scale.copy_(torch.tensor([0.3, -0.2, 0.0]))
        p = prior()
        gen = torch.Generator().manual_seed(1)
        z = reparameterized_sample(q, 50_000, generator=gen)
        log_ratio = (q.log_prob(z) - p.log_prob(z)).detach()
        mc, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(50_000)
        analytic = kl_divergence(q, p).detach()
        assert torch.all((mc - analytic).abs() <= 4 * se), (mc, analytic, se)
        assert torch.all(analytic > 0.05)


def test_kl_closed_form_against_standard_normal():
    """KL(N(μ, σ²) || N(0, 1)) = ½ Σ (σ² + μ² - 1 - log σ²), computed by hand."""
    mu = np.array([[0.3, -1.2], [2.0, 0.0]])
    sd = np.array([[0.5, 1.5], [1.0, 0.2]])
    q = Independent(Normal(torch.as_tensor(mu), torch.as_tensor(sd)), 1)
    expected = 0.5 * (sd**2 + mu**2 - 1 - np.log(sd**2)).sum(1)
    np.testing.assert_allclose(kl_divergence(q, StandardNormalPrior(2).double()()).numpy(),
                               expected, rtol=1e-12)


def test_elbo_analytic_and_monte_carlo_kl_agree_in_expectation():
    prior, encoder, decoder, x = _small_vae("bernoulli", seed=2)
    gen = torch.Generator().manual_seed(3)
    analytic = elbo(prior, encoder, decoder, x, n_samples=20_000, generator=gen).detach()
    monte_carlo = elbo(prior, encoder, decoder, x, n_samples=20_000, analytic_kl=False,
                       generator=gen).detach()
    np.testing.assert_allclose(analytic.numpy(), monte_carlo.numpy(), atol=0.03)


def test_beta_scales_only_the_kl_term():
    prior, encoder, decoder, x = _small_vae("bernoulli", seed=4)
    values = [elbo(prior, encoder, decoder, x, beta=beta,
                   generator=torch.Generator().manual_seed(5)).detach() for beta in (0.0, 1.0, 3.0)]
    kl = kl_divergence(encoder(x), prior()).detach()
    torch.testing.assert_close(values[0] - values[1], kl, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(values[0] - values[2], 3 * kl, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- chunks and seeds
def test_chunked_importance_sampling_equals_unchunked_and_iwae():
    prior, encoder, decoder, x = _small_vae("bernoulli", seed=6)
    mask = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) > 0.3).double()
    values = [importance_sampling(prior, encoder, decoder, x, mask, n_samples=60, chunk=c,
                                  generator=torch.Generator().manual_seed(7))
              for c in (60, 16, 7, 1)]
    for other in values[1:]:
        torch.testing.assert_close(other, values[0], rtol=0, atol=1e-10)
    bound = iwae_bound(prior, encoder, decoder, x, mask, k=60,
                       generator=torch.Generator().manual_seed(7)).detach()
    torch.testing.assert_close(bound, values[0], rtol=0, atol=1e-10)
    # a different seed gives different draws (the comparison above is not vacuous)
    other_seed = importance_sampling(prior, encoder, decoder, x, mask, n_samples=60,
                                     generator=torch.Generator().manual_seed(8))
    assert torch.all((other_seed - values[0]).abs() > 1e-8)


def test_same_seed_gives_bit_identical_results_and_gradients_flow():
    prior, encoder, decoder, x = _small_vae("gaussian", seed=9)
    x = torch.rand(x.shape, dtype=torch.float64)
    first = iwae_bound(prior, encoder, decoder, x, k=5, generator=torch.Generator().manual_seed(1))
    second = iwae_bound(prior, encoder, decoder, x, k=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(first, second)
    (-first.mean()).backward()
    for module in (encoder, decoder):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


# -------------------------------------------------------------------------- naive MC
def test_naive_monte_carlo_is_close_in_two_dimensions():
    prior, encoder, decoder, W, b = _linear_gaussian(2, 1, 0.7, seed=10)
    x, exact = _draw(W, b, 0.7, 6, seed=11)
    estimate = naive_monte_carlo(prior, decoder, x, n_samples=20_000, chunk=5000,
                                 generator=torch.Generator().manual_seed(12))
    np.testing.assert_allclose(estimate.numpy(), exact, atol=0.03)


def test_naive_monte_carlo_is_unbiased_for_p_of_x():
    """Mean over R replicates of p̂ (n = 5 draws each) equals p(x) within 4 SE."""
    prior, _, decoder, W, b = _linear_gaussian(2, 1, 0.7, seed=13)
    x, exact = _draw(W, b, 0.7, 1, seed=14)
    R = 4000
    log_hat = naive_monte_carlo(prior, decoder, x.expand(R, -1), n_samples=5,
                                generator=torch.Generator().manual_seed(15)).numpy()
    p_hat = np.exp(log_hat)
    assert abs(p_hat.mean() - np.exp(exact[0])) <= 4 * p_hat.std() / math.sqrt(R)
    # while the log of the estimate is biased low (Jensen), by a margin this test resolves
    assert np.mean(log_hat) < exact[0] - 4 * log_hat.std() / math.sqrt(R)


def test_naive_monte_carlo_fails_in_784_dimensions():
    """Seed 001: prior draws almost never explain a 784-dim x; importance sampling does."""
    sigma = 0.3
    prior, encoder, decoder, W, b = _linear_gaussian(784, 10, sigma, seed=16, w_scale=3.0)
    x, exact = _draw(W, b, sigma, 4, seed=17)
    gen = torch.Generator().manual_seed(18)
    naive = naive_monte_carlo(prior, decoder, x, n_samples=1000, chunk=500, generator=gen)
    assert np.all(exact - naive.numpy() > 100.0)           # hundreds of nats too low
    good = importance_sampling(prior, encoder, decoder, x, n_samples=50, generator=gen)
    np.testing.assert_allclose(good.numpy(), exact, atol=1e-8)   # q = exact posterior


# -------------------------------------------------------------- registry and helpers
def test_estimators_registry_dispatches_every_name():
    prior, encoder, decoder, x = _small_vae("bernoulli", seed=19)
    assert set(ESTIMATORS) == {"elbo", "iwae", "importance", "naive"}
    out = {name: estimate_log_px(name, prior, encoder, decoder, x, n_samples=400,
                                 generator=torch.Generator().manual_seed(20))
           for name in ESTIMATORS}
    for value in out.values():
        assert value.shape == (5,) and not value.requires_grad
    torch.testing.assert_close(out["iwae"], out["importance"], rtol=0, atol=0)
    assert torch.all(out["elbo"] <= out["importance"] + 0.05)
    with pytest.raises(InvalidParameterError, match="method must be one of"):
        estimate_log_px("exact", prior, encoder, decoder, x)


def test_bits_per_dim():
    log_px = torch.tensor([-784 * math.log(2.0), -2 * 784 * math.log(2.0)])
    torch.testing.assert_close(bits_per_dim(log_px, 784), torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(bits_per_dim(log_px, torch.tensor([392, 784])),
                               torch.tensor([2.0, 2.0]))


@pytest.mark.parametrize("kwargs, name", [
    ({"k": 0}, "k"), ({"k": 2.5}, "k"), ({"k": True}, "k"),
])
def test_iwae_rejects_bad_k(kwargs, name):
    prior, encoder, decoder, x = _small_vae()
    with pytest.raises(InvalidParameterError, match=name):
        iwae_bound(prior, encoder, decoder, x, **kwargs)


def test_bad_options_are_rejected():
    prior, encoder, decoder, x = _small_vae()
    with pytest.raises(InvalidParameterError, match="beta"):
        elbo(prior, encoder, decoder, x, beta=-1.0)
    with pytest.raises(InvalidParameterError, match="n_samples"):
        elbo(prior, encoder, decoder, x, n_samples=0)
    with pytest.raises(InvalidParameterError, match="chunk"):
        importance_sampling(prior, encoder, decoder, x, n_samples=10, chunk=0)
    laplace = Independent(Laplace(torch.zeros(2, 3), torch.ones(2, 3)), 1)
    with pytest.raises(InvalidParameterError, match="generator"):
        reparameterized_sample(laplace, 3, generator=torch.Generator())
    assert reparameterized_sample(laplace, 3).shape == (3, 2, 3)   # global RNG path works


def test_float32_by_default():
    torch.manual_seed(0)
    prior, encoder, decoder = build_vae_modules(10, 2, "gaussian", (6,))
    x = torch.rand(4, 10)
    assert elbo(prior, encoder, decoder, x).dtype == torch.float32
    assert importance_sampling(prior, encoder, decoder, x, n_samples=20).dtype == torch.float32
