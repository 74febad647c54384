"""The Trainer: exact resume, the NaN guard, early stopping, KL warm-up, dynamic
binarization, Ctrl-C, data order and option checks, on a tiny VAE with random data."""

import math
import shutil
import warnings

import numpy as np
import pytest
import torch

from latentkit.deep.checkpoint import CheckpointError
from latentkit.deep.trainer import (
    NonFiniteStepWarning,
    Trainer,
    TrainingDivergedError,
    epoch_order,
    kl_warmup_weight,
    resolve_device,
)
from latentkit.em import ConvergenceWarning
from latentkit.exceptions import InvalidInputError, InvalidParameterError

D, K, N = 6, 2, 53  # features, latent dimensions, rows: 6 batches of 10 (the last has 3)


class TinyVAE(torch.nn.Module):
    """Linear Gaussian encoder, linear Bernoulli decoder (logits)."""

    def __init__(self, seed=1, batch_norm=False):
        super().__init__()
        torch.manual_seed(seed)
        self.norm = torch.nn.BatchNorm1d(D) if batch_norm else torch.nn.Identity()
        self.encoder = torch.nn.Linear(D, 2 * K)
        self.decoder = torch.nn.Linear(K, D)


def vae_loss(module, x, *, kl_weight):
    """-ELBO with the KL scaled by kl_weight (one reparameterized draw from the global RNG);
    value = the ELBO per row."""
    mu, log_var = module.encoder(module.norm(x)).chunk(2, dim=-1)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
    logits = module.decoder(z)
    log_lik = -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x, reduction="none").sum(-1)
    kl = 0.5 * (mu ** 2 + log_var.exp() - 1 - log_var).sum(-1)
    return -(log_lik - kl_weight * kl).mean(), log_lik - kl


def data(seed=0, n=N):
    return torch.rand(n, D, generator=torch.Generator().manual_seed(seed))


def fit(epochs=4, loss=vae_loss, X=None, module=None, resume_from=None, **options):
    module = TinyVAE() if module is None else module
    options = {"batch_size": 10, "random_state": 3, "verbose": False, **options}
    result = Trainer(epochs=epochs, **options).fit(module, loss, data() if X is None else X,
                                                   resume_from=resume_from)
    return module, result


def assert_same_run(a, b):
    (module_a, result_a), (module_b, result_b) = a, b
    assert result_a.history == result_b.history
    assert result_a.valid_history == result_b.valid_history
    for (name, p), q in zip(module_a.state_dict().items(), module_b.state_dict().values()):
        assert torch.equal(p, q), name


RICH = {"validation_fraction": 0.2, "lr_schedule": "plateau", "kl_warmup_epochs": 1.5,
        "lr_schedule_options": {"patience": 0, "factor": 0.5},
        "dynamic_binarization": True, "clip_grad_norm": 5.0, "lr": 0.05}


class Calls:
    """A loss wrapper that counts calls (training and validation) and runs `hook(call)`."""

    def __init__(self, hook, loss=vae_loss):
        self.hook, self.loss, self.count = hook, loss, 0

    def __call__(self, module, x, *, kl_weight):
        self.count += 1
        self.hook(self.count)
        return self.loss(module, x, kl_weight=kl_weight)


@pytest.mark.parametrize("options", [
    {"lr_schedule": "cosine", "lr_schedule_options": {"T_max": 4}}, RICH])
def test_resume_at_an_epoch_end_is_bit_identical(tmp_path, options):
    path = tmp_path / "run.ckpt"
    straight = fit(4, **options)
    first = fit(2, checkpoint_path=path, **options)
    assert first[1].history == straight[1].history[:2]
    assert_same_run(straight, fit(4, resume_from=path, **options))


@pytest.mark.parametrize("options", [{}, RICH])
def test_resume_from_a_periodic_checkpoint_in_mid_epoch_is_bit_identical(tmp_path, options):
    path, kept = tmp_path / "run.ckpt", tmp_path / "kept.ckpt"

    def keep(call):  # the file written after the batches before call 16 (epoch 2 or 3)
        if call == 16:
            shutil.copy(path, kept)

    straight = fit(4, **options)
    fit(4, loss=Calls(keep), checkpoint_path=path, checkpoint_every_minutes=0, **options)
    assert_same_run(straight, fit(4, resume_from=kept, **options))


def test_interrupt_keeps_state_writes_a_checkpoint_and_resumes_exactly(tmp_path):
    path = tmp_path / "run.ckpt"

    def interrupt(call):
        if call == 15:  # epoch 3, batch index 2: the batches 0 and 1 of epoch 3 are done
            raise KeyboardInterrupt

    with pytest.warns(ConvergenceWarning, match="interrupted at epoch 3, batch index 2"):
        _, result = fit(4, loss=Calls(interrupt), checkpoint_path=path)
    assert result.stop_reason == "interrupted" and not result.converged
    assert result.epochs_run == 2
    assert_same_run(fit(4), fit(4, resume_from=path))


def test_max_time_stops_mid_epoch_and_the_run_resumes_exactly(tmp_path):
    path = tmp_path / "run.ckpt"
    _, result = fit(4, checkpoint_path=path, max_time=1e-9, **RICH)
    assert result.stop_reason == "max_time" and result.epochs_run == 0
    assert_same_run(fit(4, **RICH), fit(4, resume_from=path, **RICH))


def test_a_tampered_or_mismatched_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "run.ckpt"
    fit(1, checkpoint_path=path)
    with pytest.raises(CheckpointError, match="batch_size"):
        fit(2, resume_from=path, batch_size=11)
    with pytest.raises(CheckpointError, match="random_state"):
        fit(2, resume_from=path, random_state=4)
    with pytest.raises(CheckpointError, match="lr_schedule"):
        fit(2, resume_from=path, lr_schedule="cosine")
    data_bytes = bytearray(path.read_bytes())
    data_bytes[-3] ^= 0xFF
    path.write_bytes(bytes(data_bytes))
    with pytest.raises(CheckpointError, match="integrity"):
        fit(2, resume_from=path)


def test_a_nan_loss_is_skipped_warned_and_training_continues_from_the_last_good_state():
    seen = {}

    def nan_on_step_7(module, x, *, kl_weight):
        call = len(seen) + 1
        seen[call] = [p.detach().clone() for p in module.parameters()]
        loss, value = vae_loss(module, x, kl_weight=kl_weight)
        return (loss * math.nan, value) if call == 7 else (loss, value)

    with pytest.warns(NonFiniteStepWarning, match=r"non-finite loss at epoch 2, batch index 0"):
        module, result = fit(3, loss=nan_on_step_7)
    assert result.skipped_steps == [(2, 0)] and result.stop_reason == "epochs"
    for before, after in zip(seen[7], seen[8]):  # the bad step changed nothing
        assert torch.equal(before, after)
    assert not all(torch.equal(a, b) for a, b in zip(seen[8], seen[9]))  # the next one did
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert all(math.isfinite(h) for h in result.history)


def test_a_nan_row_in_the_data_skips_its_batch_in_every_epoch():
    X = data()
    X[17] = math.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module, result = fit(3, X=X)
    expected = [(epoch + 1, int(torch.nonzero(epoch_order(N, 3, epoch) == 17)) // 10)
                for epoch in range(3)]
    assert result.skipped_steps == expected
    assert [str(w.message).split(":")[0] for w in caught] == [
        f"non-finite loss at epoch {e}, batch index {b} (of 6)" for e, b in expected]
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_buffers_changed_by_a_bad_step_are_put_back_exactly():
    X = data()
    X[5, 0] = math.nan  # batch norm's running mean becomes NaN in the forward pass
    kept = {}

    def watch(module, x, *, kl_weight):
        if module.training:
            kept[len(kept)] = module.norm.running_mean.clone()
        return vae_loss(module, x, kl_weight=kl_weight)

    with pytest.warns(NonFiniteStepWarning, match="buffers its forward pass had changed"):
        module, result = fit(1, X=X, loss=watch, module=TinyVAE(batch_norm=True))
    (_, bad), = result.skipped_steps
    assert torch.isfinite(kept[bad]).all()
    assert torch.equal(kept[bad], kept[bad + 1])  # the state before the bad step, exactly
    assert all(torch.isfinite(t).all() for t in module.state_dict().values()
               if t.is_floating_point())


def test_parameters_damaged_inside_the_loss_are_restored_from_the_epoch_snapshot():
    seen = []  # the module's state when each training call starts

    def damage_on_call_9(module, x, *, kl_weight):
        seen.append({k: v.clone() for k, v in module.state_dict().items()})
        if len(seen) == 9:  # epoch 2, batch index 2
            with torch.no_grad():
                module.decoder.weight.fill_(math.nan)
        return vae_loss(module, x, kl_weight=kl_weight)

    with pytest.warns(NonFiniteStepWarning, match="restored the snapshot of epoch 2, batch "
                                                  "index 0"):
        _, result = fit(2, loss=damage_on_call_9)
    assert result.skipped_steps == [(2, 2)]
    for name, value in seen[9].items():  # call 10 starts where epoch 2 started (call 7)
        assert torch.equal(value, seen[6][name]), name


@pytest.mark.parametrize("clip", [None, 5.0])
@pytest.mark.parametrize("bad_gradient", ["inf", "nan", "inf and -inf"])
def test_a_finite_loss_with_a_non_finite_gradient_is_skipped(clip, bad_gradient):
    """The loss stays finite (its extra term is sqrt(0) = 0, or 0 · log(0 + 0)) while the
    gradient of the decoder bias is +inf, NaN, or +inf in one entry and -inf in another:
    the guard must see the gradient itself, with or without clipping."""
    seen = []

    def bad_gradient_on_call_4(module, x, *, kl_weight):
        seen.append([p.detach().clone() for p in module.parameters()])
        loss, value = vae_loss(module, x, kl_weight=kl_weight)
        if len(seen) == 4:
            bias = module.decoder.bias
            at_zero = bias - bias.detach()  # 0, with derivative 1 in each entry
            if bad_gradient == "inf":  # d sqrt(u)/du = inf at 0
                extra = torch.sqrt(at_zero[0])
            elif bad_gradient == "nan":  # d/du [0 · sqrt(u)] at 0: 0 · inf = NaN
                extra = 0.0 * torch.sqrt(at_zero[0])
            else:
                extra = torch.sqrt(at_zero[0]) - torch.sqrt(at_zero[1])
            assert float(extra.detach()) == 0.0
            loss = loss + extra
        return loss, value

    with pytest.warns(NonFiniteStepWarning, match=r"non-finite gradient at epoch 1, batch "
                                                  r"index 3"):
        module, result = fit(1, loss=bad_gradient_on_call_4, clip_grad_norm=clip)
    assert result.skipped_steps == [(1, 3)]
    for before, after in zip(seen[3], seen[4]):  # the bad step changed nothing
        assert torch.equal(before, after)
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_persistent_nans_stop_with_a_clear_error_keeping_the_best_state(tmp_path):
    states, valid = [], []

    def diverge(module, x, *, kl_weight):
        loss, value = vae_loss(module, x, kl_weight=kl_weight)
        return (loss * math.nan, value) if len(states) >= 2 else (loss, value)

    def record(info):
        states.append({k: v.clone() for k, v in info.module.state_dict().items()})
        valid.append(info.valid_objective)

    module = TinyVAE()
    with pytest.warns(NonFiniteStepWarning):
        with pytest.raises(TrainingDivergedError, match=r"5 non-finite steps in a row.*lower lr"):
            fit(5, loss=diverge, module=module, callbacks=[record], validation_fraction=0.2,
                checkpoint_path=tmp_path / "c")
    assert len(states) == 2 and valid[0] != valid[1]
    best_state = states[int(np.argmax(valid))]  # the best complete epoch by validation
    for name, value in module.state_dict().items():
        assert torch.equal(value, best_state[name]), name
    assert (tmp_path / "c").exists()


def scripted_validation(values):
    """A loss whose validation value (eval mode) follows `values`, one per epoch."""
    epoch = {"n": 0}

    def loss(module, x, *, kl_weight):
        train_loss, value = vae_loss(module, x, kl_weight=kl_weight)
        if module.training:
            return train_loss, value
        return train_loss, torch.full((len(x),), float(values[epoch["n"]]))

    def next_epoch(info):
        epoch["n"] += 1

    return loss, next_epoch


def test_early_stopping_stops_and_restores_the_best_state():
    loss, next_epoch = scripted_validation([1.0, 3.0, 2.0, 2.5, 9.0, 9.0])
    states = []

    def record(info):
        states.append({k: v.clone() for k, v in info.module.state_dict().items()})

    module, result = fit(6, loss=loss, callbacks=[next_epoch, record],
                         early_stopping_patience=2, validation_fraction=0.2)
    assert result.stop_reason == "early_stopping" and result.converged
    assert result.valid_history == [1.0, 3.0, 2.0, 2.5] and result.epochs_run == 4
    assert result.best_epoch == 2 and result.best_objective == 3.0
    for name, value in module.state_dict().items():
        assert torch.equal(value, states[1][name]), name
    assert not torch.equal(states[1]["decoder.weight"], states[3]["decoder.weight"])


def test_ctrl_c_from_a_callback_keeps_the_best_state(tmp_path):
    loss, next_epoch = scripted_validation([1.0, 3.0, 2.0, 0.0])
    states = []

    def record_then_interrupt(info):
        states.append({k: v.clone() for k, v in info.module.state_dict().items()})
        if info.epoch == 3:
            raise KeyboardInterrupt

    with pytest.warns(ConvergenceWarning, match=r"keeping the best state \(epoch 2\)"):
        module, result = fit(6, loss=loss, callbacks=[next_epoch, record_then_interrupt],
                             validation_fraction=0.2, checkpoint_path=tmp_path / "c")
    assert result.stop_reason == "interrupted" and result.best_epoch == 2
    for name, value in module.state_dict().items():
        assert torch.equal(value, states[1][name]), name


def test_kl_weight_rises_linearly_per_batch_and_validation_uses_one():
    weights = []

    def record(module, x, *, kl_weight):
        weights.append((module.training, kl_weight))
        return vae_loss(module, x, kl_weight=kl_weight)

    fit(3, loss=record, X=data(n=50), kl_warmup_epochs=2)  # 5 batches per epoch
    train = [w for training, w in weights if training]
    assert train == pytest.approx([t / 10 for t in range(10)] + [1.0] * 5, abs=1e-15)
    fit(1, loss=record, X=data(n=50), kl_warmup_epochs=2, validation_fraction=0.2)
    assert [w for training, w in weights if not training] == [1.0]
    assert kl_warmup_weight(7, 5, 0) == 1.0 and kl_warmup_weight(5, 5, 0.5) == 1.0


def test_dynamic_binarization_is_fresh_per_epoch_and_reproducible_per_seed():
    def draws(seed):
        batches = []

        def record(module, x, *, kl_weight):
            batches.append(x.clone())
            return vae_loss(module, x.nan_to_num(0.5), kl_weight=kl_weight)

        X = torch.full((40, D), 0.3)
        X[0, 0] = math.nan
        fit(2, loss=record, X=X, dynamic_binarization=True, random_state=seed, batch_size=40)
        return batches

    first, again, other = draws(0), draws(0), draws(1)
    assert all(torch.equal(a.nan_to_num(-1), b.nan_to_num(-1)) for a, b in zip(first, again))
    assert not torch.equal(first[0].nan_to_num(-1), first[1].nan_to_num(-1))
    assert not torch.equal(first[0].nan_to_num(-1), other[0].nan_to_num(-1))
    values = torch.cat(first)
    assert int(values.isnan().sum()) == 2  # the missing entry stays missing
    observed = values[~values.isnan()]
    assert set(observed.unique().tolist()) == {0.0, 1.0}
    # mean of 478 Bernoulli(0.3) draws: standard error 0.021; 4 standard errors
    assert abs(float(observed.mean()) - 0.3) < 4 * math.sqrt(0.3 * 0.7 / observed.numel())


def test_each_epoch_visits_every_row_once_in_a_seeded_order():
    rows = []

    def record(module, x, *, kl_weight):
        rows.append(x[:, 0].clone())
        return vae_loss(module, x, kl_weight=kl_weight)

    X = data()
    X[:, 0] = torch.arange(N, dtype=X.dtype) / N  # row ids in column 0
    fit(2, loss=record, X=X)
    seen = (torch.cat(rows) * N).round().long()
    first, second = seen[:N], seen[N:]
    assert sorted(first.tolist()) == list(range(N)) == sorted(second.tolist())
    assert torch.equal(first, epoch_order(N, 3, 0)) and torch.equal(second, epoch_order(N, 3, 1))
    assert not torch.equal(first, second)


def test_history_and_validation_are_the_means_of_the_logged_values():
    logged = []

    def record(module, x, *, kl_weight):
        loss, value = vae_loss(module, x, kl_weight=kl_weight)
        logged.append((module.training, value.detach().double()))
        return loss, value

    _, result = fit(2, loss=record, validation_fraction=0.25)
    train = [v for training, v in logged if training]
    valid = [v for training, v in logged if not training]
    assert result.history[0] == pytest.approx(float(torch.cat(train[:4]).mean()), rel=1e-12)
    assert result.valid_history[1] == pytest.approx(float(torch.cat(valid[2:]).mean()),
                                                    rel=1e-12)


def test_dataset_and_numpy_input_train_as_the_tensor_does():
    X = data()
    reference = fit(2, X=X)
    assert_same_run(reference, fit(2, X=torch.utils.data.TensorDataset(X)))
    assert_same_run(reference, fit(2, X=X.double().numpy()))  # cast to the module's dtype


def test_dynamic_binarization_of_a_dataset_keeps_nan_as_missing():
    """A Dataset is seen batch by batch (no NaN check of the whole data up front), so its
    draws must carry NaN through, as those of a tensor with NaN do."""
    batches = []

    def record(module, x, *, kl_weight):
        batches.append(x.clone())
        return vae_loss(module, x.nan_to_num(0.5), kl_weight=kl_weight)

    X = torch.full((40, D), 0.3)
    X[[0, 7], [0, 2]] = math.nan
    for rows in (X, torch.utils.data.TensorDataset(X)):
        batches.clear()
        fit(1, loss=record, X=rows, dynamic_binarization=True, batch_size=40)
        (x,), = [batches]
        assert torch.equal(torch.isnan(x).nonzero(), torch.isnan(
            X[epoch_order(40, 3, 0)]).nonzero())
        assert set(x[~torch.isnan(x)].unique().tolist()) == {0.0, 1.0}


def test_the_callers_global_rng_is_left_alone():
    state = torch.get_rng_state()
    fit(1)
    assert torch.equal(state, torch.get_rng_state())


def test_a_callback_can_stop_the_run():
    _, result = fit(5, callbacks=[lambda info: info.epoch == 2])
    assert result.stop_reason == "callback" and result.epochs_run == 2


@pytest.mark.parametrize("option, value", [
    ("epochs", 0), ("batch_size", 2.5), ("lr", -1.0), ("lr", math.nan),
    ("lr_schedule", "step"), ("weight_decay", -1), ("clip_grad_norm", 0),
    ("kl_warmup_epochs", -1), ("early_stopping_patience", 0), ("validation_fraction", 1.0),
    ("checkpoint_every_minutes", -1), ("random_state", "seed"), ("max_time", 0),
    ("callbacks", [1]), ("max_nonfinite_steps", 0)])
def test_bad_options_name_themselves(option, value):
    with pytest.raises(InvalidParameterError, match=option):
        Trainer(**{option: value})


def test_progress_bar_shows_the_running_objective(capsys):
    fit(1, verbose=True)
    assert "train" in capsys.readouterr().err


def test_device_choice():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InvalidParameterError, match="device"):
        fit(1, device="tpu:x")


def test_bad_data_and_conflicting_options_are_clear_errors():
    X = data()
    X[0, 0] = math.inf
    with pytest.raises(InvalidInputError, match="inf"):
        fit(1, X=X)
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        fit(1, X=data() * 2, dynamic_binarization=True)
    with pytest.raises(InvalidInputError, match="floating point"):
        fit(1, X=torch.ones(N, D, dtype=torch.uint8), dynamic_binarization=True)
    with pytest.raises(InvalidParameterError, match="not both"):
        Trainer(validation_fraction=0.2, verbose=False).fit(TinyVAE(), vae_loss, data(),
                                                            valid_data=data())
    with pytest.raises(InvalidParameterError, match="lr_schedule_options"):
        fit(1, lr_schedule="exponential", lr_schedule_options={"gama": 0.5})
    with pytest.raises(ValueError, match="one objective per row"):
        fit(1, loss=lambda m, x, *, kl_weight: (vae_loss(m, x, kl_weight=kl_weight)[0],
                                                torch.zeros(())))
