"""Independent truths for linear dynamical systems, shared by tests/dynamics: random
parameters, the dense joint Gaussian over all states and observations, brute-force
conditioning of it, and a missing-value pattern with one all-missing step."""

import numpy as np
from scipy.stats import multivariate_normal

from latentkit.dynamics import LDSParams


def random_params(n, p, seed, offsets=True):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n))
    A *= 0.9 / max(np.abs(np.linalg.eigvals(A)))
    M = rng.normal(size=(n, n))
    Q = M @ M.T / n + 0.1 * np.eye(n)
    M = rng.normal(size=(p, p))
    R = M @ M.T / p + 0.2 * np.eye(p)
    M = rng.normal(size=(n, n))
    b = rng.normal(size=n) if offsets else np.zeros(n)
    d = rng.normal(size=p) if offsets else np.zeros(p)
    return LDSParams(A, b, rng.normal(size=(p, n)), d, Q, R, rng.normal(size=n),
                     M @ M.T / n + np.eye(n))


# -- brute force: the dense joint Gaussian of (z_1..z_T, x_1..x_T) -----------------------


def dense_joint(params, T):
    """Mean and covariance of z (T n) and x (T p), stacked time-major."""
    A, b, C, d, Q, R, mu0, V0 = params
    n = A.shape[0]
    mean = np.zeros((T, n))
    V = [V0]
    mean[0] = mu0
    for t in range(1, T):
        mean[t] = A @ mean[t - 1] + b
        V.append(A @ V[-1] @ A.T + Q)
    cov = np.zeros((T * n, T * n))
    for s in range(T):
        for t in range(s, T):
            block = np.linalg.matrix_power(A, t - s) @ V[s]
            cov[t * n:(t + 1) * n, s * n:(s + 1) * n] = block
            cov[s * n:(s + 1) * n, t * n:(t + 1) * n] = block.T
    Cb = np.kron(np.eye(T), C)
    x_mean = (mean @ C.T + d).ravel()
    x_cov = Cb @ cov @ Cb.T + np.kron(np.eye(T), R)
    return mean.ravel(), cov, x_mean, x_cov, Cb @ cov


def brute_force(params, X, upto=None):
    """Moments of z | x_obs (the first `upto` steps of x only, when given), the
    log-likelihood of those observations."""
    T, p = X.shape
    n = params.A.shape[0]
    z_mean, z_cov, x_mean, x_cov, xz = dense_joint(params, T)
    use = ~np.isnan(X)
    if upto is not None:
        use[upto:] = False
    use = use.ravel()
    x = X.ravel()[use]
    Sxx = x_cov[np.ix_(use, use)]
    Sxz = xz[use]
    mean = z_mean + Sxz.T @ np.linalg.solve(Sxx, x - x_mean[use])
    cov = z_cov - Sxz.T @ np.linalg.solve(Sxx, Sxz)
    ll = multivariate_normal(x_mean[use], Sxx).logpdf(x) if use.any() else 0.0
    return mean.reshape(T, n), cov, ll


def block(cov, n, s, t):
    return cov[s * n:(s + 1) * n, t * n:(t + 1) * n]


def with_missing(X, seed):
    rng = np.random.default_rng(seed)
    X = X.copy()
    X[rng.random(X.shape) < 0.3] = np.nan
    X[2] = np.nan  # an all-missing step: pure prediction
    return X


def pykalman_reference(params, X):
    """pykalman's filtered means and covariances, smoothed means and covariances and
    log-likelihood for `params` on X : (T, p), NaN rows masked (pykalman masks rows only)."""
    import warnings

    from pykalman import KalmanFilter

    A, b, C, d, Q, R, mu0, V0 = params
    reference = KalmanFilter(A, C, Q, R, b, d, mu0, V0)
    masked = np.ma.masked_invalid(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filtered = reference.filter(masked)
        smoothed = reference.smooth(masked)
        return (*filtered, *smoothed, reference.loglikelihood(masked))


# -- pykalman's robot data (time-varying transition offsets, a masked first step) ---------

#: pykalman's attribute names, in LDSParams' order
PYKALMAN_NAMES = ("transition_matrices", "transition_offsets", "observation_matrices",
                  "observation_offsets", "transition_covariance", "observation_covariance",
                  "initial_state_mean", "initial_state_covariance")


def robot():
    """(data, kwargs): pykalman's robot data set (501 steps, 5 states, 2 observations,
    time-varying transition offsets (500, 5), first step masked) and the constructor
    arguments of pykalman's own EM test (the starting covariances Q_0 = 10 I, R_0 = 10 I)."""
    from pykalman.datasets import load_robot

    data = load_robot()
    kwargs = dict(transition_matrices=data.transition_matrix,
                  observation_matrices=data.observation_matrix,
                  transition_covariance=data.initial_transition_covariance,
                  observation_covariance=data.initial_observation_covariance,
                  transition_offsets=data.transition_offsets,
                  observation_offsets=data.observation_offset,
                  initial_state_mean=data.initial_state_mean,
                  initial_state_covariance=data.initial_state_covariance)
    return data, kwargs


def random_time_varying(n, p, T, seed):
    """A model with time-varying A_t (T-1, n, n), b_t, C_t (T, p, n), d_t (as LDSParams)."""
    base = random_params(n, p, seed)
    rng = np.random.default_rng(seed + 1000)
    A = base.A + 0.1 * rng.normal(size=(T - 1, n, n))
    C = base.C + 0.3 * rng.normal(size=(T, p, n))
    return base._replace(A=A, b=rng.normal(size=(T - 1, n)), C=C, d=rng.normal(size=(T, p)))


def max_abs_diff(ours, theirs) -> float:
    """The largest absolute difference over paired arrays."""
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(ours, theirs))
