"""`latentkit evaluate MODEL --disentanglement`: how well a model's representation
(`transform`) separates DATA's known factors of variation, by the four metrics of
`latentkit.metrics.disentanglement` at disentanglement_lib's protocol. The factors are
DATA's own (the bundled `sprites` carry theirs), or a file given with --factors."""

from __future__ import annotations

import sys

import numpy as np

from latentkit.exceptions import InvalidInputError, InvalidParameterError

#: rows SAP's classifiers see at most (disentanglement_lib: 10,000 training and 5,000 test
#: points), and DCI's boosted trees (one classifier of up to 40 classes per factor: about
#: 35 s at 3,000 rows on 2 cores, 5 minutes at 15,000); MIG and the FactorVAE score use
#: every row
CLASSIFIER_ROWS, DCI_ROWS = 15_000, 3_000


def read_factors(data, factors_file: str | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """(factors (n_rows, n_factors), their names): from --factors FILE (a table or array
    with one row per row of DATA, integer-valued), else DATA's own."""
    if factors_file is None:
        if data.factors is None:
            raise InvalidInputError(
                f"--disentanglement needs the known factors of variation of each row; "
                f"{data.name} has none. Evaluate on data that carries them (e.g. the bundled "
                f"`sprites`), or give them with --factors FILE (one row per row of DATA).")
        return np.asarray(data.factors), tuple(data.factor_names or ())
    from .data import load_data

    table = load_data(factors_file)
    factors = table.X
    if len(factors) != len(data.X):
        raise InvalidInputError(
            f"--factors {factors_file} has {len(factors)} rows but {data.name} has "
            f"{len(data.X)}; give one row of factors per row of DATA, in the same order.")
    if not np.all(np.isfinite(factors)) or not np.array_equal(factors, np.round(factors)):
        raise InvalidInputError(
            f"--factors {factors_file} must hold integer factor values (class indices), "
            f"without missing entries; discretize continuous factors first.")
    return factors.astype(np.int64), tuple(table.column_names)


def _subset(n_rows: int, size: int) -> np.ndarray:
    """Every row in order when there are at most `size`, else a seeded random `size`."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.random.default_rng(0).choice(n_rows, size, replace=False)


def disentanglement_rows(model, data, X, factors_file: str | None = None) -> list:
    """The summary rows of --disentanglement: MIG, SAP, DCI (disentanglement, completeness,
    informativeness) and the FactorVAE score of model.transform(X) against the factors."""
    from latentkit.metrics import dci, factorvae_score, mig, sap

    if not hasattr(model, "transform"):
        raise InvalidParameterError(
            f"--disentanglement scores a model's representation, and "
            f"{type(model).__name__} has no transform; use a model with one (e.g. vae, "
            f"betavae, betatcvae).")
    factors, names = read_factors(data, factors_file)
    codes = np.asarray(model.transform(X), dtype=np.float64)
    rows = _subset(len(codes), CLASSIFIER_ROWS)
    trees = rows[:DCI_ROWS]
    print(f"latentkit: scoring the disentanglement of {codes.shape[1]} latents against "
          f"{factors.shape[1]} factors ({', '.join(names)}) on {len(codes)} rows; DCI's "
          f"boosted trees on {len(trees)} of them take a minute or so", file=sys.stderr)
    scores = dci(codes[trees], factors[trees], random_state=0, n_jobs=-1)
    return [("mig", "MIG (mutual information gap, 20 bins)", mig(codes, factors)),
            ("sap", f"SAP (separated attribute predictability, {len(rows)} rows)",
             sap(codes[rows], factors[rows], random_state=0)),
            ("dci_disentanglement", f"DCI disentanglement (boosted trees, {len(trees)} rows)",
             scores["disentanglement"]),
            ("dci_completeness", "DCI completeness", scores["completeness"]),
            ("dci_informativeness", "DCI informativeness (test accuracy)",
             scores["informativeness"]),
            ("factorvae_score", "FactorVAE score (majority vote, batches of 64)",
             factorvae_score(codes, factors, random_state=0))]
