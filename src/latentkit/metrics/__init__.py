"""Model selection (BIC / AIC / held-out log-likelihood), clustering scores and the
`ResultTable` used for summaries."""

from .clustering import adjusted_rand_score, cluster_purity
from .selection import Selection, select_n_components
from .table import ResultTable

__all__ = [
    "ResultTable",
    "Selection",
    "adjusted_rand_score",
    "cluster_purity",
    "select_n_components",
]
