"""The data sets of benchmarks/scale.py, written block by block to disk (memory bounded by a
block): a Gaussian mixture and a low-rank Gaussian (PPCA) as float32 Zarr arrays, and an LDA
corpus as one scipy .npz (for the in-core and streamed fits) plus one .npz per row block
(the blocks of the Dask array of sparse counts).

    X = μ_z + ε A_z,  z ~ Cat(1/K), ε ~ N(0, I_D)          (mixture: K full covariances)
    X = μ + Z Wᵀ + σ ε,  Z ~ N(0, I_q), ε ~ N(0, I_D)       (PPCA: rank q plus noise)

Every block draws from its own generator, default_rng([seed, block]), so a store is the
same whatever the block size it was written with is read back in.
"""

from __future__ import annotations

import os
import shutil

import numpy as np


def _mixture_parameters(n_features: int, n_components: int, seed: int):
    """(means : (K, D), factors : (K, D, D)): well separated means, covariances A_k A_kᵀ
    with A_k lower triangular, diagonal in [0.5, 1.5], off-diagonal N(0, 0.3²)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(n_components, n_features))
    factors = np.tril(rng.normal(scale=0.3, size=(n_components, n_features, n_features)), -1)
    diagonal = rng.uniform(0.5, 1.5, size=(n_components, n_features))
    factors[:, np.arange(n_features), np.arange(n_features)] = diagonal
    return means, factors


def mixture_block(block: int, rows: int, n_features: int, n_components: int,
                  seed: int) -> np.ndarray:
    """(rows, n_features) float32 rows of the mixture, from default_rng([seed, block])."""
    means, factors = _mixture_parameters(n_features, n_components, seed)
    rng = np.random.default_rng([seed, block])
    labels = rng.integers(n_components, size=rows)
    noise = rng.standard_normal((rows, n_features))
    out = means[labels]
    for k in range(n_components):
        rows_k = labels == k
        out[rows_k] += noise[rows_k] @ factors[k].T
    return out.astype(np.float32)


def low_rank_block(block: int, rows: int, n_features: int, rank: int,
                   seed: int) -> np.ndarray:
    """(rows, n_features) float32 rows μ + Z Wᵀ + σ ε (σ = 0.5), from default_rng([seed,
    block]); W : (D, q) and μ : (D,) are drawn from default_rng(seed)."""
    fixed = np.random.default_rng(seed)
    loadings = fixed.normal(size=(n_features, rank))
    mean = fixed.normal(size=n_features)
    rng = np.random.default_rng([seed, block])
    latent = rng.standard_normal((rows, rank))
    out = mean + latent @ loadings.T + 0.5 * rng.standard_normal((rows, n_features))
    return out.astype(np.float32)


def write_zarr(path: str, kind: str, n_rows: int, n_features: int, *, block_rows: int,
               seed: int = 0, rank: int = 8, n_components: int = 8) -> dict:
    """Write a (n_rows, n_features) float32 Zarr array at `path` (replaced if there), one
    Zarr chunk of `block_rows` rows at a time. kind : "mixture" or "low_rank"."""
    import zarr

    if os.path.exists(path):
        shutil.rmtree(path)
    array = zarr.create_array(store=path, shape=(n_rows, n_features),
                              chunks=(block_rows, n_features), dtype="float32")
    for block, start in enumerate(range(0, n_rows, block_rows)):
        rows = min(block_rows, n_rows - start)
        if kind == "mixture":
            values = mixture_block(block, rows, n_features, n_components, seed)
        else:
            values = low_rank_block(block, rows, n_features, rank, seed)
        array[start:start + rows] = values
    return dict(path=path, shape=[n_rows, n_features], disk_bytes=disk_bytes(path))


def disk_bytes(path: str) -> int:
    """Bytes a file or a directory tree takes (its files' sizes)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(path) for name in names)


def write_lda(folder: str, n_docs: int, n_words: int, *, block_docs: int,
              doc_length: float = 150.0, seed: int = 0) -> dict:
    """A planted LDA corpus (K = 20, α = 0.1, η = 0.05): `corpus.npz` (all rows, CSR) and
    `blocks/NNNNN.npz`, its rows cut in blocks of `block_docs` documents."""
    import scipy.sparse as sp

    from latentkit.datasets.synthetic import write_lda_corpus

    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "blocks"))
    corpus_path = os.path.join(folder, "corpus.npz")
    write_lda_corpus(corpus_path, n_docs, n_words, 20, doc_length=doc_length, alpha=0.1,
                     eta=0.05, random_state=seed)
    counts = sp.load_npz(corpus_path).tocsr()
    for block, start in enumerate(range(0, n_docs, block_docs)):
        sp.save_npz(os.path.join(folder, "blocks", f"{block:05d}.npz"),
                    counts[start:start + block_docs], compressed=False)
    return dict(path=folder, shape=[n_docs, n_words], nnz=int(counts.nnz),
                disk_bytes=disk_bytes(corpus_path),
                dense_bytes=n_docs * n_words * 8)


def _load_block(path: str):
    import scipy.sparse as sp

    return sp.load_npz(path).tocsr()


def lda_dask_array(folder: str):
    """The corpus's counts : (n_docs, V) as a Dask array of CSR blocks read from
    `blocks/*.npz` where each block is computed (nothing is read here but the shapes)."""
    import dask
    import dask.array as da
    import scipy.sparse as sp

    names = sorted(os.listdir(os.path.join(folder, "blocks")))
    parts = []
    for name in names:
        path = os.path.join(folder, "blocks", name)
        with np.load(path) as meta:
            shape = tuple(int(n) for n in meta["shape"])
        block = dask.delayed(_load_block, pure=True)(path)
        parts.append(da.from_delayed(block, shape=shape, dtype=np.float64,
                                     meta=sp.csr_matrix((0, shape[1]))))
    return da.concatenate(parts, axis=0)
