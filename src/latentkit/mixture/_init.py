"""Initial responsibilities for mixture models, shared by every mixture family."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans, kmeans_plusplus

#: "k-means++" is scikit-learn's spelling; "kmeans++" is the same method
INIT_METHODS = ("kmeans", "k-means++", "kmeans++", "random", "random_from_data")


def fill_missing_with_means(X: np.ndarray) -> np.ndarray:
    """X : (n, D) with NaN replaced by column means (0 for an all-missing column)."""
    if not np.isnan(X).any():
        return X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column
        col_means = np.nanmean(X, axis=0)
    col_means = np.where(np.isnan(col_means), 0.0, col_means)
    return np.where(np.isnan(X), col_means, X)


def initial_responsibilities(X: np.ndarray, n_components: int, method: str,
                             rng: np.random.Generator) -> np.ndarray:
    """Starting responsibilities (n, K) for EM from rows X : (n, D) (NaN allowed).

    kmeans           : hard labels of one k-means run (scikit-learn KMeans, n_init=1)
    k-means++        : hard assignment to the nearest of K k-means++ seeds (also spelled
                       kmeans++)
    random           : uniform random soft responsibilities
    random_from_data : hard assignment to the nearest of K distinct random rows
    """
    X = fill_missing_with_means(np.asarray(X, dtype=np.float64))
    n, K = len(X), n_components
    if method == "random":
        resp = rng.uniform(size=(n, K))
        return resp / resp.sum(axis=1, keepdims=True)
    seed = int(rng.integers(2**31 - 1))
    if method == "kmeans":
        labels = KMeans(n_clusters=K, n_init=1, random_state=seed).fit(X).labels_
    else:
        if method in ("k-means++", "kmeans++"):
            centers, _ = kmeans_plusplus(X, K, random_state=seed)
        else:
            centers = X[rng.choice(n, size=K, replace=False)]
        # nearest centre by ||x||² - 2 x·c + ||c||² (the ||x||² term is common to a row)
        dist = (centers**2).sum(axis=1) - 2 * X @ centers.T
        labels = np.argmin(dist, axis=1)
    resp = np.zeros((n, K))
    resp[np.arange(n), labels] = 1.0
    return resp
