"""Posterior distributions over latent variables, one per data row.

`posterior(X)` of every model returns one of these: a batch of distributions with batch shape
(n_rows,) and an event shape that depends on the latent (scalar for a categorical z, (M,) for
a Gaussian z or a Dirichlet's proportions). Each has `.mean`, `.sample(n, random_state)` and
`.log_prob(z)`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr, gammaln, logsumexp, psi

from ._linalg import LOG_2PI
from ._validation import as_generator


class _Categoricals:
    """What Categorical and FactorizedCategorical share: `log_probs` (n_rows, ..., K),
    normalized over the last axis (the states)."""

    log_probs: np.ndarray

    @property
    def probs(self) -> np.ndarray:
        """(n_rows, ..., K) probabilities."""
        return np.exp(self.log_probs)

    @property
    def mean(self) -> np.ndarray:
        """E[one_hot(z)] : (n_rows, ..., K), i.e. the probabilities (responsibilities)."""
        return self.probs

    @property
    def mode(self) -> np.ndarray:
        """(n_rows, ...) most probable state."""
        return np.argmax(self.log_probs, axis=-1)

    @property
    def batch_shape(self) -> tuple[int]:
        return (self.log_probs.shape[0],)

    def entropy(self) -> np.ndarray:
        """(n_rows,) entropy in nats (of all the row's variables: they are independent)."""
        return entr(self.probs).reshape(len(self), -1).sum(axis=1)  # 0 log 0 = 0

    def __len__(self) -> int:
        return self.log_probs.shape[0]


class Categorical(_Categoricals):
    """Categorical distributions over K states, one per row.

    Build from `log_probs` (preferred: stays exact in log space) or `probs`,
    each (n_rows, K) with rows summing to 1.
    """

    def __init__(self, probs=None, *, log_probs=None):
        if (probs is None) == (log_probs is None):
            raise ValueError("Categorical takes exactly one of probs= or log_probs=.")
        if log_probs is not None:
            log_probs = np.atleast_2d(np.asarray(log_probs))
            self.log_probs = log_probs - logsumexp(log_probs, axis=1, keepdims=True)
        else:
            probs = np.atleast_2d(np.asarray(probs))
            if np.any(probs < 0):
                raise ValueError("Categorical probs must be non-negative.")
            with np.errstate(divide="ignore"):
                self.log_probs = np.log(probs / probs.sum(axis=1, keepdims=True))

    def sample(self, n: int = 1, random_state=None) -> np.ndarray:
        """(n, n_rows) integer states, by inverse-CDF sampling of each row."""
        rng = as_generator(random_state)
        cdf = np.cumsum(self.probs, axis=1)
        u = rng.random((n, cdf.shape[0], 1)) * cdf[None, :, -1:]
        return np.minimum((u > cdf[None]).sum(axis=2), cdf.shape[1] - 1)

    def log_prob(self, z) -> np.ndarray:
        """log q(z) for integer states z : (n_rows,) or (n, n_rows); same shape out."""
        z = np.asarray(z, dtype=np.intp)
        rows = np.arange(self.log_probs.shape[0])
        return self.log_probs[rows, z]

    def __repr__(self) -> str:
        n, k = self.log_probs.shape
        return f"Categorical(n_rows={n}, n_states={k})"


class FactorizedCategorical(_Categoricals):
    """L independent categoricals over C states per row: q(z | x) = Π_l Cat(z_l; p_l), the
    posterior of a discrete VAE's L categorical latents.

    log_probs : (n_rows, L, C), each (row, l) normalized (log-softmax of logits).
    """

    def __init__(self, log_probs):
        log_probs = np.asarray(log_probs, dtype=np.float64)
        if log_probs.ndim != 3:
            raise ValueError(f"FactorizedCategorical log_probs must be (n_rows, L, C); got "
                             f"shape {log_probs.shape}.")
        self.log_probs = log_probs - logsumexp(log_probs, axis=2, keepdims=True)

    @property
    def event_shape(self) -> tuple[int]:
        return (self.log_probs.shape[1],)

    def marginal(self, latent: int) -> Categorical:
        """q(z_l | x) of latent l as a `Categorical` (n_rows, C)."""
        return Categorical(log_probs=self.log_probs[:, latent])

    def sample(self, n: int = 1, random_state=None) -> np.ndarray:
        """(n, n_rows, L) integer states, each latent drawn by its inverse CDF."""
        rng = as_generator(random_state)
        cdf = np.cumsum(self.probs, axis=2)
        u = rng.random((n, *cdf.shape[:2], 1)) * cdf[None, :, :, -1:]
        return np.minimum((u > cdf[None]).sum(axis=3), cdf.shape[2] - 1)

    def log_prob(self, z) -> np.ndarray:
        """log q(z) = Σ_l log p_l(z_l) for states z : (n_rows, L) or (n, n_rows, L); the
        leading shape out."""
        z = np.asarray(z, dtype=np.intp)
        picked = np.take_along_axis(np.broadcast_to(self.log_probs, (*z.shape,
                                                                     self.log_probs.shape[2])),
                                    z[..., None], axis=-1)[..., 0]
        return picked.sum(axis=-1)

    def __repr__(self) -> str:
        n, latents, states = self.log_probs.shape
        return f"FactorizedCategorical(n_rows={n}, n_latents={latents}, n_states={states})"


class Gaussian:
    """Multivariate normal distributions N(mean_i, cov_i), one per row.

    mean : (n_rows, M); cov : (n_rows, M, M), or (M, M) shared by all rows.
    """

    def __init__(self, mean, cov):
        self.mean = np.atleast_2d(np.asarray(mean))
        cov = np.asarray(cov)
        M = self.mean.shape[1]
        if cov.shape not in ((M, M), (self.mean.shape[0], M, M)):
            raise ValueError(
                f"Gaussian cov must have shape ({M}, {M}) or ({self.mean.shape[0]}, {M}, {M}) "
                f"to match mean {self.mean.shape}; got {cov.shape}."
            )
        self.cov = cov
        # Store the factor, never the inverse (STYLE 3).
        self._chol = np.linalg.cholesky(cov)

    @property
    def batch_shape(self) -> tuple[int]:
        return (self.mean.shape[0],)

    @property
    def event_shape(self) -> tuple[int]:
        return (self.mean.shape[1],)

    def sample(self, n: int = 1, random_state=None) -> np.ndarray:
        """(n, n_rows, M) draws: mean + L eps with cov = L L^T."""
        rng = as_generator(random_state)
        eps = rng.standard_normal((n, *self.mean.shape))
        return self.mean + np.einsum("...ij,...j->...i", self._chol, eps)

    def log_prob(self, z) -> np.ndarray:
        """log N(z; mean, cov) for z : (n_rows, M) or (n, n_rows, M); leading shape out.

        Mahalanobis term by a triangular solve with the Cholesky factor; log-det as the sum of
        the log-diagonal of the factor.
        """
        z = np.asarray(z)
        diff = z - self.mean
        L = self._chol
        sol = np.linalg.solve(L, diff[..., None])[..., 0]  # L^{-1} (z - mean), batched
        M = self.mean.shape[1]
        log_det = 2 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
        return -0.5 * (M * LOG_2PI + log_det + np.sum(sol**2, axis=-1))

    def __len__(self) -> int:
        return self.mean.shape[0]

    def __repr__(self) -> str:
        n, m = self.mean.shape
        return f"Gaussian(n_rows={n}, dim={m})"


class Dirichlet:
    """Dirichlet distributions over the (K-1)-simplex, one per row: a document's topic
    proportions θ under LDA's posterior q(θ) = Dir(γ).

        p(θ | γ) = Γ(Σ_k γ_k) / Π_k Γ(γ_k) Π_k θ_k^(γ_k - 1)
        E[θ_k] = γ_k / Σγ,   E[log θ_k] = ψ(γ_k) - ψ(Σγ)

    concentration : (n_rows, K), every entry > 0.
    """

    def __init__(self, concentration):
        self.concentration = np.atleast_2d(np.asarray(concentration))
        if not np.all(self.concentration > 0):  # also refuses NaN
            raise ValueError("Dirichlet concentration must be positive (and not NaN).")

    @property
    def mean(self) -> np.ndarray:
        """E[θ] : (n_rows, K), rows summing to 1."""
        return self.concentration / self.concentration.sum(axis=1, keepdims=True)

    @property
    def mean_log(self) -> np.ndarray:
        """E[log θ] : (n_rows, K) = ψ(γ_k) - ψ(Σγ)."""
        gamma = self.concentration
        return psi(gamma) - psi(gamma.sum(axis=1, keepdims=True))

    @property
    def mode(self) -> np.ndarray:
        """(n_rows,) the component with the largest expected proportion."""
        return np.argmax(self.concentration, axis=1)

    @property
    def batch_shape(self) -> tuple[int]:
        return (self.concentration.shape[0],)

    @property
    def event_shape(self) -> tuple[int]:
        return (self.concentration.shape[1],)

    def sample(self, n: int = 1, random_state=None) -> np.ndarray:
        """(n, n_rows, K) draws, as normalized Gamma(γ_k, 1) variables."""
        rng = as_generator(random_state)
        draws = rng.standard_gamma(self.concentration, size=(n, *self.concentration.shape))
        return draws / draws.sum(axis=-1, keepdims=True)

    def log_prob(self, theta) -> np.ndarray:
        """log p(θ | γ) for θ : (n_rows, K) or (n, n_rows, K) on the simplex; leading shape
        out."""
        gamma = self.concentration
        theta = np.asarray(theta)
        log_norm = gammaln(gamma.sum(axis=1)) - gammaln(gamma).sum(axis=1)
        with np.errstate(divide="ignore"):
            return log_norm + ((gamma - 1) * np.log(theta)).sum(axis=-1)

    def __len__(self) -> int:
        return self.concentration.shape[0]

    def __repr__(self) -> str:
        n, k = self.concentration.shape
        return f"Dirichlet(n_rows={n}, dim={k})"
