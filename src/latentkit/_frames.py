"""pandas in, pandas out (scikit-learn style) for the methods `set_output` does not cover.

scikit-learn's `set_output` wraps `transform` and `fit_transform` (`LatentModel` gets it from
`TransformerMixin`). The two data-space methods of the contract follow the same idea here:

    impute(X)  : a DataFrame X in -> a DataFrame out, with X's index and the model's columns;
    sample(n)  : a model fitted on a DataFrame -> X as a DataFrame whose columns are
                 `feature_names_in_` (the second element, z, is unchanged).

`LatentModel.__init_subclass__` applies these wrappers to every class that defines the
method, so a model returns arrays and never thinks about containers.
"""

from __future__ import annotations

import functools
import sys

import numpy as np


def is_data_frame(X) -> bool:
    """Whether X is a pandas DataFrame (without importing pandas when nobody has)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(X, pd.DataFrame)


def frame_in_frame_out(impute):
    """Wrap `impute(self, X, ...)`: a DataFrame X gives a DataFrame with X's index and the
    model's data columns (`LatentModel._data_columns`); any other input is untouched."""

    @functools.wraps(impute)
    def wrapped(self, X, *args, **kwargs):
        out = impute(self, X, *args, **kwargs)
        if not is_data_frame(X) or not isinstance(out, np.ndarray) or out.shape != X.shape:
            return out  # arrays in, arrays out; a DataFrame already, from an inner wrapper
        return _frame(out, index=X.index, columns=self._data_columns(X))

    return wrapped


def named_sample(sample):
    """Wrap `sample(self, ...) -> (X, z)`: X becomes a DataFrame with `feature_names_in_`
    as its columns when the model was fitted on a DataFrame; otherwise nothing changes."""

    @functools.wraps(sample)
    def wrapped(self, *args, **kwargs):
        result = sample(self, *args, **kwargs)
        names = getattr(self, "feature_names_in_", None)
        X = result[0] if isinstance(result, tuple) else None
        if names is None or not isinstance(X, np.ndarray) or X.ndim != 2 \
                or X.shape[1] != len(names):
            return result
        return (_frame(X, index=None, columns=list(names)), *result[1:])

    return wrapped


def _frame(X: np.ndarray, index, columns):
    """X : (n, J) as a DataFrame; an object array (state names, `latentkit._states`) gets
    each column's own dtype, so that columns of codes stay numeric beside columns of names."""
    import pandas as pd

    frame = pd.DataFrame(X, index=index, columns=columns)
    return frame.infer_objects() if X.dtype == object else frame
