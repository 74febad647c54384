"""Latent Dirichlet allocation (Blei, Ng & Jordan 2003): the topic model.

    β_k ~ Dir(η) over V words (k = 1..K),   θ_d ~ Dir(α) over K topics,
    z_dn ~ Cat(θ_d),   w_dn | z_dn ~ Cat(β_{z_dn})

so a document's words are drawn from the mixture Σ_k θ_dk β_k. Three ways to learn it,
one interface:

- method="batch": variational EM (`_vb`) on the shared EM engine — chunks of documents,
  restarts, warm starts, streaming from disk; its history_ is the ELBO per document.
- method="online": Hoffman, Blei & Bach's (2010) online variational Bayes — minibatches of
  `batch_size` documents, step size (learning_offset + t)^-learning_decay; partial_fit for
  streams.
- method="gibbs": Griffiths & Steyvers' (2004) collapsed Gibbs sampler (`_gibbs_fit`),
  compiled, reproducible for a seed and `n_threads`.

Whatever the method, the model ends as the same two point estimates, the topics
φ = topic_word_ (rows of components_ normalized) and the prior α = doc_topic_prior_, and
every held-out number is computed from them by the same code (`_heldout`): `perplexity`
(document completion) and `heldout_log_likelihood` (completion, or Wallach et al.'s
left-to-right estimator of log p(w)).
"""

from __future__ import annotations

import os
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import _check_feature_names, check_is_fitted

from .. import em
from .._validation import Interval, Options, as_generator, as_seed, check_n_samples
from ..base import EMModel
from ..distributions import Dirichlet
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model
from . import _gibbs_fit, _heldout
from ._coherence import npmi_coherence, umass_coherence
from ._inputs import as_documents, corpus_source
from ._vb import (
    VB_FAMILY,
    TopicConfig,
    TopicParams,
    expected_topics,
    infer_documents,
    initial_online_state,
)

#: each method's default max_iter: EM iterations, passes over the corpus, Gibbs sweeps
DEFAULT_MAX_ITER = {"batch": 100, "online": 10, "gibbs": 200}
#: the most entries of a (n_topics, n_words) array a model may hold (8 GiB in float64)
MAX_TOPIC_WORDS = 2**30
#: documents the variational start's k-means sees at most
INIT_DOCS = 20_000
#: documents per chunk of the E-step (a chunk's cost grows with its tokens, not its size)
CHUNK_DOCS = 512
#: sweeps of the fixed-topics sampler that infers θ of new documents for a Gibbs model
TRANSFORM_BURN_IN, TRANSFORM_SAMPLES = 20, 30


def _positive_or_none():
    return [Interval(float, 0, None, closed="neither"), Options(None)]


@register_model
class LDA(EMModel):
    """Latent Dirichlet allocation: topics of a corpus, and the topic proportions of each
    document.

    Parameters
    ----------
    n_topics : int, K.
    method : "batch" (variational EM), "online" (online variational Bayes) or "gibbs"
        (collapsed Gibbs sampling).
    init : how the variational methods start λ: "kmeans" (near-uniform random topics,
        each tilted towards the word distribution of a k-means cluster of the documents)
        or "random" (the near-uniform topics alone, as scikit-learn and gensim start).
    doc_topic_prior : α > 0 (symmetric), or None for 1 / K (scikit-learn's default).
    topic_word_prior : η > 0, or None for 1 / K.
    optimize_alpha : estimate an asymmetric α (Newton's method for VB, Minka's fixed point
        for Gibbs). optimize_eta : estimate η by Newton's method (VB methods only).
    max_iter : EM iterations (batch), passes over the corpus (online) or sweeps (gibbs);
        None for 100, 10 and 200.
    tol : stop when the mean ELBO per document changes by less (batch, online).
    max_doc_iter, doc_tol : the per-document variational fixed point (iterations, and the
        mean change of γ that ends it).
    batch_size : documents per minibatch (online).
    learning_decay κ in (0.5, 1], learning_offset τ0 >= 1 : online VB's step size
        ρ_t = (τ0 + t)^-κ. total_samples : the corpus size partial_fit scales a minibatch to.
    burn_in : Gibbs sweeps before samples are kept (None: max_iter // 2); thin : keep every
        thin-th sweep after it. n_threads : Gibbs threads (a run is reproducible for a given
        random_state and n_threads). gibbs_init : how a Gibbs chain starts: "kmeans" (each
        document's tokens drawn given the topics of the variational methods' k-means
        start: the chain falls into merged or split topics far less often) or "uniform"
        (topics uniform at random, Griffiths & Steyvers' start); see `_gibbs_fit`.
    random_state, n_init, warm_start, verbose, max_time, callbacks, chunk_size : the EM
        engine's options (see `latentkit.em`); n_init applies to batch and online.

    Input: a document-term count matrix (scipy.sparse or dense), a `TextCorpus`, a list of
    token lists or a list of raw texts (see `latentkit.topics._inputs`).

    Attributes
    ----------
    components_ : (K, V) the Dirichlet parameters of each topic's posterior (λ for VB;
        η + the mean sampled word-topic counts for Gibbs), as scikit-learn's.
    topic_word_ : (K, V) φ, components_ normalized: p(word | topic).
    doc_topic_prior_ : (K,) α; topic_word_prior_ : η.
    vocabulary_ : (V,) str, or None when fit saw bare counts.
    mean_doc_length_ : float, tokens per training document (for `sample`).
    history_ : per iteration, the ELBO per document (VB methods; for online, a pass's mean
        over its minibatches) or log p(w, z) per document (Gibbs); n_iter_, converged_,
        lower_bound_, stop_reason_ as every EM model.
    """

    _allow_nan = False
    _accept_sparse = True
    #: documents the k-means start clusters (a random subset of a larger corpus): its
    #: memory, not the corpus's, bounds a streamed fit's start
    _max_init_rows = INIT_DOCS
    #: a minibatch's E-step threads its documents itself (`_vb.e_step`, config.minibatch)
    _online_split_rows = None
    em_family = VB_FAMILY
    _parameter_constraints: ClassVar[dict] = {
        "n_topics": [Interval(int, 1, 100_000)],
        "method": [Options("batch", "online", "gibbs")],
        "init": [Options("kmeans", "random")],
        "doc_topic_prior": _positive_or_none(),
        "topic_word_prior": _positive_or_none(),
        "optimize_alpha": [Options(True, False)],
        "optimize_eta": [Options(True, False)],
        "max_iter": [Interval(int, 0, 10**9), Options(None)],
        "max_doc_iter": [Interval(int, 1, 10**6)],
        "doc_tol": [Interval(float, 0, None)],
        "batch_size": [Interval(int, 1, None)],
        "total_samples": [Interval(float, 1, None)],
        "burn_in": [Interval(int, 0, 10**9), Options(None)],
        "thin": [Interval(int, 1, 10**9)],
        "n_threads": [Interval(int, 1, 1024)],
        "gibbs_init": [Options(*_gibbs_fit.STARTS)],
    }

    def __init__(self, n_topics=10, *, method="batch", init="kmeans", doc_topic_prior=None,
                 topic_word_prior=None, optimize_alpha=False, optimize_eta=False,
                 max_iter=None, tol=0.1, max_doc_iter=100, doc_tol=1e-3, batch_size=128,
                 learning_decay=0.7, learning_offset=10.0, total_samples=1e6, burn_in=None,
                 thin=10, n_threads=1, gibbs_init="kmeans", random_state=None, n_init=1,
                 warm_start=False, verbose=None, max_time=None, callbacks=None,
                 chunk_size=None):
        self._store_init_args(locals())

    # -- the engine's hooks ---------------------------------------------------------------

    @property
    def _max_iter(self) -> int:
        return DEFAULT_MAX_ITER[self.method] if self.max_iter is None else self.max_iter

    def _engine_options(self) -> dict:
        return {**super()._engine_options(), "max_iter": self._max_iter}

    def _em_config(self, n_samples, n_features) -> TopicConfig:
        K = self.n_topics
        if self.optimize_eta and self.method == "gibbs":
            raise InvalidParameterError("optimize_eta=True applies to the variational "
                                        "methods; method='gibbs' estimates only α.")
        if K * int(n_features) > MAX_TOPIC_WORDS:
            raise InvalidParameterError(
                f"n_topics={K} topics over {n_features} words need {K} x {n_features} "
                f"topic-word arrays, beyond latentkit's limit of {MAX_TOPIC_WORDS:.2e} entries "
                "(8 GiB in float64). Use fewer topics or a smaller vocabulary (min_df, "
                "max_features).")
        alpha = 1.0 / K if self.doc_topic_prior is None else float(self.doc_topic_prior)
        eta = 1.0 / K if self.topic_word_prior is None else float(self.topic_word_prior)
        return TopicConfig(K, int(n_features), np.full(K, alpha), eta, self.optimize_alpha,
                           self.optimize_eta, self.max_doc_iter, float(self.doc_tol),
                           self.init, minibatch=self.method == "online")

    def _store_params(self, params: TopicParams, dtype) -> None:
        self.components_ = np.asarray(params.topic_word).astype(dtype)
        self.doc_topic_prior_ = np.asarray(params.alpha, dtype=np.float64)
        self.topic_word_prior_ = float(params.eta)

    def _current_params(self) -> TopicParams:
        return TopicParams(self.components_.astype(np.float64), self.doc_topic_prior_.copy(),
                           float(self.topic_word_prior_))

    def _documents(self, X, *, reset: bool):
        """X as a validated CSR count matrix (n_docs, V); at reset records vocabulary_,
        n_features_in_ and mean_doc_length_."""
        fitted = not reset
        if fitted:
            check_is_fitted(self)
        # a DataFrame's columns are its words: recorded at fit and checked after, as
        # scikit-learn checks feature names (an array, a corpus or texts carry none)
        _check_feature_names(self, X if hasattr(X, "columns") else np.empty((0, 0)),
                             reset=reset)
        docs = as_documents(X, vocabulary=self.vocabulary_ if fitted else None,
                            n_words=self.n_features_in_ if fitted else None)
        if reset and docs.counts.nnz == 0:
            raise InvalidInputError(
                f"the corpus has {docs.counts.shape[0]} document(s) but no words at all: there "
                "is nothing to learn topics from. Check that X holds word counts.")
        if reset:
            self.vocabulary_ = docs.vocabulary
            self.n_features_in_ = docs.counts.shape[1]
            self.mean_doc_length_ = float(docs.counts.sum() / max(docs.counts.shape[0], 1))
        return docs.counts

    def _source(self, X, *, reset: bool) -> em.ChunkSource:
        if em.is_dask(X) or isinstance(X, em.ChunkSource):  # blocks of documents on Dask
            from ._dask import dask_corpus
            return dask_corpus(self, X, reset=reset)
        if isinstance(X, str | os.PathLike):
            source = corpus_source(X, self, reset=reset,
                                   chunk_docs=self.chunk_size or CHUNK_DOCS)
        else:
            counts = self._documents(X, reset=reset)
            source = em.SparseSource(counts, self.chunk_size or CHUNK_DOCS)
        return source

    # -- fitting --------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Learn the topics from a corpus X (any input form; for method="batch" also a
        path to a `.npz` count matrix or to a text file of one document per line, read in
        blocks). Returns self."""
        self._validate_params()
        if self.method == "batch":
            return super().fit(X)
        warm = self.warm_start and hasattr(self, "converged_")
        if self.method == "online":
            return self._fit_online(X, warm)
        if em.is_dask(X):
            raise InvalidParameterError(
                "LDA(method='gibbs') cannot fit a Dask array: the collapsed Gibbs chain holds "
                "a topic for every token and has no additive statistics to sum across "
                "workers. Use method='batch' or 'online' (variational EM, run on the "
                "cluster), or fit X.compute() in memory.")
        if isinstance(X, str | os.PathLike):  # the chain holds every token: read it whole
            X = sp.vstack(list(self._source(X, reset=not warm))).tocsr()
        counts = self._documents(X, reset=not warm)
        config = self._em_config(counts.shape[0], counts.shape[1])
        return _gibbs_fit.fit(self, counts, config, warm)

    def _fit_online(self, X, warm: bool):
        """Online VB over minibatches of batch_size documents: in memory, or streamed from
        a corpus on disk (memory bounded by the minibatch)."""
        if em.is_dask(X) or isinstance(X, em.ChunkSource):  # minibatches' E-steps on Dask
            from ._dask import dask_corpus
            source = dask_corpus(self, X, reset=not warm, batch_rows=self.batch_size)
        elif isinstance(X, str | os.PathLike):
            source = corpus_source(X, self, reset=not warm, chunk_docs=self.batch_size)
        else:
            source = em.SparseSource(self._documents(X, reset=not warm), self.batch_size)
        config = self._em_config(source.n_samples, source.n_features)
        rng, best = as_generator(self.random_state), None
        for restart in range(1 if warm else self.n_init):
            if warm:
                params, online = self._current_params(), vars(self).get("online_state_")
            else:
                sample = source.init_sample(INIT_DOCS, rng)
                params = self.em_family.init(sample, rng, config, restart)[0]
                online = initial_online_state(params, source.n_samples)
            result, online = em.fit_online(
                self.em_family, config, source, params, None, online=online,
                max_passes=self._max_iter, tol=self.tol, learning_decay=self.learning_decay,
                learning_offset=self.learning_offset, total_rows=source.n_samples,
                max_time=self.max_time, callbacks=self.callbacks or (),
                progress=self._progress_delay(), model=self,
                split_rows=self._online_split_rows)
            if best is None or result.lower_bound > best[0].lower_bound:
                best = result, online
        result, online = best
        self._store_fit(result.params, None, source.dtype, converged=result.converged,
                        n_iter=result.n_iter, history=result.history,
                        stop_reason=result.stop_reason)
        self.online_state_ = online
        return self

    def partial_fit(self, X, y=None):
        """One step of online variational Bayes on a minibatch of documents X (any input
        form), scaled to a corpus of `total_samples` documents; returns self."""
        self._validate_params()
        if self.method == "gibbs" or isinstance(getattr(self, "em_state_", None),
                                                _gibbs_fit.GibbsChain):
            raise InvalidParameterError(
                "partial_fit is online variational Bayes; a Gibbs model (method='gibbs') "
                "learns by fit only. Use LDA(method='online') for streams.")
        return super().partial_fit(X)

    def _initial_online_state(self, params, config) -> em.OnlineState:
        return initial_online_state(params, self._online_total_rows())

    def _partial_fit_input(self, X, *, reset: bool):
        return self._documents(X, reset=reset)

    def _online_total_rows(self) -> int:
        return int(self.total_samples)

    # -- inference ------------------------------------------------------------------------

    @property
    def topic_word_(self) -> np.ndarray:
        """φ : (K, V), p(word | topic): components_ with rows normalized."""
        check_is_fitted(self)
        return self.components_ / self.components_.sum(axis=1, keepdims=True)

    @property
    def _n_features_out(self) -> int:
        return self.n_topics

    def _is_gibbs(self) -> bool:
        return isinstance(getattr(self, "em_state_", None), _gibbs_fit.GibbsChain)

    def _doc_topics(self, counts):
        """(gamma (n_docs, K), doc_bound (n_docs,)) of validated counts: q(θ_d) = Dir(γ_d)
        under the fitted topics (for a Gibbs model, γ = α + the expected topic counts of the
        fixed-topics sampler, and the bound uses φ as the topics)."""
        alpha = self.doc_topic_prior_
        config = self._em_config(None, self.n_features_in_)._replace(alpha=alpha)
        if self._is_gibbs():
            phi = self.topic_word_.astype(counts.dtype)
            gamma = _gibbs_fit.infer_gamma(self, counts)
            bound = infer_documents(counts, phi, alpha, config)[2]
            return gamma, bound
        gamma, _, bound = infer_documents(
            counts, expected_topics(self.components_, counts.dtype), alpha, config)
        return gamma, bound

    def score_samples(self, X) -> np.ndarray:
        """The ELBO of each document (n_docs,): a lower bound on log p(w_d), not log p(w_d)
        itself (see `heldout_log_likelihood` for estimates of that). For a Gibbs model the
        bound is taken with the topics fixed at φ."""
        counts = self._documents(X, reset=False)
        return self._doc_topics(counts)[1].astype(counts.dtype)

    #: what score_samples returns, by name (DESIGN section 2)
    score_kind = "elbo"

    def posterior(self, X) -> Dirichlet:
        """q(θ_d) = Dir(γ_d) for each document."""
        counts = self._documents(X, reset=False)
        return Dirichlet(self._doc_topics(counts)[0].astype(np.float64))

    def transform(self, X) -> np.ndarray:
        """Each document's topic proportions E[θ_d] : (n_docs, K), rows summing to 1."""
        counts = self._documents(X, reset=False)
        gamma = self._doc_topics(counts)[0]
        return (gamma / gamma.sum(axis=1, keepdims=True)).astype(counts.dtype)

    def fit_transform(self, X, y=None) -> np.ndarray:
        return self.fit(X).transform(X)

    def predict(self, X) -> np.ndarray:
        """Each document's most prevalent topic : (n_docs,)."""
        return np.argmax(self.transform(X), axis=1)

    # -- evaluation -----------------------------------------------------------------------

    def perplexity(self, X, random_state=0) -> float:
        """Held-out perplexity by document completion, the same for every method: each
        document's tokens split at random in halves (seeded by random_state), θ_d inferred
        from the first with the topics fixed at φ, and the second scored:
        exp(-Σ_d log p(w_d^2nd | w_d^1st) / Σ_d N_d^2nd)."""
        counts = self._documents(X, reset=False)
        observed, heldout = _heldout.split_halves(counts, _seed(random_state))
        return float(_heldout.completion_perplexity(
            observed, heldout, self.topic_word_.astype(np.float64), self.doc_topic_prior_))

    def heldout_log_likelihood(self, X, estimator="left-to-right", n_particles=10,
                               random_state=0) -> np.ndarray:
        """Per document (n_docs,): "left-to-right", Wallach et al.'s (2009) particle
        estimate of log p(w_d | φ, α) (of the token sequence), or "completion", log p of the
        held-out half of the tokens given the other half (see `perplexity`).

        The left-to-right particles are resampled in proportion to their predictive
        probability at each token (a particle filter): the product of the per-token
        predictives is then an unbiased estimate of p(w_d), which the published algorithm
        (its Algorithm 3, without resampling) is not — tests/topics/test_heldout.py measures
        its bias against exact enumeration. Like any log of an unbiased estimate, the value
        is low by a Jensen gap that shrinks with n_particles."""
        counts = self._documents(X, reset=False)
        phi, seed = self.topic_word_.astype(np.float64), _seed(random_state)
        if estimator == "left-to-right":
            return _heldout.left_to_right_log_likelihood(
                counts, phi, self.doc_topic_prior_, n_particles=n_particles, seed=seed,
                resample_particles=True)
        if estimator == "completion":
            observed, heldout = _heldout.split_halves(counts, seed)
            return _heldout.completion_log_likelihood(observed, heldout, phi,
                                                      self.doc_topic_prior_)[0]
        raise InvalidParameterError(f"estimator must be 'left-to-right' or 'completion'; got "
                                    f"{estimator!r}.")

    def top_words(self, n=10) -> list[list[str]]:
        """The n most probable words of each topic, most probable first (words from
        vocabulary_, else the column numbers as strings)."""
        check_is_fitted(self)
        order = np.argsort(-self.components_, axis=1, kind="stable")[:, :n]
        words = (self.vocabulary_ if self.vocabulary_ is not None
                 else np.arange(self.n_features_in_).astype(str))
        return [[str(words[j]) for j in row] for row in order]

    def coherence(self, reference, n_words=10, measure="umass") -> np.ndarray:
        """Each topic's coherence (K,) on a reference corpus (document co-occurrence of its
        top n_words): "umass" (Mimno et al. 2011) or "npmi" (Bouma 2009)."""
        counts = self._documents(reference, reset=False)
        top = np.argsort(-self.components_, axis=1, kind="stable")[:, :n_words]
        if measure == "umass":
            return umass_coherence(top, counts)
        if measure == "npmi":
            return npmi_coherence(top, counts)
        raise InvalidParameterError(f"measure must be 'umass' or 'npmi'; got {measure!r}.")

    # -- the rest of the contract ---------------------------------------------------------

    def _n_parameters(self) -> int:
        K, V = self.components_.shape
        return K * (V - 1) + (K if self.optimize_alpha else 0) + int(self.optimize_eta)

    def sample(self, n_samples=1, random_state=None):
        """Draw documents: θ_d ~ Dir(α), N_d ~ Poisson(mean_doc_length_) (at least 1),
        counts_d ~ Multinomial(N_d, θ_d φ). Returns (counts (n_samples, V) in components_'s
        dtype, θ (n_samples, K))."""
        check_is_fitted(self)
        check_n_samples(n_samples)
        rng = as_generator(random_state)
        theta = rng.dirichlet(self.doc_topic_prior_, size=n_samples)
        lengths = np.maximum(rng.poisson(self.mean_doc_length_, size=n_samples), 1)
        word_probs = theta @ self.topic_word_.astype(np.float64)
        word_probs /= word_probs.sum(axis=1, keepdims=True)
        counts = rng.multinomial(lengths, word_probs)
        return counts.astype(self.components_.dtype), theta


def _seed(random_state) -> int:
    """An int seed for the held-out kernels from an int, None (0) or a Generator."""
    return 0 if random_state is None else as_seed(random_state, high=2**62)


__all__ = ["LDA"]
