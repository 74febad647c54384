"""The model contract (DESIGN section 2) for deep latent variable models, on numpy at the
edge: `DeepModel` turns a torch module that implements `module.py`'s protocol into a
latentkit estimator.

    fit(X)                 the Trainer's minibatch loop on the model's loss (`_loss`)
    score_samples(X, method="elbo" | "iwae" | "importance" | "naive", n_samples)
                           log p(x) per row, by the named estimator (`score_kind` names the
                           default's)
    posterior(X)           q(z | x) as a latentkit Gaussian (diagonal covariance)
    transform(X)           its mean
    sample(n)              (x ~ p(x | z), z ~ p(z))
    impute(X)              missing entries (NaN) by the posterior-predictive mean

NaN in X means missing: the likelihood sums over the observed entries only (the decoder
factorizes given z, so this marginalizes the missing ones exactly) and the encoder sees the
mask. X may be (n, D) rows or (n, *image_shape) images, flattened at the edge.

Persistence: the weights as one safetensors blob (a uint8 array) inside latentkit's model
file, beside the JSON header; loading rebuilds the module from the hyper-parameters and
loads the blob with safetensors (nothing is unpickled).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils.validation import _check_feature_names, check_is_fitted

from .._validation import Interval, Options, as_seed, check_n_samples, unmask
from ..base import LatentModel
from ..distributions import Gaussian
from ..exceptions import InvalidInputError, InvalidParameterError
from .blocks import ACTIVATIONS
from .likelihoods import LIKELIHOODS, check_decoder_data
from .objectives import ESTIMATORS
from .trainer import LR_SCHEDULES, Trainer, resolve_device

#: importance samples of score_samples when not given (the IWAE paper evaluates with 5000)
DEFAULT_IMPORTANCE_SAMPLES = 1000
#: rows per forward pass when scoring or encoding (memory, not results: rows are independent)
EVAL_ROWS = 256


def _hidden_ok(value) -> bool:
    return isinstance(value, tuple | list) and all(
        isinstance(h, int | np.integer) and not isinstance(h, bool) and h >= 1 for h in value)


class _Hidden:
    """The constraint on `hidden`: a tuple of positive layer widths (() = linear maps)."""

    description = "a tuple of positive ints, e.g. (400,), or () for linear maps"

    def is_satisfied_by(self, value) -> bool:
        return _hidden_ok(value)

    def __str__(self):
        return self.description


DEEP_CONSTRAINTS = {
    "latent_dim": [Interval(int, 1, 100_000)],
    "likelihood": [Options(*LIKELIHOODS)],
    "architecture": [Options("mlp", "conv")],
    "epochs": [Interval(int, 1, 10**7)],
    "batch_size": [Interval(int, 1, 10**7)],
    "lr": [Interval(float, 0, None, closed="neither")],
    "lr_schedule": [Options(*LR_SCHEDULES)],
    "beta": [Interval(float, 0, None)],
    "kl_warmup_epochs": [Interval(float, 0, None)],
    "validation_fraction": [Interval(float, 0, 1, closed="left")],
    "dynamic_binarization": [Options(True, False)],
    "random_state": [Interval(int, 0, None), Options(None)],
    "verbose": [Options(None, True, False), Interval(int, 0, None)],
    "sigma": [Options("fixed", "shared", "per_dim")],
    "sigma_init": [Interval(float, 0, None, closed="neither")],
    "activation": [Options(*ACTIVATIONS)],
    "clip_grad_norm": [Interval(float, 0, None, closed="neither"), Options(None)],
    "early_stopping_patience": [Interval(int, 1, None), Options(None)],
    "checkpoint_every_minutes": [Interval(float, 0, None)],
    "max_time": [Interval(float, 0, None, closed="neither"), Options(None)],
    # data parallel training (`deep.ddp`): the Trainer checks how they combine
    "strategy": [Options(None, "ddp")],
    "world_size": [Interval(int, 1, None), Options(None)],
}


def _out_dtype(X) -> np.dtype:
    """Results in the input's float dtype (float32 stays float32; anything else float64)."""
    dtype = getattr(X, "dtype", None)
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _check_unit_interval(X: np.ndarray) -> None:
    seen = X[~np.isnan(X)]
    if seen.size and (seen.min() < 0 or seen.max() > 1 or not np.isfinite(seen).all()):
        raise InvalidInputError(
            "dynamic_binarization draws each pixel as Bernoulli(x): X must lie in [0, 1] "
            f"(found values in [{seen.min()}, {seen.max()}]); divide 8-bit images by 255.")


class DeepModel(LatentModel):
    """Base of VAE, IWAE and HierarchicalVAE: the estimator around a torch module.

    A subclass builds its module (`_build_module(n_features)`) and says what it trains on
    (`_objective(module, x, observed, beta) -> (B,)`, maximized). Shared hyper-parameters
    are listed in `VAE`'s docstring.
    """

    _parameter_constraints: ClassVar[dict] = DEEP_CONSTRAINTS
    #: what score_samples estimates by default
    score_kind = "elbo"

    # -- what a subclass supplies ---------------------------------------------------------

    def _build_module(self, n_features: int) -> torch.nn.Module:
        raise NotImplementedError

    def _objective(self, module, x, observed, beta: float):
        """The training objective per row (B,), maximized; or (that, terms) with terms
        {name: () tensor, a batch mean to log per epoch in `history_terms_`}."""
        return module.elbo(x, observed, beta=beta)

    # -- data at the edge -----------------------------------------------------------------

    def _validate_params(self):
        super()._validate_params()
        self._check_architecture()

    def _check_architecture(self) -> None:
        """The layer widths (`hidden`), beyond what constraints as data can say."""
        if not _hidden_ok(self.hidden):
            raise InvalidParameterError(f"hidden must be {_Hidden.description}; got "
                                        f"{self.hidden!r}.")

    @property
    def _dtype(self) -> torch.dtype:
        return torch.float32

    def _rows(self, X, *, reset: bool) -> np.ndarray:
        """X : (n, D) or (n, *image_shape) -> (n, D) float32 rows, NaN = missing (a masked
        array's masked entries too); a DataFrame's columns recorded (`feature_names_in_`)
        at fit and checked after; the decoder's domain checked (binary for Bernoulli...).
        Fit needs at least 2 rows."""
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        _check_feature_names(self, X, reset=reset)  # records, checks or forgets names
        X = np.asarray(unmask(X, allow_nan=True, model=type(self).__name__))
        if X.dtype.kind not in "biuf":
            raise InvalidInputError(f"X must be numeric; got dtype {X.dtype}.")
        if X.ndim < 2 or X.shape[0] < (2 if reset else 1):
            raise InvalidInputError(
                f"X must be (n_samples, n_features) or (n_samples, *image_shape) with "
                f"n_samples >= {2 if reset else 1}; got shape {X.shape}.")
        if X.ndim > 4:
            raise InvalidInputError(f"X must have 2 to 4 axes (rows, or images (n, H, W) or "
                                    f"(n, C, H, W)); got shape {X.shape}.")
        shape = tuple(X.shape[1:])
        if reset:
            self.input_shape_ = shape
        elif shape != tuple(self.input_shape_) and (X.ndim != 2 or
                                                     X.shape[1] != self.n_features_in_):
            raise InvalidInputError(
                f"X has rows of shape {shape}, but {type(self).__name__} was fitted on rows "
                f"of shape {tuple(self.input_shape_)} ({self.n_features_in_} features).")
        X = X.reshape(len(X), -1).astype(np.float32)
        if reset:
            self.n_features_in_ = X.shape[1]
        if reset and self.dynamic_binarization:
            _check_unit_interval(X)  # grey levels, drawn as 0/1 afresh each epoch
        else:
            check_decoder_data(X, self.likelihood)
        empty = np.isnan(X).all(axis=0)
        if reset and empty.any():
            raise InvalidInputError(
                f"{int(empty.sum())} column(s) of X are missing (NaN) in every row, e.g. "
                f"column {int(np.flatnonzero(empty)[0])}: nothing can be learned about them. "
                "Drop them.")
        return X

    @staticmethod
    def _split(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """batch : (B, D) -> (x with NaN -> 0, observed (B, D) float mask, or None when
        nothing is missing). A NaN anywhere makes the batch's sum NaN, so a finite (or
        infinite, i.e. overflowed) sum proves there is none: one reduction (0.01 ms on a
        100 x 784 batch) instead of the NaN indicator of every entry (0.1-0.2 ms)."""
        if not torch.isnan(batch.sum()):
            return batch, None
        missing = torch.isnan(batch)
        return torch.where(missing, torch.zeros_like(batch), batch), (~missing).to(batch.dtype)

    # -- fitting --------------------------------------------------------------------------

    def _trainer(self) -> Trainer:
        return Trainer(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                       lr_schedule=self.lr_schedule, clip_grad_norm=self.clip_grad_norm,
                       kl_warmup_epochs=self.kl_warmup_epochs,
                       early_stopping_patience=self.early_stopping_patience,
                       validation_fraction=self.validation_fraction,
                       checkpoint_path=self.checkpoint_path,
                       checkpoint_every_minutes=self.checkpoint_every_minutes,
                       device=self.device, random_state=self._seed(), verbose=self.verbose,
                       max_time=self.max_time, callbacks=self.callbacks,
                       dynamic_binarization=self.dynamic_binarization,
                       strategy=self.strategy, world_size=self.world_size)

    def _seed(self) -> int:
        return as_seed(self.random_state)

    def _loss(self, module, batch, *, kl_weight: float):
        # training data without missing entries (known at fit: uses_mask_) needs no split
        x, observed = (self._split(batch) if getattr(self, "uses_mask_", True)
                       else (batch, None))
        value = self._objective(module, x, observed, self.beta * kl_weight)
        if isinstance(value, tuple):  # (value, terms to log)
            value, terms = value
            return -value.mean(), value.detach(), terms
        return -value.mean(), value.detach()

    def fit(self, X, y=None, *, resume_from=None):
        """Train on X : (n, D) or (n, *image_shape) (NaN = missing), or continue the run
        saved in the Trainer checkpoint `resume_from`. Returns self."""
        self._validate_params()
        X = self._rows(X, reset=True)
        # the encoder sees the mask only when training has missing entries to learn it
        # from: a mask input of ones doubles the first layer's width and, in the deep
        # benchmark, cost 21% of the time and 20 nats of test ELBO after 6 epochs
        self.uses_mask_ = bool(np.isnan(X).any())
        torch.manual_seed(self._seed())  # the initial weights
        module = self._build_module(X.shape[1]).to(self._dtype)
        result = self._trainer().fit(module, self._loss, torch.from_numpy(X),
                                     resume_from=resume_from)
        self.module_ = module.to("cpu").eval()
        self.history_ = np.asarray(result.history, dtype=np.float64)
        self.term_names_ = np.asarray(list(result.terms), dtype=str)
        self.term_history_ = np.asarray(list(result.terms.values()), dtype=np.float64
                                        ).reshape(len(result.terms), len(self.history_))
        self.valid_history_ = np.asarray(result.valid_history, dtype=np.float64)
        self.n_iter_ = int(result.epochs_run)
        # 0: no epoch completed (a run stopped by max_time or Ctrl-C in its first epoch)
        self.best_epoch_ = int(result.best_epoch or 0)
        self.converged_ = bool(result.converged)
        self.stop_reason_ = str(result.stop_reason)
        self.lower_bound_ = float(self.history_[-1]) if len(self.history_) else -math.inf
        return self

    @property
    def history_terms_(self) -> dict[str, np.ndarray]:
        """{name: (n_epochs,) epoch means} of the terms the objective logs beside
        `history_` (e.g. a β-TC-VAE's mi, tc and dimwise_kl); {} for a model that logs
        none. Stored as `term_names_` (T,) and `term_history_` (T, n_epochs)."""
        check_is_fitted(self)
        names = getattr(self, "term_names_", None)
        if names is None:  # a file written before terms were logged
            return {}
        return {str(name): column.copy() for name, column in zip(names, self.term_history_)}

    # -- inference ------------------------------------------------------------------------

    def _batches(self, X):
        """(x, observed) torch batches of EVAL_ROWS rows of validated X."""
        X = torch.from_numpy(self._rows(X, reset=False))
        for start in range(0, len(X), EVAL_ROWS):
            yield self._split(X[start:start + EVAL_ROWS])

    def score_samples(self, X, method=None, n_samples=None, random_state=0) -> np.ndarray:
        """log p(x) per row (n_samples,), estimated by `method` (default `score_kind`):
        "elbo" (a lower bound; n_samples draws averaged, default 1), "iwae" / "importance"
        (importance sampling with q as proposal, k = n_samples, default 1000 — pass 5000
        for the IWAE paper's test protocol: the IWAE
        bound, a lower bound that tightens with k), "naive" (Monte Carlo from the prior:
        unbiased for p(x), hopeless in high dimension). Missing entries are marginalized.
        random_state seeds the draws (the same number for the same seed)."""
        check_is_fitted(self)
        method = method or self.score_kind
        if method not in ESTIMATORS:
            raise InvalidParameterError(f"method must be one of {sorted(ESTIMATORS)}; got "
                                        f"{method!r}.")
        n = n_samples or (1 if method == "elbo" else DEFAULT_IMPORTANCE_SAMPLES)
        generator = torch.Generator().manual_seed(self._seed_of(random_state))
        with torch.no_grad():
            parts = [self.module_.log_px(method, x, observed, n_samples=n,
                                         generator=generator)
                     for x, observed in self._batches(X)]
        return torch.cat(parts).numpy().astype(_out_dtype(X))

    @staticmethod
    def _seed_of(random_state) -> int:
        """The seed of a use's draws: None is 0 (the same numbers on every call)."""
        return 0 if random_state is None else as_seed(random_state)

    def posterior(self, X) -> Gaussian:
        """q(z | x) per row: a Gaussian with diagonal covariance (the encoder's)."""
        check_is_fitted(self)
        means, variances = [], []
        with torch.no_grad():
            for x, observed in self._batches(X):
                q = self.module_.posterior(x, observed)
                means.append(q.mean)
                variances.append(q.variance)
        mean = torch.cat(means).numpy().astype(np.float64)
        variance = torch.cat(variances).numpy().astype(np.float64)
        return Gaussian(mean, variance[:, :, None] * np.eye(mean.shape[1]))

    def transform(self, X) -> np.ndarray:
        """E_q[z | x] : (n_samples, latent_dim), the representation."""
        check_is_fitted(self)
        with torch.no_grad():
            return torch.cat([self.module_.posterior(x, observed).mean for x, observed
                              in self._batches(X)]).numpy().astype(_out_dtype(X))

    @property
    def _n_features_out(self) -> int:
        return self.latent_dim

    def sample(self, n_samples=1, random_state=None):
        """(X : (n_samples, D) drawn from p(x | z), z : (n_samples, latent_dim) from p(z))."""
        check_is_fitted(self)
        check_n_samples(n_samples)
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(self._seed_of(random_state))
            x, z = self.module_.sample(n_samples)
        return x.numpy().astype(np.float32), z.numpy()

    def reconstruct(self, X) -> np.ndarray:
        """E[x | z = E_q[z | x]] : (n_samples, D), the decoder's mean at the posterior mean."""
        check_is_fitted(self)
        with torch.no_grad():
            return torch.cat([self.module_.decode_mean(self.module_.posterior(x, obs).mean)
                              for x, obs in self._batches(X)]).numpy()

    def impute(self, X, n_samples=100, random_state=0):
        """X with each NaN replaced by its posterior-predictive mean E[x_m | x_o], by
        self-normalized importance sampling with q (Mattei & Frellsen 2019)."""
        from .impute import impute_mean

        check_is_fitted(self)
        generator = torch.Generator().manual_seed(self._seed_of(random_state))
        with torch.no_grad():
            rows = [impute_mean(self.module_, x, observed, n_samples=n_samples,
                                generator=generator) if observed is not None else x
                    for x, observed in self._batches(X)]
        return torch.cat(rows).numpy().reshape(np.shape(X)).astype(np.float32)

    def _n_parameters(self) -> int:
        return int(sum(p.numel() for p in self.module_.parameters()))

    # -- persistence ----------------------------------------------------------------------

    def _saved_state(self) -> dict:
        """The fitted attributes, with the module's weights as one safetensors blob."""
        from safetensors.torch import save

        state = {name: value for name, value in vars(self).items()
                 if name.endswith("_") and not name.startswith("_") and name != "module_"}
        weights = {k: v.detach().cpu().contiguous()
                   for k, v in self.module_.state_dict().items()}
        state["weights_"] = np.frombuffer(save(weights), dtype=np.uint8).copy()
        return state

    def _restore_state(self, state: dict) -> None:
        from safetensors.torch import load

        state = dict(state)
        blob = state.pop("weights_")
        vars(self).update(state)
        module = self._build_module(int(self.n_features_in_)).to(self._dtype)
        weights = load(np.asarray(blob, dtype=np.uint8).tobytes())
        module.load_state_dict(weights, strict=True)
        self.module_ = module.eval()

    def _fitted_schema(self) -> dict:
        from .._io_schemas import Fitted

        return {"history_": Fitted("f", ("H",), finite=False), "n_iter_": Fitted("iu", low=0),
                "converged_": Fitted("b"), "stop_reason_": Fitted("U"),
                "uses_mask_": Fitted("b", optional=True),
                "term_names_": Fitted("U", ("T",), optional=True),
                "term_history_": Fitted("f", ("T", "H"), finite=False, optional=True)}


__all__ = ["DEEP_CONSTRAINTS", "DeepModel", "resolve_device"]
