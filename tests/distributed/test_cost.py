"""The written cost model of a distributed EM iteration (`distributed.cost`) and the tree the
Dask source actually builds."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from latentkit.distributed.cost import ClusterModel, predict_iteration, tree_depth

SCALING = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"


def levels_by_pairing(n: int, k: int) -> int:
    """Brute force: merge a list of n leaves k at a time until one is left."""
    items, levels = list(range(n)), 0
    while len(items) > 1:
        items = [items[i:i + k] for i in range(0, len(items), k)]
        levels += 1
    return levels


@pytest.mark.parametrize("k", [2, 4, 8])
def test_tree_depth_is_the_levels_of_merging_k_at_a_time(k):
    for n in range(1, 300):
        assert tree_depth(n, k) == levels_by_pairing(n, k) == (
            0 if n == 1 else math.ceil(math.log(n, k) - 1e-12))


def test_the_dask_source_builds_a_tree_of_that_depth():
    da = pytest.importorskip("dask.array")
    from dask import delayed

    from latentkit.distributed import tree_reduce
    from latentkit.distributed.source import _sum

    for n in (1, 3, 4, 5, 17, 64, 65):
        parts = [delayed(float)(i) for i in range(n)]
        root, depth = tree_reduce(parts, _sum, 4)
        assert depth == tree_depth(n, 4)
        assert root.compute() == sum(range(n))
    assert da is not None


def test_one_worker_costs_the_serial_time_and_communication_lowers_efficiency():
    one = predict_iteration(ClusterModel(workers=1, latency=0.0), n_blocks=10,
                            block_seconds=0.1, params_bytes=1000, stats_bytes=1000)
    assert one["broadcast_s"] == 0.0 and one["waves"] == 10
    # one worker still ships each level of the tree sum (depth 2, 4 children of 1 kB)
    np.testing.assert_allclose(one["tree_sum_s"], 2 * 4 * 1000 / 1.25e9)
    np.testing.assert_allclose(one["efficiency"], 1.0 / (1.0 + one["tree_sum_s"] / 1.0))
    # 10 workers, 10 blocks: one wave; broadcast ⌈log2 10⌉ = 4 hops; a tree of depth 2
    ten = predict_iteration(ClusterModel(workers=10, bandwidth=1e6, latency=1e-3),
                            n_blocks=10, block_seconds=0.1, params_bytes=1000, stats_bytes=500)
    broadcast = 4 * (1e-3 + 1000 / 1e6)
    reduce = 2 * (1e-3 + 4 * 500 / 1e6)
    np.testing.assert_allclose(ten["iteration_s"], broadcast + 0.1 + reduce)
    np.testing.assert_allclose(ten["efficiency"], 1.0 / (10 * (broadcast + 0.1 + reduce)))
    assert ten["bytes_per_iteration"] == 10 * 1000 + 10 * 500


def test_the_scaling_pages_example_prints_what_the_model_says():
    text = SCALING.read_text()
    call = re.search(r"(predict_iteration\(ClusterModel\(workers=100.*?\))\n# (\{.*\})", text,
                     re.S)
    result = eval(call.group(1), {"predict_iteration": predict_iteration,  # noqa: S307
                                  "ClusterModel": ClusterModel})
    shown = dict(re.findall(r"'(\w+)': ([\d.]+)", call.group(2)))
    for name, value in shown.items():
        np.testing.assert_allclose(result[name], float(value), rtol=5e-3, err_msg=name)
