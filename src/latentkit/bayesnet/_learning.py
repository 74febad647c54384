"""EM for the CPTs of a discrete Bayesian network (MAP-EM with Dirichlet pseudo-counts).

E-step: each row's posterior over its missing variables gives expected family counts

    c_v(x_v, u) = Σ_n p(X_v = x_v, X_pa(v) = u | e_n)

(from the calibrated clique tree: one batched pass for all families). M-step: the
posterior mode under the symmetric prior θ_v(· | u) ~ Dirichlet(1 + α, ..., 1 + α),

    θ_v(x_v | u) = (c_v(x_v, u) + α) / (Σ_x c_v(x, u) + k_v α),

so with α > 0 no entry is 0; with α = 0 a parent configuration never seen gets the uniform
distribution. MAP-EM never decreases log p(X | θ) + log p(θ), log p(θ) = α Σ log θ + const,
which is the objective the engine tracks.

`em_init`, `em_e_step`, `em_m_step` and `em_log_prior` are these kernels in the engine's
contract (`latentkit.em.EMFamily`), over a `BNConfig` that carries the compiled network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from .. import em
from ..io import register_record
from ._graph import CliqueTree, Structure
from ._inference import (
    clique_potentials,
    restricted_calibrate,
    restricted_pieces,
)


class BNParams(NamedTuple):
    """cpts : per variable (in variable order), its CPT (parent cards..., own card)."""

    cpts: tuple


class BNConfig(NamedTuple):
    """The validated hyper-parameters of one fit (built once by the model's `_em_config`).

    structure, tree : the compiled network and its clique tree; alpha : the Dirichlet
    pseudo-count; init_params : "data" or "random"; given : {variable index: CPT} of the
    user's starting CPTs (validated by `check_cpts`).
    """

    structure: Structure
    tree: CliqueTree
    alpha: float
    init_params: str
    given: Mapping[int, np.ndarray]


@register_record
@dataclass(frozen=True)
class BNStats(em.SufficientStats):
    """n : rows seen; counts : (Σ_v |CPT_v|,) the expected family counts, concatenated."""

    n: float
    counts: np.ndarray

    additive: ClassVar[tuple[str, ...]] = ("n", "counts")


def flatten(tables) -> np.ndarray:
    """CPT-shaped arrays -> one flat float64 vector (variable order)."""
    return np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in tables])


def unflatten(structure: Structure, flat: np.ndarray) -> tuple:
    """Inverse of `flatten`: views of `flat` shaped like each CPT."""
    out, start = [], 0
    for v in range(len(structure.names)):
        shape = structure.cpt_shape(v)
        size = int(np.prod(shape))
        out.append(flat[start:start + size].reshape(shape))
        start += size
    return tuple(out)


def states_of(X: np.ndarray, structure: Structure) -> np.ndarray:
    """X : (n, n_observed) codes as floats, NaN = missing -> (n, V) int states, -1 for
    missing and for hidden variables."""
    states = np.full((X.shape[0], len(structure.names)), -1, dtype=np.int64)
    observed = np.nan_to_num(X, nan=-1.0).astype(np.int64)
    states[:, list(structure.observed)] = observed
    return states


def e_step(structure: Structure, tree: CliqueTree, params: BNParams, X: np.ndarray):
    """X : (n, n_observed) -> (BNStats, Σ_n log p(x_n,obs)). Runs in X's float dtype."""
    potentials = clique_potentials(tree, structure, params.cpts)
    states = states_of(X, structure)
    pooled = [np.zeros(int(np.prod([structure.cards[u] for u in scope])))
              for scope in tree.scopes]
    total = 0.0
    for rows in restricted_pieces(tree, structure.cards, states):
        part, log_evidence = restricted_calibrate(tree, potentials, states[rows],
                                                  structure.cards, X.dtype)
        pooled = [a + b for a, b in zip(pooled, part)]
        total += float(log_evidence.sum())
    counts = pooled_family_counts(tree, structure, pooled)
    return BNStats(float(len(X)), flatten(counts)), total


def log_likelihood(structure: Structure, tree: CliqueTree, cpts, X: np.ndarray) -> np.ndarray:
    """log p(x_n,obs) : (n,) by the upward pass alone."""
    potentials = clique_potentials(tree, structure, cpts)
    states = states_of(X, structure)
    return np.concatenate([np.zeros(0)] + [
        restricted_calibrate(tree, potentials, states[rows], structure.cards, X.dtype,
                             downward=False)[1]
        for rows in restricted_pieces(tree, structure.cards, states)])


def m_step(structure: Structure, stats: BNStats, alpha: float) -> BNParams:
    """θ_v(x | u) = (c + α) / (Σ_x c + k_v α); uniform where that is 0 / 0."""
    cpts = []
    for v, counts in enumerate(unflatten(structure, stats.counts)):
        smoothed = counts + alpha
        total = smoothed.sum(axis=-1, keepdims=True)
        k = structure.cards[v]
        cpts.append(np.where(total > 0, smoothed / np.where(total > 0, total, 1), 1.0 / k))
    return BNParams(tuple(cpts))


def log_prior(params: BNParams, alpha: float) -> float:
    """log p(θ) + const = α Σ log θ (0 for ML-EM, α = 0). A zero entry (only possible in
    user-given starting CPTs) counts as the smallest positive float, so the objective stays
    finite; every M-step with α > 0 leaves no zeros."""
    if alpha == 0:
        return 0.0
    tiny = np.finfo(np.float64).tiny
    return alpha * float(sum(np.log(np.maximum(t, tiny)).sum() for t in params.cpts))


def complete_case_counts(structure: Structure, X: np.ndarray) -> list:
    """Per variable, counts of (parents, v) over the rows where the family is observed."""
    states = states_of(X, structure)
    counts = []
    for v in range(len(structure.names)):
        family = list(structure.family(v))
        shape = structure.cpt_shape(v)
        rows = states[np.all(states[:, family] >= 0, axis=1)][:, family]
        flat = np.ravel_multi_index(tuple(rows.T), shape) if len(rows) else np.empty(0, int)
        counts.append(np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape))
    return counts


def initial_params(structure: Structure, X: np.ndarray, rng: np.random.Generator,
                   given: dict, method: str, alpha: float) -> BNParams:
    """Starting CPTs: the user's where given; otherwise a random draw, Dirichlet(1) per
    row (what breaks the symmetry of hidden variables between restarts), added to the
    complete-case counts of the family when method is "data" (a family with a hidden
    member has none, so it stays random)."""
    counts = complete_case_counts(structure, X) if method == "data" else None
    cpts = []
    for v in range(len(structure.names)):
        if v in given:
            cpts.append(given[v])
            continue
        shape = structure.cpt_shape(v)
        draw = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
        table = draw + (counts[v] + alpha if counts is not None else 0)
        cpts.append(table / table.sum(axis=-1, keepdims=True))
    return BNParams(tuple(cpts))


# -- the family's EM contract (latentkit.em.EMFamily) -------------------------------------


def em_init(X: np.ndarray, rng: np.random.Generator, config: BNConfig, restart: int):
    """(θ, None) from `initial_params` (its random draw differs between restarts through
    rng). X : (n, n_observed) codes. The network keeps no state between iterations."""
    return initial_params(config.structure, X, rng, config.given, config.init_params,
                          config.alpha), None


def em_e_step(params: BNParams, state, config: BNConfig, X: np.ndarray):
    """(BNStats, Σ_n log p(x_n,obs)) of a chunk X : (n, n_observed)."""
    return e_step(config.structure, config.tree, params, X)


def em_m_step(stats: BNStats, params: BNParams, state, config: BNConfig):
    """(θ', state, NOTHING): the posterior mode of the CPTs given the expected counts."""
    return m_step(config.structure, stats, config.alpha), state, em.NOTHING


def em_log_prior(params: BNParams, config: BNConfig) -> float:
    """log p(θ) + const = α Σ log θ (see `log_prior`)."""
    return log_prior(params, config.alpha)


def pooled_family_counts(tree: CliqueTree, structure: Structure, pooled) -> list:
    """pooled[c] : (Π_{u in C_c} k_u,) Σ_n p(C_c | e_n) -> expected counts Σ_n p(x_v,
    x_pa(v) | e_n) : CPT-shaped, per variable (summed out of the clique v's CPT is in)."""
    counts = [None] * len(structure.names)
    for c, scope in enumerate(tree.scopes):
        table = pooled[c].reshape(tuple(structure.cards[u] for u in scope))
        for v in tree.cpts[c]:
            family = structure.family(v)
            axes = tuple(i for i, u in enumerate(scope) if u not in family)
            inside = [u for u in scope if u in family]
            counts[v] = table.sum(axis=axes).transpose([inside.index(u) for u in family])
    return counts
