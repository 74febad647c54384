"""Synthetic data with known ground truth, for recovery tests (DESIGN section 7).

Every generator draws labels z_n ~ Categorical(weights) and then x_n given z_n from the
component's distribution, and returns the parameters it used alongside the data. All take
`random_state` (None, an int seed or a ``numpy.random.Generator``); the same seed gives the
same data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import pdist
from sklearn.utils import Bunch

from latentkit._validation import RANDOM_STATE, Interval, Options, as_generator
from latentkit.exceptions import InvalidParameterError

_COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
# Eigenvalues (variances) are log-uniform over this range before the common rescaling, so
# no covariance is more elongated than a condition number of 16.
_LOG_EIGEN_RANGE = (np.log(0.25), np.log(4.0))
_BERNOULLI_MARGIN = 0.05  # probs lie in [0.05, 0.95]
_DIRICHLET_ALPHA = 0.5  # concentration of each categorical column's probabilities

__all__ = ["make_mixture", "make_bernoulli_mixture", "make_categorical_mixture", "make_lda_corpus",
           "write_lda_corpus"]


def check_arg(name: str, value, *allowed) -> None:
    """Raise ValueError unless `value` is in one of the `allowed` constraints; the message
    names the argument, the allowed values and the given one."""
    if any(value in constraint for constraint in allowed):
        return
    options = " or ".join(str(constraint) for constraint in allowed)
    raise InvalidParameterError(f"argument {name!r} must be {options}; got {value!r}.")


def _check_weights(weights, n_components: int) -> np.ndarray:
    """weights : None (equal weights) or (n_components,) non-negative, summing to 1."""
    if weights is None:
        return np.full(n_components, 1.0 / n_components)
    given = np.asarray(weights, dtype=np.float64)
    if (
        given.shape != (n_components,)
        or not np.all(np.isfinite(given))
        or np.any(given < 0)
        or abs(given.sum() - 1.0) > 1e-6
    ):
        raise InvalidParameterError(
            f"argument 'weights' must be None or {n_components} non-negative numbers summing "
            f"to 1 (one per component); got {weights!r}."
        )
    return given / given.sum()


def _check_common(n_samples, n_components, random_state) -> None:
    check_arg("n_samples", n_samples, Interval(int, 1, None))
    check_arg("n_components", n_components, Interval(int, 1, None))
    check_arg("random_state", random_state, *RANDOM_STATE)


def random_covariances(rng, n_components: int, n_features: int, covariance_type: str):
    """Random SPD covariances : (n_components, n_features, n_features), full matrices.

    Σ_k = Q_k diag(λ_k) Q_kᵀ with Q_k Haar-random orthogonal and log λ uniform; "diag" takes
    Q = I, "spherical" one λ per component, "tied" one (Q, λ) for all. All are rescaled by
    one common factor so the average variance, mean_k trace(Σ_k) / n_features, is 1.
    """
    K, D = n_components, n_features
    n_distinct = 1 if covariance_type == "tied" else K
    if covariance_type == "spherical":
        eigen = np.repeat(np.exp(rng.uniform(*_LOG_EIGEN_RANGE, size=(K, 1))), D, axis=1)
    else:
        eigen = np.exp(rng.uniform(*_LOG_EIGEN_RANGE, size=(n_distinct, D)))
    if covariance_type in ("full", "tied"):
        # Haar orthogonal: QR of a Gaussian matrix with R's diagonal made positive.
        q, r = np.linalg.qr(rng.standard_normal((n_distinct, D, D)))
        rotation = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    else:
        rotation = np.broadcast_to(np.eye(D), (n_distinct, D, D))
    covariances = (rotation * eigen[:, None, :]) @ np.swapaxes(rotation, 1, 2)
    covariances = 0.5 * (covariances + np.swapaxes(covariances, 1, 2))
    covariances = np.broadcast_to(covariances, (K, D, D)).copy()
    average_variance = np.trace(covariances, axis1=1, axis2=2).mean() / D
    return covariances / average_variance


def spread_means(rng, n_components: int, n_features: int, separation: float) -> np.ndarray:
    """Means : (n_components, n_features), centred on the origin, whose mean pairwise
    Euclidean distance is exactly `separation` (one component sits at the origin)."""
    if n_components == 1:
        return np.zeros((1, n_features))
    means = rng.standard_normal((n_components, n_features))
    means -= means.mean(axis=0)
    return means * (separation / pdist(means).mean())


def missing_mask(rng, shape: tuple[int, int], missing_rate: float) -> np.ndarray:
    """Boolean mask : (n_samples, n_features), True where an entry is missing completely at
    random with probability `missing_rate`; a row drawn all-missing gets one random entry
    back, so the realised rate is missing_rate - missing_rate**D / D in expectation."""
    mask = rng.random(shape) < missing_rate
    full_rows = np.flatnonzero(mask.all(axis=1))
    mask[full_rows, rng.integers(shape[1], size=full_rows.size)] = False
    return mask


def make_mixture(
    n_samples: int = 500,
    n_components: int = 3,
    n_features: int = 2,
    covariance_type: str = "full",
    separation: float = 5.0,
    weights=None,
    missing_rate: float = 0.0,
    random_state=None,
) -> Bunch:
    """Draw from a Gaussian mixture with random parameters of a known structure.

    z_n ~ Categorical(weights), x_n | z_n = k ~ N(means[k], covariances[k]).

    Covariances are random SPD matrices of `covariance_type` ("full", "diag", "spherical" or
    "tied"), scaled so the average variance per feature is 1; the means are then placed so
    that the mean distance between two of them is `separation` such standard deviations.
    `weights` defaults to equal weights. `missing_rate` in [0, 1) replaces entries of X by
    NaN completely at random, never a whole row (which needs n_features >= 2).

    Returns a Bunch with X : (n_samples, n_features) with NaN where missing, X_complete : the
    same before masking, labels : (n_samples,) int64, weights : (n_components,),
    means : (n_components, n_features) and covariances : (n_components, n_features,
    n_features), always full matrices whatever the type.
    """
    _check_common(n_samples, n_components, random_state)
    check_arg("n_features", n_features, Interval(int, 1, None))
    check_arg("covariance_type", covariance_type, Options(*_COVARIANCE_TYPES))
    check_arg("separation", separation, Interval(float, 0, None))
    check_arg("missing_rate", missing_rate, Interval(float, 0, 1, closed="left"))
    if missing_rate > 0 and n_features < 2:
        raise InvalidParameterError(
            f"argument 'missing_rate' must be 0 when n_features=1, since a row is never "
            f"entirely missing; got missing_rate={missing_rate!r}."
        )
    weights = _check_weights(weights, n_components)
    rng = as_generator(random_state)

    covariances = random_covariances(rng, n_components, n_features, covariance_type)
    means = spread_means(rng, n_components, n_features, separation)
    labels = rng.choice(n_components, size=n_samples, p=weights).astype(np.int64)
    noise = rng.standard_normal((n_samples, n_features))
    factors = np.linalg.cholesky(covariances)  # x = mu_k + L_k e, e ~ N(0, I)
    X_complete = np.empty((n_samples, n_features))
    for k in range(n_components):
        rows = labels == k
        X_complete[rows] = means[k] + noise[rows] @ factors[k].T
    X = X_complete.copy()
    if missing_rate > 0:
        X[missing_mask(rng, X.shape, missing_rate)] = np.nan
    return Bunch(
        X=X,
        X_complete=X_complete,
        labels=labels,
        weights=weights,
        means=means,
        covariances=covariances,
    )


def make_bernoulli_mixture(
    n_samples: int = 500,
    n_components: int = 3,
    n_features: int = 20,
    weights=None,
    random_state=None,
) -> Bunch:
    """Draw binary data from a mixture of independent Bernoullis.

    z_n ~ Categorical(weights), x_nd | z_n = k ~ Bernoulli(probs[k, d]), with
    probs = 0.05 + 0.9 * Beta(0.5, 0.5) so most pixels lean clearly towards 0 or 1.
    `weights` defaults to equal weights.

    Returns a Bunch with X : (n_samples, n_features) float64 in {0, 1}, labels : (n_samples,)
    int64, weights : (n_components,) and probs : (n_components, n_features).
    """
    _check_common(n_samples, n_components, random_state)
    check_arg("n_features", n_features, Interval(int, 1, None))
    weights = _check_weights(weights, n_components)
    rng = as_generator(random_state)

    span = 1.0 - 2 * _BERNOULLI_MARGIN
    probs = _BERNOULLI_MARGIN + span * rng.beta(0.5, 0.5, size=(n_components, n_features))
    labels = rng.choice(n_components, size=n_samples, p=weights).astype(np.int64)
    X = (rng.random((n_samples, n_features)) < probs[labels]).astype(np.float64)
    return Bunch(X=X, labels=labels, weights=weights, probs=probs)


def make_categorical_mixture(
    n_samples: int = 500,
    n_components: int = 3,
    n_categories: Sequence[int] = (3, 4, 5, 3, 4, 5),
    weights=None,
    random_state=None,
) -> Bunch:
    """Draw categorical data from a mixture of independent categoricals.

    z_n ~ Categorical(weights), x_nj | z_n = k ~ Categorical(probs[j][k]) over the codes
    0 .. n_categories[j] - 1, with each probs[j][k] ~ Dirichlet(0.5, ..., 0.5).
    `weights` defaults to equal weights.

    Returns a Bunch with X : (n_samples, n_columns) integer codes stored as float64,
    labels : (n_samples,) int64, weights : (n_components,) and probs : a list with one
    (n_components, n_categories[j]) array per column.
    """
    _check_common(n_samples, n_components, random_state)
    positive = Interval(int, 1, None)
    if (
        isinstance(n_categories, str | bytes)
        or not isinstance(n_categories, Sequence | np.ndarray)
        or len(n_categories) == 0
        or not all(n in positive for n in n_categories)
    ):
        raise InvalidParameterError(
            "argument 'n_categories' must be a non-empty sequence of integers >= 1 (the "
            f"number of categories of each column); got {n_categories!r}."
        )
    weights = _check_weights(weights, n_components)
    rng = as_generator(random_state)

    labels = rng.choice(n_components, size=n_samples, p=weights).astype(np.int64)
    probs, columns = [], []
    for n_levels in n_categories:
        column_probs = rng.dirichlet(np.full(int(n_levels), _DIRICHLET_ALPHA), size=n_components)
        # Inverse-CDF sampling: the code is the number of cumulative probabilities <= u.
        cumulative = np.cumsum(column_probs[labels], axis=1)
        u = rng.random((n_samples, 1))
        codes = np.minimum((u >= cumulative).sum(axis=1), int(n_levels) - 1)
        probs.append(column_probs)
        columns.append(codes)
    X = np.stack(columns, axis=1).astype(np.float64)
    return Bunch(X=X, labels=labels, weights=weights, probs=probs)


# -- topic models -------------------------------------------------------------------------

#: documents drawn per block by make_lda_corpus (write_lda_corpus's default block_docs),
#: so both give the same corpus for the same seed
LDA_BLOCK_DOCS = 20_000


def _check_lda_args(n_docs, n_words, n_topics, doc_length, alpha, eta, random_state):
    """Check make_lda_corpus's arguments; returns alpha : (n_topics,) float64."""
    check_arg("n_docs", n_docs, Interval(int, 1, None))
    check_arg("n_words", n_words, Interval(int, 1, None))
    check_arg("n_topics", n_topics, Interval(int, 1, None))
    check_arg("doc_length", doc_length, Interval(float, 0, None, closed="neither"))
    check_arg("eta", eta, Interval(float, 0, None, closed="neither"))
    check_arg("random_state", random_state, *RANDOM_STATE)
    given = np.asarray(alpha, dtype=np.float64) if not isinstance(alpha, str) else None
    if (given is None or given.ndim > 1 or given.shape not in ((), (n_topics,))
            or not np.all(np.isfinite(given)) or np.any(given <= 0)):
        raise InvalidParameterError(
            f"argument 'alpha' must be a positive number or {n_topics} positive numbers (one "
            f"per topic); got {alpha!r}.")
    return np.broadcast_to(given, (n_topics,)).copy()


def _draw_lda_block(rng, topic_word, alpha, n_docs, doc_length):
    """One block of LDA documents: (counts : (n_docs, V) CSR float64, doc_topic :
    (n_docs, K), doc_lengths : (n_docs,) int64).

    θ_d ~ Dir(α), N_d = max(1, Poisson(doc_length)), and each token draws its topic
    z ~ Cat(θ_d) and then its word w ~ Cat(φ_z). Composing the two categoricals gives
    w ~ Cat(θ_d φ), so counts_d ~ Multinomial(N_d, θ_d φ); drawing topic counts first,
    n_dk ~ Multinomial(N_d, θ_d), then words per topic costs O(tokens log V), not the
    O(n_docs V) of a multinomial over the whole vocabulary.
    """
    n_topics, n_words = topic_word.shape
    doc_topic = rng.dirichlet(alpha, size=n_docs)
    lengths = np.maximum(rng.poisson(doc_length, size=n_docs), 1).astype(np.int64)
    topic_counts = rng.multinomial(lengths, doc_topic)  # (n_docs, K)
    docs, words = [], []
    for k in range(n_topics):
        docs.append(np.repeat(np.arange(n_docs), topic_counts[:, k]))
        words.append(rng.choice(n_words, size=docs[-1].size, p=topic_word[k]))
    docs, words = np.concatenate(docs), np.concatenate(words)
    counts = sp.csr_matrix((np.ones(docs.size), (docs, words)), shape=(n_docs, n_words))
    counts.sum_duplicates()
    return counts, doc_topic, lengths


def _lda_blocks(rng, topic_word, alpha, n_docs, doc_length, block_docs):
    for start in range(0, n_docs, block_docs):
        yield _draw_lda_block(rng, topic_word, alpha, min(block_docs, n_docs - start),
                              doc_length)


def make_lda_corpus(n_docs: int, n_words: int, n_topics: int, *, doc_length: float = 150,
                    alpha=0.1, eta: float = 0.05, random_state=None) -> Bunch:
    """Draw a corpus from latent Dirichlet allocation with known topics.

    φ_k ~ Dirichlet(η 1_V) for each topic k; for each document d, θ_d ~ Dirichlet(α),
    N_d = max(1, N) with N ~ Poisson(doc_length), and counts_d ~ Multinomial(N_d, θ_d φ).
    alpha : a number (symmetric prior) or (n_topics,) positive numbers (asymmetric).
    Documents are drawn in blocks of `LDA_BLOCK_DOCS`, never as a dense (n_docs, n_words)
    array, so the memory is that of the result.

    Returns a Bunch with counts : (n_docs, n_words) CSR float64, topic_word : (n_topics,
    n_words) φ, doc_topic : (n_docs, n_topics) θ, doc_lengths : (n_docs,) int64 N_d
    (= counts.sum(axis=1)) and alpha : (n_topics,), eta.
    """
    alpha = _check_lda_args(n_docs, n_words, n_topics, doc_length, alpha, eta, random_state)
    rng = as_generator(random_state)
    topic_word = rng.dirichlet(np.full(n_words, float(eta)), size=n_topics)
    blocks = list(_lda_blocks(rng, topic_word, alpha, n_docs, doc_length, LDA_BLOCK_DOCS))
    return Bunch(counts=sp.vstack([b[0] for b in blocks], format="csr"),
                 topic_word=topic_word, doc_topic=np.concatenate([b[1] for b in blocks]),
                 doc_lengths=np.concatenate([b[2] for b in blocks]), alpha=alpha, eta=eta)


def write_lda_corpus(path, n_docs: int, n_words: int, n_topics: int, *,
                     doc_length: float = 150, alpha=0.1, eta: float = 0.05,
                     random_state=None, block_docs: int = LDA_BLOCK_DOCS) -> Bunch:
    """Draw `make_lda_corpus`'s corpus block by block straight into an uncompressed scipy
    `.npz` file at `path` (scipy.sparse.load_npz reads it), with peak memory bounded by a
    block of `block_docs` documents (plus topic_word and 8 bytes per document). With the
    default `block_docs` the file holds exactly make_lda_corpus's counts for the same seed.

    Returns a Bunch with path, shape (n_docs, n_words), topic_word : (n_topics, n_words),
    doc_lengths : (n_docs,) int64, alpha, eta (doc_topic is not kept).
    """
    from latentkit.topics._streams import write_csr_npz

    alpha = _check_lda_args(n_docs, n_words, n_topics, doc_length, alpha, eta, random_state)
    check_arg("block_docs", block_docs, Interval(int, 1, None))
    rng = as_generator(random_state)
    topic_word = rng.dirichlet(np.full(n_words, float(eta)), size=n_topics)
    lengths = []

    def counts_blocks():
        for counts, _, block_lengths in _lda_blocks(rng, topic_word, alpha, n_docs,
                                                    doc_length, block_docs):
            lengths.append(block_lengths)
            yield counts

    shape = write_csr_npz(path, n_words, counts_blocks())
    return Bunch(path=path, shape=shape, topic_word=topic_word,
                 doc_lengths=np.concatenate(lengths), alpha=alpha, eta=eta)
