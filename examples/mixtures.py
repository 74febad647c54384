"""Mixture models in latentkit: clustering, density, missing values, model selection.

Run: python examples/mixtures.py
"""

import numpy as np

from latentkit import BernoulliMixture, GaussianMixture, load, select_n_components
from latentkit.datasets import load_digits, load_faithful
from latentkit.metrics import adjusted_rand_score, cluster_purity

# Old Faithful: how many clusters? BIC over K = 1..6, then the posterior of each eruption.
X = load_faithful().data
table, gmm, k = select_n_components(GaussianMixture(n_init=3, random_state=0), X, range(1, 7))
print(table)
print(f"K = {k}; p(z | x) of the first eruption: {gmm.posterior(X[:1]).probs.round(3)}")

# Missing values are marginalized exactly; impute fills them with E[x_missing | x_observed].
rng = np.random.default_rng(0)
X_missing = X.copy()
X_missing[rng.random(X.shape) < 0.2] = np.nan
gmm_missing = GaussianMixture(k, random_state=0).fit(X_missing)
mask = np.isnan(X_missing)
rmse = np.sqrt(np.mean((gmm_missing.impute(X_missing) - X)[mask] ** 2))
mean_rmse = np.sqrt(np.mean((np.nanmean(X_missing, axis=0) - X)[mask] ** 2))
print(f"imputation RMSE {rmse:.3f} (column means: {mean_rmse:.3f})")

# Binary data: a Bernoulli mixture on binarized 8x8 digits, compared with the labels.
digits = load_digits()
B = (digits.data > 8).astype(float)
bmm = BernoulliMixture(10, n_init=3, random_state=0).fit(B)
labels = bmm.predict(B)
print(f"Bernoulli mixture on digits: purity {cluster_purity(digits.target, labels):.3f}, "
      f"ARI {adjusted_rand_score(digits.target, labels):.3f}")

# Safe persistence: one .npz file, loaded without pickle; a loaded model predicts identically.
gmm.save("faithful-gmm.npz")
assert np.array_equal(load("faithful-gmm.npz").score_samples(X), gmm.score_samples(X))
samples, components = load("faithful-gmm.npz").sample(5, random_state=0)
print("five draws from the fitted mixture:\n", samples.round(2))
