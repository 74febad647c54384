"""A counter-free random stream for numba kernels: SplitMix64 (Steele, Lea & Flood 2014).

The samplers need random numbers inside compiled loops that run on several threads and must
give the same output for a given seed and thread count; numba's np.random keeps one hidden
state per thread, so its draws depend on scheduling. Here a stream is an explicit state, a
(1,) uint64 array that the kernel advances, and independent streams come from mixing a seed
with a stream number (a document block, a particle, a sweep):

    state <- state + γ,  γ = 0x9E3779B97F4A7C15 (the golden ratio in 64 bits)
    z = state;  z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9;  z = (z ^ z >> 27) * 0x94D049BB133111EB
    output = z ^ z >> 31

SplitMix64 passes BigCrush; a uniform double is the top 53 bits times 2^-53.
"""

from __future__ import annotations

import numba
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


@numba.njit(inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@numba.njit(inline="always")
def next_uint64(state):
    """The next 64 random bits of the stream `state` : (1,) uint64 (advanced in place)."""
    state[0] += GOLDEN
    return _mix(state[0])


@numba.njit(inline="always")
def next_double(state):
    """A uniform draw in [0, 1) from the stream `state` : (1,) uint64."""
    return np.float64(next_uint64(state) >> np.uint64(11)) * TO_UNIT


@numba.njit
def stream(seed, number):
    """A fresh stream state : (1,) uint64 for stream `number` of `seed` (both int64 >= 0):
    the seed and the number mixed, so neighbouring numbers give unrelated streams."""
    state = np.empty(1, dtype=np.uint64)
    state[0] = _mix(np.uint64(seed) * GOLDEN + _mix(np.uint64(number) + GOLDEN))
    return state


def seed_from(rng: np.random.Generator) -> int:
    """A 63-bit seed drawn from a numpy Generator (how a fit's random_state reaches a
    kernel)."""
    return int(rng.integers(0, 2**63 - 1))


__all__ = ["next_double", "next_uint64", "seed_from", "stream"]
