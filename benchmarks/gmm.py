"""GaussianMixture EM against scikit-learn, side by side in one run (issue: Foundation).

Same data, same initial parameters, same iterations. Time per EM iteration is measured as
the difference between fits of `long` and `short` iterations divided by their difference,
so each library's initialization and set-up cost cancel out. Also measured: numpy's GEMM
rate on this machine (the ceiling), achieved GFLOP/s, and an out-of-core fit from a
memory-mapped float32 file with its peak RSS (in a child process).

Usage: python benchmarks/gmm.py [--quick] [--no-ooc] [--write]
  --write appends the table to benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import sklearn
from sklearn.mixture import GaussianMixture as SklearnGM

import latentkit
from latentkit import GaussianMixture
from latentkit.datasets import make_mixture

HERE = os.path.dirname(os.path.abspath(__file__))


def gemm_rate(dtype, n=4096, repeats=3) -> float:
    """GFLOP/s of one large matrix product (the machine's BLAS ceiling)."""
    a = np.random.default_rng(0).normal(size=(n, n)).astype(dtype)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def em_flops(n, d, k, covariance_type) -> float:
    """Floating-point operations of one EM iteration, counting the dominant products:
    full: E-step Mahalanobis 2nKD² + M-step scatter 2nKD²; diag: 3 GEMMs of 2nKD each."""
    if covariance_type == "full":
        return 4.0 * n * k * d * d
    return 2.0 * n * k * d * 5


def per_iteration(make, X, short, long, repeats):
    """(seconds per iteration, final mean log-likelihood of the long fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = {}
        for iters in (short, long):
            times[iters] = min(_timed(lambda n=iters: make(n).fit(X)) for _ in range(repeats))
        model = make(long).fit(X)
    return (times[long] - times[short]) / (long - short), model


def compare(X, k, covariance_type, init, short, long, repeats):
    common = dict(covariance_type=covariance_type, tol=0.0, **init)
    ours_t, ours = per_iteration(lambda it: GaussianMixture(k, max_iter=it, **common),
                                 X, short, long, repeats)
    # init_params="random": scikit-learn computes initial responsibilities even when all
    # initial parameters are given; random ones are the cheapest (and then overridden).
    X64 = X.astype(np.float64)
    sk_t, sk = per_iteration(
        lambda it: SklearnGM(k, max_iter=it, init_params="random", **common),
        X64, short, long, repeats)
    ll_ours = ours.score(X)
    ll_sk = sk.score(X64)
    return dict(ours_s=ours_t, sklearn_s=sk_t, ratio=ours_t / sk_t, ll_ours=ll_ours,
                ll_sklearn=ll_sk, ll_rel_diff=abs(ll_ours - ll_sk) / abs(ll_sk))


def initial_parameters(X, k, covariance_type):
    """Initial weights, means and precisions from one k-means++ EM step (ours), in float64."""
    start = GaussianMixture(k, covariance_type=covariance_type, max_iter=0,
                            init_params="kmeans++", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(X[:20000].astype(np.float64))
    return dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)


OOC_CHILD = r"""
import json, sys, time, warnings
import numpy as np
from latentkit import GaussianMixture
path, k, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
X = np.load(path, mmap_mode="r")
model = GaussianMixture(k, covariance_type="full", max_iter=iters, tol=0.0, random_state=0,
                        init_params="kmeans++")
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model.fit(X)
elapsed = time.perf_counter() - start
# VmHWM: the peak RSS of this address space (ru_maxrss would carry the parent's over exec)
with open("/proc/self/status") as fh:
    peak_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
print(json.dumps(dict(seconds=elapsed, iterations=model.n_iter_, peak_rss_mb=peak_kb / 1024,
                      loglik=float(model.lower_bound_))))
"""


def out_of_core(n, d, k, iters):
    """Fit from a memory-mapped float32 .npy of n rows in a child process; peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.npy")
        rng = np.random.default_rng(0)
        centers = rng.normal(0, 4, (k, d))
        X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
        block = 1_000_000
        for start in range(0, n, block):
            m = min(block, n - start)
            X[start:start + m] = centers[rng.integers(k, size=m)] + rng.normal(size=(m, d))
        X.flush()
        del X
        out = subprocess.run([sys.executable, "-c", OOC_CHILD, path, str(k), str(iters)],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result.update(n=n, d=d, k=k, file_mb=n * d * 4 / 2**20)
        return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--no-ooc", action="store_true", help="skip the out-of-core case")
    parser.add_argument("--write", action="store_true", help="append to RESULTS.md")
    args = parser.parse_args()
    n, d, k = (20_000, 16, 8) if args.quick else (200_000, 32, 16)
    short, long, repeats = (2, 6, 1) if args.quick else (2, 10, 3)

    data = make_mixture(n_samples=n, n_components=k, n_features=d, separation=6.0,
                        random_state=0)
    X64 = data.X
    rows = []
    gemm = {"float64": gemm_rate(np.float64), "float32": gemm_rate(np.float32)}
    print(f"GEMM: float64 {gemm['float64']:.1f} GFLOP/s, float32 {gemm['float32']:.1f} GFLOP/s")
    for covariance_type, dtype in (("full", np.float64), ("full", np.float32),
                                   ("diag", np.float64), ("diag", np.float32)):
        init = initial_parameters(X64, k, covariance_type)
        r = compare(X64.astype(dtype), k, covariance_type, init, short, long, repeats)
        flops = em_flops(n, d, k, covariance_type)
        r.update(case=f"{covariance_type} {np.dtype(dtype).name}", n=n, d=d, k=k,
                 gflops=flops / r["ours_s"] / 1e9, gemm=gemm[np.dtype(dtype).name])
        rows.append(r)
        print(f"{r['case']:14s} ours {r['ours_s']:.4f} s/iter  scikit-learn "
              f"{r['sklearn_s']:.4f} s/iter (float64)  ratio {r['ratio']:.3f}  "
              f"{r['gflops']:.1f} GFLOP/s ({100 * r['gflops'] / r['gemm']:.0f}% of GEMM)  "
              f"log-lik rel diff {r['ll_rel_diff']:.1e}")
    ooc = None
    if not args.no_ooc:
        ooc_n = 1_000_000 if args.quick else 10_000_000
        ooc = out_of_core(ooc_n, 16, 8, iters=3)
        print(f"out of core: N={ooc['n']:,} D=16 K=8 float32 memmap ({ooc['file_mb']:.0f} MB): "
              f"{ooc['seconds']:.1f} s for {ooc['iterations']} iterations, peak RSS "
              f"{ooc['peak_rss_mb']:.0f} MB")
    if args.write:
        write_results(rows, gemm, ooc)


def write_results(rows, gemm, ooc):
    date = datetime.date.today().isoformat()
    cpu = platform.processor() or platform.machine()
    lines = [
        f"\n## GaussianMixture EM vs scikit-learn — {date}",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu}), numpy {np.__version__}, scikit-learn "
        f"{sklearn.__version__}, latentkit {latentkit.__version__}. GEMM ceiling: float64 "
        f"{gemm['float64']:.0f} GFLOP/s, float32 {gemm['float32']:.0f} GFLOP/s. "
        "scikit-learn always runs in float64 here (the ratio for float32 rows is against its "
        "float64 time, as the goal states). `python benchmarks/gmm.py --write`.",
        "",
        "| case | N | D | K | latentkit s/iter | scikit-learn s/iter | ratio | GFLOP/s "
        "| % of GEMM | log-lik rel. diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['n']:,} | {r['d']} | {r['k']} | {r['ours_s']:.4f} | "
            f"{r['sklearn_s']:.4f} | **{r['ratio']:.3f}x** | {r['gflops']:.1f} | "
            f"{100 * r['gflops'] / r['gemm']:.0f}% | {r['ll_rel_diff']:.1e} |")
    if ooc:
        lines += ["", f"Out of core: N={ooc['n']:,}, D={ooc['d']}, K={ooc['k']} from a "
                  f"memory-mapped float32 `.npy` ({ooc['file_mb']:.0f} MB): "
                  f"{ooc['seconds']:.1f} s for {ooc['iterations']} EM iterations "
                  f"(init included), peak RSS **{ooc['peak_rss_mb']:.0f} MB**."]
    with open(os.path.join(HERE, "RESULTS.md"), "a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
