"""EM learning of DiscreteBayesNet CPTs: monotonicity, the complete-data M-step, recovery of
a planted network from missing data and of a hidden variable, agreement with pgmpy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from helpers import assert_monotone, assert_recovers
from latentkit import ConvergenceWarning
from latentkit.bayesnet import DiscreteBayesNet
from latentkit.bayesnet.synthetic import make_random_network

HIDDEN_EDGES = [("H", "A"), ("H", "B"), ("H", "C"), ("A", "C")]
HIDDEN_CARDS = {"H": 2, "A": 2, "B": 3, "C": 2}
HIDDEN_CPTS = {"H": [0.35, 0.65], "A": [[0.8, 0.2], [0.3, 0.7]],
               "B": [[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]],
               "C": [[[0.9, 0.1], [0.5, 0.5]], [[0.3, 0.7], [0.2, 0.8]]]}


def hidden_network(**kwargs):
    return DiscreteBayesNet(edges=HIDDEN_EDGES, cardinalities=HIDDEN_CARDS, hidden=["H"],
                            **kwargs)


def structure_of(net, **kwargs):
    return DiscreteBayesNet(edges=net.edges, cardinalities=net.cardinalities,
                            hidden=net.hidden, **kwargs)


def random_cpts(net, seed):
    structure = net._compiled()[0]
    rng = np.random.default_rng(seed)
    return {name: rng.dirichlet(np.ones(structure.cards[v]),
                                size=structure.cpt_shape(v)[:-1])
            for v, name in enumerate(structure.names)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_em_is_monotone_with_missing_entries_and_a_hidden_variable(dtype):
    truth = make_random_network(10, cardinality=(2, 4), max_parents=3, random_state=0,
                                hidden=["X4"])
    X, _ = truth.sample(3000, random_state=1)
    X[np.random.default_rng(2).random(X.shape) < 0.25] = np.nan
    model = structure_of(truth, init_params="random", random_state=3, tol=0.0, max_iter=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the engine's guard, too
        warnings.filterwarnings("ignore", message="EM did not converge")
        model.fit(X.astype(dtype))
    assert model.cpt_values_.dtype == dtype
    assert len(model.history_) == 40
    assert_monotone(model.history_, dtype)
    assert model.history_[-1] > model.history_[0] + 0.01  # it did climb


def test_complete_data_one_m_step_equals_maximum_likelihood_counts():
    truth = make_random_network(7, cardinality=(2, 3), max_parents=2, random_state=4)
    X, _ = truth.sample(2000, random_state=5)
    codes = X.astype(int)
    structure = truth._compiled()[0]
    for alpha in (0.0, 0.5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = structure_of(truth, alpha=alpha, max_iter=1, init_params="random",
                                 random_state=0).fit(X)
        for v, name in enumerate(structure.names):
            counts = np.zeros(structure.cpt_shape(v))
            np.add.at(counts, tuple(codes[:, u] for u in structure.family(v)), 1.0)
            smoothed = counts + alpha
            total = smoothed.sum(axis=-1, keepdims=True)
            k = structure.cards[v]
            ml = np.divide(smoothed, total, out=np.full_like(smoothed, 1.0 / k),
                           where=total > 0)
            np.testing.assert_allclose(model.cpts_[name], ml, atol=1e-12)


def test_planted_network_recovered_from_missing_data():
    # 20,000 rows, 30% of entries hidden at random: every CPT entry within 0.05 of the
    # truth (sampling error of the rarest parent configurations is about 0.02)
    for seed in (0, 1):
        truth = make_random_network(6, cardinality=(2, 3), max_parents=2, concentration=5.0,
                                    random_state=seed)
        X, _ = truth.sample(20_000, random_state=seed + 10)
        X[np.random.default_rng(seed).random(X.shape) < 0.3] = np.nan
        model = structure_of(truth, random_state=0, tol=1e-7, max_iter=500).fit(X)
        assert model.converged_
        assert_monotone(model.history_)
        for name in truth.variables:
            np.testing.assert_allclose(model.cpts_[name], np.asarray(truth.cpts[name]),
                                       atol=0.05, err_msg=name)


def test_hidden_variable_recovered_up_to_label_swap():
    # a hidden 3-state root with 5 three-state children, one of them also a parent of
    # another: identifiable; 10,000 rows, 20% of the entries missing; every entry of the
    # matched CPTs within 0.08 of the truth (E's 9 rows see ~1/9 of the data each: their
    # sampling error is about 0.03, the class entries differ by 0.7)
    rng = np.random.default_rng(0)
    children = ["A", "B", "C", "D", "E"]
    edges = [("H", c) for c in children] + [("A", "E")]
    cards = {"H": 3, **dict.fromkeys(children, 3)}
    cpts = {"H": [0.25, 0.35, 0.4]}
    for c in children:
        cpts[c] = 0.1 + 0.7 * np.eye(3)[rng.permutation(3)]  # 0.8 on one state per class
    cpts["E"] = np.stack([cpts["E"]] * 3, axis=1) * 0.5 + 0.5 * rng.dirichlet(
        np.full(3, 5.0), size=(3, 3))
    truth = DiscreteBayesNet(edges=edges, cardinalities=cards, cpts=cpts, hidden=["H"])
    X, _ = truth.sample(10_000, random_state=1)
    X[rng.random(X.shape) < 0.2] = np.nan
    model = DiscreteBayesNet(edges=edges, cardinalities=cards, hidden=["H"],
                             init_params="random", n_init=3, random_state=2, tol=1e-8,
                             max_iter=1000).fit(X)
    assert_monotone(model.history_)
    assert model.score(X) >= truth.score(X) - 1e-3  # a maximum, at least as good as truth

    def per_class(tables):  # one row per class: p(h), then each child's CPT given h
        rows = [np.asarray(tables["H"])[:, None]]  # (E's CPT is (H, A, E): h first too)
        return np.column_stack(rows + [np.asarray(tables[c]).reshape(3, -1)
                                       for c in children])

    assert_recovers(per_class(cpts), per_class(model.cpts_), atol=0.08)


def test_agrees_with_pgmpy_expectation_maximization():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pgmpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pgmpy's deprecation notices
        from pgmpy.estimators import ExpectationMaximization
        from pgmpy.factors.discrete import TabularCPD
        from pgmpy.models import DiscreteBayesianNetwork

    X, _ = hidden_network(cpts=HIDDEN_CPTS).sample(400, random_state=0)
    init = random_cpts(hidden_network(), seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = hidden_network(cpts=init, alpha=0.0, tol=0.0, max_iter=10).fit(X)
    structure = ours._compiled()[0]

    def tabular(name):
        parents = [structure.names[p] for p in structure.parents[structure.index[name]]]
        k = HIDDEN_CARDS[name]
        return TabularCPD(name, k, init[name].reshape(-1, k).T, evidence=parents or None,
                          evidence_card=[HIDDEN_CARDS[p] for p in parents] or None)

    frame = pd.DataFrame(X.astype(int), columns=["A", "B", "C"])
    model = DiscreteBayesianNetwork(HIDDEN_EDGES, latents={"H"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgmpy's deprecation notice
        cpds = ExpectationMaximization(model, frame).get_parameters(
            latent_card={"H": 2}, max_iter=10, init_cpds={n: tabular(n) for n in HIDDEN_CARDS},
            show_progress=False)
    assert {cpd.variable for cpd in cpds} == set(HIDDEN_CARDS)
    for cpd in cpds:
        name, evidence = cpd.variable, cpd.variables[1:]
        parents = [structure.names[p] for p in structure.parents[structure.index[name]]]
        ours_aligned = ours.cpts_[name].transpose([parents.index(e) for e in evidence]
                                                  + [len(parents)])
        k = HIDDEN_CARDS[name]
        np.testing.assert_allclose(cpd.get_values(), ours_aligned.reshape(-1, k).T,
                                   atol=1e-9, err_msg=name)


def test_streamed_chunks_give_the_in_memory_fit():
    truth = make_random_network(6, random_state=8)
    X, _ = truth.sample(1500, random_state=9)
    X[np.random.default_rng(10).random(X.shape) < 0.2] = np.nan
    kwargs = dict(random_state=0, tol=0.0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = structure_of(truth, **kwargs).fit(X)
        streamed = structure_of(truth, **kwargs).fit([X[:700], X[700:]])
    np.testing.assert_allclose(streamed.cpt_values_, memory.cpt_values_, rtol=1e-10)
    np.testing.assert_allclose(streamed.history_, memory.history_, rtol=1e-12)


def test_callbacks_see_the_cpts_each_iteration():
    truth = hidden_network(cpts=HIDDEN_CPTS)
    X, _ = truth.sample(500, random_state=3)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = hidden_network(random_state=0, max_iter=5, tol=0.0, callbacks=[
            lambda info: seen.append(info.params.cpts[1].copy())]).fit(X)
    assert len(seen) == 5
    np.testing.assert_array_equal(seen[-1], model.cpts_["A"])
