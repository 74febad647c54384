"""Model selection, the ResultTable, and clustering scores."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score as sklearn_ari
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from latentkit.em import ConvergenceWarning
from latentkit.metrics import (
    ResultTable,
    Selection,
    adjusted_rand_score,
    cluster_purity,
    select_n_components,
)
from latentkit.metrics.selection import SelectionEdgeWarning
from latentkit.mixture.bernoulli import BernoulliMixture
from latentkit.mixture.gaussian import GaussianMixture

IGNORE_EDGE = pytest.mark.filterwarnings(
    "ignore::latentkit.metrics.selection.SelectionEdgeWarning")

PROTOTYPES = np.array([[0.9] * 10 + [0.1] * 10, [0.1] * 10 + [0.9] * 10, [0.9, 0.1] * 10])


def binary_data(n=600, seed=0):
    """n rows from three well-separated Bernoulli prototypes (weights 0.3, 0.3, 0.4)."""
    rng = np.random.default_rng(seed)
    z = rng.choice(3, size=n, p=[0.3, 0.3, 0.4])
    return (rng.random((n, 20)) < PROTOTYPES[z]).astype(float), z


@pytest.mark.parametrize("criterion", ["bic", "heldout"])
def test_picks_the_true_number_of_components(criterion):
    X, z = binary_data()
    X[np.random.default_rng(1).random(X.shape) < 0.1] = np.nan
    model = BernoulliMixture(random_state=0)
    selection = select_n_components(model, X, [1, 2, 3, 4, 5], criterion=criterion,
                                    random_state=0)
    assert isinstance(selection, Selection)
    assert selection.best_n_components == 3
    assert selection.best_model.n_components == 3
    assert not hasattr(model, "weights_")  # the given model is cloned, not fitted
    table = selection.table
    assert table.columns == ("n_components", criterion, "log_likelihood", "time_s", "converged")
    np.testing.assert_array_equal(table.column("n_components"), [1, 2, 3, 4, 5])
    values = table.column(criterion)
    assert values[2] == (values.max() if criterion == "heldout" else values.min())
    assert np.all(table.column("time_s") >= 0) and len(table.rows) == 5
    assert adjusted_rand_score(z, selection.best_model.predict(X)) > 0.9


@IGNORE_EDGE
def test_bic_and_aic_values_come_from_the_fitted_models():
    X, _ = binary_data(300)
    selection = select_n_components(BernoulliMixture(random_state=0), X, [2, 3], "aic")
    refit = BernoulliMixture(3, random_state=0).fit(X)
    assert selection.table.column("aic")[1] == pytest.approx(refit.aic(X))
    assert selection.table.column("log_likelihood")[1] == pytest.approx(refit.score(X))


@IGNORE_EDGE
def test_heldout_refits_the_winner_on_all_rows():
    X, _ = binary_data(400, seed=2)
    selection = select_n_components(BernoulliMixture(random_state=0), X, [3, 2], "heldout",
                                    test_size=0.3, random_state=5)
    full = BernoulliMixture(selection.best_n_components, random_state=0).fit(X)
    np.testing.assert_allclose(selection.best_model.means_, full.means_)
    again = select_n_components(BernoulliMixture(random_state=0), X, [3, 2], "heldout",
                                test_size=0.3, random_state=5)
    np.testing.assert_array_equal(again.table.column("heldout"),
                                  selection.table.column("heldout"))  # the split is seeded


def test_works_for_any_model_with_n_components():
    X, _ = make_blobs(n_samples=450, centers=3, cluster_std=0.6, random_state=0)
    selection = select_n_components(SklearnGaussianMixture(random_state=0), X, range(1, 6))
    assert selection.best_n_components == 3
    with pytest.raises(ValueError, match="criterion 'bic' needs a bic\\(\\) method"):
        select_n_components(PCA(), X, [1, 2])


def test_bad_arguments_are_named():
    X, _ = binary_data(50)
    model = BernoulliMixture()
    with pytest.raises(ValueError, match="criterion must be one of 'bic', 'aic', 'heldout'; "
                                         "got 'loglik'"):
        select_n_components(model, X, [1, 2], criterion="loglik")
    for bad in ([], [0, 1], [1.5], 3, "12", [True]):
        with pytest.raises(ValueError, match="candidates must be"):
            select_n_components(model, X, bad)
    with pytest.raises(ValueError, match="candidates must be distinct"):
        select_n_components(model, X, [2, 2])
    with pytest.raises(ValueError, match="an 'n_components' parameter"):
        select_n_components(ResultTableHolder(), X, [1])
    with pytest.raises(ValueError, match="test_size must be a fraction in \\(0, 1\\); got 1.5"):
        select_n_components(model, X, [1], criterion="heldout", test_size=1.5)


class ResultTableHolder:
    """An object with get_params but no n_components."""

    def get_params(self, deep=True):
        return {}


# -- ResultTable ---------------------------------------------------------------------------


def make_table():
    table = ResultTable(["model", "loglik", "n", "ok"], formats={"loglik": ".3f"},
                        title="Summary")
    table.add_row(["gmm", -1.23456, 10, True])
    table.add_row({"model": "b|m<m>", "loglik": float("nan"), "n": 200, "ok": None})
    return table


def test_result_table_text_is_aligned():
    text = str(make_table())
    assert text.splitlines() == [
        "Summary",
        "model   loglik    n  ok",
        "------  ------  ---  ---",
        "gmm     -1.235   10  yes",
        "b|m<m>     nan  200",
    ]


def test_result_table_markdown_and_html():
    table = make_table()
    assert table.to_markdown().splitlines() == [
        "| model | loglik | n | ok |",
        "| --- | ---: | ---: | --- |",
        "| gmm | -1.235 | 10 | yes |",
        "| b\\|m<m> | nan | 200 |  |",
    ]
    html = table.to_html()
    assert "<caption>Summary</caption>" in html and "b|m&lt;m&gt;" in html
    assert '<td class="num">-1.235</td>' in html and html.count("<tr>") == 3


def test_result_table_columns_and_errors():
    table = make_table()
    np.testing.assert_array_equal(table.column("n"), [10, 200])
    assert table.rows[0] == ("gmm", -1.23456, 10, True) and len(table) == 2
    with pytest.raises(KeyError, match="no column 'bic'"):
        table.column("bic")
    with pytest.raises(ValueError, match="a row must have 4 values"):
        table.add_row([1, 2])
    with pytest.raises(ValueError, match="a row mapping must have exactly the columns"):
        table.add_row({"model": "x"})
    with pytest.raises(ValueError, match="formats name unknown columns"):
        ResultTable(["a"], formats={"b": ".2f"})
    with pytest.raises(ValueError, match="column names must be distinct"):
        ResultTable(["a", "a"])


# -- clustering scores ---------------------------------------------------------------------


def test_cluster_purity_by_hand():
    labels_true = [0, 0, 0, 1, 1, 1, 2, 2]
    labels_pred = [5, 5, 7, 7, 7, 7, 9, 5]
    # cluster 5 holds classes (0, 0, 2): majority 2; cluster 7 (0, 1, 1, 1): 3; cluster 9: 1
    assert cluster_purity(labels_true, labels_pred) == pytest.approx(6 / 8)
    relabelled = [{5: "a", 7: "b", 9: "c"}[p] for p in labels_pred]
    assert cluster_purity(labels_true, relabelled) == pytest.approx(6 / 8)
    assert cluster_purity(labels_true, labels_true) == 1.0
    assert cluster_purity(labels_true, range(8)) == 1.0  # singletons: why it needs the ARI
    assert adjusted_rand_score is sklearn_ari


def test_cluster_purity_errors():
    with pytest.raises(ValueError, match="same length; got 3 and 2"):
        cluster_purity([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="at least one"):
        cluster_purity([], [])
    with pytest.raises(ValueError, match="1-D"):
        cluster_purity([[0, 1]], [[0, 1]])


# -- the size parameter comes from the registry -------------------------------------------


@pytest.fixture
def scratch_registry(monkeypatch):
    from latentkit import io, registry

    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    monkeypatch.setattr(io, "_REGISTRY", dict(io._REGISTRY))


@IGNORE_EDGE
def test_the_size_parameter_is_the_registry_spec_s(scratch_registry):
    """A model whose size is not `n_components` (latent classes: n_classes) is selected
    over the parameter its registry spec names, with no `param=`."""
    from latentkit.bayesnet import LatentClassModel
    from latentkit.datasets import make_categorical_mixture
    from latentkit.registry import ModelSpec, register

    class Classes(LatentClassModel):  # a class the registry does not know yet
        pass

    X = make_categorical_mixture(300, n_components=2, n_categories=(3, 3, 4, 2),
                                 random_state=0).X
    with pytest.raises(ValueError, match="an 'n_components' parameter"):
        select_n_components(Classes(random_state=0), X, [1, 2])  # not registered
    register(ModelSpec("classes", Classes, "latent classes", "wine", "wine",
                       size_param="n_classes", size_label="classes"))
    selection = select_n_components(Classes(random_state=0), X, [1, 2, 3])
    assert selection.param == "n_classes"
    assert selection.table.columns[:2] == ("n_classes", "bic")
    np.testing.assert_array_equal(selection.table.column("n_classes"), [1, 2, 3])
    assert selection.best_model.n_classes == selection.best_n_components
    by_hand = select_n_components(LatentClassModel(random_state=0), X, [1, 2, 3],
                                  param="n_classes")
    shipped = select_n_components(LatentClassModel(random_state=0), X, [1, 2, 3])  # lca
    np.testing.assert_array_equal(shipped.table.column("bic"), by_hand.table.column("bic"))
    np.testing.assert_array_equal(by_hand.table.column("bic"), selection.table.column("bic"))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_models_without_a_size_need_an_explicit_param():
    from latentkit.dynamics import LinearDynamicalSystem

    X = np.random.default_rng(0).normal(size=(60, 2))
    with pytest.raises(ValueError, match="has no size parameter.*pass param="):
        select_n_components(LinearDynamicalSystem(max_iter=5), X, [1, 2])
    selection = select_n_components(LinearDynamicalSystem(max_iter=5, random_state=0), X,
                                    [1, 2], param="state_dim")
    assert selection.param == "state_dim" and selection.best_model.state_dim in (1, 2)
    assert selection.table.column("state_dim").tolist() == [1, 2]


# -- where the search stopped, the seed, and warnings that name their candidate ------------


def five_blobs():
    """500 rows of 5 well-separated 2-D Gaussian clusters: BIC picks K=5."""
    X, _ = make_blobs(n_samples=500, centers=5, cluster_std=0.5, center_box=(-20, 20),
                      random_state=0)
    return X


def edge_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, SelectionEdgeWarning)]


def test_a_best_size_at_the_top_of_the_range_warns():
    X = five_blobs()
    with pytest.warns(SelectionEdgeWarning, match=r"the best n_components by bic is 3, the "
                      r"largest candidate tried \(1\.\.3\): the optimum may lie beyond; "
                      r"try a range reaching higher \(e\.g\. -k 1:6 on the command line, or "
                      r"candidates=range\(1, 7\)\)\.$") as caught:
        selection = select_n_components(GaussianMixture(), X, [1, 2, 3])
    assert selection.best_n_components == 3 and selection.at_edge
    assert caught[0].filename == __file__  # attributed to the caller
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        selection = select_n_components(GaussianMixture(), X, range(1, 9))
    assert selection.best_n_components == 5 and not selection.at_edge
    assert edge_warnings(caught) == []


def test_k1_winning_is_an_answer_but_a_higher_bottom_is_an_edge():
    X = np.random.default_rng(0).normal(size=(300, 2))  # one Gaussian: K=1 is the truth
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        selection = select_n_components(GaussianMixture(), X, [1, 2, 3])
    assert selection.best_n_components == 1 and not selection.at_edge
    assert edge_warnings(caught) == []
    with pytest.warns(SelectionEdgeWarning, match=r"is 2, the smallest candidate tried "
                      r"\(2, 4\): the optimum may lie below; .*-k 1:4 .*candidates=range\(1, 5\)"):
        selection = select_n_components(GaussianMixture(), X, [4, 2])
    assert selection.best_n_components == 2 and selection.at_edge
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        selection = select_n_components(GaussianMixture(), X, [2])  # one candidate: no range
    assert edge_warnings(caught) == [] and not selection.at_edge


def messy_selection(random_state=None, **model_params):
    """Sizes 2..4 of a mixture on structureless data, where EM's result depends on its
    random start."""
    X = np.random.default_rng(3).normal(size=(200, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", SelectionEdgeWarning)
        return select_n_components(GaussianMixture(max_iter=20, **model_params), X, [2, 3, 4],
                                   random_state=random_state)


def assert_same_results(first: ResultTable, second: ResultTable):
    for column in ("bic", "log_likelihood", "converged"):
        np.testing.assert_array_equal(first.column(column), second.column(column))
    assert first.title == second.title


def test_two_default_runs_print_the_same_table():
    first, second = messy_selection(), messy_selection()
    assert_same_results(first.table, second.table)
    assert first.random_state == 0 and "random_state=0" in first.table.title
    other = messy_selection(random_state=1)  # the seed matters here, so equality is earned
    assert not np.array_equal(other.table.column("bic"), first.table.column("bic"))
    assert other.random_state == 1 and "random_state=1" in other.table.title


def test_the_seed_is_recorded_and_replays_the_run():
    for rng in (np.random.default_rng(5), np.random.RandomState(5)):
        selection = messy_selection(random_state=rng)
        assert isinstance(selection.random_state, int)
        replay = messy_selection(random_state=selection.random_state)
        assert_same_results(selection.table, replay.table)
    assert messy_selection(random_state=7).best_model.random_state == 7  # None was seeded


def test_a_model_s_own_random_state_is_kept():
    X = five_blobs()
    selection = select_n_components(GaussianMixture(random_state=3), X, range(4, 7),
                                    random_state=9)
    assert selection.best_model.random_state == 3 and selection.random_state == 9
    refit = GaussianMixture(selection.best_n_components, random_state=3).fit(X)
    assert selection.table.column("bic")[1] == pytest.approx(refit.bic(X))


def test_bad_random_state_is_named():
    X = five_blobs()
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match=r"random_state must be None, an integer >= 0"):
            select_n_components(GaussianMixture(), X, [1, 2], random_state=bad)


def test_a_candidate_s_warnings_name_its_size():
    X = five_blobs()
    with pytest.warns(ConvergenceWarning) as caught:
        select_n_components(GaussianMixture(max_iter=1), X, [2, 3, 4, 5, 6])
    messages = {str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)}
    assert any(m.startswith("n_components=2: EM did not converge in max_iter=1")
               for m in messages)
    assert {m.split(":")[0] for m in messages} >= {"n_components=2", "n_components=3"}
    assert all(w.filename == __file__ for w in caught)
    assert all(w.category is ConvergenceWarning for w in caught if "EM did not" in
               str(w.message))  # the category is kept


def test_selection_still_unpacks_as_three():
    table, best_model, k = select_n_components(GaussianMixture(), five_blobs(), [4, 5, 6])
    assert k == 5 and best_model.n_components == 5 and table.column("n_components")[1] == 5
