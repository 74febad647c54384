"""Hyper-parameter constraints the engine needs beyond those of `_validation` (STYLE 7).

`MAX_ITERATIONS` bounds max_iter and n_init (with `_validation.Interval`, which compares
any int exactly, so 10**30 is a clear error rather than numpy's TypeError).

`check_callbacks` checks the entries of `callbacks` once on fit, so that a non-callable
entry is named at the start of a fit rather than failing after its first iteration.
"""

from __future__ import annotations

from .exceptions import InvalidParameterError

#: the largest max_iter (and n_init) accepted: far beyond any fit that could finish,
#: small enough for every counter and for numpy's int64
MAX_ITERATIONS = 10**9


def check_callbacks(model: str, callbacks) -> None:
    """Every entry of `callbacks` (a list or tuple, or None) must be callable; the message
    names the first entry that is not, by its position."""
    for position, callback in enumerate(callbacks or ()):
        if not callable(callback):
            raise InvalidParameterError(
                f"{model}: parameter 'callbacks' must be a list of callables, each called "
                f"with an EMIteration after every iteration; entry {position} "
                f"(callbacks[{position}]) is {callback!r} of type {type(callback).__name__}, "
                "which is not callable.")


__all__ = ["MAX_ITERATIONS", "check_callbacks"]
