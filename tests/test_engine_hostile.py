"""Hostile inputs to the EM engine (issue 12): a fit never returns a worse model than one it
had (item 7), and absurd engine options or data fail at once with a clear error (item 6)."""

import warnings

import numpy as np
import pytest

from latentkit import BernoulliMixture, GaussianMixture, em, load
from latentkit.em import ConvergenceWarning, ReseedWarning
from latentkit.exceptions import InvalidInputTypeError, InvalidParameterError

# six points on a line: K=2 spherical EM climbs for five iterations, re-seeds a collapsed
# component and converges at a worse fixed point (was: returned it, -1.80 against -1.68)
SIX_POINTS = np.array([[-0.5], [-0.4], [-2.4], [1.8], [1.1], [-0.3]])
# three points: K=2 spherical EM re-seeds every few iterations and cycles until max_iter
# (was: returned the cycle's last iterate, -0.12, while it had started at 1.77)
THREE_POINTS = np.array([[0.13], [-0.13], [0.64]])


def objective_of_fitted(model, X):
    """The mean objective of the fitted parameters, by one E-pass of the model's family."""
    X = model._validate_X(X, reset=False)
    config = model._em_config(*X.shape)
    source = em.ArraySource(X, len(X), validated=True, allow_nan=True)
    total = em.e_pass(model.em_family, config, model._current_params(), model.em_state_,
                      source)
    return total.objective / total.rows


def test_a_fit_that_reseeds_into_a_worse_fixed_point_returns_its_best_iterate():
    model = GaussianMixture(2, covariance_type="spherical", random_state=2, max_iter=50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(SIX_POINTS)
    kinds = {w.category for w in caught}
    assert ReseedWarning in kinds and ConvergenceWarning not in kinds
    history = model.history_
    assert model.converged_ and model.stop_reason_ == "converged"  # the run converged...
    assert len(history) == model.n_iter_ and model.best_iteration_ < model.n_iter_
    assert model.best_iteration_ == np.argmax(history)  # ...and returns the best iterate
    assert model.lower_bound_ == history[model.best_iteration_] == history.max()
    assert history[-1] < model.lower_bound_ - 0.1
    np.testing.assert_allclose(model.score(SIX_POINTS), model.lower_bound_, rtol=1e-12)


def test_a_cycling_fit_returns_its_best_iterate_and_still_warns():
    model = GaussianMixture(2, covariance_type="spherical", random_state=0, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReseedWarning)
        with pytest.warns(ConvergenceWarning, match="did not converge"):
            model.fit(THREE_POINTS)
    assert not model.converged_ and model.n_iter_ == 50 == len(model.history_)
    assert model.lower_bound_ == model.history_.max() > model.history_[-1] + 1.0
    assert model.lower_bound_ == model.history_[model.best_iteration_]
    # (a component of variance 1e-6 on one point: round-off of order 1e-12)
    np.testing.assert_allclose(model.score(THREE_POINTS), model.lower_bound_, rtol=1e-9)


@pytest.mark.parametrize("seed", [25, 37, 82, 129, 192, 0, 1, 2])
def test_a_bernoulli_fit_never_ends_below_its_best_iterate(seed):
    """Tiny binary data (re-seeding happens often; the first five seeds cycled to a worse
    end): the returned parameters' objective is the best in history_ (a rolled-back fit:
    exactly lower_bound_)."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(int(rng.integers(3, 8)), 3)).astype(float)
    model = BernoulliMixture(3 if len(X) > 3 else 2, random_state=seed, max_iter=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReseedWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    value = objective_of_fitted(model, X)
    assert value >= model.history_.max() - 1e-9 * max(1.0, abs(value))
    if model.best_iteration_ < model.n_iter_:
        np.testing.assert_allclose(value, model.lower_bound_, rtol=1e-12)


def test_a_warm_start_continues_from_the_returned_iterate(tmp_path):
    """After a roll-back, the model continues from the returned parameters: a warm fit's
    first objective is their lower_bound_ (em_state_ matches them), and its first change is
    measured from the iterate before them, history_[best_iteration_ - 1] (saved with the
    model). Here the next M-step re-seeds into the worse basin again, so one warm iteration
    keeps the same parameters, as iterate 0 of the warm fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReseedWarning)
        model = GaussianMixture(2, covariance_type="spherical", random_state=2,
                                max_iter=50).fit(SIX_POINTS)
        j = model.best_iteration_
        assert 0 < j < model.n_iter_
        assert model._warm_bound() == model.history_[j - 1]
        model.save(tmp_path / "rolled.npz")
        warm = load(tmp_path / "rolled.npz")
        assert warm.best_iteration_ == j and warm._warm_bound() == model.history_[j - 1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warm.set_params(warm_start=True, max_iter=1).fit(SIX_POINTS)
    np.testing.assert_allclose(warm.history_, [model.lower_bound_], rtol=1e-12)
    assert warm.best_iteration_ == 0 and warm.lower_bound_ == warm.history_[0]
    assert not warm.converged_  # a re-seeding step is never convergence
    np.testing.assert_array_equal(warm.means_, model.means_)


def test_an_ordinary_fit_keeps_scikit_learns_lower_bound():
    """Nothing rolled back: the last M-step's parameters, lower_bound_ == history_[-1]."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(5, 1, (100, 2))])
    model = GaussianMixture(2, random_state=0).fit(X)
    assert model.best_iteration_ == model.n_iter_ and model.lower_bound_ == model.history_[-1]
    assert model.score(X) >= model.lower_bound_


# -- item 6: absurd options and one-shot data -----------------------------------------------

X_SMALL = np.random.default_rng(0).normal(size=(30, 2))


@pytest.mark.parametrize("options", [dict(max_iter=10**30), dict(max_iter=10**9 + 1),
                                     dict(max_iter=2**63), dict(n_init=10**30),
                                     dict(max_iter=-1), dict(max_iter=1.5)])
def test_an_absurd_iteration_count_is_a_parameter_error(options):
    name = next(iter(options))
    with pytest.raises(InvalidParameterError, match=rf"'{name}' must be an integer in "
                                                    r"\[\d, 1000000000\]"):
        GaussianMixture(2, **options).fit(X_SMALL)


def test_huge_but_valid_engine_options_are_accepted():
    """Ints beyond int64 are still numbers: a huge tol stops at once, a huge seed seeds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # the first change is measured from -inf; the second is below any tol this large
        assert GaussianMixture(2, tol=10**30, random_state=0).fit(X_SMALL).n_iter_ == 2
        GaussianMixture(2, random_state=10**30, max_iter=10**9).fit(X_SMALL)
    with pytest.raises(InvalidParameterError, match="'tol'"):
        GaussianMixture(2, tol=-(10**30)).fit(X_SMALL)


@pytest.mark.parametrize("model_class", [GaussianMixture, BernoulliMixture])
def test_callbacks_must_be_callable_and_the_entry_is_named_before_any_iteration(model_class):
    called = []
    model = model_class(2, callbacks=[called.append, "print", 1])
    with pytest.raises(InvalidParameterError, match=r"callbacks\[1\]\) is 'print'"):
        model.fit(np.ones((6, 2)))
    assert called == []  # refused at the start of the fit, not after an iteration
    with pytest.raises(InvalidParameterError, match=r"callbacks\[0\]\) is 1 of type int"):
        model_class(2, callbacks=(1,)).fit(np.ones((6, 2)))


def test_a_one_shot_iterator_is_a_type_error_that_names_the_fix():
    with pytest.raises(InvalidInputTypeError, match="one-shot iterator.*fresh iterator"):
        GaussianMixture(1).fit(iter([X_SMALL[:15], X_SMALL[15:]]))
    chunks = (c for c in (X_SMALL[:15], X_SMALL[15:]))
    with pytest.raises(InvalidInputTypeError, match="list of arrays"):
        GaussianMixture(1).fit(chunks)


def test_a_function_that_returns_the_same_iterator_again_is_refused():
    """The second pass would find it used up (or silently miss the chunks read before)."""
    shared = iter([X_SMALL[:15], X_SMALL[15:]])
    with pytest.raises(InvalidInputTypeError, match="same one-shot iterator again"):
        GaussianMixture(1).fit(lambda: shared)
    fresh = GaussianMixture(1, random_state=0).fit(lambda: iter([X_SMALL[:15], X_SMALL[15:]]))
    np.testing.assert_allclose(fresh.means_[0], X_SMALL.mean(0), atol=1e-12)


def test_data_of_an_unreadable_kind_is_a_type_error():
    with pytest.raises(InvalidInputTypeError, match="cannot read data of type object"):
        em.as_source(object(), chunk_rows=10, allow_nan=False)
