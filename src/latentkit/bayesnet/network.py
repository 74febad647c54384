"""DiscreteBayesNet: a Bayesian network over named discrete variables, with exact inference
(variable elimination, clique tree) and EM learning of its CPTs from data with missing
values and hidden variables.

    p(x) = Π_v p(x_v | x_pa(v)),    CPT_v[u..., x] = p(X_v = x | X_pa(v) = u)

with CPT_v shaped (cards of the parents in the order their edges are listed..., card of v).
State 1 of a binary variable means "true". Learning is MAP-EM on the shared engine
(`latentkit.em`), see `_learning`; inference is in `_inference`.

State names (`latentkit._states`): given (`state_names`, a BIF file), else learned at fit
from text data, else "0", "1", .... Names in, names out (impute, predict, map_assignment;
sample after a fit on names; `as_names` forces either); predict_proba(as_frame=True) and
posterior_marginal(as_series=True) label probabilities with the state names.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar, NamedTuple

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .. import em
from .._states import check_as_names, decode, holds_names, label_probs
from .._validation import InstanceOf, Interval, Options, as_generator, check_n_samples
from ..base import EMModel
from ..distributions import Categorical
from ..exceptions import InvalidInputError, InvalidParameterError
from ..io import register_model
from . import _inference as inference
from ._cpts import check_cpts
from ._data import (
    as_codes,
    decode_data,
    evidence_holds_names,
    evidence_states,
    learn_network_states,
)
from ._files import NetworkFiles
from ._graph import HEURISTICS, build_structure, clique_tree
from ._learning import (
    BNConfig,
    BNParams,
    em_e_step,
    em_init,
    em_log_prior,
    em_m_step,
    flatten,
    log_likelihood,
    states_of,
    unflatten,
)


class MAPResult(NamedTuple):
    """assignment : {variable: state} (arrays (n,) for batched evidence); log_prob :
    log p(assignment, evidence) (float, or (n,))."""

    assignment: dict
    log_prob: float | np.ndarray


@register_model
class DiscreteBayesNet(NetworkFiles, EMModel):
    """A discrete Bayesian network: exact inference and EM learning of its CPTs.

    Parameters
    ----------
    edges : sequence of (parent, child) variable names.
    cardinalities : {name: number of states}; its key order is the variable order (and the
        order of the data columns, hidden variables left out).
    cpts : optional {name: array} CPTs, each (parent cards in edge order..., own card),
        rows summing to 1. They make the network usable for inference without fitting, and
        are the starting point of EM (variables without one start from `init_params`).
    state_names : optional {name: [state names]}; data and evidence may use these names.
        An observed variable without given names whose fit data is text learns them
        (sorted distinct strings, or a pandas Categorical's categories), stored in
        `learned_state_names_` and saved with the model.
    hidden : names of variables never observed (latent), or one name; they have no data
        column.
    alpha : float >= 0, Dirichlet pseudo-count added to every expected count in the M-step
        (MAP-EM, prior Dirichlet(1 + α)); the default 0.01 keeps every entry > 0. 0 gives
        maximum-likelihood EM.
    init_params : "data" (complete-case counts of each family plus a random Dirichlet(1)
        draw: families with a hidden member start random) or "random" (the draw alone).
    elimination : "min_fill" or "min_weight", the greedy elimination-order heuristic.
    tol, max_iter, n_init, random_state, warm_start, verbose, max_time, callbacks,
    chunk_size, learning_decay, learning_offset : the EM engine's options (`latentkit.em`).

    Attributes
    ----------
    cpt_values_ : all fitted CPTs flattened (safe to save); `cpts_` gives them as
    {name: array}. converged_, n_iter_, history_ (mean log p(X) + log p(θ) per row and
    iteration), lower_bound_, n_features_in_. learned_state_names_ : {name: tuple of state
    names} learned at fit (empty when none); fitted_on_names_ : whether the fit data held
    names (then `sample` returns names). `variable_states` gives every variable's names.
    """

    em_family: ClassVar[em.EMFamily] = em.EMFamily(
        em_init, em_e_step, em_m_step, log_prior=em_log_prior, objective=em.EXACT,
        remedy="increase alpha (Dirichlet smoothing of the CPTs) or fit in float64")

    _parameter_constraints: ClassVar[dict] = {
        "edges": [InstanceOf(list, tuple, description="a list of (parent, child) pairs")],
        "cardinalities": [InstanceOf(dict, type(None), description="a dict {name: k}")],
        "cpts": [InstanceOf(dict, type(None), description="a dict {name: array} or None")],
        "state_names": [InstanceOf(dict, type(None), description="a dict or None")],
        "hidden": [InstanceOf(list, tuple, str, description="a list of names (or one)")],
        "alpha": [Interval(float, 0, None)],
        "init_params": [Options("data", "random")],
        "elimination": [Options(*HEURISTICS)],
    }

    def __init__(self, edges=(), cardinalities=None, cpts=None, *, state_names=None,
                 hidden=(), alpha=0.01, init_params="data", elimination="min_fill",
                 tol=1e-4, max_iter=100, n_init=1, random_state=None, warm_start=False,
                 verbose=None, max_time=None, callbacks=None, chunk_size=None,
                 learning_decay=0.7, learning_offset=10.0):
        self._store_init_args(locals())

    # -- structure ------------------------------------------------------------------------

    def _compiled(self):
        """(Structure, CliqueTree) for the current hyper-parameters (cached)."""
        state_names = self.state_names
        learned = self.__dict__.get("learned_state_names_")
        if learned and isinstance(state_names, dict | type(None)):
            state_names = {**learned, **(state_names or {})}  # given names win
        key = repr((self.edges, self.cardinalities, state_names, self.hidden,
                    self.elimination))
        cached = self.__dict__.get("_compiled_cache")
        if cached is None or cached[0] != key:
            if self.cardinalities is None:
                raise InvalidParameterError(
                    f"{type(self).__name__} needs cardinalities={{name: number "
                    "of states}} (and edges) to define the network.")
            structure = build_structure(self.edges, self.cardinalities, state_names,
                                        self.hidden)
            cached = (key, structure, clique_tree(structure, self.elimination))
            self.__dict__["_compiled_cache"] = cached
        return cached[1], cached[2]

    @property
    def variables(self) -> tuple[str, ...]:
        """Variable names in order (the order of `cardinalities`)."""
        return self._compiled()[0].names

    @property
    def variable_states(self) -> dict:
        """{variable: tuple of its state names} (given, learned at fit, or "0", "1", ...)."""
        structure = self._compiled()[0]
        return dict(zip(structure.names, structure.states))

    @property
    def observed_variables(self) -> tuple[str, ...]:
        """Names of the variables that have a data column, in column order."""
        structure = self._compiled()[0]
        return tuple(structure.names[v] for v in structure.observed)

    def _cpts(self) -> tuple:
        """The CPTs inference uses: the fitted ones, else the complete given `cpts`."""
        structure, _ = self._compiled()
        if hasattr(self, "cpt_values_"):
            return unflatten(structure, np.asarray(self.cpt_values_, dtype=np.float64))
        given = check_cpts(structure, self.cpts)
        absent = [structure.names[v] for v in range(len(structure.names)) if v not in given]
        if absent:
            raise InvalidParameterError(
                f"{type(self).__name__} has no CPT for {absent}: give cpts for "
                "every variable, or fit the network to data first.")
        return tuple(given[v] for v in range(len(structure.names)))

    @property
    def cpts_(self) -> dict:
        """The fitted CPTs {name: array (parent cards..., own card)}."""
        check_is_fitted(self)
        structure, _ = self._compiled()
        return dict(zip(structure.names, self._cpts()))

    # -- EM wiring ------------------------------------------------------------------------

    def _learn_state_names(self, X) -> None:
        """At fit: name the states of the observed variables without given names from text
        data (None: a stream of codes, nothing to learn)."""
        self.learned_state_names_ = {}
        self.fitted_on_names_ = X is not None and holds_names(X)
        if self.fitted_on_names_:
            self.learned_state_names_ = learn_network_states(X, self._compiled()[0],
                                                             self.state_names)

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        if reset:
            self._learn_state_names(X)
        codes = as_codes(X, self._compiled()[0])
        if reset:
            self.n_features_in_ = codes.shape[1]
            self._check_observed(codes)
        return codes

    def _check_observed(self, codes: np.ndarray) -> None:
        """At fit: an observed variable with no value in any row is a clear error (declare
        it hidden, or drop it from the network), never a CPT learned from the prior."""
        empty = np.flatnonzero(np.isnan(codes).all(axis=0)) if len(codes) else []
        if len(empty):
            names = [self.observed_variables[j] for j in empty]
            raise InvalidInputError(
                f"DiscreteBayesNet: the data has no observed value of {names} (its column is "
                f"missing in every row). Declare it hidden (hidden={names}) to learn it as a "
                "latent variable, or leave it out of the network.")

    def _data_columns(self, X) -> list:
        """impute's columns: the observed variables in the network's order (as_codes
        matches a DataFrame's columns by name)."""
        structure, _ = self._compiled()
        return [structure.names[v] for v in structure.observed]

    @property
    def _n_features_out(self) -> int:
        """transform gives p(hidden | x_obs) over the hidden variables' joint states."""
        check_is_fitted(self)
        structure, _ = self._compiled()
        return int(np.prod([structure.cards[v] for v in structure.hidden]))

    def _source(self, X, *, reset: bool) -> em.ChunkSource:
        if reset and em.is_streaming(X):
            self._learn_state_names(None)
        source = super()._source(X, reset=reset)
        if em.is_streaming(X):  # check every chunk's codes once, before EM
            structure = self._compiled()[0]
            for chunk in source:
                as_codes(np.where(chunk == -1, np.nan, chunk), structure)
        return source

    def _em_config(self, n_samples, n_features) -> BNConfig:
        structure, tree = self._compiled()
        return BNConfig(structure, tree, self.alpha, self.init_params,
                        MappingProxyType(check_cpts(structure, self.cpts)))

    def _chunk_floats_per_row(self, n_features):
        # the E-step's tables are restricted to each row's evidence (a few entries per
        # clique) and it splits its chunk by their actual size (`restricted_pieces`), so
        # chunks can be large: the per-group overhead is paid per chunk
        return 4 * len(self._compiled()[1].scopes) + n_features

    def _dense_floats_per_row(self, n_features):
        structure, tree = self._compiled()
        return 3 * tree.table_size(structure.cards) + n_features

    def _store_params(self, params, dtype) -> None:
        self.cpt_values_ = flatten(params.cpts).astype(dtype)

    def _current_params(self):
        check_is_fitted(self)
        return BNParams(self._cpts())

    def _n_parameters(self) -> int:
        structure, _ = self._compiled()
        return sum(int(np.prod(structure.cpt_shape(v)[:-1])) * (structure.cards[v] - 1)
                   for v in range(len(structure.names)))

    @property
    def n_parameters_(self) -> int:
        """Free parameters: Σ_v (k_v - 1) Π_{u in pa(v)} k_u."""
        return self._n_parameters()

    # -- data-matrix inference (clique tree, in row chunks) -------------------------------

    def _chunks(self, X, dense=True):
        """(structure, tree, cpts, codes) and the row slices of codes to process (sized
        for dense clique tables, or for evidence-restricted ones)."""
        structure, tree = self._compiled()
        cpts = self._cpts()
        codes = as_codes(X, structure)
        per_row = self._dense_floats_per_row if dense else self._chunk_floats_per_row
        rows = self.chunk_size or em.auto_chunk_rows(per_row(codes.shape[1]))
        slices = [slice(s, s + rows) for s in range(0, len(codes), rows)]
        return structure, tree, cpts, codes, slices

    def score_samples(self, X) -> np.ndarray:
        """log p(x_obs) of each row : (n,), exact (the missing entries summed out)."""
        structure, tree, cpts, codes, slices = self._chunks(X, dense=False)
        return np.concatenate([log_likelihood(structure, tree, cpts, codes[s])
                               for s in slices]).astype(codes.dtype)

    def _marginals(self, X):
        """codes (n, n_observed) and p(x_v | x_obs) : (n, k_v) for every variable."""
        structure, tree, cpts, codes, slices = self._chunks(X)
        parts = []
        for s in slices:
            chunk = codes[s]
            evidence = inference.indicator_evidence(
                states_of(chunk, structure), structure.cards, np.float64)
            calibrated = inference.calibrate(
                tree, inference.clique_potentials(tree, structure, cpts), evidence)
            parts.append(inference.variable_marginals(tree, calibrated, len(chunk)))
        marginals = [np.concatenate([p[v] for p in parts]) for v in range(len(cpts))]
        return codes, marginals

    def _query_variable(self, variable) -> int:
        structure, _ = self._compiled()
        if variable is None:
            if len(structure.hidden) != 1:
                raise InvalidParameterError(
                    "name the variable to predict (variable=...): the network "
                    f"has {len(structure.hidden)} hidden variables, not 1.")
            return structure.hidden[0]
        return self._indices([variable])[0]

    def predict_proba(self, X, variable=None, *, as_frame: bool = False):
        """p(variable | x_obs) : (n, k) for each row (default: the single hidden variable).
        as_frame=True: a DataFrame whose columns are the variable's state names (and whose
        index is X's when X is a DataFrame)."""
        v = self._query_variable(variable)
        probs = self._marginals(X)[1][v]
        structure, _ = self._compiled()
        return (label_probs(probs, structure.states[v], structure.names[v], like=X)
                if as_frame else probs)

    def predict(self, X, variable=None, *, as_names=None) -> np.ndarray:
        """The most probable state of `variable` given each row : (n,) int codes (default:
        the single hidden variable), or its state names (object array) when as_names is
        True, or None and X holds names."""
        v = self._query_variable(variable)
        codes = np.argmax(self._marginals(X)[1][v], axis=1)
        if not check_as_names(as_names, holds_names(X)):
            return codes
        return decode(codes, self._compiled()[0].states[v])

    def posterior(self, X, variables=None) -> Categorical:
        """p(variables | x_obs) per row as a Categorical over their joint states (row-major
        over `variables`); default: the hidden variables."""
        structure, _ = self._compiled()
        if variables is None:
            if not structure.hidden:
                raise InvalidParameterError(
                    "the network has no hidden variables: name the variables "
                    "of the posterior (variables=[...]).")
            variables = [structure.names[v] for v in structure.hidden]
        if isinstance(variables, str):
            variables = [variables]
        if len(variables) == 1:
            return Categorical(self.predict_proba(X, variables[0]))
        probs = self.posterior_joint(variables, evidence=as_codes(X, structure))
        return Categorical(probs.reshape(len(probs), -1))

    def transform(self, X) -> np.ndarray:
        """p(hidden | x_obs) : (n, Π k_hidden), the posterior over the hidden variables."""
        return self.posterior(X).probs

    def impute(self, X) -> np.ndarray:
        """The data codes with each missing entry replaced by its most probable state under
        p(x_v | x_obs) (codes are nominal: the mode, not a mean). Returns (n, n_observed);
        names in, names out: an X holding state names gives an object array of names (a
        DataFrame for a DataFrame)."""
        codes, marginals = self._marginals(X)
        structure, _ = self._compiled()
        out = codes.copy()
        for j, v in enumerate(structure.observed):
            missing = np.isnan(out[:, j])
            out[missing, j] = np.argmax(marginals[v][missing], axis=1)
        return decode_data(out, structure) if holds_names(X) else out

    # -- queries with evidence (variable elimination) -------------------------------------

    def _indices(self, variables) -> list[int]:
        structure, _ = self._compiled()
        out = [structure.position(name, repr(name)) for name in variables]
        if len(set(out)) != len(out):
            raise InvalidParameterError(f"query variables must be distinct; got {list(variables)}.")
        return out

    def _evidence(self, evidence):
        structure, _ = self._compiled()
        states, batched = evidence_states(evidence, structure)
        lam = inference.indicator_evidence(states, structure.cards, np.float64)
        return structure, self._cpts(), lam, batched, len(states)

    def posterior_joint(self, variables, evidence=None) -> np.ndarray:
        """p(variables | evidence): an array over (k_1, ..., k_q) in the given order, with a
        leading (n,) axis for batched evidence. Rows whose evidence has probability 0 are
        NaN.

        evidence : None, {name: state code or name}, {name: (n,) codes}, or a data matrix
        / DataFrame of the observed variables (NaN / -1 / None = unknown).
        """
        if isinstance(variables, str):
            variables = [variables]
        query = self._indices(variables)
        structure, cpts, lam, batched, n = self._evidence(evidence)
        probs, log_evidence = inference.joint_posterior(structure, cpts, lam, query,
                                                        self.elimination)
        probs = np.broadcast_to(probs, (n,) + probs.shape[1:]).copy()
        probs[np.broadcast_to(np.isneginf(log_evidence), (n,))] = np.nan
        return probs if batched else probs[0]

    def posterior_marginal(self, variable, evidence=None, *, as_series: bool = False):
        """p(variable | evidence) : (k,) or (n, k) for batched evidence. as_series=True
        labels it with the state names: a pandas Series named `variable` (one case), or a
        DataFrame with one column per state (batched; the evidence's index when it is a
        DataFrame)."""
        probs = self.posterior_joint([variable], evidence)
        return (label_probs(probs, self.variable_states[variable], variable, like=evidence)
                if as_series else probs)

    def log_evidence(self, evidence=None):
        """log p(evidence): a float, or (n,) for batched evidence (-inf if impossible)."""
        structure, tree = self._compiled()
        structure, cpts, lam, batched, n = self._evidence(evidence)
        potentials = inference.clique_potentials(tree, structure, cpts)
        value = np.broadcast_to(inference.collect(tree, potentials, lam)[2], (n,))
        return value.copy() if batched else float(value[0])

    def map_assignment(self, evidence=None, variables=None, *, as_names=None) -> MAPResult:
        """The most probable joint state of `variables` given the evidence.

        variables None: MPE, argmax over every variable of p(x, evidence) (observed ones
        keep their evidence). A subset: marginal MAP, argmax_q Σ_others p(q, others, e).
        Returns MAPResult(assignment {name: state}, log p(assignment, evidence)); the
        states are codes, or state names when as_names is True, or None and the evidence
        gives a state by name.
        """
        named = check_as_names(as_names, evidence_holds_names(evidence))
        structure, _ = self._compiled()
        names = structure.names if variables is None else list(variables)
        query = self._indices(names)
        structure, cpts, lam, batched, n = self._evidence(evidence)
        states, log_prob = inference.map_assignment(structure, cpts, lam, query,
                                                    self.elimination)
        states = np.broadcast_to(states, (n, len(query)))
        log_prob = np.broadcast_to(log_prob, (n,))
        labels = [structure.states[v] for v in query]
        if batched:
            return MAPResult({name: decode(states[:, i], labels[i]) if named
                              else states[:, i].copy() for i, name in enumerate(names)},
                             log_prob.copy())
        return MAPResult({name: labels[i][states[0, i]] if named else int(states[0, i])
                          for i, name in enumerate(names)}, float(log_prob[0]))

    # -- generation (persistence and BIF: `_files.NetworkFiles`) --------------------------

    def sample(self, n_samples=1, random_state=None, *, as_names=None):
        """Ancestral sampling: each variable in topological order from its CPT row given
        the parents' drawn states. Returns (X (n, n_observed) float codes, Z (n, n_hidden)
        int states of the hidden variables). as_names : None (names when the network was
        fitted on names), True or False: X as an object array of state names."""
        check_n_samples(n_samples)
        named = check_as_names(as_names, bool(getattr(self, "fitted_on_names_", False)))
        structure, _ = self._compiled()
        cpts = self._cpts()
        rng = as_generator(random_state)
        states = np.empty((n_samples, len(structure.names)), dtype=np.int64)
        for v in structure.topological:
            rows = cpts[v][tuple(states[:, p] for p in structure.parents[v])]
            cumulative = np.cumsum(rows, axis=-1)
            u = rng.random((n_samples, 1)) * cumulative[..., -1:]
            states[:, v] = np.minimum((u >= cumulative).sum(axis=-1), structure.cards[v] - 1)
        X = states[:, list(structure.observed)].astype(np.float64)
        return (decode_data(X, structure) if named else X), states[:, list(structure.hidden)]
