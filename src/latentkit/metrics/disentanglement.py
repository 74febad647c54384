"""Disentanglement metrics: MIG, SAP, DCI and the FactorVAE score.

A maintained source of the four supervised metrics that Google's disentanglement_lib
(Locatello et al. 2019, "Challenging common assumptions in the unsupervised learning of
disentangled representations", ICML) made standard, computed from a representation and the
known factors of variation of the same rows:

    codes   : (n_samples, n_latents)  float, e.g. the posterior means of a VAE
    factors : (n_samples, n_factors)  discrete factor values (ints, or floats taking few
                                      values), each column with at least two values

Every default is disentanglement_lib's published protocol, and every choice is an argument.
Where disentanglement_lib draws a fresh training and test sample from a generator, these
functions split the rows given at random (`test_fraction`, `random_state`), so they work on
any dataset with labelled factors. The kernels live in `_disentanglement_kernels`.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

from .._validation import as_generator, as_seed, check_finite
from ..exceptions import InvalidInputError, InvalidInputTypeError, InvalidParameterError
from . import _disentanglement_kernels as K

MIN_ROWS = 10


def _as_matrix(values, name: str, function: str) -> np.ndarray:
    """`values` as a 2-D float64 array with finite entries, or an error naming `name`."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputTypeError(
            f"{function}: {name} must be numbers, as a 2-D array; could not read it as "
            f"floats ({exc}).") from exc
    if array.ndim != 2:
        fix = " (one column: reshape it with .reshape(-1, 1))" if array.ndim == 1 else ""
        columns = "n_latents" if name == "codes" else "n_factors"
        raise InvalidInputError(
            f"{function}: {name} must be 2-D, (n_samples, {columns}); got shape "
            f"{array.shape}{fix}.")
    if array.shape[1] == 0:
        raise InvalidInputError(f"{function}: {name} has no columns; give at least one.")
    check_finite(array, allow_nan=False, name=name, model=function, scale=False)
    return array


def check_codes_and_factors(codes, factors, function: str, min_rows: int = MIN_ROWS):
    """Validate a (codes, factors) pair once, at the boundary.

    Returns codes (n_samples, n_latents) float64, factors (n_samples, n_factors) float64,
    labels (n_samples, n_factors) int64 (values recoded 0..K_j-1) and n_values (n_factors,).
    Errors: non-numeric or non-2-D input, NaN or inf, different numbers of rows, fewer than
    `min_rows` rows, a factor column holding a single value.
    """
    codes = _as_matrix(codes, "codes", function)
    factors = _as_matrix(factors, "factors", function)
    if len(codes) != len(factors):
        raise InvalidInputError(
            f"{function}: codes and factors must describe the same rows; got {len(codes)} "
            f"rows of codes and {len(factors)} rows of factors. Pass the factors of exactly "
            "the rows that were encoded, in the same order.")
    if len(codes) < min_rows:
        raise InvalidInputError(
            f"{function}: needs at least {min_rows} rows; got {len(codes)}. Encode more "
            "samples (disentanglement_lib uses 10,000).")
    labels, n_values = K.encode_factors(factors)
    single = np.flatnonzero(n_values < 2)
    if single.size:
        j = int(single[0])
        raise InvalidInputError(
            f"{function}: factor column {j} takes a single value ({factors[0, j]!r}) in "
            "every row, so nothing can be learned about it. Drop that column from factors, "
            "or sample rows over which it varies.")
    return codes, factors, labels, n_values


def _check_number(value, name: str, function: str, *, low, high=None, integer=False,
                  low_open=False, high_open=False):
    """A scalar parameter inside [low, high] (open ends when asked), or an error."""
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}"
        bounds += ")" if high_open or high is None else "]"
        raise InvalidParameterError(
            f"{function}: {name} must be {'an integer' if integer else 'a number'} in "
            f"{bounds}; got {value!r}.")
    return value


def train_test_rows(n_samples: int, test_fraction: float, rng: np.random.Generator,
                    function: str) -> tuple[np.ndarray, np.ndarray]:
    """A random split of range(n_samples): (train rows, test rows), the test share
    round(test_fraction * n_samples), each part with at least two rows."""
    n_test = int(round(test_fraction * n_samples))
    if n_test < 2 or n_samples - n_test < 2:
        raise InvalidInputError(
            f"{function}: test_fraction={test_fraction} of {n_samples} rows leaves "
            f"{n_test} test and {n_samples - n_test} training rows; each needs at least 2. "
            "Give more rows or a test_fraction nearer 0.5.")
    order = rng.permutation(n_samples)
    return order[n_test:], order[:n_test]


def mig_gaps(codes, factors, *, n_bins: int = 20) -> np.ndarray:
    """Mutual information gap of each factor: (n_factors,).

    codes : (n_samples, n_latents), factors : (n_samples, n_factors). Each latent is binned
    into `n_bins` equal-width bins (disentanglement_lib's `_histogram_discretize`, 20 bins);
    with I_ij the plug-in mutual information between binned latent i and factor j,
        gap_j = (I_(1)j - I_(2)j) / H(v_j),
    the two largest I_ij over latents, normalized by the factor's entropy
    (Chen et al. 2018, "Isolating sources of disentanglement in VAEs", NeurIPS, eq. 6).
    """
    codes, _, labels, n_values = check_codes_and_factors(codes, factors, "mig")
    _check_number(n_bins, "n_bins", "mig", low=2, integer=True)
    binned = K.histogram_discretize(codes, n_bins)
    information = K.mutual_information_matrix(binned, n_bins, labels, n_values)
    return K.top_two_gap(information) / K.factor_entropies(labels, n_values)


def mig(codes, factors, *, n_bins: int = 20) -> float:
    """Mutual Information Gap (Chen et al. 2018): the mean over factors of `mig_gaps`.

    codes : (n_samples, n_latents), factors : (n_samples, n_factors), discrete. In [0, 1]:
    1 when each factor is captured by one latent alone (and losslessly by the binning),
    near 0 when a factor is spread evenly over two or more latents. `n_bins` (default 20,
    disentanglement_lib's) bins each latent between its min and max; more bins raise the
    plug-in MI of every latent, fewer lose information. Logs are natural (nats), but MIG is
    a ratio and does not depend on the base.
    """
    return float(np.mean(mig_gaps(codes, factors, n_bins=n_bins)))


def sap(codes, factors, *, discrete: bool = True, C: float = 0.01,
        class_weight="balanced", test_fraction: float = 1 / 3, random_state=None) -> float:
    """Separated Attribute Predictability (Kumar et al. 2018, "Variational inference of
    disentangled latent concepts from unlabeled observations", ICLR, §3).

    codes : (n_samples, n_latents), factors : (n_samples, n_factors). A score S_ij of how
    well latent i alone predicts factor j; SAP = mean_j (S_(1)j - S_(2)j), the gap between
    the two best latents. disentanglement_lib's protocol:
      discrete=True : S_ij = test accuracy of LinearSVC(C=0.01, class_weight="balanced")
                      fitted on latent i of the training rows (`test_fraction` of the rows,
                      drawn with `random_state`, are the test rows; disentanglement_lib uses
                      10,000 training and 5,000 test points: 1/3). Plain accuracy: for a
                      factor independent of a latent it is about chance (1 / K_j for
                      balanced factors), so even a perfect code scores at most about
                      1 - chance.
      discrete=False: S_ij = R² of the line fitting factor j on latent i, the squared
                      correlation, on all rows (factors read as numbers); a latent of
                      variance <= 1e-12 scores 0.
    """
    codes, factors, labels, _ = check_codes_and_factors(codes, factors, "sap")
    if not discrete:
        return float(np.mean(K.top_two_gap(K.sap_score_matrix_continuous(codes, factors))))
    _check_number(C, "C", "sap", low=0, low_open=True)
    _check_number(test_fraction, "test_fraction", "sap", low=0, high=1, low_open=True,
                  high_open=True)
    if class_weight not in ("balanced", None):
        raise InvalidParameterError(
            f"sap: class_weight must be 'balanced' or None; got {class_weight!r}.")
    train, test = train_test_rows(len(codes), test_fraction, as_generator(random_state), "sap")
    scores = K.sap_score_matrix_discrete(codes[train], labels[train], codes[test],
                                         labels[test], C=C, class_weight=class_weight)
    return float(np.mean(K.top_two_gap(scores)))


def dci(codes, factors, *, method: str = "gbt", n_estimators: int = 100, alpha: float = 0.02,
        test_fraction: float = 1 / 3, random_state=None, n_jobs=None) -> dict:
    """Disentanglement, Completeness and Informativeness (Eastwood & Williams 2018, "A
    framework for the quantitative evaluation of disentangled representations", ICLR).

    codes : (n_samples, n_latents), factors : (n_samples, n_factors). One regressor per
    factor predicts it from all latents on the training rows; its importances fill
    R (n_latents, n_factors), from which (see `_disentanglement_kernels.dci_scores`)
        D = Σ_i ρ_i (1 - H_K(R_i·)),  C = Σ_j w_j (1 - H_L(R_·j)).
      method="gbt"  : disentanglement_lib's protocol: a GradientBoostingClassifier per factor
                      (scikit-learn's defaults, `n_estimators`=100 stages) and its
                      `feature_importances_`; informativeness = mean test accuracy.
      method="lasso": a Lasso(alpha) regression of each factor's values on the z-scored
                      codes, R = |coefficients|; informativeness = mean test R².
                      (disentanglement_lib has no lasso variant; Eastwood & Williams use it.
                      alpha=0.02 is latentkit's default; larger alpha, sparser R.)
    `test_fraction` (default 1/3: disentanglement_lib's 10,000 train / 5,000 test) of the
    rows, drawn with `random_state`, are held out; `random_state` also seeds the trees.
    `n_jobs` (gbt only): joblib workers fitting the factors' boosters in parallel (None: one;
    -1: all cores); the trees dominate the time (minutes at 10,000 rows and 40 classes).

    Returns a dict: "disentanglement", "completeness", "informativeness" (floats in [0, 1]
    for gbt), "informativeness_train", "importance_matrix" (n_latents, n_factors),
    "disentanglement_per_latent" (n_latents,), "completeness_per_factor" (n_factors,).
    """
    codes, factors, labels, _ = check_codes_and_factors(codes, factors, "dci")
    _check_number(test_fraction, "test_fraction", "dci", low=0, high=1, low_open=True,
                  high_open=True)
    train, test = train_test_rows(len(codes), test_fraction, as_generator(random_state), "dci")
    if method == "gbt":
        _check_number(n_estimators, "n_estimators", "dci", low=1, integer=True)
        booster = GradientBoostingClassifier(n_estimators=n_estimators,
                                             random_state=as_seed(random_state))
        importance, informed_train, informed_test = K.gbt_importances(
            codes[train], labels[train], codes[test], labels[test], booster=booster,
            n_jobs=n_jobs)
    elif method == "lasso":
        _check_number(alpha, "alpha", "dci", low=0, low_open=True)
        importance, informed_train, informed_test = K.lasso_importances(
            codes[train], factors[train], codes[test], factors[test], alpha=alpha)
    else:
        raise InvalidParameterError(f"dci: method must be 'gbt' or 'lasso'; got {method!r}.")
    scores = K.dci_scores(importance)
    return {"disentanglement": scores["disentanglement"],
            "completeness": scores["completeness"],
            "informativeness": float(np.mean(informed_test)),
            "informativeness_train": float(np.mean(informed_train)),
            "importance_matrix": importance,
            "disentanglement_per_latent": scores["disentanglement_per_latent"],
            "completeness_per_factor": scores["completeness_per_factor"]}


def _codes_of(model_or_codes, X) -> np.ndarray:
    """The codes: `model_or_codes.transform(X)` for a fitted model, else the array itself."""
    if hasattr(model_or_codes, "transform"):
        if X is None:
            raise InvalidInputError(
                "factorvae_score: a model was given without X; pass the data to encode as "
                "X=..., or pass the codes themselves instead of the model.")
        codes = model_or_codes.transform(X)
        return codes.detach().cpu().numpy() if hasattr(codes, "detach") else codes
    if X is not None:
        raise InvalidInputError(
            "factorvae_score: X was given with codes; X is only used with a model that has "
            "a transform method. Drop X, or pass the fitted model.")
    return model_or_codes


def factorvae_score(model_or_codes, factors, *, X=None, batch_size: int = 64,
                    n_train: int = 10000, n_eval: int = 5000, prune_threshold: float = 0.05,
                    random_state=None) -> float:
    """The FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by
    factorising", ICML, §4): accuracy of a majority-vote classifier of which factor was held
    fixed, from the latent whose normalized variance is smallest.

    model_or_codes : codes (n_samples, n_latents), or a fitted model with `transform`
    together with X (then codes = model.transform(X)); factors : (n_samples, n_factors).
    1. Each latent is divided by its std (ddof=1) over all the rows given; latents whose
       raw std is below `prune_threshold` (0.05, collapsed to the prior) are left out of
       the argmin. (disentanglement_lib's function default is 0.0; 0.05 follows the paper's
       advice to prune collapsed dimensions.) No active latent: the score is 0.0, as in
       disentanglement_lib.
    2. A vote: draw a factor k uniformly and one of its values (that of a random row);
       take `batch_size` (64) rows holding that value (all of them when fewer; rows are
       drawn from those given, so no generator is needed), and d* = argmin_d Var(z_d / s_d).
    3. `n_train` (10,000) votes fit the classifier d -> most voted factor; the score is its
       accuracy on `n_eval` (5,000) fresh votes. Chance is about 1 / n_factors.
    The score only asks that each factor have its own least-varying latent: a rotation that
    keeps one dominant latent per factor still scores 1, and only a mixing that spreads
    every factor evenly over the latents brings it down to chance.
    """
    codes = _codes_of(model_or_codes, X)
    codes, _, labels, n_values = check_codes_and_factors(codes, factors, "factorvae_score")
    _check_number(batch_size, "batch_size", "factorvae_score", low=2, integer=True)
    _check_number(n_train, "n_train", "factorvae_score", low=1, integer=True)
    _check_number(n_eval, "n_eval", "factorvae_score", low=1, integer=True)
    _check_number(prune_threshold, "prune_threshold", "factorvae_score", low=0)
    for j in range(labels.shape[1]):
        if np.bincount(labels[:, j]).max() < 2:
            raise InvalidInputError(
                f"factorvae_score: factor column {j} has no value shared by two rows, so no "
                "batch can hold it fixed. Give rows that repeat its values, or drop it.")
    scale = codes.std(axis=0, ddof=1)
    active = scale >= prune_threshold
    if not active.any():
        return 0.0
    normalized = codes / np.where(scale > 0, scale, 1.0)
    rng = as_generator(random_state)
    kwargs = {"batch_size": batch_size, "rng": rng}
    train_votes = K.factorvae_votes(normalized, labels, n_values, active, n_votes=n_train,
                                    **kwargs)
    eval_votes = K.factorvae_votes(normalized, labels, n_values, active, n_votes=n_eval,
                                   **kwargs)
    return K.majority_vote_accuracy(train_votes, eval_votes)[1]


__all__ = ["dci", "factorvae_score", "mig", "mig_gaps", "sap"]
