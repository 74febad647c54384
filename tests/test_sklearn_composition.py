"""The contract promises scikit-learn composition: clone, Pipeline, GridSearchCV."""

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from latentkit import BernoulliMixture, GaussianMixture
from latentkit.datasets import make_mixture


def test_grid_search_picks_the_planted_number_of_components():
    data = make_mixture(n_samples=600, n_components=3, n_features=2, separation=8.0,
                        random_state=0)
    search = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 2, 3]}, cv=3)
    search.fit(data.X)  # scored by the mean held-out log-likelihood, score()
    assert search.best_params_ == {"n_components": 3}


def test_pipeline_and_clone():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (100, 3)), rng.normal(50, 10, (100, 3))])
    pipe = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(X)
    labels = pipe.predict(X)
    assert len(set(labels[:100])) == 1 and len(set(labels[100:])) == 1
    assert labels[0] != labels[-1]
    responsibilities = pipe.transform(X)  # transform = posterior mean of z
    np.testing.assert_allclose(responsibilities.sum(axis=1), 1.0)
    copy = clone(BernoulliMixture(4, alpha=0.5))
    assert copy.get_params()["alpha"] == 0.5 and not hasattr(copy, "weights_")
