"""Hypothesis profiles of the fuzz suite (tests/fuzz/).

    ci    the default: a fixed sequence of examples (derandomize, no example database), so
          every run of `make test` tries the same cases; about a minute for every
          property over every registered model on a 2-core machine
    long  20 times as many examples (also a fixed sequence), run by `make test-all`
          (HYPOTHESIS_PROFILE=long)

Select one with the environment variable HYPOTHESIS_PROFILE (hypothesis is used by this
suite only, so loading the profile here sets it for the session).
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

settings.register_profile("ci", max_examples=25, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=500, derandomize=True, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
