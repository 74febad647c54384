"""The properties the fuzz suite checks on one fitted Problem (see strategies.py), as plain
functions so a failing example can be replayed by hand:

    fit_problem(problem, cls)               -> (model, runs): the model fitted, and each EM run
    is_documented(exc)                      whether an exception is a documented user error
    assert_outputs_have_no_nan(model, X)    what a fitted model returns on its training data
    assert_em_runs_monotone(model, X, runs) exact EM never lowers its objective
    assert_round_trip_bit_identical(model, X)

What counts as a failure follows latentkit.exceptions: a user's mistake (here: a degenerate
input or a hyper-parameter the data cannot support) raises a subclass of UserError, or a
ValueError/TypeError defined in latentkit; any other exception escaping latentkit is a bug.
EM's ConvergenceWarning and ReseedWarning are expected on random data and are silenced; a
RuntimeWarning from latentkit (overflow, invalid value) is an error by the project's pytest
configuration, and so a failure here.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

import latentkit
from contract.checks import same_value
from latentkit import load
from latentkit.base import EMModel
from latentkit.distributions import Categorical, Gaussian
from latentkit.em import EXACT, ReseedWarning, StepInfo, loop, monotone_tolerance
from latentkit.exceptions import UserError

PACKAGE_DIR = str(Path(latentkit.__file__).parent)


def raised_at(exc: BaseException) -> str:
    """'path:line' (inside the latentkit package) of the innermost latentkit frame `exc`
    passed through: where to look."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(PACKAGE_DIR)]
    if not frames:
        return "outside latentkit"
    frame = frames[-1]
    return f"{frame.filename[len(PACKAGE_DIR) + 1:]}:{frame.lineno}"


def is_documented(exc: BaseException) -> bool:
    """A UserError, or a ValueError/TypeError whose class latentkit defines."""
    if isinstance(exc, UserError):
        return True
    return (isinstance(exc, ValueError | TypeError)
            and type(exc).__module__.startswith("latentkit"))


# -- fitting, with a record of every EM run -----------------------------------------------


@dataclass
class EMRun:
    """One run of the engine's `run_em` (one initialization of a fit).

    history : (n_iter,) the mean objective at each iteration, before its M-step.
    steps : (n_iter,) the StepInfo of each M-step: steps[i] lies between history[i] and
        history[i + 1] (and, for the last, between history[-1] and the fitted parameters).
    """

    history: list[float] = field(default_factory=list)
    steps: list[StepInfo] = field(default_factory=list)


@contextlib.contextmanager
def recording_em_runs():
    """Record every EM run inside the block: yields a list of EMRun, filled as the engine runs.

    The model records neither re-seeding nor an M-step's slack in `history_` (the engine only
    announces a re-seeding as a ReseedWarning), so this wraps the engine's `run_em` (one per
    initialization) and `_announce` (called with each M-step's StepInfo) in
    latentkit.em.loop, passing everything through unchanged.
    """
    runs: list[EMRun] = []
    real_run_em, real_announce = loop.run_em, loop._announce

    def run_em(*args, **kwargs):
        runs.append(EMRun())
        result = real_run_em(*args, **kwargs)
        runs[-1].history = [float(v) for v in result.history]
        return result

    def announce(info, stacklevel):
        if runs:
            runs[-1].steps.append(info)
        return real_announce(info, stacklevel + 1)

    loop.run_em, loop._announce = run_em, announce
    try:
        yield runs
    finally:
        loop.run_em, loop._announce = real_run_em, real_announce


def fit_problem(problem, cls):
    """(model, runs): `cls(**problem.kwargs)` fitted to problem.X, EM's convergence and
    re-seeding warnings silenced, and the EMRun of each initialization (empty for a model
    not fitted by the EM engine). Raises whatever fit raises."""
    model = cls(**problem.kwargs)
    with warnings.catch_warnings(), recording_em_runs() as runs:
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ReseedWarning)
        model.fit(problem.X)
    return model, runs


# -- property 2: no NaN in what a fitted model returns ------------------------------------


def _assert_no_nan(name: str, values, *, finite: bool = True) -> None:
    values = np.asarray(values, dtype=np.float64)
    assert not np.isnan(values).any(), f"{name} holds NaN: {values!r}"
    if finite:
        assert np.isfinite(values).all(), f"{name} holds inf: {values!r}"


def with_missing_entries(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """X : (n, D) with about a third of its entries NaN, every column keeping an observed
    entry (so a single row stays complete): the input of `impute`."""
    rng = np.random.default_rng(seed)
    X = X.copy()
    missing = rng.random(X.shape) < 0.3
    missing[0, 0] = True
    for j in np.flatnonzero(missing.all(axis=0)):
        missing[-1, j] = False
    X[missing] = np.nan
    return X


def output(name: str, method, *args, **kwargs):
    """method(*args, **kwargs), any exception turned into a failure naming the output: a
    fitted model must give every output on its own training data."""
    try:
        return method(*args, **kwargs)
    except Exception as exc:
        raise AssertionError(
            f"{name} raised {type(exc).__module__}.{type(exc).__qualname__} at "
            f"{raised_at(exc)} on the training data of a successful fit: {exc}") from exc


def assert_outputs_have_no_nan(model, X: np.ndarray) -> None:
    """On its training data X : (n, D), a fitted model gives every output, without NaN.

    score_samples must be finite: every training row lies on the fitted support, so even
    PCA's density on a singular support (documented -inf off it) is finite there, and no
    model may give a training row log-density +inf. transform, posterior, predict,
    predict_proba, sample(5) and impute (on X with NaNs, where the model has it) must be
    finite. posterior alone may instead raise NotImplementedError saying why, or a
    documented user error for a fit that determines z (PCA keeping every direction: noise
    variance 0), as DESIGN's contract allows ("raises a clear error for the rest").
    """
    _assert_no_nan("score_samples(X)", output("score_samples(X)", model.score_samples, X))
    _assert_no_nan("transform(X)", output("transform(X)", model.transform, X))
    try:
        post = model.posterior(X)
    except NotImplementedError as exc:
        assert str(exc), "a model without a posterior must say why"
    except Exception as exc:
        if not is_documented(exc):
            output("posterior(X)", _reraise, exc)
    else:
        if isinstance(post, Categorical):
            _assert_no_nan("posterior(X).probs", post.probs)
        elif isinstance(post, Gaussian):
            _assert_no_nan("posterior(X).mean", post.mean)
            _assert_no_nan("posterior(X).cov", post.cov)
    for method in ("predict", "predict_proba"):
        if callable(getattr(model, method, None)):
            _assert_no_nan(f"{method}(X)", output(f"{method}(X)", getattr(model, method), X))
    draws, latents = output("sample(5)", model.sample, 5, random_state=0)
    _assert_no_nan("sample(5) draws", draws)
    _assert_no_nan("sample(5) latents", latents)
    if callable(getattr(model, "impute", None)) and model._allow_nan:
        filled = output("impute(X with NaN)", model.impute, with_missing_entries(X))
        _assert_no_nan("impute(X with NaN)", filled)


def _reraise(exc: BaseException):
    raise exc


# -- property 3: exact EM never lowers its objective ---------------------------------------


def objective_at_fit(model, X: np.ndarray) -> float:
    """The EM objective at the fitted parameters, per row: score(X) (mean log-likelihood
    per row, per time step for a sequence), plus log p(θ) / n_rows for MAP-EM."""
    value = float(model.score(X))
    family = model.em_family
    if family.log_prior is not None:
        config = model._em_config(len(X), X.shape[1])
        value += float(family.log_prior(model._current_params(), config)) / len(X)
    return value


def assert_run_monotone(run: EMRun, n_rows: int) -> None:
    """history[i] -> history[i + 1] may fall only by round-off (the engine's own
    `monotone_tolerance`, float64) plus the slack the M-step between them declared
    (StepInfo.slack, summed over the rows), or by anything across a re-seeding M-step."""
    h = run.history
    for i in range(1, len(h)):
        step = run.steps[i - 1]
        if step.reseeded:
            continue
        allowed = monotone_tolerance(h[i], np.float64) + step.slack / n_rows
        assert h[i - 1] - h[i] <= allowed, (
            f"exact EM objective fell at iteration {i + 1}: {h[i - 1]!r} -> {h[i]!r} "
            f"(drop {h[i - 1] - h[i]:.3g} > allowed {allowed:.3g}); history {h}")


def best_guaranteed(run: EMRun, n_rows: int) -> float:
    """The objective the parameters a run returns must reach: max over k of history[k] less
    what the M-steps from k on may lose (round-off and their declared slack each).

    EM's inequality gives L(θ_{t+1}) >= L(θ_t) - slack_t; across a re-seeding M-step the
    engine keeps the iterate before it as a candidate and returns the best candidate (the
    best complete iterate, DESIGN section 3), so the bound holds through re-seeding too.
    """
    best, loss = -math.inf, 0.0
    for value, step in zip(reversed(run.history), reversed(run.steps)):
        loss += monotone_tolerance(value, np.float64) + step.slack / n_rows
        best = max(best, value - loss)
    return best


def assert_em_runs_monotone(model, X: np.ndarray, runs: list[EMRun]) -> None:
    """For a model fitted by exact EM (`em_family.objective == EXACT`): every run's history
    is non-decreasing up to round-off outside re-seeding (`assert_run_monotone`),
    `history_` is one of the runs', and the fitted parameters reach `best_guaranteed` of
    that run: they are no worse than any iterate it recorded, less what EM may lose. The
    last check is skipped for a family whose objective is not the likelihood (a `label`,
    e.g. PPCA's EM-PCA reconstruction error), which `score` cannot reproduce."""
    assert isinstance(model, EMModel) and model.em_family.objective == EXACT
    assert runs, "the fit did not go through latentkit.em.loop.run_em"
    n_rows = len(X)
    for run in runs:
        assert len(run.steps) == len(run.history), "one StepInfo per iteration"
        assert_run_monotone(run, n_rows)
    best = [r for r in runs if same_value(np.asarray(r.history), model.history_)]
    assert best, f"history_ {model.history_} is none of the runs' {[r.history for r in runs]}"
    if model.em_family.label is not None or not best[0].history:
        return
    final = objective_at_fit(model, X)
    required = best_guaranteed(best[0], n_rows)
    assert math.isfinite(final) and final >= required, (
        f"the fitted parameters are worse than an iterate of their run: objective {final!r} "
        f"< {required!r} (max(history_) less round-off and slack); lower_bound_ "
        f"{model.lower_bound_!r}, history {list(model.history_)}")


# -- property 4: save/load round trip ------------------------------------------------------


def assert_round_trip_bit_identical(model, X: np.ndarray) -> None:
    """save then load: the same saved state and bit-identical score_samples(X)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        output("save", model.save, path)
        loaded = output("load(save(model))", load, path)
    assert type(loaded) is type(model)
    before, after = model._saved_state(), loaded._saved_state()
    assert before.keys() == after.keys()
    for name in before:
        assert same_value(before[name], after[name]), f"saved {name} changed on load"
    a = output("score_samples(X)", model.score_samples, X)
    b = output("the loaded model's score_samples(X)", loaded.score_samples, X)
    assert same_value(a, b), f"score_samples differ after load: {a!r} vs {b!r}"
