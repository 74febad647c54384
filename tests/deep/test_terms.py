"""Terms a loss function logs beside the objective (`TrainResult.terms`, a deep model's
`history_terms_`): row-weighted epoch means, carried exactly through a checkpoint, saved
with the model, and checked."""

import shutil

import numpy as np
import pytest
import torch

from deep.test_trainer import Calls, fit, vae_loss
from latentkit.deep.vae import VAE
from latentkit.io import load, register_model, save


def with_terms(module, x, *, kl_weight):
    """vae_loss plus two terms: the batch's mean ELBO and its first row's ELBO."""
    loss, value = vae_loss(module, x, kl_weight=kl_weight)
    return loss, value, {"mean_elbo": value.mean(), "first_row": value[0]}


def test_terms_are_the_row_weighted_epoch_means_of_the_batch_values():
    logged = []

    def record(module, x, *, kl_weight):
        loss, value, terms = with_terms(module, x, kl_weight=kl_weight)
        logged.append((len(x), {k: float(t.detach()) for k, t in terms.items()}))
        return loss, value, terms

    _, result = fit(2, loss=record)  # 53 rows: batches of 10, 10, 10, 10, 10, 3
    for epoch in range(2):
        batches = logged[6 * epoch:6 * (epoch + 1)]
        rows = sum(b for b, _ in batches)
        assert rows == 53
        for name in ("mean_elbo", "first_row"):
            by_hand = sum(b * terms[name] for b, terms in batches) / rows
            assert result.terms[name][epoch] == pytest.approx(by_hand, rel=1e-12)
    # the mean ELBO term, weighted by rows, is the objective's epoch mean
    np.testing.assert_allclose(result.terms["mean_elbo"], result.history, rtol=1e-6)


def test_a_run_without_terms_reports_none_and_a_late_term_is_nan_before():
    _, result = fit(2)
    assert result.terms == {}

    def late(module, x, *, kl_weight):
        loss, value = vae_loss(module, x, kl_weight=kl_weight)
        return (loss, value, {"late": value.mean()}) if kl_weight and module.epoch_seen else (
            loss, value)

    module = fit(1)[0]
    module.epoch_seen = False

    def switch(info):
        info.module.epoch_seen = True

    _, result = fit(3, loss=late, module=module, callbacks=[switch])
    assert np.isnan(result.terms["late"][0]) and np.isfinite(result.terms["late"][1:]).all()


def test_terms_resume_exactly_from_a_mid_epoch_checkpoint(tmp_path):
    path, kept = tmp_path / "run.ckpt", tmp_path / "kept.ckpt"

    def keep(call):
        if call == 16:  # epoch 3, mid-way: the checkpoint holds part of its term sums
            shutil.copy(path, kept)

    straight = fit(4, loss=with_terms)[1]
    fit(4, loss=Calls(keep, with_terms), checkpoint_path=path, checkpoint_every_minutes=0)
    resumed = fit(4, loss=with_terms, resume_from=kept)[1]
    assert resumed.terms == straight.terms and resumed.history == straight.history


def test_bad_terms_are_a_clear_error():
    def bad(module, x, *, kl_weight):
        loss, value = vae_loss(module, x, kl_weight=kl_weight)
        return loss, value, {"per_row": value}

    with pytest.raises(ValueError, match="terms must be a dict"):
        fit(1, loss=bad)


@register_model
class _TermVAE(VAE):
    """A VAE that logs its batch mean ELBO and a constant as terms."""

    def _objective(self, module, x, observed, beta):
        value = module.elbo(x, observed, beta=beta)
        return value, {"mean_elbo": value.mean(), "two": torch.tensor(2.0)}


def test_a_deep_model_keeps_its_terms_and_saves_them(tmp_path):
    X = (np.random.default_rng(0).random((60, 8)) < 0.3).astype(float)
    options = {"hidden": (8,), "epochs": 3, "batch_size": 20, "device": "cpu",
               "random_state": 0, "verbose": False}
    model = _TermVAE(2, **options).fit(X)
    terms = model.history_terms_
    assert list(terms) == ["mean_elbo", "two"]
    np.testing.assert_array_equal(terms["two"], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(terms["mean_elbo"], model.history_, rtol=1e-6)
    save(model, tmp_path / "m.lk")
    loaded = load(tmp_path / "m.lk").history_terms_
    assert list(loaded) == list(terms)
    for name in terms:
        np.testing.assert_array_equal(loaded[name], terms[name])
    plain = VAE(2, **options).fit(X)
    save(plain, tmp_path / "plain.lk")
    assert plain.history_terms_ == {} and load(tmp_path / "plain.lk").history_terms_ == {}
