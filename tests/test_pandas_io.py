"""pandas in, pandas out, scikit-learn style (issue 10, part 4).

Every registered transformer gets `get_feature_names_out` and `set_output` (scikit-learn's own
checks where they apply, equivalent assertions on each spec's example problem otherwise); a
model fitted on a DataFrame checks later DataFrames' columns and never warns about the names it
was given; `impute` and `sample` answer a DataFrame with a DataFrame.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as sk_checks

import latentkit
from latentkit import (
    PCA,
    PPCA,
    FactorAnalysis,
    FastICA,
    GaussianMixture,
    LinearDynamicalSystem,
    MixtureOfPPCA,
)
from latentkit.registry import registered_specs

SPECS = registered_specs()
#: every registered model whose transform maps a table to a table (LDS takes sequences)
TABLE_SPECS = [name for name, spec in SPECS.items()
               if hasattr(spec.cls, "transform") and not spec.cls._rows_are_time_steps]
#: the models that check a DataFrame's columns against feature_names_in_ (the Bayes net
#: matches its columns to the network's variables by name instead)
NAMED_SPECS = [name for name in TABLE_SPECS if name != "bayesnet"]
#: the scikit-learn checks of set_output and get_feature_names_out
SKLEARN_CHECKS = [sk_checks.check_set_output_transform,
                  sk_checks.check_set_output_transform_pandas,
                  sk_checks.check_global_output_transform_pandas,
                  sk_checks.check_transformer_get_feature_names_out,
                  sk_checks.check_transformer_get_feature_names_out_pandas,
                  sk_checks.check_dataframe_column_names_consistency]
#: the transformers those checks' own data (continuous, 2 to 8 columns) suits
SKLEARN_CHECKED = [PCA(2), PPCA(1, random_state=0), FactorAnalysis(1, random_state=0),
                   FastICA(2, random_state=0), GaussianMixture(2, random_state=0),
                   MixtureOfPPCA(2, n_latent=1, random_state=0)]


def example_frame(name):
    """(model, DataFrame) of the spec's example problem: named columns, a non-default index."""
    spec = SPECS[name]
    kwargs, X = spec.example(np.random.default_rng(0))
    model = spec.cls(**kwargs)
    if name == "bayesnet":
        columns = ["A", "B", "D"]  # the network's observed variables
    else:
        columns = [f"feature_{j}" for j in range(X.shape[1])]
    index = pd.Index([f"row{i}" for i in range(len(X))], name="id")
    return model, pd.DataFrame(X, columns=columns, index=index)


def with_missing(frame):
    """A copy of frame with one more missing entry in each of its first rows."""
    frame = frame.copy()
    for i in range(min(3, len(frame))):
        frame.iloc[i, i % frame.shape[1]] = np.nan
    return frame


# the checks mix array and DataFrame inputs on purpose; scikit-learn's warnings are right
@pytest.mark.filterwarnings("ignore:X (does not have valid|has) feature names:UserWarning")
@pytest.mark.parametrize("check", SKLEARN_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("model", SKLEARN_CHECKED, ids=lambda m: type(m).__name__)
def test_scikit_learn_set_output_and_feature_name_checks(model, check):
    check(type(model).__name__, model)


@pytest.mark.parametrize("name", TABLE_SPECS)
def test_get_feature_names_out_names_transform_columns(name):
    model, frame = example_frame(name)
    Z = model.fit(frame).transform(frame)
    names = model.get_feature_names_out()
    prefix = type(model).__name__.lower()
    assert isinstance(names, np.ndarray) and names.dtype == object
    assert names.tolist() == [f"{prefix}{j}" for j in range(Z.shape[1])]
    np.testing.assert_array_equal(model.get_feature_names_out(list(frame.columns)), names)
    with pytest.raises(ValueError, match="input_features"):
        model.get_feature_names_out(["bad"] * (frame.shape[1] + 1))
    if name in NAMED_SPECS:  # names checked against feature_names_in_, not only counted
        with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
            model.get_feature_names_out([f"bad{j}" for j in range(frame.shape[1])])


@pytest.mark.parametrize("name", TABLE_SPECS)
@pytest.mark.parametrize("context", ["local", "global"])
def test_set_output_pandas_gives_frames_with_the_input_index(name, context):
    model, frame = example_frame(name)
    expected = model.fit(frame).transform(frame)  # the default: an array
    assert isinstance(expected, np.ndarray)
    if context == "local":
        model.set_output(transform="pandas")
        out, refit = model.transform(frame), model.fit_transform(frame)
    else:
        with config_context(transform_output="pandas"):
            out, refit = model.transform(frame), model.fit_transform(frame)
    for result in (out, refit):
        assert isinstance(result, pd.DataFrame)
        assert result.index.equals(frame.index)
        assert list(result.columns) == list(model.get_feature_names_out())
    np.testing.assert_allclose(out.to_numpy(), expected)
    model.set_output(transform="default")
    np.testing.assert_allclose(model.transform(frame), expected)


def test_lds_opts_out_of_set_output():
    """An LDS transforms sequences (batches, lists), not tables: no column names to give."""
    model = LinearDynamicalSystem(state_dim=1)
    assert not hasattr(model, "get_feature_names_out")
    assert not hasattr(model, "set_output")


def test_pipeline_with_scaler_and_pca_outputs_named_frames():
    """The issue's report: this raised."""
    _, frame = example_frame("pca")
    pipe = make_pipeline(StandardScaler(), latentkit.PCA(3)).set_output(transform="pandas")
    out = pipe.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["pca0", "pca1", "pca2"]
    assert out.index.equals(frame.index)
    pd.testing.assert_frame_equal(pipe.transform(frame), out)
    assert list(pipe.get_feature_names_out()) == ["pca0", "pca1", "pca2"]


@pytest.mark.parametrize("name", TABLE_SPECS)
def test_fit_on_a_frame_then_use_it_raises_no_warning(name):
    model, frame = example_frame(name)
    if name == "ica":  # FastICA's own convergence warning is not a feature-name warning
        model.set_params(max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(frame)
        model.transform(frame)
        model.fit_transform(frame)
        model.score(frame)
        model.score_samples(frame)
        model.bic(frame)
        for method in ("predict", "predict_proba"):
            if hasattr(model, method):
                getattr(model, method)(frame)
        if hasattr(model, "posterior") and name != "ica":
            model.posterior(frame)
        if hasattr(model, "impute"):
            model.impute(with_missing(frame) if model._allow_nan else frame)
        model.sample(5, random_state=0)
    if name != "bayesnet":
        assert list(model.feature_names_in_) == list(frame.columns)


@pytest.mark.parametrize("name", NAMED_SPECS)
def test_shuffled_columns_raise_scikit_learns_feature_name_error(name):
    model, frame = example_frame(name)
    model.fit(frame)
    shuffled = frame[frame.columns[::-1]]
    message = "The feature names should match those that were passed during fit"
    methods = ["transform", "score", "score_samples"] + (["impute"] if hasattr(model, "impute")
                                                         else [])
    for method in methods:
        with pytest.raises(ValueError, match=message):
            getattr(model, method)(shuffled)


def test_bayesnet_matches_shuffled_columns_by_name():
    """The Bayes net's columns are its variables: a reordered frame is matched by name."""
    model, frame = example_frame("bayesnet")
    model.fit(frame)
    np.testing.assert_allclose(model.score_samples(frame[["D", "A", "B"]]),
                               model.score_samples(frame))


@pytest.mark.parametrize("name", [n for n in TABLE_SPECS if hasattr(SPECS[n].cls, "impute")])
def test_impute_keeps_the_frames_index_and_columns(name):
    model, frame = example_frame(name)
    model.fit(frame)
    holes = with_missing(frame)
    out = model.impute(holes)
    assert isinstance(out, pd.DataFrame)
    assert out.index.equals(frame.index)
    assert list(out.columns) == list(frame.columns)
    assert not out.isna().any().any()
    observed = holes.notna().to_numpy()
    np.testing.assert_array_equal(out.to_numpy()[observed], holes.to_numpy()[observed])
    with warnings.catch_warnings():  # an array in: an array out, as before
        warnings.simplefilter("ignore", UserWarning)  # "X does not have valid feature names"
        bare = model.impute(holes.to_numpy())
    assert isinstance(bare, np.ndarray)
    np.testing.assert_allclose(out.to_numpy(), bare)


def test_impute_of_an_lds_frame_keeps_its_index():
    spec = SPECS["lds"]
    kwargs, X = spec.example(np.random.default_rng(0))
    index = pd.date_range("2000-01-01", periods=len(X), freq="D")
    frame = pd.DataFrame(X, columns=["y1", "y2"], index=index)
    model = spec.cls(**kwargs).fit(frame)
    out = model.impute(with_missing(frame))
    assert isinstance(out, pd.DataFrame) and out.index.equals(index)
    assert list(out.columns) == ["y1", "y2"] and not out.isna().any().any()


@pytest.mark.parametrize("name", NAMED_SPECS)
def test_sample_of_a_model_fitted_on_a_frame_is_a_named_frame(name):
    model, frame = example_frame(name)
    X, z = model.fit(frame).sample(4, random_state=0)
    assert isinstance(X, pd.DataFrame) and list(X.columns) == list(frame.columns)
    assert X.shape == (4, frame.shape[1]) and len(z) == 4
    X_array, _ = model.fit(frame.to_numpy()).sample(4, random_state=0)
    assert isinstance(X_array, np.ndarray)
    assert not hasattr(model, "feature_names_in_")  # refitting on an array forgets them
