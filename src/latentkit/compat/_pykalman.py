"""pykalman's `KalmanFilter`, as a thin adapter over `latentkit.dynamics`.

    z_0 ~ N(μ0, V0),   z_{t+1} = A_t z_t + b_t + w_t,  w_t ~ N(0, Q)
    x_t = C_t z_t + d_t + v_t,   v_t ~ N(0, R)

Names, defaults and return values are pykalman's (0.11): the parameters are attributes
named as in its constructor (`transition_matrices` A : (n, n) or (T-1, n, n),
`transition_offsets` b : (n,) or (T-1, n), `observation_matrices` C : (p, n) or (T, p, n),
`observation_offsets` d : (p,) or (T, p), `transition_covariance` Q, `observation_covariance`
R, `initial_state_mean` μ0, `initial_state_covariance` V0); a parameter left None takes
pykalman's default (A = I, b = 0, Q = I, C = I (p, n), d = 0, R = I, μ0 = 0, V0 = I).
Every computation is a call into `latentkit.dynamics` (`kalman.kalman_filter`,
`kalman.rts_smoother`, `kalman.filter_step`, `kalman.propagate`, `_em.e_step` and
`_em.m_step` in pykalman's update order); nothing here runs a recursion of its own.

Missing data, as in pykalman: a masked array marks missing observations, and a time step
with any masked entry is missing as a whole (NaN entries of an unmasked array are missing
one by one, as everywhere in latentkit).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.utils import check_random_state

from ..dynamics import _em, kalman
from ..dynamics._params import LDSParams, check_length, check_params, step_params
from ..exceptions import InvalidParameterError

#: pykalman's attribute name -> latentkit's public parameter name (same order as LDSParams)
NAMES = {
    "transition_matrices": "transition_matrix",
    "transition_offsets": "transition_offset",
    "observation_matrices": "observation_matrix",
    "observation_offsets": "observation_offset",
    "transition_covariance": "transition_covariance",
    "observation_covariance": "observation_covariance",
    "initial_state_mean": "initial_state_mean",
    "initial_state_covariance": "initial_state_covariance",
}
#: the rank of each parameter at one time step
_RANK = {"transition_matrices": 2, "transition_offsets": 1, "observation_matrices": 2,
         "observation_offsets": 1, "transition_covariance": 2, "observation_covariance": 2,
         "initial_state_mean": 1, "initial_state_covariance": 2}
DEFAULT_EM_VARS = ("transition_covariance", "observation_covariance", "initial_state_mean",
                   "initial_state_covariance")


def _dimension(candidates, default, what):
    """The one size the given arrays agree on (pykalman's `_determine_dimensionality`)."""
    sizes = {int(np.shape(np.atleast_1d(v))[axis]) for v, axis in candidates if v is not None}
    if default is not None:
        sizes.add(int(default))
    if len(sizes) > 1:
        raise InvalidParameterError(f"the given parameters disagree on {what}: {sorted(sizes)}.")
    return sizes.pop() if sizes else 1


def as_observations(X) -> np.ndarray:
    """X as pykalman reads it, with missing steps as NaN rows: (T, p) float64 (a 1-D series
    is one column; a masked step, any entry masked, is all NaN)."""
    Z = np.ma.atleast_2d(np.ma.asarray(X, dtype=np.float64))
    if Z.shape[0] == 1 and Z.shape[1] > 1:
        Z = Z.T
    out = np.array(np.ma.getdata(Z), dtype=np.float64)
    mask = np.ma.getmaskarray(Z)
    out[mask.any(axis=1)] = np.nan
    return out


class KalmanFilter:
    """pykalman's KalmanFilter on latentkit's kernels (see the module docstring).

    Parameters
    ----------
    transition_matrices, observation_matrices, transition_covariance,
    observation_covariance, transition_offsets, observation_offsets, initial_state_mean,
    initial_state_covariance : arrays or None (pykalman's defaults), see the module.
    random_state : seed or numpy RandomState for `sample` (pykalman's draws exactly).
    em_vars : names of the parameters `em` estimates, or "all"; default Q, R, μ0, V0.
    n_dim_state, n_dim_obs : the dimensions when no parameter gives them.
    """

    def __init__(self, transition_matrices=None, observation_matrices=None,
                 transition_covariance=None, observation_covariance=None,
                 transition_offsets=None, observation_offsets=None, initial_state_mean=None,
                 initial_state_covariance=None, random_state=None, em_vars=None,
                 n_dim_state=None, n_dim_obs=None):
        self.n_dim_state = _dimension(
            [(transition_matrices, -2), (transition_offsets, -1), (transition_covariance, -2),
             (initial_state_mean, -1), (initial_state_covariance, -2),
             (observation_matrices, -1)], n_dim_state, "n_dim_state")
        self.n_dim_obs = _dimension(
            [(observation_matrices, -2), (observation_offsets, -1),
             (observation_covariance, -2)], n_dim_obs, "n_dim_obs")
        self.transition_matrices = transition_matrices
        self.observation_matrices = observation_matrices
        self.transition_covariance = transition_covariance
        self.observation_covariance = observation_covariance
        self.transition_offsets = transition_offsets
        self.observation_offsets = observation_offsets
        self.initial_state_mean = initial_state_mean
        self.initial_state_covariance = initial_state_covariance
        self.random_state = random_state
        self.em_vars = em_vars
        self._em_vars = list(DEFAULT_EM_VARS) if em_vars is None else em_vars

    # -- parameters -----------------------------------------------------------------------

    def _defaults(self) -> dict:
        n, p = self.n_dim_state, self.n_dim_obs
        return {"transition_matrices": np.eye(n), "transition_offsets": np.zeros(n),
                "observation_matrices": np.eye(p, n), "observation_offsets": np.zeros(p),
                "transition_covariance": np.eye(n), "observation_covariance": np.eye(p),
                "initial_state_mean": np.zeros(n), "initial_state_covariance": np.eye(n)}

    def _params(self) -> LDSParams:
        """θ as a validated LDSParams (None -> pykalman's default). Covariances are
        symmetrized first: pykalman's own EM leaves them asymmetric by round-off that
        grows with the iterations (1e-9 after ten on its robot data), and accepts that."""
        defaults = self._defaults()
        values = {name: np.asarray(defaults[name] if getattr(self, name) is None
                                   else getattr(self, name), dtype=np.float64)
                  for name in NAMES}
        for name in ("transition_covariance", "observation_covariance",
                     "initial_state_covariance"):
            S = values[name]
            values[name] = 0.5 * (S + np.swapaxes(S, -1, -2)) if S.ndim == 2 else S
        return check_params(LDSParams(*values.values()))

    # -- inference ------------------------------------------------------------------------

    def filter(self, X):
        """(filtered_state_means (T, n), filtered_state_covariances (T, n, n))."""
        result = kalman.kalman_filter(as_observations(X), self._params(), method="serial")
        return result.mean, result.cov

    def smooth(self, X):
        """(smoothed_state_means (T, n), smoothed_state_covariances (T, n, n))."""
        result = kalman.rts_smoother(as_observations(X), self._params(), method="serial")
        return result.mean, result.cov

    def loglikelihood(self, X) -> float:
        """log p(x_{0:T-1}), the sum of the one-step predictive log-densities."""
        return float(kalman.kalman_filter(as_observations(X), self._params()).log_likelihood)

    def filter_update(self, filtered_state_mean, filtered_state_covariance, observation=None,
                      transition_matrix=None, transition_offset=None,
                      transition_covariance=None, observation_matrix=None,
                      observation_offset=None, observation_covariance=None):
        """One online step: (next_filtered_state_mean (n,), next_filtered_state_covariance
        (n, n)). `observation` None or with a masked entry: predict only. A parameter
        given here replaces the model's for this step (required where it is time-varying)."""
        step = step_params(self._params(), {
            "transition_matrix": transition_matrix, "transition_offset": transition_offset,
            "transition_covariance": transition_covariance,
            "observation_matrix": observation_matrix, "observation_offset": observation_offset,
            "observation_covariance": observation_covariance})
        if observation is not None:
            observation = np.ma.asarray(observation, dtype=np.float64).ravel()
            observation = (None if np.ma.getmaskarray(observation).any()
                           else np.ma.getdata(observation))
        mean = np.asarray(filtered_state_mean, dtype=np.float64)
        cov = np.asarray(filtered_state_covariance, dtype=np.float64)
        return kalman.filter_step(mean, cov, observation, step)

    # -- learning -------------------------------------------------------------------------

    def em(self, X, y=None, n_iter=10, em_vars=None):
        """`n_iter` EM iterations (pykalman's update order) on the parameters named in
        `em_vars` (default: the constructor's; "all": every one); returns self. A
        time-varying parameter that EM estimates becomes constant (with pykalman's warning)."""
        Z = as_observations(X)
        params = self._params()
        for name, value in zip(NAMES, params):
            setattr(self, name, value)
        em_vars = self._em_vars if em_vars is None else em_vars
        free = set(NAMES) if em_vars == "all" else set(em_vars)
        fixed = frozenset(NAMES[name] for name in NAMES if name not in free)
        for name in free & set(NAMES):
            if np.ndim(getattr(self, name)) != _RANK[name]:
                warnings.warn(f"{name} has {np.ndim(getattr(self, name))} dimensions now; after "
                              f"fitting, it will have dimension {_RANK[name]}", stacklevel=2)
        for _ in range(n_iter):
            stats, _ = _em.e_step(params, Z[None], "serial", fixed)
            params = _em.m_step(stats, fixed, "full", 0.0, order="pykalman")
        for name, value in zip(NAMES, params):
            setattr(self, name, value)
        return self

    # -- generation -----------------------------------------------------------------------

    def sample(self, n_timesteps, initial_state=None, random_state=None):
        """(states (T, n), observations (T, p) masked array), drawn as pykalman draws them:
        with a RandomState (`random_state`, else the constructor's), initial state, then per
        step the transition noise (from t = 1) and the observation noise, each
        N(0, S) as RandomState.multivariate_normal makes it (x = e (√s V) with S = U s V)."""
        params = self._params()
        check_length(params, n_timesteps)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        n, p = params.state_dim, params.obs_dim
        first = 0 if initial_state is not None else n
        e = rng.standard_normal(first + p + (n_timesteps - 1) * (n + p))
        z0 = (np.asarray(initial_state, dtype=np.float64) if initial_state is not None
              else params.mu0 + _mvn_transform(e[:n], params.V0))
        rest = e[first + p:].reshape(n_timesteps - 1, n + p)
        w = np.vstack([np.zeros((1, n)), _mvn_transform(rest[:, :n], params.Q)])
        v = _mvn_transform(np.vstack([e[first:first + p], rest[:, n:]]), params.R)
        X, Z = kalman.propagate(params, z0[None], w[None], v[None])
        return Z[0], np.ma.array(X[0])


def _mvn_transform(e, S):
    """Standard normal draws e (..., k) as N(0, S) draws, by RandomState's construction:
    S = U diag(s) V (SVD), x = e (√s V)."""
    _, s, V = np.linalg.svd(S)
    return e @ (np.sqrt(s)[:, None] * V)
