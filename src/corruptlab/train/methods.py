"""Training-method registry: how a run's weights are found, gradient descent or not (the
``no_gd`` study kind; a run without ``train_method`` is trained by ``gd``). Light at import (no
torch): the Snakefile validates configs against the registered names and parameters.

Each entry (``Method``) names its **fit function** by ``"module:function"`` (imported when a run
is trained) and declares its hyper-parameters (``corruptlab.core.params.Param``: validation,
grid expansion of list values, the run path's slug), so that a new method is one entry here plus
its module and tests. Every fit function has the one contract::

    fit(model, data, cfg, spec, checkpoint, progress, on_epoch) -> TrainResult

- ``model``: the run's registered model (``corruptlab.train.models``), its initial weights
  drawn from the run's seed, on the data's device; ``data``: ``training.TrainData`` (whole
  tensors on the device); ``cfg``: ``training.TrainConfig`` (batch size, max_epochs, patience,
  seed, restore_best; ``cfg.optimizer`` is the run's optimizer setting for a method with
  ``uses_optimizer``, else ``NO_OPTIMIZER``); ``spec``: the run's method setting
  ``{"name": ..., <param>: <value>, ...}`` with every declared parameter present (defaults
  filled in); ``checkpoint``: a path to write an atomic checkpoint to after every epoch or
  generation and to resume from, with the same result as an uninterrupted run (None: none;
  the method's own ``training.Checkpoint``); ``progress``: a tqdm-like
  bar (``update(n)`` in training examples forwarded, ``set_postfix``, ``total``) or None;
  ``on_epoch(epoch, model)``: None, or extra columns for a history row (call it with the
  model as the row's weights, as ``training.train`` does).
- Randomness: every draw (data order, minibatches, mutations, mask samples) comes from
  generators seeded from ``cfg.seed`` (``corruptlab.core.seeding.derive_seed(cfg.seed,
  <purpose>, <epoch or generation>)``), so that a resumed run repeats an uninterrupted one.
- The result is a ``training.TrainResult``: ``best_state`` is a plain ``state_dict`` of the
  *registered* model (a supermask folds mask * weights into its weights), so that evaluation
  and OOD scoring load it as any run's ``model.pt``; ``status``, ``stopped_by``, ``best_epoch``
  and ``best_val_accuracy`` as the trainer's (``training.RunRecord`` keeps them).
- ``history``: one row per epoch or generation, the first (``epoch`` 0) for the initial weights
  before any update. Every row has the columns ``HISTORY_COLUMNS``: ``epoch`` (int: the epoch
  or generation), ``examples_forwarded`` (int: training examples forwarded through the model
  during this row's epoch or generation, every member of a population counted, 0 in row 0; the
  validation pass every method makes is not counted), ``seconds`` (wall seconds of this row),
  ``train_loss`` (NaN in row 0), ``val_loss`` and ``val_accuracy`` (on the clean validation
  set). A method with ``frozen_weights`` adds ``FROZEN_DIGEST`` to every row: the SHA-256 of
  its frozen weight tensors at that row (``weights_digest``), so a claim can check that they
  never changed; a mask method adds ``MASK_DENSITY + <parameter name>`` columns (the fraction
  of that weight tensor's mask that is on). Other method-specific columns are free.
  ``check_history`` enforces the required columns after every fit.

Flags a study kind reads: ``uses_optimizer`` (its runs expand over optimizer settings and their
path names them), ``gradient_free`` (no backward pass), ``frozen_weights``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from corruptlab.core.params import Param, slug
from corruptlab.core.registry import Registry

if TYPE_CHECKING:
    from corruptlab.train.training import TrainResult

DEFAULT_METHOD = "gd"
# the optimizer setting of a run whose method trains without one (run dicts, tables)
NO_OPTIMIZER = {"name": "none"}
HISTORY_COLUMNS = (
    "epoch",
    "examples_forwarded",
    "seconds",
    "train_loss",
    "val_loss",
    "val_accuracy",
)
FROZEN_DIGEST = "frozen_sha256"
MASK_DENSITY = "mask_density."

FitFn = Callable[..., "TrainResult"]


@dataclass(frozen=True)
class Method:
    """A training method: its ``fit`` function (a callable, or ``"module:function"`` imported
    when it is first called), its declared parameters and its facts (module docstring)."""

    name: str
    fit: str | FitFn
    params: tuple[Param, ...] = ()
    doc: str = ""
    uses_optimizer: bool = False
    gradient_free: bool = False
    frozen_weights: bool = False
    # a method of the shared loop (``method_loop.fit_method``): builds its runner,
    # ``build(model, seed, **values)``; None for a method with a fit function of its own
    build: Callable[..., Any] | None = None

    def slug(self, values: dict) -> str:
        """The method's run-path segment: ``edge_popup-k0.5`` (the name alone without
        parameters)."""
        return slug(self.name, self.params, values)

    def values(self, spec: dict) -> dict:
        """``spec`` with every declared parameter (defaults filled in), ``name`` first; an
        unknown key or a bad value raises ValueError naming it and what is accepted."""
        known = {p.name for p in self.params}
        unknown = sorted(set(spec) - known - {"name"})
        if unknown:
            raise ValueError(
                f"method {self.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(known)) or 'none'}"
            )
        values = {"name": self.name}
        for p in self.params:
            value = spec.get(p.name, p.default)
            if value is None:
                raise ValueError(f"method {self.name!r}: {p.name} is required ({p.accepted()})")
            reason = p.check(value)
            if reason is not None:
                raise ValueError(f"method {self.name!r}: {p.name}: {reason}")
            values[p.name] = value
        return values

    def resolve(self) -> FitFn:
        """The fit function."""
        if callable(self.fit):
            return self.fit
        module, _, attr = self.fit.partition(":")
        return getattr(importlib.import_module(module), attr)


METHODS: Registry[Method] = Registry("training method")


def register_method(method: Method) -> Method:
    return METHODS.add(method.name, method)


def method_of(run: dict) -> dict:
    """A run's method setting (``{"name": "gd"}`` for a run without ``train_method``). A run
    that names one (the ``no_gd`` study kind's) carries it as ``train_method``, every declared
    parameter present, and its slug as ``train_method_id`` (the tables' column)."""
    return run.get("train_method", {"name": DEFAULT_METHOD})


def fit_run(model, data, cfg, spec: dict, checkpoint, progress=None, on_epoch=None):
    """Train ``model`` by the method ``spec`` names (the contract above); checks the result's
    history."""
    method = METHODS.get(spec["name"])
    result = method.resolve()(model, data, cfg, method.values(spec), checkpoint, progress, on_epoch)
    check_history(result.history, method)
    return result


def check_history(history: Sequence[dict], method: Method) -> None:
    """Refuse a history that breaks the contract: no rows, a row without a required column
    (``HISTORY_COLUMNS``; ``FROZEN_DIGEST`` for a method with frozen weights), or a first row
    that is not epoch 0."""
    if not history:
        raise ValueError(f"training method {method.name!r} returned an empty history")
    required = [*HISTORY_COLUMNS, *([FROZEN_DIGEST] if method.frozen_weights else [])]
    for i, row in enumerate(history):
        missing = [c for c in required if c not in row]
        if missing:
            raise ValueError(
                f"training method {method.name!r}: history row {i} (epoch "
                f"{row.get('epoch', '?')}) lacks {', '.join(missing)}; every row needs "
                f"{', '.join(required)} (corruptlab.train.methods)"
            )
    if history[0]["epoch"] != 0:
        raise ValueError(
            f"training method {method.name!r}: the first history row is epoch "
            f"{history[0]['epoch']}; accepted: 0, the initial weights"
        )


def weights_digest(tensors: dict[str, Any] | Sequence[Any]) -> str:
    """SHA-256 (hex) of tensors' bytes, in order (by name for a dict): equal digests mean
    bit-identical tensors."""
    import hashlib

    import torch

    items = sorted(tensors.items()) if isinstance(tensors, dict) else list(enumerate(tensors))
    h = hashlib.sha256()
    for name, t in items:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _fit_gd(model, data, cfg, spec, checkpoint, progress=None, on_epoch=None):
    """Gradient descent: ``training.train`` (the run's optimizer, lr schedule and objective);
    every epoch forwards the whole training set once."""
    from corruptlab.train.training import train

    result = train(model, data, cfg, checkpoint, progress, on_epoch)
    n = len(data.indices)
    for row in result.history:
        row.setdefault("examples_forwarded", 0 if row["epoch"] == 0 else n)
    return result


register_method(
    Method(
        DEFAULT_METHOD,
        _fit_gd,
        doc="gradient descent: the trainer of every study (training.train) with the run's "
        "optimizer and lr schedule",
        uses_optimizer=True,
    )
)


# the masks over frozen weights and the gradient-free searches: their entries are in
# corruptlab.train.method_loop (one registry: importing this module registers them)
from corruptlab.train import method_loop as _method_loop  # noqa: E402, F401
