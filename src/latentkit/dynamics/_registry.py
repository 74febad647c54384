"""The dynamics family's entry in `latentkit.registry`: lds, with a small example problem."""

from __future__ import annotations

import numpy as np

from ..registry import ModelSpec, register
from .demo import dynamics_lds
from .figures import lds_figures, lds_tables
from .lds import LinearDynamicalSystem


def lds_example(rng: np.random.Generator):
    """One sequence of 150 time steps: a 1-D AR(1) state z_t = 0.9 z_{t-1} + w_t seen in two
    noisy columns x_t = c z_t + d + v_t."""
    z = np.zeros(150)
    for t in range(1, 150):
        z[t] = 0.9 * z[t - 1] + rng.normal()
    X = z[:, None] * np.array([1.0, -0.5]) + np.array([2.0, 0.0])
    return {"state_dim": 1, "random_state": 0}, X + 0.3 * rng.normal(size=X.shape)


register(ModelSpec(
    "lds", LinearDynamicalSystem,
    "linear dynamical system (Kalman filter model) learned by EM; DATA is one sequence, "
    "rows = time steps; --state-dim K (default 1)",
    "nile", "Nile river flow at Aswan 1871-1970 (100 x 1)", figures=lds_figures,
    tables=lds_tables, summary_params=("state_dim", "covariance_type"), size_param=None,
    defaults=(("state_dim", 1),), demo=dynamics_lds, example=lds_example))
