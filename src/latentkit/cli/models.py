"""The registry of models the command line knows: name -> `ModelSpec`.

A spec says which class a name means, its embedded default dataset, how a bundled dataset is
turned into the model's input (e.g. binarized for a Bernoulli mixture), which
hyper-parameters the summary shows, and how its figures are made. Adding a model to the
command line is adding one `ModelSpec(...)` to `REGISTRY`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import Data

# -- preparing bundled datasets for a model -----------------------------------------------


def as_is(data: Data) -> Data:
    return data


def binarize(data: Data) -> Data:
    """Binary data for a Bernoulli model: bundled image data (digits, mnist) is thresholded
    at half its grey-level range (x > (low + high) / 2); already-binary data is kept."""
    X = data.X
    finite = X[~np.isnan(X)]
    if np.isin(finite, (0.0, 1.0)).all():
        return data
    if data.value_range is None:
        raise ValueError(f"{data.name} is not binary and has no natural threshold; a "
                         f"Bernoulli mixture needs 0/1 data: use digits, mnist or "
                         f"binarized_mnist, or a file of 0/1 values.")
    low, high = data.value_range
    return data.replace(X=np.where(np.isnan(X), np.nan, (X > (low + high) / 2).astype(float)),
                        name=f"{data.name} (binarized at {(low + high) / 2:g})")


def discretize(data: Data, n_levels: int = 3) -> Data:
    """Integer-coded categories for a categorical model: image data (digits, mnist) becomes
    4 equal-width grey levels of its range; other continuous data becomes `n_levels`
    quantile bins per column (tertiles: low / medium / high); 0/1 data is kept."""
    X = data.X
    finite = X[~np.isnan(X)]
    if np.isin(finite, (0.0, 1.0)).all():
        return data
    if data.value_range is not None:
        low, high = data.value_range
        codes = np.minimum(np.floor((X - low) / (high - low) * 4), 3)
        name = f"{data.name} (4 grey levels)"
    else:
        codes = np.empty_like(X, dtype=np.float64)
        for j in range(X.shape[1]):
            column = X[:, j]
            edges = np.nanquantile(column, np.arange(1, n_levels) / n_levels)
            codes[:, j] = np.searchsorted(edges, column, side="right")
        name = f"{data.name} ({n_levels} quantile bins per column)"
    return data.replace(X=np.where(np.isnan(X), np.nan, codes), name=name)


# -- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureJob:
    """What a figure function gets: the fitted model, its data, where to write, and the
    model-selection result when K was chosen automatically."""

    model: object
    data: Data
    out_dir: Path
    selection: object | None = None


def _criterion_figure(job: FigureJob) -> list[tuple[Path, str]]:
    """The criterion curve when the number of components was chosen automatically."""
    from latentkit import plot

    if job.selection is None:
        return []
    path = plot.save_figure(plot.plot_criterion_curve(job.selection.table),
                            job.out_dir / "criterion.png")
    return [(path, "model-selection criterion against the number of components")]


def _complete_rows(model, X: np.ndarray) -> np.ndarray:
    """X without NaN: imputed by the model when it can, else the complete rows."""
    if not np.isnan(X).any():
        return X
    if hasattr(model, "impute"):
        return np.asarray(model.impute(X))
    return X[~np.isnan(X).any(axis=1)]


def mixture_figures(job: FigureJob) -> list[tuple[Path, str]]:
    """Figures of a fitted mixture: density contours with component ellipses for 2-D
    Gaussian data, else a 2-D projection coloured by cluster; component means as images for
    image data; the criterion curve when K was chosen; the EM log-likelihood curve."""
    from latentkit import plot

    model, data, out = job.model, job.data, job.out_dir
    figures = _criterion_figure(job)
    X = np.asarray(data.X, dtype=np.float64)
    if X.shape[1] == 2 and hasattr(model, "covariances_"):
        ax = plot.plot_density_2d(model, X, feature_names=data.column_names)
        figures.append((plot.save_figure(ax, out / "density.png"),
                        "log-density contours, 1 and 2 s.d. component ellipses"))
    else:
        X = _complete_rows(model, X)
        ax = plot.plot_projection_2d(X, model.predict(X))
        figures.append((plot.save_figure(ax, out / "projection.png"),
                        "2-D PCA projection coloured by predicted cluster"))
    shape = data.image_shape
    means = np.asarray(getattr(model, "means_", np.empty((0, 0))))
    if shape is not None and means.ndim == 2 and means.shape[1] == shape[0] * shape[1]:
        weights = getattr(model, "weights_", None)
        titles = None if weights is None else [f"w={w:.3f}" for w in weights]
        fig = plot.plot_image_grid(means, tuple(shape), titles=titles,
                                   suptitle="component means")
        figures.append((plot.save_figure(fig, out / "means.png"), "component means as images"))
    history = getattr(model, "history_", None)
    if history is not None and len(history):
        figures.append((plot.save_figure(plot.plot_history(history), out / "history.png"),
                        "EM log-likelihood per iteration"))
    return figures


def linear_figures(job: FigureJob) -> list[tuple[Path, str]]:
    """Figures of a fitted linear-Gaussian model (PCA, PPCA, FA): the data in the first two
    latent coordinates (coloured by label when known), the components as images for image
    data, the criterion curve when M was chosen, the EM log-likelihood curve."""
    from latentkit import plot

    model, data, out = job.model, job.data, job.out_dir
    figures = _criterion_figure(job)
    X = _complete_rows(model, np.asarray(data.X, dtype=np.float64))
    Z = np.asarray(model.transform(X), dtype=np.float64)
    if Z.shape[1] >= 2:
        labels = (np.zeros(len(Z), dtype=int) if data.target is None
                  else np.unique(data.target, return_inverse=True)[1])
        ax = plot.plot_projection_2d(Z[:, :2], labels, title="latent coordinates 1 and 2")
        figures.append((plot.save_figure(ax, out / "latent.png"),
                        "rows in the first two latent coordinates (colour: label if known)"))
    shape = data.image_shape
    components = np.asarray(model.components_)
    if shape is not None and components.shape[1] == shape[0] * shape[1]:
        fig = plot.plot_image_grid(components[:16], tuple(shape), cmap="RdBu_r",
                                   suptitle="components")
        figures.append((plot.save_figure(fig, out / "components.png"),
                        "components (rows of components_) as images"))
    history = getattr(model, "history_", None)
    if history is not None and len(history) > 1:
        figures.append((plot.save_figure(plot.plot_history(history), out / "history.png"),
                        "EM objective per iteration"))
    return figures


def ica_figures(job: FigureJob) -> list[tuple[Path, str]]:
    """Figures of a fitted FastICA (see latentkit.cli.demo_linear.ica_figures)."""
    from .demo_linear import ica_figures as figures

    return figures(job)


def lds_figures(job: FigureJob) -> list[tuple[Path, str]]:
    """Figures of a fitted linear dynamical system (see latentkit.dynamics.plotting)."""
    from latentkit.dynamics.plotting import lds_figures as figures

    return figures(job)


def bayesnet_figures(job: FigureJob) -> list[tuple[Path, str]]:
    """Figures of a fitted Bayesian network (see latentkit.cli.demo_bayesnet)."""
    from .demo_bayesnet import network_figures

    return network_figures(job)


# -- command-line options for a model ----------------------------------------------------


def split_model_options(tokens: list[str], known: set[str]):
    """(tokens for argparse, {option name: raw value}) from the words after `fit`: every
    `--name VALUE` or `--name=VALUE` whose --name argparse does not know is a model option."""
    rest, options = [], {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            rest.extend(tokens[index:])
            break
        name, equals, value = token[2:].partition("=")
        if token.startswith("--") and name and f"--{name}" not in known:
            if not equals:
                if index + 1 >= len(tokens):
                    raise ValueError(f"option --{name} needs a value")
                value = tokens[index + 1]
                index += 1
            options[name] = value
        else:
            rest.append(token)
        index += 1
    return rest, options


def coerce(text: str):
    """A command-line value as int, float, bool, None, an array (.npy file), else str."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if lowered.endswith(".npy"):
        if not os.path.isfile(text):
            raise FileNotFoundError(f"no such file: {text}")
        return np.load(text, allow_pickle=False)
    return text


def model_kwargs(spec, raw: dict[str, str]) -> dict:
    """Constructor keyword arguments from the raw --option values; unknown names are an
    error that lists the valid options."""
    valid = spec.options()
    kwargs = {}
    for name, text in raw.items():
        param = name.replace("-", "_")
        if param not in valid:
            listed = ", ".join("--" + v.replace("_", "-") for v in valid)
            raise ValueError(f"unknown option --{name} for {spec.name} ({spec.class_name}); "
                             f"valid options: -k/--n-components, --criterion, --out, --key, "
                             f"--max-rows, {listed}")
        kwargs[param] = coerce(text)
    return kwargs

# -- the registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """How the command line handles one model.

    class_path : "module:ClassName", imported when first needed.
    default_data : the bundled dataset used when DATA is not given.
    prepare : turns a bundled dataset into the model's input domain (files are used as is).
    summary_params : hyper-parameters shown in the summary table.
    k_param : the constructor parameter -k/--n-components sets (None: the model has none).
    default_k : K when -k is not given: "auto" (chosen by the criterion) or an int.
    hidden_params : constructor parameters not offered as command-line options.
    defaults : constructor values used unless the command line sets them.
    """

    name: str
    class_path: str
    description: str
    default_data: str
    default_data_note: str
    prepare: Callable[[Data], Data] = as_is
    figures: Callable[[FigureJob], list[tuple[Path, str]]] = mixture_figures
    summary_params: tuple[str, ...] = ()
    k_param: str | None = "n_components"
    default_k: int | str = "auto"
    hidden_params: tuple[str, ...] = ("callbacks",)
    #: constructor values the command line uses unless --options set them
    defaults: tuple[tuple[str, object], ...] = ()

    @property
    def cls(self) -> type:
        module, _, name = self.class_path.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def class_name(self) -> str:
        return self.class_path.partition(":")[2]

    def options(self) -> list[str]:
        """Constructor parameters settable as --some-option VALUE."""
        names = self.cls().get_params(deep=False)
        return sorted(n for n in names if n != self.k_param and n not in self.hidden_params)


REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(
        "gmm", "latentkit.mixture.gaussian:GaussianMixture",
        "Gaussian mixture (full, diag, spherical or tied covariance)",
        "faithful", "Old Faithful eruptions (272 x 2)",
        summary_params=("covariance_type",)),
    ModelSpec(
        "bmm", "latentkit.mixture.bernoulli:BernoulliMixture",
        "Bernoulli mixture for binary data",
        "digits", "scikit-learn digits binarized at half range, grey level > 8 (1797 x 64)",
        prepare=binarize),
    ModelSpec(
        "cmm", "latentkit.mixture.categorical:CategoricalMixture",
        "categorical mixture for integer-coded categorical columns",
        "wine", "wine, each of 13 columns cut into tertiles: levels 0/1/2 (178 x 13)",
        prepare=discretize),
    ModelSpec(
        "pca", "latentkit.linear.pca:PCA", "principal component analysis",
        "digits", "scikit-learn digits, 8 x 8 grey levels 0-16 (1797 x 64)",
        figures=linear_figures, summary_params=("svd_solver",), default_k=10),
    ModelSpec(
        "ppca", "latentkit.linear.ppca:PPCA",
        "probabilistic PCA (closed form or EM; missing values)",
        "digits", "scikit-learn digits, 8 x 8 grey levels 0-16 (1797 x 64)",
        figures=linear_figures, summary_params=("solver",)),
    ModelSpec(
        "fa", "latentkit.linear.factor_analysis:FactorAnalysis",
        "factor analysis (diagonal noise; missing values; varimax)",
        "wine", "wine, 13 chemical measurements (178 x 13)",
        figures=linear_figures, summary_params=("rotation",)),
    ModelSpec(
        "mppca", "latentkit.mixture.ppca_mixture:MixtureOfPPCA",
        "mixture of probabilistic PCA models: clusters with a local M-dimensional linear "
        "subspace each (--n-latent M, default 2); missing values",
        "digits", "scikit-learn digits, 8 x 8 grey levels 0-16 (1797 x 64)",
        summary_params=("n_latent",), default_k=10),
    ModelSpec(
        "ica", "latentkit.linear.ica:FastICA",
        "independent component analysis by FastICA (--fun logcosh|exp|cube, --algorithm "
        "parallel|deflation)",
        "digits", "scikit-learn digits, 8 x 8 grey levels 0-16 (1797 x 64)",
        figures=ica_figures, summary_params=("fun", "algorithm"), default_k=10),
    ModelSpec(
        "lds", "latentkit.dynamics.lds:LinearDynamicalSystem",
        "linear dynamical system (Kalman filter model) learned by EM; DATA is one sequence, "
        "rows = time steps; --state-dim K (default 1)",
        "nile", "Nile river flow at Aswan 1871-1970 (100 x 1)", figures=lds_figures,
        summary_params=("state_dim", "covariance_type"), k_param=None,
        defaults=(("state_dim", 1),)),
    ModelSpec(
        "bayesnet", "latentkit.bayesnet.network:DiscreteBayesNet",
        "discrete Bayesian network: the structure and starting CPTs from --structure "
        "NET.bif, CPTs learned by EM; DATA has one integer-coded column per variable (a "
        "header naming them, or in the BIF's order); missing values; --hidden NAME for a "
        "latent variable (no column)",
        "wine", "none: give DATA and --structure NET.bif", figures=bayesnet_figures,
        summary_params=("alpha",), k_param=None,
        hidden_params=("callbacks", "edges", "cardinalities", "cpts", "state_names")),
)}


def get_spec(name: str) -> ModelSpec:
    spec = REGISTRY.get(name)
    if spec is None:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}.")
    return spec


def spec_for(model) -> ModelSpec:
    """The spec of a loaded model, found by its class name."""
    for spec in REGISTRY.values():
        if spec.class_name == type(model).__name__:
            return spec
    raise ValueError(f"the command line does not know {type(model).__name__} models; known: "
                     f"{', '.join(s.class_name for s in REGISTRY.values())}.")


def import_all() -> None:
    """Import every registered class, so that `latentkit.io.load` can rebuild it."""
    for spec in REGISTRY.values():
        try:
            spec.cls  # noqa: B018 -- importing registers the class with latentkit.io
        except (ImportError, AttributeError):
            continue


# -- metrics ------------------------------------------------------------------------------


def metrics(model, data: Data) -> list[tuple[str, str, object]]:
    """(key, label, value) rows: the fit of `model` on `data` — mean log-likelihood, BIC,
    AIC, and the adjusted Rand index against the labels when the data has them."""
    X = data.X
    rows = [("rows", "rows", int(X.shape[0])),
            ("mean_log_likelihood", "mean log-likelihood", float(model.score(X))),
            ("bic", "BIC", float(model.bic(X))),
            ("aic", "AIC", float(model.aic(X)))]
    if data.target is not None and hasattr(model, "predict"):
        from sklearn.metrics import adjusted_rand_score

        ari = adjusted_rand_score(data.target, model.predict(X))
        rows.append(("adjusted_rand_index", "adjusted Rand index vs labels", float(ari)))
    return rows


def describe(spec: ModelSpec, model) -> list[tuple[str, str, object]]:
    """(key, label, value) rows naming the model: its name, K, the spec's summary params."""
    rows = [("model", "model", f"{spec.name} ({type(model).__name__})")]
    if spec.k_param is not None:
        rows.append((spec.k_param, "K (components)", getattr(model, spec.k_param)))
    for name in spec.summary_params:
        rows.append((name, name.replace("_", " "), getattr(model, name)))
    return rows


def convergence(model, seconds: float) -> list[tuple[str, str, object]]:
    return [("n_iter", "iterations", int(getattr(model, "n_iter_", 0))),
            ("converged", "converged", bool(getattr(model, "converged_", False))),
            ("seconds", "time (s)", round(float(seconds), 3))]
