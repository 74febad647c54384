"""The contract suite: every model latentkit registers keeps the shared contract (checks.py).
Family test files keep only what is specific to their family."""

import pytest

from contract.checks import CHECKS, run_check
from latentkit.registry import registered_specs

SPECS = registered_specs()


def test_every_registered_model_has_an_example_problem():
    missing = [name for name, spec in SPECS.items() if spec.example is None]
    assert not missing, f"specs without an example problem: {missing}"


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__[6:] for c in CHECKS])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_contract(name, check, tmp_path):
    run_check(check, SPECS[name], tmp_path)
