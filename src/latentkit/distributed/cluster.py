"""Which cluster a fit runs on: the `distributed.Client` the user already has, one opened
from a short spec (`connect`), or none (Dask's threaded scheduler in this process).

    with connect("local:2"):                 # a LocalCluster of 2 worker processes
        GaussianMixture(5).fit(da.from_zarr("X.zarr"))
    with connect("tcp://scheduler:8786"):    # a running cluster's scheduler
        ...
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from ..exceptions import InvalidParameterError

_LOCAL = re.compile(r"local(?::(\d+))?$")
_SPEC_HELP = ("give 'local:N' for a LocalCluster of N worker processes on this machine, or "
              "a scheduler address such as 'tcp://scheduler:8786'")


def active_client():
    """The `distributed.Client` in use (`Client(...)` made it the default, or a `with
    Client(...)` block), or None: Dask then runs on threads in this process."""
    try:
        from distributed import default_client
    except ImportError:  # dask without distributed: threads only
        return None
    try:
        return default_client()
    except ValueError:  # "No clients found"
        return None


def worker_count(client) -> int:
    """The workers of `client`'s cluster (1 without a client: this process)."""
    if client is None:
        return 1
    return max(1, len(client.scheduler_info(n_workers=-1)["workers"]))


def parse_spec(spec: str) -> tuple[str, int | str]:
    """("local", n_workers) for 'local' / 'local:N', ("address", spec) for a scheduler
    address (tcp://, tls://, ucx://, inproc:// or host:port)."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidParameterError(f"dask must be a cluster spec; got {spec!r}: {_SPEC_HELP}.")
    spec = spec.strip()
    local = _LOCAL.match(spec)
    if local:
        n = int(local.group(1) or 2)
        if n < 1:
            raise InvalidParameterError(f"dask={spec!r}: a LocalCluster needs at least one "
                                        "worker (local:1 or more).")
        return "local", n
    if "://" in spec or re.match(r"^[\w.\-]+:\d+$", spec):
        return "address", spec
    raise InvalidParameterError(f"dask={spec!r} is not a cluster spec: {_SPEC_HELP}.")


@contextmanager
def connect(spec: str, *, memory_limit: str | None = "auto", threads_per_worker: int = 1):
    """A `distributed.Client` for `spec` ('local:N' or a scheduler address), the default
    client inside the block; a LocalCluster it started is closed on leaving.

    memory_limit : each local worker's limit ("2GB", "auto" = the machine's memory shared
    out); threads_per_worker : threads of each local worker process (1: the E-step's BLAS
    then has a core to itself per worker).
    """
    from distributed import Client, LocalCluster

    kind, value = parse_spec(spec)
    if kind == "address":
        with Client(value) as client:
            yield client
        return
    with LocalCluster(n_workers=value, threads_per_worker=threads_per_worker,
                      processes=True, memory_limit=memory_limit, dashboard_address=":0",
                      silence_logs=40) as cluster, Client(cluster) as client:
        yield client


__all__ = ["active_client", "connect", "parse_spec", "worker_count"]
