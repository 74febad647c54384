"""Hostile values (issue 12, items 2 and 3).

Item 2: a column with no observed value (NaN in every row) is a clear error at fit in every
model, naming the column and the fix (drop it; `--drop NAME` on the command line), instead
of a confident model with a near-zero variance for it.

Item 3: a value whose square would overflow the data's dtype (beyond
`latentkit._validation.SCALE_LIMITS`: 1e150 for float64, 1e15 for float32) is a clear error
naming its row, column and value, at fit and at predict time, instead of NaN or -inf scores
and a RuntimeWarning; data below the limit still fits with finite scores; and the command
line never prints a non-finite metric with exit status 0.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.base import clone

from helpers import assert_user_error, run_cli
from latentkit import DiscreteBayesNet, GaussianMixture
from latentkit.exceptions import InvalidInputError
from latentkit.registry import registered_specs

SPECS = registered_specs()


def example(name: str, dtype=np.float64):
    """(unfitted model, X) of the spec's small synthetic problem, X a writable copy."""
    kwargs, X = SPECS[name].example(np.random.default_rng(0))
    return SPECS[name].cls(**kwargs), np.array(X, dtype=dtype)


def _takes_real_values(name: str) -> bool:
    """Whether the model takes real numbers rather than codes: its example data holds a
    non-integer value (binary and categorical models' examples are codes)."""
    X = np.asarray(SPECS[name].example(np.random.default_rng(0))[1], dtype=np.float64)
    observed = X[np.isfinite(X)]
    return not np.array_equal(observed, np.round(observed))


REAL_VALUED = [name for name in SPECS if SPECS[name].example is not None
               and _takes_real_values(name)]


def _write_csv(path, columns: dict) -> None:
    """A CSV of the given columns; NaN is written as an empty cell."""
    pd.DataFrame(columns).to_csv(path, index=False, na_rep="")


# -- item 2: a column with no observed value ------------------------------------------------


@pytest.mark.parametrize("name", ["gmm", "ppca", "fa", "mppca", "bmm", "cmm", "lds"])
def test_a_column_with_no_observed_value_is_refused_at_fit(name):
    model, X = example(name)
    X[:, 1] = np.nan
    with pytest.raises(InvalidInputError) as error:
        model.fit(X)
    message = str(error.value)
    assert "column 1 of X is entirely missing (NaN)" in message, message
    assert "column 1 is missing in" in message, message  # MixtureOfPPCA's own wording
    assert "np.delete(X, [1], axis=1), or --drop NAME on the command line" in message, message


def test_the_error_names_every_empty_column_of_a_frame():
    model, X = example("gmm")
    frame = pd.DataFrame(X, columns=["a", "b"]).assign(empty=np.nan, gone=np.nan)
    with pytest.raises(InvalidInputError, match=re.escape(
            "columns [2, 3] are missing in all 240 rows, so nothing can be learned about "
            "them. Drop them: X.drop(columns=['empty', 'gone']), or --drop empty,gone")):
        model.fit(frame)


def test_an_empty_column_is_refused_at_fit_but_marginalized_afterwards():
    """Fit refuses it; a fitted model scores a row with a missing coordinate by the
    marginal density of the observed one (independent truth: the 1-D mixture of the
    components' marginals)."""
    model, X = example("gmm")
    with pytest.raises(InvalidInputError, match="column 0 of X is entirely missing"):
        clone(model).fit(np.column_stack([np.full(len(X), np.nan), X]))
    model.fit(X)
    Y = X.copy()
    Y[:, 0] = np.nan
    sd = np.sqrt(model.covariances_[:, 1, 1])
    truth = logsumexp(np.log(model.weights_) + norm.logpdf(X[:, 1:2], model.means_[:, 1], sd),
                      axis=1)
    np.testing.assert_allclose(model.score_samples(Y), truth, rtol=1e-10)


def test_an_lds_column_needs_an_observation_in_some_sequence():
    model, X = example("lds")
    first, second = X[:70].copy(), X[70:].copy()
    first[:, 1] = np.nan
    assert np.isfinite(clone(model).fit([first, second]).score([first, second]))
    second[:, 1] = np.nan
    with pytest.raises(InvalidInputError, match=re.escape(
            "column 1 of X is entirely missing (NaN): column 1 is missing in every time step "
            "of every sequence")):
        model.fit([first, second])


def test_fit_on_a_csv_with_an_empty_column_exits_2_before_writing(tmp_path, capsys):
    _, X = example("gmm")
    csv = tmp_path / "empty.csv"
    _write_csv(csv, {"a": X[:, 0], "b": X[:, 1], "empty": np.nan})
    out = tmp_path / "out"
    assert_user_error(["fit", "gmm", csv, "--out", out], capsys,
                      "column 2 of X is entirely missing", "--drop empty")
    assert not (out / "model.npz").exists()
    code, _, err = run_cli(["fit", "gmm", csv, "--out", out, "-k", "3", "--drop", "empty",
                            "--quiet"], capsys)
    assert code == 0, err  # the advice works


# -- item 3: values whose squares overflow -----------------------------------------------


def test_the_limits_keep_a_sum_of_1e8_squares_finite():
    from latentkit._validation import SCALE_LIMITS

    assert SCALE_LIMITS == {np.dtype(np.float64): 1e150, np.dtype(np.float32): 1e15}
    for dtype, limit in SCALE_LIMITS.items():
        with np.errstate(over="raise"):
            total = dtype.type(limit) ** 2 * dtype.type(1e8)
        assert np.isfinite(total) and total < np.finfo(dtype).max


def _too_large(value, dtype) -> str:
    return (re.escape(f"contains {value:.6g} at row 3, column 1: too large for ")
            + rf".*overflow {np.dtype(dtype).name} beyond .*Rescale the data first")


@pytest.mark.parametrize("name", REAL_VALUED)
@pytest.mark.parametrize("dtype, huge", [(np.float64, 1e200), (np.float32, 1e30),
                                         (np.float64, -3e150)])
def test_a_value_whose_square_overflows_is_refused_at_fit(name, dtype, huge):
    model, X = example(name, dtype)
    X[3, 1] = huge
    with pytest.raises(InvalidInputError, match=_too_large(X[3, 1], dtype)):
        model.fit(X)


@pytest.mark.parametrize("name", REAL_VALUED)
def test_a_huge_value_is_refused_at_predict_time_too(name):
    model, X = example(name)
    model.fit(X)
    X[3, 1] = 1e200
    with pytest.raises(InvalidInputError, match=_too_large(1e200, np.float64)):
        model.score_samples(X)


def test_a_stream_refuses_a_huge_value_in_a_later_chunk():
    model, X = example("gmm")
    X[150, 1] = 1e200
    with pytest.raises(InvalidInputError, match="1e\\+200 at row 150, column 1: too large"):
        model.fit([X[:100], X[100:]])


@pytest.mark.parametrize("name", ["gmm", "pca"])
@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e100), (np.float64, 1e149),
                                          (np.float32, 1e14)])
def test_data_on_a_huge_scale_below_the_limit_fits_with_finite_scores(name, dtype, scale):
    """Independent truth: x -> c x divides a density on R^D by c^D and the fit is
    equivariant, so the mean log-likelihood drops by exactly D log c."""
    model, X = example(name, dtype)
    reference = clone(model).fit(X).score(X)
    big = X * dtype(scale)
    scores = model.fit(big).score_samples(big)
    assert np.all(np.isfinite(scores))
    rtol = 1e-6 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(scores.mean(), reference - X.shape[1] * math.log(scale),
                               rtol=rtol)


def test_pca_with_one_cell_at_1e100_fits_with_finite_variances():
    model, X = example("pca")
    X[3, 1] = 1e100
    model.fit(X)
    assert np.all(np.isfinite(model.explained_variance_))
    assert model.explained_variance_[0] == pytest.approx(1e200 / len(X), rel=1e-2)
    assert np.all(np.isfinite(model.score_samples(X)))


def test_evaluate_on_a_huge_value_exits_2(tmp_path, capsys):
    _, X = example("gmm")
    csv = tmp_path / "data.csv"
    _write_csv(csv, {"a": X[:, 0], "b": X[:, 1]})
    out = tmp_path / "out"
    assert run_cli(["fit", "gmm", csv, "--out", out, "-k", "3", "--quiet"], capsys)[0] == 0
    X[3, 1] = 1e200
    _write_csv(csv, {"a": X[:, 0], "b": X[:, 1]})
    assert_user_error(["evaluate", out / "model.npz", csv], capsys,
                      "1e+200 at row 3, column 1: too large for GaussianMixture")


def test_evaluate_refuses_a_non_finite_mean_log_likelihood(tmp_path, capsys):
    """A mixture of spread 1e-8 (reg_covar 1e-20) puts a point 1e149 away (below the scale
    limit) at a squared Mahalanobis distance near 1e314: log p(x) = -inf in float64.
    evaluate must say so (exit 2), not print a -inf row and exit 0."""
    X = np.random.default_rng(0).normal(size=(100, 2)) * 1e-8
    model = GaussianMixture(1, reg_covar=1e-20, random_state=0).fit(X)
    model.save(tmp_path / "model.npz")
    X[0, 0] = 1e149
    csv = tmp_path / "far.csv"
    _write_csv(csv, {"x0": X[:, 0], "x1": X[:, 1]})
    line = assert_user_error(["evaluate", tmp_path / "model.npz", csv], capsys,
                             "no finite fit to DATA", "mean log-likelihood -inf", notes=True)
    assert "score_samples" in line


def test_a_bayes_net_variable_with_no_observed_value_is_refused():
    from latentkit.bayesnet.demo import seed_network

    net = seed_network()
    X, _ = net.sample(100, random_state=0)
    X = np.asarray(X, dtype=np.float64)
    X[:, 2] = np.nan  # C never observed
    model = DiscreteBayesNet(edges=net.edges, cardinalities=net.cardinalities)
    with pytest.raises(InvalidInputError, match=r"no observed value of \['C'\].*hidden"):
        model.fit(X)
    hidden = DiscreteBayesNet(edges=net.edges, cardinalities=net.cardinalities,
                              hidden=["C"], random_state=0).fit(X[:, [0, 1, 3]])
    assert np.isfinite(hidden.score(X[:, [0, 1, 3]]))  # the fix the message names works
