"""EM on Dask equals EM in memory (issue 16): for every EM family, a fit on a Dask array on a
LocalCluster of 2 worker processes gives the in-memory fit's parameters and log-likelihood
trajectory to 1e-10 (float64); the result does not depend on the chunking; a worker killed
mid-iteration costs a recomputation, not a wrong fit."""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

from dask_blocks import SlowBlocks  # noqa: E402
from helpers import assert_same_fit  # noqa: E402
from latentkit import (  # noqa: E402
    PPCA,
    BernoulliMixture,
    CategoricalMixture,
    ConvergenceWarning,
    FactorAnalysis,
    GaussianMixture,
    MixtureOfPPCA,
)
from latentkit.bayesnet import DiscreteBayesNet  # noqa: E402
from latentkit.bayesnet.synthetic import make_random_network  # noqa: E402
from latentkit.distributed import DaskSource  # noqa: E402


def blobs(n=900, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(3, d))
    return np.concatenate([rng.normal(c, 1.0, size=(n // 3, d)) for c in centres])


def with_missing(X, fraction=0.1, seed=1):
    X = X.copy()
    X[np.random.default_rng(seed).random(X.shape) < fraction] = np.nan
    X[:, 0][np.isnan(X[:, 0]).all()] = 0.0
    return X


def binary(n=800, d=8, seed=2):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    p = np.where(z[:, None] == 0, 0.2, 0.8) * np.ones(d)
    return (rng.random((n, d)) < p).astype(float)


def codes(n=800, seed=3):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 3, n)
    X = np.column_stack([(z + rng.integers(0, 2, n)) % L for L in (2, 3, 4, 3)]).astype(float)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def network_data():
    truth = make_random_network(6, random_state=8, hidden=["X3"])
    X, _ = truth.sample(1200, random_state=9)
    X[np.random.default_rng(10).random(X.shape) < 0.2] = np.nan
    model = DiscreteBayesNet(edges=truth.edges, cardinalities=truth.cardinalities,
                             hidden=truth.hidden, random_state=0, tol=0.0, max_iter=6)
    return model, X


FIXED = dict(tol=0.0, max_iter=8, random_state=0)
CASES = {
    "gmm-full-n_init": (lambda: GaussianMixture(3, n_init=2, **FIXED), blobs()),
    "gmm-diag-missing": (lambda: GaussianMixture(3, covariance_type="diag", **FIXED),
                         with_missing(blobs(d=4))),
    "bernoulli": (lambda: BernoulliMixture(2, **FIXED), binary()),
    "categorical-missing": (lambda: CategoricalMixture(3, **FIXED), codes()),
    "mppca": (lambda: MixtureOfPPCA(2, n_latent=2, **FIXED), blobs(d=5)),
    "ppca-missing": (lambda: PPCA(2, solver="em", **FIXED), with_missing(blobs(d=5))),
    "fa": (lambda: FactorAnalysis(2, solver="em", **FIXED), blobs(d=5)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_em_family_on_a_local_cluster_equals_the_in_memory_fit(client, name):
    make, X = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached, on purpose
        memory = make().fit(X)
        distributed = make().fit(da.from_array(X, chunks=(170, -1)))
    assert_same_fit(distributed, memory)


def test_bayes_net_with_a_hidden_variable_on_a_local_cluster(client):
    model, X = network_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = model.fit(X)
        model, _ = network_data()
        distributed = model.fit(da.from_array(X, chunks=(250, -1)))
    assert_same_fit(distributed, memory)


def test_threaded_scheduler_without_a_client_gives_the_same_fit():
    X = blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = GaussianMixture(3, **FIXED).fit(X)
        threaded = GaussianMixture(3, **FIXED).fit(da.from_array(X, chunks=(128, -1)))
    assert_same_fit(threaded, memory)


@pytest.mark.parametrize("chunks", [(61, 3), (450, 2), (900, 3)])
def test_the_fit_does_not_depend_on_the_chunking(client, chunks):
    """Rows per block from 61 (15 blocks, a tree of depth 2) to one block, and the columns
    split in two: the same parameters to round-off."""
    X = with_missing(blobs())
    kwargs = dict(covariance_type="full", **FIXED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = GaussianMixture(3, **kwargs).fit(X)
        chunked = GaussianMixture(3, **kwargs).fit(da.from_array(X, chunks=chunks))
    assert_same_fit(chunked, memory)


def test_a_dask_dataframe_of_numeric_columns_is_tabular_data(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X = blobs()
    frame = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = GaussianMixture(3, **FIXED).fit(X)
        distributed = GaussianMixture(3, **FIXED).fit(frame)
    assert_same_fit(distributed, memory)


def test_bad_values_are_named_by_their_row_in_the_whole_array(client):
    from latentkit.exceptions import InvalidInputError

    X = blobs()
    X[433, 1] = np.inf
    with pytest.raises(InvalidInputError, match="row 433"):
        GaussianMixture(3).fit(da.from_array(X, chunks=(100, -1)))
    X = blobs()
    X[:, 2] = np.nan
    with pytest.raises(InvalidInputError, match="column 2"):
        GaussianMixture(3).fit(da.from_array(X, chunks=(100, -1)))


def test_parameters_travel_once_per_worker_and_statistics_once_per_block(client):
    """What an iteration communicates: θ scattered to 2 workers, one statistics record per
    block (their pickled sizes), and a tree of depth ⌈log4 B⌉; none of it grows with N."""
    sizes = {}
    for n in (600, 6000):
        source = DaskSource(da.from_array(blobs(n=n), chunks=(n // 8, -1)), allow_nan=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            GaussianMixture(3, **FIXED).fit(source)
        sizes[n] = source.traffic
    small, large = sizes[600], sizes[6000]
    assert small.blocks == large.blocks == 8 and small.depth == large.depth == 2
    assert small.workers == 2 and small.iterations == FIXED["max_iter"]
    assert large.stats_bytes == small.stats_bytes  # the statistics' size is N-free
    assert large.per_iteration_bytes == small.per_iteration_bytes < 20_000


@pytest.mark.parametrize("persist", [False, True])
def test_a_worker_killed_mid_iteration_does_not_change_the_fit(client, persist):
    """A worker process is killed (SIGKILL) and the fit still equals the in-memory one.
    persist=False: the blocks are read anew each iteration (~0.1 s per block, 12 blocks on 2
    workers) and the kill lands inside iteration 3, whose lost tasks Dask recomputes on the
    survivor and the restarted worker. persist=True: the blocks live on the workers, the
    kill comes between iterations 2 and 3, and the dead worker's blocks are recomputed
    from their source."""
    X = blobs(n=1200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = GaussianMixture(3, **FIXED).fit(X)
    victim = sorted(client.run(os.getpid).values())[0]
    times, second_done = {}, threading.Event()

    def kill():
        os.kill(victim, signal.SIGKILL)
        times["kill"] = time.perf_counter()

    def on_iteration(step):
        times[step.iteration] = time.perf_counter()
        if step.iteration == 2:
            kill() if persist else second_done.set()

    def kill_inside_iteration_three():
        if second_done.wait(60) and "kill" not in times:
            time.sleep(0.25)
            kill()

    thread = threading.Thread(target=kill_inside_iteration_three)
    if not persist:
        thread.start()
    slow = da.from_array(SlowBlocks(X, 0.1), chunks=(100, -1))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            distributed = GaussianMixture(3, callbacks=[on_iteration], **FIXED).fit(
                DaskSource(slow, allow_nan=False, persist=persist))
    finally:
        if not persist:
            second_done.set()
            thread.join()
    assert victim not in client.run(os.getpid).values()  # it died; the nanny restarted it
    assert times[2] <= times["kill"] < times[3]  # after iteration 2's end, before 3's
    assert_same_fit(distributed, memory)


def test_restarts_run_at_once_on_the_cluster(client):
    """n_init=3: the three runs' iterations come from three client threads and overlap in
    time (each run's first iteration ends before another run's last), and the fit is still
    the in-memory one."""
    X = blobs()
    seen = []

    def record(step):
        seen.append((threading.get_ident(), time.perf_counter()))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = GaussianMixture(3, n_init=3, **FIXED).fit(X)
        slow = da.from_array(SlowBlocks(X, 0.02), chunks=(150, -1))  # iterations of ~0.1 s
        distributed = GaussianMixture(3, n_init=3, callbacks=[record], **FIXED).fit(
            DaskSource(slow, allow_nan=False, persist=False))
    runs = {}
    for ident, t in seen:
        runs.setdefault(ident, []).append(t)
    assert len(runs) == 3 and all(len(times) == FIXED["max_iter"] for times in runs.values())
    first_ends = min(max(times) for times in runs.values())
    assert all(min(times) < first_ends for times in runs.values())  # they overlapped
    assert_same_fit(distributed, memory)
