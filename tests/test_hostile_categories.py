"""Sizes taken from data values are bounded (issue 12, items 1, 6 and 8b): a stray category
code, a huge n_categories or cardinality, a column of thousands of distinct names, complex
numbers, each is a clear user error raised before anything of that size is allocated, in
the model's own vocabulary.

Each test runs under `memory_guard`: the address space may grow by at most 2 GiB, so code
that tries to allocate the size it was given fails the test with a MemoryError instead of
being killed; and it must raise within `QUICK` seconds.
"""

from __future__ import annotations

import os
import resource
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from tests.helpers import assert_user_error

from latentkit import (
    BernoulliMixture,
    CategoricalMixture,
    DiscreteBayesNet,
    LatentClassModel,
)
from latentkit._states import (
    MAX_CATEGORIES,
    MAX_TOTAL_LEVELS,
)
from latentkit.exceptions import InvalidInputError, InvalidParameterError

QUICK = 10.0  # seconds: validation, not allocation (generous for a loaded 2-core CI machine)
SMALL = [[0, 1], [1, 0], [1, 1], [0, 0]]


@contextmanager
def memory_guard(extra_bytes: int = 2 * 2**30):
    """Cap this process's address space at its current size + extra_bytes, and time the
    block (at most QUICK seconds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:  # Linux; elsewhere only the time is checked
        with open("/proc/self/statm") as f:
            cap = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE") + extra_bytes
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard < 0 else min(cap, hard), hard))
    except (OSError, ValueError):
        pass
    start = time.perf_counter()
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert time.perf_counter() - start < QUICK


def raises(error, *fragments):
    """pytest.raises(error) under the memory guard, then every fragment in the message."""
    @contextmanager
    def check():
        with memory_guard(), pytest.raises(error) as info:
            yield info
        for fragment in fragments:
            assert fragment in str(info.value), (fragment, str(info.value))
    return check()


# -- codes --------------------------------------------------------------------------------


@pytest.mark.parametrize("code, shown", [(1e8, "1e+08"), (1e9, "1e+09"), (1e300, "1e+300")])
def test_huge_code_is_a_clear_error(code, shown):
    with raises(InvalidInputError, f"X[:, 0] holds the code {shown}", "(row 2)",
                f"L <= {MAX_CATEGORIES} (MAX_CATEGORIES)", "factorize"):
        CategoricalMixture(2).fit([[0, 1], [1, 0], [code, 1]])


def test_huge_code_at_predict_time_and_in_a_stream():
    model = CategoricalMixture(2, random_state=0).fit(SMALL)
    with raises(InvalidInputError, "is not a valid category code", "integer codes 0..1"):
        model.predict([[0, 1e300]])
    with raises(InvalidInputError, "X[:, 1] holds the code 1e+09"):
        chunks = [np.array(SMALL, float), np.array([[0, 1e9]])]
        CategoricalMixture(2).fit(lambda: iter(chunks))


@pytest.mark.parametrize("value, fragment", [
    (-1.0, "Negative values in data: X[2, 0] = -1.0"),
    (-1e300, "Negative values in data: X[2, 0] = -1e+300"),
    (0.5, "X[2, 0] = 0.5 is not a valid category code"),
    (np.inf, "inf"),
])
def test_bad_codes_are_clear_errors(value, fragment):
    with raises(InvalidInputError, fragment):
        CategoricalMixture(2).fit([[0, 1], [1, 0], [value, 1]])


def test_code_at_the_limit_is_accepted_above_it_refused():
    X = np.array([[0.0], [MAX_CATEGORIES - 1]])
    assert CategoricalMixture(1).fit(X).n_categories_[0] == MAX_CATEGORIES
    with raises(InvalidInputError, f"holds the code {MAX_CATEGORIES}"):
        CategoricalMixture(1).fit(X + 1)


# -- sizes given as parameters ------------------------------------------------------------


def test_huge_n_categories_is_a_clear_error():
    with raises(InvalidParameterError, "n_categories[0] = 1000000000000", "MAX_CATEGORIES",
                "factorize"):
        CategoricalMixture(2, n_categories=[10**12, 3, 3]).fit([[0, 1, 1], [1, 0, 2]])


def test_huge_bayesnet_cardinality_is_a_clear_error():
    net = DiscreteBayesNet(edges=[("a", "b")], cardinalities={"a": 10**12, "b": 2})
    with raises(InvalidParameterError, "the cardinality of 'a' is 1000000000000",
                "MAX_CATEGORIES"):
        net.fit(np.array(SMALL))


def test_bayesnet_cpt_size_is_bounded():
    cards = {"a": 1000, "b": 1000, "c": 1000, "d": 2}
    edges = [("a", "d"), ("b", "d"), ("c", "d")]
    with raises(InvalidParameterError, "the CPT of 'd' would have 2000000000 entries",
                "MAX_TABLE_ENTRIES"):
        DiscreteBayesNet(edges=edges, cardinalities=cards).fit(np.zeros((2, 4)))


def test_bayesnet_clique_size_is_bounded():
    """Every pair of eight 10-state parents has a child: small CPTs, but the moral graph
    joins all eight, so inference needs a clique of 10**8 entries."""
    parents = [f"x{i}" for i in range(8)]
    cards = {p: 10 for p in parents}
    edges = []
    for i in range(8):
        for j in range(i + 1, 8):
            cards[f"y{i}{j}"] = 2
            edges += [(parents[i], f"y{i}{j}"), (parents[j], f"y{i}{j}")]
    net = DiscreteBayesNet(edges=edges, cardinalities=cards)
    with raises(InvalidParameterError, "clique", "MAX_TABLE_ENTRIES"):
        net.fit(np.zeros((2, len(cards))))


def test_total_levels_and_parameter_size_are_bounded():
    wide = np.full((2, 11), MAX_CATEGORIES - 1.0)  # 11 columns of 10_000 levels
    assert 11 * MAX_CATEGORIES > MAX_TOTAL_LEVELS
    with raises(InvalidInputError, "110000 levels in all", "MAX_TOTAL_LEVELS"):
        CategoricalMixture(1).fit(wide)
    tall = np.zeros((1001, 1))
    tall[0] = MAX_CATEGORIES - 1  # 1001 components * 10_000 levels > MAX_TABLE_ENTRIES
    with raises(InvalidParameterError, "n_components=1001 components", "MAX_TABLE_ENTRIES"):
        CategoricalMixture(1001).fit(tall)
    with raises(InvalidParameterError, "n_classes=1001 classes", "use fewer classes"):
        LatentClassModel(1001).fit(tall)


# -- state names --------------------------------------------------------------------------


def test_too_many_distinct_names_is_a_clear_error():
    ids = np.array([f"id{i}" for i in range(MAX_CATEGORIES + 1)], dtype=object)
    frame = pd.DataFrame({"user": ids, "color": np.resize(["red", "blue"], len(ids))})
    with raises(InvalidInputError, "X['user'] holds 10001 distinct state names",
                "MAX_CATEGORIES", "identifier"):
        CategoricalMixture(2).fit(frame)
    with raises(InvalidInputError, "pandas Categorical with 10001 categories"):
        CategoricalMixture(2).fit(frame.astype("category"))


# -- kinds of error and vocabulary ------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: np.array(SMALL, dtype=complex),
    lambda: [[0, 1j], [1, 0]],
    lambda: pd.DataFrame({"a": [0, 1], "b": [1j, 0]}),
], ids=["array", "list", "frame"])
def test_complex_bayesnet_data_is_a_clear_error(make):
    net = DiscreteBayesNet(edges=[("a", "b")], cardinalities={"a": 2, "b": 2})
    with raises(InvalidInputError, "complex", "X.real"):
        net.fit(make())
    fitted = DiscreteBayesNet(edges=[("a", "b")], cardinalities={"a": 2, "b": 2}).fit(
        np.array(SMALL))
    with raises(InvalidInputError, "evidence['b'] holds the complex number 1j", "X.real"):
        fitted.posterior_marginal("a", evidence={"b": 1j})


def test_complex_and_huge_values_in_the_other_models():
    with raises(InvalidInputError, "omplex"):
        CategoricalMixture(2).fit(np.array(SMALL, dtype=complex))
    with raises(InvalidInputError, "every entry must be 0, 1 or NaN"):
        BernoulliMixture(2).fit([[0, 1], [1, 0], [1e300, 1]])
    with raises(InvalidInputError, "omplex"):
        BernoulliMixture(2).fit(np.array(SMALL, dtype=complex))


def test_latent_class_model_speaks_of_classes():
    with raises(InvalidInputError, "n_classes=500 must be <= n_samples=4",
                "fit 500 classes", "Use fewer classes") as info:
        LatentClassModel(n_classes=500).fit(SMALL)
    assert "component" not in str(info.value)
    assert "classes" in LatentClassModel.em_family.remedy
    assert "component" not in LatentClassModel.em_family.remedy


# -- the command line ---------------------------------------------------------------------


def test_cli_fit_cmm_with_a_huge_code(tmp_path, capsys):
    csv = tmp_path / "codes.csv"
    pd.DataFrame({"a": [0, 1, 1e9, 1], "b": [1, 0, 1, 0]}).to_csv(csv, index=False)
    with memory_guard():
        assert_user_error(["fit", "cmm", csv, "-k", "2", "-q", "-o", tmp_path / "r"], capsys,
                          "holds the code 1e+09", "MAX_CATEGORIES")
