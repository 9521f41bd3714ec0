"""The trainer core: whole-tensor training with index-slice batches, early stopping on clean
validation accuracy, an atomic checkpoint every epoch, exact resume, and divergence handling.

The training set lives on the device as one float tensor of clean images; the (possibly noisy)
training set is a pair of index/label tensors into it, so alpha = 100 copies cost no images.
Per step there is no host-device synchronisation: the epoch's loss is summed on the device and
read once per epoch.

What ``train`` (one model) and ``packing.train_packed`` (several seeds stacked under vmap) share
is written once, here:

- ``TrainConfig``, ``TrainData``, ``TrainResult``: a run's configuration, data and outcome.
- ``RunRecord``: one run's bookkeeping: its history rows, the epoch-end decision (divergence on
  a non-finite training loss, early stopping on the clean validation accuracy, the last epoch),
  its best (or, without ``restore_best``, last) weights, its checkpoint state and its result.
- ``Checkpoint``: the atomic checkpoint file written after every epoch, and its loading on
  resume (under the same key only: configuration and checkpoint format).
- ``resume_progress`` and ``epoch_progress``: what a progress bar shows.

A trainer builds one ``RunRecord`` per run, calls ``start`` with the initial weights' validation
and ``end_epoch`` after every epoch, and trains the runs that are still ``training``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from corruptlab.core.io import torch_save
from corruptlab.core.seeding import derive_seed
from corruptlab.train.objectives import DEFAULT_OBJECTIVE, OBJECTIVES, build_objective
from corruptlab.train.optim import build_optimizer
from corruptlab.train.schedules import lr_at

EVAL_BATCH = 1024
# The version of what a checkpoint holds; it is part of every checkpoint's key, so that a
# checkpoint of another version is not resumed: it is ignored and training starts afresh (and
# overwrites it). Version 1 held the optimizer state of corruptlab's former FunctionalOptimizer,
# which torch.optim's load_state_dict cannot read; version 2 holds torch.optim state dicts and
# the runs' records under "runs".
CHECKPOINT_FORMAT = 2

# a copy of the current weights (a model's state dict), made only when it is needed
StateFn = Callable[[], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class TrainConfig:
    optimizer: dict  # {"name": ..., "lr": ..., ...}
    batch_size: int = 128
    max_epochs: int = 10
    patience: int = 3  # epochs without a better validation accuracy before stopping
    seed: int = 0  # the run's seed; data order and dropout draws derive from it
    restore_best: bool = True  # False: the result holds the last epoch's weights, not the best
    # the loss (corruptlab.train.objectives): {"name": ..., **params}
    objective: dict = field(default_factory=lambda: dict(DEFAULT_OBJECTIVE))

    def key(self) -> str:
        """Identifies the configuration; a checkpoint is resumed only under the same key."""
        text = json.dumps(self.__dict__, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def lr(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (from 1) under the optimizer's schedule."""
        return lr_at(self.optimizer, epoch, self.max_epochs)

    def loss(self):
        """The objective's loss of a batch (``corruptlab.train.objectives``)."""
        return build_objective(self.objective)


@dataclass
class TrainData:
    """Tensors on the training device: clean images plus the noisy training set as indices."""

    images: torch.Tensor  # float [N, C, H, W], normalised
    indices: torch.Tensor  # int64 [M] into images
    labels: torch.Tensor  # int64 [M]
    val_images: torch.Tensor
    val_labels: torch.Tensor
    # a teacher's logits for each training example (float [M, C], aligned with indices and
    # labels), for objectives that train on soft targets; None: there are none
    soft_targets: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.indices.shape != self.labels.shape:
            raise ValueError("indices and labels must have the same shape")
        if len(self.indices) == 0:
            raise ValueError("the training set is empty")
        soft = self.soft_targets
        if soft is not None and (
            soft.dim() != 2 or len(soft) != len(self.indices) or not soft.is_floating_point()
        ):
            raise ValueError(
                "soft_targets must be a float [M, C] tensor aligned with the M training "
                f"examples (M = {len(self.indices)}), got {soft.dtype} {tuple(soft.shape)}"
            )


def check_objective(cfg: TrainConfig, data: list[TrainData]) -> None:
    """Refuse an objective that trains on soft targets for data without them."""
    name = cfg.objective["name"]
    if OBJECTIVES.get(name).soft_targets and any(d.soft_targets is None for d in data):
        raise ValueError(
            f"objective {name!r} trains on soft targets (a teacher's logits for every training "
            "example, TrainData.soft_targets), and this training set has none"
        )


def set_lr(optimizer, cfg: TrainConfig, epoch: int) -> None:
    """Set the optimizer's learning rate to that of ``epoch`` (the schedule's; a function of
    the epoch alone, so a resumed run follows the same schedule)."""
    lr = cfg.lr(epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr


@dataclass
class TrainResult:
    status: str  # "ok" or "diverged"
    stopped_by: str  # "patience", "max_epochs" or "nonfinite_loss"
    best_epoch: int
    best_val_accuracy: float
    best_state: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_epoch: int = 0


class RunRecord:
    """One run's bookkeeping under ``cfg``: history rows, the best weights, epoch and validation
    accuracy so far, epochs without improvement, and why training stopped (None while it
    goes on)."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.history: list[dict[str, Any]] = []
        self.best_state: dict[str, torch.Tensor] = {}
        self.best_epoch = 0
        self.best_val_accuracy = -math.inf
        self.bad_epochs = 0
        self.stopped_by: str | None = None

    @property
    def training(self) -> bool:
        return self.stopped_by is None

    def start(
        self, val_loss: float, val_acc: float, state: StateFn, extra: Callable[[], dict] | None
    ) -> None:
        """Epoch 0: the initial weights' validation row; they are the best so far."""
        self.history.append(_row(0, math.nan, val_loss, val_acc, 0.0, extra))
        self.best_epoch, self.best_val_accuracy = 0, val_acc
        if self.cfg.restore_best:
            self.best_state = state()

    def end_epoch(
        self,
        epoch: int,
        train_loss: float,
        val_loss: float,
        val_acc: float,
        seconds: float,
        state: StateFn,
        extra: Callable[[], dict] | None = None,
    ) -> bool:
        """Record an epoch and decide whether the run trains on. A non-finite training loss
        ends it as diverged (its validation is not recorded); otherwise a better validation
        accuracy makes these weights the best, ``patience`` epochs without one stop it, and so
        does ``max_epochs``. ``extra()`` gives more columns of a finite epoch's row."""
        if not math.isfinite(train_loss):
            self.history.append(_row(epoch, train_loss, math.nan, math.nan, seconds))
            self._stop("nonfinite_loss", state)
            return False
        self.history.append(_row(epoch, train_loss, val_loss, val_acc, seconds, extra))
        if val_acc > self.best_val_accuracy:
            self.best_epoch, self.best_val_accuracy, self.bad_epochs = epoch, val_acc, 0
            if self.cfg.restore_best:
                self.best_state = state()
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= self.cfg.patience:
            self._stop("patience", state)
        elif epoch >= self.cfg.max_epochs:
            self._stop("max_epochs", state)
        return self.training

    def _stop(self, reason: str, state: StateFn) -> None:
        self.stopped_by = reason
        if not self.cfg.restore_best:  # the last epoch's weights stand in for the best
            last = self.history[-1]
            self.best_state = state()
            self.best_epoch, self.best_val_accuracy = last["epoch"], last["val_accuracy"]

    def state_dict(self) -> dict[str, Any]:
        """The record for a checkpoint."""
        return {
            "history": self.history,
            "best_state": self.best_state,
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy,
            "bad_epochs": self.bad_epochs,
            "stopped_by": self.stopped_by,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = state["history"]
        self.best_state = state["best_state"]
        self.best_epoch = state["best_epoch"]
        self.best_val_accuracy = state["best_val_accuracy"]
        self.bad_epochs = state["bad_epochs"]
        self.stopped_by = state["stopped_by"]

    def result(self, resumed_from_epoch: int) -> TrainResult:
        """The finished run's result (``stopped_by`` is set once training has ended)."""
        if self.stopped_by is None:
            raise RuntimeError("the run has not finished training")
        return TrainResult(
            status="diverged" if self.stopped_by == "nonfinite_loss" else "ok",
            stopped_by=self.stopped_by,
            best_epoch=self.best_epoch,
            best_val_accuracy=self.best_val_accuracy,
            best_state=self.best_state,
            history=self.history,
            resumed_from_epoch=resumed_from_epoch,
        )


def _row(
    epoch: int,
    train_loss: float,
    val_loss: float,
    val_acc: float,
    seconds: float,
    extra: Callable[[], dict] | None = None,
) -> dict:
    row = {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "seconds": seconds,
    }
    if extra is not None:
        row.update(extra())
    return row


class Checkpoint:
    """A trainer's state after an epoch, in one file written atomically: the epoch, every run's
    record (``RunRecord.state_dict``) and the trainer's own tensors (weights, optimizer state).
    ``path`` None: no checkpoint (``load`` finds none, ``save`` does nothing)."""

    def __init__(self, path: str | Path | None, key: str) -> None:
        self.path = Path(path) if path is not None else None
        self.key = f"format{CHECKPOINT_FORMAT}-{key}"

    def load(self, device) -> dict[str, Any] | None:
        """The saved state, or None if there is none under this key (a checkpoint written for
        another configuration or in another format is ignored; ``save`` overwrites it)."""
        if self.path is None or not self.path.exists():
            return None
        state = torch.load(self.path, map_location=device, weights_only=True)
        if not isinstance(state, dict) or state.get("key") != self.key:
            return None
        return state

    def save(self, epoch: int, records: list[RunRecord], **tensors: Any) -> None:
        if self.path is None:
            return
        reasons = sorted({r.stopped_by for r in records if r.stopped_by is not None})
        state = {
            "key": self.key,
            "epoch": epoch,
            "runs": [r.state_dict() for r in records],
            # how training ended, for people and tests (resuming reads the runs): None while a
            # run still trains, else the runs' distinct reasons joined by commas
            "stopped_by": None if any(r.training for r in records) else ",".join(reasons),
            **tensors,
        }
        torch_save(state, self.path)  # this module's (tests/test_slurm.py injects faults here)

    @staticmethod
    def restore(state: dict[str, Any], records: list[RunRecord]) -> int:
        """Restore the records from a loaded state; returns the epoch it was saved after."""
        if len(state["runs"]) != len(records):
            raise ValueError(f"checkpoint of {len(state['runs'])} runs for {len(records)}")
        for record, saved in zip(records, state["runs"], strict=True):
            record.load_state_dict(saved)
        return state["epoch"]


def resume_progress(progress: Any, records: list[RunRecord], n_train: int) -> None:
    """Advance a progress bar by the training examples the resumed runs have already seen."""
    if progress is not None:
        epochs = sum(row["epoch"] > 0 for r in records for row in r.history)
        progress.update(epochs * n_train)


def epoch_progress(progress: Any, epoch: int, records: list[RunRecord]) -> None:
    """Show an epoch's outcome on the progress bar: a single run's training loss and validation
    accuracy, or how many runs of a pack still train."""
    if progress is None:
        return
    if len(records) > 1:
        progress.set_postfix(epoch=epoch, training=sum(r.training for r in records))
        return
    row = records[0].history[-1]
    progress.set_postfix(
        epoch=epoch, loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_accuracy']:.4f}"
    )


# --- the one-model trainer ---------------------------------------------------------------


def seeded_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model with its initial weights drawn from ``seed`` (on the CPU, so the same
    weights on every device)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Logits for ``images`` in eval mode (restores the model's previous mode)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat(
            [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        )
    finally:
        model.train(was_training)


def _validate(model: nn.Module, data: TrainData) -> tuple[float, float]:
    logits = predict(model, data.val_images)
    loss = F.cross_entropy(logits.double(), data.val_labels).item()
    acc = (logits.argmax(1) == data.val_labels).double().mean().item()
    return loss, acc


def train(
    model: nn.Module,
    data: TrainData,
    cfg: TrainConfig,
    checkpoint: str | Path | None = None,
    progress: Any = None,
    on_epoch: Callable[[int, nn.Module], dict] | None = None,
) -> TrainResult:
    """Train ``model`` in place (already on the data's device); returns the best epoch's weights.

    With ``checkpoint``, the full state (weights, optimizer, best weights, history, early-stopping
    counter) is written atomically after every epoch, and an existing checkpoint with the same
    configuration key is resumed: the result equals that of an uninterrupted run, because each
    epoch's data order and dropout draws derive from (seed, epoch) only.
    ``progress`` is an optional tqdm-like object with ``update(n)``, ``set_postfix`` and ``total``.
    ``on_epoch(epoch, model)`` (also for epoch 0, the initial weights) returns extra columns for
    that epoch's history row (a measurement during training, checkpointed with the history).
    """
    device = data.images.device
    check_objective(cfg, [data])
    optimizer = build_optimizer(model.parameters(), cfg.optimizer)
    record = RunRecord(cfg)
    ckpt = Checkpoint(checkpoint, cfg.key())

    def state() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def extra(epoch: int) -> Callable[[], dict] | None:
        return None if on_epoch is None else lambda: on_epoch(epoch, model)

    saved = ckpt.load(device)
    if saved is not None:
        start_epoch = Checkpoint.restore(saved, [record]) + 1
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        resume_progress(progress, [record], len(data.indices))
    else:
        start_epoch = 1
        record.start(*_validate(model, data), state, extra(0))
    resumed_from = start_epoch - 1

    for epoch in range(start_epoch, cfg.max_epochs + 1):
        if not record.training:
            break
        t0 = time.perf_counter()
        set_lr(optimizer, cfg, epoch)
        train_loss = _train_epoch(model, optimizer, data, cfg, epoch, progress)
        # a diverged epoch is not validated (RunRecord.end_epoch ends the run)
        finite = math.isfinite(train_loss)
        val_loss, val_acc = _validate(model, data) if finite else (math.nan, math.nan)
        seconds = time.perf_counter() - t0
        record.end_epoch(epoch, train_loss, val_loss, val_acc, seconds, state, extra(epoch))
        epoch_progress(progress, epoch, [record])
        ckpt.save(epoch, [record], model=model.state_dict(), optimizer=optimizer.state_dict())
    return record.result(resumed_from)


def _train_epoch(
    model, optimizer, data: TrainData, cfg: TrainConfig, epoch: int, progress
) -> float:
    device = data.images.device
    n = len(data.indices)
    order = torch.Generator().manual_seed(derive_seed(cfg.seed, "order", epoch))
    perm = torch.randperm(n, generator=order).to(device)
    # dropout and any other stochastic layer draw from the global generators, reseeded per epoch
    torch.manual_seed(derive_seed(cfg.seed, "dropout", epoch))
    model.train()
    objective = cfg.loss()
    soft = data.soft_targets
    total = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, n, cfg.batch_size):
        sel = perm[start : start + cfg.batch_size]
        x = data.images.index_select(0, data.indices.index_select(0, sel))
        y = data.labels.index_select(0, sel)
        loss = objective(model(x), y, None if soft is None else soft.index_select(0, sel))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().double() * len(sel)
        if progress is not None:
            progress.update(len(sel))
    return (total / n).item()  # the epoch's one synchronisation
