"""The shared contract every registered model keeps (DESIGN section 2), as checks over a
`latentkit.registry.ModelSpec`.

Each check builds the model from the spec's own small synthetic problem (`spec.example`), so a
family registered anywhere — in latentkit or in a test file — is checked by calling them; see
test_contract.py (every shipped model) and test_extension.py (a family defined in a test).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from helpers import assert_monotone
from latentkit import em, load
from latentkit.base import EMModel
from latentkit.distributions import Categorical, Dirichlet, FactorizedCategorical, Gaussian
from latentkit.exceptions import InvalidParameterError


def problem(spec, dtype=np.float64):
    """(model, X): the spec's example problem, X cast to dtype."""
    kwargs, X = spec.example(np.random.default_rng(0))
    return spec.cls(**kwargs), np.asarray(X, dtype=dtype)


def fitted(spec, dtype=np.float64):
    model, X = problem(spec, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", em.ConvergenceWarning)
        return model.fit(X), X


def rows_of(model, X) -> int:
    """How many values score_samples gives for X: one per row, or one per sequence for a
    model whose rows are time steps of one sequence."""
    return 1 if getattr(model, "_rows_are_time_steps", False) else len(X)


def same_value(a, b) -> bool:
    """Bit-identical: arrays (dtype, shape, bytes), records field by field, else ==."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if dataclasses.is_dataclass(a) or hasattr(a, "_fields"):
        names = ([f.name for f in dataclasses.fields(a)] if dataclasses.is_dataclass(a)
                 else a._fields)
        return type(a) is type(b) and all(same_value(getattr(a, n), getattr(b, n))
                                          for n in names)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and (a == b or (a != a and b != b))


# -- the checks -------------------------------------------------------------------------------


def check_clone_and_params(spec):
    model, _ = problem(spec)
    params = model.get_params(deep=False)
    twin = clone(model)
    assert twin is not model
    assert same_value(list(twin.get_params(deep=False).items()), list(params.items()))
    rebuilt = spec.cls().set_params(**params)
    assert same_value(list(rebuilt.get_params(deep=False).items()), list(params.items()))


def check_fits_float32_and_float64_alike(spec):
    m64, X64 = fitted(spec, np.float64)
    m32, X32 = fitted(spec, np.float32)
    s64, s32 = m64.score_samples(X64), m32.score_samples(X32)
    assert s32.dtype == np.float32 and s64.dtype == np.float64
    assert np.isclose(float(np.mean(s32)), float(np.mean(s64)),
                      rtol=1e-3, atol=1e-3), (np.mean(s32), np.mean(s64))


def check_score_samples_is_finite_per_row(spec):
    model, X = fitted(spec)
    scores = model.score_samples(X)
    assert scores.shape == (rows_of(model, X),) and np.all(np.isfinite(scores))
    # score is the mean log-likelihood per row of X (per time step for a sequence model)
    assert np.isclose(model.score(X) * len(X), scores.sum(dtype=np.float64))


def check_posterior_is_a_normalised_distribution(spec):
    model, X = fitted(spec)
    try:
        post = model.posterior(X)
    except NotImplementedError as exc:
        assert str(exc), "a model without a posterior must say why"
        pytest.skip(f"{spec.cls.__name__} has no posterior: {exc}")
    if isinstance(post, Categorical | FactorizedCategorical):  # (n, K) or (n, L, K)
        np.testing.assert_allclose(post.probs.sum(axis=-1), 1.0, atol=1e-10)
        assert np.all(post.probs >= 0)
    elif isinstance(post, Dirichlet):
        assert np.all(post.concentration > 0) and np.all(np.isfinite(post.concentration))
        np.testing.assert_allclose(post.mean.sum(axis=1), 1.0, atol=1e-10)
    else:
        assert isinstance(post, Gaussian), type(post)
        cov = np.asarray(post.cov)
        np.testing.assert_allclose(cov, np.swapaxes(cov, -1, -2), atol=1e-10)
        assert np.all(np.linalg.eigvalsh(cov) > -1e-10)
        assert np.all(np.isfinite(post.mean))


def check_sample_shapes(spec):
    model, X = fitted(spec)
    draws, latents = model.sample(7, random_state=0)
    assert draws.shape == (7, X.shape[1]) and len(latents) == 7
    assert np.all(np.isfinite(draws))


def check_save_load_is_bit_identical(spec, tmp_path):
    model, X = fitted(spec)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load(path)
    assert type(loaded) is type(model)
    before, after = model._saved_state(), loaded._saved_state()
    assert before.keys() == after.keys()
    for name in before:
        assert same_value(before[name], after[name]), name
    assert same_value(model.score_samples(X), loaded.score_samples(X))


def check_monotone_history_for_exact_em(spec):
    model, X = fitted(spec)
    if not isinstance(model, EMModel) or model.em_family.objective != em.EXACT:
        pytest.skip(f"{spec.cls.__name__} is not fitted by exact EM")
    assert len(model.history_) == model.n_iter_ >= 1
    assert_monotone(model.history_)


def check_warm_start_after_load_continues_exactly(spec, tmp_path):
    """Fit 3 iterations, save, load, fit 3 more from there: the same as 6 at once — the EM
    state (em_state_) travels with the file."""
    model, X = problem(spec)
    if not isinstance(model, EMModel):
        pytest.skip(f"{spec.cls.__name__} is not an EM model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", em.ConvergenceWarning)
        whole = clone(model).set_params(max_iter=6, tol=0.0).fit(X)
        part = clone(model).set_params(max_iter=3, tol=0.0).fit(X)
        part.save(tmp_path / "part.npz")
        resumed = load(tmp_path / "part.npz").set_params(warm_start=True).fit(X)
    np.testing.assert_allclose(resumed.history_, whole.history_[3:], rtol=1e-12, atol=1e-12)


def check_partial_fit_after_load_continues_exactly(spec, tmp_path):
    """Two online-EM steps, save, load, two more: the same as the unsaved model — the
    running statistics (online_state_) travel with the file."""
    model, X = problem(spec)
    if not isinstance(model, EMModel):
        pytest.skip(f"{spec.cls.__name__} is not an EM model")
    batches = np.array_split(X, 4)
    for batch in batches[:2]:
        model.partial_fit(batch)
    model.save(tmp_path / "online.npz")
    loaded = load(tmp_path / "online.npz")
    for m in (model, loaded):
        for batch in batches[2:]:
            m.partial_fit(batch)
    assert same_value(loaded.history_, model.history_)
    before, after = model._saved_state(), loaded._saved_state()
    for name in before:
        assert same_value(before[name], after[name]), name


def check_chunk_size_invariance(spec):
    model, X = problem(spec)
    if not isinstance(model, EMModel):
        pytest.skip(f"{spec.cls.__name__} is not an EM model")
    histories = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", em.ConvergenceWarning)
        for chunk, threads in ((None, None), (17, None), (17, "1")):
            with _threads(threads):
                histories.append(clone(model).set_params(chunk_size=chunk, max_iter=5,
                                                         tol=0.0).fit(X).history_)
    for other in histories[1:]:
        np.testing.assert_allclose(other, histories[0], rtol=1e-10, atol=1e-10)


@contextlib.contextmanager
def _threads(value):
    """LATENTKIT_NUM_THREADS set to `value` (None: as it is) for the block."""
    old = os.environ.get("LATENTKIT_NUM_THREADS")
    if value is not None:
        os.environ["LATENTKIT_NUM_THREADS"] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LATENTKIT_NUM_THREADS", None)
        else:
            os.environ["LATENTKIT_NUM_THREADS"] = old


def check_documented_errors(spec):
    model, X = fitted(spec)
    with pytest.raises(ValueError, match="inf"):
        bad = X.copy()
        bad[1, 0] = np.inf
        clone(model).fit(bad)
    with pytest.raises(ValueError, match="feature|column"):
        model.score_samples(np.concatenate([X, X[:, :1]], axis=1))
    with pytest.raises(ValueError):
        clone(model).fit(X[None, None])  # 4-D: no model reads that
    with pytest.raises(TypeError, match="not_an_option"):
        spec.cls(not_an_option=1)
    if isinstance(model, EMModel):
        with pytest.raises(InvalidParameterError, match="max_iter"):
            clone(model).set_params(max_iter=-1).fit(X)


CHECKS = [check_clone_and_params, check_fits_float32_and_float64_alike,
          check_score_samples_is_finite_per_row, check_posterior_is_a_normalised_distribution,
          check_sample_shapes, check_save_load_is_bit_identical,
          check_monotone_history_for_exact_em, check_warm_start_after_load_continues_exactly,
          check_partial_fit_after_load_continues_exactly, check_chunk_size_invariance,
          check_documented_errors]


def run_check(check, spec, tmp_path):
    """Call one check with the arguments it takes."""
    if "tmp_path" in check.__code__.co_varnames[:check.__code__.co_argcount]:
        return check(spec, tmp_path)
    return check(spec)
