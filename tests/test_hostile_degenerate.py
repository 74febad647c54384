"""Degenerate and hostile inputs give finite answers or clear user errors (issue 12, items
4 and 6): constant data, duplicated rows, a constant column, round-off-only variance, no
columns, non-finite or singular user-given starts, a CSV file that is not UTF-8.

Never NaN, and never an exception outside `latentkit.exceptions` (a ZeroDivisionError, a
FloatingPointError that names a parameter the model does not have, numpy's LinAlgError).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from latentkit.dynamics.lds import LinearDynamicalSystem
from latentkit.exceptions import InvalidInputError, InvalidParameterError, UserError
from latentkit.linear import _ica_kernels as ik
from latentkit.linear.ica import FastICA
from latentkit.linear.pca import PCA
from latentkit.mixture import _ppca_mixture_kernels as mk
from latentkit.mixture.gaussian import GaussianMixture
from latentkit.mixture.ppca_mixture import MixtureOfPPCA
from latentkit.tables import read_table

SOLVERS = ("full", "covariance_eigh", "gram", "randomized", "arpack")


def constant(n=4, d=3, value=0.1, dtype=np.float64) -> np.ndarray:
    """Every row the same; 0.1 has no exact binary mean, so centring leaves round-off."""
    return np.full((n, d), value, dtype=dtype)


def assert_finite(*arrays) -> None:
    for array in arrays:
        assert not np.isnan(array).any(), array
        assert np.isfinite(array).all(), array


# -- item 4: PCA ----------------------------------------------------------------------------


def test_pca_whitened_scores_of_constant_data_are_finite():
    Z = PCA(1, whiten=True).fit_transform([[1.0], [1.0]])
    np.testing.assert_array_equal(Z, [[0.0], [0.0]])


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("X", [constant(3, 4), np.zeros((3, 4)),
                               np.repeat([[1.0, -2.0, 3.0, 0.5]], 3, axis=0)],
                         ids=["constant", "zeros", "duplicate-rows"])
def test_pca_constant_or_duplicate_data_fits_finitely(solver, X):
    """Today: ARPACK stops with 'Starting vector is zero' (X_c = 0)."""
    pca = PCA(1, whiten=True, svd_solver=solver, random_state=0)
    Z = pca.fit_transform(X)
    assert_finite(Z, pca.transform(X + 1.0), pca.components_, pca.explained_variance_)
    assert not np.isnan(pca.score_samples(X + 1.0)).any()
    np.testing.assert_allclose(pca.explained_variance_, 0.0, atol=1e-25)
    np.testing.assert_allclose(np.linalg.norm(pca.components_, axis=1), 1.0)


def test_pca_arpack_of_one_column_asks_for_another_solver():
    """Today: scipy's bare ValueError ('`k` must be an integer satisfying 0 < k < ...')."""
    with pytest.raises(InvalidParameterError, match="svd_solver='full'"):
        PCA(svd_solver="arpack").fit(np.arange(5.0).reshape(5, 1))


# -- item 4: FastICA ------------------------------------------------------------------------


@pytest.mark.parametrize("X", [constant(), constant(3, 2), np.zeros((6, 2)),
                               constant(7, 2, dtype=np.float32)],
                         ids=["constant", "constant-3x2", "zeros", "float32"])
@pytest.mark.parametrize("n_components", [None, 1])
def test_fastica_of_data_without_variance_is_a_clear_error(X, n_components):
    """Today: a bare ValueError ('max() arg is an empty sequence'), or a fit on the round-off
    of the centring whose transform is inf or NaN."""
    with pytest.raises(InvalidInputError, match="no direction with non-zero variance"):
        FastICA(n_components, random_state=0).fit(X)


def test_fastica_names_the_constant_column():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.laplace(size=(50, 2)), np.full(50, 0.1)])
    with pytest.raises(InvalidInputError, match="Column 2 of X is constant: it has no "
                                                "independent component; drop it"):
        FastICA(3, random_state=0).fit(X)
    with pytest.warns(UserWarning, match="small singular values"):
        ica = FastICA(random_state=0).fit(X)  # None: the sources the data have
    assert ica.components_.shape == (2, 3)
    assert_finite(ica.transform(X + 1.0), ica.score_samples(X + 1.0))


def test_numerical_rank_judges_round_off_against_the_data_scale():
    """A centred constant column leaves variance (eps |x|)², not 0: relative to its own
    largest variance it would look like full rank."""
    X = constant(3, 2)
    variances, _ = ik.pca_whitening(X - X.mean(axis=0), "svd")
    assert variances[0] > 0  # the round-off this guards against
    scale = float(np.max(np.mean(X * X, axis=0)))
    assert ik.numerical_rank(variances, "svd", 3, X.dtype) >= 1
    assert ik.numerical_rank(variances, "svd", 3, X.dtype, scale) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [3, 7, 10_000])
def test_two_pass_centring_leaves_nothing_of_a_constant_column(n, dtype):
    X = np.column_stack([np.full(n, 0.1), np.linspace(0, 1, n)]).astype(dtype)
    mean, Xc = ik.centre(X)
    assert mean.dtype == Xc.dtype == dtype
    np.testing.assert_array_equal(Xc[:, 0], 0.0)
    np.testing.assert_allclose(Xc[:, 1].mean(), 0.0, atol=10 * np.finfo(dtype).eps)


@pytest.mark.parametrize("w_init", [np.zeros((2, 2)), np.ones((2, 2))])
@pytest.mark.parametrize("algorithm", ["parallel", "deflation"])
def test_fastica_singular_w_init_is_a_parameter_error(w_init, algorithm):
    """Today: numpy's LinAlgError 'SVD did not converge'."""
    X = np.random.default_rng(0).laplace(size=(40, 2))
    with pytest.raises(InvalidParameterError, match="w_init must be non-singular"):
        FastICA(2, algorithm=algorithm, w_init=w_init).fit(X)


@pytest.mark.parametrize("algorithm", ["parallel", "deflation"])
@pytest.mark.parametrize("fun", ["logcosh", "cube"])
def test_fastica_constant_data_given_as_white_stays_finite(algorithm, fun):
    """whiten=False takes X as it is; a source of constant data has no spread to rescale
    (today: a divide-by-zero warning, and NaN rows for "deflation" with "cube")."""
    ica = FastICA(algorithm=algorithm, fun=fun, whiten=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # convergence
        ica.fit(np.zeros((8, 2)))
    assert_finite(ica.components_, ica.transform(np.ones((3, 2))))


def test_fastica_on_data_given_as_white_does_not_overflow():
    """Was numpy's LinAlgError from the NaN unmixing, then the "whiten=False needs centred
    data" error: the fixed-point step (~1e32) squared in sym_decorrelation overflowed. The
    decorrelation is invariant to the step's scale and now divides it out first (exactly),
    so the iteration runs to an orthogonal unmixing with finite outputs."""
    X = np.random.default_rng(0).standard_normal((20, 2)) * 1e-3 + 1e8
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        ica = FastICA(fun="cube", whiten=False, random_state=0).fit(X)
    np.testing.assert_allclose(ica.components_ @ ica.components_.T, np.eye(2), atol=1e-12)
    assert_finite(ica.score_samples(X), ica.transform(X))


def test_unit_orthogonal_never_divides_zero_by_zero():
    found = np.array([[0.6, 0.8, 0.0]])
    for w in (np.zeros(3), np.array([0.6, 0.8, 0.0])):
        u = ik.unit_orthogonal(w, found)
        np.testing.assert_allclose(np.linalg.norm(u), 1.0)
        np.testing.assert_allclose(found @ u, 0.0, atol=1e-15)


# -- item 4: MixtureOfPPCA ------------------------------------------------------------------


@pytest.mark.parametrize("X", [np.ones((10, 3)), np.zeros((10, 3)), constant(7, 3, 0.3),
                               np.repeat([[0.5, 1.0, -2.0]], 6, axis=0),
                               np.tile([[0.5, 1.0, -2.0], [3.0, 0.0, 1.0]], (4, 1)),
                               constant(6, 4, 1e8, np.float32)],
                         ids=["ones", "zeros", "constant", "identical-rows", "two-rows-repeated",
                              "float32"])
@pytest.mark.parametrize("n_components", [1, 2])
def test_mppca_constant_or_duplicate_data_fits(X, n_components):
    """Today: FloatingPointError at iteration 1 or 2: the noise floor was
    min_noise_variance · (mean feature variance) = 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-means on duplicates; re-seeded components
        model = MixtureOfPPCA(n_components, n_latent=1, random_state=0).fit(X)
    assert np.all(model.noise_variance_ > 0)
    assert_finite(model.score_samples(X), model.transform_local(X), model.predict_proba(X))
    assert not np.isnan(model.score_samples(X + 1.0)).any()


def test_noise_scale_is_positive_for_data_without_variance():
    X = np.random.default_rng(0).standard_normal((20, 3))
    assert mk.noise_scale(X) == pytest.approx(np.var(X, axis=0).mean())
    assert mk.noise_scale(np.zeros((5, 2))) == 1.0
    assert mk.noise_scale(np.full((5, 2), 2.0)) == pytest.approx(4 * np.finfo(float).eps)
    assert mk.noise_scale(np.full((5, 2), 2.0, np.float32)) == pytest.approx(
        4 * np.finfo(np.float32).eps)
    with_nan = np.array([[1.0, np.nan], [3.0, np.nan]])  # a column never observed
    assert mk.noise_scale(with_nan) == pytest.approx(1.0)


# -- item 6 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("X", [np.empty((10, 0)), np.empty((2, 10, 0)), [np.empty((3, 0))]],
                         ids=["sequence", "batch", "list"])
def test_lds_without_columns_is_a_clear_error(X):
    """Today: ZeroDivisionError in the initialization."""
    with pytest.raises(InvalidInputError, match="no columns"):
        LinearDynamicalSystem(1).fit(X)


BLOBS = np.random.default_rng(0).standard_normal((30, 2))
EYE = np.stack([np.eye(2), np.eye(2)])


@pytest.mark.parametrize("name, value", [
    ("means_init", [[np.nan, 0.0], [1.0, 1.0]]),
    ("means_init", [[np.inf, 0.0], [1.0, 1.0]]),
    ("weights_init", [np.nan, 1.0]),
    ("precisions_init", np.where(np.eye(2) == 1, [[np.inf, 1.0]], 0.0) * EYE),
    ("precisions_init", EYE * np.nan),
])
def test_gaussian_mixture_non_finite_init_is_a_parameter_error(name, value):
    """Today: FloatingPointError ('increase reg_covar') for NaN, inf accepted silently."""
    with pytest.raises(InvalidParameterError, match=f"{name} is invalid: every entry must "
                                                    "be finite"):
        GaussianMixture(2, **{name: np.asarray(value)}).fit(BLOBS)


def test_gaussian_mixture_non_numeric_init_is_a_parameter_error():
    with pytest.raises(InvalidParameterError, match="means_init must be a numeric array"):
        GaussianMixture(2, means_init=[["a", "b"], ["c", "d"]]).fit(BLOBS)


@pytest.mark.parametrize("content, line, byte", [
    ("a,b\n1,2\n3,\xe94\n", 3, "0xE9"),  # a text column sampled from the head
    ("na\xefve,b\n1,2\n3,4\n", 1, "0xEF"),  # the header (read as U+FFFD before)
    ("x,y\n" + "1,2\n" * 200 + "\xe9,3\n", 202, "0xE9"),  # past the sampled lines
])
def test_csv_not_utf8_names_the_file_the_line_and_the_fix(tmp_path, content, line, byte):
    path = tmp_path / "latin.csv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(InvalidInputError) as caught:
        read_table(path)
    message = str(caught.value)
    for fragment in (str(path), "is not UTF-8 text", f"line {line} has the byte {byte}",
                     "Save the file as UTF-8", "encoding="):
        assert fragment in message, message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_csv_in_utf16_says_so(tmp_path, encoding):
    """Today: 'line 4: 1 fields where the first row has 2'."""
    path = tmp_path / "wide.csv"
    path.write_bytes("a,b\n1,2\n3,4\n".encode(encoding))
    with pytest.raises(InvalidInputError, match=r"UTF-16.*Save the file as UTF-8"):
        read_table(path)


def test_utf8_file_with_multibyte_names_still_reads(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("naïve,b\n1,2\n3,4\n", encoding="utf-8")
    data = read_table(path)
    assert list(data.columns) == ["naïve", "b"]
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])


# -- a random sweep of small degenerate inputs ------------------------------------------------


def degenerate_data(rng) -> np.ndarray:
    n, d = int(rng.choice([1, 2, 3, 5, 8])), int(rng.integers(1, 5))
    X = rng.standard_normal((n, d))
    kind = rng.integers(5)
    if kind == 0:
        X = np.full((n, d), rng.standard_normal())
    elif kind == 1:
        X = np.tile(X[:max(1, n // 2)], (2, 1))[:n]  # duplicated rows
    elif kind == 2:
        X[:, rng.integers(d)] = 0.1  # a constant column
    elif kind == 3:
        X = X * 1e-3 + 1e8  # the mean dwarfs the spread
    return X.astype(np.float32) if rng.random() < 0.25 else X


def sweep_models(rng):
    yield PCA(rng.choice([None, 1, 0.5, "mle"]), whiten=bool(rng.integers(2)),
              svd_solver=str(rng.choice(("auto",) + SOLVERS)), random_state=0)
    yield FastICA(rng.choice([None, 1, 2]), whiten=[False, "unit-variance",
                                                    "arbitrary-variance"][rng.integers(3)],
                  algorithm=str(rng.choice(["parallel", "deflation"])),
                  fun=str(rng.choice(["logcosh", "exp", "cube"])), random_state=0)
    yield MixtureOfPPCA(int(rng.integers(1, 3)), n_latent=int(rng.integers(1, 3)),
                        max_iter=20, random_state=0)


def test_random_degenerate_inputs_never_give_nan_or_a_foreign_error():
    """fit, transform and score_samples of 120 random small degenerate inputs (n_samples
    1-8, constant columns, duplicate rows): finite scores (log-densities may be -inf off a
    singular model's support), or an error of latentkit.exceptions."""
    rng = np.random.default_rng(12)
    for _ in range(40):
        X = degenerate_data(rng)
        other = X + rng.standard_normal(X.shape).astype(X.dtype)
        for model in sweep_models(rng):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UserWarning)
                warnings.filterwarnings("error", category=RuntimeWarning)
                try:
                    model.fit(X)
                except UserError:
                    continue
                for Y in (X, other):
                    assert_finite(model.transform(Y))
                    scores = model.score_samples(Y)
                    assert not np.isnan(scores).any() and not np.isposinf(scores).any(), (
                        model, X)
