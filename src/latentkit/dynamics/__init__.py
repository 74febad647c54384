"""Linear dynamical systems: Kalman filter, RTS smoother, posterior sampling, forecasting
(pure kernels in `kalman`) and the EM-trained `LinearDynamicalSystem` model."""

from ._params import LDSParams
from .kalman import (
    FilterResult,
    Forecast,
    SmoothResult,
    forecast,
    kalman_filter,
    rts_smoother,
    sample_posterior,
    simulate,
)
from .lds import LinearDynamicalSystem

__all__ = [
    "FilterResult", "Forecast", "LDSParams", "LinearDynamicalSystem", "SmoothResult",
    "forecast", "kalman_filter", "rts_smoother", "sample_posterior", "simulate",
]

from . import _registry  # noqa: E402,F401 -- the family's entry in latentkit.registry
