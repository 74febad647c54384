"""DiscreteBayesNet: structure and CPT validation, exact inference against brute-force
enumeration of the joint, the seed's worked example, data handling, sampling, persistence."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import latentkit
from latentkit.bayesnet import DiscreteBayesNet
from latentkit.bayesnet.synthetic import make_random_network

# The seed's network (A -> C <- B, C -> D), state 1 = true. Its CPTs: θ_a = .3, θ_b = .9,
# θ_c|a,b = .2, θ_c|a,b̄ = .6, θ_d|c = .8, θ_d|c̄ = .1. (θ_c|ā,· are not legible in the seed
# and do not enter the completion of a row with A = a; .5 and .1 stand in for them.)
SEED_EDGES = [("A", "C"), ("B", "C"), ("C", "D")]
SEED_CARDS = {"A": 2, "B": 2, "C": 2, "D": 2}
SEED_CPTS = {
    "A": [0.7, 0.3],
    "B": [0.1, 0.9],
    "C": [[[0.5, 0.5], [0.9, 0.1]],    # A = 0: B = 0, B = 1
          [[0.4, 0.6], [0.8, 0.2]]],   # A = 1: B = 0, B = 1
    "D": [[0.9, 0.1], [0.2, 0.8]],
}


def seed_network(**kwargs) -> DiscreteBayesNet:
    return DiscreteBayesNet(edges=SEED_EDGES, cardinalities=SEED_CARDS, cpts=SEED_CPTS,
                            **kwargs)


# -- brute force: enumerate every joint state ---------------------------------------------


def brute_joint(net: DiscreteBayesNet):
    """(states (S, V), p (S,)) of the full joint by the chain rule, state by state."""
    structure = net._compiled()[0]
    cpts = net._cpts()
    states = np.array(list(itertools.product(*(range(k) for k in structure.cards))))
    p = np.ones(len(states))
    for v, cpt in enumerate(cpts):
        p *= cpt[tuple(states[:, u] for u in structure.family(v))]
    return states, p


def consistent(states, evidence: dict, names) -> np.ndarray:
    keep = np.ones(len(states), dtype=bool)
    for name, value in evidence.items():
        keep &= states[:, names.index(name)] == value
    return keep


def brute_posterior(states, p, evidence, query, names):
    """p(query | evidence) over the query's states, by summing the joint."""
    keep = consistent(states, evidence, names)
    cols = [names.index(q) for q in query]
    shape = tuple(states[:, c].max() + 1 for c in cols)
    table = np.zeros(shape)
    np.add.at(table, tuple(states[keep][:, c] for c in cols), p[keep])
    return table / table.sum(), math.log(p[keep].sum())


# -- the seed's worked example ------------------------------------------------------------


def test_seed_completion_weights_to_the_printed_digits():
    net = seed_network()
    weights = net.posterior_joint(["B", "C"], evidence={"A": 1, "D": 0})
    assert weights.shape == (2, 2)  # (B, C)
    printed = {(1, 1): ".0492", (1, 0): ".8852", (0, 1): ".0164", (0, 0): ".0492"}
    for (b, c), text in printed.items():
        assert f"{weights[b, c]:.4f}".lstrip("0") == text


def test_seed_log_evidence_closed_form():
    # p(a, not d) = .3 [.9 (.2 .2 + .8 .9) + .1 (.6 .2 + .4 .9)] = .2196
    net = seed_network()
    assert net.log_evidence({"A": 1, "D": 0}) == pytest.approx(math.log(0.2196), abs=1e-12)
    row = np.array([[1, np.nan, np.nan, 0]])
    assert net.score_samples(row)[0] == pytest.approx(math.log(0.2196), abs=1e-12)


def test_seed_state_names_and_dataframe():
    pd = pytest.importorskip("pandas")
    names = {v: ["false", "true"] for v in SEED_CARDS}
    net = seed_network(state_names=names)
    weights = net.posterior_joint(["B", "C"], evidence={"A": "true", "D": "false"})
    assert weights[1, 0] == pytest.approx(0.1944 / 0.2196)
    frame = pd.DataFrame({"D": ["false", "true"], "A": pd.Categorical(["true", None]),
                          "B": [None, "false"], "C": [None, None]})
    scores = net.score_samples(frame)
    assert scores[0] == pytest.approx(math.log(0.2196))
    states, p = brute_joint(net)
    assert scores[1] == pytest.approx(math.log(p[(states[:, 1] == 0) & (states[:, 3] == 1)]
                                               .sum()))


# -- inference against brute force --------------------------------------------------------


@pytest.mark.parametrize("heuristic", ["min_fill", "min_weight"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_variable_elimination_equals_brute_force(seed, heuristic):
    rng = np.random.default_rng(seed)
    net = make_random_network(12, cardinality=2, max_parents=3, random_state=seed,
                              elimination=heuristic)
    names = list(net.variables)
    states, p = brute_joint(net)
    assert p.sum() == pytest.approx(1.0)
    for _ in range(4):
        observed = rng.choice(names, size=rng.integers(0, 5), replace=False)
        evidence = {name: int(rng.integers(2)) for name in observed}
        free = [n for n in names if n not in evidence]
        query = list(rng.choice(free, size=2, replace=False))
        expected, log_ev = brute_posterior(states, p, evidence, query, names)
        np.testing.assert_allclose(net.posterior_joint(query, evidence), expected, atol=1e-12)
        marginal = brute_posterior(states, p, evidence, query[:1], names)[0]
        np.testing.assert_allclose(net.posterior_marginal(query[0], evidence), marginal,
                                   atol=1e-12)
        assert net.log_evidence(evidence) == pytest.approx(log_ev, abs=1e-10)
        # MPE: argmax of the joint over the consistent states
        keep = consistent(states, evidence, names)
        best = np.argmax(np.where(keep, p, -1))
        mpe = net.map_assignment(evidence)
        assert [mpe.assignment[n] for n in names] == states[best].tolist()
        assert mpe.log_prob == pytest.approx(math.log(p[best]), abs=1e-10)
        # marginal MAP over the query: argmax of the summed joint
        table = expected * math.exp(log_ev)
        q_best = np.unravel_index(np.argmax(table), table.shape)
        result = net.map_assignment(evidence, variables=query)
        assert [result.assignment[q] for q in query] == [int(i) for i in q_best]
        assert result.log_prob == pytest.approx(math.log(table[q_best]), abs=1e-10)


def test_batched_evidence_equals_row_by_row_brute_force():
    rng = np.random.default_rng(5)
    net = make_random_network(9, cardinality=(2, 3), max_parents=3, random_state=5)
    names = list(net.variables)
    states, p = brute_joint(net)
    X, _ = net.sample(40, random_state=6)
    X[rng.random(X.shape) < 0.5] = np.nan
    query = ["X3", "X7"]
    joint = net.posterior_joint(query, evidence=X)
    log_ev = net.log_evidence(X)
    mpe = net.map_assignment(X)
    scores = net.score_samples(X)
    marginals = {n: net.predict_proba(X, n) for n in names}
    imputed = net.impute(X)
    for i, row in enumerate(X):
        evidence = {n: int(x) for n, x in zip(names, row) if not np.isnan(x)}
        expected, ev = brute_posterior(states, p, evidence, query, names)
        np.testing.assert_allclose(joint[i], expected, atol=1e-12)
        assert log_ev[i] == pytest.approx(ev, abs=1e-10)
        assert scores[i] == pytest.approx(ev, abs=1e-10)
        keep = consistent(states, evidence, names)
        assert [mpe.assignment[n][i] for n in names] == states[
            np.argmax(np.where(keep, p, -1))].tolist()
        for j, n in enumerate(names):
            m = brute_posterior(states, p, evidence, [n], names)[0]
            np.testing.assert_allclose(marginals[n][i], m, atol=1e-12)
            if np.isnan(row[j]):
                assert imputed[i, j] == np.argmax(m)


def test_expected_family_counts_equal_brute_force():
    from latentkit.bayesnet._learning import BNParams, e_step

    rng = np.random.default_rng(3)
    net = make_random_network(8, cardinality=(2, 3), max_parents=2, random_state=3,
                              hidden=["X2"])
    structure, tree = net._compiled()
    names = list(net.variables)
    states, p = brute_joint(net)
    X, _ = net.sample(25, random_state=4)
    X[rng.random(X.shape) < 0.3] = np.nan
    stats, total = e_step(structure, tree, BNParams(net._cpts()), X)
    observed = [n for n in names if n != "X2"]
    expected = [np.zeros(structure.cpt_shape(v)) for v in range(len(names))]
    expected_ll = 0.0
    for row in X:
        keep = consistent(states, {n: int(x) for n, x in zip(observed, row)
                                   if not np.isnan(x)}, names)
        weights = p * keep / (p * keep).sum()
        expected_ll += math.log((p * keep).sum())
        for v in range(len(names)):
            np.add.at(expected[v], tuple(states[:, u] for u in structure.family(v)), weights)
    np.testing.assert_allclose(stats.counts, np.concatenate([e.ravel() for e in expected]),
                               atol=1e-10)
    assert total == pytest.approx(expected_ll, abs=1e-9)


@pytest.mark.parametrize("budget", [2**21, 500])
def test_restricted_tables_equal_dense_indicator_tables(budget):
    """The E-step's evidence-restricted clique tree (groups of rows gathered at their
    observed states, restricted messages, split into pieces by `budget`) against the dense
    indicator-factor clique tree, on a 20-node network with hidden variables, rows with
    every entry missing and rows with none missing."""
    from latentkit.bayesnet import _inference as inference
    from latentkit.bayesnet._learning import (
        BNParams,
        e_step,
        flatten,
        pooled_family_counts,
        states_of,
    )

    net = make_random_network(20, cardinality=(2, 4), max_parents=3, random_state=0,
                              hidden=["X4", "X11"])
    structure, tree = net._compiled()
    X, _ = net.sample(300, random_state=5)
    X[np.random.default_rng(6).random(X.shape) < 0.25] = np.nan
    X[:3] = np.nan
    X[3:6] = net.sample(3, random_state=7)[0]
    cpts = net._cpts()
    evidence = inference.indicator_evidence(states_of(X, structure), structure.cards,
                                            np.float64)
    dense = inference.calibrate(tree, inference.clique_potentials(tree, structure, cpts),
                                evidence)
    expected = flatten(inference.family_counts(tree, structure, dense, len(X)))

    states = states_of(X, structure)
    pieces = inference.restricted_pieces(tree, structure.cards, states, budget)
    assert (len(pieces) == 1) if budget > 2**20 else (len(pieces) > 5)
    assert sum(s.stop - s.start for s in pieces) == len(X)
    potentials = inference.clique_potentials(tree, structure, cpts)
    pooled = [0.0] * len(tree.scopes)
    log_evidence = []
    for rows in pieces:
        part, ll = inference.restricted_calibrate(tree, potentials, states[rows],
                                                  structure.cards, np.float64)
        pooled = [a + b for a, b in zip(pooled, part)]
        log_evidence.append(ll)
    counts = flatten(pooled_family_counts(tree, structure, pooled))
    np.testing.assert_allclose(counts, expected, atol=1e-10)
    np.testing.assert_allclose(np.concatenate(log_evidence), dense.log_evidence, atol=1e-10)
    stats, total = e_step(structure, tree, BNParams(cpts), X)
    np.testing.assert_allclose(stats.counts, expected, atol=1e-10)
    assert total == pytest.approx(float(dense.log_evidence.sum()), abs=1e-8)


def test_float32_inference_agrees_with_float64():
    net = make_random_network(10, random_state=7)
    X, _ = net.sample(200, random_state=8)
    X[np.random.default_rng(9).random(X.shape) < 0.3] = np.nan
    s64 = net.score_samples(X)
    s32 = net.score_samples(X.astype(np.float32))
    assert s32.dtype == np.float32
    np.testing.assert_allclose(s32, s64, rtol=1e-5)


# -- sampling, posterior, predict, bic, persistence ---------------------------------------


def test_ancestral_sampling_matches_the_joint():
    # Monte Carlo: 200,000 draws; each joint frequency within 4 standard errors
    net = seed_network()
    states, p = brute_joint(net)
    X, Z = net.sample(200_000, random_state=0)
    assert X.shape == (200_000, 4) and Z.shape == (200_000, 0)
    codes = np.ravel_multi_index(tuple(X.astype(int).T), (2, 2, 2, 2))
    freq = np.bincount(codes, minlength=16) / len(X)
    order = np.ravel_multi_index(tuple(states.T), (2, 2, 2, 2))
    se = np.sqrt(p * (1 - p) / len(X))
    assert np.all(np.abs(freq[order] - p) <= 4 * se + 1e-12)


def test_hidden_variable_posterior_predict_and_columns():
    net = DiscreteBayesNet(edges=[("Z", "A"), ("Z", "B")], cardinalities={"Z": 2, "A": 2,
                           "B": 3}, cpts={"Z": [0.4, 0.6], "A": [[0.9, 0.1], [0.2, 0.8]],
                                          "B": [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]},
                           hidden=["Z"])
    X = np.array([[0, 0], [1, 2], [np.nan, 1]])
    post = net.posterior(X)
    joint = np.array([0.4 * 0.9 * 0.7, 0.6 * 0.2 * 0.1])
    np.testing.assert_allclose(post.probs[0], joint / joint.sum())
    np.testing.assert_allclose(post.probs[2], [0.4 * 0.2 / 0.26, 0.6 * 0.3 / 0.26])
    assert net.predict(X).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="3 columns"):
        net.score_samples(np.zeros((2, 3)))


def test_bic_and_parameter_count():
    net = seed_network()
    X, _ = net.sample(300, random_state=1)
    assert net.n_parameters_ == 1 + 1 + 4 + 2
    expected = -2 * net.score_samples(X).sum() + 8 * math.log(300)
    assert net.bic(X) == pytest.approx(expected)


@pytest.mark.filterwarnings("ignore::latentkit.ConvergenceWarning")
def test_save_load_round_trip(tmp_path):
    net = seed_network(state_names={v: ["no", "yes"] for v in SEED_CARDS})
    path = tmp_path / "seed.npz"
    net.save(path)  # a network given by its CPTs saves without fitting
    loaded = latentkit.load(path)
    for name in SEED_CARDS:
        np.testing.assert_array_equal(loaded.cpts_[name], np.asarray(SEED_CPTS[name]))
    assert loaded.edges and [tuple(e) for e in loaded.edges] == SEED_EDGES
    X, _ = net.sample(100, random_state=2)
    X[::3, 1] = np.nan
    fitted = seed_network(max_iter=3, tol=0.0).fit(X)
    fitted.save(tmp_path / "fitted.npz")
    again = latentkit.load(tmp_path / "fitted.npz")
    np.testing.assert_array_equal(again.score_samples(X), fitted.score_samples(X))
    assert again.n_iter_ == 3


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"edges": [("A", "B"), ("B", "C"), ("C", "A")]}, "cycle: A -> B -> C -> A"),
    ({"edges": [("A", "Q")]}, "'Q', which has no entry in cardinalities"),
    ({"edges": [("A", "A")]}, "self-loop"),
    ({"edges": [("A", "B"), ("A", "B")]}, "listed twice"),
    ({"cardinalities": {"A": 0}}, "integer >= 1"),
    ({"cpts": {"B": [[0.5, 0.5]]}}, r"shape \(2, 2\), axes \(A, B\)"),
    ({"cpts": {"B": [[0.5, 0.6], [0.5, 0.5]]}}, r"row \(A=0\) sums to 1.1"),
    ({"cpts": {"A": [-0.5, 1.5]}}, "finite and >= 0"),
    ({"cpts": {"Q": [1.0]}}, "'Q', which is not a variable"),
    ({"hidden": ["Q"]}, "hidden variable 'Q'"),
    ({"state_names": {"A": ["x"]}}, "must list 2 distinct names"),
])
def test_invalid_networks_raise_clear_errors(kwargs, match):
    args = {"edges": [("A", "B")], "cardinalities": {"A": 2, "B": 2, "C": 2},
            "cpts": {"A": [0.5, 0.5], "B": [[0.5, 0.5], [0.1, 0.9]], "C": [0.5, 0.5]}}
    args.update(kwargs)
    net = DiscreteBayesNet(**args)
    with pytest.raises(ValueError, match=match):
        net.log_evidence()


def test_invalid_data_and_evidence_raise_clear_errors():
    net = seed_network()
    with pytest.raises(ValueError, match=r"X\[1, 2\] = 2.0 is not a valid category code"):
        net.score_samples(np.array([[0, 1, 1, 0], [0, 1, 2, 0]]))
    with pytest.raises(ValueError, match="inf"):
        net.score_samples(np.array([[0, 1, np.inf, 0]]))
    with pytest.raises(ValueError, match="'E', which is not a variable"):
        net.posterior_marginal("A", evidence={"E": 1})
    with pytest.raises(ValueError, match="not a state of 'A'"):
        net.posterior_marginal("B", evidence={"A": 2})
    with pytest.raises(ValueError, match="no CPT for"):
        DiscreteBayesNet(edges=SEED_EDGES, cardinalities=SEED_CARDS).log_evidence()
    with pytest.raises(ValueError, match="alpha"):
        seed_network(alpha=-1.0).fit(np.zeros((3, 4)))


def test_missing_value_markers_are_equivalent():
    net = seed_network()
    nan_rows = np.array([[1, np.nan, 0, np.nan]])
    minus_one = np.array([[1, -1, 0, -1]])
    none_rows = np.array([[1, None, 0, None]], dtype=object)
    expected = net.score_samples(nan_rows)
    np.testing.assert_array_equal(net.score_samples(minus_one), expected)
    np.testing.assert_array_equal(net.score_samples(none_rows), expected)
