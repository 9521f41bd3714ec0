"""The trainer: whole-tensor training with index-slice batches, early stopping on clean
validation accuracy, an atomic checkpoint every epoch, exact resume, and divergence handling.

The training set lives on the device as one float tensor of clean images; the (possibly noisy)
training set is a pair of index/label tensors into it, so alpha = 100 copies cost no images.
Per step there is no host-device synchronisation: the epoch's loss is summed on the device and
read once per epoch.
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
from corruptlab.train.optim import build_optimizer

EVAL_BATCH = 1024
# The version of what a checkpoint holds; it is part of every checkpoint's key, so that a
# checkpoint of another version is not resumed: it is ignored and training starts afresh (and
# overwrites it). Version 1 held the optimizer state of corruptlab's former FunctionalOptimizer,
# which torch.optim's load_state_dict cannot read; version 2 holds torch.optim state dicts.
CHECKPOINT_FORMAT = 2


@dataclass(frozen=True)
class TrainConfig:
    optimizer: dict  # {"name": ..., "lr": ..., ...}
    batch_size: int = 128
    max_epochs: int = 10
    patience: int = 3  # epochs without a better validation accuracy before stopping
    seed: int = 0  # the run's seed; data order and dropout draws derive from it
    restore_best: bool = True  # False: the result holds the last epoch's weights, not the best

    def key(self) -> str:
        """Identifies the configuration and the checkpoint format; a checkpoint is resumed only
        under the same key."""
        identity = {**self.__dict__, "checkpoint_format": CHECKPOINT_FORMAT}
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class TrainData:
    """Tensors on the training device: clean images plus the noisy training set as indices."""

    images: torch.Tensor  # float [N, C, H, W], normalised
    indices: torch.Tensor  # int64 [M] into images
    labels: torch.Tensor  # int64 [M]
    val_images: torch.Tensor
    val_labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.indices.shape != self.labels.shape:
            raise ValueError("indices and labels must have the same shape")
        if len(self.indices) == 0:
            raise ValueError("the training set is empty")


@dataclass
class TrainResult:
    status: str  # "ok" or "diverged"
    stopped_by: str  # "patience", "max_epochs" or "nonfinite_loss"
    best_epoch: int
    best_val_accuracy: float
    best_state: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from_epoch: int = 0


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


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


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
    optimizer = build_optimizer(model.parameters(), cfg.optimizer)
    n_train = len(data.indices)
    history: list[dict[str, Any]] = []

    start_epoch = 1
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    state = _load_checkpoint(ckpt_path, cfg.key(), device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
        best_state, best_epoch = state["best_state"], state["best_epoch"]
        best_acc, bad_epochs = state["best_val_accuracy"], state["bad_epochs"]
        start_epoch = state["epoch"] + 1
        if progress is not None:
            progress.update(state["epoch"] * n_train)
    else:
        val_loss, val_acc = _validate(model, data)
        history.append(_row(0, math.nan, val_loss, val_acc, 0.0, on_epoch, model))
        best_state, best_epoch, best_acc, bad_epochs = _state_copy(model), 0, val_acc, 0
    resumed_from = start_epoch - 1

    stopped_by = "max_epochs"
    if state is not None and state.get("stopped_by"):
        stopped_by = state["stopped_by"]
    else:
        for epoch in range(start_epoch, cfg.max_epochs + 1):
            t0 = time.perf_counter()
            train_loss = _train_epoch(model, optimizer, data, cfg, epoch, progress)
            if not math.isfinite(train_loss):
                history.append(
                    _row(epoch, train_loss, math.nan, math.nan, time.perf_counter() - t0)
                )
                stopped_by = "nonfinite_loss"
            else:
                val_loss, val_acc = _validate(model, data)
                seconds = time.perf_counter() - t0
                history.append(_row(epoch, train_loss, val_loss, val_acc, seconds, on_epoch, model))
                if val_acc > best_acc:
                    best_state, best_epoch, best_acc, bad_epochs = (
                        _state_copy(model),
                        epoch,
                        val_acc,
                        0,
                    )
                else:
                    bad_epochs += 1
                if progress is not None:
                    progress.set_postfix(
                        epoch=epoch, loss=f"{train_loss:.3f}", val_acc=f"{val_acc:.4f}"
                    )
                if bad_epochs >= cfg.patience:
                    stopped_by = "patience"
            done = stopped_by != "max_epochs" or epoch == cfg.max_epochs
            if ckpt_path is not None:
                torch_save(
                    {
                        "key": cfg.key(),
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "best_state": best_state,
                        "best_epoch": best_epoch,
                        "best_val_accuracy": best_acc,
                        "bad_epochs": bad_epochs,
                        "history": history,
                        "stopped_by": stopped_by if done else None,
                    },
                    ckpt_path,
                )
            if stopped_by != "max_epochs":
                break

    if not cfg.restore_best:  # the last epoch's weights (they are the model's now)
        best_state, best_epoch = _state_copy(model), history[-1]["epoch"]
        best_acc = history[-1]["val_accuracy"]
    return TrainResult(
        status="diverged" if stopped_by == "nonfinite_loss" else "ok",
        stopped_by=stopped_by,
        best_epoch=best_epoch,
        best_val_accuracy=best_acc,
        best_state=best_state,
        history=history,
        resumed_from_epoch=resumed_from,
    )


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
    total = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, n, cfg.batch_size):
        sel = perm[start : start + cfg.batch_size]
        x = data.images.index_select(0, data.indices.index_select(0, sel))
        y = data.labels.index_select(0, sel)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().double() * len(sel)
        if progress is not None:
            progress.update(len(sel))
    return (total / n).item()  # the epoch's one synchronisation


def _row(
    epoch: int,
    train_loss: float,
    val_loss: float,
    val_acc: float,
    seconds: float,
    on_epoch: Callable[[int, nn.Module], dict] | None = None,
    model: nn.Module | None = None,
) -> dict:
    row = {
        "epoch": epoch,
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_accuracy": val_acc,
        "seconds": seconds,
    }
    if on_epoch is not None:
        row.update(on_epoch(epoch, model))
    return row


def _load_checkpoint(path: Path | None, key: str, device) -> dict | None:
    if path is None or not path.exists():
        return None
    state = torch.load(path, map_location=device, weights_only=True)
    if state.get("key") != key:
        return None  # written for another configuration: start afresh (it is overwritten)
    return state
