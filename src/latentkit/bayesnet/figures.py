"""Figures and tables of discrete Bayesian networks: the CPT error per EM iteration (the
demo), the network's graph, and the figures and CPT tables `latentkit fit bayesnet` /
`report` show (taking the `FigureJob` of `latentkit.registry`). Agg only."""

from __future__ import annotations

import numpy as np


def plot_cpt_error(largest, mean, ax=None, *, title=None):
    """The largest and the mean absolute CPT error (n_iter,) each per EM iteration, on a
    log scale."""
    from latentkit.plot._figure import new_axes

    ax = new_axes(ax)
    steps = np.arange(1, len(largest) + 1)
    ax.plot(steps, largest, marker="o", markersize=3, label="largest")
    ax.plot(steps, mean, marker="o", markersize=3, label="mean")
    ax.legend()
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("|CPT entry - truth|")
    ax.set_yscale("log")
    ax.set_title(title or "CPT error per EM iteration")
    return ax


# -- the network's graph ------------------------------------------------------------------


def layered_layout(parents) -> np.ndarray:
    """(V, 2) positions of a DAG's nodes: the y of a node is minus its depth (the longest
    path from a root), nodes of one depth spread evenly along x, ordered by the mean x of
    their parents (a barycentre pass that keeps edges short).

    parents : per node, the indices of its parents (an acyclic graph).
    """
    depth = np.zeros(len(parents), dtype=np.int64)
    waiting = [len(set(p)) for p in parents]
    children = [[] for _ in parents]
    for v, parent_list in enumerate(parents):
        for p in set(parent_list):
            children[p].append(v)
    ready = [v for v, count in enumerate(waiting) if count == 0]
    while ready:  # Kahn's order: a node's depth is final once all its parents are placed
        p = ready.pop()
        for v in children[p]:
            depth[v] = max(depth[v], depth[p] + 1)
            waiting[v] -= 1
            if waiting[v] == 0:
                ready.append(v)
    positions = np.zeros((len(parents), 2))
    for level in range(int(depth.max(initial=-1)) + 1):
        nodes = [v for v in range(len(parents)) if depth[v] == level]
        nodes.sort(key=lambda v: (np.mean([positions[p, 0] for p in parents[v]])
                                  if parents[v] else 0.0, v))
        xs = np.arange(len(nodes)) - (len(nodes) - 1) / 2
        for v, x in zip(nodes, xs):
            positions[v] = (x, -level)
    return positions


def plot_network(names, parents, ax=None, *, hidden=(), title=None):
    """The network's DAG: one labelled node per variable (hidden ones shaded), an arrow per
    edge parent -> child, drawn in layers from the roots down.

    names : (V,) variable names; parents : per variable, its parents' indices; hidden :
    indices of hidden variables.
    """
    from matplotlib.patches import FancyArrowPatch

    from latentkit.plot._figure import new_axes

    positions = layered_layout(parents)
    width = np.ptp(positions[:, 0]) + 1 if len(names) else 1
    height = np.ptp(positions[:, 1]) + 1 if len(names) else 1
    ax = new_axes(ax, figsize=(min(12.0, 3.0 + 1.5 * width), min(10.0, 2.0 + 1.2 * height)))
    for child, parent_list in enumerate(parents):
        for parent in parent_list:
            ax.add_patch(FancyArrowPatch(positions[parent], positions[child],
                                         arrowstyle="-|>", mutation_scale=14, color="0.3",
                                         shrinkA=16, shrinkB=16, linewidth=1.2))
    hidden = set(hidden)
    for v, (name, (x, y)) in enumerate(zip(names, positions)):
        ax.text(x, y, str(name), ha="center", va="center", fontsize="medium", zorder=3,
                bbox={"boxstyle": "round,pad=0.4", "linewidth": 1.2, "edgecolor": "0.2",
                      "facecolor": "0.8" if v in hidden else "#dbe9f6"})
    ax.set_xlim(positions[:, 0].min() - 0.8, positions[:, 0].max() + 0.8)
    ax.set_ylim(positions[:, 1].min() - 0.6, positions[:, 1].max() + 0.6)
    ax.set_axis_off()
    ax.set_title(title or "network structure")
    return ax


def graph_figure(job) -> list:
    """The fitted network's graph (hidden variables shaded)."""
    from latentkit import plot

    structure = job.model._compiled()[0]
    ax = plot_network(structure.names, structure.parents, hidden=structure.hidden,
                      title=f"network: {len(structure.names)} variables, "
                            f"{len(structure.edges())} edges")
    note = "; hidden variables shaded grey" if structure.hidden else ""
    return [(plot.save_figure(ax, job.out_dir / "network.png"),
             f"the network's structure: an arrow from each parent to its child{note}")]


def network_figures(job) -> list:
    """DiscreteBayesNet: the network's graph and the EM log-likelihood per iteration."""
    from latentkit.plot.common import history_figure

    return graph_figure(job) + history_figure(job)


# -- the learned CPTs as tables -----------------------------------------------------------

#: the most parent configurations (rows) a CPT table shows
MAX_CPT_ROWS = 32


def cpt_rows(cpt, parent_names, parent_states, states, max_rows: int = MAX_CPT_ROWS):
    """A CPT as rows: one per parent configuration (row-major over the parents, at most
    `max_rows`), {parent name: its state name, ..., state name: p(state | parents)}.

    cpt : (k_parent_1, ..., k_parent_q, k) p(X = x | parents = u); parent_names : (q,);
    parent_states : per parent, its state names; states : (k,) the variable's state names.
    A parent column named like one of the states is called "NAME (parent)".
    """
    cpt = np.asarray(cpt, dtype=np.float64)
    labels = [f"{name} (parent)" if name in states else name for name in parent_names]
    table = cpt.reshape(-1, cpt.shape[-1])
    rows = []
    for flat, probs in enumerate(table[:max_rows]):
        configuration = np.unravel_index(flat, cpt.shape[:-1]) if parent_names else ()
        row = {label: parent_states[i][s] for i, (label, s)
               in enumerate(zip(labels, configuration))}
        row.update({state: float(p) for state, p in zip(states, probs)})
        rows.append(row)
    return rows


def cpt_tables(job) -> list:
    """DiscreteBayesNet: the learned CPT of each variable as a table (caption
    "p(X | A, B)"): rows are the parents' configurations named by their states, columns
    the variable's states; at most MAX_CPT_ROWS rows each (the caption says when cut)."""
    structure = job.model._compiled()[0]
    tables = []
    for v, (name, cpt) in enumerate(job.model.cpts_.items()):
        parents = structure.parents[v]
        parent_names = [structure.names[p] for p in parents]
        rows = cpt_rows(cpt, parent_names, [structure.states[p] for p in parents],
                        structure.states[v])
        given = f" | {', '.join(parent_names)}" if parent_names else ""
        caption = f"p({name}{given})"
        n_rows = int(np.prod(np.shape(cpt)[:-1], dtype=np.int64))
        if n_rows > len(rows):
            caption += f": the first {len(rows)} of {n_rows} parent configurations"
        tables.append((caption + (" (hidden)" if v in structure.hidden else ""), rows))
    return tables
