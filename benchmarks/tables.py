"""The command line's table reader against pandas.read_csv on 1,000,000 x 10 floats.

Writes a temporary CSV (a header and 1,000,000 rows of 10 random floats, as
`DataFrame.to_csv(index=False)` writes them), then times `latentkit.tables.read_table` and
`pandas.read_csv(...).to_numpy()` (its default C engine), best of 3 each, and prints the
ratio. The goal: our reader within 2x of pandas.

    python benchmarks/tables.py [--rows N] [--cols D]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd

from latentkit.tables import read_table


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(args.rows, args.cols)),
                         columns=[f"f{j}" for j in range(args.cols)])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "table.csv")
        frame.to_csv(path, index=False)
        size = os.path.getsize(path) / 2**20
        ours = read_table(path)
        theirs = pd.read_csv(path).to_numpy()
        # pandas' default float parser may differ from the correctly rounded one by an ulp
        assert ours.X.shape == theirs.shape and np.allclose(ours.X, theirs, rtol=1e-15, atol=0)
        latentkit_s = best_of(lambda: read_table(path))
        pandas_s = best_of(lambda: pd.read_csv(path).to_numpy())
    print(f"read {args.rows:,} x {args.cols} floats ({size:.0f} MiB CSV), best of 3, "
          f"{os.cpu_count()} CPUs")
    print(f"  latentkit.tables.read_table  {latentkit_s:7.3f} s")
    print(f"  pandas.read_csv (C engine)   {pandas_s:7.3f} s")
    print(f"  ratio latentkit / pandas     {latentkit_s / pandas_s:7.2f}  (goal: <= 2)")


if __name__ == "__main__":
    main()
