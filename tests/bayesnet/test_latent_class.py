"""LatentClassModel: the categorical mixture under latent class analysis' name, checked
against the equivalent DiscreteBayesNet (an independent inference code path)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import latentkit
from helpers import (
    assert_monotone,
    assert_online_resumes_after_save,
    assert_recovers,
    assert_resumes_after_save,
)
from latentkit import CategoricalMixture
from latentkit.bayesnet import DiscreteBayesNet, LatentClassModel


def planted(n=3000, seed=0):
    """3 classes, 4 columns with 2, 3, 3, 4 levels; 15% of the entries missing."""
    rng = np.random.default_rng(seed)
    levels = [2, 3, 3, 4]
    weights = np.array([0.5, 0.3, 0.2])
    probs = [rng.dirichlet(np.full(L, 0.5), size=3) for L in levels]
    z = rng.choice(3, size=n, p=weights)
    X = np.column_stack([(rng.random(n)[:, None] > np.cumsum(p[z], axis=1)).sum(axis=1)
                         for p in probs]).astype(float)
    X[rng.random(X.shape) < 0.15] = np.nan
    return X, weights, probs


def test_log_likelihood_equals_the_equivalent_bayes_net():
    X, _, _ = planted()
    lcm = LatentClassModel(3, random_state=0).fit(X)
    net = lcm.to_bayesnet(column_names=["a", "b", "c", "d"])
    assert isinstance(net, DiscreteBayesNet) and net.hidden == ["class"]
    np.testing.assert_allclose(net.score_samples(X), lcm.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(net.predict_proba(X), lcm.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(net.predict(X), lcm.predict(X))
    assert net.n_parameters_ == lcm.n_parameters_


def test_it_is_the_categorical_mixture():
    X, _, _ = planted(seed=1)
    lcm = LatentClassModel(3, random_state=4, n_init=2).fit(X)
    cmm = CategoricalMixture(3, random_state=4, n_init=2).fit(X)
    np.testing.assert_array_equal(lcm.probs_, cmm.probs_)
    np.testing.assert_array_equal(lcm.weights_, cmm.weights_)
    np.testing.assert_array_equal(lcm.history_, cmm.history_)
    assert isinstance(lcm, CategoricalMixture) and "n_classes" in lcm.get_params()


def test_recovers_planted_classes_and_bayes_net_em_agrees():
    X, weights, probs = planted(n=20_000, seed=2)
    # weight_alpha = alpha: the same MAP objective as the network's (one α on every CPT)
    lcm = LatentClassModel(3, weight_alpha=0.01, n_init=3, random_state=0, tol=1e-6,
                           max_iter=500).fit(X)
    assert_monotone(lcm.history_)
    truth = np.column_stack([weights[:, None], *probs])
    fitted = np.column_stack([lcm.weights_[:, None]] + [lcm.category_probs(j)
                                                         for j in range(4)])
    assert_recovers(truth, fitted, atol=0.05)
    # EM of the general network, started at the latent class fit, stays near that fixed
    # point (it only creeps up by less than the mixture's tol per iteration)
    net = lcm.to_bayesnet()
    start = {name: net._cpts()[i] for i, name in enumerate(net.variables)}
    refit = DiscreteBayesNet(edges=net.edges, cardinalities=net.cardinalities, cpts=start,
                             hidden=["class"], alpha=lcm.alpha, tol=0.0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", latentkit.ConvergenceWarning)
        refit.fit(X)
    assert_monotone(refit.history_)
    assert lcm.lower_bound_ - 1e-9 <= refit.history_[0] <= refit.history_[-1]
    assert refit.history_[-1] - refit.history_[0] < 1e-4
    start_flat = np.concatenate([t.ravel() for t in start.values()])
    np.testing.assert_allclose(refit.cpt_values_, start_flat, atol=0.01)


def test_n_classes_is_validated_and_saved(tmp_path):
    X, _, _ = planted(n=300, seed=3)
    with pytest.raises(ValueError, match="'n_classes'"):
        LatentClassModel(0).fit(X)
    lcm = LatentClassModel(2, random_state=0).fit(X)
    lcm.save(tmp_path / "lcm.npz")
    loaded = latentkit.load(tmp_path / "lcm.npz")
    assert type(loaded) is LatentClassModel and loaded.n_classes == 2
    np.testing.assert_array_equal(loaded.score_samples(X), lcm.score_samples(X))


def test_saved_model_warm_starts_and_continues_online_em_exactly(tmp_path):
    """em_state_ and online_state_ are saved: a loaded model continues a fit, and online
    EM, exactly as the original (here with this family's own data)."""
    X = planted(n=600, seed=15)[0]
    def model():
        return LatentClassModel(3, n_categories=[2, 3, 3, 4], random_state=0)

    assert_resumes_after_save(model(), X, tmp_path)
    assert_online_resumes_after_save(model(), [X[i:i + 100] for i in range(0, 400, 100)],
                                     tmp_path)


def test_messages_speak_of_classes():
    """A LatentClassModel user sees n_classes and classes, never n_components: the K <= n
    check, and the re-seeding warning (an empty third class, as in BernoulliMixture's
    test, on binary columns coded 0/1)."""
    with pytest.raises(ValueError, match="n_classes=500 must be <= n_samples=3") as info:
        LatentClassModel(n_classes=500).fit([[0, 1], [1, 0], [1, 1]])
    assert "component" not in str(info.value)
    rng = np.random.default_rng(8)
    X = np.vstack([(rng.random((100, 10)) < 0.05), (rng.random((100, 10)) < 0.95),
                   np.tile([1, 0], (6, 5))]).astype(float)
    mu = np.array([[0.05] * 10, [0.95] * 10, [0.05] * 5 + [0.95] * 5])
    probs = np.stack([1 - mu, mu], axis=-1).reshape(3, 20)  # (K, Σ L_j), [p(0), p(1)]
    model = LatentClassModel(3, weights_init=[0.495, 0.495, 0.01], probs_init=probs,
                             tol=1e-8, max_iter=200)
    with pytest.warns(latentkit.em.ReseedWarning,
                      match=r"LatentClassModel: class\(es\) \[2\] had fewer than 1") as record:
        model.fit(X)
    assert not any("component" in str(w.message) for w in record)
