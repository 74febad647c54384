"""Scale: EM in core, streamed from disk and on Dask, and a written model of a cluster
(issue 16, "Performance").

Three fits, each in every mode, each in a process of its own (so its peak RSS is its own):
  gmm   GaussianMixture(8, covariance_type="full") on N x D float32 (default 20,000,000 x 16,
        a 1.3 GB Zarr array);
  ppca  PPCA(8, solver="em") on a 12,000,000 x 64 float32 Zarr array (3.1 GB: more than a
        2 GB worker holds);
  lda   LDA(20, method="online") on 400,000 documents x 5,000 words (16 GB as dense float64
        counts; a Dask array of CSR blocks).
Modes: incore (the array read whole into memory), stream (the path: em.stores.ZarrSource, or
the .npz for LDA), dask1 / dask2 (a LocalCluster of 1 / 2 single-threaded worker processes,
memory_limit 2GB each, `connect("local:N")`; the fit takes a DaskSource over
da.from_zarr(path, chunks=(block_rows, D)) built here, persist=False unless --persist, so
every iteration reads the store, for 1 and 2 workers alike; LDA takes the Dask array).

Every fit runs a fixed number of iterations (tol=0, n_init=1, random_state=0); the time per
iteration is the median gap between the fit's callbacks (start-up and the first iteration
excluded). Peak memory: VmHWM of the fitting process and of each worker process (read in the
worker by client.run). Bytes per iteration: DaskSource.traffic.per_iteration_bytes (W |θ| +
B |s|, pickled sizes) and Dask's own worker-to-worker counter (transfer_outgoing_bytes_total,
summed over workers, per iteration). Parallel efficiency = T(1 worker) / (2 T(2 workers)).
The cluster model (latentkit.distributed.cost.predict_iteration) is fed the per-block time
of a worker (the 1-worker run's worker CPU seconds per iteration / B: read + E-step of a
block as Dask runs it), |θ| and |s|; its 2-worker prediction is checked against the measured
2-worker time, and it extrapolates to 10 and 100 workers (and to 10x, 100x the data).

Usage: python benchmarks/scale.py [--quick] [--models gmm,ppca,lda] [--modes incore,...]
                                  [--rows N --features D] [--report]
  data go to benchmarks/.data/scale/ (written once, reused while the shape matches); results
  are saved to benchmarks/.data/scale/results.json, a model's modes replaced when rerun, and
  --report prints the tables of what is saved.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, ".data", "scale")
MODES = ("incore", "stream", "dask1", "dask2")


def sizes(args) -> dict:
    """Per model: (rows, features, rows per Zarr chunk / .npz block, rows per Dask block).
    Zarr chunks are kept within 4 of the model's streamed chunks (GMM 5,957 rows, PPCA
    2,520: `em.auto_chunk_rows`), so that `ZarrSource` reads each Zarr chunk once (a taller
    one is decoded again for every chunk cut from it); Dask blocks join 16-24 Zarr chunks."""
    if args.quick:
        return dict(gmm=(200_000, args.features or 16, 2_048, 20_480),
                    ppca=(100_000, 32, 2_048, 10_240), lda=(8_000, 500, 2_000, 2_000))
    return dict(gmm=(args.rows or 20_000_000, args.features or 16, 16_384, 262_144),
                ppca=(args.ppca_rows, args.ppca_features, 8_192, 196_608),
                lda=(args.lda_docs, 5_000, 20_000, 20_000))


def ensure_data(model: str, shape: tuple, folder: str) -> dict:
    """Write the model's data set unless a file of that shape is already there."""
    import _scale_data as data

    n_rows, n_features, block, _ = shape
    path = os.path.join(folder, f"{model}_{n_rows}x{n_features}" + (".zarr" if model != "lda"
                                                                        else ""))
    info_path = path.rstrip("/") + ".json"
    if os.path.exists(info_path):
        with open(info_path) as handle:
            return json.load(handle)
    if model == "lda":
        info = data.write_lda(path, n_rows, n_features, block_docs=block)
    else:
        kind = "mixture" if model == "gmm" else "low_rank"
        info = data.write_zarr(path, kind, n_rows, n_features, block_rows=block)
    with open(info_path, "w") as handle:
        json.dump(info, handle)
    return info


def run_child(args, model: str, mode: str, path: str) -> dict:
    """One case in a fresh process; its JSON line, or the error it ended with."""
    command = [sys.executable, os.path.abspath(__file__), "case", model, mode, path,
               "--iters", str(args.iters), "--memory-limit", args.memory_limit,
               "--dask-rows", str(sizes(args)[model][3])]
    if args.persist:
        command.append("--persist")
    env = dict(os.environ, SCALE_LDA_BATCH=str(args.lda_batch), PYTHONPATH=os.pathsep.join(
        [HERE] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=args.case_timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return dict(error=" | ".join(tail)[-400:])
    return json.loads(lines[-1])


def run_case(args) -> dict:
    from _scale_cases import run_dask, run_local

    if args.mode.startswith("dask"):
        return run_dask(args.model, args.path, args.iters, int(args.mode[4:]),
                        args.memory_limit, args.persist, args.dask_rows)
    return run_local(args.model, args.mode, args.path, args.iters)


# -- tables -------------------------------------------------------------------------------


def _mb(value) -> str:
    return "–" if value is None or value != value else f"{value / 2**20:,.1f}"


def mode_table(model: str, info: dict, results: dict) -> list[str]:
    lines = [f"**{model}** — data {info['shape'][0]:,} x {info['shape'][1]:,}, "
             f"{info['disk_bytes'] / 1e9:.2f} GB on disk"
             + (f" ({info['dense_bytes'] / 1e9:.1f} GB as dense float64, {info['nnz']:,} "
                "non-zeros)" if "dense_bytes" in info else ""), "",
             "| mode | s / iteration | whole fit (s) | peak RSS, fitting process (MiB) | "
             "peak RSS per worker (MiB) | model bytes / iter (W\\|θ\\|+B\\|s\\|) | "
             "Dask worker→worker bytes / iter | CPU s / iter per worker | load (1 min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode in MODES:
        r = results.get(mode)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {mode} | failed: {r['error']} | | | | | | | |")
            continue
        workers = ", ".join(f"{v:,.0f}" for v in r["worker_peak_rss_mb"]) or "–"
        model_bytes = f"{r['model_bytes']:,}" if "model_bytes" in r else "–"
        lines.append(f"| {mode} | {r['s_per_iter']:.3f} | {r['fit_s']:.1f} | "
                     f"{r['peak_rss_mb']:,.0f} | {workers} | {model_bytes} | "
                     f"{r.get('dask_transfer_bytes', float('nan')):,.0f} | "
                     f"{', '.join(f'{c:.2f}' for c in r.get('worker_cpu_s_per_iter', []))} | "
                     f"{r.get('load_1min', float('nan')):.1f} |")
    one, two = results.get("dask1", {}), results.get("dask2", {})
    if "s_per_iter" in one and "s_per_iter" in two:
        efficiency = one["s_per_iter"] / (2 * two["s_per_iter"])
        lines += ["", f"Parallel efficiency on 2 workers, T(1) / (2 T(2)) = "
                      f"{one['s_per_iter']:.3f} / (2 x {two['s_per_iter']:.3f}) = "
                      f"{efficiency:.0%} (goal >= 80%)"]
    return lines


def cost_table(model: str, results: dict) -> list[str]:
    """The cluster model for 1, 2, 10, 100 workers, and predicted vs measured."""
    from latentkit.distributed.cost import ClusterModel, predict_iteration

    measured = {w: results.get(f"dask{w}", {}) for w in (1, 2)}
    calibrated = [r for r in measured.values() if "block_s" in r]
    if not calibrated:
        return []
    first = calibrated[0]
    cpu_one = measured[1].get("worker_cpu_s_per_iter")
    if cpu_one:  # a block as a worker runs it: the 1-worker run's CPU per iteration / B
        block_s, how = sum(cpu_one) / first["blocks"], "the 1-worker run's worker CPU / B"
    else:
        block_s, how = min(r["block_s"] for r in calibrated), "one block timed in the client"
    inputs = dict(n_blocks=first["blocks"], block_seconds=block_s,
                  params_bytes=first["step_bytes"], stats_bytes=first["stats_bytes"])
    lines = [f"**{model}: cluster model** — B = {first['blocks']} blocks, t_block = "
             f"{block_s * 1e3:.1f} ms (read + E-step of one block: {how}), |θ| = "
             f"{first['step_bytes']:,} B, |s| = {first['stats_bytes']:,} B, 10 Gbit/s, "
             "1 ms latency, fan-in 4, M-step time taken as 0", "",
             "| workers | predicted s / iteration | waves | tree depth | bytes / iteration | "
             "efficiency | measured s / iteration |", "|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [(w, inputs["n_blocks"]) for w in (1, 2, 10, 100)]
    rows += [(w, inputs["n_blocks"] * w) for w in (10, 100)]  # weak scaling: data x W
    for workers, n_blocks in rows:
        p = predict_iteration(ClusterModel(workers=workers), **dict(inputs, n_blocks=n_blocks))
        seen = measured.get(workers, {}).get("s_per_iter")
        if n_blocks != inputs["n_blocks"]:
            shown = f"– (data x {workers}: B = {n_blocks:,})"
        elif seen is None:
            shown = "–"
        else:
            shown = f"{seen:.3f} (predicted / measured {p['iteration_s'] / seen:.2f})"
        lines.append(f"| {workers} | {p['iteration_s']:.3f} | {p['waves']} | "
                     f"{p['tree_depth']} | {p['bytes_per_iteration']:,} | "
                     f"{p['efficiency']:.0%} | {shown} |")
    return lines


def header(args) -> list[str]:
    return [f"## Scale (issue 16) — {datetime.date.today().isoformat()}", "",
            f"`python benchmarks/scale.py {' '.join(sys.argv[1:])}` on {platform.machine()}, "
            f"{os.cpu_count()} cores (shared), Python {platform.python_version()}; "
            f"{args.iters} EM iterations per fit (tol=0), per-iteration time = median gap "
            "between callbacks; Dask workers: 1 thread, memory_limit "
            f"{args.memory_limit}, persist={'auto' if args.persist else 'False'}.", ""]


def main_all(args) -> None:
    os.makedirs(DATA, exist_ok=True)
    ignore = os.path.join(HERE, ".data", ".gitignore")
    if not os.path.exists(ignore):  # nothing under benchmarks/.data goes to git
        with open(ignore, "w") as handle:
            handle.write("*\n")
    sys.path.insert(0, HERE)
    saved = os.path.join(DATA, "results-quick.json" if args.quick else "results.json")
    everything = {}
    if os.path.exists(saved):  # earlier runs' models and modes are kept unless rerun
        with open(saved) as handle:
            everything = json.load(handle)
    for model in args.models.split(",") if not args.report else ():
        info = ensure_data(model, sizes(args)[model], DATA)
        print(f"# {model}: data ready {info['shape']}", file=sys.stderr, flush=True)
        key = model if model != "lda" or args.lda_batch == 4096 else (
            f"lda, batch_size {args.lda_batch}")
        entry = everything.setdefault(key, dict(info=info, results={}))
        if entry["info"]["shape"] != info["shape"]:
            entry.update(info=info, results={})
        for mode in args.modes.split(","):
            entry["results"][mode] = run_child(args, model, mode, info["path"])
            print(f"# {model} {mode}: {json.dumps(entry['results'][mode])}",
                  file=sys.stderr, flush=True)
            with open(saved, "w") as handle:
                json.dump(everything, handle, indent=1)
    out = header(args)
    for model, entry in everything.items():
        out += mode_table(model, entry["info"], entry["results"]) + [""]
        out += cost_table(model, entry["results"]) + [""]
    print("\n".join(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step")
    case = sub.add_parser("case", help="one fit (internal: run in a child process)")
    case.add_argument("model", choices=("gmm", "ppca", "lda"))
    case.add_argument("mode", choices=MODES)
    case.add_argument("path")
    case.add_argument("--dask-rows", type=int, required=True, help="rows per Dask block")
    for p in (parser, case):
        p.add_argument("--iters", type=int, default=None)
        p.add_argument("--memory-limit", default="2GB")
        p.add_argument("--persist", action="store_true",
                       help="let the DaskSource persist the array when it fits (auto)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (< 1 minute)")
    parser.add_argument("--rows", type=int, default=None, help="GMM rows (20,000,000)")
    parser.add_argument("--features", type=int, default=None, help="GMM features (16)")
    parser.add_argument("--ppca-rows", type=int, default=12_000_000)
    parser.add_argument("--ppca-features", type=int, default=64)
    parser.add_argument("--lda-docs", type=int, default=400_000)
    parser.add_argument("--lda-batch", type=int, default=4096,
                        help="online LDA's minibatch (documents)")
    parser.add_argument("--models", default="gmm,ppca,lda")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--case-timeout", type=float, default=1800)
    parser.add_argument("--report", action="store_true",
                        help="print the tables of the saved results, running nothing")
    args = parser.parse_args()
    if args.iters is None:
        args.iters = 3 if getattr(args, "quick", False) else 6
    if args.step == "case":
        print(json.dumps(run_case(args)))
    else:
        main_all(args)


if __name__ == "__main__":
    main()
