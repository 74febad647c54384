"""LDA against scikit-learn, gensim and tomotopy, side by side in one run (issue 13).

Corpora (one train/test split each, shared by every library):
  - synthetic: `make_lda_corpus(5_000, 5_000 words, 20 topics, ~150 tokens, α=0.1, η=0.05,
    random_state=0)`, the first 4,500 documents for training and the last 500 held out;
  - AP (`load_ap`): 2,246 articles, shuffled with seed 0, 2,000 train / 246 held out.

Held-out perplexity is ONE evaluator for every library: document completion from
`latentkit.topics._heldout` (each held-out document's tokens split in halves with seed 0, θ
inferred from the first half with the library's topics φ (K, V) and prior α fixed, the
second half scored). Peers give their φ and α: scikit-learn components_ normalized and
doc_topic_prior_, gensim get_topics() and alpha, tomotopy get_topic_word_dist(k) and
alpha. On the synthetic corpus the planted φ and α give the floor ("true model").

Cases (the issue's goals):
  1. variational: seconds per iteration (a fit of max_iter=20 divided by 20, median of
     `repeats` runs interleaved with the peer's) and perplexity after 20 iterations — our
     batch vs scikit-learn batch, our online vs scikit-learn online (batch size 128, κ=0.7,
     τ0=10), and gensim LdaModel per pass (its defaults otherwise: chunks of 2,000,
     online updates) vs our online per pass. Goals: <= 0.25x scikit-learn at equal or better
     perplexity; better perplexity than gensim at equal passes. Ours with
     LATENTKIT_NUM_THREADS unset (all cores); scikit-learn with n_jobs=None (one process,
     its default) and n_jobs=2 (batch and online).
  2. collapsed Gibbs: tokens per second per sweep, ours (n_threads 1 and 2) vs tomotopy
     (workers 1 and 2, α fixed as ours: optim_interval=0), at K=20 and K=200, and
     perplexity after the same sweeps. Ours "fit": (fit(max_iter=S) - fit(max_iter=2)) /
     (S - 2) with the same seed, i.e. what a user of LDA.fit gets per sweep (the collapsed
     log joint of every sweep included, averaged over all S sweeps from the start); the
     chain's start (gibbs_init="kmeans": k-means topics, then one left-to-right pass; see
     topics/_gibbs_fit.py), which the difference removes, is reported as its own column,
     fit(max_iter=0) (tomotopy's train(0), its uniform start, is not timed either); ours
     "kernel": `gibbs_sweeps`
     alone, 10 sweeps after 20 untimed ones (the steady rate). tomotopy: train(S) after train(0)
     (which builds its state). Each side runs from every seed of GIBBS_SEEDS, interleaved:
     times are the median over the seeds, perplexities the mean ± sd (a chain may sit in a
     local mode for hundreds of sweeps, on either side). Goals: >= 1x tomotopy's single
     worker at K=20, >= 2x at K=200, equal or better mean perplexity.
  3. a 1,000,000-document corpus streamed from disk: benchmarks/lda_stream.py in processes of
     its own (peak RSS), one online pass and one batch EM iteration. Goal: < 1 GB.

Prints a markdown section; --write appends it to benchmarks/RESULTS.md.

Usage: python benchmarks/lda.py [--quick] [--write] [--stream-dir DIR] [--no-stream] [--only-vb]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

import latentkit
from latentkit.datasets import load_ap, make_lda_corpus
from latentkit.topics import LDA
from latentkit.topics._corpus import csr_arrays
from latentkit.topics._gibbs_kernels import (
    count_matrices,
    gibbs_sweeps,
    initial_assignments,
    tokens_from_counts,
)
from latentkit.topics._heldout import completion_perplexity, split_halves

HERE = os.path.dirname(os.path.abspath(__file__))
ALPHA, ETA = 0.1, 0.05


@dataclass
class Corpus:
    """train, test : (n_docs, V) CSR float64 counts; truth : (φ (K, V), α (K,)) or None."""

    name: str
    train: sp.csr_matrix
    test: sp.csr_matrix
    truth: tuple | None

    def perplexity(self, phi: np.ndarray, alpha) -> float:
        """Document-completion perplexity of the test documents under φ (K, V), α (K,)."""
        observed, heldout = split_halves(self.test, 0)
        phi = np.asarray(phi, dtype=np.float64)
        phi = phi / phi.sum(axis=1, keepdims=True)
        alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (phi.shape[0],))
        return completion_perplexity(observed, heldout, phi, np.ascontiguousarray(alpha))


def corpora(quick: bool) -> list[Corpus]:
    n_docs = 1_000 if quick else 5_000
    planted = make_lda_corpus(n_docs, 5_000, 20, doc_length=150, alpha=ALPHA, eta=ETA,
                              random_state=0)
    n_train = n_docs * 9 // 10
    synthetic = Corpus("synthetic", planted.counts[:n_train], planted.counts[n_train:],
                       (planted.topic_word, planted.alpha))
    ap = load_ap().counts.tocsr().astype(np.float64)
    order = np.random.default_rng(0).permutation(ap.shape[0])
    n_ap = 500 if quick else 2_000
    return [synthetic, Corpus("AP", ap[order[:n_ap]], ap[order[2_000:]], None)]


def interleaved_medians(runners: dict, repeats: dict) -> dict:
    """Run each runner repeats[name] times, alternating between runners; returns name ->
    (median seconds, the last run's result). A runner returns (seconds, result)."""
    times = {name: [] for name in runners}
    results = {}
    for round_ in range(max(repeats.values())):
        for name, run in runners.items():
            if round_ < repeats[name]:
                seconds, results[name] = run()
                times[name].append(seconds)
    return {name: (statistics.median(times[name]), results[name]) for name in runners}


def timed(fit):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached with tol=0 is the point
        topics = fit()
    return time.perf_counter() - start, topics


# ------------------------------------------------------------------ variational (case 1)


def ours_vb(X, K, method, iters):
    def fit():
        model = LDA(K, method=method, doc_topic_prior=ALPHA, topic_word_prior=ETA,
                    max_iter=iters, tol=0.0, batch_size=128, learning_decay=0.7,
                    learning_offset=10.0, random_state=0).fit(X)
        return model.topic_word_, model.doc_topic_prior_
    return lambda: timed(fit)


def sklearn_vb(X, K, method, iters, n_jobs=None):
    from sklearn.decomposition import LatentDirichletAllocation

    def fit():
        model = LatentDirichletAllocation(
            K, learning_method=method, max_iter=iters, evaluate_every=-1,
            doc_topic_prior=ALPHA, topic_word_prior=ETA, batch_size=128, learning_decay=0.7,
            learning_offset=10.0, total_samples=X.shape[0], n_jobs=n_jobs,
            random_state=0).fit(X)
        return model.components_, np.full(K, model.doc_topic_prior_)
    return lambda: timed(fit)


def gensim_vb(X, K, passes):
    from gensim.models import LdaModel

    bow = [list(zip(row.indices.tolist(), row.data.astype(int).tolist())) for row in X]
    id2word = {j: str(j) for j in range(X.shape[1])}

    def fit():
        model = LdaModel(bow, num_topics=K, id2word=id2word, passes=passes, alpha=ALPHA,
                         eta=ETA, eval_every=None, random_state=0)
        return model.get_topics(), model.alpha
    return lambda: timed(fit)


def variational(corpus: Corpus, iters: int, repeats: int) -> list[dict]:
    X, K = corpus.train, 20
    ours_vb(X[:50], K, "batch", 1)()  # compile (or load the numba cache) outside the timing
    pairs = [("batch", "scikit-learn batch", sklearn_vb(X, K, "batch", iters), repeats),
             ("batch", "scikit-learn batch, n_jobs=2",
              sklearn_vb(X, K, "batch", iters, n_jobs=2), 1),
             ("online", "scikit-learn online", sklearn_vb(X, K, "online", iters), repeats),
             ("online", "scikit-learn online, n_jobs=2",
              sklearn_vb(X, K, "online", iters, n_jobs=2), 1),
             ("online", "gensim LdaModel (per pass)", gensim_vb(X, K, iters), repeats)]
    runners = {"batch": ours_vb(X, K, "batch", iters), "online": ours_vb(X, K, "online", iters)}
    runners.update({peer: run for _, peer, run, _ in pairs})
    counts = {"batch": repeats, "online": repeats, **{peer: r for _, peer, _, r in pairs}}
    medians = interleaved_medians(runners, counts)
    rows = []
    for ours, peer, _, _ in pairs:
        (ours_s, ours_topics), (peer_s, peer_topics) = medians[ours], medians[peer]
        rows.append(dict(corpus=corpus.name, ours=ours, peer=peer, ours_s=ours_s / iters,
                         peer_s=peer_s / iters, iters=iters,
                         ours_perplexity=corpus.perplexity(*ours_topics),
                         peer_perplexity=corpus.perplexity(*peer_topics)))
    return rows


# ---------------------------------------------------------------------- Gibbs (case 2)


# seeds of the Gibbs chains: a chain can sit in a local mode for hundreds of sweeps (two
# true topics merged, one split), on our side and tomotopy's alike, so one seed's
# perplexity says little; each side's mean ± sd over these seeds is compared
GIBBS_SEEDS = (0, 1, 2, 3, 4)


def ours_gibbs(X, K, sweeps, threads, seed=0):
    def fit():
        model = LDA(K, method="gibbs", doc_topic_prior=ALPHA, topic_word_prior=ETA,
                    max_iter=sweeps, n_threads=threads, random_state=seed).fit(X)
        return model.topic_word_, model.doc_topic_prior_
    return timed(fit)


def ours_kernel_seconds(X, K, threads, warm_up=20, sweeps=10) -> float:
    """Seconds per sweep of `gibbs_sweeps` alone, timed over `sweeps` sweeps after `warm_up`
    untimed ones from uniform random assignments (the sparse sampler is slow while the
    counts are still spread over all topics, so this is its steady rate; the start does not
    change a sweep's cost)."""
    doc_ptr, words = tokens_from_counts(*csr_arrays(X))
    alpha = np.full(K, ALPHA)
    z = initial_assignments(doc_ptr, words, K, 0)
    n_dk, n_wk, n_k = count_matrices(doc_ptr, words, z, K, X.shape[1])
    gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, ETA, warm_up, 0, n_threads=threads)
    start = time.perf_counter()
    gibbs_sweeps(doc_ptr, words, z, n_dk, n_wk, n_k, alpha, ETA, sweeps, 0,
                 first_sweep=warm_up, n_threads=threads)
    return (time.perf_counter() - start) / sweeps


def tomotopy_gibbs(X, K, sweeps, workers, seed=0):
    """(train seconds, (φ (K, V), α)): tomotopy's φ over our V words (words absent from the
    training corpus, which tomotopy does not know, get η / (n_k + V_used η))."""
    import tomotopy as tp

    model = tp.LDAModel(k=K, alpha=ALPHA, eta=ETA, seed=seed)
    model.optim_interval = 0  # α fixed, as ours
    for row in X:
        model.add_doc(np.repeat(row.indices, row.data.astype(np.int64)).astype(str).tolist())
    model.train(0, workers=workers)
    start = time.perf_counter()
    model.train(sweeps, workers=workers)
    seconds = time.perf_counter() - start
    n_k = np.asarray(model.get_count_by_topics(), dtype=np.float64)
    phi = np.repeat((ETA / (n_k + len(model.used_vocabs) * ETA))[:, None], X.shape[1], 1)
    columns = np.array([int(word) for word in model.used_vocabs])
    phi[:, columns] = np.array([model.get_topic_word_dist(k) for k in range(K)])
    return seconds, (phi, np.asarray(model.alpha))


def gibbs(corpus: Corpus, K: int, sweeps: int, seeds=GIBBS_SEEDS) -> dict:
    """One row: per thread count, ours and tomotopy run from each seed in turn (interleaved);
    seconds per sweep are the median over the seeds, perplexities the mean and sd."""
    X = corpus.train
    tokens = float(X.sum())
    for threads in (1, 2):  # compile both paths (sequential, threaded) outside the timing
        ours_gibbs(X[:50], K, 2, threads)
    row = dict(corpus=corpus.name, K=K, sweeps=sweeps, tokens=tokens, seeds=len(seeds))
    for threads in (1, 2):
        seconds = {"ours": [], "tomotopy": [], "start": []}
        perplexity = {"ours": [], "tomotopy": []}
        for seed in seeds:
            # the start varies by seed (k-means): each seed's own fit(2) is subtracted
            seconds["start"].append(ours_gibbs(X, K, 0, threads, seed)[0])
            short = ours_gibbs(X, K, 2, threads, seed)[0]
            fit_seconds, topics = ours_gibbs(X, K, sweeps, threads, seed)
            seconds["ours"].append((fit_seconds - short) / (sweeps - 2))
            perplexity["ours"].append(corpus.perplexity(*topics))
            train_seconds, topics = tomotopy_gibbs(X, K, sweeps, threads, seed)
            seconds["tomotopy"].append(train_seconds / sweeps)
            perplexity["tomotopy"].append(corpus.perplexity(*topics))
        row[f"start_{threads}"] = statistics.median(seconds["start"])
        for side in ("ours", "tomotopy"):
            row[f"{side}_{threads}"] = statistics.median(seconds[side])
            row[f"{side}_{threads}_perplexity"] = statistics.mean(perplexity[side])
            row[f"{side}_{threads}_perplexity_sd"] = (
                statistics.stdev(perplexity[side]) if len(seeds) > 1 else 0.0)
        row[f"kernel_{threads}"] = ours_kernel_seconds(X, K, threads)
    return row


# ------------------------------------------------------------------- streamed (case 3)


def streamed(directory: str, n_docs: int, doc_length: float) -> list[dict]:
    """Write the corpus once (reused when present), then one process per fit."""
    script = os.path.join(HERE, "lda_stream.py")
    path = os.path.join(directory, f"synthetic_{n_docs}x5000_len{doc_length:g}.npz")
    results = []
    steps = [] if os.path.exists(path) else [["write", path, "--n-docs", str(n_docs),
                                              "--doc-length", str(doc_length)]]
    steps += [["fit", path, "--method", method] for method in ("online", "batch")]
    for step in steps:
        out = subprocess.run([sys.executable, script, *step], check=True, capture_output=True,
                             text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    return results


# ------------------------------------------------------------------------------ report


def goal(ok: bool) -> str:
    return "met" if ok else "**missed**"


def variational_lines(rows: list[dict]) -> list[str]:
    lines = ["| corpus | ours | s/iter | peer | s/iter | ratio | perplexity ours / peer "
             "| goal |", "|---|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        ratio = r["ours_s"] / r["peer_s"]
        better = r["ours_perplexity"] <= r["peer_perplexity"]
        if r["peer"].startswith("gensim"):
            verdict = f"better perplexity: {goal(better)}"
        elif "n_jobs=2" in r["peer"]:
            verdict = "(fairness)"
        else:
            verdict = f"<= 0.25x, perplexity <=: {goal(ratio <= 0.25 and better)}"
        lines.append(f"| {r['corpus']} | {r['ours']} | {r['ours_s']:.3f} | {r['peer']} | "
                     f"{r['peer_s']:.3f} | **{ratio:.2f}x** | {r['ours_perplexity']:.0f} / "
                     f"{r['peer_perplexity']:.0f} | {verdict} |")
    return lines


def gibbs_lines(rows: list[dict]) -> list[str]:
    lines = ["| corpus | K | sweeps | ours 1T fit / kernel (M tok/s) | tomotopy 1W | ratio "
             "(fit) | ours 2T fit / kernel | tomotopy 2W | our 2T speed-up | perplexity, "
             "mean ± sd over seeds: ours 1T / 2T / tomotopy 1W / 2W | ours start (s) | goal |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        rate = {key: r["tokens"] / r[key] / 1e6 for key in
                ("ours_1", "kernel_1", "tomotopy_1", "ours_2", "kernel_2", "tomotopy_2")}
        ratio = rate["ours_1"] / rate["tomotopy_1"]
        target = 1.0 if r["K"] <= 20 else 2.0
        better = r["ours_1_perplexity"] <= r["tomotopy_1_perplexity"]
        perplexities = " / ".join(
            f"{r[key + '_perplexity']:.0f} ± {r[key + '_perplexity_sd']:.0f}"
            for key in ("ours_1", "ours_2", "tomotopy_1", "tomotopy_2"))
        lines.append(
            f"| {r['corpus']} | {r['K']} | {r['sweeps']} | {rate['ours_1']:.2f} / "
            f"{rate['kernel_1']:.2f} | {rate['tomotopy_1']:.2f} | **{ratio:.2f}x** | "
            f"{rate['ours_2']:.2f} / {rate['kernel_2']:.2f} | {rate['tomotopy_2']:.2f} | "
            f"{r['ours_1'] / r['ours_2']:.2f}x | {perplexities} ({r['seeds']} seeds) | "
            f"{r['start_1']:.2f} | "
            f">= {target:g}x, mean perplexity <=: {goal(ratio >= target and better)} |")
    return lines


def stream_lines(results: list[dict]) -> list[str]:
    lines = []
    for r in results:
        if r["step"] == "write":
            lines.append(f"- written once: {r['shape'][0]:,} x {r['shape'][1]:,}, "
                         f"{r['tokens']:,} tokens, {r['file_mb']:.0f} MiB, {r['seconds']:.0f} "
                         f"s (peak RSS {r['peak_rss_mb']:.0f} MiB)")
        else:
            lines.append(f"- `LDA(20, method=\"{r['method']}\", max_iter=1, batch_size=4096)"
                         f".fit(path)` on the {r['file_mb']:.0f} MiB file: {r['seconds']:.0f} "
                         f"s, peak RSS **{r['peak_rss_mb']:.0f} MiB** (after the imports "
                         f"{r['import_rss_mb']:.0f} MiB): < 1 GB "
                         f"{goal(r['peak_rss_mb'] < 1024)}")
    return lines


def report(corpora_, vb_rows, gibbs_rows, stream, args) -> str:
    import gensim
    import sklearn
    import tomotopy

    date = datetime.date.today().isoformat()
    cpu = platform.processor() or platform.machine()
    floor = [f"{c.name} {c.perplexity(*c.truth):.0f}" for c in corpora_ if c.truth]
    sizes = ", ".join(f"{c.name} {c.train.shape[0]:,} train ({int(c.train.sum()):,} tokens) / "
                      f"{c.test.shape[0]:,} test, V={c.train.shape[1]:,}" for c in corpora_)
    lines = [
        f"## LDA vs scikit-learn, gensim and tomotopy — {date}", "",
        f"Machine: {os.cpu_count()} cores ({cpu}), load average "
        f"{os.getloadavg()[0]:.1f} at the end of the run, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, gensim {gensim.__version__}, tomotopy "
        f"{tomotopy.__version__}, latentkit {latentkit.__version__}. `python "
        f"benchmarks/lda.py{' --quick' if args.quick else ''}`. Corpora: {sizes}. Held-out "
        f"perplexity by document completion, one evaluator for all; true-model floor: "
        f"{', '.join(floor)}. Ours with LATENTKIT_NUM_THREADS "
        f"{os.environ.get('LATENTKIT_NUM_THREADS', 'unset')} ({os.cpu_count()} threads); "
        f"median of {args.repeats} interleaved fits of {args.iters} iterations.", "",
        *variational_lines(vb_rows), "",
        "Collapsed Gibbs, tokens per second per sweep (M tok/s; higher is better; ratio = "
        "ours fit / tomotopy, both averaged over all sweeps from the start, median over "
        f"{len(GIBBS_SEEDS)} seeds); ours \"fit\" is LDA.fit's per-sweep rate, \"kernel\" "
        "`gibbs_sweeps` alone after 20 sweeps:", "",
        *gibbs_lines(gibbs_rows),
    ]
    if stream:
        lines += ["", "Streamed from disk (`benchmarks/lda_stream.py`, one process per step, "
                  "peak RSS = VmHWM):", "", *stream_lines(stream)]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small problems (smoke test)")
    parser.add_argument("--write", action="store_true", help="append to RESULTS.md")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--sweeps", type=int, default=200, help="Gibbs sweeps at K=20")
    parser.add_argument("--large-sweeps", type=int, default=200, help="Gibbs sweeps, K=200")
    parser.add_argument("--stream-dir", default=os.environ.get("LDA_STREAM_DIR", "/tmp"))
    parser.add_argument("--stream-docs", type=int, default=1_000_000)
    parser.add_argument("--doc-length", type=float, default=150.0)
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--only-vb", action="store_true",
                        help="the variational case alone (no Gibbs, no stream)")
    parser.add_argument("--gibbs-only", action="store_true",
                        help="only the collapsed Gibbs rows (case 2), printed, never written")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.iters, args.sweeps, args.large_sweeps = 1, 4, 12, 6
        args.stream_docs = 20_000
    corpora_ = corpora(args.quick)
    vb_rows, gibbs_rows = [], []
    if args.gibbs_only:
        rows = [gibbs(c, K, n) for c in corpora_
                for K, n in ((20, args.sweeps), (200, args.large_sweeps))]
        print(f"load average {os.getloadavg()[0]:.1f}", *gibbs_lines(rows), sep="\n")
        return
    for corpus in corpora_:
        rows = variational(corpus, args.iters, args.repeats)
        vb_rows += rows
        print("\n".join(variational_lines(rows)), flush=True)
        for K, sweeps in () if args.only_vb else ((20, args.sweeps), (200, args.large_sweeps)):
            gibbs_rows.append(gibbs(corpus, K, sweeps))
            print("\n".join(gibbs_lines(gibbs_rows[-1:])), flush=True)
    stream = None if args.no_stream or args.only_vb else streamed(args.stream_dir, args.stream_docs,
                                                  args.doc_length)
    text = report(corpora_, vb_rows, gibbs_rows, stream, args)
    print(text)
    if args.write:
        with open(os.path.join(HERE, "RESULTS.md"), "a") as fh:
            fh.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
