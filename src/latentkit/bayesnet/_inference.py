"""Exact inference in a discrete Bayesian network, batched over data rows.

Evidence enters as indicator factors: row n's evidence on variable v is the vector
λ_nv(x) = [x = observed state] (all ones when v is missing), so

    p(e_n) = Σ_x Π_v p(x_v | x_pa(v)) λ_nv(x_v)

and every row shares one elimination order: every table carries a trailing batch axis
(length n, or 1 for a table that is the same for all rows), and a whole chunk of rows is
one sequence of broadcast products and sums, whatever its missingness patterns. The batch
axis is the last (contiguous) one so that numpy's inner loops run over rows, not over the
2-4 states of a variable.

Two algorithms, both over tables whose axes are sorted by elimination position (see
`_graph`): variable elimination (sum-product for marginals, joint posteriors and
log p(e); max-product with traceback for MAP/MPE), and the clique tree (two passes of
messages giving every clique's posterior at once: what EM needs for the expected counts
of every family, and the posterior marginal of every variable).

Scaling: after each elimination step a table is divided by its per-row maximum and the log
of that factor is accumulated, so long products never underflow (float32 included).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._graph import CliqueTree, Structure, greedy_order, moral_graph


class Factor(NamedTuple):
    """table : (*cards of scope, b) with b = n rows or 1 (shared); scope : variables sorted
    by the position key in use."""

    table: np.ndarray
    scope: tuple[int, ...]


def expand(table: np.ndarray, scope, target) -> np.ndarray:
    """View `table` (*scope axes, b) as (*target axes, b), size 1 where a target variable
    is not in scope. Both scopes sorted by the same key, scope ⊆ target."""
    where = {u: i for i, u in enumerate(scope)}
    shape = [table.shape[where[u]] if u in where else 1 for u in target] + [table.shape[-1]]
    return table.reshape(shape)


def batch(table: np.ndarray) -> int:
    return table.shape[-1]


def indicator_evidence(states: np.ndarray, cards, dtype) -> list[np.ndarray]:
    """states : (n, V) integer states, -1 = missing -> per variable λ_v : (k_v, n) one-hot
    columns (all ones where missing); (k_v, 1) ones for a variable missing in every row."""
    out = []
    for v, k in enumerate(cards):
        s = states[:, v]
        if np.all(s < 0):
            out.append(np.ones((k, 1), dtype=dtype))
        else:
            levels = np.arange(k)[:, None]
            out.append(((s == levels) | (s < 0)).astype(dtype))
    return out


def sorted_cpt(structure: Structure, cpt: np.ndarray, v: int, position) -> Factor:
    """The CPT of v as a shared Factor (batch 1) with axes sorted by `position`."""
    family = structure.family(v)
    perm = sorted(range(len(family)), key=lambda i: position[family[i]])
    return Factor(cpt.transpose(perm)[..., None], tuple(family[i] for i in perm))


def _rescale(table: np.ndarray, log_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide each row of table (..., b) by its maximum; add log of it to log_scale."""
    peak = table.reshape(-1, batch(table)).max(axis=0)
    safe = np.where(peak > 0, peak, 1)
    with np.errstate(divide="ignore"):
        log_scale = log_scale + np.log(peak.astype(np.float64))
    return table / safe, log_scale


def _normalize(table: np.ndarray) -> np.ndarray:
    """Each row of table (..., b) divided by its sum (rows summing to 0 stay 0)."""
    total = table.reshape(-1, batch(table)).sum(axis=0)
    return table / np.where(total > 0, total, 1)


def _product(factors, scope) -> np.ndarray:
    table = None
    for f in factors:
        part = expand(f.table, f.scope, scope)
        table = part if table is None else table * part
    return table


# -- variable elimination -----------------------------------------------------------------


class Elimination(NamedTuple):
    """What variable elimination leaves: factors over the kept variables, the accumulated
    log scale : (b,), and for max-product the traceback records (v, scope, argmax table
    (*cards of scope, b))."""

    factors: list
    log_scale: np.ndarray
    traceback: list


def eliminate(factors, order, position, cards, *, maximize=False, log_scale=None):
    """Sum (or max) the variables in `order` out of the product of `factors`, one at a time.

    Each step multiplies the factors that mention v into one table over their union and
    sums (maxes) v out; max-product also keeps argmax_v : (*rest, b) for the traceback.
    """
    factors = list(factors)
    log_scale = np.zeros(1) if log_scale is None else log_scale
    traceback = []
    for v in order:
        involved = [f for f in factors if v in f.scope]
        factors = [f for f in factors if v not in f.scope]
        scope = tuple(sorted(set().union(*(f.scope for f in involved)), key=position.__getitem__))
        table = _product(involved, scope)
        axis = scope.index(v)
        rest = scope[:axis] + scope[axis + 1:]
        if maximize:
            full = np.broadcast_to(table, tuple(cards[u] for u in scope) + (batch(table),))
            traceback.append((v, rest, full.argmax(axis=axis)))
            new = full.max(axis=axis)
        else:
            new = table.sum(axis=axis)
        new, log_scale = _rescale(new, log_scale)
        factors.append(Factor(new, rest))
    return Elimination(factors, log_scale, traceback)


def network_factors(structure: Structure, cpts, evidence, position) -> list[Factor]:
    """Every CPT (shared) and every evidence indicator (per row) as Factors."""
    factors = [sorted_cpt(structure, cpt, v, position) for v, cpt in enumerate(cpts)]
    factors += [Factor(lam, (v,)) for v, lam in enumerate(evidence)]
    return factors


def _order(structure: Structure, eliminate_first, then, heuristic):
    """A greedy order over `eliminate_first`, continued over `then` on the graph that the
    first eliminations left (for MAP: sum out the others first, then max the query)."""
    adjacency = moral_graph(structure)
    first = greedy_order(adjacency, structure.cards, eliminate_first, heuristic)
    second = greedy_order(adjacency, structure.cards, then, heuristic)
    order = first + second
    position = [0] * len(structure.names)
    kept = [v for v in range(len(structure.names)) if v not in set(order)]
    for step, v in enumerate(order + kept):
        position[v] = step
    return first, second, position


def joint_posterior(structure, cpts, evidence, query, heuristic):
    """p(query | e_n) for every row and log p(e_n).

    query : variable indices (distinct). Returns (probs (b, *cards of query) in query
    order, batch first, log_evidence (b,)).
    """
    keep = set(query)
    others = [v for v in range(len(structure.names)) if v not in keep]
    order, _, position = _order(structure, others, [], heuristic)
    done = eliminate(network_factors(structure, cpts, evidence, position), order, position,
                     structure.cards)
    scope = tuple(sorted(keep, key=position.__getitem__))
    table = _product(done.factors, scope)
    total = table.reshape(-1, batch(table)).sum(axis=0)
    with np.errstate(divide="ignore"):
        log_evidence = done.log_scale + np.log(total.astype(np.float64))
    probs = table / np.where(total > 0, total, 1)
    probs = probs.transpose([len(scope)] + [scope.index(v) for v in query])
    return probs, log_evidence


def map_assignment(structure, cpts, evidence, query, heuristic):
    """argmax over the query variables of p(query, e_n) (MPE when query is every variable,
    marginal MAP otherwise: the other variables are summed out first).

    Returns (states (b, len(query)) int in query order, log p(query = states, e_n) (b,)).
    """
    keep = set(query)
    others = [v for v in range(len(structure.names)) if v not in keep]
    first, second, position = _order(structure, others, list(query), heuristic)
    factors = network_factors(structure, cpts, evidence, position)
    summed = eliminate(factors, first, position, structure.cards)
    maxed = eliminate(summed.factors, second, position, structure.cards, maximize=True,
                      log_scale=summed.log_scale)
    value = np.ones(1)
    for f in maxed.factors:  # all scalars per row now
        value = value * f.table.reshape(batch(f.table))
    b = max([value.shape[0], maxed.log_scale.shape[0]]
            + [batch(arg) for _, _, arg in maxed.traceback])
    assigned = {}
    for v, rest, arg in reversed(maxed.traceback):
        arg = np.broadcast_to(arg, arg.shape[:-1] + (b,))
        index = tuple(assigned[u] for u in rest) + (np.arange(b),)
        assigned[v] = arg[index]
    with np.errstate(divide="ignore"):
        log_prob = maxed.log_scale + np.log(value.astype(np.float64))
    states = np.stack([np.broadcast_to(assigned[v], (b,)) for v in query], axis=1)
    return states, np.broadcast_to(log_prob, (b,))


# -- the clique tree ----------------------------------------------------------------------


def clique_potentials(tree: CliqueTree, structure: Structure, cpts) -> list:
    """ψ_c = Π of the CPTs assigned to clique c, as (..., 1) tables in the clique's layout
    (size 1 on axes no CPT mentions); None for a clique with no CPT."""
    potentials = []
    for c, scope in enumerate(tree.scopes):
        parts = [sorted_cpt(structure, cpts[v], v, tree.position) for v in tree.cpts[c]]
        potentials.append(_product(parts, scope) if parts else None)
    return potentials


class Calibrated(NamedTuple):
    """beliefs[c] : (..., b) p(C_c | e_n) in clique c's layout (size-1 axes are constant
    along that variable); log_evidence : (b,) log p(e_n)."""

    beliefs: list
    log_evidence: np.ndarray


def collect(tree: CliqueTree, potentials, evidence):
    """Upward pass in elimination order (this is variable elimination of every variable):
    φ_c = ψ_c λ_v Π_children m_g and m_c = Σ_v φ_c, rescaled per row.

    Returns (φ per clique, m per clique, log p(e_n) : (b,)).
    """
    phi, messages = [], []
    log_scale = np.zeros(1)
    for c, scope in enumerate(tree.scopes):
        v = scope[0]
        table = expand(evidence[v], (v,), scope)
        if potentials[c] is not None:
            table = table * potentials[c]
        for g in tree.children[c]:
            table = table * expand(messages[g], tree.separator(g), scope)
        message, log_scale = _rescale(table.sum(axis=0), log_scale)
        phi.append(table)
        messages.append(message)
    return phi, messages, log_scale


def calibrate(tree: CliqueTree, potentials, evidence) -> Calibrated:
    """Both passes: beliefs β_c = φ_c δ_c with δ_c = Σ_{C_p \\ S_c} β_p / m_c the message
    from the parent p (division by zero only where β_p is zero: 0 is exact there)."""
    phi, messages, log_evidence = collect(tree, potentials, evidence)
    beliefs = [None] * len(phi)
    from_parent = [None] * len(phi)
    for c in reversed(range(len(phi))):
        scope = tree.scopes[c]
        table = phi[c]
        if from_parent[c] is not None:
            table = table * expand(from_parent[c], tree.separator(c), scope)
        table = _normalize(table)
        beliefs[c] = table
        for g in tree.children[c]:
            separator = tree.separator(g)
            axes = tuple(i for i, u in enumerate(scope) if u not in separator)
            summed = table.sum(axis=axes)
            message = messages[g]
            out = np.zeros(np.broadcast_shapes(summed.shape, message.shape), dtype=table.dtype)
            from_parent[g] = np.divide(summed, message, out=out, where=message > 0)
    return Calibrated(beliefs, log_evidence)


def variable_marginals(tree: CliqueTree, calibrated: Calibrated, n: int) -> list:
    """p(x_v | e_n) : (n, k_v) for every variable v (from the clique it is eliminated in)."""
    out = [None] * len(tree.order)
    for c, belief in enumerate(calibrated.beliefs):
        marginal = _normalize(belief.sum(axis=tuple(range(1, belief.ndim - 1))))
        out[tree.order[c]] = np.broadcast_to(marginal.T, (n, marginal.shape[0]))
    return out


def family_counts(tree: CliqueTree, structure: Structure, calibrated: Calibrated, n: int):
    """Expected counts Σ_n p(x_v, x_pa(v) | e_n) : CPT-shaped (float64), per variable."""
    counts = [None] * len(structure.names)
    for c, belief in enumerate(calibrated.beliefs):
        if not tree.cpts[c]:
            continue
        scope = tree.scopes[c]
        weight = n if batch(belief) == 1 else 1  # a table shared by all n rows
        pooled = belief.sum(axis=-1, dtype=np.float64) * weight
        for v in tree.cpts[c]:
            family = structure.family(v)
            axes = tuple(i for i, u in enumerate(scope) if u not in family)
            # a size-1 (constant) axis is missing the same factor k in the belief's
            # normalizer and in this sum, so the counts still sum to n
            table = pooled.sum(axis=axes)
            inside = [u for u in scope if u in family]
            counts[v] = table.transpose([inside.index(u) for u in family])
    return counts


# -- the clique tree on evidence-restricted tables ----------------------------------------
#
# An observed variable's indicator λ_v zeroes every entry of a clique table but those at
# its observed state, so the dense (*scope, b) tables above spend most of their work on
# zeros (with 20% of the entries missing, a 6-variable clique of 3-state variables has 729
# entries per row, about 4 of them non-zero). Here each clique's rows are grouped by which
# of its variables they observe (at most 2^|C| groups); a group's table is gathered straight
# at the observed states, (b, Π_{u in M} k_u) over its missing variables M, so a row costs
# the size of its own restricted table. Multiplying λ_v into every clique that contains v
# changes nothing (λ_v² = λ_v), which is what makes the restriction exact in every clique.
# Messages are restricted too: row r's message over S_c is a block of Π_{u in S_c missing
# in r} k_u entries (C order over those variables) at start_c[r] of one flat array. Both
# sides of a separator agree on that layout because missingness is per row, not per clique.


def _strides(scope, cards) -> dict:
    """Flat C-order stride of each variable of `scope` in the dense table over it."""
    out, step = {}, 1
    for u in reversed(scope):
        out[u] = step
        step *= cards[u]
    return out


def grid_offsets(over, target, cards) -> np.ndarray:
    """Flat offsets into the dense C-order table over `target` of every joint state of
    `over` (C order over `over`); a variable of `over` outside `target` moves nothing.
    -> (Π_{u in over} k_u,) int."""
    strides = _strides(target, cards)
    off = np.zeros(1, dtype=np.intp)
    for u in over:
        off = (off[:, None] + np.arange(cards[u]) * strides.get(u, 0)).ravel()
    return off


class Group(NamedTuple):
    """Rows of one clique that observe the same variables of it. rows : (b,) chunk rows;
    missing : the clique's unobserved variables (scope order); index : (b, m) flat
    positions of the restricted table in the dense clique table, m = Π_{u in missing} k_u;
    at_separator : (b, m) positions in the clique's restricted message array (the
    eliminated variable moves nothing)."""

    rows: np.ndarray
    missing: tuple
    index: np.ndarray
    at_separator: np.ndarray


class Restriction(NamedTuple):
    """groups[c] : clique c's Groups; starts[c] : (n,) where each row's block of the
    message over S_c begins; lengths[c] : that message array's length."""

    groups: list
    starts: list
    lengths: list


def restrict(tree: CliqueTree, cards, states: np.ndarray) -> Restriction:
    """states : (n, V) int, -1 = missing -> the groups and message layout of every clique."""
    missing = states < 0
    groups, starts, lengths = [], [], []
    for c, scope in enumerate(tree.scopes):
        separator = tree.separator(c)
        block = np.ones(len(states), dtype=np.intp)
        for u in separator:
            block *= np.where(missing[:, u], cards[u], 1)
        starts.append(np.cumsum(block) - block)
        lengths.append(int(block.sum()))
        seen = ~missing[:, list(scope)]  # (n, |C|)
        key = seen @ (1 << np.arange(len(scope)))
        order = np.argsort(key, kind="stable")
        cuts = np.flatnonzero(np.diff(key[order])) + 1
        groups.append([])
        for rows in np.split(order, cuts) if len(states) else []:
            unseen = tuple(u for u, s in zip(scope, seen[rows[0]]) if not s)
            strides = _strides(scope, cards)
            base = np.zeros(len(rows), dtype=np.intp)
            for u, s in zip(scope, seen[rows[0]]):
                if s:
                    base += states[rows, u] * strides[u]
            index = base[:, None] + grid_offsets(unseen, scope, cards)
            kept = tuple(u for u in unseen if u != scope[0])
            at = starts[c][rows][:, None] + grid_offsets(unseen, kept, cards)
            groups[c].append(Group(rows, unseen, index, at))
    return Restriction(groups, starts, lengths)


def restricted_pieces(tree: CliqueTree, cards, states: np.ndarray,
                      budget: int = 2**21) -> list:
    """Row slices of states (n, V) whose restricted clique tables hold about `budget`
    entries together (row r's: Σ_c Π_{u in C_c missing in r} k_u), so memory stays bounded
    however many entries are missing while the per-group overhead is paid rarely."""
    missing = states < 0
    cost = np.zeros(len(states))
    for scope in tree.scopes:
        block = np.ones(len(states))
        for u in scope:
            block *= np.where(missing[:, u], cards[u], 1)
        cost += block
    piece = np.cumsum(cost) // budget
    cuts = np.flatnonzero(np.diff(piece)) + 1
    bounds = [0, *cuts.tolist(), len(states)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _in_child(tree: CliqueTree, cards, restriction, group: Group, g: int, over):
    """(b, Π_{u in over} k_u) positions in child g's restricted message array of a
    group's rows at the joint states of `over` ⊆ group.missing (a variable outside S_g
    moves nothing)."""
    kept = tuple(u for u in group.missing if u in tree.separator(g))
    return restriction.starts[g][group.rows][:, None] + grid_offsets(over, kept, cards)


def restricted_calibrate(tree: CliqueTree, potentials, states: np.ndarray, cards, dtype,
                         *, downward=True):
    """Both passes of the clique tree on evidence-restricted tables (see above).

    potentials : per clique ψ_c from `clique_potentials` (or None); states : (n, V) int,
    -1 = missing. Upward: φ_c = ψ_c Π_children m_g restricted to the row's evidence, m_c =
    Σ_v φ_c rescaled per row. Downward: β_c ∝ φ_c δ_c, δ_g = Σ_{C_c \\ S_g} β_c / m_g.
    Returns (pooled, log p(e_n) : (n,) float64): pooled[c] : (Π_{u in C_c} k_u,) float64 is
    Σ_n β_c,n over the dense clique states (None when downward=False).
    """
    restriction = restrict(tree, cards, states)
    flat = [None if p is None else np.ascontiguousarray(np.broadcast_to(
        p[..., 0], tuple(cards[u] for u in s)), dtype=dtype).ravel()
        for p, s in zip(potentials, tree.scopes)]
    messages, phi, log_scale = _upward(tree, restriction, flat, cards, dtype, len(states))
    if not downward:
        return None, log_scale
    return _downward(tree, restriction, messages, phi, cards, dtype), log_scale


def _upward(tree: CliqueTree, restriction, flat, cards, dtype, n: int):
    """(messages m_c, per-group tables φ_c, log scale per row : (n,)) of the upward pass."""
    messages = [None] * len(tree.scopes)
    phi = [None] * len(tree.scopes)
    log_scale = np.zeros(n)
    for c, scope in enumerate(tree.scopes):
        v = scope[0]
        message = np.empty(restriction.lengths[c], dtype=dtype)  # every entry is written
        phi[c] = []
        for group in restriction.groups[c]:
            b = len(group.rows)
            table = (flat[c][group.index] if flat[c] is not None
                     else np.ones(group.index.shape, dtype=dtype))
            for g in tree.children[c]:
                table = table * messages[g][_in_child(tree, cards, restriction, group, g,
                                                      group.missing)]
            phi[c].append(table)
            # m_c = Σ_v φ_c: v unobserved is the leading axis; observed, φ is the slice
            summed = (table.reshape(b, cards[v], -1).sum(axis=1) if v in group.missing
                      else table)
            peak = summed.max(axis=1)
            with np.errstate(divide="ignore"):
                log_scale[group.rows] += np.log(peak.astype(np.float64))
            # v leads and moves nothing in S_c: the first m / k_v positions are the rest's
            message[group.at_separator[:, :summed.shape[1]]] = (
                summed / np.where(peak > 0, peak, 1)[:, None])
        messages[c] = message
    return messages, phi, log_scale


def _downward(tree: CliqueTree, restriction, messages, phi, cards, dtype) -> list:
    """pooled[c] = Σ_n β_c,n : (Π_{u in C_c} k_u,) from the upward pass's m_c and φ_c."""
    pooled = [None] * len(tree.scopes)
    from_parent = [None] * len(tree.scopes)
    for c in reversed(range(len(tree.scopes))):
        size = int(np.prod([cards[u] for u in tree.scopes[c]]))
        total = np.zeros(size)
        for g in tree.children[c]:
            from_parent[g] = np.empty(restriction.lengths[g], dtype=dtype)
        for group, table in zip(restriction.groups[c], phi[c]):
            b = len(group.rows)
            if from_parent[c] is not None:
                table = table * from_parent[c][group.at_separator]
            norm = table.sum(axis=1)
            belief = table / np.where(norm > 0, norm, 1)[:, None]
            total += np.bincount(group.index.ravel(), weights=belief.ravel(), minlength=size)
            shape = (b,) + tuple(cards[u] for u in group.missing)
            for g in tree.children[c]:
                kept = tuple(u for u in group.missing if u in tree.separator(g))
                at = _in_child(tree, cards, restriction, group, g, kept)
                axes = tuple(1 + i for i, u in enumerate(group.missing) if u not in kept)
                summed = belief.reshape(shape).sum(axis=axes).reshape(b, -1)
                m = messages[g][at]
                out = np.zeros(summed.shape, dtype=dtype)
                from_parent[g][at] = np.divide(summed, m, out=out, where=m > 0)
        pooled[c] = total
        from_parent[c] = phi[c] = None
    return pooled
