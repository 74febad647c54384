"""Datasets: loaders for real data and synthetic generators with known ground truth.

Real data files are looked up in ``$LATENTKIT_DATA``, then ``shared/data`` beside the
checkout, then the user cache (``~/.cache/latentkit``), and are sha256-checked; see
:func:`find_data_file`. scikit-learn's bundled datasets (digits, iris, wine) need no files.
"""

from latentkit.datasets._paths import cache_dir, data_dirs, find_data_file
from latentkit.datasets.real import (
    load_binarized_mnist,
    load_digits,
    load_faithful,
    load_iris,
    load_macrodata,
    load_mnist,
    load_nile,
    load_wine,
)
from latentkit.datasets.synthetic import (
    make_bernoulli_mixture,
    make_categorical_mixture,
    make_lda_corpus,
    make_mixture,
)
from latentkit.datasets.text import load_ap

__all__ = [
    "cache_dir",
    "data_dirs",
    "find_data_file",
    "load_ap",
    "load_binarized_mnist",
    "load_digits",
    "load_faithful",
    "load_iris",
    "load_macrodata",
    "load_mnist",
    "load_nile",
    "load_wine",
    "make_bernoulli_mixture",
    "make_categorical_mixture",
    "make_lda_corpus",
    "make_mixture",
]
