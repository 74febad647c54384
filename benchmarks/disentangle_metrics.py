"""Speed of the disentanglement metrics (issue 15, part 5), side by side with `disent`.

Data: n rows (10,000; --quick 2,000) of 5 independent uniform factors of dSprites' sizes
(3, 6, 40, 32, 32: shape, scale, orientation, x, y) and 10 latents: latent j < 5 is a smooth
monotone function of factor j plus a share of factor j+1 and noise (sd 0.05); latents 5..9 mix
two factors each or are pure noise. Every metric runs on the same arrays with its defaults
(disentanglement_lib's protocol): MIG (20 bins), SAP (LinearSVC C=0.01, 1/3 test rows), DCI
(GradientBoostingClassifier, 100 stages, 1/3 test rows), FactorVAE (batches of 64, 10,000 +
5,000 votes; --quick 2,000 + 1,000).

`disent` (a PyTorch port of disentanglement_lib) is timed where `import disent.metrics`
works, on its array kernels `_compute_mig`, `_compute_sap`, `_compute_dci` with the same
train/test rows; its FactorVAE needs a ground-truth generator, so it is not compared.
Times are the median of `--repeats` runs (`--dci-repeats` for DCI, whose 100-stage boosted
trees over 40 classes take minutes), ours and disent's interleaved (a shared machine:
compare the ratio within one run).

Usage: python benchmarks/disentangle_metrics.py [--quick] [--repeats R] [--dci-repeats R]
                                                [--no-dci]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from latentkit.metrics import dci, factorvae_score, mig, sap
from latentkit.metrics.disentanglement import train_test_rows

FACTOR_SIZES = (3, 6, 40, 32, 32)


def make_codes(n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """codes (n_samples, 10) and factors (n_samples, 5), as the module docstring says."""
    rng = np.random.default_rng(seed)
    factors = np.column_stack([rng.integers(0, size, n_samples) for size in FACTOR_SIZES])
    unit = (factors + 0.5) / np.array(FACTOR_SIZES)                 # each factor in (0, 1)
    leaked = np.roll(unit, -1, axis=1)
    codes = np.empty((n_samples, 10))
    codes[:, :5] = np.tanh(3 * (unit - 0.5)) + 0.2 * leaked
    codes[:, 5] = unit[:, 0] - unit[:, 3]
    codes[:, 6] = unit[:, 2] + unit[:, 4]
    codes[:, 7:] = 0.0
    codes += 0.05 * rng.standard_normal(codes.shape)
    return codes, factors.astype(float)


def _disent_kernels():
    """disent's array kernels, or None where disent does not import."""
    try:
        from disent.metrics._dci import _compute_dci
        from disent.metrics._mig import _compute_mig
        from disent.metrics._sap import _compute_sap
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        print(f"(disent not available: {type(exc).__name__}: {exc})\n")
        return None
    return {"mig": _compute_mig, "sap": _compute_sap, "dci": _compute_dci}


def _timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def cases(codes, factors, n_votes, disent):
    """{metric: (ours, theirs or None)}, each a zero-argument callable returning a score."""
    train, test = train_test_rows(len(codes), 1 / 3, np.random.default_rng(0), "benchmark")
    split = (codes[train].T, factors[train].T, codes[test].T, factors[test].T)
    table = {
        "MIG": (lambda: mig(codes, factors),
                disent and (lambda: disent["mig"](codes.T, factors.T)["mig.discrete_score"])),
        "SAP": (lambda: sap(codes, factors, random_state=0),
                disent and (lambda: disent["sap"](*split, False)["sap.score"])),
        "DCI": (lambda: dci(codes, factors, random_state=0)["disentanglement"],
                disent and (lambda: disent["dci"](*split)["dci.disentanglement"])),
        "FactorVAE": (lambda: factorvae_score(codes, factors, n_train=n_votes,
                                              n_eval=n_votes // 2, random_state=0), None),
    }
    return table


def run(n_samples: int, n_votes: int, repeats: int, dci_repeats: int,
        skip_dci: bool) -> list[str]:
    codes, factors = make_codes(n_samples)
    disent = _disent_kernels()
    rows = [f"Metric speed on {n_samples:,} codes (10 latents, factors of sizes "
            f"{', '.join(map(str, FACTOR_SIZES))}), median of {repeats} runs "
            f"({dci_repeats} for DCI):", "",
            "| metric | latentkit (s) | disent (s) | disent / latentkit | latentkit value "
            "| disent value |", "|---|---|---|---|---|---|"]
    for name, (ours, theirs) in cases(codes, factors, n_votes, disent).items():
        if skip_dci and name == "DCI":
            continue
        our_times, their_times = [], []
        for _ in range(dci_repeats if name == "DCI" else repeats):
            elapsed, our_value = _timed(ours)
            our_times.append(elapsed)
            if theirs:
                elapsed, their_value = _timed(theirs)
                their_times.append(elapsed)
        ours_s = statistics.median(our_times)
        if their_times:
            theirs_s = statistics.median(their_times)
            cells = (f"{theirs_s:.3f} | {theirs_s / ours_s:.1f}x | {our_value:.4f} | "
                     f"{their_value:.4f}")
        else:
            cells = f"n/a | | {our_value:.4f} | n/a"
        rows.append(f"| {name} | {ours_s:.3f} | {cells} |")
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows, 2,000 votes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dci-repeats", type=int, default=1,
                        help="runs of DCI (minutes each at 10,000 rows)")
    parser.add_argument("--no-dci", action="store_true", help="skip DCI (its trees dominate)")
    args = parser.parse_args(argv)
    n_samples, n_votes = (2000, 2000) if args.quick else (10_000, 10_000)
    rows = run(n_samples, n_votes, args.repeats, args.dci_repeats, args.no_dci)
    print("\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
