"""The EM engine: sources, convergence, monotonicity guard, budget, Ctrl-C, callbacks."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scripted import CountStats, run, scripted_family, slack_family

from latentkit import GaussianMixture, em
from latentkit.em import ConvergenceWarning


def test_guard_warns_on_a_decrease_and_names_the_iteration():
    with pytest.warns(ConvergenceWarning, match="decreased at iteration 3"):
        run([-5.0, -4.0, -4.5, -4.4])


def test_guard_is_silent_on_round_off_and_on_increase():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        run([-5.0, -4.0, -4.0 - 1e-13, -3.0])


def test_stops_when_the_change_is_below_tol():
    result = run([-5.0, -4.0, -3.9995, -3.9994, -3.0], tol=1e-3)
    assert result.converged and result.n_iter == 3 and result.stop_reason == "converged"
    np.testing.assert_allclose(result.history, [-5.0, -4.0, -3.9995])


def test_max_time_budget_stops_early():
    result = run([-float(100 - i) for i in range(100)], max_time=1e-9)
    assert result.stop_reason == "max_time" and result.n_iter == 1 and not result.converged


def test_callback_can_stop_and_sees_each_iteration():
    seen = []

    def callback(info):
        seen.append(info.iteration)
        return info.iteration == 2

    result = run([-3.0, -2.0, -1.0, 0.0], callbacks=[callback])
    assert seen == [1, 2] and result.stop_reason == "callback"


def test_ctrl_c_keeps_the_last_complete_parameters():
    X = np.random.default_rng(0).normal(size=(200, 2))
    passes = []

    def chunks():
        passes.append(1)
        # pass 1 probes the source, pass 2 draws the init sample, EM pass k is pass k + 2
        if len(passes) == 5:
            raise KeyboardInterrupt
        return iter([X[:100], X[100:]])

    complete = []
    model = GaussianMixture(2, random_state=0, max_iter=50, tol=0,
                            callbacks=[lambda info: complete.append(info.params)])
    with pytest.warns(ConvergenceWarning, match="interrupted"):
        model.fit(chunks)
    assert model.converged_ is False and model.stop_reason_ == "interrupted"
    assert model.n_iter_ == 2
    np.testing.assert_array_equal(model.means_, complete[-1].means)


def test_one_shot_iterator_is_rejected_with_the_fix():
    X = np.zeros((10, 2))
    with pytest.raises(TypeError, match="fresh iterator"):
        GaussianMixture(1).fit(iter([X]))


def test_chunks_must_agree_on_columns():
    with pytest.raises(ValueError, match="chunk 1 has shape"):
        GaussianMixture(1).fit([np.zeros((5, 2)), np.zeros((5, 3))])


def test_streamed_chunks_are_validated():
    bad = np.ones((20, 2))
    bad[13, 1] = np.inf
    with pytest.raises(ValueError, match=r"chunk 1\) contains inf at row 13, column 1"):
        GaussianMixture(1, chunk_size=10).fit([bad[:10], bad[10:]])


def test_memmapped_rows_are_validated_with_their_file_row(tmp_path):
    bad = np.ones((50, 2))
    bad[37, 0] = np.inf
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match="inf at row 37, column 0"):
        GaussianMixture(1, chunk_size=10).fit(str(tmp_path / "bad.npy"))


def test_npy_path_must_be_an_array_file(tmp_path):
    with pytest.raises(ValueError, match=".npy"):
        GaussianMixture(1).fit(str(tmp_path / "data.csv"))


def test_progress_bar_when_verbose(capsys):
    X = np.random.default_rng(0).normal(size=(100, 2))
    GaussianMixture(2, random_state=0, verbose=1).fit(X)
    assert "EM" in capsys.readouterr().err
    GaussianMixture(2, random_state=0, verbose=0).fit(X)
    assert capsys.readouterr().err == ""
    GaussianMixture(2, random_state=0).fit(X)  # verbose=None: a bar only on a terminal
    assert capsys.readouterr().err == ""


def test_online_step_size_schedule():
    """ρ_t = (t + τ)^(-κ): the running statistics are a weighted average of batches."""

    def e_step(params, state, config, X):
        return CountStats(float(X.sum())), 0.0

    def m_step(stats, params, state, config):
        return stats.n, state, em.NOTHING

    family = em.EMFamily(None, e_step, m_step)
    online = em.OnlineState()
    values = []
    for batch in (1.0, 3.0, 5.0):
        params, _, online, _ = em.online_em_step(family, None, None, None, online,
                                                 np.full((2, 1), batch), learning_decay=0.5,
                                                 learning_offset=4.0)
        values.append(online.stats.n)
    rho1, rho2 = (1 + 4.0) ** -0.5, (2 + 4.0) ** -0.5
    expect1 = (1 - rho1) * 1.0 + rho1 * 3.0
    np.testing.assert_allclose(values, [1.0, expect1, (1 - rho2) * expect1 + rho2 * 5.0])


def test_auto_chunk_rows_is_bounded():
    assert em.auto_chunk_rows(1) == 65536
    assert em.auto_chunk_rows(10**9) == 256


RSS_CHILD = r"""
import sys, warnings
import numpy as np
from latentkit import GaussianMixture

def hwm_mb():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) / 1024

X = np.load(sys.argv[1], mmap_mode="r")
GaussianMixture(2, max_iter=1, tol=0, random_state=0).fit(np.zeros((100, 4)) + np.arange(4))
before = hwm_mb()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    GaussianMixture(2, max_iter=2, tol=0, random_state=0, init_params="random_from_data").fit(X)
print(hwm_mb() - before)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_streaming_a_memmap_keeps_resident_memory_bounded(tmp_path):
    """Streaming a 96 MB .npy must not make its pages resident: peak RSS grows by far less
    than the file (pages are handed back after each chunk and after the init sample)."""
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(6_000_000, 4))
    rng = np.random.default_rng(0)
    for start in range(0, len(X), 1_000_000):
        X[start:start + 1_000_000] = rng.normal(size=(1_000_000, 4))
    X.flush()
    del X
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(path)], capture_output=True,
                         text=True, check=True)
    growth_mb = float(out.stdout.strip().splitlines()[-1])
    assert growth_mb < 48, f"peak RSS grew by {growth_mb:.0f} MB streaming a 96 MB file"


def test_checkpoint_saves_during_the_fit_and_the_fit_resumes(tmp_path):
    from latentkit import load

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(4, 1, (300, 2))])
    path = tmp_path / "ckpt.npz"
    model = GaussianMixture(2, init_params="random", random_state=0, max_iter=7, tol=0,
                            callbacks=[em.Checkpoint(path, every=3)])
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    saved = load(path)  # the last checkpoint: after iteration 6
    assert saved.n_iter_ == 6 and saved.stop_reason_ == "checkpoint"
    np.testing.assert_array_equal(saved.history_, model.history_[:6])
    saved.set_params(callbacks=None, warm_start=True, max_iter=200, tol=1e-8).fit(X)
    assert saved.history_[0] >= model.history_[5]
    assert saved.converged_
    with pytest.raises(ValueError, match="every"):
        em.Checkpoint(path, every=0)


def test_a_bound_family_words_the_guard_for_a_bound_and_names_its_remedy():
    family = scripted_family([-5.0, -4.0, -4.5], objective=em.BOUND)
    with pytest.warns(ConvergenceWarning, match="lower bound decreased at iteration 3") as rec:
        run([-5.0, -4.0, -4.5], family=family)
    text = str(rec[0].message)
    assert "variational EM" in text and "try the fix" in text and "reg_covar" not in text
    with pytest.warns(ConvergenceWarning, match="log-likelihood decreased") as rec:
        run([-5.0, -4.0, -4.5])
    assert "exact EM never decreases" in str(rec[0].message)


def test_a_non_finite_objective_names_the_familys_remedy():
    with pytest.raises(FloatingPointError, match="non-finite log-likelihood at iteration 2. "
                                                 "Try the fix"):
        run([-5.0, float("nan"), -4.0])


def test_a_reseeding_m_step_is_announced_and_suspends_the_guard_and_convergence():
    """The M-step of iteration 2 re-seeds: its message is warned as a ReseedWarning, the
    drop at iteration 3 is not a failure, and a zero change there is not convergence."""
    script = [-5.0, -4.0, -6.0, -6.0, -6.0]
    family = scripted_family(script, reseed_at=(2,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(script, family=family, tol=1e-3)
    kinds = [w.category for w in caught]
    assert em.ReseedWarning in kinds and ConvergenceWarning not in kinds
    assert any("re-seeded component 0" in str(w.message) for w in caught)
    assert result.converged and result.n_iter == 4  # not at 3: the step before re-seeded


def test_fit_em_passes_the_restart_index_and_keeps_the_best_run():
    seen = []

    def init(X, rng, config, restart):
        seen.append(restart)
        return restart, None  # restart r starts at script index r

    base = scripted_family([-5.0, -3.0, -2.0, -2.0])
    family = em.EMFamily(init, base.e_step, base.m_step)
    source = em.ArraySource(np.zeros((10, 1)), 4, validated=True, allow_nan=False)
    result = em.fit_em(family, None, source, n_init=3, rng=np.random.default_rng(0), tol=1e-6,
                       max_iter=10)
    assert seen == [0, 1, 2]
    assert result.converged and result.lower_bound == -2.0


def test_a_family_declares_an_objective_kind():
    with pytest.raises(ValueError, match="objective"):
        em.EMFamily(None, None, None, objective="elbo-ish")


def test_the_state_record_travels_between_iterations_and_into_the_result():
    """state in, state out: the M-step's state reaches the next E-step and the result."""
    states = []

    def e_step(params, state, config, X):
        states.append(state)
        return CountStats(float(len(X))), -1.0 * len(X)

    def m_step(stats, params, state, config):
        return params, state + config, em.NOTHING

    family = em.EMFamily(None, e_step, m_step)
    source = em.ArraySource(np.zeros((3, 1)), 10, validated=True, allow_nan=False)
    result = em.run_em(family, 10, source, 0, 1, tol=0.0, max_iter=3)
    assert states == [1, 11, 21] and result.state == 31


def test_a_family_with_its_own_objective_is_named_in_the_messages():
    base = scripted_family([-5.0, -4.0, -4.5])
    family = em.EMFamily(base.init, base.e_step, base.m_step,
                         label="negative reconstruction error")
    with pytest.warns(ConvergenceWarning, match="negative reconstruction error decreased "
                                                "at iteration 3") as rec:
        run([-5.0, -4.0, -4.5], family=family)
    assert "log-likelihood" not in str(rec[0].message)


def test_engine_warnings_point_at_the_users_call():
    """A re-seeding notice and a non-convergence warning name the line that called fit."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(30, 2)), [[50, 50], [50.1, 50], [50, 50.2]]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GaussianMixture(6, random_state=0, init_params="random", max_iter=3).fit(X)
    kinds = {w.category for w in caught}
    assert em.ReseedWarning in kinds and ConvergenceWarning in kinds
    assert all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]


def test_the_guard_allows_a_declared_slack_and_no_more():
    """A dip within what the M-step declared is not a numerical failure; a larger one, or
    any dip after an exact M-step, still is."""
    script = [-5.0, -4.0, -4.3, -4.2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        run(script, family=slack_family(script, 0.5))
    with pytest.warns(ConvergenceWarning, match="decreased at iteration 3"):
        run(script, family=slack_family(script, 0.2))
    with pytest.warns(ConvergenceWarning, match="decreased at iteration 3"):
        run(script, family=slack_family(script, 0.0))


def test_a_continued_run_measures_its_first_change_from_the_given_bound():
    """A warm start passes the stored bound: one iteration can then converge, and the guard
    does not compare against a bound that may come from other data."""
    assert run([-4.0], bound=-4.0005, tol=1e-3, max_iter=1).converged
    assert not run([-4.0], tol=1e-3, max_iter=1).converged
    assert not run([-4.0], bound=-4.01, tol=1e-3, max_iter=1).converged
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        run([-5.0, -4.0], bound=-3.0)


def test_a_broken_m_step_still_warns_with_a_large_reg_covar():
    """The slack excuses what the regularizer can cost and no more: a Gaussian mixture M-step
    that also moves the means away is still called a numerical failure."""
    from latentkit.mixture import _gaussian_em as gem
    from latentkit.mixture import _gaussian_kernels as gk

    def broken(stats, params, state, config):
        new, state, info = gem.m_step(stats, params, state, config)
        moved = gk.make_params(new.weights, new.means + 3.0, new.covariances, new.covariance,
                               state.shift)
        return moved, state, info

    X = np.random.default_rng(0).normal(size=(200, 2))
    config = GaussianMixture(2, reg_covar=1.0)._em_config(*X.shape)
    params, state = gem.init(X, np.random.default_rng(0), config)
    source = em.ArraySource(X, 100, validated=True, allow_nan=False)
    family = em.EMFamily(gem.init, gem.e_step, broken)
    with pytest.warns(ConvergenceWarning, match="decreased at iteration 2"):
        em.run_em(family, config, source, params, state, tol=0.0, max_iter=2)
    with warnings.catch_warnings():  # the same M-step, unbroken: silent
        warnings.simplefilter("error", ConvergenceWarning)
        em.run_em(gem.GAUSSIAN_MIXTURE, config, source, params, state, tol=0.0, max_iter=30)
