"""Scores of a clustering against known classes.

`cluster_purity` is the share of rows whose predicted cluster's majority class is their own
class; `adjusted_rand_score` (scikit-learn's, re-exported) is the Rand index corrected for
chance. Both are invariant to relabelling the clusters.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import contingency_matrix


def cluster_purity(labels_true, labels_pred) -> float:
    """Purity = (1 / N) Σ_c max_t |{n : pred_n = c, true_n = t}|, in (0, 1].

    labels_true, labels_pred : (n_samples,) labels of any hashable kind. 1 means every
    predicted cluster holds a single true class. Purity is not adjusted for chance and
    rewards many clusters (N singletons score 1): report it beside `adjusted_rand_score`.
    """
    labels_true = np.asarray(labels_true)
    labels_pred = np.asarray(labels_pred)
    if labels_true.ndim != 1 or labels_pred.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shapes {labels_true.shape} and "
                         f"{labels_pred.shape}.")
    if len(labels_true) != len(labels_pred):
        raise ValueError(f"labels_true and labels_pred must have the same length; got "
                         f"{len(labels_true)} and {len(labels_pred)}.")
    if len(labels_true) == 0:
        raise ValueError("cluster_purity needs at least one labelled sample; got none.")
    table = contingency_matrix(labels_true, labels_pred)  # (n_classes, n_clusters)
    return float(table.max(axis=0).sum() / len(labels_true))


__all__ = ["adjusted_rand_score", "cluster_purity"]
