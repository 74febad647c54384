"""Thin adapters that speak a peer library's names over latentkit's kernels, so code
written for the peer moves by changing one import:

    from pykalman import KalmanFilter          ->  from latentkit.compat import KalmanFilter

`KalmanFilter` (pykalman's constructor, attributes and methods) runs on
`latentkit.dynamics` (the compiled Kalman filter, RTS smoother and EM kernels).
"""

from ._pykalman import KalmanFilter

__all__ = ["KalmanFilter"]
