"""Kernels of the disentanglement metrics: pure functions over validated arrays.

`latentkit.metrics.disentanglement` validates the input once and wires these together; tests
call them directly. Conventions: `codes : (n_samples, n_latents)` float, `labels :
(n_samples, n_factors)` int, each column holding the factor's values recoded to 0..K_j-1
(`encode_factors`), `n_values : (n_factors,)` the K_j. Logarithms are natural (nats), as
scikit-learn's `mutual_info_score` and disentanglement_lib use; every score below is a ratio
of information quantities or a probability, so the base cancels.
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed
from scipy.special import xlogy
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import Lasso
from sklearn.svm import LinearSVC


def encode_factors(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recode each factor column to 0..K_j-1 in the order of its sorted distinct values.

    factors : (n_samples, n_factors). Returns labels : (n_samples, n_factors) int64 and
    n_values : (n_factors,) int64 (K_j, the number of distinct values of column j).
    """
    labels = np.empty(factors.shape, dtype=np.int64)
    n_values = np.empty(factors.shape[1], dtype=np.int64)
    for j in range(factors.shape[1]):
        values, labels[:, j] = np.unique(factors[:, j], return_inverse=True)
        n_values[j] = len(values)
    return labels, n_values


def histogram_discretize(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Each latent binned into `n_bins` equal-width bins between its min and max.

    codes : (n_samples, n_latents) -> (n_samples, n_latents) int64 in 0..n_bins-1.
    disentanglement_lib's `_histogram_discretize`: np.digitize(x, edges[:-1]) with the edges
    of np.histogram(x, n_bins), minus one (a constant label shift changes no information
    quantity). The maximum falls in the last bin; a constant latent falls in one bin (numpy
    widens its range to [x - 0.5, x + 0.5]).
    """
    binned = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, i], bins=n_bins)
        # digitize with right=False: the number of left edges <= x, i.e. 1..n_bins
        binned[:, i] = np.searchsorted(edges[:-1], codes[:, i], side="right") - 1
    return binned


def factor_entropies(labels: np.ndarray, n_values: np.ndarray) -> np.ndarray:
    """H(v_j) = -Σ_k p_k log p_k of each factor's empirical distribution, in nats.

    labels : (n_samples, n_factors) -> (n_factors,).
    """
    n_samples = labels.shape[0]
    entropies = np.empty(labels.shape[1])
    for j in range(labels.shape[1]):
        p = np.bincount(labels[:, j], minlength=n_values[j]) / n_samples
        entropies[j] = -xlogy(p, p).sum()
    return entropies


def mutual_information_matrix(binned: np.ndarray, n_bins: int, labels: np.ndarray,
                              n_values: np.ndarray) -> np.ndarray:
    """I(z_i; v_j) between each binned latent and each factor, in nats, by plug-in counts.

    binned : (n_samples, n_latents) ints in 0..n_bins-1; labels : (n_samples, n_factors).
    Returns (n_latents, n_factors). For one factor, all latents' contingency tables come
    from a single bincount over cell ids (i, b, k) -> (i * n_bins + b) * K + k:
        I(z; v) = Σ_{b,k} p_bk log(p_bk / (p_b p_k)).
    """
    n_samples, n_latents = binned.shape
    offsets = np.arange(n_latents) * n_bins
    mi = np.empty((n_latents, labels.shape[1]))
    for j in range(labels.shape[1]):
        k = int(n_values[j])
        cells = ((binned + offsets) * k + labels[:, j, None]).ravel()
        joint = np.bincount(cells, minlength=n_latents * n_bins * k)
        joint = joint.reshape(n_latents, n_bins, k) / n_samples          # p(b, k) per latent
        p_bin = joint.sum(axis=2, keepdims=True)                          # p(b)
        p_value = joint.sum(axis=1, keepdims=True)                        # p(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(joint > 0, joint / (p_bin * p_value), 1.0)
        mi[:, j] = xlogy(joint, ratio).sum(axis=(1, 2))
    return np.maximum(mi, 0.0)


def top_two_gap(scores: np.ndarray) -> np.ndarray:
    """Per column, the best score minus the second best: scores (n_latents, n_factors) ->
    (n_factors,). With a single latent the second best is taken as 0."""
    if scores.shape[0] == 1:
        return scores[0].copy()
    ordered = np.sort(scores, axis=0)
    return ordered[-1] - ordered[-2]


def sap_score_matrix_discrete(codes_train, labels_train, codes_test, labels_test, *,
                              C: float, class_weight) -> np.ndarray:
    """Test accuracy of a one-latent LinearSVC per (latent, factor): (n_latents, n_factors).

    codes_* : (n, n_latents), labels_* : (n, n_factors). disentanglement_lib's SAP for
    discrete factors: LinearSVC(C=0.01, class_weight="balanced") on the training rows,
    plain accuracy on the test rows. A factor with one value in the training rows scores 0
    (nothing to classify).
    """
    n_latents, n_factors = codes_train.shape[1], labels_train.shape[1]
    scores = np.zeros((n_latents, n_factors))
    for j in range(n_factors):
        if np.unique(labels_train[:, j]).size < 2:
            continue
        for i in range(n_latents):
            classifier = LinearSVC(C=C, class_weight=class_weight)
            classifier.fit(codes_train[:, i:i + 1], labels_train[:, j])
            predicted = classifier.predict(codes_test[:, i:i + 1])
            scores[i, j] = np.mean(predicted == labels_test[:, j])
    return scores


def sap_score_matrix_continuous(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """R² of the least-squares line of each factor on each single latent, i.e. the squared
    correlation cov(z_i, v_j)² / (var z_i var v_j): (n_latents, n_factors). A latent with
    variance <= 1e-12 scores 0 (disentanglement_lib's rule)."""
    centered_z = codes - codes.mean(axis=0)
    centered_v = factors - factors.mean(axis=0)
    n = codes.shape[0]
    cov = centered_z.T @ centered_v / (n - 1)                 # (n_latents, n_factors)
    var_z = (centered_z ** 2).sum(axis=0) / (n - 1)
    var_v = (centered_v ** 2).sum(axis=0) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = cov ** 2 / (var_z[:, None] * var_v[None, :])
    return np.where(var_z[:, None] > 1e-12, r2, 0.0)


def gbt_importances(codes_train, labels_train, codes_test, labels_test, *,
                    booster: GradientBoostingClassifier, n_jobs=None):
    """Feature importances of one gradient-boosted classifier per factor.

    Returns importance (n_latents, n_factors) (each column sums to 1 unless a tree never
    split), train accuracy (n_factors,) and test accuracy (n_factors,). `booster` is cloned
    for each factor (disentanglement_lib uses scikit-learn's defaults); the factors' fits
    run in `n_jobs` joblib workers (None: one).
    """
    fits = Parallel(n_jobs=n_jobs)(
        delayed(_gbt_one_factor)(codes_train, labels_train[:, j], codes_test, labels_test[:, j],
                                 booster)
        for j in range(labels_train.shape[1]))
    importance, train_accuracy, test_accuracy = zip(*fits, strict=True)
    return np.column_stack(importance), np.array(train_accuracy), np.array(test_accuracy)


def _gbt_one_factor(codes_train, label_train, codes_test, label_test, booster):
    """(importances (n_latents,), train accuracy, test accuracy) of one factor's booster;
    a factor with one value in the training rows gets zero importances."""
    if np.unique(label_train).size < 2:
        return np.zeros(codes_train.shape[1]), 1.0, float(np.mean(label_test == label_train[0]))
    model = clone(booster).fit(codes_train, label_train)
    return (np.abs(model.feature_importances_),
            float(np.mean(model.predict(codes_train) == label_train)),
            float(np.mean(model.predict(codes_test) == label_test)))


def lasso_importances(codes_train, targets_train, codes_test, targets_test, *, alpha: float):
    """|coefficients| of a Lasso regression of each factor on the standardized codes.

    codes_* : (n, n_latents), targets_* : (n, n_factors) float (the factors' values).
    Codes are z-scored with the training rows' mean and std (a latent with zero spread is
    left centered), so |w_ij| compares latents on one scale. Returns importance
    (n_latents, n_factors), train R² and test R² (n_factors,), R² = 1 - SSE / SST.
    """
    mean, std = codes_train.mean(axis=0), codes_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z_train, z_test = (codes_train - mean) / std, (codes_test - mean) / std
    model = Lasso(alpha=alpha).fit(z_train, targets_train)
    coef = np.atleast_2d(model.coef_)                         # (n_factors, n_latents)
    return np.abs(coef.T), _r2(model.predict(z_train), targets_train), _r2(
        model.predict(z_test), targets_test)


def _r2(predicted: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1 - Σ(y - ŷ)² / Σ(y - ȳ)² per column of targets (n, n_factors); 0 for a constant y."""
    predicted = predicted.reshape(targets.shape)
    sse = ((targets - predicted) ** 2).sum(axis=0)
    sst = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 0, 1.0 - sse / sst, 0.0)


def normalized_entropy_rows(weights: np.ndarray) -> np.ndarray:
    """H_K(P_i) = -Σ_k P_ik log_K P_ik of each row normalized to sum 1, K = n_columns.

    weights : (n_rows, n_columns) >= 0 -> (n_rows,). A row of zeros counts as uniform
    (entropy 1). With one column the entropy is 0.
    """
    n_columns = weights.shape[1]
    totals = weights.sum(axis=1, keepdims=True)
    p = np.where(totals > 0, weights / np.where(totals > 0, totals, 1.0), 1.0 / n_columns)
    if n_columns == 1:
        return np.zeros(weights.shape[0])
    return -xlogy(p, p).sum(axis=1) / np.log(n_columns)


def dci_scores(importance: np.ndarray) -> dict:
    """Disentanglement and completeness from an importance matrix R (n_latents, n_factors),
    R_ij >= 0 the importance of latent i for predicting factor j (Eastwood & Williams 2018).

        D_i = 1 - H_K(R_i· / Σ_k R_ik),  D = Σ_i ρ_i D_i,  ρ_i = Σ_j R_ij / Σ_ij R_ij
        C_j = 1 - H_L(R_·j / Σ_i R_ij),  C = Σ_j w_j C_j,  w_j = Σ_i R_ij / Σ_ij R_ij
    (K factors, L latents, entropies in base K and L). An all-zero R weighs terms equally.
    """
    total = importance.sum()
    weights = importance if total > 0 else np.ones_like(importance)
    per_latent = 1.0 - normalized_entropy_rows(importance)
    per_factor = 1.0 - normalized_entropy_rows(importance.T)
    latent_weight = weights.sum(axis=1) / weights.sum()
    factor_weight = weights.sum(axis=0) / weights.sum()
    return {"disentanglement": float(per_latent @ latent_weight),
            "completeness": float(per_factor @ factor_weight),
            "disentanglement_per_latent": per_latent,
            "completeness_per_factor": per_factor}


def factorvae_votes(normalized: np.ndarray, labels: np.ndarray, n_values: np.ndarray,
                    active: np.ndarray, *, n_votes: int, batch_size: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Votes (n_factors, n_latents) of the FactorVAE metric (Kim & Mnih 2018, §4).

    normalized : (n_samples, n_latents) codes divided by their global std; active :
    (n_latents,) bool. Each vote: a factor k uniformly, a value of it as the value of a
    uniformly drawn row (among rows whose value of k is shared by another row; the caller
    checks every factor has one), `batch_size` rows holding that value (without replacement; the
    whole group when it is smaller), and d* = argmin over active latents of the variance
    (ddof=1) of the batch's normalized codes; votes[k, d*] += 1.
    """
    n_factors = labels.shape[1]
    groups = [np.argsort(labels[:, j], kind="stable") for j in range(n_factors)]
    counts = [np.bincount(labels[:, j], minlength=n_values[j]) for j in range(n_factors)]
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in counts]
    # rows whose value of factor j is shared by at least one other row can seed a batch
    seeds = [np.flatnonzero(counts[j][labels[:, j]] >= 2) for j in range(n_factors)]
    masked = np.where(active, 0.0, np.inf)
    votes = np.zeros((n_factors, normalized.shape[1]), dtype=np.int64)
    factors_drawn = rng.integers(0, n_factors, size=n_votes)
    uniforms = rng.random(n_votes)
    for k, u in zip(factors_drawn, uniforms, strict=True):
        value = labels[seeds[k][int(u * len(seeds[k]))], k]
        members = groups[k][starts[k][value]:starts[k][value + 1]]
        if len(members) > batch_size:
            members = rng.choice(members, size=batch_size, replace=False)
        variance = normalized[members].var(axis=0, ddof=1)
        votes[k, np.argmin(variance + masked)] += 1
    return votes


def majority_vote_accuracy(train_votes: np.ndarray, eval_votes: np.ndarray):
    """The majority-vote classifier latent d -> argmax_k train_votes[k, d] and its accuracy
    Σ_d eval_votes[c(d), d] / Σ eval_votes on the evaluation votes.

    *_votes : (n_factors, n_latents). Returns (classifier (n_latents,), accuracy float).
    """
    classifier = np.argmax(train_votes, axis=0)
    hits = eval_votes[classifier, np.arange(eval_votes.shape[1])].sum()
    return classifier, float(hits / eval_votes.sum())
