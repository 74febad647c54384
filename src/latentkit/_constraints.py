"""Hyper-parameter constraints the engine needs beyond those of `_validation` (STYLE 7).

`Interval` here is `_validation.Interval` with a membership test that takes any Python
int: numpy's `isfinite` refuses an int beyond int64 (10**30) with a TypeError, so the
parent's test turns an absurd value into a crash instead of a message. An int is always
finite and compares exactly with the bounds, so it is checked without numpy.

`check_callbacks` checks the entries of `callbacks` once on fit, so that a non-callable
entry is named at the start of a fit rather than failing after its first iteration.
"""

from __future__ import annotations

import math
import numbers

from . import _validation
from .exceptions import InvalidParameterError

#: the largest max_iter (and n_init) accepted: far beyond any fit that could finish,
#: small enough for every counter and for numpy's int64
MAX_ITERATIONS = 10**9


class Interval(_validation.Interval):
    """A numeric range: `kind` int or float, None leaves a side open (see the parent);
    any int, however large, is tested exactly and never raises."""

    def __contains__(self, value) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if isinstance(value, numbers.Integral):
            return self._within(int(value))
        try:
            finite = math.isfinite(float(value))
        except OverflowError:  # a Fraction beyond the float range
            return False
        return finite and self._within(value)

    def _within(self, value) -> bool:
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (not left and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (not right and value == self.high)):
            return False
        return True


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


__all__ = ["MAX_ITERATIONS", "Interval", "check_callbacks"]
