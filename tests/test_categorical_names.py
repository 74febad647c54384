"""State names as first-class categorical data: CategoricalMixture, LatentClassModel and
DiscreteBayesNet fitted on strings against the same models fitted on the equivalent integer
codes (the independent truth: the codes are written by hand from sorted name lists, never by
the library's encoder), the names-in-names-out outputs, the unknown-state error and the save
and load round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import latentkit
from latentkit import CategoricalMixture
from latentkit._states import (
    PackedStates,
    decode,
    encode_column,
    learn_states,
    pack_states,
    unpack_states,
)
from latentkit.bayesnet import DiscreteBayesNet, LatentClassModel
from latentkit.exceptions import InvalidInputError

pytestmark = [pytest.mark.filterwarnings("ignore::latentkit.ConvergenceWarning"),
              # arrays of codes given on purpose to models fitted on a DataFrame
              pytest.mark.filterwarnings("ignore:X does not have valid feature names")]

#: state names of each column, sorted (so that name l of a column has code l)
NAMES = {"color": ["blue", "green", "red"], "size": ["L", "M", "S", "XL"], "pet": ["cat", "dog"]}
COLUMNS = list(NAMES)
MISSING_MARKERS = [None, np.nan, pd.NA]


def planted_codes(n=400, seed=0, missing=0.1):
    """(n, 3) float codes from a 2-component mixture with a share of NaN."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n)
    levels = [len(NAMES[c]) for c in COLUMNS]
    probs = [rng.dirichlet(np.full(L, 0.7), size=2) for L in levels]
    X = np.column_stack([[rng.choice(L, p=p[k]) for k in z] for L, p in zip(levels, probs)])
    X = X.astype(np.float64)
    X[rng.random(X.shape) < missing] = np.nan
    return X


def as_names(codes, columns=COLUMNS):
    """The codes written as names by hand (object array), missing markers varied."""
    out = np.empty(codes.shape, dtype=object)
    for j, column in enumerate(columns):
        for i, code in enumerate(codes[:, j]):
            out[i, j] = (MISSING_MARKERS[i % 3] if np.isnan(code)
                         else NAMES[column][int(code)])
    return out


def as_frame(codes, index=None):
    return pd.DataFrame(as_names(codes), columns=COLUMNS, index=index)


def by_hand(codes, columns=COLUMNS):
    """Codes -> names, None for missing: the truth that `decode` is checked against."""
    return np.array([[None if np.isnan(c) else NAMES[col][int(c)]
                      for c, col in zip(row, columns)] for row in codes], dtype=object)


MODELS = [lambda: CategoricalMixture(2, random_state=0, max_iter=30, tol=0.0),
          lambda: LatentClassModel(2, random_state=0, max_iter=30, tol=0.0)]
MODEL_IDS = ["mixture", "latent_class"]


def assert_same_fit(named, coded):
    for attr in ("weights_", "probs_", "history_"):
        np.testing.assert_allclose(getattr(named, attr), getattr(coded, attr), rtol=1e-12,
                                   atol=1e-12)
    assert named.lower_bound_ == pytest.approx(coded.lower_bound_, rel=1e-12)
    np.testing.assert_array_equal(named.n_categories_, coded.n_categories_)


# -- the shared helper --------------------------------------------------------------------


def test_learn_encode_decode_and_pack():
    column = np.array(["b", None, "a", "c", np.nan, "a"], dtype=object)
    states = learn_states(column)
    assert states.tolist() == ["a", "b", "c"]
    codes = encode_column(column, states)
    np.testing.assert_array_equal(codes, [1, np.nan, 0, 2, np.nan, 0])
    assert decode(codes, states).tolist() == ["b", None, "a", "c", None, "a"]
    categorical = pd.Series(pd.Categorical(["lo", "hi", None], categories=["lo", "mid", "hi"]))
    assert learn_states(categorical).tolist() == ["lo", "mid", "hi"]  # order kept
    np.testing.assert_array_equal(encode_column(categorical, ["lo", "mid", "hi"]), [0, 2, np.nan])
    assert learn_states(np.array([1.0, 2.0])) is None  # numbers are codes
    with pytest.raises(InvalidInputError, match="mixes state names and numbers"):
        learn_states(np.array(["a", 3], dtype=object))
    listed = [np.array(["a", "b"], dtype=object), None, np.array(["x"], dtype=object)]
    packed = pack_states(listed)
    assert isinstance(packed, PackedStates) and packed.lengths.tolist() == [2, -1, 1]
    back = unpack_states(packed)
    assert back[1] is None and [b.tolist() for b in (back[0], back[2])] == [["a", "b"], ["x"]]
    assert unpack_states(pack_states({"A": ("no", "yes")})) == {"A": ("no", "yes")}
    assert unpack_states(pack_states({})) == {}


def test_unknown_state_error_names_column_row_value_and_states():
    with pytest.raises(InvalidInputError) as info:
        encode_column(np.array(["a", "zz"], dtype=object), ["a", "b"], "X['c']", "column 'c'")
    message = str(info.value)
    for fragment in ("X['c'][1]", "'zz'", "column 'c'", "['a', 'b']"):
        assert fragment in message


# -- CategoricalMixture and LatentClassModel ----------------------------------------------


@pytest.mark.parametrize("make", MODELS, ids=MODEL_IDS)
@pytest.mark.parametrize("container", ["frame", "object_array"])
def test_fit_on_names_equals_fit_on_codes(make, container):
    codes = planted_codes()
    data = as_frame(codes) if container == "frame" else as_names(codes)
    named, coded = make().fit(data), make().fit(codes)
    assert_same_fit(named, coded)
    assert [list(c) for c in named.categories_] == [NAMES[c] for c in COLUMNS]
    assert coded.categories_ is None
    np.testing.assert_allclose(named.score_samples(data), coded.score_samples(codes),
                               rtol=1e-12)
    np.testing.assert_allclose(named.predict_proba(data), coded.predict_proba(codes),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(named.predict(data), coded.predict(codes))
    np.testing.assert_allclose(named.transform(data), coded.transform(codes), atol=1e-15)
    assert named.score(data) == pytest.approx(coded.score(codes), rel=1e-12)
    assert named.bic(data) == pytest.approx(coded.bic(codes), rel=1e-12)
    assert named.aic(data) == pytest.approx(coded.aic(codes), rel=1e-12)
    np.testing.assert_allclose(named.score_samples(codes), coded.score_samples(codes))


def test_categorical_columns_keep_their_order_and_unobserved_categories():
    codes = planted_codes(seed=1)
    order = ["red", "blue", "green", "purple"]  # not sorted; "purple" never observed
    frame = as_frame(codes)
    frame["color"] = pd.Categorical(frame["color"], categories=order)
    model = CategoricalMixture(2, random_state=0, max_iter=20, tol=0.0).fit(frame)
    assert list(model.categories_[0]) == order
    assert model.n_categories_.tolist() == [4, 4, 2]
    recoded = codes.copy()
    observed = ~np.isnan(codes[:, 0])
    recoded[observed, 0] = [order.index(NAMES["color"][int(c)]) for c in codes[observed, 0]]
    coded = CategoricalMixture(2, n_categories=[4, 4, 2], random_state=0, max_iter=20,
                               tol=0.0).fit(recoded)
    assert_same_fit(model, coded)


def test_mixed_frame_numeric_columns_are_codes():
    codes = planted_codes(seed=2)
    frame = as_frame(codes)
    frame["size"] = codes[:, 1]  # a column of codes beside columns of names
    model = CategoricalMixture(2, random_state=0, max_iter=20, tol=0.0).fit(frame)
    assert model.categories_[1] is None and list(model.categories_[2]) == NAMES["pet"]
    coded = CategoricalMixture(2, random_state=0, max_iter=20, tol=0.0).fit(codes)
    assert_same_fit(model, coded)
    filled = model.impute(frame)
    assert filled["size"].dtype == np.float64  # codes stay numeric
    truth = coded.impute(codes)
    np.testing.assert_array_equal(filled["size"].to_numpy(), truth[:, 1])
    assert filled["pet"].tolist() == by_hand(truth)[:, 2].tolist()
    with pytest.raises(InvalidInputError, match=r"X\['size'\] holds state names, but "
                       "column 'size' held integer codes"):
        model.predict(as_frame(codes))


@pytest.mark.parametrize("make", MODELS, ids=MODEL_IDS)
def test_impute_names_equals_decoded_impute_of_codes(make):
    codes = planted_codes(missing=0.25)
    index = pd.Index([f"r{i}" for i in range(len(codes))], name="id")
    frame = as_frame(codes, index=index)
    named, coded = make().fit(frame), make().fit(codes)
    truth = by_hand(coded.impute(codes))
    out = named.impute(frame)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(index) and list(out.columns) == COLUMNS
    assert out.to_numpy(dtype=object).tolist() == truth.tolist()
    array_out = named.impute(as_names(codes))
    assert isinstance(array_out, np.ndarray) and array_out.dtype == object
    assert array_out.tolist() == truth.tolist()
    np.testing.assert_array_equal(named.impute(codes), coded.impute(codes))  # codes in, out


def test_unknown_state_raises_naming_column_row_value_and_known_states():
    codes = planted_codes()
    frame = as_frame(codes)
    model = CategoricalMixture(2, random_state=0, max_iter=5).fit(frame)
    bad = frame.copy()
    bad.loc[7, "size"] = "XXL"
    for method in ("predict", "predict_proba", "score_samples", "impute", "transform"):
        with pytest.raises(InvalidInputError) as info:
            getattr(model, method)(bad)
        message = str(info.value)
        for fragment in ("X['size'][7]", "'XXL'", "column 'size'", str(NAMES["size"])):
            assert fragment in message, (method, message)
    array = as_names(codes)
    array[3, 2] = "fish"
    with pytest.raises(InvalidInputError, match=r"X\[:, 2\]\[3\] = 'fish' is not a state of "
                       r"column 2; its states are \['cat', 'dog'\]"):
        model.predict(array)
    coded = CategoricalMixture(2, random_state=0, max_iter=5).fit(codes)
    with pytest.raises(InvalidInputError, match="fitted on integer codes"):
        coded.predict(frame)
    with pytest.raises(ValueError, match="The feature names should match"):
        model.predict(frame[COLUMNS[::-1]])


def test_sample_gives_names():
    codes = planted_codes()
    named = CategoricalMixture(2, random_state=0, max_iter=10).fit(as_frame(codes))
    coded = CategoricalMixture(2, random_state=0, max_iter=10).fit(codes)
    X, z = named.sample(50, random_state=3)
    X_codes, z_codes = coded.sample(50, random_state=3)
    assert isinstance(X, pd.DataFrame) and list(X.columns) == COLUMNS
    assert X.to_numpy(dtype=object).tolist() == by_hand(X_codes).tolist()
    np.testing.assert_array_equal(z, z_codes)
    np.testing.assert_array_equal(named.sample(50, random_state=3, as_names=False)[0],
                                  X_codes)
    from_array = CategoricalMixture(2, random_state=0, max_iter=10).fit(as_names(codes))
    X_array, _ = from_array.sample(50, random_state=3)
    assert isinstance(X_array, np.ndarray) and X_array.tolist() == by_hand(X_codes).tolist()
    with pytest.raises(ValueError, match="no state names"):
        coded.sample(5, as_names=True)


@pytest.mark.parametrize("make, index_name", list(zip(MODELS, ["component", "class"])),
                         ids=MODEL_IDS)
def test_category_probs_labelled(make, index_name):
    model = make().fit(as_frame(planted_codes()))
    for j, column in enumerate(COLUMNS):
        table = model.category_probs(column, as_frame=True)
        assert list(table.columns) == NAMES[column] and table.columns.name == column
        assert table.index.name == index_name and len(table) == 2
        np.testing.assert_array_equal(table.to_numpy(), model.category_probs(j))


@pytest.mark.parametrize("make", MODELS, ids=MODEL_IDS)
def test_save_load_round_trip_with_names(make, tmp_path):
    codes = planted_codes(missing=0.2)
    frame = as_frame(codes)
    model = make().fit(frame)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = latentkit.load(path)
    assert [list(c) for c in loaded.categories_] == [NAMES[c] for c in COLUMNS]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    pd.testing.assert_frame_equal(loaded.impute(frame), model.impute(frame))
    mixed = frame.copy()
    mixed["size"] = codes[:, 1]
    model = make().fit(mixed)
    model.save(path)
    loaded = latentkit.load(path)
    assert loaded.categories_[1] is None
    pd.testing.assert_frame_equal(loaded.impute(mixed), model.impute(mixed))
    coded = make().fit(codes)
    coded.save(path)
    assert latentkit.load(path).categories_ is None


def test_partial_fit_on_names_equals_partial_fit_on_codes():
    codes = planted_codes(n=600)
    named = CategoricalMixture(2, random_state=0)
    coded = CategoricalMixture(2, random_state=0)
    for start in range(0, 600, 200):
        named.partial_fit(as_frame(codes[start:start + 200]))
        coded.partial_fit(codes[start:start + 200])
    assert_same_fit(named, coded)


def test_latent_class_to_bayesnet_keeps_state_names():
    frame = as_frame(planted_codes())
    lcm = LatentClassModel(2, random_state=0, max_iter=20).fit(frame)
    net = lcm.to_bayesnet()
    assert net.variable_states["color"] == tuple(NAMES["color"])
    np.testing.assert_allclose(net.score_samples(frame), lcm.score_samples(frame),
                               rtol=1e-10, atol=1e-12)  # a row with nothing observed: 0


# -- DiscreteBayesNet ---------------------------------------------------------------------

EDGES = [("color", "size"), ("color", "pet")]
CARDS = {"color": 3, "size": 4, "pet": 2}


def network(**kwargs):
    return DiscreteBayesNet(edges=EDGES, cardinalities=CARDS, random_state=0, max_iter=20,
                            tol=0.0, **kwargs)


def test_bayesnet_learns_sorted_names_and_fits_as_on_codes(tmp_path):
    codes = planted_codes(missing=0.15)
    frame = as_frame(codes)
    named, coded = network().fit(frame), network().fit(codes)
    assert named.learned_state_names_ == {c: tuple(NAMES[c]) for c in COLUMNS}
    assert coded.learned_state_names_ == {}
    np.testing.assert_allclose(named.cpt_values_, coded.cpt_values_, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(named.history_, coded.history_, rtol=1e-12)
    truth = by_hand(coded.impute(codes))
    filled = named.impute(frame)
    assert isinstance(filled, pd.DataFrame)
    assert filled.to_numpy(dtype=object).tolist() == truth.tolist()
    assert named.impute(as_names(codes)).tolist() == truth.tolist()
    path = tmp_path / "net.npz"
    named.save(path)
    loaded = latentkit.load(path)
    assert loaded.learned_state_names_ == named.learned_state_names_
    pd.testing.assert_frame_equal(loaded.impute(frame), filled)
    np.testing.assert_array_equal(loaded.predict(frame, "color"), named.predict(frame, "color"))
    assert (loaded.sample(5, random_state=1)[0].tolist()
            == named.sample(5, random_state=1)[0].tolist())


def test_bayesnet_save_keeps_the_variable_order(tmp_path):
    """cardinalities' order is the variable order (CPT layout, data columns); the file's
    JSON header sorts dict keys, so the order is saved beside it."""
    codes = planted_codes()
    net = DiscreteBayesNet(edges=[("pet", "color")], cardinalities={"pet": 2, "color": 3},
                           random_state=0, max_iter=5).fit(codes[:, [2, 0]])
    net.save(tmp_path / "net.npz")
    loaded = latentkit.load(tmp_path / "net.npz")
    assert loaded.variables == ("pet", "color")
    for name in ("pet", "color"):
        np.testing.assert_array_equal(loaded.cpts_[name], net.cpts_[name])
    np.testing.assert_array_equal(loaded.score_samples(codes[:, [2, 0]]),
                                  net.score_samples(codes[:, [2, 0]]))


def test_bayesnet_posterior_series_and_frames():
    codes = planted_codes()
    net = network().fit(as_frame(codes))
    series = net.posterior_marginal("size", {"color": "red"}, as_series=True)
    assert isinstance(series, pd.Series) and series.name == "size"
    assert list(series.index) == NAMES["size"]
    np.testing.assert_array_equal(series.to_numpy(), net.posterior_marginal("size", {"color": 2}))
    index = pd.Index([f"case{i}" for i in range(5)])
    evidence = as_frame(codes[:5], index=index)
    batched = net.posterior_marginal("color", evidence, as_series=True)
    assert isinstance(batched, pd.DataFrame) and batched.index.equals(index)
    assert list(batched.columns) == NAMES["color"]
    np.testing.assert_array_equal(batched.to_numpy(),
                                  net.posterior_marginal("color", codes[:5]))
    proba = net.predict_proba(evidence, "pet", as_frame=True)
    assert list(proba.columns) == NAMES["pet"] and proba.index.equals(index)
    np.testing.assert_array_equal(proba.to_numpy(), net.predict_proba(codes[:5], "pet"))


def test_bayesnet_names_in_names_out():
    codes = planted_codes()
    frame = as_frame(codes)
    net = network().fit(frame)
    predicted = net.predict(frame, "color")
    np.testing.assert_array_equal(net.predict(codes, "color"),
                                  [NAMES["color"].index(p) for p in predicted])
    assert predicted.dtype == object
    np.testing.assert_array_equal(net.predict(frame, "color", as_names=False),
                                  net.predict(codes, "color"))
    named = net.map_assignment({"pet": "dog"})
    coded = net.map_assignment({"pet": 1})
    assert named.log_prob == coded.log_prob
    assert named.assignment == {c: NAMES[c][coded.assignment[c]] for c in COLUMNS}
    assert net.map_assignment({"pet": 1}, as_names=True).assignment == named.assignment
    X, _ = net.sample(20, random_state=0)
    X_codes, _ = net.sample(20, random_state=0, as_names=False)
    assert X.tolist() == by_hand(X_codes).tolist()
    coded_net = network().fit(codes)
    assert coded_net.sample(3, random_state=0)[0].dtype == np.float64


def test_bayesnet_from_bif_with_yes_no_states_fits_names_as_codes(tmp_path):
    bif = """network demo { }
variable rain { type discrete [ 2 ] { yes, no }; }
variable wet { type discrete [ 2 ] { yes, no }; }
probability ( rain ) { table 0.3, 0.7; }
probability ( wet | rain ) { (yes) 0.9, 0.1; (no) 0.2, 0.8; }
"""
    path = tmp_path / "demo.bif"
    path.write_text(bif)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, size=(300, 2)).astype(float)
    codes[rng.random(codes.shape) < 0.1] = np.nan
    states = ["yes", "no"]  # the BIF's order, not sorted: yes = 0
    frame = pd.DataFrame([[None if np.isnan(c) else states[int(c)] for c in row]
                          for row in codes], columns=["rain", "wet"])
    named = DiscreteBayesNet.from_bif(path, max_iter=10, tol=0.0).fit(frame)
    coded = DiscreteBayesNet.from_bif(path, max_iter=10, tol=0.0).fit(codes)
    assert named.learned_state_names_ == {}  # the BIF names them
    np.testing.assert_allclose(named.cpt_values_, coded.cpt_values_, rtol=1e-12, atol=1e-15)
    series = named.posterior_marginal("rain", {"wet": "yes"}, as_series=True)
    assert list(series.index) == states
    np.testing.assert_array_equal(series.to_numpy(),
                                  coded.posterior_marginal("rain", {"wet": 0}))
    assert named.impute(frame).to_numpy(dtype=object).tolist() == [
        [states[int(c)] for c in row] for row in coded.impute(codes)]


def test_bayesnet_name_errors():
    frame = as_frame(planted_codes())
    with pytest.raises(InvalidInputError, match=r"3 state names.*cardinality 2.*state_names"):
        DiscreteBayesNet(edges=[], cardinalities={"color": 2, "size": 4, "pet": 2}).fit(frame)
    net = network().fit(frame)
    bad = frame.copy()
    bad.loc[4, "pet"] = "fish"
    with pytest.raises(InvalidInputError, match=r"X\['pet'\]\[4\] = 'fish' is not a state of "
                       r"'pet'; its states are \['cat', 'dog'\]"):
        net.score_samples(bad)
    with pytest.raises(ValueError, match="as_names must be None, True or False"):
        net.predict(frame, "color", as_names="yes")
