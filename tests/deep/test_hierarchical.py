"""The hierarchical VAE module: a VAE when L = 1, exact truths on a linear-Gaussian 2-layer
model, Monte Carlo properties of the bounds with stated tolerances, masks, gradients, training.

Linear-Gaussian truth (float64): z_2 ~ N(0, I), z_1 = B z_2 + b + δ, δ ~ N(0, Δ),
x = A z_1 + a + ε, ε ~ N(0, σ² I), so with C = B Bᵀ + Δ

    x ~ N(A b + a, A C Aᵀ + σ² I)
    p(z_1 | x) = N(S_1 (C⁻¹ b + Aᵀ (x - a) / σ²), S_1),   S_1 = (C⁻¹ + Aᵀ A / σ²)⁻¹
    p(z_2 | z_1, x) = p(z_2 | z_1) = N(S_2 Bᵀ Δ⁻¹ (z_1 - b), S_2),  S_2 = (I + Bᵀ Δ⁻¹ B)⁻¹

(z_2 ⊥ x given z_1), so q at these posteriors makes every log-weight equal log p(x).
"""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from latentkit.deep.blocks import build_vae_modules
from latentkit.deep.hierarchical import HierarchicalVAEModule
from latentkit.deep.module import VAEModule
from latentkit.deep.objectives import chunked_log_mean_exp
from latentkit.deep.objectives import elbo as vae_elbo
from latentkit.exceptions import InvalidParameterError

D, D1, D2, SIGMA = 5, 3, 2, 0.5


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _binary(n, d, seed):
    return torch.from_numpy((np.random.default_rng(seed).random((n, d)) < 0.4).astype(float))


# ------------------------------------------------------------------- linear-Gaussian model
def _set(head, weight, bias):
    head.weight.copy_(torch.as_tensor(weight))
    head.bias.copy_(torch.as_tensor(bias))


def _linear_model(structured: bool, inflate: float = 1.0, seed: int = 0):
    """(module, exact log p(x) function, (A, a, B, b, Δ)); q at the posteriors' diagonals,
    scales × inflate. structured: A with orthogonal columns, B on the axes, Δ = δ² I, so the
    exact posteriors are diagonal and q is exact when inflate = 1."""
    rng = np.random.default_rng(seed)
    if structured:
        A = np.linalg.qr(rng.normal(size=(D, D1)))[0] * np.array([1.5, 1.0, 0.7])
        B = np.array([[1.2, 0.0], [0.0, 0.8], [0.0, 0.0]])
        delta2 = np.full(D1, 0.3)
    else:
        A, B = 0.5 * rng.normal(size=(D, D1)), 0.6 * rng.normal(size=(D1, D2))
        delta2 = rng.uniform(0.2, 0.6, D1)
    a, b = rng.normal(size=D), rng.normal(size=D1)
    C = B @ B.T + np.diag(delta2)
    S1 = np.linalg.inv(np.linalg.inv(C) + A.T @ A / SIGMA**2)
    S2 = np.linalg.inv(np.eye(D2) + B.T @ (B / delta2[:, None]))
    G2 = S2 @ B.T / delta2                                     # S_2 Bᵀ Δ⁻¹ : (D2, D1)
    module = HierarchicalVAEModule(D, (D1, D2), hidden=(), likelihood="gaussian",
                                   sigma="fixed", sigma_init=SIGMA, dtype=torch.float64)
    with torch.no_grad():
        _set(module.decoder.net[0], A, a)
        _set(module.generative[0].loc_head, B, b)
        _set(module.generative[0].log_var_head, np.zeros((D1, D2)), np.log(delta2))
        _set(module.encoder.loc_head, S1 @ A.T / SIGMA**2,
             S1 @ (np.linalg.solve(C, b) - A.T @ a / SIGMA**2))
        _set(module.encoder.log_var_head, np.zeros((D1, D)), np.log(np.diag(S1) * inflate**2))
        _set(module.inference[0].loc_head, G2, -G2 @ b)
        _set(module.inference[0].log_var_head, np.zeros((D2, D1)),
             np.log(np.diag(S2) * inflate**2))
    mean, cov = A @ b + a, A @ C @ A.T + SIGMA**2 * np.eye(D)

    def exact(X, observed=None):
        if observed is None:
            return multivariate_normal(mean, cov).logpdf(X)
        return np.array([multivariate_normal(mean[m], cov[np.ix_(m, m)]).logpdf(x[m])
                         for x, m in zip(X, observed.astype(bool))])

    X = rng.multivariate_normal(mean, cov, size=6)
    return module, exact, torch.from_numpy(X)


def test_exact_posterior_makes_every_log_weight_log_px():
    module, exact, x = _linear_model(structured=True)
    log_w = module.log_weights(x, n_samples=20, generator=_gen(0)).detach().numpy()
    np.testing.assert_allclose(log_w, np.broadcast_to(exact(x.numpy()), log_w.shape),
                               atol=1e-9, rtol=0)


def test_importance_sampling_converges_to_exact_marginal():
    """Dense A, B: q is only the posteriors' diagonal (scales × 1.2; effective sample size
    ~50%). k = 5000, chunked; tolerance 0.05 nats (errors over eight seeds: at most 0.032)."""
    module, exact, x = _linear_model(structured=False, inflate=1.2)
    est = module.log_px("importance", x, n_samples=5000, chunk=500, generator=_gen(1))
    np.testing.assert_allclose(est.numpy(), exact(x.numpy()), atol=0.05, rtol=0)


def test_naive_estimator_converges_in_low_dimension():
    """Top-down prior draws: in D = 5 the naive estimate is usable at n = 50000; tolerance
    0.15 nats (errors over eight seeds: at most 0.075; at n = 5000 up to 0.18)."""
    module, exact, x = _linear_model(structured=False)
    est = module.log_px("naive", x, n_samples=50000, chunk=5000, generator=_gen(2))
    np.testing.assert_allclose(est.numpy(), exact(x.numpy()), atol=0.15, rtol=0)


def test_every_estimator_is_below_exact_in_expectation():
    """Mean over R = 300 repeats of ELBO, IWAE_10 and naive_10 <= log p(x) + 3 standard
    errors, and the gaps are ordered ELBO < IWAE_10 (Jensen)."""
    module, exact, x = _linear_model(structured=False, inflate=1.3)
    truth, R, k = exact(x.numpy()), 300, 10
    with torch.no_grad():
        log_w = module.log_weights(x, n_samples=R * k, generator=_gen(3)).reshape(R, k, -1)
        elbo = module.elbo(x, n_samples=R, generator=_gen(4)).numpy()
    iwae = (torch.logsumexp(log_w, 1) - math.log(k)).numpy()            # (R, B)
    naive = np.stack([module.log_px("naive", x, n_samples=k, generator=g).numpy()
                      for g in [_gen(100 + r) for r in range(R)]])
    for name, draws in (("iwae", iwae), ("naive", naive)):
        se = draws.std(0) / math.sqrt(R)
        assert np.all(draws.mean(0) <= truth + 3 * se), name
    assert np.all(elbo <= truth)      # the ELBO's Monte Carlo error (~0.05) is below its gap
    assert np.all(elbo < iwae.mean(0))


def test_masked_importance_sampling_converges_to_exact_marginal_of_observed():
    """Missing entries (placeholder 0, which the encoder sees: a poorer proposal, scales
    × 1.5) are marginalized: k = 5000 against log N(x_o; mean_o, cov_oo); tolerance 0.1 nats
    (errors over six seeds: at most 0.05)."""
    module, exact, x = _linear_model(structured=False, inflate=1.5)
    observed = np.ones(x.shape)
    observed[np.arange(6), np.arange(6) % D] = 0
    observed[0, 3] = 0
    obs = torch.from_numpy(observed)
    est = module.log_px("importance", x * obs, obs, n_samples=5000, chunk=500,
                        generator=_gen(5))
    np.testing.assert_allclose(est.numpy(), exact(x.numpy(), observed), atol=0.1, rtol=0)


# ------------------------------------------------------------------------ L = 1: a VAE
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_one_layer_equals_vae_module(likelihood):
    vae = VAEModule(*build_vae_modules(7, 3, likelihood, (8,), uses_mask=True,
                                       dtype=torch.float64))
    module = HierarchicalVAEModule(7, (3,), (8,), likelihood, uses_mask=True,
                                   dtype=torch.float64)
    module.load_state_dict(vae.state_dict())                 # same keys, strict
    x, obs = _binary(5, 7, 0), torch.ones(5, 7, dtype=torch.float64)
    obs[0, 2] = obs[3, 5] = 0
    x = x * obs
    for got, want in [
        (module.log_weights(x, obs, n_samples=4, generator=_gen(0)),
         vae.log_weights(x, obs, n_samples=4, generator=_gen(0))),
        (module.iwae(x, obs, k=6, generator=_gen(1)), vae.iwae(x, obs, k=6, generator=_gen(1))),
        (module.elbo(x, obs, beta=0.5, n_samples=3, generator=_gen(2)),
         vae_elbo(vae.prior, vae.encoder, vae.decoder, x, obs, beta=0.5, n_samples=3,
                  analytic_kl=False, generator=_gen(2))),
        (module.log_px("naive", x, obs, n_samples=30, chunk=7, generator=_gen(3)),
         vae.log_px("naive", x, obs, n_samples=30, chunk=7, generator=_gen(3))),
        (module.decode_mean(torch.ones(2, 3, dtype=torch.float64)),
         vae.decode_mean(torch.ones(2, 3, dtype=torch.float64))),
        (module.posterior(x, obs).mean, vae.posterior(x, obs).mean),
    ]:
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)


def test_one_layer_monte_carlo_kl_matches_the_analytic_elbo():
    """β-scaled Monte Carlo KL against VAEModule's analytic KL: n = 20000, 0.05 nats."""
    vae = VAEModule(*build_vae_modules(7, 3, "bernoulli", (8,), dtype=torch.float64))
    module = HierarchicalVAEModule(7, (3,), (8,), dtype=torch.float64)
    module.load_state_dict(vae.state_dict())
    x = _binary(4, 7, 0)
    with torch.no_grad():
        for beta in (1.0, 2.5):
            got = module.elbo(x, beta=beta, n_samples=20000, generator=_gen(0))
            want = vae.elbo(x, beta=beta, n_samples=20000, generator=_gen(0))
            torch.testing.assert_close(got, want, atol=0.05, rtol=0)


# -------------------------------------------------------------- draws and estimators
def _small(ladder=False, **kwargs):
    torch.manual_seed(0)
    return HierarchicalVAEModule(12, (4, 3, 2), (16,), ladder=ladder, dtype=torch.float64,
                                 **kwargs)


@pytest.mark.parametrize("ladder", [False, True])
def test_log_weights_reproducible_and_chunk_invariant(ladder):
    module, x = _small(ladder), _binary(3, 12, 0)
    first = module.log_weights(x, n_samples=50, generator=_gen(7))
    assert torch.equal(first, module.log_weights(x, n_samples=50, generator=_gen(7)))
    assert not torch.equal(first, module.log_weights(x, n_samples=50, generator=_gen(8)))
    iwae = module.iwae(x, k=50, generator=_gen(7)).detach()
    chunked = module.log_px("importance", x, n_samples=50, chunk=7, generator=_gen(7))
    torch.testing.assert_close(chunked, iwae, atol=1e-12, rtol=0)
    torch.testing.assert_close(module.log_px("iwae", x, n_samples=50, chunk=50,
                                             generator=_gen(7)), iwae, atol=1e-12, rtol=0)


@pytest.mark.parametrize("ladder", [False, True])
def test_iwae_increases_with_k_and_bounds_the_elbo(ladder):
    """Untrained 3-layer model: E[IWAE_k] estimated over R = 400 repeats for k = 1, 4, 16;
    each step up in k must exceed 3 standard errors of the difference; E[IWAE_1] = ELBO."""
    module, x, R = _small(ladder), _binary(4, 12, 1), 400
    with torch.no_grad():
        log_w = module.log_weights(x, n_samples=R * 16, generator=_gen(0))
        elbo = module.elbo(x, n_samples=R * 16, generator=_gen(1))
    means, ses = [], []
    for k in (1, 4, 16):
        draws = torch.logsumexp(log_w.reshape(R * 16 // k, k, -1), 1) - math.log(k)
        means.append(draws.mean(0))
        ses.append(draws.std(0) / math.sqrt(draws.shape[0]))
    for lo, hi in ((0, 1), (1, 2)):
        assert torch.all(means[hi] - means[lo] > 3 * torch.sqrt(ses[lo]**2 + ses[hi]**2))
    torch.testing.assert_close(elbo, means[0], atol=float(4 * ses[0].max()), rtol=0)
    assert torch.all(elbo < means[1])


def test_chunked_log_mean_exp_equals_one_logsumexp():
    terms = torch.randn(23, 4, generator=_gen(0), dtype=torch.float64) * 30
    stream = iter(terms.split([5, 5, 5, 5, 3]))
    got = chunked_log_mean_exp(lambda size: next(stream), 23, chunk=5)
    torch.testing.assert_close(got, torch.logsumexp(terms, 0) - math.log(23))


# ------------------------------------------------------------------------- masks
@pytest.mark.parametrize("ladder", [False, True])
def test_missing_values_change_nothing(ladder):
    """With the mask as encoder input, any value in a missing entry gives the same weights."""
    module, x = _small(ladder, uses_mask=True), _binary(4, 12, 2)
    observed = torch.ones_like(x)
    observed[:, :5] = 0
    other = x.clone()
    other[:, :5] = 1 - other[:, :5]
    log_w = module.log_weights(x, observed, n_samples=10, generator=_gen(0))
    torch.testing.assert_close(
        module.log_weights(other, observed, n_samples=10, generator=_gen(0)), log_w,
        atol=0, rtol=0)
    full = module.log_weights(other, None, n_samples=10, generator=_gen(0))
    assert not torch.allclose(full, log_w)          # the mask is really used


# --------------------------------------------------------------- gradients, training
@pytest.mark.parametrize("ladder", [False, True])
def test_gradients_reach_every_parameter(ladder):
    module = _small(ladder, likelihood="gaussian", sigma="per_dim", uses_mask=True)
    x = torch.randn(6, 12, generator=_gen(0), dtype=torch.float64)
    observed = (torch.rand(6, 12, generator=_gen(1)) > 0.2).to(x.dtype)
    loss = -(module.elbo(x * observed, observed, n_samples=2, generator=_gen(2))
             + module.iwae(x * observed, observed, k=3, generator=_gen(3))).mean()
    loss.backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    if ladder:
        assert len(module.deterministic) == 2


def test_training_improves_the_elbo():
    """150 Adam steps on 64 noisy copies of two binary prototypes (5% flips), full batch:
    the ELBO (n = 200 draws, fixed seed) rises by more than 3 nats per row (observed: from
    -9.3 to -2.9)."""
    rng = np.random.default_rng(0)
    prototypes = rng.random((2, 12)) < 0.5
    X = prototypes[rng.integers(0, 2, 64)] ^ (rng.random((64, 12)) < 0.05)
    x = torch.from_numpy(X.astype(np.float32))
    torch.manual_seed(0)
    module = HierarchicalVAEModule(12, (4, 2), (16,), activation="tanh")
    with torch.no_grad():
        before = module.elbo(x, n_samples=200, generator=_gen(0)).mean()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    generator = _gen(1)
    for _ in range(150):
        optimizer.zero_grad()
        (-module.elbo(x, generator=generator).mean()).backward()
        optimizer.step()
    with torch.no_grad():
        after = module.elbo(x, n_samples=200, generator=_gen(0)).mean()
    assert after > before + 3, (before, after)


# ------------------------------------------------------------ architecture, options
def test_burda_two_layer_architecture_is_expressible():
    """Burda et al.'s MNIST model: 784-200-200-z1(100)-100-100-z2(50), tanh, and back."""
    module = HierarchicalVAEModule(784, (100, 50), ((200, 200), (100, 100)))

    def widths(seq):
        return [(m.in_features, m.out_features) for m in seq if isinstance(m, torch.nn.Linear)]

    assert widths(module.encoder.body) == [(784, 200), (200, 200)]
    assert module.encoder.loc_head.out_features == 100
    assert widths(module.inference[0].body) == [(100, 100), (100, 100)]
    assert module.inference[0].loc_head.out_features == 50
    assert widths(module.generative[0].body) == [(50, 100), (100, 100)]
    assert module.generative[0].loc_head.out_features == 100
    assert widths(module.decoder.net) == [(100, 200), (200, 200), (200, 784)]
    assert isinstance(module.encoder.body[1], torch.nn.Tanh)
    x, z = module.sample(3, _gen(0))
    assert x.shape == (3, 784) and z.shape == (3, 100)
    assert module.log_weights(x, n_samples=2, generator=_gen(1)).shape == (2, 3)


def test_categorical_and_dtype():
    module = HierarchicalVAEModule(6, (3, 2), (8,), likelihood="categorical", n_levels=4)
    assert all(p.dtype == torch.float32 for p in module.parameters())
    x = torch.tensor([[0.0, 1 / 3, 2 / 3, 1.0, 0.0, 1.0]])
    assert module.elbo(x, n_samples=2).shape == (1,)
    assert module.decode_mean(torch.zeros(2, 3)).shape == (2, 6)


@pytest.mark.parametrize("kwargs, match", [
    ({"latent_dims": ()}, "latent_dims"),
    ({"latent_dims": 4}, "latent_dims"),
    ({"latent_dims": (4, 0)}, "latent_dims"),
    ({"hidden": ((8,), (8,), (8,))}, "hidden per layer"),
    ({"hidden": ((8,), 8)}, "hidden per layer"),
    ({"likelihood": "poisson"}, "likelihood"),
])
def test_bad_parameters_are_refused(kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        HierarchicalVAEModule(6, **{"latent_dims": (3, 2), **kwargs})


def test_bad_method_and_counts_are_refused():
    module, x = _small(), _binary(2, 12, 0)
    with pytest.raises(InvalidParameterError, match="method"):
        module.log_px("exact", x, n_samples=5)
    with pytest.raises(InvalidParameterError, match="n_samples"):
        module.log_weights(x, n_samples=0)
    with pytest.raises(InvalidParameterError, match="beta"):
        module.elbo(x, beta=-1.0)
    with pytest.raises(InvalidParameterError, match="k"):
        module.iwae(x, k=0)


def test_importance_latents_are_the_first_layer_with_the_hierarchy_weights():
    """Imputation's view of the module: z_1 draws and log w equal to log_weights on the
    same generator state."""
    from latentkit.deep.hierarchical import HierarchicalVAEModule

    torch.manual_seed(0)
    module = HierarchicalVAEModule(6, latent_dims=(3, 2), hidden=(8,))
    x = (torch.rand(5, 6) < 0.5).float()
    z_1, log_w = module.importance_latents(x, n_samples=7,
                                           generator=torch.Generator().manual_seed(1))
    same = module.log_weights(x, n_samples=7, generator=torch.Generator().manual_seed(1))
    assert z_1.shape == (7, 5, 3)
    torch.testing.assert_close(log_w, same, rtol=0, atol=0)
