"""The engine returns the best complete iterate (issue 12, item 7), as pure bookkeeping.

A scripted family's params count the M-steps taken, so the returned params *are* the index
of the returned iterate, and the E-step at params = i reports script[i]: history[i] is the
objective of the params after i M-steps.
"""

import math
import warnings

import numpy as np
import pytest
from scripted import CountStats, run, scripted_family, slack_family

from latentkit import em
from latentkit.em import ConvergenceWarning, ReseedWarning


def quiet_run(script, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReseedWarning)
        return run(script, **kw)


def test_an_ordinary_run_returns_the_last_m_steps_parameters():
    """Monotone: the final params (after n M-steps), recorded at the objective of the E-step
    that produced them, history[-1] (scikit-learn's lower_bound_)."""
    result = run([-5.0, -4.0, -3.5, -3.4])
    assert result.params == result.n_iter == result.best_iteration == 4
    assert result.lower_bound == result.history[-1] == -3.4


def test_after_a_reseeding_drop_the_run_returns_the_best_iterate_it_saw():
    """Iterate 2 (-3.0) precedes a re-seeding M-step; the run then cycles below it: the
    result is iterate 2, at its own objective, and the history is the whole trajectory."""
    script = [-5.0, -4.0, -3.0, -6.0, -5.0, -4.5, -4.4]
    result = quiet_run(script, family=scripted_family(script, reseed_at=(3,)))
    assert result.n_iter == 7 and result.history == script
    assert result.params == result.best_iteration == 2
    assert result.lower_bound == -3.0 == max(result.history)


def test_the_best_of_several_reseeding_cycles_is_kept():
    script = [-5.0, -2.0, -4.0, -3.0, -2.5, -4.0, -3.5]
    result = quiet_run(script, family=scripted_family(script, reseed_at=(2, 5)))
    assert result.best_iteration == 1 and result.lower_bound == -2.0


def test_a_run_that_recovers_after_reseeding_returns_its_final_parameters():
    script = [-5.0, -3.0, -4.0, -2.5, -2.0]
    result = quiet_run(script, family=scripted_family(script, reseed_at=(2,)))
    assert result.best_iteration == result.n_iter == 5 and result.lower_bound == -2.0


def test_the_final_parameters_of_a_reseeding_m_step_are_not_returned_unseen():
    """The last M-step re-seeded: nothing bounds the final params' objective, so the run
    returns the last evaluated iterate (n - 1) rather than an unknown."""
    script = [-5.0, -4.0, -3.0]
    result = quiet_run(script, family=scripted_family(script, reseed_at=(3,)))
    assert result.n_iter == 3 and result.best_iteration == 2 and result.params == 2
    assert result.lower_bound == -3.0


def test_a_failing_step_is_warned_and_the_iterate_before_it_is_kept():
    """A decrease beyond round-off without re-seeding is a numerical failure: still warned,
    and the iterate before it is a candidate."""
    script = [-5.0, -4.0, -4.5, -4.4]
    with pytest.warns(ConvergenceWarning, match="decreased at iteration 3"):
        result = run(script)
    assert result.best_iteration == 1 and result.params == 1 and result.lower_bound == -4.0


def test_round_off_and_declared_slack_never_roll_back():
    """A dip within round-off, or within the slack a penalized M-step declared (reg_covar),
    is EM working as designed: the final parameters are returned."""
    script = [-5.0, -4.0, -4.0 - 1e-13, -4.0 - 2e-13]
    assert run(script, tol=0.0).best_iteration == 4

    script = [-5.0, -4.0, -4.3, -4.35]
    result = run(script, family=slack_family(script, 0.5))
    assert result.best_iteration == result.n_iter == 4 and result.lower_bound == -4.35


def test_converged_describes_the_run_and_best_iteration_the_returned_parameters():
    """The run re-seeds into a worse fixed point and converges there: it converged (no
    ConvergenceWarning), and it returns the better iterate seen before."""
    script = [-5.0, -3.0, -6.0, -5.0, -5.0, -5.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", ReseedWarning)
        result = em.fit_em(scripted_family(script, reseed_at=(2,)), None, source(),
                           n_init=1, rng=np.random.default_rng(0), tol=1e-6, max_iter=20)
    assert result.converged and result.stop_reason == "converged" and result.n_iter == 5
    assert result.best_iteration == 1 and result.lower_bound == -3.0


def test_no_iteration_returns_the_starting_parameters():
    result = run([-5.0], max_iter=0)
    assert result.params == result.best_iteration == 0 and result.history == []
    assert result.lower_bound == -math.inf


def test_restarts_are_compared_by_the_objective_of_what_they_return():
    """Restart 0 ends at -4 but returns its iterate at -1; restart 1 ends at -2: restart 0
    wins (comparing final history entries would pick restart 1)."""
    scripts = {0: [-5.0, -1.0, -4.0, -4.0], 1: [-5.0, -2.0, -2.0]}

    def init(X, rng, config, restart):
        return (restart, 0), None

    def e_step(params, state, config, X):
        script = scripts[params[0]]
        return CountStats(float(len(X))), script[min(params[1], len(script) - 1)] * len(X)

    def m_step(stats, params, state, config):
        restart, steps = params
        info = em.StepInfo((0,), "re-seeded") if restart == 0 and steps == 1 else em.NOTHING
        return (restart, steps + 1), state, info

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReseedWarning)
        result = em.fit_em(em.EMFamily(init, e_step, m_step), None, source(), n_init=2,
                           rng=np.random.default_rng(0), tol=1e-6, max_iter=10)
    assert result.params == (0, 1) and result.lower_bound == -1.0


def test_ctrl_c_keeps_the_best_complete_iterate():
    """Interrupted in iteration 5 after a re-seeding drop: the best evaluated iterate."""
    script = [-5.0, -3.0, -6.0, -5.5, -5.0]
    base = scripted_family(script, reseed_at=(2,))

    def e_step(params, state, config, X):
        if params == 4:
            raise KeyboardInterrupt
        return base.e_step(params, state, config, X)

    family = em.EMFamily(base.init, e_step, base.m_step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReseedWarning)
        with pytest.warns(ConvergenceWarning, match="interrupted during iteration 5"):
            result = run(script, family=family, max_iter=10)
    assert result.stop_reason == "interrupted" and not result.converged
    assert result.n_iter == 4 and result.best_iteration == 1 and result.lower_bound == -3.0


def test_better_iterate_prefers_the_later_one_within_round_off():
    early = em.Iterate(1, -3.0, "early", None)
    assert em.better_iterate(early, em.Iterate(4, -3.0 - 1e-12, "late", None),
                             np.float64).params == "late"
    assert em.better_iterate(early, em.Iterate(4, -3.1, "late", None),
                             np.float64).params == "early"
    assert em.better_iterate(None, early, np.float64) is early


def source():
    return em.ArraySource(np.zeros((10, 1)), 4, validated=True, allow_nan=False)
