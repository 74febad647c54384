"""Proof of extensibility (issue 9 part 8): a model family defined only in this file — a
mixture of independent Poissons for count data — registers through the public extension
point (`latentkit.registry.register`, `latentkit.em.EMFamily`, `latentkit.base.EMModel`,
`latentkit.io.register_record`) and gets fit / save / load, sparse input, the command line's
`fit`, `evaluate` and `report`, and the whole contract suite, with no change outside it.

    z ~ Categorical(π),   x_d | z = k ~ Poisson(λ_kd),
    log p(x | k) = Σ_d x_d log λ_kd - λ_kd - log x_d!
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.special import gammaln, logsumexp

from contract.checks import CHECKS, run_check
from latentkit import em, load
from latentkit._validation import Interval, as_generator, check_n_components
from latentkit.base import EMModel
from latentkit.distributions import Categorical
from latentkit.exceptions import InvalidInputError
from latentkit.io import register_record
from latentkit.registry import ModelSpec, get_spec, register

# -- the family's pure functions ---------------------------------------------------------------


class PoissonParams(NamedTuple):
    weights: np.ndarray  # (K,)
    rates: np.ndarray  # (K, D)


class PoissonConfig(NamedTuple):
    n_components: int


@register_record
@dataclass(frozen=True)
class PoissonStats(em.SufficientStats):
    additive: ClassVar[tuple[str, ...]] = ("n", "nk", "sx")
    n: float
    nk: np.ndarray  # (K,) Σ_n r_nk
    sx: np.ndarray  # (K, D) Σ_n r_nk x_n


def log_joint(params: PoissonParams, X) -> np.ndarray:
    """log π_k + log p(x_n | k) : (n, K) for dense or CSR X : (n, D)."""
    if sp.issparse(X):
        log_factorial = np.asarray(sp.csr_matrix(
            (gammaln(X.data + 1.0), X.indices, X.indptr), shape=X.shape).sum(axis=1)).ravel()
    else:
        log_factorial = gammaln(X + 1.0).sum(axis=1)
    counts = np.asarray(X @ np.log(params.rates).T)
    return counts - params.rates.sum(axis=1) - log_factorial[:, None] + np.log(params.weights)


def init(X, rng, config: PoissonConfig, restart: int):
    mean = np.asarray(X.mean(axis=0)).ravel() + 1e-3
    rates = mean * rng.uniform(0.5, 1.5, size=(config.n_components, len(mean)))
    return PoissonParams(np.full(config.n_components, 1.0 / config.n_components), rates), None


def e_step(params, state, config, X):
    joint = log_joint(params, X)
    norm = logsumexp(joint, axis=1)
    resp = np.exp(joint - norm[:, None])
    sx = np.asarray((X.T @ resp).T) if sp.issparse(X) else resp.T @ X
    return PoissonStats(float(X.shape[0]), resp.sum(axis=0), sx), float(norm.sum())


def m_step(stats: PoissonStats, params, state, config):
    nk = np.maximum(stats.nk, 1e-12)
    rates = np.maximum(stats.sx / nk[:, None], 1e-10)
    return PoissonParams(stats.nk / stats.n, rates), state, em.NOTHING


POISSON_EM = em.EMFamily(init, e_step, m_step, objective=em.EXACT,
                         remedy="use fewer components or fit in float64")


# -- the estimator: thin wiring -----------------------------------------------------------------


class PoissonMixture(EMModel):
    """A mixture of independent Poissons (counts; dense or scipy.sparse input)."""

    em_family = POISSON_EM
    _allow_nan = False
    _accept_sparse = True
    _parameter_constraints: ClassVar[dict] = {"n_components": [Interval(int, 1, None)]}

    def __init__(self, n_components=2, *, tol=1e-6, max_iter=200, n_init=1,
                 random_state=None, warm_start=False, verbose=0, max_time=None,
                 callbacks=None, chunk_size=None, learning_decay=0.7, learning_offset=10.0):
        self._store_init_args(locals())

    def _validate_X(self, X, *, reset):
        X = super()._validate_X(X, reset=reset)
        if (X < 0).any():
            raise InvalidInputError("PoissonMixture needs counts >= 0.")
        return X

    def _em_config(self, n_samples, n_features):
        if n_samples is not None:
            check_n_components(self.n_components, n_samples)
        return PoissonConfig(self.n_components)

    def _store_params(self, params, dtype):
        self.weights_ = params.weights.astype(dtype)
        self.rates_ = params.rates.astype(dtype)

    def _current_params(self):
        return PoissonParams(self.weights_.astype(np.float64), self.rates_.astype(np.float64))

    def _n_parameters(self):
        K, D = self.rates_.shape
        return K - 1 + K * D

    def score_samples(self, X):
        X = self._validate_X(X, reset=False)
        return logsumexp(log_joint(self._current_params(), X), axis=1).astype(X.dtype)

    def posterior(self, X):
        X = self._validate_X(X, reset=False)
        return Categorical(log_probs=log_joint(self._current_params(), X))

    def predict(self, X):
        return self.posterior(X).mode

    def sample(self, n_samples=1, random_state=None):
        rng = as_generator(random_state)
        params = self._current_params()
        z = rng.choice(len(params.weights), size=n_samples, p=params.weights)
        return rng.poisson(params.rates[z]).astype(self.rates_.dtype), z


def example(rng):
    z = rng.integers(0, 2, size=240)
    rates = np.array([[0.5, 4.0, 1.0], [5.0, 0.5, 2.0]])
    return {"n_components": 2, "random_state": 0}, rng.poisson(rates[z]).astype(float)


SPEC = register(ModelSpec(
    "poisson", PoissonMixture, "mixture of independent Poissons for count data", "digits",
    "scikit-learn digits, grey levels 0-16 as counts (1797 x 64)", example=example))


# -- what the family gets without any change outside this file ------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__[6:] for c in CHECKS])
def test_the_family_passes_the_whole_contract_suite(check, tmp_path):
    run_check(check, SPEC, tmp_path)


def test_it_recovers_the_planted_rates_and_saves_and_loads(tmp_path):
    kwargs, X = example(np.random.default_rng(3))
    model = PoissonMixture(**kwargs).fit(X)
    order = np.argsort(model.rates_[:, 0])
    np.testing.assert_allclose(model.rates_[order], [[0.5, 4.0, 1.0], [5.0, 0.5, 2.0]],
                               atol=0.5)
    model.save(tmp_path / "p.npz")
    np.testing.assert_array_equal(load(tmp_path / "p.npz").predict(X), model.predict(X))


def test_sparse_counts_fit_exactly_as_the_dense_array():
    kwargs, X = example(np.random.default_rng(4))
    dense = PoissonMixture(**kwargs, chunk_size=50).fit(X)
    sparse = PoissonMixture(**kwargs, chunk_size=50).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.history_, dense.history_, rtol=1e-12)
    np.testing.assert_allclose(sparse.rates_, dense.rates_, rtol=1e-10)


def test_a_model_that_refuses_sparse_input_says_so():
    from latentkit import GaussianMixture

    with pytest.raises(InvalidInputError, match="does not take sparse input"):
        GaussianMixture(2).fit(sp.csr_matrix(np.eye(5)))


def test_the_registry_knows_it():
    assert get_spec("poisson") is SPEC


def test_the_command_line_fits_evaluates_and_reports_it(tmp_path, capsys):
    from latentkit.cli.main import main

    _, X = example(np.random.default_rng(5))
    csv = tmp_path / "counts.csv"
    np.savetxt(csv, X, delimiter=",", header="a,b,c", comments="", fmt="%d")
    run = tmp_path / "run"
    assert main(["fit", "poisson", str(csv), "-k", "2", "--random-state", "0", "--out",
                 str(run), "--quiet"]) == 0
    model = load(run / "model.npz")
    assert isinstance(model, PoissonMixture) and model.n_components == 2
    capsys.readouterr()
    assert main(["evaluate", str(run / "model.npz"), str(csv)]) == 0
    printed = capsys.readouterr().out
    frame = pd.DataFrame(X, columns=["a", "b", "c"])  # the names it was fitted with
    assert f"{model.score(frame):.4g}"[:5] in printed  # its mean log-likelihood is reported
    report = tmp_path / "report"
    assert main(["report", str(run / "model.npz"), str(csv), "--out", str(report)]) == 0
    page = (report / "index.html").read_text()
    images = [name for name in page.split('src="')[1:]]
    assert "PoissonMixture" in page and images, "the page names the model and has figures"
    for name in images:
        assert (report / name.split('"')[0]).is_file()
