"""What every mixture shares: inference of z from log π_k + log p(x | z = k).

    p(x) = Σ_k π_k p(x | θ_k),   p(z = k | x) = π_k p(x | θ_k) / p(x)

A mixture supplies `_log_prob(params, X)` -> log p(x_n | θ_k) : (n, K) at the inference
parameters (or overrides `_log_joint(X)` -> (validated X, log π_k + log p(x_n | θ_k) : (n, K))
whole); everything below follows from it by log-sum-exp.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._linalg import log_normalize
from ..base import EMModel
from ..distributions import Categorical


class MixtureModel(EMModel):
    """An EM-trained finite mixture: clustering and density estimation."""

    def _log_prob(self, params, X):
        raise NotImplementedError

    @property
    def lower_bounds_(self) -> np.ndarray:
        """The mean log-likelihood per iteration of the last fit: `history_`, under
        scikit-learn's name (its last entry is `lower_bound_`)."""
        check_is_fitted(self)
        return self.history_

    @property
    def _n_features_out(self) -> int:
        """transform gives one responsibility per component: K columns."""
        return len(self.weights_)

    def _log_joint(self, X):
        """Validated X and log π_k + log p(x_n | θ_k) : (n, K), missing marginalized."""
        X = self._validate_X(X, reset=False)
        params = self._current_params(for_inference=True)
        return X, self._log_prob(params, X) + np.log(params.weights)

    def score_samples(self, X):
        """log p(x) : (n_samples,), exact; missing entries are marginalized."""
        X, log_joint = self._log_joint(X)
        return log_normalize(log_joint)[1].astype(X.dtype)

    def posterior(self, X) -> Categorical:
        """p(z | x) for each row: a Categorical over the K components."""
        X, log_joint = self._log_joint(X)
        return Categorical(log_probs=log_normalize(log_joint)[0])

    def predict_proba(self, X):
        """Responsibilities p(z = k | x) : (n_samples, K)."""
        X, log_joint = self._log_joint(X)
        return np.exp(log_normalize(log_joint)[0]).astype(X.dtype)

    def transform(self, X):
        """The posterior mean of one_hot(z): the responsibilities (n_samples, K)."""
        return self.predict_proba(X)

    def predict(self, X):
        """Most probable component of each row : (n_samples,)."""
        return np.argmax(self._log_joint(X)[1], axis=1)

    def fit_predict(self, X, y=None):
        """Fit, then return the most probable component of each row."""
        return self.fit(X).predict(X)
