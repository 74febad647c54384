"""Datasets: loaders for real data and synthetic generators with known ground truth.

Real data files are looked up in ``$LATENTKIT_DATA``, then ``shared/data`` beside the
checkout, then the user cache (``~/.cache/latentkit``), and are sha256-checked; see
:func:`find_data_file`. scikit-learn's bundled datasets (digits, iris, wine) need no files.
"""

from latentkit.datasets._paths import cache_dir, data_dirs, find_data_file
from latentkit.datasets.factors import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    SPRITE_FACTORS,
    factor_values,
    factors_to_index,
    index_to_factors,
    iter_sprites,
    make_sprites,
    render_sprites,
    sample_factors,
    sample_with_fixed_factor,
    sprites_by_index,
)
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
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "SPRITE_FACTORS",
    "factor_values",
    "factors_to_index",
    "index_to_factors",
    "iter_sprites",
    "make_sprites",
    "render_sprites",
    "sample_factors",
    "sample_with_fixed_factor",
    "sprites_by_index",
]
