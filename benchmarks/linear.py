"""Linear-Gaussian models against scikit-learn, side by side in one run (issue 3).

Cases (goals from the issue):
- PCA, N=100,000, D=512, M=32: our fastest solver vs scikit-learn's fastest, float64
  (goal <= 1.0x) and our float32 against scikit-learn's fastest float64 (goal <= 0.6x; both
  libraries' float32 runs at the float32 GEMM limit, shown for reference); randomized vs
  randomized (goal <= 1.0x).
- FactorAnalysis, N=50,000, D=128, M=16: time to scikit-learn's final log-likelihood
  (1e-6 relative); goal <= 0.1x.
- PPCA EM with 20% missing (MCAR), N=100,000, D=256, M=16: seconds per EM iteration against
  the complete-data iteration on the same rows (per-row E-step: chunks streamed; and the
  in-memory moment E-step); goal within 3x of the per-row complete iteration.
- ICA / MixtureOfPPCA: see the section marked "other linear models" (added separately).

Each timing is the best of `--repeats` runs. Prints a markdown section (date, machine,
figures, ratio vs goal). Usage: python benchmarks/linear.py [--quick] [--repeats R]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import warnings
from functools import partial

import numpy as np
import sklearn
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.decomposition import FactorAnalysis as SklearnFA

import latentkit
from latentkit import PCA, PPCA, FactorAnalysis
from latentkit.linear import _lg_em as lg
from latentkit.linear._lg_base import init as lg_init


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def fit(model, X):
    return model.fit(X)


def low_rank(n, d, m, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, m)) * np.linspace(3, 1, m)
    X = rng.normal(size=(n, m)) @ W.T + rng.normal(size=(n, d)) + 2.0
    return X.astype(dtype)


def bench_pca(n, d, m, repeats):
    rows = []
    for dtype in (np.float64, np.float32):
        X = low_rank(n, d, m, dtype=dtype)
        ours, theirs = {}, {}
        for s in ("covariance_eigh", "randomized"):  # interleaved: load affects both alike
            ours[s] = best_time(partial(fit, PCA(m, svd_solver=s, random_state=0), X),
                                repeats)[0]
            theirs[s] = best_time(partial(fit, SklearnPCA(m, svd_solver=s, random_state=0), X),
                                  repeats)[0]
        name = np.dtype(dtype).name
        fastest_ours, fastest_theirs = min(ours.values()), min(theirs.values())
        solvers = f"ours {min(ours, key=ours.get)}, sklearn {min(theirs, key=theirs.get)}"
        if dtype == np.float64:
            sklearn_fastest_float64 = fastest_theirs
            rows.append(("PCA fastest solver, float64", fastest_ours, fastest_theirs, 1.0,
                         solvers))
        else:  # the goal: our float32 against scikit-learn's fastest float64 fit
            rows.append(("PCA fastest solver, float32 vs sklearn float64", fastest_ours,
                         sklearn_fastest_float64, 0.6, solvers))
            rows.append(("PCA fastest solver, float32 vs sklearn float32", fastest_ours,
                         fastest_theirs, None, solvers))
        rows.append((f"PCA randomized, {name}", ours["randomized"], theirs["randomized"],
                     1.0, ""))
        rows.append((f"PCA covariance_eigh, {name}", ours["covariance_eigh"],
                     theirs["covariance_eigh"], None, ""))
    return rows


def bench_fa(n, d, m, repeats):
    X = low_rank(n, d, m, seed=1)
    ref_time, ref = best_time(lambda: SklearnFA(m, random_state=0).fit(X), repeats)
    target = ref.score(X)

    def ours_to_target():
        # stops at the first iteration whose log-likelihood reaches the reference's
        def stop(info):
            return bool(info.log_likelihood >= target - 1e-6 * abs(target))
        return FactorAnalysis(m, max_iter=10000, tol=0.0, callbacks=[stop]).fit(X)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_time, model = best_time(ours_to_target, repeats)
    note = (f"sklearn {ref.n_iter_} it., ll {target:.8g}; ours {model.n_iter_} it., "
            f"ll {model.score(X):.8g}")
    return [("FactorAnalysis to sklearn's log-likelihood (1e-6 rel.)", ours_time, ref_time,
             0.1, note)]


def bench_ppca_missing(n, d, m, repeats, rate=0.2):
    X = low_rank(n, d, m, seed=2)
    Xm = X.copy()
    Xm[np.random.default_rng(3).random(X.shape) < rate] = np.nan
    config = lg.LGConfig(m, isotropic=True)
    params, state = lg_init(X[:20000], None, config, 0)
    chunk = 8192

    def per_row(data):
        total = None
        for start in range(0, len(data), chunk):
            stats, _ = lg.e_step(params, state, config, data[start:start + chunk])
            total = stats if total is None else total + stats
        return lg.m_step(total, params, state, config)

    moments = lg.Moments(X)
    complete, _ = best_time(lambda: per_row(X), repeats)
    missing, _ = best_time(lambda: per_row(Xm), repeats)
    moment, _ = best_time(lambda: lg.m_step(lg.e_step(params, state, config, moments)[0],
                                            params, state, config), repeats)
    # the whole fit, through the engine (threads over chunks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_time, fitted = best_time(lambda: PPCA(m, solver="em", max_iter=10, tol=0.0)
                                     .fit(Xm), 1)
    return [
        (f"PPCA EM iteration, {int(rate * 100)}% missing vs complete (per-row E-step)",
         missing, complete, 3.0, "one thread, 8192-row chunks"),
        ("PPCA EM iteration, complete, moment E-step (O(D^2 M))", moment, complete, None,
         "vs the per-row complete iteration"),
        (f"PPCA EM fit, {int(rate * 100)}% missing, 10 iterations (engine, threads)",
         fit_time / 10, complete, None, "per iteration"),
    ]


def bench_ica(n, d, m, repeats):
    """FastICA (logcosh, parallel) from the same w_init as scikit-learn's; no goal set."""
    from sklearn.decomposition import FastICA as SklearnFastICA

    from latentkit import FastICA

    rng = np.random.default_rng(4)
    S = rng.laplace(size=(n, m))
    X = S @ rng.normal(size=(d, m)).T + 0.1 * rng.normal(size=(n, d))
    w_init = rng.normal(size=(m, m))
    kwargs = dict(w_init=w_init, tol=1e-4, max_iter=400)
    ours_time, ours = best_time(lambda: FastICA(m, **kwargs).fit(X), repeats)
    ref_time, ref = best_time(lambda: SklearnFastICA(m, **kwargs).fit(X), repeats)
    same = np.abs(ours.components_ - ref.components_).max() / np.abs(ref.components_).max()
    return [(f"FastICA fit, N={n}, D={d}, M={m} (logcosh, parallel)", ours_time, ref_time,
             None, f"same start; {ours.n_iter_} vs {ref.n_iter_} iterations; components "
                   f"differ by {same:.1e} (relative)")]


def bench_mppca(n, d, k, m, repeats):
    """MixtureOfPPCA EM iteration against scikit-learn GaussianMixture's (full covariance):
    no peer implements MPPCA; the GMM iteration is the nearest reference."""
    from sklearn.mixture import GaussianMixture as SklearnGMM

    from latentkit import MixtureOfPPCA

    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(size=(n // k, m)) @ rng.normal(size=(d, m)).T
                        + 5 * rng.normal(size=d) + 0.1 * rng.normal(size=(n // k, d))
                        for _ in range(k)])
    iterations = 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_time, _ = best_time(lambda: MixtureOfPPCA(k, m, max_iter=iterations, tol=0.0,
                                                       random_state=0).fit(X), repeats)
        ref_time, _ = best_time(lambda: SklearnGMM(k, max_iter=iterations, tol=0.0,
                                                   random_state=0).fit(X), repeats)
    return [(f"MixtureOfPPCA fit, N={n}, D={d}, K={k}, M={m}, {iterations} iterations",
             ours_time, ref_time, None, "reference: scikit-learn GaussianMixture (full), "
             "same K and iterations, k-means init in both")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    repeats = 1 if args.quick else args.repeats
    rows = []
    rows += bench_pca(100_000 // scale, 512, 32, repeats)
    rows += bench_fa(50_000 // scale, 128, 16, repeats)
    rows += bench_ppca_missing(100_000 // scale, 256, 16, repeats)
    # -- other linear models (ICA, MixtureOfPPCA): append their rows here ---------------
    rows += bench_ica(100_000 // scale, 64, 16, repeats)
    rows += bench_mppca(50_000 // scale, 64, 10, 5, repeats)
    print(f"## Linear-Gaussian models (benchmarks/linear.py{' --quick' if args.quick else ''})")
    print()
    print(f"{datetime.date.today()}, {platform.machine()} {platform.processor() or ''}, "
          f"{os.cpu_count()} cores, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"latentkit {latentkit.__version__}")
    print()
    print("| case | latentkit (s) | reference (s) | ratio | goal | notes |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, ours, ref, goal, note in rows:
        ratio = ours / ref
        verdict = "" if goal is None else (f"<= {goal}x " + ("met" if ratio <= goal else
                                                               "NOT met"))
        print(f"| {name} | {ours:.3f} | {ref:.3f} | {ratio:.2f}x | {verdict} | {note} |")


if __name__ == "__main__":
    main()
