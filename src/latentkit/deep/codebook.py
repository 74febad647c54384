"""The VQ-VAE codebook (van den Oord, Vinyals & Kavukcuoglu 2017): nearest-code quantization,
straight-through gradients, EMA codebook updates and restarts of dead codes.

Shapes: a codebook e : (K, d) of K = n_codes vectors of dimension d = code_dim; encoder
outputs z_e : (..., d), flattened to (N, d) rows for the statistics below.

Quantization. k(z) = argmin_k ‖z - e_k‖², computed in the expanded form
‖z‖² - 2 z·e_k + ‖e_k‖² (one GEMM); z_q = e_{k(z)}.

Straight-through. The decoder sees z_st = z_e + sg[z_q - z_e]: its value is z_q (up to one
rounding) and its gradient passes to z_e unchanged (∂z_st/∂z_e = I), since the quantizer has
no useful gradient of its own.

EMA updates (van den Oord et al. 2017, appendix A.1; Sonnet's VectorQuantizerEMA), with
decay γ, counts n_k = #{i : k(z_i) = k} and sums s_k = Σ_{i: k(z_i) = k} z_i of a batch:

    N_k <- γ N_k + (1 - γ) n_k                   (cluster sizes)
    m_k <- γ m_k + (1 - γ) s_k                   (embedding sums)
    Ñ_k = (N_k + ε) / (Σ_j N_j + K ε) · Σ_j N_j  (Laplace smoothing: no division by 0)
    e_k = m_k / Ñ_k

Dead codes. A code whose EMA usage N_k falls below `dead_code_threshold` is moved to an
encoder output of the current batch drawn uniformly (torch's global generator), with
N_k = threshold and m_k = threshold · e_k (Dhariwal et al. 2020, Jukebox). With
update="loss" the usage N_k is tracked the same way but only serves this rule.

Codebook-usage perplexity: exp(H(p)), p_k = n_k / N the batch's code frequencies,
H(p) = -Σ_k p_k log p_k (0 log 0 = 0): K when every code is used equally, 1 when one is.
"""

from __future__ import annotations

import torch
from torch import nn

from ..exceptions import InvalidParameterError

CODEBOOK_UPDATES = ("ema", "loss")


# ----------------------------------------------------------------------------- kernels
def nearest_codes(z: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """z : (N, d), embedding : (K, d) -> (N,) long, argmin_k ‖z_i - e_k‖² (ties: the lowest
    k), from the expanded form ‖z‖² - 2 z·e + ‖e‖²."""
    distances = ((z * z).sum(1, keepdim=True) - 2 * z @ embedding.T
                 + (embedding * embedding).sum(1)[None, :])
    return distances.argmin(1)


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_e + sg[z_q - z_e] : the value of z_q, the gradient of the identity to z_e."""
    return z_e + (z_q - z_e).detach()


def code_statistics(z: torch.Tensor, indices: torch.Tensor, n_codes: int):
    """z : (N, d), indices : (N,) -> (counts n_k : (K,), sums s_k : (K, d)) in z's dtype."""
    one_hot = torch.zeros(len(z), n_codes, dtype=z.dtype, device=z.device)
    one_hot[torch.arange(len(z), device=z.device), indices] = 1
    return one_hot.sum(0), one_hot.T @ z


def ema_step(cluster_size, embedding_sum, counts, sums, decay: float):
    """One EMA step: (γ N + (1 - γ) n, γ m + (1 - γ) s). cluster_size, counts : (K,);
    embedding_sum, sums : (K, d). Returns new tensors."""
    return (decay * cluster_size + (1 - decay) * counts,
            decay * embedding_sum + (1 - decay) * sums)


def ema_codes(cluster_size: torch.Tensor, embedding_sum: torch.Tensor,
              epsilon: float) -> torch.Tensor:
    """e_k = m_k / Ñ_k with Laplace-smoothed sizes Ñ_k = (N_k + ε) / (Σ N + K ε) · Σ N.
    cluster_size : (K,), embedding_sum : (K, d) -> (K, d)."""
    total = cluster_size.sum()
    smoothed = (cluster_size + epsilon) / (total + len(cluster_size) * epsilon) * total
    return embedding_sum / smoothed[:, None]


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(-Σ_k p_k log p_k), p = counts / Σ counts (0 log 0 = 0). counts : (K,) -> ()."""
    p = counts / counts.sum()
    return torch.exp(-torch.special.xlogy(p, p).sum())


# ------------------------------------------------------------------------------ module
class Codebook(nn.Module):
    """K codes of dimension d, their quantizer and (in training forward passes) their
    updates.

    update : "ema" (the codes are buffers moved by the EMA rule; no codebook loss) or
        "loss" (the codes are a Parameter trained by the codebook loss ‖sg[z_e] - e‖²).
    decay : γ of the EMA (cluster sizes in both modes; embedding sums with "ema").
    epsilon : ε of the Laplace smoothing. dead_code_threshold : restart codes with EMA usage
        below it (0 disables restarts).
    Buffers (checkpointed with the module's state_dict): cluster_size (K,), embedding_sum
    (K, d) with "ema", n_restarts () long, embedding (K, d) with "ema" (a Parameter with
    "loss"). Initial codes ~ U(-1/K, 1/K), N_k = 1, m_k = e_k.
    """

    def __init__(self, n_codes: int, code_dim: int, update: str = "ema", decay: float = 0.99,
                 epsilon: float = 1e-5, dead_code_threshold: float = 1.0):
        super().__init__()
        if update not in CODEBOOK_UPDATES:
            raise InvalidParameterError(f"codebook_update must be one of {CODEBOOK_UPDATES}; "
                                        f"got {update!r}.")
        self.n_codes, self.code_dim, self.update = int(n_codes), int(code_dim), update
        self.decay, self.epsilon = float(decay), float(epsilon)
        self.dead_code_threshold = float(dead_code_threshold)
        initial = torch.empty(self.n_codes, self.code_dim).uniform_(-1 / self.n_codes,
                                                                      1 / self.n_codes)
        if update == "ema":
            self.register_buffer("embedding", initial)
            self.register_buffer("embedding_sum", initial.clone())
        else:
            self.embedding = nn.Parameter(initial)
        self.register_buffer("cluster_size", torch.ones(self.n_codes))
        self.register_buffer("n_restarts", torch.zeros((), dtype=torch.long))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """indices : (...,) long -> codes (..., d)."""
        return self.embedding[indices]

    def quantize(self, z_e: torch.Tensor) -> torch.Tensor:
        """z_e : (..., d) -> nearest-code indices (...,), no gradient, no update."""
        with torch.no_grad():
            flat = z_e.reshape(-1, self.code_dim)
            return nearest_codes(flat, self.embedding.to(flat.dtype)).reshape(z_e.shape[:-1])

    def forward(self, z_e: torch.Tensor):
        """z_e : (..., d) -> (z_q (..., d) with gradient to the codes only, indices (...,),
        stats {"perplexity": (), "restarts": ()}). In training mode, after quantizing with
        the current codes, updates the usage (and with "ema" the codes) and restarts the dead
        codes."""
        indices = self.quantize(z_e)
        z_q = self.lookup(indices)
        flat = z_e.detach().reshape(-1, self.code_dim)
        counts, sums = code_statistics(flat, indices.reshape(-1), self.n_codes)
        restarts = torch.zeros((), dtype=torch.long, device=z_e.device)
        if self.training:
            with torch.no_grad():
                self._update(counts, sums)
                restarts = self._restart_dead(flat)
        return z_q, indices, {"perplexity": perplexity(counts).detach(),
                              "restarts": restarts.to(z_e.dtype)}

    def _update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        if self.update == "ema":
            size, total = ema_step(self.cluster_size, self.embedding_sum, counts, sums,
                                   self.decay)
            self.cluster_size.copy_(size)
            self.embedding_sum.copy_(total)
            self.embedding.copy_(ema_codes(size, total, self.epsilon))
        else:
            self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)

    def _restart_dead(self, flat: torch.Tensor) -> torch.Tensor:
        """Move the codes with usage below the threshold to random rows of flat : (N, d)
        (uniform with replacement, torch's global generator); returns how many moved."""
        dead = torch.nonzero(self.cluster_size < self.dead_code_threshold).reshape(-1)
        if len(dead) == 0:
            return torch.zeros((), dtype=torch.long, device=flat.device)
        chosen = torch.randint(len(flat), (len(dead),), device=flat.device)
        fresh = flat[chosen].to(self.embedding.dtype)
        self.embedding[dead] = fresh
        self.cluster_size[dead] = self.dead_code_threshold
        if self.update == "ema":
            self.embedding_sum[dead] = self.dead_code_threshold * fresh
        self.n_restarts += len(dead)
        return torch.tensor(len(dead), device=flat.device)


__all__ = ["CODEBOOK_UPDATES", "Codebook", "code_statistics", "ema_codes", "ema_step",
           "nearest_codes", "perplexity", "straight_through"]
