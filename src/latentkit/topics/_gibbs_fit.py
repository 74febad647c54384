"""Fitting LDA by collapsed Gibbs sampling (Griffiths & Steyvers 2004), and inferring the
topic proportions of new documents with the topics fixed.

The chain's state is the topic of every token (`GibbsChain.z`, in the order
`tokens_from_counts` lists a corpus's tokens) and the count matrices that follow from it.
A run makes `max_iter` sweeps (`_gibbs_kernels.gibbs_sweeps`: sweep s of block b draws from
stream(seed, s * n_threads + b), so a chain continued by a warm start is the same chain);
after `burn_in` sweeps, every `thin`-th sweep's word-topic counts are kept, and the topics'
Dirichlet parameters are η + their mean (components_), φ their normalization:

    φ_kw = (n̄_kw + η) / (n̄_k + V η)

With optimize_alpha, α is re-estimated every `ALPHA_EVERY` sweeps once the burn-in is half
done (Minka's fixed point on the document-topic counts; Wallach et al. 2009's asymmetric
prior). history_ records log p(w, z | α, η) per document after each sweep (the collapsed
joint, Griffiths & Steyvers' trace of convergence): it is not a bound and need not rise.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from .. import em
from .._validation import as_generator
from ..exceptions import InvalidInputError
from ..io import register_record
from ._corpus import csr_arrays
from ._gibbs_kernels import (
    collapsed_log_joint,
    count_matrices,
    fixed_topics_inference,
    gibbs_sweeps,
    initial_assignments,
    optimize_alpha,
    tokens_from_counts,
)
from ._rng import seed_from
from ._vb import TopicParams

#: sweeps between two re-estimations of α (Mallet's default interval)
ALPHA_EVERY = 10


@register_record
@dataclass(frozen=True)
class GibbsChain:
    """A collapsed Gibbs chain, saved with the model so that a warm start continues it.

    z : (N,) int32 topic of each token; seed : the chain's stream seed; sweeps : sweeps
    done; kept : (K, V) float64 sum of the kept sweeps' word-topic counts; n_kept : how
    many sweeps were kept.
    """

    z: np.ndarray
    seed: int
    sweeps: int
    kept: np.ndarray
    n_kept: int


class _Chain:
    """The working state of a run: tokens, assignments and counts (updated in place)."""

    def __init__(self, counts, config, chain: GibbsChain):
        self.doc_ptr, self.words = tokens_from_counts(*csr_arrays(counts))
        if len(chain.z) != len(self.words):
            raise InvalidInputError(
                f"warm_start continues the Gibbs chain of the corpus it was fitted on "
                f"({len(chain.z)} tokens); this corpus has {len(self.words)}. Fit it afresh "
                "(warm_start=False).")
        self.z = chain.z.copy()
        self.n_dk, self.n_wk, self.n_k = count_matrices(
            self.doc_ptr, self.words, self.z, config.n_topics, config.n_words)
        self.lengths = np.diff(self.doc_ptr)


def _start(model, counts, config, warm: bool) -> tuple[GibbsChain, np.ndarray, float]:
    """(chain record, α, η) a run starts from: the saved chain, or uniform assignments."""
    if warm:
        return model.em_state_, model.doc_topic_prior_.copy(), float(model.topic_word_prior_)
    seed = seed_from(as_generator(model.random_state))
    doc_ptr, words = tokens_from_counts(*csr_arrays(counts))
    z = initial_assignments(doc_ptr, words, config.n_topics, seed)
    kept = np.zeros((config.n_topics, config.n_words))
    return GibbsChain(z, seed, 0, kept, 0), config.alpha.copy(), float(config.eta)


def _burn_in(model, max_iter: int) -> int:
    return max_iter // 2 if model.burn_in is None else model.burn_in


def fit(model, counts, config, warm: bool):
    """Run the chain for max_iter sweeps and store the model (see the module docstring)."""
    record, alpha, eta = _start(model, counts, config, warm)
    chain = _Chain(counts, config, record)
    max_iter, burn_in = model._max_iter, _burn_in(model, model._max_iter)
    kept, n_kept, history = record.kept.copy(), record.n_kept, []
    stop, start, sweep = "max_iter", time.perf_counter(), record.sweeps
    with em.progress_bar(max_iter, "Gibbs", model._progress_delay()) as bar:
        for sweep in range(record.sweeps, record.sweeps + max_iter):
            try:
                gibbs_sweeps(chain.doc_ptr, chain.words, chain.z, chain.n_dk, chain.n_wk,
                             chain.n_k, alpha, eta, 1, record.seed, first_sweep=sweep,
                             n_threads=model.n_threads)
            except KeyboardInterrupt:
                warnings.warn(f"Gibbs sampling interrupted during sweep {sweep + 1}; keeping "
                              "the chain's state before it.", em.ConvergenceWarning,
                              stacklevel=3)
                stop = "interrupted"
                break
            done = sweep + 1
            if (model.optimize_alpha and config.n_topics > 1 and done >= burn_in // 2
                    and done % ALPHA_EVERY == 0):
                alpha = optimize_alpha(chain.n_dk, chain.lengths, alpha)
            if done > burn_in and (done - burn_in) % model.thin == 0:
                kept += chain.n_wk.T
                n_kept += 1
            history.append(collapsed_log_joint(chain.n_dk, chain.n_wk, chain.n_k, alpha, eta)
                           / max(len(chain.lengths), 1))
            bar.update(1)
            reason = _stop_reason(model, done, history, alpha, eta, chain, start)
            if reason:
                stop = reason
                break
    mean = kept / n_kept if n_kept else chain.n_wk.T.astype(np.float64)
    state = GibbsChain(chain.z, record.seed, sweep + (stop != "interrupted"), kept, n_kept)
    model._store_fit(TopicParams(eta + mean, alpha, eta), state, counts.dtype,
                     converged=stop == "max_iter", n_iter=len(history), history=history,
                     stop_reason="sweeps" if stop == "max_iter" else stop)
    model.__dict__.pop("online_state_", None)
    return model


def _stop_reason(model, done: int, history, alpha, eta, chain, start: float) -> str | None:
    """The callbacks and the max_time budget after a sweep: "callback" or "max_time" to
    stop, None to go on. A callback sees the current sweep's topics (η + n_wk)."""
    elapsed = time.perf_counter() - start
    if model.callbacks:
        params = TopicParams(eta + chain.n_wk.T.astype(np.float64), alpha.copy(), eta)
        change = history[-1] - history[-2] if len(history) > 1 else np.inf
        step = em.EMIteration(done, history[-1], change, params, elapsed, model,
                              tuple(history))
        if any(cb(step) is True for cb in model.callbacks):
            return "callback"
    if model.max_time is not None and elapsed > model.max_time:
        return "max_time"
    return None


def infer_gamma(model, counts) -> np.ndarray:
    """γ : (n_docs, K) = α + the expected topic counts of each document under the
    fixed-topics sampler (`TRANSFORM_BURN_IN` sweeps, then the mean over
    `TRANSFORM_SAMPLES`), seeded by the model's chain: the same documents always get the
    same proportions."""
    from .lda import TRANSFORM_BURN_IN, TRANSFORM_SAMPLES

    doc_ptr, words = tokens_from_counts(*csr_arrays(counts))
    alpha = model.doc_topic_prior_
    theta = fixed_topics_inference(doc_ptr, words, model.topic_word_.astype(np.float64), alpha,
                                   TRANSFORM_BURN_IN, TRANSFORM_SAMPLES, model.em_state_.seed)
    lengths = np.diff(doc_ptr).astype(np.float64)
    return theta * (lengths + alpha.sum())[:, None]


__all__ = ["GibbsChain", "fit", "infer_gamma"]
