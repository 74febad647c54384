"""The Bayesian-network family's entry in `latentkit.registry`: bayesnet, whose network comes
from a BIF file given as `latentkit fit bayesnet DATA --structure NET.bif`, whose DATA
columns are the network's observed variables (matched by name by the command line), and a
small example problem."""

from __future__ import annotations

import os

import numpy as np

from ..exceptions import InvalidParameterError
from ..mixture._registry import cmm_example, discretize
from ..mixture.figures import cmm_figures, cmm_tables
from ..registry import ModelSpec, register
from .demo import SEED_CARDS, SEED_EDGES, seed_bayesnet, seed_network
from .figures import cpt_tables, network_figures
from .latent_class import LatentClassModel
from .network import DiscreteBayesNet


def add_options(parser) -> list:
    """`fit`'s --structure NET.bif."""
    return [parser.add_argument(
        "--structure", metavar="NET.bif",
        help="bayesnet: the network (variables, edges, starting CPTs) as a BIF file")]


def structure_kwargs(args) -> dict:
    """Constructor arguments (edges, cardinalities, cpts, state_names) read from the BIF
    file of --structure."""
    from .bif import read_bif

    if args.structure is None:
        raise InvalidParameterError("bayesnet needs --structure NET.bif: the network's "
                                    "variables, edges and starting CPTs.")
    if not os.path.isfile(args.structure):
        raise FileNotFoundError(f"no such structure file: {args.structure}")
    with open(args.structure, encoding="utf-8") as handle:
        return read_bif(handle.read(), source=str(args.structure))


def observed_names(model) -> list[str]:
    """The network's observed variables: the columns its data has, matched by name."""
    return list(model.observed_variables)


def map_states(model, X):
    """What `latentkit predict` writes for a network: each row's most probable joint state
    of every variable given the row's observed entries (MPE: observed entries keep their
    states, missing and hidden ones are filled jointly), in state names, and the log
    probability log p(states, x_obs) of that assignment."""
    import pandas as pd

    result = model.map_assignment(evidence=X, as_names=True)
    return pd.DataFrame({**result.assignment, "log_prob": result.log_prob})


def lca_example(rng: np.random.Generator):
    """The categorical mixture's example problem, in latent classes."""
    kwargs, X = cmm_example(rng)
    return {"n_classes": kwargs.pop("n_components"), **kwargs}, X


def bayesnet_example(rng: np.random.Generator):
    """200 rows of the A -> C <- B, C -> D network (binary) with C hidden (the columns are
    A, B, D) and 20% of the observed entries missing, to be fitted by EM."""
    X, _ = seed_network().sample(200, random_state=rng)
    X = np.asarray(X, dtype=np.float64)[:, [0, 1, 3]]
    X[rng.random(X.shape) < 0.2] = np.nan
    return {"edges": list(SEED_EDGES), "cardinalities": dict(SEED_CARDS), "hidden": ["C"],
            "random_state": 0}, X


register(ModelSpec(
    "bayesnet", DiscreteBayesNet,
    "discrete Bayesian network: the structure and starting CPTs from --structure NET.bif, "
    "CPTs learned by EM; DATA has one column per observed variable (integer codes or the "
    "BIF's state names; matched by the header's names, else in the BIF's order); missing "
    "values; --hidden NAME for a latent variable (no "
    "column)", "wine", "none: give DATA and --structure NET.bif", figures=network_figures,
    tables=cpt_tables, summary_params=("alpha",), size_param=None,
    hidden_params=("callbacks", "edges", "cardinalities", "cpts", "state_names"),
    demo=seed_bayesnet, cli_options=add_options, cli_kwargs=structure_kwargs,
    example=bayesnet_example, categorical=True, feature_names=observed_names,
    predict_table=map_states))


register(ModelSpec(
    "lca", LatentClassModel, "latent class analysis: K latent classes over categorical "
    "columns (integer codes or text states); missing values", "wine",
    "wine, each of 13 columns cut into tertiles: levels 0/1/2 (178 x 13)",
    prepare=discretize, figures=cmm_figures, tables=cmm_tables, size_param="n_classes",
    size_label="K (classes)", example=lca_example, categorical=True))
