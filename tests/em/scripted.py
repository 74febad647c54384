"""A stand-in EM family whose objective is scripted, shared by the engine's tests."""

from dataclasses import dataclass

import numpy as np

from latentkit import em


@dataclass(frozen=True)
class CountStats(em.SufficientStats):
    additive = ("n",)
    n: float


def scripted_family(script, objective=em.EXACT, reseed_at=()):
    """A stand-in family whose mean objective per iteration is scripted: params counts the
    M-steps taken, so the E-step at params = i reports script[i]."""

    def e_step(params, state, config, X):
        value = script[min(params, len(script) - 1)]
        return CountStats(float(len(X))), value * len(X)

    def m_step(stats, params, state, config):
        info = em.StepInfo((0,), "re-seeded component 0") if params + 1 in reseed_at \
            else em.NOTHING
        return params + 1, state, info

    def init(X, rng, config, restart):
        return 0, None

    return em.EMFamily(init, e_step, m_step, objective=objective, remedy="try the fix")


def run(script, family=None, **kw):
    source = em.ArraySource(np.zeros((10, 1)), 4, validated=True, allow_nan=False)
    options = dict(tol=1e-12, max_iter=len(script))
    options.update(kw)
    return em.run_em(family or scripted_family(script), None, source, 0, None, **options)


def slack_family(script, slack):
    """The scripted family whose every M-step declares it may lower the mean objective by
    `slack` (as a penalized M-step does: StepInfo.slack is summed over the rows)."""
    base = scripted_family(script)

    def m_step(stats, params, state, config):
        return params + 1, state, em.StepInfo(slack=slack * stats.n)

    return em.EMFamily(base.init, base.e_step, m_step)
