"""Discrete Bayesian networks in latentkit: exact inference, EM with missing values, BIF
files and latent class analysis.

Run: python examples/bayesnet.py
"""

import numpy as np

from latentkit import DiscreteBayesNet, LatentClassModel
from latentkit.datasets import load_wine
from latentkit.metrics import adjusted_rand_score

# The EM lecture's network A -> C <- B, C -> D (binary, state 1 = true). Each CPT's axes are
# the parents in edge order, then the variable itself: C[a, b] = (p(not c), p(c) | a, b).
edges = [("A", "C"), ("B", "C"), ("C", "D")]
cards = {"A": 2, "B": 2, "C": 2, "D": 2}
cpts = {"A": np.array([0.7, 0.3]), "B": np.array([0.1, 0.9]),
        "C": np.array([[[0.5, 0.5], [0.9, 0.1]], [[0.4, 0.6], [0.8, 0.2]]]),
        "D": np.array([[0.9, 0.1], [0.2, 0.8]])}
net = DiscreteBayesNet(edges=edges, cardinalities=cards, cpts=cpts)

# The row (a, ?, ?, not d): the E-step completes it into four rows weighted p(B, C | a, not d).
evidence = {"A": 1, "D": 0}
weights = net.posterior_joint(["B", "C"], evidence=evidence)
completions = ((1, 1), (1, 0), (0, 1), (0, 0))
for b, c in completions:
    print(f"(a, {'b' if b else 'not b':5s}, {'c' if c else 'not c':5s}, not d)  "
          f"weight {weights[b, c]:.4f}")
print(f"p(B = 1 | a, not d) = {net.posterior_marginal('B', evidence)[1]:.4f}, "
      f"p(C = 1 | a, not d) = {net.posterior_marginal('C', evidence)[1]:.4f}")
best = net.map_assignment(evidence)
print(f"most probable completion {best.assignment}, log p = {best.log_prob:.4f}; "
      f"log p(a, not d) = {net.log_evidence(evidence):.4f}")

# EM: 5,000 rows sampled from the network, 30% of the entries hidden (-1 = missing), fitted
# from random CPTs with 3 restarts; the largest error of any CPT entry against the truth.
X, _ = net.sample(5000, random_state=0)
X[np.random.default_rng(1).random(X.shape) < 0.3] = -1
model = DiscreteBayesNet(edges=edges, cardinalities=cards, init_params="random", n_init=3,
                         tol=1e-7, max_iter=500, random_state=0).fit(X)
errors = {name: np.abs(model.cpts_[name] - cpts[name]).max() for name in cards}
print(f"EM: {model.n_iter_} iterations; largest CPT error per variable "
      + ", ".join(f"{name} {error:.4f}" for name, error in errors.items()))
print(f"mean log-likelihood per row: fitted {model.score(X):.4f}, true CPTs {net.score(X):.4f}")

# BIF: write the fitted network as text and read it back; the queries agree.
model.to_bif("abcd.bif", name="abcd")
again = DiscreteBayesNet.from_bif("abcd.bif")
assert np.allclose(again.posterior_joint(["B", "C"], evidence),
                   model.posterior_joint(["B", "C"], evidence))
refit = again.posterior_joint(["B", "C"], evidence)
print("BIF round trip; the four weights under the fitted CPTs:",
      " ".join(f"{refit[b, c]:.4f}" for b, c in completions))

# Latent class analysis: the 13 wine measurements cut into tertiles (0/1/2), three classes.
wine = load_wine()
edges_q = np.quantile(wine.data, [1 / 3, 2 / 3], axis=0)
codes = np.column_stack([np.searchsorted(edges_q[:, j], wine.data[:, j], side="right")
                         for j in range(wine.data.shape[1])]).astype(float)
lcm = LatentClassModel(3, n_init=5, random_state=0).fit(codes)
print(f"latent classes vs cultivar: ARI {adjusted_rand_score(wine.target, lcm.predict(codes)):.3f},"
      f" class proportions {lcm.weights_.round(3)}")

# The same model as a Bayesian network class -> x_j: identical likelihood, and queries with
# any subset of the columns as evidence.
names = [name.split("/")[0] for name in wine.feature_names]
bn = lcm.to_bayesnet(column_names=names)
assert np.allclose(bn.score_samples(codes), lcm.score_samples(codes))
query = bn.posterior_marginal("class", {"alcohol": 2, "flavanoids": 0})
print(f"p(class | high alcohol, low flavanoids) = {query.round(3)}")
