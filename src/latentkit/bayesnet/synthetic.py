"""Random discrete Bayesian networks with known CPTs, for recovery tests and benchmarks."""

from __future__ import annotations

import numpy as np

from .._validation import as_generator
from .network import DiscreteBayesNet


def make_random_network(n_variables: int, *, cardinality=(2, 4), max_parents: int = 3,
                        concentration: float = 1.0, hidden=(), random_state=None,
                        **kwargs) -> DiscreteBayesNet:
    """A random DAG over X0..X{V-1} with CPTs drawn row by row from Dirichlet(concentration).

    Variable v takes 0..min(max_parents, v) parents uniformly among X0..X{v-1} (so the
    index order is topological); cardinality : (low, high) inclusive range of states, or
    an int. kwargs go to DiscreteBayesNet (hidden, alpha, max_iter, ...).
    """
    rng = as_generator(random_state)
    low, high = (cardinality, cardinality) if np.isscalar(cardinality) else cardinality
    names = [f"X{v}" for v in range(n_variables)]
    cards = {name: int(rng.integers(low, high + 1)) for name in names}
    edges, cpts = [], {}
    for v, name in enumerate(names):
        count = int(rng.integers(0, min(max_parents, v) + 1))
        parents = sorted(rng.choice(v, size=count, replace=False).tolist()) if count else []
        edges += [(names[p], name) for p in parents]
        shape = tuple(cards[names[p]] for p in parents)
        cpts[name] = rng.dirichlet(np.full(cards[name], concentration), size=shape)
    return DiscreteBayesNet(edges=edges, cardinalities=cards, cpts=cpts, hidden=list(hidden),
                            **kwargs)
