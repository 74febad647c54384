"""A DiscreteBayesNet built from its CPTs answers queries without fit (issue 10 part 6; see
also test_network.py's seed-example tests, which use the same unfitted construction).

Network Rain -> Grass, p(rain) = .2, p(wet | rain) = .9, p(wet | no rain) = .1; closed forms
by Bayes' rule: p(wet) = .2 .9 + .8 .1 = .26, p(rain | wet) = .18 / .26.
"""

import math

import numpy as np
import pytest

from latentkit.bayesnet import DiscreteBayesNet


def given_network(**kwargs):
    return DiscreteBayesNet(edges=[("Rain", "Grass")], cardinalities={"Rain": 2, "Grass": 2},
                            cpts={"Rain": [0.8, 0.2], "Grass": [[0.9, 0.1], [0.1, 0.9]]},
                            **kwargs)


def test_queries_and_log_likelihoods_without_fit():
    net = given_network()
    assert not hasattr(net, "n_iter_")  # never fitted
    wet = {"Grass": 1}
    assert net.log_evidence(wet) == pytest.approx(math.log(0.26), abs=1e-12)
    np.testing.assert_allclose(net.posterior_marginal("Rain", wet),
                               [0.08 / 0.26, 0.18 / 0.26], rtol=1e-12)
    best = net.map_assignment(wet)
    assert best.assignment == {"Rain": 1, "Grass": 1}  # p(rain, wet) = .18 > .08
    assert best.log_prob == pytest.approx(math.log(0.18), abs=1e-12)
    rows = np.array([[np.nan, 1.0], [1.0, 1.0], [1.0, 0.0], [np.nan, np.nan]])
    np.testing.assert_allclose(
        net.score_samples(rows),
        np.log([0.26, 0.2 * 0.9, 0.2 * 0.1, 1.0]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.predict_proba(rows[:1], "Rain"),
                               [[0.08 / 0.26, 0.18 / 0.26]], rtol=1e-12)


def test_hidden_variable_posterior_without_fit():
    net = given_network(hidden=["Rain"])
    X = np.array([[1.0], [0.0]])
    np.testing.assert_allclose(net.transform(X), [[0.08 / 0.26, 0.18 / 0.26],
                                                  [0.72 / 0.74, 0.02 / 0.74]], rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), [1, 0])
