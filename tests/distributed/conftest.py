"""One LocalCluster of 2 worker processes for the Dask tests (the issue's test cluster)."""

import pytest


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes, one thread each, as the default client (per test
    module: no cluster outlives the tests that asked for it)."""
    pytest.importorskip("distributed")
    from latentkit.distributed import connect

    with connect("local:2", memory_limit="1GB") as client:
        yield client
