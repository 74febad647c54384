"""Data-parallel training (`Trainer(strategy="ddp")`, deep/ddp.py) against the single-process
run: 2 gloo processes on the CPU, spawned from Python and launched by torchrun, float64
modules, an uneven last batch (and an empty shard in validation); the noise-sharding
helpers against direct draws; the option errors.

Independent truth: the single-process Trainer at the same global batch and seed. The only
allowed difference is round-off: the gradient of a global batch is summed in another order
(two shards, then the all-reduce). In float64 one step's relative round-off is ~1e-16; after
the ~10 Adam steps here it stays far below the 1e-10 asserted (measured: 2e-16).
"""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from latentkit.deep import VAE, HierarchicalVAE
from latentkit.deep._batches import batch_shard, binarize, draw_for_rows, shard_bounds
from latentkit.deep.ddp import check_no_batch_norm
from latentkit.deep.estimators import gumbel_noise
from latentkit.deep.objectives import _standard_normal
from latentkit.deep.trainer import Trainer
from latentkit.exceptions import InvalidParameterError

#: the model, data and options every run here shares; the torchrun script execs it too
SETUP = textwrap.dedent('''
    import numpy as np
    import torch
    from latentkit.deep import VAE

    # 54 rows, validation_fraction 0.2: 43 training rows in batches of 10, the last of 3
    # (shards of 1 and 2 rows: uneven), and 11 validation rows, the last batch of 1 (one
    # process holds no row of it)
    # weight_decay: Adam is blind to a constant factor on the gradient, not to its ratio to
    # the L2 term, so a mis-scaled loss shows
    OPTIONS = dict(batch_size=10, random_state=5, lr=0.02, validation_fraction=0.2,
                   dynamic_binarization=True, kl_warmup_epochs=1.5, clip_grad_norm=50.0,
                   weight_decay=0.1, verbose=False)

    def build():
        """(the estimator whose loss is trained, its float64 module, the data (54, 6))."""
        X = np.random.default_rng(0).random((54, 6))
        model = VAE(latent_dim=2, hidden=(8,), dynamic_binarization=True)
        model.uses_mask_ = False  # no missing entries: the loss skips the mask
        torch.manual_seed(3)
        return model, model._build_module(6).double(), torch.from_numpy(X)
''')
_SHARED = {}
exec(SETUP, _SHARED)  # noqa: S102 -- our own source, shared with the torchrun script
build, OPTIONS = _SHARED["build"], _SHARED["OPTIONS"]
TOLERANCE = 1e-10


def single_process(epochs):
    model, module, X = build()
    result = Trainer(epochs=epochs, **OPTIONS).fit(module, model._loss, X)
    return module, result


def assert_close_runs(module_a, result_a, module_b, result_b):
    np.testing.assert_allclose(result_a.history, result_b.history, rtol=TOLERANCE, atol=0)
    np.testing.assert_allclose(result_a.valid_history, result_b.valid_history,
                               rtol=TOLERANCE, atol=0)
    for (name, a), b in zip(module_a.state_dict().items(), module_b.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=TOLERANCE, err_msg=name)


def test_two_gloo_processes_match_the_single_process_run(tmp_path):
    reference_module, reference = single_process(epochs=2)
    model, module, X = build()
    path = tmp_path / "ddp.ckpt"
    result = Trainer(epochs=2, strategy="ddp", world_size=2, checkpoint_path=path,
                     **OPTIONS).fit(module, model._loss, X)
    assert len(result.history) == 2 and result.stop_reason == "epochs"
    assert_close_runs(reference_module, reference, module, result)
    # the trajectories are not flat: equality to 1e-10 says something
    assert abs(reference.history[1] - reference.history[0]) > 1e-3
    # rank 0 wrote a checkpoint that resumes (here single-process) to the same run
    model, resumed_module, X = build()
    resumed = Trainer(epochs=3, **OPTIONS).fit(resumed_module, model._loss, X,
                                               resume_from=path)
    further_module, further = single_process(epochs=3)
    assert_close_runs(further_module, further, resumed_module, resumed)


def test_torchrun_launch_resumes_a_spawned_run(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this Python")
    path = tmp_path / "ddp.ckpt"
    model, module, X = build()
    first = Trainer(epochs=1, strategy="ddp", world_size=2, checkpoint_path=path,
                    **OPTIONS).fit(module, model._loss, X)
    script = tmp_path / "train.py"
    script.write_text(SETUP + textwrap.dedent(f'''
        import torch.distributed as dist
        from latentkit.deep.trainer import Trainer

        model, module, X = build()
        result = Trainer(epochs=2, strategy="ddp", checkpoint_path={str(path)!r},
                         **OPTIONS).fit(module, model._loss, X, resume_from={str(path)!r})
        rank = dist.get_rank()
        np.savez({str(tmp_path)!r} + f"/rank{{rank}}.npz", history=result.history,
                 valid=result.valid_history,
                 **{{k: v.numpy() for k, v in module.state_dict().items()}})
    '''))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", str(script)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    reference_module, reference = single_process(epochs=2)
    np.testing.assert_allclose(first.history, reference.history[:1], rtol=TOLERANCE)
    for rank in (0, 1):  # every process holds the same parameters and history
        saved = np.load(tmp_path / f"rank{rank}.npz")
        np.testing.assert_allclose(saved["history"], reference.history, rtol=TOLERANCE)
        np.testing.assert_allclose(saved["valid"], reference.valid_history, rtol=TOLERANCE)
        for name, value in reference_module.state_dict().items():
            np.testing.assert_allclose(saved[name], value.numpy(), atol=TOLERANCE, err_msg=name)


def test_a_failing_process_raises_its_error_in_the_caller():
    model, module, X = build()
    X = X.clone()
    X[0, 0] = float("inf")  # every process refuses the data, as one process would
    with pytest.raises(Exception, match="contains inf") as caught:
        Trainer(epochs=1, strategy="ddp", world_size=2, **OPTIONS).fit(module, model._loss, X)
    assert any("in process" in note for note in getattr(caught.value, "__notes__", []))


@pytest.mark.parametrize("make, size", [(VAE, dict(latent_dim=2)),
                                        (HierarchicalVAE, dict(latent_dims=(4, 2)))])
def test_estimator_option_trains_data_parallel(make, size):
    """VAE, and HierarchicalVAE whose noise of every layer is drawn for the global batch."""
    X = (np.random.default_rng(0).random((203, 12)) < 0.3).astype(np.float32)
    options = dict(size, hidden=(16,), epochs=2, batch_size=20, random_state=0, lr=1e-2,
                   verbose=False)
    single = make(**options).fit(X)
    parallel = make(strategy="ddp", world_size=2, **options).fit(X)
    # float32: a step's relative round-off is ~1e-7 (measured differences 6e-8 after 22
    # Adam steps); 1e-5 leaves room and still catches any mis-scaled gradient (~1e-2)
    np.testing.assert_allclose(parallel.history_, single.history_, rtol=1e-5)
    for a, b in zip(single.module_.state_dict().values(),
                    parallel.module_.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


# ----------------------------------------------------------------- noise of a shard
@pytest.mark.parametrize("global_rows, world_size", [(10, 2), (3, 2), (7, 3), (1, 2)])
def test_shards_cover_the_batch_once(global_rows, world_size):
    bounds = [shard_bounds(global_rows, rank, world_size) for rank in range(world_size)]
    covered = np.concatenate([np.arange(start, stop) for start, stop in bounds])
    np.testing.assert_array_equal(covered, np.arange(global_rows))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1


def _draws(draw, rows, shard=None):
    """draw(generator, rows) from a fresh seeded generator, inside `batch_shard(*shard)`."""
    generator = torch.Generator().manual_seed(7)
    if shard is None:
        return draw(generator, rows)
    with batch_shard(*shard):
        return draw(generator, rows)


@pytest.mark.parametrize("name, draw", [
    ("normal", lambda g, b: _standard_normal(3, (b, 4), torch.zeros(()), g)[1]),
    ("gumbel", lambda g, b: gumbel_noise((b, 4, 5), like=torch.zeros(()), generator=g)),
    ("binarize", lambda g, b: binarize(torch.full((b, 6), 0.5), g, may_have_nan=False)),
])
def test_a_shard_draws_its_rows_of_the_global_draw(name, draw):
    whole = _draws(draw, 10)
    for start, stop in ((0, 4), (4, 10), (3, 3)):
        part = _draws(draw, stop - start, shard=(10, start, stop))
        torch.testing.assert_close(part, whole[start:stop], rtol=0, atol=0, msg=name)


def test_draws_not_per_row_are_left_alone():
    generator = torch.Generator().manual_seed(1)
    expected = torch.randn((5, 3), generator=generator)
    generator.manual_seed(1)
    with batch_shard(10, 0, 4):  # leading axis 5 is not the shard's 4 rows
        got = draw_for_rows(lambda shape: torch.randn(shape, generator=generator), (5, 3))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


# ----------------------------------------------------------------------- options
@pytest.mark.parametrize("options, match", [
    ({"strategy": "horovod"}, "strategy must be one of"),
    ({"strategy": "ddp", "world_size": 0}, "world_size must be None or a positive"),
    ({"strategy": "ddp", "world_size": True}, "world_size must be None or a positive"),
    ({"world_size": 2}, "add strategy='ddp'"),
    ({"strategy": "ddp", "backend": "mpi"}, "backend must be one of"),
    ({"backend": "gloo"}, "add strategy='ddp'"),
    ({"strategy": "ddp", "backend": "nccl", "device": "cpu"}, "nccl' moves CUDA tensors"),
])
def test_option_errors(options, match):
    with pytest.raises(InvalidParameterError, match=match):
        Trainer(**options)


def test_ddp_without_world_size_or_torchrun_is_refused(monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    model, module, X = build()
    with pytest.raises(InvalidParameterError, match="needs world_size=N"):
        Trainer(strategy="ddp", **OPTIONS).fit(module, model._loss, X)


def test_unpicklable_loss_is_refused_before_any_process_starts():
    model, module, X = build()
    with pytest.raises(InvalidParameterError, match="cannot be pickled"):
        Trainer(strategy="ddp", world_size=2, **OPTIONS).fit(
            module, lambda m, x, *, kl_weight: model._loss(m, x, kl_weight=kl_weight), X)


def test_batch_norm_is_refused_on_the_cpu():
    module = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    with pytest.raises(InvalidParameterError, match="SyncBatchNorm"):
        check_no_batch_norm(module, torch.device("cpu"))
    check_no_batch_norm(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3)),
                        torch.device("cpu"))  # per-row normalization is fine
