"""Shared test helpers for the properties every EM test checks (STYLE 11).

Import them as `from helpers import assert_monotone, assert_recovers` (tests/conftest.py puts
this folder on sys.path).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from latentkit.em import monotone_tolerance


def assert_monotone(history, dtype=np.float64) -> None:
    """Fail if the objective history (one value per EM iteration) ever decreases by more
    than round-off (`latentkit.em.monotone_tolerance` for `dtype`), or is not finite.

    history : (n_iter,) mean log-likelihood (or MAP objective) per iteration.
    """
    history = np.asarray(history, dtype=np.float64)
    if history.ndim != 1:
        raise AssertionError(f"history must be 1-D; got shape {history.shape}.")
    if not np.all(np.isfinite(history)):
        bad = int(np.flatnonzero(~np.isfinite(history))[0])
        raise AssertionError(f"history is not finite at iteration {bad + 1}: {history[bad]}.")
    for i in range(1, len(history)):
        drop = history[i - 1] - history[i]
        allowed = monotone_tolerance(history[i], dtype)
        if drop > allowed:
            raise AssertionError(
                f"objective decreased at iteration {i + 1}: {history[i - 1]:.12g} -> "
                f"{history[i]:.12g} (drop {drop:.3g} > allowed round-off {allowed:.3g} for "
                f"{np.dtype(dtype).name}).")


def assert_recovers(true, fitted, atol: float, permutation_invariant: bool = True) -> np.ndarray:
    """Assert that fitted component parameters match the true ones within `atol`.

    true, fitted : (K, ...) one row per component (e.g. means (K, D), weights[:, None]).
    With `permutation_invariant`, components are matched by the Hungarian algorithm
    (scipy.optimize.linear_sum_assignment) on the pairwise Euclidean distance of the
    flattened rows, then compared entry by entry. Returns `order` : (K,) such that
    fitted[order] lines up with true (use it to compare other parameters).
    """
    true = np.asarray(true, dtype=np.float64)
    fitted = np.asarray(fitted, dtype=np.float64)
    if true.shape != fitted.shape:
        raise AssertionError(f"shapes differ: true {true.shape}, fitted {fitted.shape}.")
    K = true.shape[0]
    if permutation_invariant:
        cost = cdist(true.reshape(K, -1), fitted.reshape(K, -1))
        _, order = linear_sum_assignment(cost)
    else:
        order = np.arange(K)
    np.testing.assert_allclose(
        fitted[order], true, atol=atol, rtol=0,
        err_msg=f"fitted components (matched order {order.tolist()}) differ from the truth")
    return order


def assert_imputes_conditional_mean(X_missing, filled, mean, covariance, atol=1e-10) -> None:
    """Fail unless each row of `filled` keeps the observed entries of `X_missing` and fills
    the NaNs with the Gaussian conditional mean μ_m + C_mo C_oo^{-1} (x_o - μ_o), solved
    densely row by row (the independent truth for a low-rank model's `impute`).

    X_missing, filled : (n, D); mean : (D,); covariance : (D, D) the model's marginal C.
    """
    for x, f in zip(X_missing, filled):
        o = ~np.isnan(x)
        m = ~o
        expected = mean[m] + covariance[np.ix_(m, o)] @ np.linalg.solve(
            covariance[np.ix_(o, o)], x[o] - mean[o])
        np.testing.assert_allclose(f[m], expected, atol=atol)
        np.testing.assert_array_equal(f[o], x[o])


def assert_resumes_after_save(model, X, tmp_path, first: int = 3, then: int = 15) -> None:
    """Fit `model` for `first` EM iterations, save and load it, then continue both the
    original and the loaded copy with warm_start up to `then` iterations: their histories
    and saved state must be bit-identical (the EM state, em_state_, travels with the file).
    """
    import warnings

    from latentkit import load
    from latentkit.em import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.set_params(max_iter=first, tol=0.0).fit(X)
        model.save(tmp_path / "resume.npz")
        loaded = load(tmp_path / "resume.npz")
        for m in (model, loaded):
            m.set_params(warm_start=True, max_iter=then, tol=0.0).fit(X)
    assert len(model.history_) == then
    np.testing.assert_array_equal(loaded.history_, model.history_)
    _assert_same_state(model._saved_state(), loaded._saved_state())


def assert_online_resumes_after_save(model, batches, tmp_path, split: int = 2) -> None:
    """partial_fit the first `split` batches, save and load, then partial_fit the rest on
    both: bit-identical histories and state (online_state_ travels with the file)."""
    from latentkit import load

    for batch in batches[:split]:
        model.partial_fit(batch)
    model.save(tmp_path / "online.npz")
    loaded = load(tmp_path / "online.npz")
    for m in (model, loaded):
        for batch in batches[split:]:
            m.partial_fit(batch)
    np.testing.assert_array_equal(loaded.history_, model.history_)
    _assert_same_state(model._saved_state(), loaded._saved_state())


def _assert_same_state(before: dict, after: dict) -> None:
    """Every saved value equal, records compared field by field."""
    import dataclasses

    assert before.keys() == after.keys()
    for name in before:
        a, b = before[name], after[name]
        if dataclasses.is_dataclass(a) or hasattr(a, "_fields"):
            a, b = _record_items(a), _record_items(b)
            _assert_same_state(a, b)
        elif isinstance(a, np.ndarray):
            np.testing.assert_array_equal(b, a, err_msg=name)
            assert a.dtype == b.dtype, name
        else:
            assert a == b or (a != a and b != b), name


def _record_items(record) -> dict:
    import dataclasses

    if dataclasses.is_dataclass(record):
        return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    return record._asdict()


# -- figures and the command line ---------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def traced_peak(fn, *args) -> int:
    """Bytes at the peak of what Python and numpy allocated (tracemalloc) during fn(*args)."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fitted_arrays(model) -> dict:
    """Every fitted float array of a model (its parameters) by name, history_ aside."""
    return {name: value for name, value in vars(model).items()
            if name.endswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f"
            and name != "history_"}


def assert_same_fit(fit, reference, rtol: float = 1e-10, atol: float = 1e-10) -> None:
    """Two fits made the same iterations: n_iter_, the objective trajectory and every fitted
    float array agree to (rtol, atol)."""
    assert fit.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(fit.history_, reference.history_, rtol=rtol, atol=atol)
    mine, theirs = fitted_arrays(fit), fitted_arrays(reference)
    assert mine.keys() == theirs.keys() and mine
    for name in theirs:
        np.testing.assert_allclose(mine[name], theirs[name], rtol=rtol, atol=atol,
                                   err_msg=name)


def assert_png(path, min_side: int = 300, max_side: int = 2500) -> None:
    """A real PNG picture: the signature, a sane size from the IHDR chunk, some content (an
    empty canvas is a few kB)."""
    import struct
    from pathlib import Path

    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert min_side <= width <= max_side and min_side <= height <= max_side, (width, height)
    assert len(data) > 5_000, f"{path} is nearly empty"


def three_blobs() -> np.ndarray:
    """(240, 2): three correlated Gaussian blobs, for figure tests."""
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [6.0, 2.0], [2.0, 7.0]])
    return np.concatenate([rng.multivariate_normal(m, [[1.0, 0.6], [0.6, 1.5]], 80)
                           for m in means])


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of `latentkit argv`, run in-process."""
    from latentkit.cli.main import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(argv, capsys, *fragments, notes: bool = False) -> str:
    """`latentkit argv` is a user mistake: exit 2 and one line `latentkit: error: ...`
    holding every fragment, no traceback (`notes`: notes may come before that line).
    Returns the line."""
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert notes or len(lines) == 1, err
    assert lines[-1].startswith("latentkit: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


def load_or_skip(loader: str):
    """A bundled real dataset (`latentkit.datasets.<loader>()`), or skip the test where its
    file is absent (a checkout without shared/data: see shared/data/SOURCES.md)."""
    import pytest

    from latentkit import datasets

    try:
        return getattr(datasets, loader)()
    except FileNotFoundError as error:
        pytest.skip(f"{loader}: {error}"[:200])


def hide_datasets(monkeypatch, *loaders: str, path: str = "x") -> None:
    """Make `latentkit.datasets.<loader>` raise as when its file is absent (a checkout
    without shared/data), for each loader named; the message names `path`."""
    from latentkit import datasets

    def absent(*args, **kwargs):
        raise FileNotFoundError(f"Data file '{path}' was not found.\nLooked in: nowhere")

    for loader in loaders:
        monkeypatch.setattr(datasets, loader, absent)
