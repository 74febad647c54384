"""LDA fitted from a corpus on disk, in a process of its own so that its peak RSS is its own
(issue 13: online VB on a 1,000,000-document corpus streamed from disk, peak RSS < 1 GB).

Two steps, each a separate process (benchmarks/lda.py runs them in turn):

  python benchmarks/lda_stream.py write PATH --n-docs 1000000 --doc-length 150
      draws a planted LDA corpus (V=5,000, K=20, α=0.1, η=0.05) block by block into an
      uncompressed scipy .npz at PATH (`write_lda_corpus`; memory bounded by a block);
  python benchmarks/lda_stream.py fit PATH --method online|batch
      fits LDA(20) from PATH with max_iter=1 (one pass / one EM iteration), read in row
      blocks (online: minibatches of 4,096 documents; batch: the engine's chunks).

Each prints one JSON line: seconds, peak RSS (VmHWM, the high-water mark of this
process), the RSS right after the imports, and the file's size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB: VmHWM of /proc/self/status, the
    high-water mark of this program's own address space. (getrusage's ru_maxrss is not used
    where VmHWM exists: Linux carries it across exec, so a process started by a large parent
    would report the parent's RSS at the fork.)"""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write(path: str, n_docs: int, doc_length: float) -> dict:
    from latentkit.datasets.synthetic import write_lda_corpus

    start = time.perf_counter()
    corpus = write_lda_corpus(path, n_docs, 5_000, 20, doc_length=doc_length, alpha=0.1,
                              eta=0.05, random_state=0)
    return dict(step="write", seconds=time.perf_counter() - start, shape=list(corpus.shape),
                tokens=int(corpus.doc_lengths.sum()), peak_rss_mb=peak_rss_mb(),
                file_mb=os.path.getsize(path) / 2**20)


def fit(path: str, method: str) -> dict:
    import warnings

    from latentkit.topics import LDA

    import_rss = peak_rss_mb()
    model = LDA(20, method=method, max_iter=1, tol=0.0, batch_size=4096,
                doc_topic_prior=0.1, topic_word_prior=0.05, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one iteration never "converges"
        model.fit(path)
    return dict(step="fit", method=method, seconds=time.perf_counter() - start,
                peak_rss_mb=peak_rss_mb(), import_rss_mb=import_rss,
                file_mb=os.path.getsize(path) / 2**20, lower_bound=float(model.lower_bound_))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("write", "fit"))
    parser.add_argument("path")
    parser.add_argument("--n-docs", type=int, default=1_000_000)
    parser.add_argument("--doc-length", type=float, default=150.0)
    parser.add_argument("--method", choices=("online", "batch"), default="online")
    args = parser.parse_args()
    if args.step == "write":
        result = write(args.path, args.n_docs, args.doc_length)
    else:
        result = fit(args.path, args.method)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
