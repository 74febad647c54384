"""VQ-VAE (issue 15, part 3): straight-through gradients, EMA updates by hand, dead-code
restarts, perplexity, the fitted prior, the bound, persistence and exact resume."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from latentkit import load
from latentkit.deep.codebook import Codebook, perplexity, straight_through
from latentkit.deep.vqvae import VQVAE, vq_terms
from latentkit.exceptions import InvalidParameterError

SMALL = dict(hidden=(32,), batch_size=50, random_state=0, verbose=False, device="cpu")


def prototypes(n=300, D=16, seed=0, flip=0.03):
    """Binary rows: 4 prototype patterns with 3% of the pixels flipped."""
    rng = np.random.default_rng(seed)
    patterns = (rng.random((4, D)) < 0.5)
    X = patterns[rng.integers(4, size=n)] ^ (rng.random((n, D)) < flip)
    return X.astype(np.float32)


def fit_quietly(model, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the prior's EM may stop early on tiny data
        return model.fit(X, **kwargs)


# ------------------------------------------------------------------------ the codebook
@pytest.mark.parametrize("update", ["ema", "loss"])
def test_the_gradient_path_is_exactly_straight_through(update):
    """The gradient reaching z_e is the gradient at the decoder's input z_st, bit for bit;
    the forward value is the nearest code (brute force); no reconstruction gradient
    reaches the codes."""
    torch.manual_seed(0)
    codebook = Codebook(5, 3, update).eval()
    z_e = torch.randn(4, 2, 3, requires_grad=True)
    z_q, indices, _ = codebook(z_e)
    z_st = straight_through(z_e, z_q)
    z_st.retain_grad()
    weights = torch.randn(4, 2, 3)
    (torch.sin(z_st) * weights).sum().backward()
    assert torch.equal(z_e.grad, z_st.grad)
    torch.testing.assert_close(z_e.grad, torch.cos(z_st.detach()) * weights, rtol=0, atol=0)
    codes = codebook.embedding.detach()
    for b, l in itertools.product(range(4), range(2)):
        distances = [float(((z_e[b, l].detach() - codes[k]) ** 2).sum()) for k in range(5)]
        assert indices[b, l] == int(np.argmin(distances))
        torch.testing.assert_close(z_st[b, l].detach(), codes[indices[b, l]])
    if update == "loss":
        assert codebook.embedding.grad is None  # the straight-through path skips the codes


def test_commitment_and_codebook_terms_send_their_gradients_to_one_side_each():
    """d/dz_e β‖z_e - sg[z_q]‖² = 2β (z_e - z_q), nothing to the codes; the codebook term
    ‖sg[z_e] - z_q‖² sends -2 (z_e - z_q) to the codes only."""
    torch.manual_seed(1)
    z_e = torch.randn(2, 3, 4, requires_grad=True)
    z_q = torch.randn(2, 3, 4, requires_grad=True)
    commitment, codebook = vq_terms(torch.zeros(2), z_e, z_q)
    commitment.sum().backward()
    torch.testing.assert_close(z_e.grad, 2 * (z_e - z_q).detach())
    assert z_q.grad is None
    z_e.grad = None
    codebook.sum().backward()
    torch.testing.assert_close(z_q.grad, -2 * (z_e - z_q).detach())
    assert z_e.grad is None


def test_ema_update_equals_a_hand_computation():
    """γ = 0.9, ε = 0.1, codes (0, 0), (1, 0), (0, 5); five rows, three nearest code 0,
    two code 1, none code 2 (written out below)."""
    codebook = Codebook(3, 2, "ema", decay=0.9, epsilon=0.1, dead_code_threshold=0.0)
    start = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    codebook.embedding.copy_(start)
    codebook.embedding_sum.copy_(start)
    z = torch.tensor([[0.1, 0.0], [0.2, 0.1], [0.9, 0.1], [1.2, -0.1], [-0.1, 0.1]])
    z_q, indices, stats = codebook.train()(z)
    assert indices.tolist() == [0, 0, 1, 1, 0]
    torch.testing.assert_close(z_q, start[[0, 0, 1, 1, 0]])  # quantized before the update
    # N = 0.9 * 1 + 0.1 * (3, 2, 0);  m = 0.9 e + 0.1 (sums (0.2, 0.2), (2.1, 0.0), (0, 0))
    sizes = [1.2, 1.1, 0.9]
    sums = [[0.02, 0.02], [1.11, 0.0], [0.0, 4.5]]
    total = sum(sizes)  # 3.2
    smoothed = [(n + 0.1) / (total + 3 * 0.1) * total for n in sizes]
    expected = [[m / s for m in row] for row, s in zip(sums, smoothed)]
    torch.testing.assert_close(codebook.cluster_size, torch.tensor(sizes))
    torch.testing.assert_close(codebook.embedding_sum, torch.tensor(sums))
    torch.testing.assert_close(codebook.embedding, torch.tensor(expected))
    p = [0.6, 0.4]
    assert math.isclose(float(stats["perplexity"]), math.exp(-sum(q * math.log(q) for q in p)),
                        rel_tol=1e-6)
    before = {k: v.clone() for k, v in codebook.state_dict().items()}
    codebook.eval()(z)  # evaluation passes leave the buffers alone
    for name, value in codebook.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_perplexity_is_the_exponential_of_the_entropy():
    """Frequencies (1/4, 1/4, 0, 1/2): entropy 1.5 bits, perplexity 2^1.5; uniform over K
    codes: K; one code: 1."""
    assert math.isclose(float(perplexity(torch.tensor([2.0, 2.0, 0.0, 4.0]))), 2 ** 1.5,
                        rel_tol=1e-6)
    assert math.isclose(float(perplexity(torch.full((7,), 3.0))), 7.0, rel_tol=1e-6)
    assert float(perplexity(torch.tensor([0.0, 5.0, 0.0]))) == 1.0


def test_a_dead_code_is_moved_to_an_encoder_output():
    """Code 2 is never used: its usage 0.9 falls below the threshold 0.95 after one step,
    and it is moved to one of the batch's rows (N = threshold, m = threshold · row)."""
    torch.manual_seed(0)
    codebook = Codebook(3, 2, "ema", decay=0.9, dead_code_threshold=0.95).train()
    codebook.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [50.0, 50.0]]))
    z = torch.tensor([[0.1, 0.0], [0.2, 0.1], [0.9, 0.1], [1.2, -0.1]])
    _, _, stats = codebook(z)
    assert float(stats["restarts"]) == 1 and int(codebook.n_restarts) == 1
    moved = codebook.embedding[2]
    assert any(torch.equal(moved, row) for row in z), moved
    assert float(codebook.cluster_size[2]) == pytest.approx(0.95)
    torch.testing.assert_close(codebook.embedding_sum[2], 0.95 * moved)


@pytest.mark.parametrize("update", ["ema", "loss"])
def test_codes_never_used_get_restarted_during_training_and_then_used(update):
    """Half the codebook placed far from every encoder output: with restarts on, a few
    training steps bring those codes to encoder outputs and the encoder then uses them;
    with dead_code_threshold=0 they stay unused (so the test can fail)."""
    X = torch.from_numpy(prototypes(200))
    used = {}
    for threshold in (1.0, 0.0):
        model = VQVAE(2, 3, 8, codebook_update=update, dead_code_threshold=threshold,
                      **SMALL)
        torch.manual_seed(0)
        module = model._build_module(X.shape[1]).train()
        module.codebook.embedding.data[4:] = 100.0
        if update == "ema":  # N_k = 1, so the sums are the codes
            module.codebook.embedding_sum[4:] = 100.0
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
        for step in range(20):
            batch = X[(step * 50) % 200:(step * 50) % 200 + 50]
            value, _ = module.objective(batch, beta_commitment=0.25)
            optimizer.zero_grad()
            (-value.mean()).backward()
            optimizer.step()
        with torch.no_grad():
            used[threshold] = set(module.eval().codes(X).unique().tolist())
        far = module.codebook.embedding.detach()[4:].abs().max()
        if threshold:
            assert far < 10 and int(module.codebook.n_restarts) >= 4, far
    assert used[1.0] & {4, 5, 6, 7}, used
    assert not used[0.0] & {4, 5, 6, 7}, used


# ---------------------------------------------------------------------------- the model
@pytest.fixture(scope="module")
def fitted():
    X = prototypes()
    model = fit_quietly(VQVAE(2, 2, 4, n_prior_components=3, epochs=30, lr=5e-3, **SMALL), X)
    return model, X


def test_the_model_fits_and_reconstruction_improves(fitted):
    model, X = fitted
    terms = model.history_terms_
    assert set(terms) == {"reconstruction", "commitment", "perplexity", "restarts"}
    assert all(len(v) == 30 for v in terms.values())
    assert terms["reconstruction"][-1] > terms["reconstruction"][0] + 3, terms
    assert model.history_[-1] > model.history_[0]
    errors = np.abs((model.reconstruct(X) > 0.5) - X).mean()
    assert errors < 0.1, errors  # 3% flips: the prototypes are recovered
    assert 1 <= terms["perplexity"].min() and terms["perplexity"].max() <= 4
    assert model.transform(X).shape == (len(X), 4) and model.codes(X).shape == (len(X), 2)


def test_the_score_is_the_point_mass_elbo_a_lower_bound_on_log_px(fitted):
    """Brute force over all K^L = 16 code pairs: log p(x) = logsumexp_k [log p(k) +
    log p(x | e_k)] >= score_samples, which is the summand of the nearest codes."""
    model, X = fitted
    rows = X[:20]
    module, prior = model.module_, model.prior_
    pairs = np.array(list(itertools.product(range(4), repeat=2)))
    log_prior = prior.score_samples(pairs.astype(np.float64))
    with torch.no_grad():
        joint = np.stack([
            module.log_px_given_codes(torch.from_numpy(rows), None,
                                      torch.from_numpy(np.tile(k, (len(rows), 1)))).numpy()
            + lp for k, lp in zip(pairs, log_prior)], axis=1)
    exact = logsumexp(joint.astype(np.float64), axis=1)
    ours = model.score_samples(rows)
    assert np.all(ours <= exact + 1e-4)
    nearest = [int(np.flatnonzero((pairs == c).all(1))[0]) for c in model.codes(rows)]
    np.testing.assert_allclose(ours, joint[np.arange(len(rows)), nearest], rtol=1e-5)
    with pytest.raises(InvalidParameterError, match="elbo"):
        model.score_samples(rows, method="iwae")


def test_sample_draws_codes_from_the_prior_and_has_the_input_shape(fitted):
    model, X = fitted
    x, codes = model.sample(50, random_state=3)
    assert x.shape == (50, X.shape[1]) and codes.shape == (50, 2)
    assert set(np.unique(x)) <= {0.0, 1.0} and codes.min() >= 0 and codes.max() < 4
    again, same = model.sample(50, random_state=3)
    np.testing.assert_array_equal(x, again)
    images = prototypes(60).reshape(60, 4, 4)
    image_model = fit_quietly(VQVAE(2, 2, 4, n_prior_components=2, epochs=2, **SMALL), images)
    assert image_model.sample(5, random_state=0)[0].shape == (5, 4, 4)


def test_save_and_load_round_trip_with_the_prior(fitted, tmp_path):
    model, X = fitted
    path = tmp_path / "vq.npz"
    model.save(path)
    again = load(path)
    np.testing.assert_array_equal(again.prior_.weights_, model.prior_.weights_)
    np.testing.assert_array_equal(again.prior_.probs_, model.prior_.probs_)
    np.testing.assert_array_equal(again.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(again.transform(X), model.transform(X))
    for a, b in zip(again.sample(20, random_state=1), model.sample(20, random_state=1)):
        np.testing.assert_array_equal(a, b)
    for name, value in model.history_terms_.items():
        np.testing.assert_array_equal(again.history_terms_[name], value)
    assert again.n_restarts_ == model.n_restarts_


@pytest.mark.parametrize("update", ["ema", "loss"])
def test_a_resumed_run_is_identical_to_a_straight_one(tmp_path, update):
    """Stopped by a callback after epoch 2 of 4 and resumed from its checkpoint: the same
    weights, codebook buffers (EMA sizes and sums, restart count), history and terms."""
    X = prototypes(200)
    options = dict(codebook_update=update, n_prior_components=2, epochs=4, **SMALL)
    straight = fit_quietly(VQVAE(2, 2, 6, **options), X)
    path = tmp_path / "run.ckpt"
    fit_quietly(VQVAE(2, 2, 6, checkpoint_path=path,
                      callbacks=[lambda info: info.epoch == 2], **options), X)
    resumed = fit_quietly(VQVAE(2, 2, 6, **options), X, resume_from=path)
    for name, value in straight.module_.state_dict().items():
        assert torch.equal(value, resumed.module_.state_dict()[name]), name
    np.testing.assert_array_equal(straight.history_, resumed.history_)
    for name, value in straight.history_terms_.items():
        np.testing.assert_array_equal(value, resumed.history_terms_[name])
    np.testing.assert_array_equal(straight.prior_.probs_, resumed.prior_.probs_)


def test_conv_architecture_and_missing_entries():
    rng = np.random.default_rng(0)
    images = (rng.random((40, 1, 8, 8)) < 0.4).astype(np.float32)
    model = fit_quietly(VQVAE(2, 2, 4, architecture="conv", image_shape=(1, 8, 8),
                              n_prior_components=2, epochs=1, **SMALL), images)
    assert model.sample(3, random_state=0)[0].shape == (3, 1, 8, 8)
    holes = images.reshape(40, -1).copy()
    holes[:, :5] = np.nan
    filled = model.impute(holes)
    assert not np.isnan(filled).any() and np.array_equal(filled[:, 5:], holes[:, 5:])
    assert np.isfinite(model.score_samples(holes)).all()


@pytest.mark.parametrize("params, fragment", [
    (dict(n_codes=1), "n_codes"),
    (dict(codebook_update="kmeans"), "codebook_update"),
    (dict(decay=1.0), "decay"),
    (dict(beta_commitment=-0.1), "beta_commitment"),
    (dict(n_prior_components=0), "n_prior_components"),
    (dict(dead_code_threshold=-1.0), "dead_code_threshold"),
    (dict(architecture="conv", hidden=()), "hidden"),
])
def test_bad_parameters_are_clear_errors(params, fragment):
    with pytest.raises(InvalidParameterError, match=fragment):
        VQVAE(**{**dict(epochs=1), **params}).fit(prototypes(20))


def test_posterior_is_the_point_mass_at_the_nearest_codes(fitted):
    model, X = fitted
    q = model.posterior(X)
    codes = model.codes(X)
    assert q.probs.shape == (len(X), model.n_latents, model.n_codes)
    np.testing.assert_array_equal(q.mode, codes)
    np.testing.assert_array_equal(q.probs.max(axis=-1), 1.0)
    np.testing.assert_array_equal(q.entropy(), 0.0)
    np.testing.assert_array_equal(q.log_prob(codes), 0.0)
