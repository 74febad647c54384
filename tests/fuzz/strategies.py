"""Hypothesis strategies for the fuzz suite: random problems inside a registered model's input
domain, with random valid hyper-parameters.

A problem is `Problem(name, kwargs, X)`: the constructor arguments and the data
X : (n_samples, n_features) float64 (for a sequence model the rows are the time steps of one
sequence), NaN marking a missing entry only where the model marginalizes it. Shapes are small
(n_samples 1..60, n_features 1..6, or the model's own fixed number of columns) so that every
example fits in milliseconds.

The domain of a model comes from its spec's own example problem (`spec.example`):

    real    any finite floats (PCA, FA, ICA, mixtures of Gaussians, LDS, ...)
    binary  0/1 (the example's values are all 0 or 1 and the spec is not categorical)
    counts  non-negative integer counts (the example's values are whole numbers >= 0 with
            some above 1, and the model takes no NaN: LDA's document-term matrices); drawn
            at rates from 0.01 to 1e4 per entry, with empty rows (documents) and columns
            (words) among them
    codes   integer codes 0..c_j - 1 of a categorical spec; a spec whose example passes
            `cardinalities` (a Bayesian network) keeps the example's columns and their levels

Degenerate data is drawn on purpose: scales from 1e-8 to 1e100 (one for all columns or one per
column), a large offset against a small spread, constant columns, duplicated rows (some, or all
rows equal) and missing patterns (never an all-NaN column: that is a documented error, so it
would only test validation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from hypothesis import strategies as st

from latentkit.base import EMModel
from latentkit.registry import ModelSpec

MAX_ROWS = 60
MAX_FEATURES = 6
#: multipliers of a column's unit spread: tiny, ordinary, huge
SCALES = (1e-8, 1e-4, 1.0, 1e4, 1e8, 1e50, 1e100)
#: a column's offset, in units of its spread (1e6: a small spread around a large value)
OFFSETS = (0.0, 1.0, 1e6)
MISSING_RATES = (0.0, 0.1, 0.3, 0.6)


@dataclass(frozen=True)
class Domain:
    """What data a model takes.

    kind : "real", "binary" or "codes".
    n_features : the fixed number of columns (a network's observed nodes), or None (free).
    levels : (n_features,) the cardinality of each column when fixed ("codes" only), or None.
    allow_nan : whether NaN (missing) is marginalized (`model._allow_nan`).
    time_steps : whether the rows are the time steps of one sequence.
    """

    kind: str
    n_features: int | None
    levels: tuple[int, ...] | None
    allow_nan: bool
    time_steps: bool


@dataclass(frozen=True)
class Problem:
    """One fuzz case: `cls(**kwargs).fit(X)`; its repr is a reproducer."""

    name: str
    kwargs: dict
    X: np.ndarray  # (n_samples, n_features) float64, NaN = missing

    def __repr__(self) -> str:
        return (f"Problem({self.name!r}, shape={self.X.shape}): "
                f"spec.cls(**{self.kwargs!r}).fit(np.array({self.X.tolist()!r}))")

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis prints examples with this
        printer.text(repr(self))


@cache
def domain_of(spec: ModelSpec) -> Domain:
    """The input domain of `spec`'s model, read off its example problem (module docstring)."""
    kwargs, X = spec.example(np.random.default_rng(0))
    X = np.asarray(X, dtype=np.float64)
    model = spec.cls(**kwargs)
    observed = X[~np.isnan(X)]
    fixed = "cardinalities" in kwargs
    if spec.categorical:
        kind = "codes"
    elif np.isin(observed, (0.0, 1.0)).all():
        kind = "binary"
    elif (not model._allow_nan and np.all(observed >= 0)
          and np.all(observed == np.round(observed))):
        kind = "counts"
    else:
        kind = "real"
    levels = tuple(int(np.nanmax(X[:, j])) + 1 for j in range(X.shape[1])) if fixed else None
    return Domain(kind, X.shape[1] if fixed else None, levels, bool(model._allow_nan),
                  bool(getattr(model, "_rows_are_time_steps", False)))


# -- data ---------------------------------------------------------------------------------


@st.composite
def real_values(draw, rng: np.random.Generator, n: int, D: int) -> np.ndarray:
    """(n, D) finite floats: a base shape (Gaussian, heavy-tailed, clustered, or a coarse
    lattice with many ties) times per-column scales, plus offsets."""
    base = draw(st.sampled_from(("gaussian", "cauchy", "clusters", "lattice")))
    if base == "gaussian":
        X = rng.standard_normal((n, D))
    elif base == "cauchy":
        X = rng.standard_cauchy((n, D))
    elif base == "clusters":
        X = rng.standard_normal((3, D))[rng.integers(0, 3, n)] * 5 + rng.standard_normal((n, D))
    else:
        X = rng.integers(-2, 3, (n, D)).astype(np.float64)
    if draw(st.booleans()):
        scales = np.full(D, draw(st.sampled_from(SCALES)))
    else:
        scales = np.array(draw(st.lists(st.sampled_from(SCALES), min_size=D, max_size=D)))
    offset = draw(st.sampled_from(OFFSETS))
    return (X + offset) * scales


def code_values(rng: np.random.Generator, n: int, levels) -> np.ndarray:
    """(n, D) integer codes, column j uniform on 0..levels[j] - 1, as float64."""
    return np.stack([rng.integers(0, c, n) for c in levels], axis=1).astype(np.float64)


@st.composite
def degenerate(draw, rng: np.random.Generator, X: np.ndarray, domain: Domain) -> np.ndarray:
    """X : (n, D) with constant columns and duplicated rows drawn in (each in about a third
    of the examples, so that most fits still have something to learn), then missing entries
    where allowed, every column keeping at least one observed entry."""
    n, D = X.shape
    X = X.copy()
    constant = draw(st.sampled_from(("none", "none", "none", "one", "some")))
    if constant != "none":
        count = 1 if constant == "one" else rng.integers(1, D + 1)
        columns = rng.permutation(D)[:count]
        X[:, columns] = X[0, columns]  # constant columns, at values of their own domain
    duplicates = draw(st.sampled_from(("none", "none", "none", "some", "all")))
    if duplicates == "all":
        X[:] = X[0]
    elif duplicates == "some" and n > 1:
        rows = rng.choice(n, size=rng.integers(1, n), replace=False)
        X[rows] = X[rng.integers(0, n)]
    rate = draw(st.sampled_from(MISSING_RATES)) if domain.allow_nan else 0.0
    if rate:
        missing = rng.random((n, D)) < rate
        for j in np.flatnonzero(missing.all(axis=0)):
            missing[rng.integers(0, n), j] = False  # never an all-NaN column
        X[missing] = np.nan
    return X


@st.composite
def data_in_domain(draw, domain: Domain) -> np.ndarray:
    """X : (n_samples, n_features) float64 in `domain`, degenerate features drawn in."""
    n = draw(st.integers(1, MAX_ROWS), label="n_samples")
    D = domain.n_features or draw(st.integers(1, MAX_FEATURES), label="n_features")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="data_seed"))
    if domain.kind == "real":
        X = draw(real_values(rng, n, D))
    elif domain.kind == "binary":
        p = np.array(draw(st.lists(st.sampled_from((0.0, 0.1, 0.5, 0.9, 1.0)),
                                   min_size=D, max_size=D)))
        X = (rng.random((n, D)) < p).astype(np.float64)
    elif domain.kind == "counts":
        X = draw(count_values(rng, n, D))
    else:
        levels = domain.levels or draw(st.lists(st.integers(1, 4), min_size=D, max_size=D))
        X = code_values(rng, n, levels)
    return draw(degenerate(rng, X, domain))


#: a count's expected value: rare words, ordinary ones, and very long documents
COUNT_RATES = (0.0, 0.01, 1.0, 100.0, 1e4)


@st.composite
def count_values(draw, rng: np.random.Generator, n: int, D: int) -> np.ndarray:
    """(n, D) Poisson counts as float64, each column at its own rate (a rate of 0 makes an
    empty word), some rows emptied (documents with no words)."""
    rates = np.array(draw(st.lists(st.sampled_from(COUNT_RATES), min_size=D, max_size=D)))
    X = rng.poisson(rates, size=(n, D)).astype(np.float64)
    if draw(st.booleans()):
        X[rng.random(n) < 0.3] = 0.0
    return X


# -- hyper-parameters ---------------------------------------------------------------------


def engine_options(draw, n: int) -> dict:
    """The EM engine's hyper-parameters every EMModel takes (small budgets)."""
    return {"max_iter": draw(st.integers(1, 40)),
            "tol": draw(st.sampled_from((0.0, 1e-8, 1e-4, 1e-2))),
            "n_init": draw(st.integers(1, 2)),
            "chunk_size": draw(st.one_of(st.none(), st.integers(1, MAX_ROWS))),
            "random_state": draw(st.integers(0, 2**16))}


def _size(draw, n: int, most: int = 4) -> int:
    """A model size 1..most, bounded by the rows (larger is a documented error; drawn too)."""
    return draw(st.integers(1, max(1, min(most, n + 1))))


def _pca(draw, n, D):
    return {"n_components": draw(st.one_of(
                st.none(), st.integers(1, min(n, D)), st.floats(0.05, 0.95), st.just("mle"))),
            "whiten": draw(st.booleans()),
            "svd_solver": draw(st.sampled_from(
                ("auto", "covariance_eigh", "full", "gram", "randomized", "arpack")))}


def _ppca(draw, n, D):
    return {"n_components": _size(draw, n, max(1, D - 1)),
            "solver": draw(st.sampled_from(("auto", "closed_form", "em", "em_pca"))),
            "init_params": draw(st.sampled_from(("pca", "random")))}


def _fa(draw, n, D):
    return {"n_components": draw(st.one_of(st.none(), st.integers(1, D))),
            "solver": draw(st.sampled_from(("auto", "svd", "em"))),
            "rotation": draw(st.sampled_from((None, "varimax", "quartimax"))),
            "svd_method": draw(st.sampled_from(("lapack", "randomized"))),
            "init_params": draw(st.sampled_from(("pca", "random")))}


def _ica(draw, n, D):
    return {"n_components": draw(st.one_of(st.none(), st.integers(1, D))),
            "algorithm": draw(st.sampled_from(("parallel", "deflation"))),
            "fun": draw(st.sampled_from(("logcosh", "exp", "cube"))),
            "whiten": draw(st.sampled_from(("unit-variance", "arbitrary-variance", False))),
            "whiten_solver": draw(st.sampled_from(("svd", "eigh"))),
            "max_iter": draw(st.integers(1, 200))}


MIXTURE_INITS = ("kmeans", "k-means++", "random", "random_from_data")


def _gmm(draw, n, D):
    return {"n_components": _size(draw, n),
            "covariance_type": draw(st.sampled_from(("full", "tied", "diag", "spherical"))),
            "reg_covar": draw(st.sampled_from((1e-6, 1e-3, 0.0))),
            "init_params": draw(st.sampled_from(MIXTURE_INITS))}


def _discrete(size_name):
    def options(draw, n, D):
        return {size_name: _size(draw, n),
                "alpha": draw(st.sampled_from((0.01, 1e-6, 1.0))),
                "weight_alpha": draw(st.sampled_from((1.0, 0.5, 2.0))),
                "init_params": draw(st.sampled_from(MIXTURE_INITS))}
    return options


def _mppca(draw, n, D):
    return {"n_components": _size(draw, n, 3),
            "n_latent": draw(st.integers(1, max(1, min(3, D - 1)))),
            "min_noise_variance": draw(st.sampled_from((1e-6, 1e-3))),
            "init_params": draw(st.sampled_from(MIXTURE_INITS))}


def _bayesnet(draw, n, D):
    return {"alpha": draw(st.sampled_from((0.01, 0.0, 1.0))),
            "init_params": draw(st.sampled_from(("data", "random"))),
            "elimination": draw(st.sampled_from(("min_fill", "min_weight")))}


def _lds(draw, n, D):
    return {"state_dim": draw(st.integers(1, 3)),
            "covariance_type": draw(st.sampled_from(("full", "diag"))),
            "reg_covar": draw(st.sampled_from((1e-6, 1e-3))),
            "method": draw(st.sampled_from(("auto", "serial", "parallel")))}


def _lda(draw, n, D):
    method = draw(st.sampled_from(("batch", "online", "gibbs")))
    options = {"n_topics": draw(st.integers(1, 4)), "method": method,
               "init": draw(st.sampled_from(("kmeans", "random"))),
               "doc_topic_prior": draw(st.sampled_from((None, 1e-3, 0.1, 10.0))),
               "topic_word_prior": draw(st.sampled_from((None, 1e-3, 0.1, 10.0))),
               "optimize_alpha": draw(st.booleans()),
               "batch_size": draw(st.integers(1, 64)), "thin": draw(st.integers(1, 5)),
               "n_threads": draw(st.integers(1, 2))}
    if method != "gibbs":
        options["optimize_eta"] = draw(st.booleans())
    return options


def _deep(draw, n, D):
    """Tiny networks and one or two epochs: the properties, not the quality, are at stake."""
    return {"hidden": draw(st.sampled_from(((), (4,), (8, 4)))),
            "epochs": draw(st.integers(1, 2)), "batch_size": draw(st.integers(1, 64)),
            "lr": draw(st.sampled_from((1e-3, 1e-1))),
            "beta": draw(st.sampled_from((0.0, 1.0, 4.0))),
            "kl_warmup_epochs": draw(st.sampled_from((0.0, 1.0))),
            "clip_grad_norm": draw(st.sampled_from((None, 1.0))),
            "random_state": draw(st.integers(0, 2**16))}


def _vae(draw, n, D):
    return {**_deep(draw, n, D), "latent_dim": draw(st.integers(1, 3))}


def _iwae(draw, n, D):
    return {**_vae(draw, n, D), "k": draw(st.integers(1, 4))}


def _hvae(draw, n, D):
    return {**_deep(draw, n, D), "k": draw(st.integers(1, 3)),
            "latent_dims": tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))),
            "ladder": draw(st.booleans())}


#: name -> (draw, n_samples, n_features) -> the model's own hyper-parameters
MODEL_OPTIONS = {"pca": _pca, "ppca": _ppca, "fa": _fa, "ica": _ica, "gmm": _gmm,
                 "bmm": _discrete("n_components"), "cmm": _discrete("n_components"),
                 "lca": _discrete("n_classes"), "mppca": _mppca, "bayesnet": _bayesnet,
                 "lds": _lds, "lda": _lda, "vae": _vae, "iwae": _iwae, "hvae": _hvae}


@st.composite
def problems(draw, spec: ModelSpec) -> Problem:
    """A random Problem for `spec`: data in its domain; the example's constructor arguments
    (its structure, for a network) overridden by random valid hyper-parameters. A model
    registered without an entry in MODEL_OPTIONS gets a random size (its `size_param`) and,
    for an EM model, random engine options."""
    domain = domain_of(spec)
    X = draw(data_in_domain(domain))
    n, D = X.shape
    kwargs, _ = spec.example(np.random.default_rng(0))
    if isinstance(spec.cls(**kwargs), EMModel):
        kwargs.update(engine_options(draw, n))
    else:
        kwargs["random_state"] = draw(st.integers(0, 2**16))
    own = MODEL_OPTIONS.get(spec.name)
    if own is not None:
        kwargs.update(own(draw, n, D))
    elif spec.size_param is not None:
        kwargs[spec.size_param] = _size(draw, n)
    return Problem(spec.name, kwargs, X)
