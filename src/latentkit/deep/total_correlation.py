"""The β-TC decomposition of the ELBO's KL term (Chen, Li, Grosse & Duvenaud 2018,
"Isolating Sources of Disentanglement in VAEs"), as pure functions on per-row tensors.

With n uniform over the N training rows, q(z | n) the encoder's posterior of row n,
q(z) = (1/N) Σ_n q(z | n) the aggregate posterior, q(z_j) its marginals and p(z) = Π_j p(z_j)
a factorized prior, the KL term averaged over the data splits into three nonnegative parts:

    E_p(n)[KL(q(z|n) || p(z))] = I_q(z; n)                  index-code mutual information
                               + KL(q(z) || Π_j q(z_j))     total correlation
                               + Σ_j KL(q(z_j) || p(z_j))   dimension-wise KL

Per draw z ~ q(z | n) the three integrands telescope exactly,

    [log q(z|n) - log q(z)] + [log q(z) - Σ_j log q(z_j)] + Σ_j [log q(z_j) - log p(z_j)]
        = log q(z|n) - log p(z),

the one-sample Monte Carlo KL, whatever estimate of log q(z) and log q(z_j) is used: the
estimators below move mass between the terms, never the sum.

log q(z_i) for the draw z_i of batch row i is estimated from the B rows of the minibatch
as a weighted log-sum-exp over the batch, log q̂(z_i) = log Σ_j w_ij q(z_i | n_j), and the
marginals alike per dimension (`aggregate_log_densities`). The weights w : (B, B):

    "mws" (minibatch-weighted sampling):   w_ij = 1 / (N B) for all j.
        Chen et al.'s first estimator (their code's log(batch_size · dataset_size)). Its
        weights sum to 1/N, not 1, so log q̂ runs low by between log B (when q(z_i | n_i)
        dominates the sum) and log N (when many posteriors overlap), and so does each
        log q̂(z_il): MI is high by that shift c, TC by (D - 1) c and the dimension-wise KL
        low by D c (D = latent dimension). At B = N the shift is exactly log N. The
        constant part of the shift does not move the gradients, but the logged terms of
        "mws" are offset; read "mss"'s.
    "mss" (minibatch-stratified sampling): with M = B - 1,
        w_ii = 1/N (the row's own draw), w_i,i+1 (mod B) = (N - M)/(N M), other j 1/M.
        Unbiased for q(z_i) (not for its log) when the other rows are a uniform draw
        from the N - 1 others: E = (1/N) q(z|n_i) + [(M-1)/M + (N-M)/(NM)] q̄ =
        (1/N) q(z|n_i) + ((N-1)/N) q̄. (Chen et al.'s reference code fills the own-row
        weight into column 0, not the diagonal, through a stride of B instead of B + 1;
        here the diagonal holds it, as their appendix writes.) A batch of one row has no
        other rows: its weight is the own row's 1/N alone.
    `full_dataset_log_weights` (w_ij = 1/N): exact when the batch is the whole data set.

The estimates of log q(z), hence MI and TC, are biased (log of an unbiased estimate,
Jensen); tests/deep/test_tcvae.py measures the bias against the exact decomposition.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..exceptions import InvalidParameterError

#: the estimators of log q(z) from a minibatch
SAMPLING = ("mws", "mss")


class KLDecomposition(NamedTuple):
    """The three parts of log q(z|n) - log p(z) per row, each (B,)."""

    mutual_information: torch.Tensor
    total_correlation: torch.Tensor
    dimwise_kl: torch.Tensor


def gaussian_log_density_matrix(z: torch.Tensor, loc: torch.Tensor,
                                scale: torch.Tensor) -> torch.Tensor:
    """log N(z_il; loc_jl, scale_jl²) for every pair of rows: (B, B, L).

    z : (B, L) the draws; loc, scale : (B, L) the diagonal Gaussians q(z | n_j).
    Entry [i, j, l] is the density of draw i's coordinate l under row j's posterior.
    """
    standardized = (z.unsqueeze(1) - loc.unsqueeze(0)) / scale.unsqueeze(0)
    return (-0.5 * standardized.square() - torch.log(scale).unsqueeze(0)
            - 0.5 * math.log(2 * math.pi))


def mws_log_weights(batch_size: int, dataset_size: int, *, dtype=torch.float64,
                    device=None) -> torch.Tensor:
    """Minibatch-weighted sampling: log w_ij = -log(N B) for all i, j: (B, B)."""
    _check_sizes(batch_size, dataset_size)
    return torch.full((batch_size, batch_size), -math.log(dataset_size * batch_size),
                      dtype=dtype, device=device)


def mss_log_weights(batch_size: int, dataset_size: int, *, dtype=torch.float64,
                    device=None) -> torch.Tensor:
    """Minibatch-stratified sampling, M = B - 1: log w : (B, B) with w_ii = 1/N,
    w_i,(i+1 mod B) = (N - M)/(N M), the other B - 2 entries of row i 1/M (each row sums
    to 1); B = 1 gives [[-log N]]."""
    _check_sizes(batch_size, dataset_size)
    n_rows, others = dataset_size, batch_size - 1
    if others == 0:
        return torch.full((1, 1), -math.log(n_rows), dtype=dtype, device=device)
    weights = torch.full((batch_size, batch_size), 1.0 / others, dtype=dtype, device=device)
    rows = torch.arange(batch_size, device=device)
    # the stratum of size (N - M)/M; with B = 2 it is the only other row
    weights[rows, (rows + 1) % batch_size] = (n_rows - others) / (n_rows * others)
    weights[rows, rows] = 1.0 / n_rows
    return torch.log(weights)


def full_dataset_log_weights(dataset_size: int, *, dtype=torch.float64,
                             device=None) -> torch.Tensor:
    """log w_ij = -log N: (N, N), the exact q(z) = (1/N) Σ_n q(z | n) when the batch is
    the whole data set."""
    _check_sizes(dataset_size, dataset_size)
    return torch.full((dataset_size, dataset_size), -math.log(dataset_size), dtype=dtype,
                      device=device)


LOG_WEIGHTS = {"mws": mws_log_weights, "mss": mss_log_weights}
"""sampling name -> fn(batch_size, dataset_size, *, dtype, device) -> (B, B) log w."""


def aggregate_log_densities(log_density_matrix: torch.Tensor,
                            log_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log q̂(z_i) : (B,), log q̂(z_il) : (B, L)) from the (B, B, L) matrix of
    `gaussian_log_density_matrix` and (B, B) log weights:

        log q̂(z_i)  = logsumexp_j [log w_ij + Σ_l log q(z_il | n_j)]   (the joint)
        log q̂(z_il) = logsumexp_j [log w_ij + log q(z_il | n_j)]       (each marginal)
    """
    log_joint = torch.logsumexp(log_weights + log_density_matrix.sum(-1), dim=1)
    log_marginals = torch.logsumexp(log_weights.unsqueeze(-1) + log_density_matrix, dim=1)
    return log_joint, log_marginals


def kl_decomposition(log_q_own: torch.Tensor, log_qz: torch.Tensor,
                     log_qz_marginals: torch.Tensor,
                     log_pz_marginals: torch.Tensor) -> KLDecomposition:
    """The three integrands per row, summing to log q(z|n) - log p(z):

        MI_i = log q(z_i|n_i) - log q̂(z_i)
        TC_i = log q̂(z_i) - Σ_l log q̂(z_il)
        dimKL_i = Σ_l [log q̂(z_il) - log p(z_il)]

    log_q_own : (B,) log q(z_i | n_i); log_qz : (B,); log_qz_marginals,
    log_pz_marginals : (B, L) (the prior's per-dimension log densities at z_i).
    """
    sum_marginals = log_qz_marginals.sum(-1)
    return KLDecomposition(log_q_own - log_qz, log_qz - sum_marginals,
                           sum_marginals - log_pz_marginals.sum(-1))


def estimate_kl_decomposition(z: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor,
                              log_pz_marginals: torch.Tensor, *, dataset_size: int,
                              sampling: str = "mss") -> KLDecomposition:
    """MI, TC and dimension-wise KL per row (B,) of a minibatch of diagonal-Gaussian
    posteriors q(z | n_i) = N(loc_i, diag scale_i²) with draws z_i from them.

    z, loc, scale, log_pz_marginals : (B, L); dataset_size : N, the training rows the
    batch is drawn from (N >= B); sampling : "mws" or "mss" (module docstring).
    """
    if sampling not in LOG_WEIGHTS:
        raise InvalidParameterError(f"sampling must be one of {list(SAMPLING)}; got "
                                    f"{sampling!r}.")
    matrix = gaussian_log_density_matrix(z, loc, scale)                       # (B, B, L)
    log_q_own = torch.diagonal(matrix, dim1=0, dim2=1).sum(0)                 # (B,)
    log_weights = LOG_WEIGHTS[sampling](z.shape[0], dataset_size, dtype=z.dtype,
                                        device=z.device)
    log_qz, log_marginals = aggregate_log_densities(matrix, log_weights)
    return kl_decomposition(log_q_own, log_qz, log_marginals, log_pz_marginals)


def _check_sizes(batch_size: int, dataset_size: int) -> None:
    for name, value in (("batch_size", batch_size), ("dataset_size", dataset_size)):
        if isinstance(value, bool) or not hasattr(value, "__index__") or value < 1:
            raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}.")
    if batch_size > dataset_size:
        raise InvalidParameterError(
            f"a batch of {batch_size} rows cannot come from dataset_size={dataset_size} "
            "rows; dataset_size is the number of training rows N (>= the batch size).")


__all__ = [
    "LOG_WEIGHTS", "SAMPLING", "KLDecomposition", "aggregate_log_densities",
    "estimate_kl_decomposition", "full_dataset_log_weights", "gaussian_log_density_matrix",
    "kl_decomposition", "mss_log_weights", "mws_log_weights",
]
