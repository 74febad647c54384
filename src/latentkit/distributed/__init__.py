"""Beyond one machine (DESIGN section 5): EM on Dask and the cost model of a cluster.

Every EM family fits a Dask array (or DataFrame) as it fits an in-memory one: `fit(X)` with
X a `dask.array.Array` runs each E-step where the chunks live, with θ scattered once per
iteration, tree-sums the additive statistics and runs the M-step here (`DaskSource`). It
uses the `distributed.Client` already open, or `connect("local:2")` /
`connect("tcp://scheduler:8786")`, or with none Dask's threads. Deep models scale with
PyTorch DDP instead (`Trainer(strategy="ddp")`). Importing this package needs dask.
"""

from .cluster import active_client, connect, parse_spec
from .cost import ClusterModel, predict_iteration
from .source import DaskSource, Traffic, as_dask_array, tree_reduce

__all__ = ["ClusterModel", "DaskSource", "Traffic", "active_client", "as_dask_array",
           "connect", "parse_spec", "predict_iteration", "tree_reduce"]
