"""The structure of a discrete Bayesian network, validated once, and the graph algorithms
that compile it for inference: moralization, greedy elimination orders (min-fill,
min-weight) and the clique tree that an elimination order induces.

A network over variables X_1..X_V factorizes as p(x) = Π_v p(x_v | x_pa(v)); each CPT is
an array shaped (cards of the parents in the order their edges are listed..., card of v).

Elimination and clique trees. Eliminating the variables of the moral graph one at a time,
in an order π, connects the remaining neighbours of each eliminated variable v (fill-in
edges). The set C_v = {v} ∪ N(v) at v's elimination is a clique of the triangulated graph,
and linking C_v to C_u, u the first-eliminated variable of N(v), gives a tree with the
running-intersection property (a junction tree, possibly a forest); the separator of C_v
and its parent is S_v = N(v). Every family {v} ∪ pa(v) is a clique of the moral graph, so it
lies inside C_u for u its first-eliminated member: that is where its CPT is multiplied in.
Tables in this package keep their axes sorted by elimination position, so the scope of any
sub-table appears in the same relative order inside a bigger one and aligning two tables
is a reshape (no transposes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._states import MAX_TABLE_ENTRIES, check_level_count
from ..exceptions import InvalidParameterError

HEURISTICS = ("min_fill", "min_weight")


@dataclass(frozen=True)
class Structure:
    """A validated DAG over named discrete variables.

    names : (V,) variable names, in the order of `cardinalities`; cards : (V,) states of
    each; parents : per variable, parent indices in the order their edges were listed;
    topological : a topological order of the indices; states : per variable, its state
    names (strings); hidden : sorted indices of the variables that are never observed.
    """

    names: tuple[str, ...]
    cards: tuple[int, ...]
    parents: tuple[tuple[int, ...], ...]
    topological: tuple[int, ...]
    states: tuple[tuple[str, ...], ...]
    hidden: tuple[int, ...] = ()

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    @property
    def observed(self) -> tuple[int, ...]:
        """Indices of the variables that have a data column, in variable order."""
        hidden = set(self.hidden)
        return tuple(v for v in range(len(self.names)) if v not in hidden)

    def position(self, name, what: str, error: type[Exception] = InvalidParameterError) -> int:
        """The index of variable `name`; `error` saying that `what` names no variable of
        the network (e.g. what = "evidence names 'X'", "cpts names 'X'")."""
        index = self.index
        if name not in index:
            raise error(f"{what}, which is not a variable of the network "
                        f"({list(self.names)}).")
        return index[name]

    def cpt_shape(self, v: int) -> tuple[int, ...]:
        return tuple(self.cards[p] for p in self.parents[v]) + (self.cards[v],)

    def family(self, v: int) -> tuple[int, ...]:
        """The CPT's axes: parents in edge order, then v."""
        return (*self.parents[v], v)

    def edges(self) -> list[tuple[str, str]]:
        return [(self.names[p], self.names[v]) for v in range(len(self.names))
                for p in self.parents[v]]


def build_structure(edges, cardinalities, state_names=None, hidden=()) -> Structure:
    """Validate the user's description of a network and return its Structure.

    edges : iterable of (parent, child) name pairs; cardinalities : {name: int in [1,
    MAX_CATEGORIES = 10_000]}, each CPT at most MAX_TABLE_ENTRIES = 10**7 entries (limits
    in `latentkit._states`, checked before anything is allocated);
    state_names : None or {name: sequence of k distinct names}; hidden : names never
    observed in data. Every problem is an InvalidParameterError (a ValueError) that names
    it and the fix.
    """
    if not isinstance(cardinalities, dict) or not cardinalities:
        raise InvalidParameterError(
            "cardinalities must be a non-empty dict {variable name: number of "
            f"states}}; got {cardinalities!r}.")
    names, cards = [], []
    for name, k in cardinalities.items():
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(f"variable names must be non-empty strings; got {name!r}.")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InvalidParameterError(
                f"the cardinality of {name!r} must be an integer >= 1; got {k!r}.")
        names.append(name)
        cards.append(check_level_count(
            k, f"the cardinality of {name!r}", f"is {k}", InvalidParameterError,
            fix="give each variable at most that many states (a variable with more is an "
            "identifier or free text; drop it, or group its rare states together)"))
    index = {name: i for i, name in enumerate(names)}
    parents = [[] for _ in names]
    for edge in edges or ():
        if isinstance(edge, str) or len(edge) != 2:
            raise InvalidParameterError(f"each edge must be a (parent, child) pair; got {edge!r}.")
        parent, child = edge
        for name in (parent, child):
            if name not in index:
                raise InvalidParameterError(
                    f"edge {tuple(edge)!r} names {name!r}, which has no entry in "
                    "cardinalities; add it there with its number of states.")
        if parent == child:
            raise InvalidParameterError(
                f"edge {tuple(edge)!r} is a self-loop; a Bayesian network is a "
                "DAG.")
        if index[parent] in parents[index[child]]:
            raise InvalidParameterError(f"edge {tuple(edge)!r} is listed twice.")
        parents[index[child]].append(index[parent])
    for v, ps in enumerate(parents):
        _check_table(names[v], [*ps, v], names, cards, "CPT")
    topological = topological_order(names, parents)
    states = _state_names(names, cards, state_names)
    hidden_idx = []
    for name in [hidden] if isinstance(hidden, str) else hidden or ():
        if name not in index:
            raise InvalidParameterError(
                f"hidden variable {name!r} has no entry in cardinalities; add it "
                "there with its number of states.")
        hidden_idx.append(index[name])
    if len(set(hidden_idx)) != len(hidden_idx):
        raise InvalidParameterError(f"hidden lists a variable twice: {list(hidden)!r}.")
    return Structure(tuple(names), tuple(cards), tuple(tuple(p) for p in parents),
                     topological, states, tuple(sorted(hidden_idx)))


def _check_table(name: str, scope, names, cards, what: str) -> None:
    """Bound a table over the variables `scope` (a CPT, a clique) before it is allocated:
    Π cards <= MAX_TABLE_ENTRIES, or an InvalidParameterError naming it and the fix."""
    entries = math.prod(cards[u] for u in scope)
    if entries > MAX_TABLE_ENTRIES:
        listed = ", ".join(f"{names[u]!r}: {cards[u]}" for u in scope)
        raise InvalidParameterError(
            f"the {what} of {name!r} would have {entries} entries ({{{listed}}}), more than "
            f"{MAX_TABLE_ENTRIES} (MAX_TABLE_ENTRIES): give its variables fewer states, or "
            "the network fewer edges into it.")


def _state_names(names, cards, given) -> tuple[tuple[str, ...], ...]:
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise InvalidParameterError(
            f"state_names must be None or a dict {{variable: [names]}}; got "
            f"{given!r}.")
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InvalidParameterError(
            f"state_names names unknown variables {unknown}; known: {names}.")
    out = []
    for name, k in zip(names, cards):
        states = given.get(name)
        if states is None:
            out.append(tuple(str(s) for s in range(k)))
            continue
        states = tuple(str(s) for s in states)
        if len(states) != k or len(set(states)) != k:
            raise InvalidParameterError(f"state_names[{name!r}] must list {k} distinct names (its "
                                        f"cardinality); got {list(states)!r}.")
        out.append(states)
    return tuple(out)


def topological_order(names, parents) -> tuple[int, ...]:
    """Kahn's algorithm; a cycle is an InvalidParameterError that spells the cycle out."""
    n = len(names)
    children = [[] for _ in range(n)]
    for v, ps in enumerate(parents):
        for p in ps:
            children[p].append(v)
    indegree = [len(ps) for ps in parents]
    ready = [v for v in range(n) if indegree[v] == 0]
    order = []
    while ready:
        v = ready.pop(0)
        order.append(v)
        for c in children[v]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    if len(order) < n:
        cycle = _find_cycle({v for v in range(n) if indegree[v] > 0}, parents)
        raise InvalidParameterError(
            "the edges contain a cycle: " + " -> ".join(names[v] for v in cycle)
            + "; a Bayesian network must be a DAG: remove or reverse an edge.")
    return tuple(order)


def _find_cycle(remaining: set, parents) -> list[int]:
    """A directed cycle among `remaining` (every one of them has a parent there)."""
    v, seen = min(remaining), []
    while v not in seen:
        seen.append(v)
        v = next(p for p in parents[v] if p in remaining)
    cycle = seen[seen.index(v):] + [v]
    return cycle[::-1]  # follow the edges parent -> child


# -- elimination --------------------------------------------------------------------------


def moral_graph(structure: Structure) -> list[set[int]]:
    """Adjacency sets of the moral graph: the DAG's edges undirected, plus an edge between
    every two parents of a common child."""
    adjacency = [set() for _ in structure.names]
    for v in range(len(structure.names)):
        family = structure.family(v)
        for a in family:
            adjacency[a].update(u for u in family if u != a)
    return adjacency


def greedy_order(adjacency: list[set[int]], cards, eliminate, heuristic: str) -> list[int]:
    """Greedy elimination order of the variables in `eliminate`.

    heuristic "min_fill": next the variable whose elimination adds the fewest fill-in
    edges; "min_weight": the one whose clique {v} ∪ N(v) has the smallest table (product
    of cardinalities). Ties go to the smaller index. `adjacency` is updated in place with
    the fill-in edges and loses the eliminated variables.
    """
    if heuristic not in HEURISTICS:
        raise InvalidParameterError(f"elimination heuristic must be one of {HEURISTICS}; got "
                                    f"{heuristic!r}.")
    remaining, order = set(eliminate), []
    while remaining:
        best, best_score = None, None
        for v in sorted(remaining):
            nbrs = adjacency[v]
            if heuristic == "min_fill":
                listed = list(nbrs)
                score = sum(1 for i, a in enumerate(listed) for b in listed[i + 1:]
                            if b not in adjacency[a])
            else:
                score = cards[v] * int(np.prod([cards[u] for u in nbrs], dtype=np.float64))
            if best_score is None or score < best_score:
                best, best_score = v, score
        eliminate_vertex(adjacency, best)
        remaining.discard(best)
        order.append(best)
    return order


def eliminate_vertex(adjacency: list[set[int]], v: int) -> set[int]:
    """Connect v's neighbours (fill-in), remove v; returns its neighbours at elimination."""
    nbrs = set(adjacency[v])
    for a in nbrs:
        adjacency[a].update(nbrs - {a})
        adjacency[a].discard(v)
    adjacency[v] = set()
    return nbrs


@dataclass(frozen=True)
class CliqueTree:
    """The junction tree induced by eliminating every variable in `order`.

    Clique c is the one formed when order[c] is eliminated. position : (V,) elimination
    step of each variable; scopes[c] : its variables sorted by position (order[c] first);
    parent[c] : the clique its message goes to (-1 for a root); children[c] : the cliques
    sending to it; cpts[c] : the variables whose CPT is multiplied into clique c.
    """

    order: tuple[int, ...]
    position: tuple[int, ...]
    scopes: tuple[tuple[int, ...], ...]
    parent: tuple[int, ...]
    children: tuple[tuple[int, ...], ...]
    cpts: tuple[tuple[int, ...], ...]

    def separator(self, c: int) -> tuple[int, ...]:
        return self.scopes[c][1:]

    def table_size(self, cards) -> int:
        """Entries of all clique tables together (per data row)."""
        return int(sum(np.prod([cards[u] for u in scope]) for scope in self.scopes))


def clique_tree(structure: Structure, heuristic: str) -> CliqueTree:
    """Compile `structure` into a clique tree with a greedy elimination order; a clique
    table of more than MAX_TABLE_ENTRIES entries is an InvalidParameterError."""
    V = len(structure.names)
    adjacency = moral_graph(structure)
    order = greedy_order([set(a) for a in adjacency], structure.cards, range(V), heuristic)
    position = [0] * V
    for step, v in enumerate(order):
        position[v] = step
    scopes, parent = [], []
    for v in order:
        nbrs = eliminate_vertex(adjacency, v)
        separator = sorted(nbrs, key=position.__getitem__)
        scopes.append((v, *separator))
        _check_table(structure.names[v], scopes[-1], structure.names, structure.cards,
                     "clique (eliminating it) in the inference")
        parent.append(position[separator[0]] if separator else -1)
    children = [[] for _ in range(V)]
    for c, p in enumerate(parent):
        if p >= 0:
            children[p].append(c)
    cpts = [[] for _ in range(V)]
    for v in range(V):
        cpts[min(position[u] for u in structure.family(v))].append(v)
    return CliqueTree(tuple(order), tuple(position), tuple(scopes), tuple(parent),
                      tuple(tuple(c) for c in children), tuple(tuple(c) for c in cpts))
