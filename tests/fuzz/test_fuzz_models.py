"""Property-based fuzzing of every registered model (issue 12).

For each model in `latentkit.registry.registered_specs()`, hypothesis draws random problems
inside the model's input domain (strategies.py: random shapes, scales from 1e-8 to 1e100,
constant columns, duplicated rows, missing patterns, random valid hyper-parameters) and checks:

1. fit succeeds or raises only a documented user error (properties.is_documented);
2. after a successful fit, score_samples, transform, posterior, predict, predict_proba,
   sample and impute work on the training data and give no NaN (nor inf: see
   properties.assert_outputs_have_no_nan);
3. exact EM: every run's objective is non-decreasing up to round-off (and an M-step's declared
   slack) outside re-seeding, and the fitted parameters are no worse than the best iterate
   less what EM may lose;
4. save/load is bit-identical.

Each property is its own test so that a failure of one does not hide another; properties 2-4
skip the examples whose fit raised (property 1 judges those). The profile (conftest.py) fixes
the examples: `ci` by default, `long` under `make test-all`.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from fuzz.properties import (
    assert_em_runs_monotone,
    assert_outputs_have_no_nan,
    assert_round_trip_bit_identical,
    fit_problem,
    is_documented,
    raised_at,
)
from fuzz.strategies import problems
from latentkit.base import EMModel
from latentkit.em import EXACT
from latentkit.registry import registered_specs

#: the models latentkit ships (a test may register its own, e.g. tests/contract's Poisson family)
SPECS = {name: spec for name, spec in registered_specs().items()
         if spec.cls.__module__.startswith("latentkit.")}
NAMES = sorted(SPECS)


def fitted_by_exact_em(spec) -> bool:
    """Whether the spec's model (with its example's arguments) is an EMModel whose family's
    objective is an exact log-likelihood (or MAP objective)."""
    kwargs, _ = spec.example(np.random.default_rng(0))
    model = spec.cls(**kwargs)
    return isinstance(model, EMModel) and model.em_family.objective == EXACT


#: properties a model does not hold yet, each an open defect with its reason; strict, so a
#: fix that makes the property hold is reported and must remove the entry
OPEN_DEFECTS: dict[tuple[str, str], str] = {}


def models(prop: str, names) -> list:
    """`names` as pytest params, the open defects of property `prop` marked strict xfail."""
    return [pytest.param(name, marks=pytest.mark.xfail(reason=OPEN_DEFECTS[prop, name],
                                                        strict=True))
            if (prop, name) in OPEN_DEFECTS else name for name in names]


EXACT_EM = [name for name in NAMES if fitted_by_exact_em(SPECS[name])]


def fitted_or_skip(data, name):
    """(model, X, runs) of a drawn problem whose fit succeeded; other examples are rejected."""
    problem = data.draw(problems(SPECS[name]), label="problem")
    try:
        model, runs = fit_problem(problem, SPECS[name].cls)
    except Exception:  # judged by test_fit_raises_only_documented_errors
        reject()
    return model, problem.X, runs


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_fit_raises_only_documented_errors(name, data):
    problem = data.draw(problems(SPECS[name]), label="problem")
    try:
        fit_problem(problem, SPECS[name].cls)
    except Exception as exc:
        if not is_documented(exc):
            raise AssertionError(
                f"{name}: fit raised an undocumented {type(exc).__module__}."
                f"{type(exc).__qualname__} at {raised_at(exc)}: {exc}") from exc


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_fitted_outputs_have_no_nan(name, data):
    model, X, _ = fitted_or_skip(data, name)
    assert_outputs_have_no_nan(model, X)


@pytest.mark.parametrize("name", models("exact_em", EXACT_EM))
@given(data=st.data())
def test_exact_em_never_lowers_its_objective(name, data):
    model, X, runs = fitted_or_skip(data, name)
    assert_em_runs_monotone(model, X, runs)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_save_load_round_trip_is_bit_identical(name, data):
    model, X, _ = fitted_or_skip(data, name)
    assert_round_trip_bit_identical(model, X)
