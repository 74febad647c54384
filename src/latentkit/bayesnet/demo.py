"""The Bayesian-network family's section of `latentkit demo`: `(out_dir, progress, *,
quick=False) -> latentkit.cli.report.Section`.

The network is the worked example of the EM lecture (A -> C <- B, C -> D, binary, state 1 =
true): the completion of the row (a, ?, ?, not d) into four weighted rows, then EM
recovering the CPTs from sampled rows with 30% of the entries hidden.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED_EDGES = [("A", "C"), ("B", "C"), ("C", "D")]
SEED_CARDS = {"A": 2, "B": 2, "C": 2, "D": 2}
#: θ_a = .3, θ_b = .9, θ_c|a,b = .2, θ_c|a,b̄ = .6, θ_d|c = .8, θ_d|c̄ = .1 (the lecture's);
#: θ_c|ā,b = .1 and θ_c|ā,b̄ = .5 are not legible there and do not affect rows with A = a
SEED_CPTS = {
    "A": np.array([0.7, 0.3]),
    "B": np.array([0.1, 0.9]),
    "C": np.array([[[0.5, 0.5], [0.9, 0.1]], [[0.4, 0.6], [0.8, 0.2]]]),
    "D": np.array([[0.9, 0.1], [0.2, 0.8]]),
}


def seed_network(**kwargs):
    from .network import DiscreteBayesNet

    return DiscreteBayesNet(edges=SEED_EDGES, cardinalities=SEED_CARDS, cpts=SEED_CPTS,
                            **kwargs)


def completion_table(net) -> list[dict]:
    """The four completions of (a, ?, ?, not d) with their weights p(b, c | a, not d)."""
    weights = net.posterior_joint(["B", "C"], evidence={"A": 1, "D": 0})
    rows = []
    for b, c in ((1, 1), (1, 0), (0, 1), (0, 0)):
        completion = f"(a, {'b' if b else 'not b'}, {'c' if c else 'not c'}, not d)"
        rows.append({"completed row": completion,
                     "weight p(B, C | a, not d)": f"{weights[b, c]:.4f}"})
    return rows


class CPTError:
    """EM callback: the largest and the mean absolute error of the CPT entries against the
    truth after each M-step."""

    def __init__(self, truth: dict, names):
        self.truth = np.concatenate([np.ravel(truth[name]) for name in names])
        self.errors, self.mean_errors = [], []

    def __call__(self, info) -> None:
        error = np.abs(self.truth - np.concatenate([t.ravel() for t in info.params.cpts]))
        self.errors.append(float(error.max()))
        self.mean_errors.append(float(error.mean()))


def seed_bayesnet(out_dir, progress, *, quick: bool = False):
    """Bayesian network: the A-B-C-D example, completion weights and EM with missing data."""
    from latentkit import plot
    from latentkit.cli.report import Section

    from .figures import plot_cpt_error
    from .network import DiscreteBayesNet

    folder = Path(out_dir) / "bayesnet"
    truth = seed_network()
    n_rows = 1000 if quick else 5000
    X, _ = truth.sample(n_rows, random_state=0)
    hidden = np.random.default_rng(1).random(X.shape) < 0.3
    X[hidden] = np.nan
    tracker = CPTError(SEED_CPTS, truth.variables)
    model = DiscreteBayesNet(edges=SEED_EDGES, cardinalities=SEED_CARDS, init_params="random",
                             tol=1e-7, max_iter=40 if quick else 200, random_state=0,
                             callbacks=[tracker], verbose=progress.verbose).fit(X)
    ax = plot_cpt_error(tracker.errors, tracker.mean_errors,
                        title=f"CPT error, {n_rows} rows, 30% of entries hidden")
    figures = [
        (plot.save_figure(ax, folder / "cpt_error.png"),
         "largest and mean absolute error of the CPT entries after each EM iteration (the "
         "largest is p(C | not a, not b), seen in about 35 of the rows)"),
        (plot.save_figure(plot.plot_history(model.history_, title="EM log-likelihood"),
                          folder / "history.png"),
         "mean log-likelihood of the observed entries (+ log prior) per EM iteration"),
    ]
    entries = []
    for name in truth.variables:
        true_table, fitted = SEED_CPTS[name], model.cpts_[name]
        for index in np.ndindex(true_table.shape[:-1]):
            given = ", ".join(f"{p}={s}" for (p, _), s in
                              zip([e for e in SEED_EDGES if e[1] == name], index))
            entries.append({"entry": f"p({name}=1 | {given or '-'})",
                            "truth": float(true_table[index][1]),
                            "EM estimate": round(float(fitted[index][1]), 4)})
    summary = [{"rows": n_rows, "entries hidden": int(hidden.sum()),
                "iterations": int(model.n_iter_), "converged": bool(model.converged_),
                "final largest CPT error": round(tracker.errors[-1], 4),
                "final mean CPT error": round(tracker.mean_errors[-1], 4),
                "mean log-likelihood (EM fit)": float(model.score(X)),
                "mean log-likelihood (true CPTs)": float(truth.score(X))}]
    text = ("The network A -> C <- B, C -> D of the EM lecture. For the row (a, ?, ?, not d) "
            "the E-step completes the missing B and C into four weighted rows, the weights "
            "being p(B, C | a, not d) from exact inference (variable elimination). Then "
            f"`DiscreteBayesNet` learns the CPTs by EM from {n_rows} rows sampled from the "
            "network with 30% of the entries hidden at random, starting from random CPTs; a "
            "callback records the largest CPT error after each iteration.")
    return Section("Bayesian network: completing missing values, EM for the CPTs", text,
                   figures, [("completions of (a, ?, ?, not d)", completion_table(truth)),
                             ("EM fit", summary), ("CPT entries p(X = 1 | parents)", entries)])
