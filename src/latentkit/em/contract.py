"""The EM contract (DESIGN section 3): what a model family supplies, as pure functions.

A family is three functions whose every input is an argument and every output is returned:

    init(X_sample, rng, config, restart)    -> (params, state)
    e_step(params, state, config, X_chunk)  -> (stats, objective_sum)   # stats add across chunks
    m_step(stats, params, state, config)    -> (params, state, info)

plus an optional `log_prior(params, config) -> float` for MAP-EM. `config` is the family's
record of validated hyper-parameters (and anything derived once per fit from them and the
data's shape); `state` is what must survive between iterations — a noise floor, a centring
shift — and is saved with the model; `info` reports what the M-step did besides new
parameters (which components it re-seeded). Nothing lives hidden on an estimator.

Each family declares whether its objective is an exact log-likelihood (exact EM: each
iteration maximizes a lower bound that touches log p(X | θ) at the current θ, so the
objective never decreases) or only a bound (variational EM: the bound never decreases under
exact coordinate updates), and names its own remedy for a numerical failure; the engine's
guards word their messages from these.

An M-step that is not an exact maximizer of EM's surrogate Q(θ) (the expected complete-data
log-likelihood) keeps no such promise. When it exactly maximizes a penalized surrogate
Q(θ) - pen(θ) whose penalty cannot be written as a log prior on θ alone (the Gaussian
mixture's reg_covar: pen = (r/2) Σ_k N_k tr Σ_k^{-1}, weighted by this E-step's counts N_k),
EM's inequality still bounds the loss: objective(θ_new) - objective(θ_old) >=
-(pen(θ_old) - pen(θ_new)). The M-step reports that bound as `StepInfo.slack`, and the
monotonicity guard allows a decrease of up to the slack (plus round-off) across that step:
a regularized step is not called a numerical failure, a broken one still is. A penalty that
is a log prior on θ belongs in `log_prior` instead: the objective then includes it and
never decreases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning

#: the objective is log p(X | θ) (+ log p(θ) for MAP-EM), exactly
EXACT = "log-likelihood"
#: the objective is a lower bound on it (variational EM's ELBO)
BOUND = "bound"


class ConvergenceWarning(_SklearnConvergenceWarning):
    """EM stopped before converging, or its objective decreased (a numerical failure)."""


class ReseedWarning(UserWarning):
    """An empty or collapsed component was re-seeded; the next objective may drop."""


@dataclass(frozen=True)
class SufficientStats:
    """Base for a family's statistics record.

    Fields named in `additive` add across chunks and scale in online EM; any other field is
    carried unchanged from the left operand (e.g. the data shift the chunk was centred by).
    """

    additive: ClassVar[tuple[str, ...]] = ()

    def __add__(self, other):
        return replace(self, **{f: getattr(self, f) + getattr(other, f) for f in self.additive})

    def scaled(self, a: float):
        return replace(self, **{f: a * getattr(self, f) for f in self.additive})


@dataclass(frozen=True)
class StepInfo:
    """What an M-step did besides computing new parameters.

    reseeded : indices of components that were empty or collapsed and were re-seeded; the
        next objective may drop, so the engine neither checks monotonicity nor declares
        convergence across that step, and keeps the parameters the step started from as a
        candidate for the fit's result (the best complete iterate; see `em.loop`).
    message : the family's own words for it, shown to the user as a ReseedWarning.
    slack : how far this M-step may lower the objective summed over the rows (>= 0): 0 for
        an exact M-step; for one that maximizes a penalized surrogate, the penalty it saved,
        pen(θ_old) - pen(θ_new) (see the module's docstring). The guard allows a decrease of
        slack / n_rows in the mean objective across the step.
    """

    reseeded: tuple[int, ...] = ()
    message: str = ""
    slack: float = 0.0


#: an M-step that did nothing worth reporting
NOTHING = StepInfo()


@dataclass(frozen=True)
class EMFamily:
    """The pure functions of one family, and how its objective is to be read.

    init : (X_sample, rng, config, restart) -> (params, state). `restart` counts the
        initializations of one fit from 0 (n_init > 1 may perturb later ones).
    e_step : (params, state, config, X_chunk) -> (stats, objective summed over the chunk).
    m_step : (stats, params, state, config) -> (params, state, StepInfo); `params` are those
        the E-step of `stats` ran at (what a StepInfo.slack is measured from).
    log_prior : (params, config) -> log p(θ) up to a constant, for MAP-EM; None for ML.
    objective : EXACT or BOUND.
    remedy : what the user can change when the objective turns non-finite or decreases
        (e.g. "increase reg_covar, use fewer components, or fit in float64").
    label : the objective's own name where it is neither a log-likelihood nor a bound on
        one but is still never decreased by the iterations (σ²→0 EM for PCA: the negative
        reconstruction error); None for the name of `objective`.
    """

    init: Callable[..., tuple[Any, Any]]
    e_step: Callable[..., tuple[Any, float]]
    m_step: Callable[..., tuple[Any, Any, StepInfo]]
    log_prior: Callable[[Any, Any], float] | None = None
    objective: str = EXACT
    remedy: str = "fit in float64"
    label: str | None = None

    def __post_init__(self):
        if self.objective not in (EXACT, BOUND):
            raise ValueError(f"EMFamily objective must be {EXACT!r} or {BOUND!r}; got "
                             f"{self.objective!r}.")

    @property
    def objective_name(self) -> str:
        if self.label is not None:
            return self.label
        return "log-likelihood" if self.objective == EXACT else "lower bound"

    @property
    def never_decreases(self) -> str:
        """Why a decrease is a failure, in the family's terms."""
        if self.label is not None:
            return f"these iterations never decrease the {self.label}"
        if self.objective == EXACT:
            return "exact EM never decreases the log-likelihood"
        return "variational EM with exact coordinate updates never decreases the bound"


__all__ = ["BOUND", "EXACT", "NOTHING", "ConvergenceWarning", "EMFamily", "ReseedWarning",
           "StepInfo", "SufficientStats"]
