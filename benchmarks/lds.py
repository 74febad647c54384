"""Linear dynamical systems against pykalman and filterpy, side by side in one run (issue 4).

Cases (the issue's goals):
  1. filter + smoother, T=20,000, state dim 8, obs dim 4: latentkit (compiled serial kernels;
     the associative scan for reference) vs pykalman's smooth (which runs its filter) and
     filterpy's batch_filter + rts_smoother. Goals: <= 0.05x pykalman, <= 0.2x filterpy.
  2. EM at T=2,000: seconds per iteration, from the same initial parameters with offsets
     held at 0 (pykalman updates them coordinate-wise), and the log-likelihood after the
     same number of iterations (goal: <= 0.05x pykalman, same log-likelihood to 1e-6 rel).
     Per-iteration time is the difference of a long and a short fit over the difference of
     their iterations, so set-up costs cancel.
  3. a batch of 1,000 sequences of length 200: filter + smoother throughput (steps/s).

Each time is the best of `repeats` runs. Prints a markdown section; it never writes
RESULTS.md (copy the section there when recording).

Usage: python benchmarks/lds.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import warnings

import numpy as np

import latentkit
from latentkit.dynamics import LDSParams, LinearDynamicalSystem, rts_smoother, simulate


def best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def system(n: int, p: int, seed: int) -> LDSParams:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    A *= 0.95 / np.max(np.abs(np.linalg.eigvals(A)))
    M = rng.normal(size=(n, n))
    Q = M @ M.T / n + 0.1 * np.eye(n)
    M = rng.normal(size=(p, p))
    R = M @ M.T / p + 0.5 * np.eye(p)
    return LDSParams(A, np.zeros(n), rng.normal(size=(p, n)), np.zeros(p), Q, R,
                     np.zeros(n), np.eye(n))


def filter_smoother(T: int, repeats: int) -> dict:
    from filterpy.kalman import KalmanFilter as FilterpyKF
    from pykalman import KalmanFilter as PykalmanKF

    params = system(8, 4, seed=0)
    X, _ = simulate(params, T, random_state=1)
    A, b, C, d, Q, R, mu0, V0 = params
    rts_smoother(X[:50], params)  # compile (or load the numba cache) outside the timing
    ours = best_time(lambda: rts_smoother(X, params, method="serial"), repeats)
    scan = best_time(lambda: rts_smoother(X, params, method="parallel"), 1)
    pk = PykalmanKF(A, C, Q, R, b, d, mu0, V0)
    pykalman = best_time(lambda: pk.smooth(X), 1)

    def run_filterpy():
        kf = FilterpyKF(dim_x=8, dim_z=4)
        kf.x, kf.P, kf.F, kf.H, kf.Q, kf.R = mu0.copy(), V0.copy(), A, C, Q, R
        means, covs, _, _ = kf.batch_filter(X, update_first=True)
        kf.rts_smoother(means, covs)

    filterpy = best_time(run_filterpy, 1)
    ref_mean = pk.smooth(X)[0]
    ours_mean = rts_smoother(X, params).mean
    return dict(T=T, ours=ours, scan=scan, pykalman=pykalman, filterpy=filterpy,
                max_diff=float(np.max(np.abs(ours_mean - ref_mean))))


def em(T: int, short: int, long: int, repeats: int) -> dict:
    from pykalman import KalmanFilter as PykalmanKF

    params = system(8, 4, seed=2)
    X, _ = simulate(params, T, random_state=3)
    start = system(8, 4, seed=4)
    A, b, C, d, Q, R, mu0, V0 = start
    em_vars = ["transition_matrices", "observation_matrices", "transition_covariance",
               "observation_covariance", "initial_state_mean", "initial_state_covariance"]

    def ours(iterations):
        model = LinearDynamicalSystem(
            8, transition_matrix=A, transition_offset=b, observation_matrix=C,
            observation_offset=d, transition_covariance=Q, observation_covariance=R,
            initial_state_mean=mu0, initial_state_covariance=V0,
            fixed=("transition_offset", "observation_offset"), reg_covar=0.0, tol=0.0,
            max_iter=iterations)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(X)

    def theirs(iterations):
        return PykalmanKF(A, C, Q, R, b, d, mu0, V0, em_vars=em_vars).em(X, n_iter=iterations)

    ours(1)
    ours_s = (best_time(lambda: ours(long), repeats)
              - best_time(lambda: ours(short), repeats)) / (long - short)
    theirs_s = (best_time(lambda: theirs(long), 1)
                - best_time(lambda: theirs(short), 1)) / (long - short)
    ll_ours = float(ours(long).score_samples(X)[0])
    ll_theirs = float(theirs(long).loglikelihood(X))
    return dict(T=T, iterations=long, ours=ours_s, pykalman=theirs_s,
                rel_diff=abs(ll_ours - ll_theirs) / abs(ll_theirs))


def batch(n_sequences: int, T: int, repeats: int) -> dict:
    params = system(8, 4, seed=5)
    X, _ = simulate(params, T, n_sequences=n_sequences, random_state=6)
    seconds = best_time(lambda: rts_smoother(X, params), repeats)
    return dict(n_sequences=n_sequences, T=T, seconds=seconds,
                steps_per_s=n_sequences * T / seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems (smoke test)")
    args = parser.parse_args()
    quick = args.quick
    fs = filter_smoother(2_000 if quick else 20_000, repeats=3)
    e = em(500 if quick else 2_000, 2, 4 if quick else 10, repeats=3)
    bt = batch(100 if quick else 1_000, 200, repeats=3)
    date = datetime.date.today().isoformat()
    cpu = platform.processor() or platform.machine()
    import filterpy
    import pykalman

    lines = [
        f"## Linear dynamical systems vs pykalman and filterpy — {date}",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu}), numpy {np.__version__}, pykalman "
        f"{pykalman.__version__}, filterpy {filterpy.__version__}, latentkit "
        f"{latentkit.__version__}. `python benchmarks/lds.py`.",
        "",
        "| case | latentkit | peer | ratio | goal |",
        "|---|---|---|---|---|",
        f"| filter + smoother, T={fs['T']:,}, n=8, p=4 | {fs['ours']:.4f} s | pykalman "
        f"{fs['pykalman']:.3f} s | **{fs['ours'] / fs['pykalman']:.3f}x** | <= 0.05x |",
        f"| same | {fs['ours']:.4f} s | filterpy {fs['filterpy']:.3f} s | "
        f"**{fs['ours'] / fs['filterpy']:.3f}x** | <= 0.2x |",
        f"| same, associative scan (NumPy) | {fs['scan']:.4f} s | serial (numba) "
        f"{fs['ours']:.4f} s | {fs['scan'] / fs['ours']:.1f}x | (reference) |",
        f"| EM per iteration, T={e['T']:,}, n=8, p=4 | {e['ours'] * 1e3:.2f} ms | pykalman "
        f"{e['pykalman'] * 1e3:.1f} ms | **{e['ours'] / e['pykalman']:.3f}x** | <= 0.05x |",
        "",
        f"Smoothed means vs pykalman: max abs difference {fs['max_diff']:.1e}. EM "
        f"log-likelihood after {e['iterations']} iterations from the same start: relative "
        f"difference {e['rel_diff']:.1e} (goal <= 1e-6).",
        "",
        f"Batch of {bt['n_sequences']:,} sequences of length {bt['T']} (n=8, p=4): filter + "
        f"smoother in {bt['seconds']:.3f} s, **{bt['steps_per_s'] / 1e6:.2f} M time "
        f"steps/s** (pykalman: {fs['T'] / fs['pykalman'] / 1e6:.3f} M steps/s on case 1).",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
