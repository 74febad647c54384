"""Disentanglement metrics (MIG, SAP, DCI, FactorVAE score) against hand computations,
independent formulas and the properties that define them.

The designs are full factorials (every combination of factor values equally often), so in
the sample every factor is exactly independent of every other: the mutual information, the
correlation and the accuracy of a latent that copies another factor are known exactly.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.linalg import hadamard
from sklearn.metrics import mutual_info_score

from latentkit.exceptions import InvalidInputError, InvalidParameterError
from latentkit.metrics import _disentanglement_kernels as K
from latentkit.metrics import dci, factorvae_score, mig, mig_gaps, sap


def full_factorial(sizes, repeats):
    """(prod(sizes) * repeats, len(sizes)) rows: every combination of values, `repeats` times."""
    grid = np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=float)
    return np.repeat(grid, repeats, axis=0)


def standardized(factors):
    return (factors - factors.mean(axis=0)) / factors.std(axis=0)


def random_rotation(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


FACTORS = full_factorial([3, 4, 5, 2], 10)          # 1,200 rows, four independent factors
HADAMARD = hadamard(4) / 2.0                        # spreads every factor evenly (|Q_ij| = 1/2)


# ---------------------------------------------------------------- MIG

def test_mig_kernels_match_an_independent_reference_on_random_data():
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((500, 3)) * [1.0, 5.0, 0.1]
    factors = rng.integers(0, [3, 7], size=(500, 2)).astype(float)
    labels, n_values = K.encode_factors(factors)
    binned = K.histogram_discretize(codes, 20)
    # disentanglement_lib's definition, written out: digitize on np.histogram's left edges
    for i in range(3):
        edges = np.histogram(codes[:, i], 20)[1]
        np.testing.assert_array_equal(binned[:, i] + 1, np.digitize(codes[:, i], edges[:-1]))
    information = K.mutual_information_matrix(binned, 20, labels, n_values)
    expected = [[mutual_info_score(factors[:, j], binned[:, i]) for j in range(2)]
                for i in range(3)]
    np.testing.assert_allclose(information, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(K.factor_entropies(labels, n_values),
                               [mutual_info_score(f, f) for f in factors.T], rtol=1e-12)


def test_mig_hand_computed_case():
    factor = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, 1], dtype=float)[:, None]
    informative = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 1], dtype=float)   # table [[4,1],[0,5]]
    independent = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], dtype=float)
    codes = np.column_stack([informative, independent])
    # p(f, z) over 10 rows: (0,0)=4, (0,1)=1, (1,1)=5; p(f=0)=1/2, p(z=0)=4/10
    mi = (0.4 * math.log(0.4 / (0.5 * 0.4)) + 0.1 * math.log(0.1 / (0.5 * 0.6))
          + 0.5 * math.log(0.5 / (0.5 * 0.6)))
    # the independent latent: p(f, z) = (3, 2 / 2, 3) of 10 rows
    mi_independent = 2 * 0.3 * math.log(0.3 / 0.25) + 2 * 0.2 * math.log(0.2 / 0.25)
    expected_gap = (mi - mi_independent) / math.log(2)
    assert mig(codes, factor, n_bins=2) == pytest.approx(expected_gap, rel=1e-12)


def test_mig_is_one_for_the_factors_themselves_and_low_for_rotations():
    np.testing.assert_allclose(mig_gaps(2.0 * FACTORS - 1.0, FACTORS), 1.0, atol=1e-12)
    # noise lets other latents pick up a little plug-in information by chance
    codes = FACTORS + 0.01 * np.random.default_rng(1).standard_normal(FACTORS.shape)
    np.testing.assert_allclose(mig_gaps(codes, FACTORS), 1.0, atol=0.01)
    assert mig(standardized(FACTORS) @ random_rotation(4, 2), FACTORS) < 0.5
    assert mig(standardized(FACTORS) @ HADAMARD, FACTORS) < 0.05


def test_mig_dropping_a_factors_latent_lowers_only_that_factors_gap():
    full = mig_gaps(FACTORS, FACTORS)
    without_2 = mig_gaps(np.delete(FACTORS, 2, axis=1), FACTORS)
    assert without_2[2] == pytest.approx(0.0, abs=1e-12)        # no latent knows factor 2
    np.testing.assert_allclose(np.delete(without_2, 2), np.delete(full, 2), atol=1e-12)


# ---------------------------------------------------------------- SAP

def test_sap_continuous_is_the_gap_in_squared_correlation():
    rng = np.random.default_rng(3)
    codes = rng.standard_normal((300, 3))
    factors = np.column_stack([codes[:, 0] + 0.5 * codes[:, 1], np.round(codes[:, 2] * 2)])
    r2 = np.array([[np.corrcoef(codes[:, i], factors[:, j])[0, 1] ** 2 for j in range(2)]
                   for i in range(3)])
    expected = np.mean(np.sort(r2, axis=0)[-1] - np.sort(r2, axis=0)[-2])
    assert sap(codes, factors, discrete=False) == pytest.approx(expected, rel=1e-10)


def test_sap_top_two_gap_by_hand():
    scores = np.array([[0.9, 0.2], [0.5, 0.6], [0.1, 0.65]])
    np.testing.assert_allclose(K.top_two_gap(scores), [0.4, 0.05])


def test_sap_identity_code_scores_one_minus_chance_and_rotations_score_low():
    binary = full_factorial([2, 2, 2, 2], 100)                 # 1,600 rows, chance 1/2
    codes = binary + 0.05 * np.random.default_rng(4).standard_normal(binary.shape)
    # the copied latent is classified perfectly; the others are independent of the factor,
    # so their test accuracy is 1/2 up to the sampling error of 533 test rows (sd ~0.022)
    assert sap(codes, binary, random_state=0) == pytest.approx(0.5, abs=0.07)
    assert sap(codes, binary, discrete=False) == pytest.approx(1.0, abs=0.02)
    assert sap(standardized(binary) @ HADAMARD, binary, random_state=0) < 0.1
    assert sap(standardized(FACTORS) @ HADAMARD, FACTORS, discrete=False) < 0.05


def test_sap_dropping_a_factors_latent_lowers_only_that_factors_gap():
    codes = FACTORS + 0.01 * np.random.default_rng(5).standard_normal(FACTORS.shape)
    full = K.top_two_gap(K.sap_score_matrix_continuous(codes, FACTORS))
    dropped = K.top_two_gap(K.sap_score_matrix_continuous(np.delete(codes, 1, axis=1), FACTORS))
    assert full[1] > 0.99 and dropped[1] < 0.01
    np.testing.assert_allclose(np.delete(dropped, 1), np.delete(full, 1), atol=1e-3)


# ---------------------------------------------------------------- DCI

def test_dci_scores_by_hand():
    importance = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 0.5]])
    scores = K.dci_scores(importance)
    # latents 0 and 2 serve one factor each (D = 1), latent 1 two equally (D = 0);
    # weights are the latents' shares of the total importance 2.5: 0.4, 0.4, 0.2
    assert scores["disentanglement"] == pytest.approx(0.4 * 1 + 0.4 * 0 + 0.2 * 1, abs=1e-12)
    # factor 0 from latents (2/3, 1/3, 0), factor 1 from (0, 1/2, 1/2); entropies base 3
    h_0 = -((2 / 3) * math.log(2 / 3) + (1 / 3) * math.log(1 / 3)) / math.log(3)
    h_1 = math.log(2) / math.log(3)
    expected = 0.6 * (1 - h_0) + 0.4 * (1 - h_1)                # factor shares 1.5 / 2.5, 1 / 2.5
    assert scores["completeness"] == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(scores["completeness_per_factor"], [1 - h_0, 1 - h_1])


def test_dci_identity_code_scores_one_and_rotations_score_low():
    codes = FACTORS + 0.01 * np.random.default_rng(6).standard_normal(FACTORS.shape)
    result = dci(codes, FACTORS, random_state=0)
    assert result["disentanglement"] > 0.98 and result["completeness"] > 0.98
    assert result["informativeness"] > 0.98
    parallel = dci(codes, FACTORS, random_state=0, n_jobs=2)     # same fits in two workers
    np.testing.assert_array_equal(parallel["importance_matrix"], result["importance_matrix"])
    mixed = dci(standardized(FACTORS) @ HADAMARD, FACTORS, random_state=0)
    assert mixed["disentanglement"] < 0.1
    assert dci(standardized(FACTORS) @ random_rotation(4, 2), FACTORS,
               random_state=0)["disentanglement"] < 0.75


def test_dci_lasso_identity_and_hand_checked_importances():
    codes = FACTORS + 0.01 * np.random.default_rng(7).standard_normal(FACTORS.shape)
    result = dci(codes, FACTORS, method="lasso", alpha=0.01, random_state=0)
    assert result["disentanglement"] > 0.99 and result["completeness"] > 0.99
    assert result["informativeness"] > 0.99
    # on z-scored codes the lasso coefficient of a factor on its own copy is std(v) - alpha
    # (soft-thresholded least squares with orthogonal columns; here std is the training std)
    diagonal = np.diag(result["importance_matrix"])
    assert np.all(np.abs(diagonal - (FACTORS.std(axis=0) - 0.01)) < 0.05)


def test_dci_dropping_a_factors_latent_lowers_only_that_factors_terms():
    codes = FACTORS + 0.01 * np.random.default_rng(8).standard_normal(FACTORS.shape)
    noise = np.random.default_rng(9).standard_normal(len(FACTORS))
    full = dci(codes, FACTORS, random_state=0)
    replaced = codes.copy()
    replaced[:, 3] = noise                               # factor 3's latent now carries nothing
    dropped = dci(replaced, FACTORS, random_state=0)
    per_factor_full = full["completeness_per_factor"]
    per_factor = dropped["completeness_per_factor"]
    assert per_factor[3] < per_factor_full[3] - 0.3
    np.testing.assert_allclose(per_factor[:3], per_factor_full[:3], atol=0.02)
    assert dropped["informativeness"] < full["informativeness"] - 0.1


# ---------------------------------------------------------------- FactorVAE

def test_factorvae_majority_vote_by_hand():
    train = np.array([[5, 0, 1], [1, 7, 4]])         # latent 0 -> factor 0, 1 -> 1, 2 -> 1
    evaluation = np.array([[3, 1, 2], [1, 4, 2]])
    classifier, accuracy = K.majority_vote_accuracy(train, evaluation)
    np.testing.assert_array_equal(classifier, [0, 1, 1])
    assert accuracy == pytest.approx((3 + 4 + 2) / 13)


def test_factorvae_votes_pick_the_fixed_factors_latent():
    # two factors, latent d copies factor d: fixing factor k zeroes latent k's variance
    factors = full_factorial([4, 5], 20)
    votes = K.factorvae_votes(standardized(factors), *K.encode_factors(factors),
                              np.array([True, True]), n_votes=200, batch_size=16,
                              rng=np.random.default_rng(0))
    assert votes.sum() == 200 and votes[0, 1] == 0 and votes[1, 0] == 0


def test_factorvae_axis_aligned_is_one_and_evenly_mixed_is_chance():
    codes = FACTORS + 0.01 * np.random.default_rng(10).standard_normal(FACTORS.shape)
    assert factorvae_score(codes, FACTORS, n_train=2000, n_eval=2000, random_state=0) == 1.0
    # every latent loads 1/2 on every factor: the argmin is noise, accuracy ~ 1/4 (the
    # classifier is fitted on noise; 2,000 eval votes give sd ~0.01, the fit adds a little)
    mixed = standardized(FACTORS) @ HADAMARD
    score = factorvae_score(mixed, FACTORS, n_train=2000, n_eval=2000, random_state=0)
    assert abs(score - 0.25) < 0.12


def test_factorvae_prunes_collapsed_latents_and_reads_a_model():
    codes = FACTORS + 0.01 * np.random.default_rng(11).standard_normal(FACTORS.shape)
    collapsed = np.column_stack([codes, np.full(len(codes), 0.3)
                                 + 1e-3 * np.random.default_rng(12).standard_normal(len(codes))])
    # unpruned, the near-constant latent has normalized variance ~1 in every batch: harmless
    # here, but a pruned latent must never receive a vote
    assert factorvae_score(collapsed, FACTORS, n_train=500, n_eval=500, random_state=0) == 1.0

    class Encoder:
        def transform(self, X):
            return X[:, :4] * 3.0

    score = factorvae_score(Encoder(), FACTORS, X=np.column_stack([codes, codes]),
                            n_train=500, n_eval=500, random_state=0)
    assert score == 1.0
    assert factorvae_score(np.full_like(codes, 0.2) + 1e-4 * codes, FACTORS,
                           random_state=0) == 0.0             # every latent pruned


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("metric", [mig, sap, dci, factorvae_score])
def test_bad_input_errors_name_the_problem(metric):
    codes = FACTORS.copy()
    constant = FACTORS.copy()
    constant[:, 2] = 7.0
    with pytest.raises(InvalidInputError, match="factor column 2 takes a single value"):
        metric(codes, constant)
    with_nan = codes.copy()
    with_nan[5, 1] = np.nan
    with pytest.raises(InvalidInputError, match="codes"):
        metric(with_nan, FACTORS)
    with_inf = codes.copy()
    with_inf[0, 0] = np.inf
    with pytest.raises(InvalidInputError, match="codes"):
        metric(with_inf, FACTORS)
    with pytest.raises(InvalidInputError, match="same rows"):
        metric(codes[:-1], FACTORS)
    with pytest.raises(InvalidInputError, match="at least 10 rows"):
        metric(codes[:5], FACTORS[:5])
    with pytest.raises(InvalidInputError, match="reshape"):
        metric(codes[:, 0], FACTORS)


def test_bad_parameters_and_model_arguments():
    with pytest.raises(InvalidParameterError, match="n_bins"):
        mig(FACTORS, FACTORS, n_bins=1)
    with pytest.raises(InvalidParameterError, match="method"):
        dci(FACTORS, FACTORS, method="forest")
    with pytest.raises(InvalidParameterError, match="test_fraction"):
        sap(FACTORS, FACTORS, test_fraction=1.5)
    with pytest.raises(InvalidInputError, match="without X"):
        factorvae_score(type("M", (), {"transform": lambda self, X: X})(), FACTORS)
    with pytest.raises(InvalidInputError, match="X was given with codes"):
        factorvae_score(FACTORS, FACTORS, X=FACTORS)
    unique = np.column_stack([FACTORS[:, 0], np.arange(len(FACTORS))])
    with pytest.raises(InvalidInputError, match="factor column 1 has no value shared"):
        factorvae_score(FACTORS[:, :2], unique)
