"""A linear-Gaussian VAE is a PPCA: its log p(x) is exact, so the bounds have a truth.

Decoder x = W z + b + ε, ε ~ N(0, σ² I), prior z ~ N(0, I):
    log p(x) = log N(x; b, W Wᵀ + σ² I)                     (scipy.stats.multivariate_normal)
    p(z | x) = N(M⁻¹ Wᵀ (x - b), σ² M⁻¹),  M = Wᵀ W + σ² I  (the exact posterior)
With some entries missing, the same holds with W, b, x restricted to the observed rows.
Everything in float64.
"""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal

from latentkit.deep.blocks import GaussianEncoder, StandardNormalPrior
from latentkit.deep.likelihoods import GaussianDecoder
from latentkit.deep.objectives import (
    elbo,
    importance_sampling,
    iwae_bound,
    log_importance_weights,
)

D, L, SIGMA = 6, 2, 0.5


def _ppca(seed=0, orthogonal=True):
    """W : (D, L) (orthogonal columns when asked, so the exact posterior is diagonal), b : (D,)."""
    rng = np.random.default_rng(seed)
    if orthogonal:
        q, _ = np.linalg.qr(rng.normal(size=(D, L)))
        W = q * np.array([2.0, 1.2])
    else:
        W = rng.normal(size=(D, L))
    return W, rng.normal(size=D)


def _decoder(W, b):
    linear = nn.Linear(L, D).double()
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(W))
        linear.bias.copy_(torch.as_tensor(b))
    return GaussianDecoder(linear, D, sigma="fixed", sigma_init=SIGMA, dtype=torch.float64)


def _exact_log_px(W, b, X):
    """log N(x; b, W Wᵀ + σ² I) per row: (B,)."""
    cov = W @ W.T + SIGMA**2 * np.eye(D)
    return multivariate_normal(b, cov).logpdf(X)


def _exact_log_px_observed(W, b, X, observed):
    """log N(x_o; b_o, W_o W_oᵀ + σ² I) per row, row by row over its own pattern: (B,)."""
    out = []
    for x, m in zip(X, observed.astype(bool)):
        W_o = W[m]
        out.append(multivariate_normal(b[m], W_o @ W_o.T + SIGMA**2 * np.eye(m.sum()))
                   .logpdf(x[m]))
    return np.array(out)


def _data(W, b, n=8, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, L)) @ W.T + b + SIGMA * rng.normal(size=(n, D))


def _posterior_encoder(W, b):
    """A GaussianEncoder (linear heads) at the exact posterior; W with orthogonal columns."""
    M = W.T @ W + SIGMA**2 * np.eye(L)
    assert np.allclose(M, np.diag(np.diag(M)))   # test precondition: a diagonal posterior
    A = np.linalg.solve(M, W.T)                   # M⁻¹ Wᵀ : (L, D)
    encoder = GaussianEncoder(nn.Identity(), D, L).double()
    with torch.no_grad():
        encoder.loc_head.weight.copy_(torch.as_tensor(A))
        encoder.loc_head.bias.copy_(torch.as_tensor(-A @ b))
        encoder.log_var_head.weight.zero_()
        encoder.log_var_head.bias.copy_(torch.as_tensor(np.log(SIGMA**2 / np.diag(M))))
    return encoder


class _ObservedPosterior(nn.Module):
    """The exact posterior of the observed part, a full-covariance Gaussian per row.

    imperfect=True gives a proposal that is not the posterior: a diagonal Gaussian whose
    sd is 1.5 times the posterior marginal sd, its mean shifted by 0.5 of that sd.
    """

    def __init__(self, W, b, imperfect=False):
        super().__init__()
        self.W, self.b, self.imperfect = torch.as_tensor(W), torch.as_tensor(b), imperfect

    def forward(self, x, observed=None):
        observed = torch.ones_like(x) if observed is None else observed
        locs, trils = [], []
        for row, m in zip(x, observed.bool()):
            W_o = self.W[m]
            M = W_o.T @ W_o + SIGMA**2 * torch.eye(L, dtype=torch.float64)
            locs.append(torch.linalg.solve(M, W_o.T @ (row[m] - self.b[m])))
            trils.append(torch.linalg.cholesky(SIGMA**2 * torch.linalg.inv(M)))
        loc, tril = torch.stack(locs), torch.stack(trils)
        if not self.imperfect:
            return MultivariateNormal(loc, scale_tril=tril)
        sd = tril.pow(2).sum(-1).sqrt()               # marginal posterior sd : (B, L)
        return Independent(Normal(loc + 0.5 * sd, 1.5 * sd), 1)


def _random_encoder(seed=3, uses_mask=False):
    torch.manual_seed(seed)
    return GaussianEncoder(nn.Identity(), 2 * D if uses_mask else D, L, uses_mask).double()


def test_exact_posterior_makes_every_elbo_draw_equal_log_px():
    W, b = _ppca()
    X = _data(W, b)
    exact = _exact_log_px(W, b, X)
    prior, decoder = StandardNormalPrior(L).double(), _decoder(W, b)
    encoder = _posterior_encoder(W, b)
    x = torch.as_tensor(X)
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):   # zero variance: each single-draw ELBO (Monte Carlo KL) is log p(x)
        value = elbo(prior, encoder, decoder, x, analytic_kl=False, generator=gen)
        np.testing.assert_allclose(value.detach().numpy(), exact, rtol=0, atol=1e-10)
    log_w = log_importance_weights(prior, encoder, decoder, x, n_samples=50, generator=gen)
    np.testing.assert_allclose(log_w.detach().numpy(), np.broadcast_to(exact, (50, len(X))),
                               rtol=0, atol=1e-10)
    iwae = iwae_bound(prior, encoder, decoder, x, k=50, generator=gen)
    np.testing.assert_allclose(iwae.detach().numpy(), exact, rtol=0, atol=1e-10)


def test_exact_posterior_elbo_with_analytic_kl_matches_in_expectation():
    W, b = _ppca()
    X = _data(W, b)
    prior, decoder = StandardNormalPrior(L).double(), _decoder(W, b)
    encoder = _posterior_encoder(W, b)
    gen = torch.Generator().manual_seed(1)
    value = elbo(prior, encoder, decoder, torch.as_tensor(X), n_samples=40_000, generator=gen)
    # the reconstruction term's draw-to-draw sd is ~1 nat here: SE ~ 0.005; tolerance 0.03.
    np.testing.assert_allclose(value.detach().numpy(), _exact_log_px(W, b, X), atol=0.03)


@pytest.mark.parametrize("orthogonal", [True, False])
@pytest.mark.parametrize("encoder_kind", ["random", "imperfect"])
def test_bounds_are_ordered_for_an_arbitrary_encoder(orthogonal, encoder_kind):
    """E[ELBO] <= E[IWAE_5] <= E[IWAE_50] <= log p(x), each mean over R independent draws.

    "random": a GaussianEncoder at its random initialisation (gaps of 1-100 nats);
    "imperfect": a shifted, over-dispersed posterior (gaps of a fraction of a nat).
    """
    W, b = _ppca(seed=2, orthogonal=orthogonal)
    X = _data(W, b, n=6, seed=4)
    exact = _exact_log_px(W, b, X)
    encoder = _random_encoder() if encoder_kind == "random" else _ObservedPosterior(W, b, True)
    prior, decoder = StandardNormalPrior(L).double(), _decoder(W, b)
    x, gen, R = torch.as_tensor(X), torch.Generator().manual_seed(2), 1000
    with torch.no_grad():
        log_w = log_importance_weights(prior, encoder, decoder, x, n_samples=R * 50,
                                       generator=gen).numpy()
    means, ses = {}, {}
    for k in (1, 5, 50):   # IWAE_1 is the ELBO with a Monte Carlo KL
        bound = torch.logsumexp(torch.as_tensor(log_w[: R * k]).reshape(R, k, -1), 1).numpy()
        bound = bound - math.log(k)
        means[k], ses[k] = bound.mean(0), bound.std(0) / math.sqrt(R)
    elbo_value = elbo(prior, encoder, decoder, x, n_samples=R, generator=gen).detach().numpy()
    tol = lambda a, c: 4 * np.hypot(ses[a], ses[c])  # noqa: E731  4 standard errors
    # the analytic-KL ELBO and IWAE_1 estimate one quantity: equal within 4 SE + 0.05
    assert np.all(np.abs(elbo_value - means[1]) <= 4 * ses[1] + 0.05)
    assert np.all(means[1] <= means[5] + tol(1, 5))
    assert np.all(means[5] <= means[50] + tol(5, 50))
    assert np.all(means[50] <= exact + 4 * ses[50])
    # q is not the posterior: the gaps are real (more than 4 SE), so the test can fail
    assert np.all(means[50] - means[1] > tol(1, 50))
    assert np.all(exact - means[1] > 4 * ses[1])


def test_importance_sampling_with_5000_samples_reaches_exact_log_px():
    W, b = _ppca(seed=5, orthogonal=False)
    X = _data(W, b, n=10, seed=6)
    prior, decoder = StandardNormalPrior(L).double(), _decoder(W, b)
    encoder = _ObservedPosterior(W, b, imperfect=True)
    gen = torch.Generator().manual_seed(3)
    estimate = importance_sampling(prior, encoder, decoder, torch.as_tensor(X), n_samples=5000,
                                   chunk=500, generator=gen)
    exact = _exact_log_px(W, b, X)
    np.testing.assert_allclose(estimate.numpy(), exact, atol=0.05)
    one = elbo(prior, encoder, decoder, torch.as_tensor(X), n_samples=500, generator=gen)
    assert np.all(exact - one.detach().numpy() > 0.3)   # while the ELBO stays well below


def _missing(X, seed=8):
    rng = np.random.default_rng(seed)
    observed = (rng.random(X.shape) > 0.35).astype(float)
    observed[:, 0] = 1.0          # at least one observed entry per row
    X_nan = np.where(observed > 0, X, np.nan)
    return X_nan, observed


def test_masked_elbo_with_observed_posterior_equals_exact_marginal():
    W, b = _ppca(seed=9, orthogonal=False)
    X_nan, observed = _missing(_data(W, b, n=12, seed=10))
    exact = _exact_log_px_observed(W, b, X_nan, observed)
    assert np.all(np.isfinite(exact))
    prior, decoder = StandardNormalPrior(L).double(), _decoder(W, b)
    encoder = _ObservedPosterior(W, b)
    mask = torch.as_tensor(observed)
    gen = torch.Generator().manual_seed(4)
    for placeholder in (0.0, 123.0):   # the value at a missing entry must not matter
        x = torch.as_tensor(np.where(observed > 0, X_nan, placeholder))
        value = elbo(prior, encoder, decoder, x, mask, generator=gen)  # KL falls back to MC
        np.testing.assert_allclose(value.detach().numpy(), exact, rtol=0, atol=1e-10)
    full = _exact_log_px(W, b, np.nan_to_num(X_nan))
    assert np.all(np.abs(full - exact) > 0.1)    # ignoring the mask would be detected


def test_masked_importance_estimate_converges_to_exact_marginal():
    W, b = _ppca(seed=11, orthogonal=False)
    X_nan, observed = _missing(_data(W, b, n=10, seed=12), seed=13)
    exact = _exact_log_px_observed(W, b, X_nan, observed)
    prior, decoder = StandardNormalPrior(L).double(), _decoder(W, b)
    encoder = _ObservedPosterior(W, b, imperfect=True)
    x, mask = torch.as_tensor(np.nan_to_num(X_nan)), torch.as_tensor(observed)
    gen = torch.Generator().manual_seed(5)
    estimate = importance_sampling(prior, encoder, decoder, x, mask, n_samples=5000,
                                   chunk=1000, generator=gen)
    np.testing.assert_allclose(estimate.numpy(), exact, atol=0.05)
    bound = elbo(prior, encoder, decoder, x, mask, n_samples=2000, generator=gen)
    assert np.all(bound.detach().numpy() <= exact + 0.01)
