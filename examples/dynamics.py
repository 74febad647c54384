"""Linear dynamical systems in latentkit: Kalman filter, RTS smoother, forecasting, missing
steps and EM.

Run: python examples/dynamics.py
"""

import numpy as np

from latentkit import LinearDynamicalSystem, load
from latentkit.datasets import load_nile
from latentkit.dynamics import LDSParams, kalman_filter, rts_smoother, simulate

# The Nile local-level model x_t = level_t + noise, level_t = level_{t-1} + noise: EM for the
# two variances (A = C = 1, offsets 0, V0 = 1e7 held fixed) against Durbin & Koopman's MLE.
try:
    nile = load_nile()
    years, flow = nile.years, nile.data
except FileNotFoundError:
    print("Nile file not found: using a simulated local-level series with the published "
          "variances instead.")
    rng = np.random.default_rng(0)
    level = 1120 + np.cumsum(rng.normal(0, np.sqrt(1469.1), 100))
    years, flow = np.arange(1871, 1971), (level + rng.normal(0, np.sqrt(15099.0), 100))[:, None]
local_level = LinearDynamicalSystem.local_level(  # A = C = 1, offsets 0, V0 = 1e7: held
    transition_covariance=1000.0, observation_covariance=10000.0, reg_covar=0.0, tol=1e-11,
    max_iter=5000).fit(flow)
print(f"observation variance {local_level.observation_covariance_[0, 0]:8.1f} (D&K 15099)\n"
      f"level variance       {local_level.transition_covariance_[0, 0]:8.1f} (D&K 1469.1)"
      f"   [{local_level.n_iter_} EM iterations]")

# Smoothed level (every year's data used) and a 10-year forecast with 95% intervals.
smoothed = local_level.smooth(flow)
row = {int(year): i for i, year in enumerate(years)}
print("smoothed level (95%): " + ", ".join(
    f"{y} {smoothed.mean[row[y], 0]:.0f} +- {1.96 * np.sqrt(smoothed.cov[row[y], 0, 0]):.0f}"
    for y in (1871, 1897, 1900, 1970)))
ahead = local_level.forecast(flow, n_steps=10)
half = 1.96 * np.sqrt(ahead.cov[:, 0, 0])
for k in (0, 4, 9):
    print(f"forecast {years[-1] + k + 1}: {ahead.mean[k, 0]:6.0f} "
          f"[{ahead.mean[k, 0] - half[k]:6.0f}, {ahead.mean[k, 0] + half[k]:6.0f}]")

# Blank out 1941-1960: the filter predicts through the gap, the smoother interpolates it
# (exactly: missing steps simply have no measurement update), and the bands widen.
gap = (years >= 1941) & (years <= 1960)
blanked = flow.copy()
blanked[gap] = np.nan
filtered, smoothed_gap = local_level.filter(blanked), local_level.smooth(blanked)
rms = np.sqrt(np.mean((smoothed_gap.mean - smoothed.mean)[gap] ** 2))
sd = {name: np.sqrt(result.cov[:, 0, 0]) for name, result in
      (("filter", filtered), ("smoother", smoothed_gap), ("all data", smoothed))}
print(f"20 missing years: filter sd {sd['filter'][row[1940]]:.0f} in 1940, "
      f"{sd['filter'][row[1960]]:.0f} in 1960; smoother sd in 1950 {sd['smoother'][row[1950]]:.0f}"
      f" (with the data {sd['all data'][row[1950]]:.0f}); the gap's smoothed level is within "
      f"RMS {rms:.0f} of the full-data one")

# Tracking: state (x, y, vx, vy) moving with nearly constant velocity, position observed
# with noise (sd 6); filter and smoother with the true parameters, as functions on LDSParams.
F = np.kron(np.eye(2), [[1.0, 1.0], [0.0, 1.0]])[np.ix_([0, 2, 1, 3], [0, 2, 1, 3])]
Q = 0.09 * np.kron(np.eye(2), [[1 / 3, 1 / 2], [1 / 2, 1.0]])[np.ix_([0, 2, 1, 3], [0, 2, 1, 3])]
params = LDSParams(F, np.zeros(4), np.eye(2, 4), np.zeros(2), Q, 36.0 * np.eye(2),
                   np.array([0.0, 0.0, 1.0, 0.5]), np.diag([1.0, 1.0, 0.25, 0.25]))
X, Z = simulate(params, 200, random_state=3)
for name, estimate in (("observations", X), ("filter", kalman_filter(X, params).mean[:, :2]),
                       ("smoother", rts_smoother(X, params).mean[:, :2])):
    rmse = np.sqrt(np.mean(np.sum((estimate - Z[:, :2]) ** 2, axis=1)))
    print(f"tracking position RMSE, {name:12s} {rmse:.2f}")

# EM on a simulated system (2-D rotating state, 3 observed series, 20 sequences), then the
# per-sequence log-likelihood and a pickle-free save/load round trip.
theta = 0.2
A = 0.95 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
C = np.array([[1.0, 0.0], [0.5, 1.0], [-0.3, 0.8]])
truth = LDSParams(A, np.zeros(2), C, np.zeros(3), 0.1 * np.eye(2), 0.2 * np.eye(3),
                  np.zeros(2), np.eye(2))
X_seq, _ = simulate(truth, 100, n_sequences=20, random_state=0)
lds = LinearDynamicalSystem(2, max_iter=200, random_state=0).fit(X_seq)
fitted, true = (np.sort_complex(np.linalg.eigvals(M)).round(3) for M in (lds.transition_matrix_, A))
print(f"EM: {lds.n_iter_} iterations (converged {lds.converged_}), "
      f"eigenvalues of A {fitted} (true {true})")
lds.save("lds.npz")
log_p = load("lds.npz").score_samples(X_seq)
assert np.allclose(log_p, lds.score_samples(X_seq))
print(f"log p(sequence) of the first three: {log_p[:3].round(1)}; "
      f"per step {lds.score(X_seq):.3f}")
