"""Validation of a discrete Bayesian network's given CPTs, once, at the boundary."""

from __future__ import annotations

import numpy as np

from ..exceptions import InvalidParameterError


def check_cpts(structure, cpts, *, atol: float = 1e-6) -> dict:
    """The user's CPTs validated -> {variable index: float64 array}, rows that sum to 1
    within `atol` renormalized. Names the variable, the expected shape (with the parents'
    order) and the offending row on any problem."""
    if cpts is None:
        return {}
    if not isinstance(cpts, dict):
        raise InvalidParameterError(
            f"cpts must be a dict {{variable: array}}; got {type(cpts).__name__}.")
    out = {}
    for name, value in cpts.items():
        v = structure.position(name, f"cpts names {name!r}")
        shape = structure.cpt_shape(v)
        try:
            table = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"the CPT of {name!r} must be a numeric array; got "
                                        f"{type(value).__name__}.") from None
        axes = [structure.names[p] for p in structure.parents[v]] + [name]
        if table.shape != shape:
            raise InvalidParameterError(
                f"the CPT of {name!r} must have shape {shape}, axes "
                f"({', '.join(axes)}): the parents in the order their edges are "
                f"listed, then {name!r}; got shape {table.shape}.")
        if not np.all(np.isfinite(table)) or np.any(table < 0):
            bad = np.argwhere(~np.isfinite(table) | (table < 0))[0]
            raise InvalidParameterError(
                f"the CPT of {name!r} has the entry {table[tuple(bad)]!r} at "
                f"{tuple(int(i) for i in bad)}; probabilities must be finite "
                "and >= 0.")
        sums = table.sum(axis=-1)
        wrong = np.abs(sums - 1) > atol
        if np.any(wrong):
            row = tuple(int(i) for i in np.argwhere(wrong)[0])
            where = ", ".join(f"{a}={s}" for a, s in zip(axes[:-1], row)) or "no parents"
            raise InvalidParameterError(f"the CPT of {name!r} must sum to 1 over its last axis "
                                        f"({name!r}); the row ({where}) sums to {sums[row]:.6g}.")
        # rows off by more than round-off are renormalized; exact ones stay bit for bit
        off = np.abs(sums - 1) > 1e-12
        out[v] = np.where(off[..., None], table / sums[..., None], table)
    return out
