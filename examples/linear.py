"""Linear-Gaussian latent models in latentkit: PCA, probabilistic PCA, factor analysis,
a mixture of PPCAs and ICA.

Run: python examples/linear.py
"""

import numpy as np

from latentkit import PCA, PPCA, FactorAnalysis, FastICA, MixtureOfPPCA, select_n_components
from latentkit.datasets import load_digits, load_wine
from latentkit.metrics import adjusted_rand_score, amari_index

# PCA of the 8x8 digits: variance explained, M chosen by a variance fraction, reconstruction.
digits = load_digits()
X = digits.data / 16.0
pca = PCA(10).fit(X)
print(f"PCA: the first 10 components explain {pca.explained_variance_ratio_.sum():.3f} "
      f"of the variance; first three {pca.explained_variance_ratio_[:3].round(3)}")
pca90 = PCA(0.9).fit(X)
for model in (pca, pca90):
    error = np.mean((model.inverse_transform(model.transform(X)) - X) ** 2)
    print(f"  M = {model.n_components_:2d}: reconstruction MSE per pixel {error:.4f}")

# PPCA with 30% of the pixels missing: EM marginalizes them; impute gives E[x_miss | x_obs].
rng = np.random.default_rng(0)
X_missing = X.copy()
X_missing[rng.random(X.shape) < 0.3] = np.nan
mask = np.isnan(X_missing)
ppca = PPCA(10, random_state=0).fit(X_missing)
rmse = np.sqrt(np.mean((ppca.impute(X_missing) - X)[mask] ** 2))
mean_rmse = np.sqrt(np.mean((np.nanmean(X_missing, axis=0) - X)[mask] ** 2))
print(f"PPCA imputation RMSE {rmse:.3f} (column means: {mean_rmse:.3f}), "
      f"noise variance {ppca.noise_variance_:.4f}")

# How many PPCA dimensions? BIC on data drawn from a 4-dimensional PPCA in 20 dimensions.
Z = rng.standard_normal((500, 4))
X_synth = Z @ rng.standard_normal((4, 20)) + 0.5 * rng.standard_normal((500, 20))
table, best, m = select_n_components(PPCA(), X_synth, range(1, 9), criterion="bic")
print(table)
print(f"BIC picks M = {m} (true 4); fitted noise variance {best.noise_variance_:.3f} (true 0.25)")

# Factor analysis of the 13 wine measurements, standardized: varimax-rotated loadings.
wine = load_wine()
W = (wine.data - wine.data.mean(0)) / wine.data.std(0)
fa = FactorAnalysis(2, rotation="varimax", random_state=0).fit(W)
for k, loading in enumerate(fa.loadings_.T):
    top = np.argsort(-np.abs(loading))[:3]
    print(f"factor {k + 1}: " + ", ".join(f"{wine.feature_names[j]} {loading[j]:+.2f}"
                                           for j in top))
psi = fa.noise_variance_
print(f"specific variances psi: {psi.min():.2f} ({wine.feature_names[psi.argmin()]}) to "
      f"{psi.max():.2f} ({wine.feature_names[psi.argmax()]})")

# A mixture of 3 local PPCAs clusters the wines, each with its own 2-D coordinate system.
mppca = MixtureOfPPCA(3, n_latent=2, n_init=3, random_state=0).fit(W)
labels = mppca.predict(W)
local_fit = mppca.inverse_transform_local(mppca.transform_local(W), labels)
global_fit = PCA(2).fit(W)
global_mse = np.mean((global_fit.inverse_transform(global_fit.transform(W)) - W) ** 2)
print(f"mixture of PPCA: ARI vs cultivar {adjusted_rand_score(wine.target, labels):.3f}; "
      f"2-D reconstruction MSE {np.mean((local_fit - W) ** 2):.3f} with local coordinates, "
      f"{global_mse:.3f} with one global PCA")

# FastICA: unmix a sine and a square wave mixed by a known matrix; Amari index 0 = perfect.
t = np.linspace(0, 8, 2000)
S = np.column_stack([np.sin(2 * t), np.sign(np.sin(3 * t))])
A = np.array([[1.0, 0.5], [0.4, 1.0]])
ica = FastICA(2, random_state=0).fit(S @ A.T)
recovered = ica.transform(S @ A.T)
corr = np.abs(np.corrcoef(recovered.T, S.T)[:2, 2:]).max(axis=1)
print(f"FastICA: Amari index {amari_index(ica.components_, A):.4f}, "
      f"|correlation| with the true sources {corr.round(4)}")
