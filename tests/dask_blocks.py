"""Block readers for the Dask tests, in a module the worker processes can import (tests/ is
on their sys.path; a test module itself is not importable there)."""

import time


class SlowBlocks:
    """An array-like whose every read takes `delay` seconds (so that an EM iteration lasts
    long enough to kill a worker inside it)."""

    def __init__(self, X, delay):
        self.X, self.delay = X, delay
        self.shape, self.dtype, self.ndim = X.shape, X.dtype, X.ndim

    def __getitem__(self, key):
        time.sleep(self.delay)
        return self.X[key]
