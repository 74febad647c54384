"""A written model of one distributed EM iteration, to predict the time on a cluster from
figures measured on one machine.

One iteration over B blocks on W workers (`DaskSource.map_reduce`):

    broadcast   θ to every worker, a tree of fan-out 2:   ⌈log2 W⌉ (ℓ + |θ| / β)
    E-steps     ⌈B / W⌉ waves of one block per worker:     ⌈B / W⌉ t_block
    tree sum    depth d = ⌈log_k B⌉ levels, each a node
                receiving k children's statistics:        d (ℓ + k |s| / β)
    M-step      on the client:                            t_M

with ℓ the per-message latency (Dask's task overhead, ~1 ms), β the bandwidth of one link,
|θ| and |s| the pickled sizes of the parameters and of one block's statistics
(`DaskSource.traffic`), k the tree's fan-in. The bytes on the wire per iteration are at most
W |θ| + B |s|: independent of N, the rows, which is why EM scales out. Parallel efficiency is
the E-step time on one worker over W times the predicted time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterModel:
    """A cluster: `workers` processes, links of `bandwidth` bytes/s, `latency` s per message,
    the tree sum's fan-in `split_every`."""

    workers: int
    bandwidth: float = 1.25e9  # 10 Gbit/s
    latency: float = 1e-3
    split_every: int = 4


def tree_depth(n_blocks: int, split_every: int) -> int:
    """⌈log_k B⌉: the levels of a tree sum of B leaves with fan-in k (0 for one block)."""
    depth, n = 0, max(1, int(n_blocks))
    while n > 1:
        n, depth = math.ceil(n / split_every), depth + 1
    return depth


def predict_iteration(cluster: ClusterModel, *, n_blocks: int, block_seconds: float,
                      params_bytes: int, stats_bytes: int, m_step_seconds: float = 0.0) -> dict:
    """The model's time (s) of one iteration, its parts, the bytes on the wire and the
    parallel efficiency against one worker doing every block with no communication."""
    W = cluster.workers
    broadcast = math.ceil(math.log2(W)) * (cluster.latency + params_bytes / cluster.bandwidth) \
        if W > 1 else 0.0
    waves = math.ceil(n_blocks / W)
    e_steps = waves * block_seconds
    depth = tree_depth(n_blocks, cluster.split_every)
    reduce = depth * (cluster.latency + cluster.split_every * stats_bytes / cluster.bandwidth)
    total = broadcast + e_steps + reduce + m_step_seconds
    serial = n_blocks * block_seconds + m_step_seconds
    return dict(workers=W, blocks=n_blocks, waves=waves, tree_depth=depth,
                broadcast_s=broadcast, e_step_s=e_steps, tree_sum_s=reduce,
                m_step_s=m_step_seconds, iteration_s=total,
                bytes_per_iteration=W * params_bytes + n_blocks * stats_bytes,
                efficiency=serial / (W * total))


__all__ = ["ClusterModel", "predict_iteration", "tree_depth"]
