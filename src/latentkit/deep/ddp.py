"""Data-parallel training (`Trainer(strategy="ddp")`): PyTorch DistributedDataParallel over W
processes (gloo on the CPU, nccl on CUDA), exact against the single-process run.

Launch. Under `torchrun` (RANK, WORLD_SIZE, MASTER_ADDR, ... in the environment) or inside a
process group the caller has already set up, every process calls `fit` and joins that group;
each returns the same result and holds the same parameters. With `world_size=W` and no group,
`fit` spawns W processes itself (start method "spawn": the module, the loss function, the
data and the callbacks travel by pickle), waits for them, and loads rank 0's parameters into
the caller's module; the result is rank 0's. Each spawned process gets cpu_count // W threads.

Exactness. A global batch of B rows (the single-process run's batch, in the same seeded
epoch order on every process) is cut into W contiguous shards, rank r taking rows
[r B // W, (r + 1) B // W) (`_batches.shard_bounds`), b_r rows. The loss a loss function
returns is the mean over its rows, L_r = (1/b_r) Σ_{i in r} ℓ_i; DDP averages gradients over
the W processes, so each process back-propagates W (b_r / B) L_r and the averaged gradient is

    (1/W) Σ_r W (b_r / B) ∇L_r = (1/B) Σ_i ∇ℓ_i,

the single-process gradient of the global batch, uneven shards included (a process with no
row, b_r = 0 when B < W, back-propagates a zero that still joins the all-reduce). Noise is
drawn for the global batch and sliced (`_batches.batch_shard`, `draw_for_rows`: the
reparameterization noise, Gumbel draws and dynamic binarization), so every row sees the draw
it gets in the single-process run and the generators of all processes stay in step. The
objective values, the logged terms (weighted by b_r) and the validation sums are all-reduced
in one float64 vector per step, so `history` and `terms` are the global means, the NaN
guard, early stopping and the stop rules decide the same everywhere, and `max_time` and the
callbacks' decisions are shared (any process past the deadline stops all; rank 0's epoch-end
decision is broadcast). What remains is round-off: the gradient is summed in a different
order (float64: ~1e-15 relative per step).

Limits. Exact for objectives that are means of per-row terms whose noise is drawn per row
through the helpers above; a batch-coupled estimator (e.g. a β-TC-VAE's minibatch-weighted
total correlation) sees only its shard, and a module's buffers (a VQ-VAE's codebook EMA, a
REINFORCE moving-average baseline) follow rank 0's (DDP broadcasts them each step).
Measured, 2 processes against 1, float32, 2 epochs: VAE, IWAE and the Gumbel DiscreteVAE
agree to 5e-8 per epoch objective; β-TC-VAE (0.13), VQ-VAE (0.03) and the REINFORCE
DiscreteVAE (2e-3) train correctly but not identically. Every parameter that requires a gradient
must get one at every step (DDP's find_unused_parameters is off). Batch-norm: its
statistics would be the shard's, so a module holding `BatchNorm` is refused on the CPU
(torch's SyncBatchNorm runs on CUDA only); on CUDA convert it with
`torch.nn.SyncBatchNorm.convert_sync_batchnorm` first (not tested here: no GPU).
Only rank 0 writes checkpoints and shows the progress bar; a checkpoint resumes in either
mode, single-process or data-parallel, with the same batch size. A group that `fit` joins
under torchrun stays initialized (the caller's to destroy); spawned processes receive the
data tensors in shared memory (torch's pickling) and a copy of the module each.

Speed. Data parallelism pays across GPUs or machines, not on one CPU, whose cores a single
process already uses through intra-op threads: 784-400-20 Bernoulli VAE, 30,000 x 784,
batch 100 (300 steps), 2-core CPU, float32: 1.3-1.6 s per epoch in one process with 2
threads, 2.0-2.2 s with 1 thread, 3.9-4.4 s with 2 gloo processes of 1 thread (per step:
the gradient all-reduce of 636k floats 2.6 ms, the forward and backward of 50 rows and
Adam's step on every process), plus 5-6 s to start the processes.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import tempfile
import time
import traceback

import numpy as np
import torch

from ..exceptions import InvalidParameterError
from ._batches import batch_shard, resolve_device, shard_bounds
from ._loop import TrainResult
from ._run import _Run

STRATEGIES = (None, "ddp")
BACKENDS = (None, "gloo", "nccl")
#: seconds the other processes get to finish after one has failed, before they are ended
_GRACE_SECONDS = 10.0


def in_process_group() -> bool:
    """Whether this process belongs to a group: one already initialized, or torchrun's
    environment (RANK and WORLD_SIZE set) to join."""
    import torch.distributed as dist

    return dist.is_available() and (dist.is_initialized() or (
        "RANK" in os.environ and "WORLD_SIZE" in os.environ))


def choose_backend(backend: str | None, device) -> str:
    """backend, or the default for the device: 'nccl' on CUDA, 'gloo' on the CPU."""
    if backend is not None:
        return backend
    return "nccl" if resolve_device(device).type == "cuda" else "gloo"


def check_no_batch_norm(module: torch.nn.Module, device: torch.device) -> None:
    """Refuse a module whose batch-norm statistics would be one shard's (see the module
    docstring); SyncBatchNorm is accepted on CUDA."""
    for name, layer in module.named_modules():
        if not isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            continue
        if device.type == "cuda" and isinstance(layer, torch.nn.SyncBatchNorm):
            continue
        raise InvalidParameterError(
            f"strategy='ddp': the module holds batch-norm layer {name or type(layer).__name__!r},"
            " whose statistics would be each process's shard, not the global batch's, so "
            "training would differ from the single-process run. On CUDA convert it with "
            "torch.nn.SyncBatchNorm.convert_sync_batchnorm(module); on the CPU (SyncBatchNorm "
            "needs CUDA) use LayerNorm/GroupNorm (per row), or strategy=None.")


def fit_data_parallel(trainer, module, loss_fn, train_data, valid_data=None,
                      resume_from=None) -> TrainResult:
    """`Trainer.fit` with strategy='ddp': join the group this process belongs to, or spawn
    `trainer.world_size` processes (see the module docstring)."""
    if in_process_group():
        return _fit_in_group(trainer, module, loss_fn, train_data, valid_data, resume_from)
    if trainer.world_size is None:
        raise InvalidParameterError(
            "strategy='ddp' needs world_size=N to start N processes itself, or a launch by "
            "torchrun (e.g. `torchrun --nproc_per_node=2 script.py`), which sets RANK and "
            "WORLD_SIZE; neither is given.")
    return _spawn(trainer, module, loss_fn, train_data, valid_data, resume_from)


def _fit_in_group(trainer, module, loss_fn, train_data, valid_data, resume_from):
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = choose_backend(trainer.backend, trainer.device)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend, init_method="env://")
    if trainer.world_size is not None and trainer.world_size != dist.get_world_size():
        raise InvalidParameterError(
            f"world_size={trainer.world_size} but this process belongs to a group of "
            f"{dist.get_world_size()} (torchrun's --nproc_per_node x --nnodes); pass "
            "world_size=None under torchrun.")
    if dist.get_backend() == "nccl" and resolve_device(trainer.device).type != "cuda":
        raise InvalidParameterError(f"the process group uses nccl, which moves CUDA tensors "
                                    f"only, but device={trainer.device!r}; use device='cuda' "
                                    "or a gloo group.")
    return trainer._fit_in_process(_DDPRun, module, loss_fn, train_data, valid_data,
                                   resume_from)


class _LossModule(torch.nn.Module):
    """The module and the loss function as one forward pass, for DDP to wrap (DDP syncs the
    gradients of a backward pass only after a forward through its wrapper)."""

    def __init__(self, module: torch.nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = module, loss_fn

    def forward(self, x: torch.Tensor, kl_weight: float):
        return self.loss_fn(self.model, x, kl_weight=kl_weight)


class _DDPRun(_Run):
    """A `_Run` whose batches are sharded over the processes of the group (module docstring:
    the loss scaling, the noise, the all-reduced sums and the shared stop decisions)."""

    def __init__(self, cfg, module, loss_fn, train_data, valid_data, saved):
        import torch.distributed as dist

        self.dist = dist
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main, self.any_past_deadline = self.rank == 0, False
        check_no_batch_norm(module, resolve_device(cfg.device))
        super().__init__(cfg, module, loss_fn, train_data, valid_data, saved)
        ids = [self.device] if self.device.type == "cuda" else None
        self.wrapped = torch.nn.parallel.DistributedDataParallel(
            _LossModule(module, loss_fn), device_ids=ids, gradient_as_bucket_view=True)

    def _seed(self, saved) -> int:
        """Rank 0's seed everywhere (random_state=None draws one per process)."""
        box = [super()._seed(saved)]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def _shard(self, rows: torch.Tensor):
        start, stop = shard_bounds(len(rows), self.rank, self.world_size)
        return rows[start:stop], batch_shard(len(rows), start, stop)

    def _forward(self, x: torch.Tensor, kl_weight: float):
        return self.wrapped(x, kl_weight)

    def _backward(self, loss: torch.Tensor, n_local: int, n_rows: int) -> None:
        if n_local == 0:  # no row here: a zero gradient, which still joins the all-reduce
            loss = torch.stack([p.sum() for p in self.params]).sum() * 0.0
        else:  # DDP divides by W: W (b_r / B) L_r averages to the global batch's gradient
            loss = loss * (self.world_size * n_local / n_rows)
        loss.backward()

    def _global_sums(self, sums: torch.Tensor):
        """Start the all-reduce (sum) of this process's sums with its past-the-deadline
        flag; the returned function waits for it (started before the backward pass, the
        all-reduce's latency, 0.8 ms with gloo here, hides behind it)."""
        late = self.deadline is not None and time.monotonic() > self.deadline
        vector = torch.cat([sums, sums.new_tensor([1.0 if late else 0.0])])
        work = self.dist.all_reduce(vector, async_op=True)

        def wait() -> torch.Tensor:
            work.wait()
            self.any_past_deadline = bool(vector[-1] > 0)
            return vector[:-1]
        return wait

    def _past_deadline(self) -> bool:
        return self.deadline is not None and self.any_past_deadline

    def _agree(self, reason: str | None) -> str | None:
        box = [reason]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def _save(self) -> None:
        if self.is_main:
            super()._save()
            return
        self.saved_at = (self.loop.epoch, self.loop.batch)
        self.last_checkpoint = time.monotonic()


# ----------------------------------------------------------------- spawned processes
def _spawn(trainer, module, loss_fn, train_data, valid_data, resume_from) -> TrainResult:
    """Run `trainer.world_size` processes, return rank 0's result and load its parameters
    into `module`."""
    cfg = copy.copy(trainer)
    if cfg.random_state is None:  # one seed for every process
        cfg.random_state = int(np.random.SeedSequence().entropy % 2**63)
    context = torch.multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="latentkit-ddp-") as folder:
        queue = context.SimpleQueue()
        store = "file://" + os.path.join(folder, "store")
        processes = [context.Process(target=_worker, daemon=True, args=(
            rank, cfg, store, module, loss_fn, train_data, valid_data, resume_from, queue))
            for rank in range(cfg.world_size)]
        replies = {}
        try:
            for process in processes:
                _start(process)
            replies = _collect(queue, processes)
        finally:
            _end(processes, wait=all(reply[0] is None for reply in replies.values())
                 and len(replies) == len(processes))
    errors = [replies[rank][0] for rank in sorted(replies) if replies[rank][0] is not None]
    if errors:
        raise errors[0]
    _, result, state = replies[0]
    module.load_state_dict(torch.load(io.BytesIO(state), weights_only=True))
    return result


def _start(process) -> None:
    try:
        process.start()
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InvalidParameterError(
            f"world_size= sends the module, loss_fn, data and callbacks to new processes by "
            f"pickle, and one of them cannot be pickled ({exc}); define them at module level "
            "(no lambdas or local functions), or launch with torchrun.") from None


def _end(processes, *, wait: bool) -> None:
    """Let the processes exit (up to `_GRACE_SECONDS` when they all replied: ending one
    mid-exit can leak its semaphores), then end those still running."""
    deadline = time.monotonic() + (_GRACE_SECONDS if wait else 0.0)
    for process in processes:
        if process.pid is not None:
            process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
        if process.pid is not None:
            process.join()


def _collect(queue, processes) -> dict:
    """{rank: (error or None, result, state bytes)} from every process; after a failure
    the others get `_GRACE_SECONDS` before the caller ends them."""
    replies, failed_at = {}, None
    while len(replies) < len(processes):
        if not queue.empty():
            rank, error, result, state = queue.get()
            replies[rank] = (error, result, state)
            if error is not None and failed_at is None:
                failed_at = time.monotonic()
            continue
        if failed_at is not None and time.monotonic() - failed_at > _GRACE_SECONDS:
            break
        for rank, process in enumerate(processes):
            if rank not in replies and process.exitcode is not None and queue.empty():
                replies[rank] = (RuntimeError(
                    f"process {rank} of the data-parallel run exited with code "
                    f"{process.exitcode} without a result (killed, or out of memory?)"),
                    None, None)
                failed_at = failed_at or time.monotonic()
        time.sleep(0.01)
    return replies


def _worker(rank, cfg, store, module, loss_fn, train_data, valid_data, resume_from, queue):
    """One spawned process: join the group, fit, send (rank, None, result, rank 0's
    parameters as torch.save bytes) or (rank, the exception, None, None)."""
    import torch.distributed as dist

    try:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // cfg.world_size))
        backend = choose_backend(cfg.backend, cfg.device)
        if backend == "nccl":
            torch.cuda.set_device(rank)
        dist.init_process_group(backend, init_method=store, rank=rank,
                                world_size=cfg.world_size)
        # torch's pickling hands the tensors over in shared memory: the data may stay
        # shared (read only), the module must not (every process steps its own copy)
        module = copy.deepcopy(module)
        try:
            result = cfg.fit(module, loss_fn, train_data, valid_data, resume_from=resume_from)
        finally:
            dist.destroy_process_group()
        state = None
        if rank == 0:
            buffer = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buffer)
            state = buffer.getvalue()
        queue.put((rank, None, result, state))
    except BaseException as exc:  # noqa: BLE001 -- every failure goes back to the caller
        queue.put((rank, _portable(exc, rank, cfg.world_size), None, None))


def _portable(exc: BaseException, rank: int, world_size: int) -> BaseException:
    """exc with a note naming the process and its traceback, or a RuntimeError carrying
    them when exc cannot be pickled."""
    where = f"in process {rank} of {world_size}:\n{traceback.format_exc()}"
    try:
        exc.add_note(where)
        # the queue to the caller pickles it: does it survive the trip? (our own bytes, in
        # memory, between processes we started; nothing is read from a file)
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 -- an exception that does not survive pickling
        return RuntimeError(f"{type(exc).__name__}: {exc} ({where})")


__all__ = ["BACKENDS", "STRATEGIES", "check_no_batch_norm", "choose_backend",
           "fit_data_parallel", "in_process_group"]
