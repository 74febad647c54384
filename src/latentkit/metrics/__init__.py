"""Model selection (BIC / AIC / held-out log-likelihood), clustering scores and the
`ResultTable` used for summaries, and the Amari index of an unmixing."""

from .clustering import adjusted_rand_score, cluster_purity
from .disentanglement import dci, factorvae_score, mig, mig_gaps, sap
from .selection import Selection, SelectionEdgeWarning, select_n_components
from .table import ResultTable
from .unmixing import amari_index

__all__ = [
    "ResultTable",
    "Selection",
    "SelectionEdgeWarning",
    "adjusted_rand_score",
    "amari_index",
    "cluster_purity",
    "select_n_components",
    "dci",
    "factorvae_score",
    "mig",
    "mig_gaps",
    "sap",
]
