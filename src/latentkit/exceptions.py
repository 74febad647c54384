"""Exceptions that tell a user's mistake apart from a fault in latentkit.

Everything a user can get wrong — data of the wrong shape or with inf, a hyper-parameter
out of range, a damaged model file, a malformed BIF file — raises a subclass of `UserError`.
Each is also a `ValueError` (or `TypeError`), so code written for scikit-learn's
conventions keeps catching what it caught before. Any other exception escaping latentkit is
a bug: the command line reports it as an internal error (exit status 1) rather than as a
one-line user mistake (exit status 2).
"""

from __future__ import annotations


class UserError(Exception):
    """Marker base: the input (data, options, a file) is wrong, not the library."""


class InvalidInputError(UserError, ValueError):
    """Data that cannot be used as given: wrong shape, inf, NaN where a model cannot
    marginalize it, too few rows, wrong number of features, an empty column."""


class InvalidInputTypeError(UserError, TypeError):
    """Data of a type that cannot be read as numbers at all (objects, dicts, strings)."""


class InvalidParameterError(UserError, ValueError):
    """A hyper-parameter or option outside its documented range or set of values."""


__all__ = ["InvalidInputError", "InvalidInputTypeError", "InvalidParameterError", "UserError"]
