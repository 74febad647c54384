"""Persistence and BIF of a DiscreteBayesNet (a mixin, so that the model file stays small).

A model file stores the hyper-parameters as JSON, whose dicts `latentkit.io` writes with
sorted keys: the order of `cardinalities` (the network's variable order, which the flat
`cpt_values_` and the data columns follow) is therefore saved beside them as
`variable_order_` and restored on load. State names learned at fit are stored as flat
arrays (`latentkit._states.PackedStates`).
"""

from __future__ import annotations

import copy
from typing import Self

import numpy as np

from .._states import SavesStateNames
from ._learning import flatten


class NetworkFiles(SavesStateNames):
    """save / load hooks, from_bif and to_bif of DiscreteBayesNet."""

    _state_name_attributes = ("learned_state_names_",)

    def _saved_state(self) -> dict:
        state = super()._saved_state()
        state["variable_order_"] = np.asarray([str(v) for v in self.cardinalities or {}], dtype=str)
        return state

    def _restore_state(self, state: dict) -> None:
        state = dict(state)
        order = state.pop("variable_order_", None)
        if order is not None:
            if not isinstance(self.cardinalities, dict) or sorted(order.tolist()) != sorted(
                    self.cardinalities):
                raise ValueError("the saved variable order does not match cardinalities")
            self.cardinalities = {name: self.cardinalities[name] for name in order.tolist()}
        super()._restore_state(state)

    def save(self, path) -> None:
        """Write the network (structure as JSON hyper-parameters, CPTs as one array) to
        one file, without pickle. A network given by its CPTs can be saved unfitted."""
        from ..io import save

        structure, _ = self._compiled()
        model = copy.copy(self)
        if not hasattr(self, "cpt_values_"):
            model.cpt_values_ = flatten(self._cpts())
            model.n_features_in_ = len(structure.observed)
        if self.cpts is not None:  # nested lists are JSON: no array hyper-parameter
            model.cpts = {name: np.asarray(t, dtype=np.float64).tolist()
                          for name, t in self.cpts.items()}
        save(model, path)

    @classmethod
    def from_bif(cls, path, **kwargs) -> Self:
        """A network read from a BIF file (structure, state names and CPTs); kwargs are
        further constructor arguments (hidden, alpha, max_iter, ...)."""
        from .bif import read_bif

        with open(path, encoding="utf-8") as fh:
            spec = read_bif(fh.read(), source=str(path))
        return cls(**spec, **kwargs)

    def to_bif(self, path=None, name: str = "latentkit") -> str:
        """The network in BIF text (written to `path` when given)."""
        from .bif import write_bif

        structure, _ = self._compiled()
        text = write_bif(structure, self._cpts(), name=name)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

